//! The verified-token cache: a repeated token costs one hash lookup instead of a signature
//! verification, until its `exp`. Entries belong to one generation of the authorizer's keys, so
//! a key change empties the cache and a token checked against replaced keys never slips back in.

use std::hash::{BuildHasher, Hasher};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use lru::LruCache;

use super::claims::VerifiedToken;

/// How many verified tokens an authorizer remembers.
const CACHE_CAPACITY: usize = 10_000;

/// Verified tokens by their bytes as sent (least recently used first out), for the keys of one
/// generation. Bytes, not text: a hit is found without checking the header's UTF-8.
pub(super) struct TokenCache(Mutex<Inner>);

/// The cache behind its lock.
struct Inner {
    generation: u64,
    entries: LruCache<Box<[u8]>, Arc<VerifiedToken>, TailHash>,
}

/// How many bytes at a token's end its hash reads.
const HASHED_TAIL: usize = 32;

/// Hashes a token by its length and its last [`HASHED_TAIL`] bytes, with hashbrown's own
/// hasher (randomly seeded). A signed token ends with its signature, so the tokens the cache
/// holds (verified ones only: a client cannot put one in) differ there, and a lookup compares
/// whole tokens anyway. foldhash hashed a 200-byte token in about 130 instructions a lookup
/// under callgrind, 32 bytes in about 30 (one round of its path for inputs over 16 bytes).
/// (A `Hasher` of our own because the cache is keyed by `[u8]`, whose `Hash` writes the
/// length, then every byte in one `write`.)
#[derive(Clone, Default)]
struct TailHash(foldhash::fast::RandomState);

impl BuildHasher for TailHash {
    type Hasher = TailHasher;

    fn build_hasher(&self) -> TailHasher {
        TailHasher(self.0.build_hasher())
    }
}

/// See [`TailHash`].
struct TailHasher(foldhash::fast::FoldHasher<'static>);

impl Hasher for TailHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0
            .write(&bytes[bytes.len().saturating_sub(HASHED_TAIL)..]);
    }

    fn write_usize(&mut self, length: usize) {
        self.0.write_usize(length);
    }

    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

impl TokenCache {
    /// An empty cache for tokens verified with the keys of `generation`.
    pub(super) fn new(generation: u64) -> Self {
        TokenCache(Mutex::new(Inner {
            generation,
            entries: LruCache::with_hasher(
                NonZeroUsize::new(CACHE_CAPACITY).unwrap_or(NonZeroUsize::MIN),
                TailHash::default(),
            ),
        }))
    }

    /// The cached verification of `token`, unless it has expired by `now`.
    pub(super) fn get(&self, token: &[u8], now: u64) -> Option<Arc<VerifiedToken>> {
        let mut cache = lock(self);
        match cache.entries.get(token) {
            Some(verified) if now < verified.expires_at() => Some(Arc::clone(verified)),
            Some(_) => {
                cache.entries.pop(token);
                None
            }
            None => None,
        }
    }

    /// Caches `verified`, checked against the keys of `generation`, unless it is expired or the
    /// keys changed since: a refresh that changed them while the token was being verified has
    /// cleared the cache, and a token checked against the old keys must not slip back in.
    pub(super) fn remember(
        &self,
        token: &str,
        verified: &Arc<VerifiedToken>,
        generation: u64,
        now: u64,
    ) {
        if now >= verified.expires_at() {
            return;
        }
        let mut cache = lock(self);
        if cache.generation == generation {
            cache
                .entries
                .put(token.as_bytes().into(), Arc::clone(verified));
        }
    }

    /// The keys changed: forgets every token and from now on caches only those verified with
    /// the keys of `generation`.
    pub(super) fn start_generation(&self, generation: u64) {
        let mut cache = lock(self);
        cache.generation = generation;
        cache.entries.clear();
    }

    /// Forgets every verified token (the keys stay).
    #[cfg(any(test, feature = "bench"))]
    pub(super) fn clear(&self) {
        lock(self).entries.clear();
    }
}

/// The cache stays usable after a panic elsewhere: it holds no invariant a panic can break.
fn lock(cache: &TokenCache) -> MutexGuard<'_, Inner> {
    cache.0.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jsonwebtoken::{Algorithm, EncodingKey};
    use serde_json::json;

    use super::super::claims::DEFAULT_LEEWAY_SECONDS;
    use super::super::fixtures::*;
    use super::super::{JwtAuthorizer, JwtRejection};
    use super::*;
    use crate::time::epoch_seconds_now;

    /// An authorizer that has verified (and cached) one RS256 token for a route needing
    /// `write`: the authorizer, the token, the route's scopes.
    async fn one_token_verified() -> (JwtAuthorizer, String, Vec<String>) {
        let auth = authorizer(all_jwks());
        let token = rs256(json!({}));
        let route = scopes(&["write"]);
        auth.authorize(Some(&token), &route).await.expect("valid");
        (auth, token, route)
    }

    #[tokio::test]
    async fn a_cache_hit_does_not_verify_again() {
        let (auth, token, route) = one_token_verified().await;
        assert_eq!(auth.verifications(), 1);

        // What a hit costs is measured in benches/ (`authorize/jwt_cached`), not here.
        for _ in 0..100 {
            auth.authorize(Some(&token), &route).await.expect("valid");
        }
        assert_eq!(
            auth.verifications(),
            1,
            "hits must not verify the signature"
        );
        // The scope check still runs on a hit.
        assert_eq!(
            auth.authorize(Some(&token), &scopes(&["admin"]))
                .await
                .err(),
            Some(JwtRejection::Forbidden)
        );
        auth.clear_cache();
        auth.authorize(Some(&token), &route).await.expect("valid");
        assert_eq!(auth.verifications(), 2, "a cleared cache verifies again");
    }

    /// A hit found by the header's bytes (`authorize_cached`) is the same decision the text's
    /// way gives; bytes the text's way would read differently (non-ASCII whitespace, an unseen
    /// or oversized token) miss, and the caller takes that way.
    #[tokio::test]
    async fn a_hit_by_the_headers_bytes_is_the_texts_decision() {
        let (auth, token, route) = one_token_verified().await;
        for raw in [
            token.clone(),
            format!("Bearer {token}"),
            format!("bearer   {token}"),
            format!("BEARER {token}  "),
            format!(" \t{token}"),
        ] {
            let by_bytes = auth.authorize_cached(raw.as_bytes(), &route);
            let by_text = auth.authorize_now(Some(&raw), &route);
            assert!(
                matches!((&by_bytes, &by_text), (Some(Ok(a)), Some(Ok(b))) if Arc::ptr_eq(a, b)),
                "{raw:?}: {by_bytes:?} / {by_text:?}"
            );
        }
        assert_eq!(
            auth.authorize_cached(format!("Bearer {token}").as_bytes(), &scopes(&["admin"]))
                .and_then(Result::err),
            Some(JwtRejection::Forbidden)
        );
        let nbsp = format!("\u{a0}{token}");
        assert!(auth.authorize_cached(nbsp.as_bytes(), &route).is_none());
        assert!(matches!(
            auth.authorize_now(Some(&nbsp), &route),
            Some(Ok(_))
        ));
        let unseen = rs256(json!({"sub": "someone else"}));
        assert!(auth.authorize_cached(unseen.as_bytes(), &route).is_none());
        let oversized = format!(
            "Bearer {token}{}",
            " ".repeat(super::super::MAX_TOKEN_BYTES)
        );
        assert!(auth
            .authorize_cached(oversized.as_bytes(), &route)
            .is_none());
        assert!(auth.authorize_cached(b"Bearer  ", &route).is_none());
        assert_eq!(auth.verifications(), 1, "only the first call verified");
    }

    /// Tokens that end alike (one hash for all) are still told apart: each finds its own
    /// entry, and one that was never cached finds none.
    #[test]
    fn tokens_with_the_same_tail_are_told_apart() {
        let cache = TokenCache::new(0);
        let now = epoch_seconds_now();
        let tail = "s".repeat(HASHED_TAIL);
        let token = |head: &str| format!("{head}.{tail}");
        let verified = |sub: &str| Arc::new(VerifiedToken::for_tests(sub, now + 100));
        let (a, b) = (verified("a"), verified("b"));
        cache.remember(&token("header.a"), &a, 0, now);
        cache.remember(&token("header.b"), &b, 0, now);
        let found = |head: &str| cache.get(token(head).as_bytes(), now);
        assert!(found("header.a").is_some_and(|hit| Arc::ptr_eq(&hit, &a)));
        assert!(found("header.b").is_some_and(|hit| Arc::ptr_eq(&hit, &b)));
        assert!(found("header.c").is_none());
        assert!(cache.get(tail.as_bytes(), now).is_none(), "the tail alone");
    }

    #[tokio::test]
    async fn failed_tokens_are_not_cached() {
        let auth = authorizer(all_jwks());
        let token = rs256(json!({"aud": "x"}));
        for _ in 0..3 {
            assert!(auth.authorize(Some(&token), &[]).await.is_err());
        }
        assert_eq!(auth.verifications(), 3);
    }

    #[tokio::test]
    async fn the_cache_is_never_used_at_or_after_exp() {
        let now = epoch_seconds_now();
        let strict = compile(&definition(
            json!({ "keys": all_jwks() }),
            json!({"leewaySeconds": 0}),
        ))
        .expect("compiles");
        let token = rs256(json!({"exp": now + 100}));
        strict
            .authorize_at(Some(&token), &[], now)
            .await
            .expect("valid");
        strict
            .authorize_at(Some(&token), &[], now + 99)
            .await
            .expect("cached");
        assert_eq!(strict.verifications(), 1);
        assert!(matches!(
            strict.authorize_at(Some(&token), &[], now + 100).await,
            Err(JwtRejection::Unauthorized(_))
        ));

        // With leeway the token still passes just after exp, but by a fresh verification.
        let lenient = authorizer(all_jwks());
        lenient
            .authorize_at(Some(&token), &[], now)
            .await
            .expect("valid");
        lenient
            .authorize_at(Some(&token), &[], now + 100)
            .await
            .expect("within leeway");
        lenient
            .authorize_at(Some(&token), &[], now + 101)
            .await
            .expect("within leeway");
        assert_eq!(lenient.verifications(), 3);
        assert!(lenient
            .authorize_at(Some(&token), &[], now + 100 + DEFAULT_LEEWAY_SECONDS)
            .await
            .is_err());
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let auth = authorizer(all_jwks());
        let hmac = EncodingKey::from_secret(&keys().hmac_secret);
        let first = sign(
            Algorithm::HS256,
            Some("hmac"),
            &hmac,
            &claims(json!({"n": 0})),
        );
        auth.authorize(Some(&first), &[]).await.expect("valid");
        for n in 1..=CACHE_CAPACITY {
            let token = sign(
                Algorithm::HS256,
                Some("hmac"),
                &hmac,
                &claims(json!({"n": n})),
            );
            auth.authorize(Some(&token), &[]).await.expect("valid");
        }
        assert_eq!(lock(&auth.cache).entries.len(), CACHE_CAPACITY);
        let before = auth.verifications();
        auth.authorize(Some(&first), &[]).await.expect("valid");
        assert_eq!(
            auth.verifications(),
            before + 1,
            "the oldest entry was evicted"
        );
    }

    #[tokio::test]
    async fn a_token_verified_against_replaced_keys_is_not_cached() {
        let k = keys();
        let fetcher = ScriptedFetcher::new(vec![
            jwks_document(&[with(&k.rsa_jwk, json!({"kid": "A"}))]),
            jwks_document(&[with(&k.ed_jwk, json!({"kid": "B"}))]),
        ]);
        let mut auth = remote_authorizer(&fetcher, json!({}));
        remote(&mut auth).min_refetch = Duration::ZERO;
        let old = rs_a(json!({}));
        let verified = auth.authorize(Some(&old), &[]).await.expect("kid A");
        let old_generation = lock(&auth.cache).generation;
        let new = sign(Algorithm::EdDSA, Some("B"), &k.ed, &claims(json!({})));
        auth.authorize(Some(&new), &[]).await.expect("kid B");
        assert_ne!(lock(&auth.cache).generation, old_generation);
        // As if `old`'s verification against the first set finished only now.
        auth.cache
            .remember(&old, &verified, old_generation, epoch_seconds_now());
        assert!(auth
            .cache
            .get(old.as_bytes(), epoch_seconds_now())
            .is_none());
        assert!(auth.authorize(Some(&old), &[]).await.is_err(), "A is gone");
    }
}
