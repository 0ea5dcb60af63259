//! A JWKS URL's key set: fetched through the embedder's [`JwksFetcher`] when a token first needs
//! it, refreshed every `refreshSeconds` and when a token names a `kid` the set lacks (at most once
//! per [`MIN_REFETCH_INTERVAL`]), with concurrent requests sharing one fetch. Stale keys keep
//! verifying while a refresh fails.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use super::cache::TokenCache;
use super::keys::KeySet;
use crate::error::{Error, KeyPath};

/// Seconds between refreshes of a JWKS URL when the definition sets no `refreshSeconds`.
const DEFAULT_REFRESH_SECONDS: u64 = 3600;
/// A JWKS URL is fetched at most once per this interval, however many tokens name unknown
/// `kid`s, so a flood of made-up key ids cannot hammer the identity provider.
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Fetched JWKS documents longer than this are refused.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Fetches JWKS documents for JWT authorizers whose definition names a `jwks.url`; supplied by
/// the embedder (Portico itself never opens sockets).
///
/// A fetch should bound its own time: requests that need a key set nobody has fetched yet (the
/// first ones, or those naming a `kid` the current set lacks) wait for it.
///
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
///
/// use portico::{JwksFetchError, JwksFetcher};
///
/// /// Serves one JWKS document, whatever the URL.
/// struct Fixed(String);
///
/// impl JwksFetcher for Fixed {
///     fn fetch<'a>(
///         &'a self,
///         url: &'a str,
///     ) -> Pin<Box<dyn Future<Output = Result<String, JwksFetchError>> + Send + 'a>> {
///         Box::pin(async move {
///             if url.starts_with("https://") {
///                 Ok(self.0.clone())
///             } else {
///                 Err(JwksFetchError::new(format!("not an https URL: {url}")))
///             }
///         })
///     }
/// }
/// ```
pub trait JwksFetcher: Send + Sync + 'static {
    /// The JWKS document (JSON text, `{"keys":[...]}`) at `url`.
    fn fetch<'a>(
        &'a self,
        url: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String, JwksFetchError>> + Send + 'a>>;
}

/// Why a [`JwksFetcher`] could not fetch a JWKS document.
///
/// Its message is logged, and it is the reason given for the 401s answered while no key set is
/// available; it should say what failed (`connection refused`, `HTTP 503`), never a secret.
#[derive(Debug)]
#[non_exhaustive]
pub struct JwksFetchError {
    cause: Box<dyn std::error::Error + Send + Sync>,
}

impl JwksFetchError {
    /// A fetch that failed because of `cause`: an HTTP client's or an I/O error, or a message
    /// (`&str` and `String` convert).
    pub fn new(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        JwksFetchError {
            cause: cause.into(),
        }
    }
}

/// The cause's own message: the error is a transparent wrapper.
impl fmt::Display for JwksFetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.cause, f)
    }
}

/// Transparent, like its `Display`: the cause's source, so no message is reported twice.
impl std::error::Error for JwksFetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.source()
    }
}

/// A JWKS URL's keys and the bookkeeping of their refreshes.
pub(super) struct RemoteKeys {
    url: String,
    fetcher: Arc<dyn JwksFetcher>,
    /// How long a fetched set is fresh (`refreshSeconds`).
    refresh_every: Duration,
    /// The rate limit on fetches ([`MIN_REFETCH_INTERVAL`]); `pub(super)` because the cache's
    /// tests lift it (set it to zero) to change keys at will.
    pub(super) min_refetch: Duration,
    current: ArcSwapOption<KeySet>,
    /// Held while fetching, so that concurrent requests share one fetch.
    refresh: tokio::sync::Mutex<RefreshState>,
}

/// When the URL was last fetched, and how that went.
#[derive(Default)]
struct RefreshState {
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

impl RemoteKeys {
    /// The key set at `url` (`jwks.url`), refreshed every `refresh_seconds` (`jwks.refreshSeconds`)
    /// and fetched through `fetcher`; `at` is `authorizers.NAME.jwks`. Nothing is fetched yet.
    pub(super) fn compile(
        url: &str,
        refresh_seconds: Option<u64>,
        fetcher: Option<Arc<dyn JwksFetcher>>,
        at: &KeyPath,
    ) -> Result<Self, Error> {
        if url.is_empty() {
            return Err(Error::config(at.key("url"), "must not be empty"));
        }
        let fetcher = fetcher.ok_or_else(|| {
            Error::config(
                at.key("url"),
                "a JWKS url needs a JwksFetcher from the embedder (GatewayBuilder::jwks_fetcher)",
            )
        })?;
        let refresh_seconds = refresh_seconds.unwrap_or(DEFAULT_REFRESH_SECONDS);
        if refresh_seconds == 0 {
            return Err(Error::config(at.key("refreshSeconds"), "at least 1"));
        }
        Ok(RemoteKeys {
            url: url.to_owned(),
            fetcher,
            refresh_every: Duration::from_secs(refresh_seconds),
            min_refetch: MIN_REFETCH_INTERVAL,
            current: ArcSwapOption::empty(),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
        })
    }

    /// The key set to verify a token naming `kid` with: the current one while it is fresh and
    /// knows the `kid`, else a refreshed one (rate-limited; concurrent callers share a fetch).
    /// A refresh that changes the keys starts `cache` over. The error is a 401's reason.
    pub(super) async fn keys_for(
        &self,
        kid: Option<&str>,
        cache: &TokenCache,
    ) -> Result<Arc<KeySet>, String> {
        let seen = self.current.load_full();
        let usable = match &seen {
            Some(set) => {
                let fresh = set.loaded_at().elapsed() < self.refresh_every;
                let known = kid.is_none_or(|kid| set.has_kid(kid));
                if fresh && known {
                    return Ok(Arc::clone(set));
                }
                known.then(|| Arc::clone(set))
            }
            None => None,
        };
        let mut state = match usable {
            // Merely stale keys still verify: don't queue behind a refresh in progress.
            Some(stale) => match self.refresh.try_lock() {
                Ok(state) => state,
                Err(_) => return Ok(stale),
            },
            None => self.refresh.lock().await,
        };
        let current = self.current.load_full();
        let refreshed_meanwhile = match (&seen, &current) {
            (Some(seen), Some(current)) => !Arc::ptr_eq(seen, current),
            (None, current) => current.is_some(),
            (Some(_), None) => false,
        };
        if refreshed_meanwhile {
            return current.ok_or_else(|| unavailable(&state));
        }
        if state
            .last_attempt
            .is_some_and(|last| last.elapsed() < self.min_refetch)
        {
            return current.ok_or_else(|| unavailable(&state));
        }
        state.last_attempt = Some(Instant::now());
        match self.fetch(current.as_deref()).await {
            Ok(set) => {
                state.last_error = None;
                let set = Arc::new(set);
                self.current.store(Some(Arc::clone(&set)));
                let changed = current
                    .as_ref()
                    .is_none_or(|current| current.generation() != set.generation());
                if changed {
                    cache.start_generation(set.generation());
                }
                Ok(set)
            }
            Err(error) => {
                tracing::warn!(url = %self.url, "cannot refresh the JWKS: {error}");
                state.last_error = Some(error);
                current.ok_or_else(|| unavailable(&state))
            }
        }
    }

    /// Fetches and reads the JWKS, as the set that follows `current`.
    async fn fetch(&self, current: Option<&KeySet>) -> Result<KeySet, String> {
        let text = self
            .fetcher
            .fetch(&self.url)
            .await
            .map_err(|error| error.to_string())?;
        if text.len() > MAX_JWKS_BYTES {
            return Err(format!("the JWKS is longer than {MAX_JWKS_BYTES} bytes"));
        }
        KeySet::fetched(&text, current)
    }
}

/// The 401's reason when a JWKS URL has never been fetched successfully.
fn unavailable(state: &RefreshState) -> String {
    match &state.last_error {
        Some(error) => format!("the signing keys are unavailable: {error}"),
        None => "the signing keys are unavailable".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::Algorithm;
    use serde_json::json;

    use super::super::fixtures::*;
    use super::super::JwtRejection;
    use super::*;

    #[tokio::test]
    async fn rotated_keys_are_picked_up_and_removed_keys_stop_verifying() {
        let k = keys();
        let a = with(&k.rsa_jwk, json!({"kid": "A"}));
        let b = with(&k.ed_jwk, json!({"kid": "B"}));
        let fetcher = ScriptedFetcher::new(vec![
            jwks_document(std::slice::from_ref(&a)),
            jwks_document(&[a, b.clone()]),
            jwks_document(&[b]),
        ]);
        let mut auth = remote_authorizer(&fetcher, json!({}));
        remote(&mut auth).min_refetch = Duration::ZERO;
        let old = sign(Algorithm::RS256, Some("A"), &k.rsa, &claims(json!({})));
        let new = sign(Algorithm::EdDSA, Some("B"), &k.ed, &claims(json!({})));
        let stranger = sign(Algorithm::EdDSA, Some("C"), &k.ed, &claims(json!({})));

        assert_eq!(fetcher.calls(), 0, "fetched when first needed");
        auth.authorize(Some(&old), &[]).await.expect("kid A");
        auth.authorize(Some(&old), &[])
            .await
            .expect("kid A, cached");
        assert_eq!((fetcher.calls(), auth.verifications()), (1, 1));

        // A new kid triggers a refresh; the set changed, so the cache starts over, and the old
        // key (still published) keeps verifying.
        auth.authorize(Some(&new), &[])
            .await
            .expect("kid B after a refresh");
        assert_eq!(fetcher.calls(), 2);
        auth.authorize(Some(&old), &[])
            .await
            .expect("kid A still published");
        assert_eq!(
            auth.verifications(),
            3,
            "the cache was cleared by the key change"
        );

        // Another unknown kid: the third set drops A.
        assert!(auth.authorize(Some(&stranger), &[]).await.is_err());
        assert_eq!(fetcher.calls(), 3);
        assert!(
            auth.authorize(Some(&old), &[]).await.is_err(),
            "a token whose key was withdrawn no longer passes, cached or not"
        );
        auth.authorize(Some(&new), &[]).await.expect("kid B");
    }

    #[tokio::test]
    async fn cached_tokens_of_an_old_kid_keep_working_while_new_kids_refresh() {
        let k = keys();
        let a = with(&k.rsa_jwk, json!({"kid": "A"}));
        let b = with(&k.ed_jwk, json!({"kid": "B"}));
        let fetcher = ScriptedFetcher::new(vec![
            jwks_document(std::slice::from_ref(&a)),
            jwks_document(&[a, b]),
        ]);
        let auth = remote_authorizer(&fetcher, json!({}));
        let old = sign(Algorithm::RS256, Some("A"), &k.rsa, &claims(json!({})));
        let new = sign(Algorithm::EdDSA, Some("B"), &k.ed, &claims(json!({})));
        auth.authorize(Some(&old), &[]).await.expect("kid A");
        // Within the rate limit, B is not fetched yet; A's cached token is unaffected.
        assert!(auth.authorize(Some(&new), &[]).await.is_err());
        auth.authorize(Some(&old), &[])
            .await
            .expect("kid A, cached");
        assert_eq!((fetcher.calls(), auth.verifications()), (1, 1));
    }

    #[tokio::test]
    async fn unknown_kids_refresh_at_most_once_per_interval() {
        let k = keys();
        let fetcher = ScriptedFetcher::new(vec![jwks_document(&[with(
            &k.rsa_jwk,
            json!({"kid": "A"}),
        )])]);
        let auth = remote_authorizer(&fetcher, json!({}));
        let good = sign(Algorithm::RS256, Some("A"), &k.rsa, &claims(json!({})));
        auth.authorize(Some(&good), &[]).await.expect("kid A");
        for n in 0..200 {
            let token = sign(
                Algorithm::RS256,
                Some(&format!("random-{n}")),
                &k.rsa,
                &claims(json!({})),
            );
            assert!(auth.authorize(Some(&token), &[]).await.is_err());
        }
        assert_eq!(
            fetcher.calls(),
            1,
            "a flood of unknown kids causes no fetch"
        );
        assert_eq!(auth.verifications(), 1, "nor any signature verification");
    }

    #[tokio::test]
    async fn keys_are_refreshed_after_refresh_seconds() {
        let k = keys();
        let fetcher = ScriptedFetcher::new(vec![
            jwks_document(&[with(&k.rsa_jwk, json!({"kid": "A"}))]),
            jwks_document(&[with(&k.ed_jwk, json!({"kid": "A"}))]),
        ]);
        let mut auth = remote_authorizer(&fetcher, json!({}));
        let rsa = sign(Algorithm::RS256, Some("A"), &k.rsa, &claims(json!({})));
        let ed = sign(Algorithm::EdDSA, Some("A"), &k.ed, &claims(json!({})));
        auth.authorize(Some(&rsa), &[]).await.expect("RSA under A");
        assert!(
            auth.authorize(Some(&ed), &[]).await.is_err(),
            "A is RSA for now"
        );
        assert_eq!(fetcher.calls(), 1);
        // Pretend refreshSeconds (and the rate limit) have passed.
        remote(&mut auth).refresh_every = Duration::ZERO;
        remote(&mut auth).min_refetch = Duration::ZERO;
        auth.authorize(Some(&ed), &[])
            .await
            .expect("A is Ed25519 now");
        assert_eq!(fetcher.calls(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_requests_share_one_fetch() {
        let k = keys();
        let mut fetcher =
            ScriptedFetcher::new(vec![jwks_document(&[with(&k.ed_jwk, json!({"kid": "A"}))])]);
        Arc::get_mut(&mut fetcher).expect("unshared").delay = Duration::from_millis(100);
        let mut auth = remote_authorizer(&fetcher, json!({}));
        // Without the rate limit, only sharing the fetch in progress keeps this at one call.
        remote(&mut auth).min_refetch = Duration::ZERO;
        let auth = Arc::new(auth);
        let tasks: Vec<_> = (0..16)
            .map(|n| {
                let auth = Arc::clone(&auth);
                let token = sign(Algorithm::EdDSA, Some("A"), &k.ed, &claims(json!({"n": n})));
                tokio::spawn(async move { auth.authorize(Some(&token), &[]).await.map(|_| ()) })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.expect("joins"), Ok(()));
        }
        assert_eq!(fetcher.calls(), 1);
    }

    #[tokio::test]
    async fn a_failed_fetch_is_a_clear_401_and_is_rate_limited() {
        let k = keys();
        let fetcher = ScriptedFetcher::new(vec![
            Err("connection refused".to_owned()),
            Ok("<html>not json</html>".to_owned()),
            jwks_document(&[
                json!({"kty": "RSA", "kid": "bad"}),
                with(&k.rsa_jwk, json!({"kid": "A"})),
            ]),
        ]);
        let mut auth = remote_authorizer(&fetcher, json!({}));
        let token = sign(Algorithm::RS256, Some("A"), &k.rsa, &claims(json!({})));
        let refusal = auth.authorize(Some(&token), &[]).await.err();
        assert_eq!(
            refusal,
            Some(JwtRejection::Unauthorized(
                "the signing keys are unavailable: connection refused".into()
            ))
        );
        assert!(auth.authorize(Some(&token), &[]).await.is_err());
        assert_eq!(fetcher.calls(), 1, "no second fetch within the interval");

        remote(&mut auth).min_refetch = Duration::ZERO;
        match auth.authorize(Some(&token), &[]).await {
            Err(JwtRejection::Unauthorized(reason)) => {
                assert!(reason.contains("not JSON"), "{reason}")
            }
            other => panic!("expected a 401, got {other:?}"),
        }
        // A fetched set skips the keys it cannot use instead of failing as a whole.
        auth.authorize(Some(&token), &[]).await.expect("kid A");
        assert_eq!(fetcher.calls(), 3);
    }

    #[test]
    fn a_fetch_error_reads_as_its_cause() {
        let error = JwksFetchError::new("connection refused");
        assert_eq!(error.to_string(), "connection refused");
        assert!(std::error::Error::source(&error).is_none());
        let timeout = std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out after 5 s");
        let error = JwksFetchError::new(timeout);
        assert_eq!(error.to_string(), "timed out after 5 s");
    }

    #[tokio::test]
    async fn stale_keys_keep_working_when_a_refresh_fails() {
        let k = keys();
        let fetcher = ScriptedFetcher::new(vec![
            jwks_document(&[with(&k.rsa_jwk, json!({"kid": "A"}))]),
            Err("timed out".to_owned()),
        ]);
        let mut auth = remote_authorizer(
            &fetcher,
            json!({"jwks": {"url": "https://issuer.example.com/jwks.json", "refreshSeconds": 60}}),
        );
        auth.authorize(Some(&rs_a(json!({"n": 1}))), &[])
            .await
            .expect("kid A");
        remote(&mut auth).refresh_every = Duration::ZERO;
        remote(&mut auth).min_refetch = Duration::ZERO;
        auth.authorize(Some(&rs_a(json!({"n": 2}))), &[])
            .await
            .expect("stale but usable");
        assert_eq!(fetcher.calls(), 2);
    }
}
