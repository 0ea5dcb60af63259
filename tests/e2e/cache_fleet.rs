//! The response cache on Redis (`responseCache: {type: redis}`) end to end: two
//! `portico-serve` processes on one real `redis-server` of the test's own, in front of
//! cache.rs's upstream, which numbers and counts every call. The second gateway answers from
//! what the first stored; key parameters and callers stay apart; an allowed
//! `Cache-Control: max-age=0` refreshes the fleet's entry; TTLs run out in Redis; a flush
//! through one gateway's admin port empties the other's cache; Redis going away leaves every
//! answer to the integration (200s, never a 5xx), logged once in a while, and the cache works
//! again when Redis is back. AWS's side of each rule is cited in cache.rs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portico::{ApiDefinition, Format, Gateway};
use portico_tests::{plugins_dist, RedisServer, ServeProcess};
use serde_json::Value;

use crate::cache::Upstream;

/// A REST API whose routes proxy to the upstream (`HOST`), with a stage cache on the Redis at
/// `REDIS`: `/items` keyed by `page`, `/guarded` behind a TOKEN authorizer (so keyed by
/// caller), `/short` with a 1 s TTL, `/slow` (400 ms upstream) and `/big/{n}`.
const API: &str = r#"name: cache-fleet
apiId: cachefleet
protocol: rest
plugins:
  policy: { path: "DIST/policy_authorizer.wasm" }
authorizers:
  policy:
    type: token
    plugin: policy
    identitySource: [$request.header.Authorization]
routes:
  GET /items:
    integration: { type: http_proxy, uri: "http://HOST/items" }
    cacheKeyParameters: [method.request.querystring.page]
  GET /guarded:
    integration: { type: http_proxy, uri: "http://HOST/guarded" }
    authorizer: policy
  GET /short:
    integration: { type: http_proxy, uri: "http://HOST/short" }
  GET /slow:
    integration: { type: http_proxy, uri: "http://HOST/slow" }
  GET /big/{n}:
    integration: { type: http_proxy, uri: "http://HOST/big/{n}" }
    cacheKeyParameters: [method.request.path.n]
stages:
  prod:
    cache: { enabled: true }
    routeSettings:
      GET /short: { caching: { ttlSeconds: 1 } }
    accessLog:
      format: '{"route":"$context.routeKey","status":"$context.status","cacheHit":"$context.cacheHit"}'
rateStore: { type: redis, url: "REDIS", timeoutMs: 200 }
responseCache: { type: redis }
"#;

/// One gateway of the fleet: portico-serve with its admin port and access log.
struct Member {
    process: ServeProcess,
    log: PathBuf,
}

/// The fleet: its Redis, the upstream, two gateways and a client.
struct Fleet {
    redis: RedisServer,
    upstream: Upstream,
    a: Member,
    b: Member,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// What a test looks at in an answer.
struct Answer {
    status: u16,
    call: Option<usize>,
    body: String,
}

impl Answer {
    /// The upstream's number for the call that made this answer.
    fn call(&self) -> usize {
        self.call
            .unwrap_or_else(|| panic!("no x-call: {} {}", self.status, self.body))
    }
}

impl Fleet {
    async fn start() -> Fleet {
        let redis = RedisServer::start();
        let upstream = Upstream::start().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let api = write_api(dir.path(), &upstream, &redis);
        let member = |name: &str| {
            let log = dir.path().join(format!("{name}.log"));
            let api = api.clone();
            async move {
                Member {
                    process: ServeProcess::start_logged(api, log.clone()).await,
                    log,
                }
            }
        };
        let (a, b) = (member("a").await, member("b").await);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        Fleet {
            redis,
            upstream,
            a,
            b,
            client,
            _dir: dir,
        }
    }

    async fn get(&self, member: &Member, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.client.get(format!("{}{path}", member.process.base()));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("an answer");
        let call = response
            .headers()
            .get("x-call")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Answer {
            status: response.status().as_u16(),
            call,
            body: response.text().await.expect("a body"),
        }
    }

    /// `DELETE /apis/cachefleet/stages/prod/cache/data` on `member`'s admin port: its status.
    async fn flush(&self, member: &Member) -> u16 {
        let admin = member.process.admin().expect("an admin port");
        self.client
            .delete(format!("{admin}/apis/cachefleet/stages/prod/cache/data"))
            .send()
            .await
            .expect("an admin answer")
            .status()
            .as_u16()
    }

    /// The stage's answers in Redis.
    fn stored(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .redis
            .command(&["KEYS", "portico:cache:{cachefleet/prod}:stage:*"]);
        keys.sort();
        keys
    }
}

fn write_api(dir: &Path, upstream: &Upstream, redis: &RedisServer) -> PathBuf {
    let dist = plugins_dist(&["policy_authorizer"]);
    let text = API
        .replace("HOST", &upstream.addr.to_string())
        .replace("REDIS", &redis.url())
        .replace("DIST", &dist.display().to_string());
    let api = dir.join("api.yaml");
    std::fs::write(&api, text).expect("write the API");
    api
}

/// The access log lines of `member` so far.
fn log_lines(member: &Member) -> Vec<Value> {
    portico_tests::settled_read(&member.log)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_one_cache_on_redis() {
    let f = Fleet::start().await;
    let (a, b) = (&f.a, &f.b);

    // The second gateway answers from what the first stored: one integration call.
    let first = f.get(a, "/prod/items?page=1", &[]).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let shared = f.get(b, "/prod/items?page=1", &[]).await;
    assert_eq!(
        (shared.call(), shared.body.as_str()),
        (first.call(), first.body.as_str())
    );
    assert_eq!(f.upstream.calls("/items?page=1"), 1);
    // The access log and metrics say so as for a cache in memory.
    let lines = log_lines(b);
    let last = lines.last().expect("b logged the request");
    assert_eq!(
        (last["route"].as_str(), last["cacheHit"].as_str()),
        (Some("GET /items"), Some("true"))
    );
    assert_eq!(
        log_lines(a).last().expect("a logged")["cacheHit"].as_str(),
        Some("false")
    );
    let metrics = crate::metrics::metrics_text(&f.client, b.process.admin().expect("admin")).await;
    let hits: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("portico_cache_hits_total{"))
        .filter(|l| l.contains(r#"route="GET /items""#))
        .collect();
    assert!(
        hits.len() == 1 && hits[0].ends_with(" 1"),
        "one hit on b: {hits:?}"
    );

    // Key parameters keep answers apart across the fleet; others are ignored.
    let page2 = f.get(b, "/prod/items?page=2", &[]).await;
    assert_ne!(page2.call(), first.call());
    assert_eq!(
        f.get(a, "/prod/items?page=2", &[]).await.call(),
        page2.call()
    );
    let sorted = f.get(a, "/prod/items?page=1&sort=desc", &[]).await;
    assert_eq!(sorted.call(), first.call());
    assert_eq!(f.upstream.calls("/items?page=2"), 1);

    // Callers are kept apart (the route has an authorizer): each caller's answer is shared
    // by the fleet, and never reaches another caller.
    let as_caller = |sub: &'static str| [("authorization", sub)];
    let alice = f
        .get(a, "/prod/guarded", &as_caller("allow;sub=alice"))
        .await;
    assert_eq!(alice.status, 200, "{}", alice.body);
    let bob = f.get(b, "/prod/guarded", &as_caller("allow;sub=bob")).await;
    assert_ne!(bob.call(), alice.call());
    let alice_on_b = f
        .get(b, "/prod/guarded", &as_caller("allow;sub=alice"))
        .await;
    assert_eq!(alice_on_b.call(), alice.call());
    let bob_on_a = f.get(a, "/prod/guarded", &as_caller("allow;sub=bob")).await;
    assert_eq!(bob_on_a.call(), bob.call());
    assert_eq!(f.upstream.calls("/guarded"), 2);

    // `Cache-Control: max-age=0` from a caller whose policy allows
    // `execute-api:InvalidateCache` refreshes the fleet's entry; from one whose policy does
    // not, it is ignored (with AWS's default strategy's warning header).
    let refresh = |token: &'static str| [("authorization", token), ("cache-control", "max-age=0")];
    let refused = f.get(b, "/prod/guarded", &refresh("allow;sub=alice")).await;
    assert_eq!(refused.call(), alice.call());
    let refreshed = f
        .get(b, "/prod/guarded", &refresh("allow;sub=alice;invalidate"))
        .await;
    assert_ne!(refreshed.call(), alice.call());
    let alice_now = f
        .get(a, "/prod/guarded", &as_caller("allow;sub=alice"))
        .await;
    assert_eq!(alice_now.call(), refreshed.call());
    assert_eq!(f.upstream.calls("/guarded"), 3);

    // Each answer is one Redis key, expiring after the stage's TTL (300 s) by Redis's PX.
    let stored = f.stored();
    assert_eq!(stored.len(), 4, "{stored:?}");
    for key in &stored {
        let left: i64 = f.redis.command(&["PTTL", key]);
        assert!((1..=300_000).contains(&left), "{key}: {left} ms left");
        assert!(!key.contains("alice"), "callers are digested: {key}");
    }

    // A route's TTL (1 s) runs out for the whole fleet.
    let short = f.get(a, "/prod/short", &[]).await;
    assert_eq!(f.get(b, "/prod/short", &[]).await.call(), short.call());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let expired = f.get(b, "/prod/short", &[]).await;
    assert_ne!(expired.call(), short.call());
    assert_eq!(f.get(a, "/prod/short", &[]).await.call(), expired.call());
    assert_eq!(f.upstream.calls("/short"), 2);

    // Answers over 1,048,576 bytes are not cached, on Redis either.
    for member in [a, b] {
        assert_eq!(
            f.get(member, "/prod/big/1048577", &[]).await.body.len(),
            1_048_577
        );
        assert_eq!(
            f.get(member, "/prod/big/1048576", &[]).await.body.len(),
            1_048_576
        );
    }
    assert_eq!(f.upstream.calls("/big/1048577"), 2);
    assert_eq!(f.upstream.calls("/big/1048576"), 1);

    // A flush through one gateway empties the other's cache too (one generation for the
    // fleet, counted in Redis).
    assert_eq!(f.flush(a).await, 202);
    let generation: Option<String> = f
        .redis
        .command(&["GET", "portico:cache:{cachefleet/prod}:generation"]);
    assert_eq!(generation.as_deref(), Some("1"));
    let refetched = f.get(b, "/prod/items?page=1", &[]).await;
    assert_ne!(refetched.call(), first.call());
    assert_eq!(f.upstream.calls("/items?page=1"), 2);
    assert_eq!(
        f.get(a, "/prod/items?page=1", &[]).await.call(),
        refetched.call()
    );
    let alice_again = f
        .get(a, "/prod/guarded", &as_caller("allow;sub=alice"))
        .await;
    assert_ne!(alice_again.call(), alice.call());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_in_one_gateway_call_the_integration_once() {
    let f = Arc::new(Fleet::start().await);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let f = Arc::clone(&f);
        tasks.spawn(async move { f.get(&f.a, "/prod/slow", &[]).await });
    }
    let mut calls = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.expect("a client task");
        assert_eq!(answer.status, 200, "{}", answer.body);
        calls.push(answer.call());
    }
    assert_eq!(f.upstream.calls("/slow"), 1);
    assert!(calls.iter().all(|c| *c == calls[0]), "{calls:?}");
    // The other gateway finds it in Redis.
    assert_eq!(f.get(&f.b, "/prod/slow", &[]).await.call(), calls[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_integration_answers_and_the_cache_comes_back() {
    let mut f = Fleet::start().await;
    let cached = f.get(&f.a, "/prod/items?page=1", &[]).await;
    assert_eq!(
        f.get(&f.b, "/prod/items?page=1", &[]).await.call(),
        cached.call()
    );

    f.redis.stop();
    let mut calls = Vec::new();
    for i in 0..6 {
        let member = if i % 2 == 0 { &f.a } else { &f.b };
        let answer = f.get(member, "/prod/items?page=1", &[]).await;
        assert_eq!(
            answer.status, 200,
            "never a 5xx because of the cache: {}",
            answer.body
        );
        calls.push(answer.call());
    }
    // Every request was a miss, answered by the integration.
    assert_eq!(f.upstream.calls("/items?page=1"), 7, "{calls:?}");
    let misses = log_lines(&f.a)
        .iter()
        .filter(|l| l["cacheHit"].as_str() == Some("false"))
        .count();
    assert_eq!(misses, 4, "a's first request and its three without Redis");
    // Each gateway warns, but not once per request.
    for member in [&f.a, &f.b] {
        let log = member.process.log();
        let warnings = log.matches("response cache unavailable").count();
        assert!((1..3).contains(&warnings), "{warnings} warnings: {log}");
    }
    // A flush cannot reach the fleet: 503, not a false 202.
    assert_eq!(f.flush(&f.a).await, 503);

    // Redis is back (empty): the gateways find it again by themselves, and share hits again.
    f.redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let first = f.get(&f.a, "/prod/items?page=1", &[]).await;
        let second = f.get(&f.b, "/prod/items?page=1", &[]).await;
        assert_eq!((first.status, second.status), (200, 200));
        if first.call() == second.call() {
            break;
        }
        assert!(Instant::now() < deadline, "the cache did not come back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(f.flush(&f.b).await, 202);
}

#[test]
fn a_redis_cache_needs_a_redis_rate_store_and_no_size() {
    let api = |extra: &str| {
        format!(
            "name: t\nprotocol: rest\nroutes:\n  GET /a: {{ integration: {{ type: mock }} }}\n\
             stages:\n  prod: {{ cache: {{ enabled: true{extra} }} }}\n"
        )
    };
    let cases = [
        (api("") + "responseCache: { type: redis }\n", "responseCache.type"),
        (
            api(", sizeMb: 128")
                + "rateStore: { type: redis, url: 'redis://127.0.0.1:1' }\nresponseCache: { type: redis }\n",
            "stages.prod.cache.sizeMb",
        ),
        (
            api("") + "responseCache: { type: disk }\n",
            "responseCache.type",
        ),
        (
            "name: t\nroutes:\n  GET /a: { integration: { type: mock } }\nstages:\n  prod: {}\n\
             rateStore: { type: redis, url: 'redis://127.0.0.1:1' }\nresponseCache: { type: redis }\n"
                .to_owned(),
            "responseCache",
        ),
    ];
    let mut failures = Vec::new();
    for (text, key_path) in &cases {
        let loaded = ApiDefinition::from_str_as(text, Format::Yaml)
            .map_err(|e| e.to_string())
            .and_then(|definition| Gateway::new(&definition).map_err(|e| e.to_string()));
        match loaded {
            Err(message) if message.starts_with(&format!("{key_path}: ")) => {}
            other => failures.push(format!("{key_path}: {:?}", other.map(|_| "loaded"))),
        }
    }
    // Loading never connects: a Redis that is not there is no load error.
    let absent = api("")
        + "rateStore: { type: redis, url: 'redis://127.0.0.1:1' }\nresponseCache: { type: redis }\n";
    let definition = ApiDefinition::from_str_as(&absent, Format::Yaml).expect("parses");
    if let Err(e) = Gateway::new(&definition) {
        failures.push(format!("an absent Redis is a load error: {e}"));
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
