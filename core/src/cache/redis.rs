//! A stage's response cache on the fleet's Redis (`responseCache: {type: redis}`): every
//! gateway pointed at the same Redis answers from what any of them stored.
//!
//! A stage's keys share the prefix `portico:cache:{API/STAGE}:` (the braces are a Redis
//! Cluster hash tag: a stage's answers and its generation live on one slot, so one `MGET`
//! reads both):
//! - `...generation`: a counter that a flush increments (`INCR`), for every gateway at once;
//! - `...stage:DIGEST` and `...canary:DIGEST`: one answer each, under the SHA-256 of its cache
//!   key (route, method, key parameter values, caller: none of them reach Redis in the clear),
//!   expiring after its route's TTL (`SET ... PX`).
//!
//! An answer records the generation it was stored in, and one of an older generation (a flush
//! came since) is a miss, overwritten by the next store. So a flush is one `INCR` however much
//! the cache holds, rather than a `SCAN` and `DEL` over the whole stage, and flushed answers
//! leave when their TTL ends (an hour at most). A stored answer is one byte of format, the
//! head (generation, status, version, headers) in postcard's compact encoding, then the body.
//!
//! Concurrent misses on one key in one process still call the integration once: they join
//! one flight through moka's `try_get_with` (the same single-flight the memory cache uses),
//! on a moka cache whose entries expire at once, so this process keeps no answers of its own.
//!
//! Redis slow or away never fails a request: a read that does not answer within the
//! request's `timeoutMs` budget is a miss and nothing is stored; a store gets `timeoutMs` of
//! its own after the integration answered and is dropped when it runs out. Both log a warning,
//! at most one per stage every ten seconds.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Response, StatusCode, Version};
use moka::future::Cache;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{CacheKey, CachedAnswer, Uncached};
use crate::error::Error;
use crate::fleet::{RedisLink, Unavailable, WarningGate};
use crate::respond::GatewayError;

/// The first byte of every stored answer: its encoding. Anything else reads as a miss (and is
/// overwritten), so a later encoding never misreads this one's answers.
const FORMAT: u8 = 1;
/// The least time a flush waits for Redis, whatever `timeoutMs` says: it is an operator's
/// command, not a request's wait.
const FLUSH_MIN_TIMEOUT: Duration = Duration::from_secs(1);

/// One stage's cache on Redis.
pub(super) struct RedisCache {
    link: Arc<RedisLink>,
    /// `portico:cache:{API/STAGE}:`.
    prefix: String,
    /// `portico:cache:{API/STAGE}:generation`.
    generation_key: String,
    /// The flights in progress in this process: entries expire as soon as they are made, so
    /// only `try_get_with`'s joining of concurrent callers is used.
    in_flight: Cache<CacheKey, Arc<CachedAnswer>>,
    warnings: Warnings,
}

/// What a read found.
enum Read {
    /// An answer of the current generation.
    Hit(Arc<CachedAnswer>),
    /// None: store the fetched answer in this generation.
    Miss(u64),
}

impl RedisCache {
    /// Stage `stage` of API `api_id`'s cache on `link`'s Redis (not connected yet).
    pub(super) fn new(link: Arc<RedisLink>, api_id: &str, stage: &str) -> Self {
        let prefix = format!("portico:cache:{{{api_id}/{stage}}}:");
        RedisCache {
            generation_key: format!("{prefix}generation"),
            prefix,
            link,
            in_flight: Cache::builder().time_to_live(Duration::ZERO).build(),
            warnings: Warnings::new(api_id, stage),
        }
    }

    /// The connection it uses (the rate store's).
    pub(super) fn link(&self) -> &Arc<RedisLink> {
        &self.link
    }

    /// The answer for `key`: the fleet's cached one, or `fetch`'s, stored for `ttl` when it
    /// may be kept; `refresh` (an allowed `Cache-Control: max-age=0`) fetches and replaces.
    /// Reading waits for Redis until `deadline` at most. Also answers whether it is a hit.
    pub(super) async fn answer<F>(
        &self,
        key: CacheKey,
        refresh: bool,
        ttl: Duration,
        deadline: Instant,
        fetch: F,
    ) -> (Result<Response<Bytes>, GatewayError>, bool)
    where
        F: Future<Output = Result<Response<Bytes>, GatewayError>> + Send,
    {
        let entry = self.entry_key(&key);
        if refresh {
            let generation = self.generation(deadline).await;
            let outcome = fetch.await;
            let answer = outcome.as_ref().ok().and_then(|r| CachedAnswer::of(r, ttl));
            if let (Some(generation), Some(answer)) = (generation, answer) {
                self.store(&entry, generation, &answer, ttl).await;
            }
            return (outcome, false);
        }
        let (mut led, mut fetched) = (false, false);
        let loaded = self
            .in_flight
            .try_get_with(key.clone(), async {
                led = true;
                let generation = match self.read(&entry, ttl, deadline).await {
                    Some(Read::Hit(answer)) => return Ok(answer),
                    Some(Read::Miss(generation)) => Some(generation),
                    // Redis did not answer: the integration does, and nothing is stored.
                    None => None,
                };
                fetched = true;
                let outcome = fetch.await;
                match outcome.as_ref().ok().and_then(|r| CachedAnswer::of(r, ttl)) {
                    Some(answer) => {
                        if let Some(generation) = generation {
                            self.store(&entry, generation, &answer, ttl).await;
                        }
                        Ok(answer)
                    }
                    None => Err(Uncached(outcome)),
                }
            })
            .await;
        if led {
            // The flight has landed; its waiters have their answer. Expired already, the
            // entry would only linger until moka's next housekeeping.
            self.in_flight.invalidate(&key).await;
        }
        let outcome = match loaded {
            Ok(answer) => Ok(answer.response()),
            Err(uncached) => Uncached::into_outcome(uncached),
        };
        (outcome, !fetched)
    }

    /// Forgets the stage's answers for the whole fleet: the next generation.
    pub(super) async fn flush(&self) -> Result<(), Error> {
        let key = &self.generation_key;
        self.link
            .run_within(
                self.link.timeout().max(FLUSH_MIN_TIMEOUT),
                |mut c| async move { redis::cmd("INCR").arg(key).query_async::<u64>(&mut c).await },
            )
            .await
            .map(drop)
            .map_err(|why| {
                Error::Unavailable(format!(
                    "the response cache's Redis did not answer, the stage was not flushed: {why}"
                ))
            })
    }

    /// The entry of `key` and the stage's generation, in one `MGET`; `None` when Redis did
    /// not answer by `deadline`.
    async fn read(&self, entry: &str, ttl: Duration, deadline: Instant) -> Option<Read> {
        let generation_key = &self.generation_key;
        let read = self
            .link
            .run_until(deadline, |mut c| async move {
                redis::cmd("MGET")
                    .arg(generation_key)
                    .arg(entry)
                    .query_async::<(Option<u64>, Option<Vec<u8>>)>(&mut c)
                    .await
            })
            .await;
        match read {
            Ok((generation, stored)) => {
                let generation = generation.unwrap_or(0);
                Some(match stored.and_then(|s| decode(s, generation, ttl)) {
                    Some(answer) => Read::Hit(answer),
                    None => Read::Miss(generation),
                })
            }
            Err(why) => {
                self.warnings.warn(&why);
                None
            }
        }
    }

    /// The stage's generation (a refresh stores in it); `None` when Redis did not answer.
    async fn generation(&self, deadline: Instant) -> Option<u64> {
        let key = &self.generation_key;
        let read = self
            .link
            .run_until(deadline, |mut c| async move {
                redis::cmd("GET")
                    .arg(key)
                    .query_async::<Option<u64>>(&mut c)
                    .await
            })
            .await;
        match read {
            Ok(generation) => Some(generation.unwrap_or(0)),
            Err(why) => {
                self.warnings.warn(&why);
                None
            }
        }
    }

    /// Stores `answer` under `entry` in `generation`, expiring after `ttl`. It waits
    /// `timeoutMs` of its own: the request's budget was counted before the integration ran.
    async fn store(&self, entry: &str, generation: u64, answer: &CachedAnswer, ttl: Duration) {
        let Some(value) = encode(generation, answer) else {
            return;
        };
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let stored = self
            .link
            .run_within(self.link.timeout(), |mut c| async move {
                redis::cmd("SET")
                    .arg(entry)
                    .arg(value)
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await;
        if let Err(why) = stored {
            self.warnings.warn(&why);
        }
    }

    /// `...stage:DIGEST` or `...canary:DIGEST`: the digest of every part of `key`, each
    /// length-prefixed so that no two different keys hash the same bytes.
    fn entry_key(&self, key: &CacheKey) -> String {
        let mut digest = Sha256::new();
        let mut part = |bytes: &[u8]| {
            let length = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
            digest.update(length.to_be_bytes());
            digest.update(bytes);
        };
        part(key.route.as_bytes());
        part(key.method.as_str().as_bytes());
        for values in key.values.iter() {
            part(&values.len().to_be_bytes());
            for value in values.iter() {
                part(value.as_bytes());
            }
        }
        match &key.caller {
            None => part(b"-"),
            Some(caller) => {
                part(b"caller");
                part(caller.as_bytes());
            }
        }
        let side = if key.canary { "canary" } else { "stage" };
        format!("{}{side}:{:x}", self.prefix, digest.finalize())
    }
}

/// The head of a stored answer (its body follows it).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Head {
    generation: u64,
    status: u16,
    version: u8,
    headers: Vec<(String, Vec<u8>)>,
}

/// `answer` as stored in `generation`: [`FORMAT`], the head, the body.
fn encode(generation: u64, answer: &CachedAnswer) -> Option<Vec<u8>> {
    let head = Head {
        generation,
        status: answer.status.as_u16(),
        version: version_code(answer.version),
        headers: answer
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect(),
    };
    let mut value = Vec::with_capacity(answer.weight as usize + 16);
    value.push(FORMAT);
    let mut value = postcard::to_extend(&head, value).ok()?;
    value.extend_from_slice(&answer.body);
    Some(value)
}

/// The answer `stored` holds when it is of `generation` (`None`, a miss, for anything else:
/// an older generation, another format, bytes that do not decode).
fn decode(stored: Vec<u8>, generation: u64, ttl: Duration) -> Option<Arc<CachedAnswer>> {
    let (&format, rest) = stored.split_first()?;
    if format != FORMAT {
        return None;
    }
    let (head, body) = postcard::take_from_bytes::<Head>(rest).ok()?;
    if head.generation != generation {
        return None;
    }
    let status = StatusCode::from_u16(head.status).ok()?;
    let mut headers = HeaderMap::with_capacity(head.headers.len());
    for (name, value) in head.headers {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).ok()?,
            HeaderValue::from_bytes(&value).ok()?,
        );
    }
    // The body is a slice of the bytes Redis sent, not a copy.
    let start = stored.len() - body.len();
    let body = Bytes::from(stored).slice(start..);
    Some(CachedAnswer::new(
        status,
        version_of(head.version),
        headers,
        body,
        ttl,
    ))
}

fn version_code(version: Version) -> u8 {
    match version {
        Version::HTTP_09 => 0,
        Version::HTTP_10 => 1,
        Version::HTTP_2 => 3,
        Version::HTTP_3 => 4,
        _ => 2,
    }
}

fn version_of(code: u8) -> Version {
    match code {
        0 => Version::HTTP_09,
        1 => Version::HTTP_10,
        3 => Version::HTTP_2,
        4 => Version::HTTP_3,
        _ => Version::HTTP_11,
    }
}

/// A stage's warnings that Redis did not answer, at most one per period (see
/// [`WarningGate`]).
struct Warnings {
    gate: WarningGate,
    api_id: String,
    stage: String,
}

impl Warnings {
    fn new(api_id: &str, stage: &str) -> Self {
        Warnings {
            gate: WarningGate::new(),
            api_id: api_id.to_owned(),
            stage: stage.to_owned(),
        }
    }

    fn warn(&self, why: &Unavailable) {
        self.gate.warn(|also| {
            tracing::warn!(
                api = %self.api_id,
                stage = %self.stage,
                error = %why,
                unreported_since = also,
                "response cache unavailable: answering from the integration"
            )
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RedisDefinition;
    use crate::error::KeyPath;
    use http::Method;

    fn cache() -> RedisCache {
        let link = RedisLink::open(
            &RedisDefinition::new("redis://127.0.0.1:1"),
            &KeyPath::root(),
        );
        RedisCache::new(Arc::new(link.unwrap()), "api1", "prod")
    }

    fn key(values: &[&[&str]], caller: Option<&str>, canary: bool) -> CacheKey {
        CacheKey {
            route: "GET /items".into(),
            canary,
            method: Method::GET,
            values: values
                .iter()
                .map(|v| v.iter().map(|s| (*s).to_owned()).collect())
                .collect(),
            caller: caller.map(str::to_owned),
        }
    }

    #[test]
    fn keys_keep_apart_what_the_memory_cache_keeps_apart() {
        let cache = cache();
        let one = cache.entry_key(&key(&[&["1"]], None, false));
        assert!(one.starts_with("portico:cache:{api1/prod}:stage:"), "{one}");
        assert_eq!(one, cache.entry_key(&key(&[&["1"]], None, false)));
        let others = [
            cache.entry_key(&key(&[&["2"]], None, false)),
            cache.entry_key(&key(&[&["1", "2"]], None, false)),
            cache.entry_key(&key(&[&[]], None, false)),
            cache.entry_key(&key(&[&["1"], &[]], None, false)),
            cache.entry_key(&key(&[&["1"]], Some("alice"), false)),
            cache.entry_key(&key(&[&["1"]], Some("bob"), false)),
            cache.entry_key(&key(&[&["1"]], Some(""), false)),
            cache.entry_key(&key(&[&["1"]], None, true)),
            // Concatenations of parts never collide.
            cache.entry_key(&key(&[&["12"]], None, false)),
            cache.entry_key(&key(&[&["1"], &["2"]], None, false)),
        ];
        let mut all: Vec<&String> = others.iter().collect();
        all.push(&one);
        let distinct: std::collections::BTreeSet<&String> = all.iter().copied().collect();
        assert_eq!(distinct.len(), all.len(), "{all:#?}");
        assert!(others[7].starts_with("portico:cache:{api1/prod}:canary:"));
        // Neither parameter values nor callers reach Redis in the clear.
        assert!(!others[4].contains("alice"));
        assert_eq!(cache.generation_key, "portico:cache:{api1/prod}:generation");
    }

    #[test]
    fn answers_round_trip_in_their_generation_only() {
        let mut headers = HeaderMap::new();
        headers.append("content-type", HeaderValue::from_static("application/json"));
        headers.append("set-cookie", HeaderValue::from_static("a=1"));
        headers.append("set-cookie", HeaderValue::from_static("b=2"));
        headers.append("x-bytes", HeaderValue::from_bytes(b"\xfe\xff").unwrap());
        let ttl = Duration::from_secs(60);
        let body = Bytes::from_static(b"{\"a\":1}\x00\xff");
        let answer = CachedAnswer::new(StatusCode::CREATED, Version::HTTP_2, headers, body, ttl);
        let stored = encode(7, &answer).expect("encodes");
        assert_eq!(stored[0], FORMAT);
        let read = decode(stored.clone(), 7, ttl).expect("decodes");
        assert_eq!(read.status, StatusCode::CREATED);
        assert_eq!(read.version, Version::HTTP_2);
        assert_eq!(read.headers, answer.headers);
        assert_eq!(read.body, answer.body);
        assert_eq!(read.weight, answer.weight);
        // A flush since (generation 8), another format or a cut value: a miss.
        assert!(decode(stored.clone(), 8, ttl).is_none());
        let mut other = stored.clone();
        other[0] = 2;
        assert!(decode(other, 7, ttl).is_none());
        assert!(decode(stored[..3].to_vec(), 7, ttl).is_none());
        assert!(decode(Vec::new(), 7, ttl).is_none());
        // The head is small: the body is most of the value.
        assert!(stored.len() < answer.body.len() + 80, "{}", stored.len());
    }

    #[test]
    fn versions_survive_their_code() {
        for version in [
            Version::HTTP_09,
            Version::HTTP_10,
            Version::HTTP_11,
            Version::HTTP_2,
            Version::HTTP_3,
        ] {
            assert_eq!(version_of(version_code(version)), version);
        }
    }

    #[tokio::test]
    async fn without_redis_every_request_is_answered_by_the_integration() {
        // Nothing listens on port 1: each read fails at once, and the answer is fetched.
        let cache = cache();
        let ttl = Duration::from_secs(60);
        for call in 1..=3u16 {
            let fetch = async move {
                let mut response = Response::new(Bytes::from(format!("call {call}")));
                *response.status_mut() = StatusCode::OK;
                Ok(response)
            };
            let deadline = Instant::now() + Duration::from_millis(200);
            let (outcome, hit) = cache
                .answer(key(&[], None, false), false, ttl, deadline, fetch)
                .await;
            let response = outcome.expect("the integration's answer");
            assert_eq!(response.body(), &Bytes::from(format!("call {call}")));
            assert!(!hit);
        }
        assert!(cache.flush().await.is_err());
    }
}
