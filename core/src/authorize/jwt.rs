//! JWT authorizers with HTTP API semantics.
//!
//! A token (optionally prefixed with `Bearer `) is verified against the authorizer's key set (a
//! JWKS file, inline JWKs, or a JWKS URL fetched through the embedder's [`JwksFetcher`]), then
//! its claims against the authorizer (`iss`, `aud` or `client_id`, `exp`, `nbf`, `iat`) and the
//! route (`scope`/`scp`: at least one of the route's scopes), as API Gateway does.
//!
//! The signing algorithm comes from the key, never from the token alone: a key allows its `alg`,
//! or without one the algorithms of its type and curve; HMAC only from a configured `oct` key.
//! Verified tokens are cached by their text until their `exp`, so a repeated token costs one
//! hash lookup; the scope check runs on every request because it depends on the route.

use std::future::Future;
use std::num::NonZeroUsize;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lru::LruCache;
use serde_json::{Map, Value};

use crate::config::{AuthorizerDefinition, JwksDefinition};
use crate::error::{Error, KeyPath};

/// Tokens longer than this are refused without being parsed.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Clock skew allowed on `exp`, `nbf` and `iat` when the definition sets no `leewaySeconds`.
pub(crate) const DEFAULT_LEEWAY_SECONDS: u64 = 30;
/// The largest `leewaySeconds` accepted: more would keep expired tokens alive for long.
const MAX_LEEWAY_SECONDS: u64 = 300;
/// Seconds between refreshes of a JWKS URL when the definition sets no `refreshSeconds`.
const DEFAULT_REFRESH_SECONDS: u64 = 3600;
/// A JWKS URL is fetched at most once per this interval, however many tokens name unknown
/// `kid`s, so a flood of made-up key ids cannot hammer the identity provider.
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// How many verified tokens an authorizer remembers.
pub(crate) const CACHE_CAPACITY: usize = 10_000;
/// Fetched JWKS documents longer than this are refused.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// RSA moduli shorter than this are refused (NIST's floor since 2013).
const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus the verifier accepts.
const MAX_RSA_BITS: usize = 4096;
/// The RSA public exponents that make sense: odd, at least 3, below 2^33.
const MAX_RSA_EXPONENT: u64 = (1 << 33) - 1;

/// What an RSA key verifies when its JWK names no `alg`.
const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];
/// What an `oct` key verifies when its JWK names no `alg` (as far as its length allows).
const HMAC_ALGORITHMS: [Algorithm; 3] = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

/// Fetches JWKS documents for JWT authorizers whose definition names a `jwks.url`; supplied by
/// the embedder (Portico itself never opens sockets).
///
/// A fetch should bound its own time: requests that need a key set nobody has fetched yet (the
/// first ones, or those naming a `kid` the current set lacks) wait for it.
pub trait JwksFetcher: Send + Sync + 'static {
    /// The JWKS document (JSON text, `{"keys":[...]}`) at `url`.
    fn fetch<'a>(
        &'a self,
        url: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;
}

/// Why a JWT authorizer refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JwtRejection {
    /// 401 `{"message":"Unauthorized"}`: no token, or one that does not verify. The reason is
    /// for the log (and a `www-authenticate` error description); it never quotes the token.
    #[error("{0}")]
    Unauthorized(String),
    /// 403 `{"message":"Forbidden"}`: a valid token without any of the route's scopes.
    #[error("the token has none of the route's scopes")]
    Forbidden,
}

/// Shorthand for a 401 with a fixed reason.
fn unauthorized(reason: &str) -> JwtRejection {
    JwtRejection::Unauthorized(reason.to_owned())
}

/// What a verified token established.
#[derive(Debug)]
pub(crate) struct VerifiedToken {
    claims: Map<String, Value>,
    scopes: Vec<String>,
    expires_at: u64,
}

impl VerifiedToken {
    /// The token's claims, as it carried them.
    pub(crate) fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The scopes the token grants (`scope`, space-separated, and `scp`, a string or a list).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The token's `sub`, or `""` without one.
    pub(crate) fn principal_id(&self) -> &str {
        self.claims.get("sub").and_then(Value::as_str).unwrap_or("")
    }

    /// The token's `exp` (Unix seconds).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// API Gateway's rule: with scopes on the route, the token needs at least one of them.
    fn grants_any(&self, required: &[String]) -> bool {
        required.is_empty() || required.iter().any(|scope| self.scopes.contains(scope))
    }
}

/// A compiled JWT authorizer: its expectations, its keys and its verified-token cache.
pub(crate) struct JwtAuthorizer {
    issuer: String,
    audience: Vec<String>,
    leeway: u64,
    keys: KeySource,
    cache: Mutex<TokenCache>,
    /// Signature verifications performed (cache misses that got as far as a key).
    verifications: AtomicU64,
}

/// Verified tokens by their text, for the key set of one generation.
struct TokenCache {
    generation: u64,
    entries: LruCache<String, Arc<VerifiedToken>>,
}

/// Where an authorizer's keys come from.
enum KeySource {
    /// A JWKS file or inline JWKs, read once when the definition is compiled.
    Fixed(Arc<KeySet>),
    /// A JWKS URL, fetched when first needed and refreshed.
    Remote(RemoteKeys),
}

/// One version of an authorizer's keys.
struct KeySet {
    keys: Vec<JwtKey>,
    /// Bumped whenever the keys change; cached tokens belong to one generation.
    generation: u64,
    /// The JWKs the set was built from, to tell whether a refresh changed anything.
    jwks: Vec<Value>,
    loaded_at: Instant,
}

/// A verification key and the algorithms it may verify, each with its (signature-only)
/// validation settings.
struct JwtKey {
    kid: Option<String>,
    key: DecodingKey,
    algorithms: Vec<(Algorithm, Validation)>,
}

/// A JWKS URL's keys and the bookkeeping of their refreshes.
struct RemoteKeys {
    url: String,
    fetcher: Arc<dyn JwksFetcher>,
    refresh_every: Duration,
    min_refetch: Duration,
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

impl JwtAuthorizer {
    /// Compiles a `jwt` authorizer definition; `at` is the authorizer's key path
    /// (`authorizers.cognito`) for errors. A `jwks.path` is read (relative to `base_dir`) now;
    /// a `jwks.url` is fetched through `fetcher` when the first token needs it.
    pub(crate) fn compile(
        definition: &AuthorizerDefinition,
        base_dir: &Path,
        fetcher: Option<Arc<dyn JwksFetcher>>,
        at: &KeyPath,
    ) -> Result<Self, Error> {
        let issuer = match definition.issuer.as_deref() {
            Some(issuer) if !issuer.is_empty() => issuer.to_owned(),
            _ => {
                return Err(Error::config(
                    at.key("issuer"),
                    "required for JWT authorizers: the `iss` every token must carry",
                ))
            }
        };
        if definition.audience.is_empty() {
            return Err(Error::config(
                at.key("audience"),
                "required for JWT authorizers: the `aud` (or `client_id`) values accepted",
            ));
        }
        if let Some(i) = definition.audience.iter().position(String::is_empty) {
            return Err(Error::config(
                at.key("audience").index(i),
                "an audience must not be empty",
            ));
        }
        let leeway = definition.leeway_seconds.unwrap_or(DEFAULT_LEEWAY_SECONDS);
        if leeway > MAX_LEEWAY_SECONDS {
            return Err(Error::config(
                at.key("leewaySeconds"),
                format!("at most {MAX_LEEWAY_SECONDS} seconds"),
            ));
        }
        let jwks_at = at.key("jwks");
        let jwks = definition.jwks.as_ref().ok_or_else(|| {
            Error::config(
                jwks_at.clone(),
                "required for JWT authorizers: one of path, keys or url",
            )
        })?;
        let keys = KeySource::compile(jwks, base_dir, fetcher, &jwks_at)?;
        let generation = match &keys {
            KeySource::Fixed(set) => set.generation,
            KeySource::Remote(_) => 0,
        };
        Ok(JwtAuthorizer {
            issuer,
            audience: definition.audience.clone(),
            leeway,
            keys,
            cache: Mutex::new(TokenCache {
                generation,
                entries: LruCache::new(
                    NonZeroUsize::new(CACHE_CAPACITY).unwrap_or(NonZeroUsize::MIN),
                ),
            }),
            verifications: AtomicU64::new(0),
        })
    }

    /// `token`: the identity source's value as sent (`None` when it is missing);
    /// `required_scopes`: the route's `authorizationScopes`.
    pub(crate) async fn authorize(
        &self,
        token: Option<&str>,
        required_scopes: &[String],
    ) -> Result<Arc<VerifiedToken>, JwtRejection> {
        self.authorize_at(token, required_scopes, unix_now()).await
    }

    /// [`Self::authorize`] at `now` (Unix seconds).
    async fn authorize_at(
        &self,
        token: Option<&str>,
        required_scopes: &[String],
        now: u64,
    ) -> Result<Arc<VerifiedToken>, JwtRejection> {
        let token = bare_token(token)?;
        let verified = match self.cached(token, now) {
            Some(verified) => verified,
            // Boxed: verification may wait for a key fetch, and its future would otherwise make
            // every request's future (cache hits included) larger to move around.
            None => Box::pin(self.verify(token, now)).await?,
        };
        if verified.grants_any(required_scopes) {
            Ok(verified)
        } else {
            Err(JwtRejection::Forbidden)
        }
    }

    /// The cached verification of `token`, unless it has expired by `now`.
    fn cached(&self, token: &str, now: u64) -> Option<Arc<VerifiedToken>> {
        let mut cache = lock(&self.cache);
        match cache.entries.get(token) {
            Some(verified) if now < verified.expires_at => Some(Arc::clone(verified)),
            Some(_) => {
                cache.entries.pop(token);
                None
            }
            None => None,
        }
    }

    /// Verifies `token` (signature, then claims) and caches the result.
    async fn verify(&self, token: &str, now: u64) -> Result<Arc<VerifiedToken>, JwtRejection> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauthorized("the token is not a well-formed JWT"))?;
        if header.crit.is_some() {
            // RFC 7515 §4.1.11: extensions the recipient does not understand invalidate the JWS.
            return Err(unauthorized(
                "the token names critical header parameters this gateway does not understand",
            ));
        }
        let kid = header.kid.as_deref();
        let set = match &self.keys {
            KeySource::Fixed(set) => Arc::clone(set),
            KeySource::Remote(remote) => remote.keys_for(kid, &self.cache).await?,
        };
        let (key, validation) = set.select(kid, header.alg)?;
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, key, validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => unauthorized("the token's signature is not valid"),
                ErrorKind::InvalidAlgorithm => {
                    unauthorized("the token's algorithm is not allowed for its key")
                }
                _ => unauthorized("the token is not a well-formed JWT"),
            })?
            .claims;
        let expires_at = self.check_claims(&claims, now)?;
        let verified = Arc::new(VerifiedToken {
            scopes: scopes_of(&claims),
            claims,
            expires_at,
        });
        self.remember(token, &verified, set.generation, now);
        Ok(verified)
    }

    /// Caches `verified`, checked against the keys of `generation`, unless it is expired or the
    /// keys changed since: a refresh that changed them while the token was being verified has
    /// cleared the cache, and a token checked against the old keys must not slip back in.
    fn remember(&self, token: &str, verified: &Arc<VerifiedToken>, generation: u64, now: u64) {
        if now >= verified.expires_at {
            return;
        }
        let mut cache = lock(&self.cache);
        if cache.generation == generation {
            cache.entries.put(token.to_owned(), Arc::clone(verified));
        }
    }

    /// API Gateway's claim checks, in its order; answers the token's `exp`.
    fn check_claims(&self, claims: &Map<String, Value>, now: u64) -> Result<u64, JwtRejection> {
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(unauthorized("the token's issuer is not valid"));
        }
        // `aud` when present, else `client_id` (Cognito access tokens carry no `aud`).
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => self.audience.contains(aud),
            Some(Value::Array(auds)) => auds
                .iter()
                .filter_map(Value::as_str)
                .any(|aud| self.audience.iter().any(|a| a == aud)),
            Some(_) => false,
            None => claims
                .get("client_id")
                .and_then(Value::as_str)
                .is_some_and(|id| self.audience.iter().any(|a| a == id)),
        };
        if !audience_ok {
            return Err(unauthorized("the token's audience is not valid"));
        }
        let exp = match claims.get("exp") {
            None => return Err(unauthorized("the token has no expiry (exp)")),
            Some(exp) => seconds(exp, f64::floor)
                .ok_or_else(|| unauthorized("the token's expiry (exp) is not a number"))?,
        };
        if now >= exp.saturating_add(self.leeway) {
            return Err(unauthorized("the token has expired"));
        }
        let not_in_future = |claim: &str| match claims.get(claim) {
            None => Ok(()),
            Some(value) => match seconds(value, f64::ceil) {
                Some(at) if at <= now.saturating_add(self.leeway) => Ok(()),
                Some(_) => Err(()),
                None => Err(()),
            },
        };
        if not_in_future("nbf").is_err() {
            return Err(unauthorized("the token is not valid yet (nbf)"));
        }
        if not_in_future("iat").is_err() {
            return Err(unauthorized(
                "the token's issue time (iat) is in the future",
            ));
        }
        Ok(exp)
    }

    /// Forgets every verified token (the keys stay): the next request with each token verifies
    /// it again.
    pub(crate) fn clear_cache(&self) {
        lock(&self.cache).entries.clear();
    }

    /// Signature verifications performed so far.
    #[cfg(test)]
    fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }
}

impl KeySource {
    /// Reads `jwks` (exactly one of path, keys or url); `at` is `authorizers.NAME.jwks`.
    fn compile(
        jwks: &JwksDefinition,
        base_dir: &Path,
        fetcher: Option<Arc<dyn JwksFetcher>>,
        at: &KeyPath,
    ) -> Result<Self, Error> {
        let given = [jwks.path.is_some(), jwks.keys.is_some(), jwks.url.is_some()];
        if given.iter().filter(|given| **given).count() != 1 {
            return Err(Error::config(
                at.clone(),
                "exactly one of path (a JWKS file), keys (inline JWKs) or url",
            ));
        }
        if jwks.refresh_seconds.is_some() && jwks.url.is_none() {
            return Err(Error::config(
                at.key("refreshSeconds"),
                "only applies to a jwks url",
            ));
        }
        if let Some(path) = &jwks.path {
            let full = base_dir.join(path);
            let at = at.key("path");
            let text = std::fs::read_to_string(&full).map_err(|e| {
                Error::config(at.clone(), format!("cannot read {}: {e}", full.display()))
            })?;
            let jwks = parse_jwks(&text).map_err(|message| Error::config(at.clone(), message))?;
            let keys = build_keys(&jwks, true).map_err(|(i, message)| {
                Error::config(at.clone(), format!("keys[{i}]: {message}"))
            })?;
            if keys.is_empty() {
                return Err(Error::config(at, "the file holds no signing keys"));
            }
            return Ok(KeySource::Fixed(Arc::new(KeySet::new(keys, jwks, 1))));
        }
        if let Some(jwks) = &jwks.keys {
            let at = at.key("keys");
            let keys = build_keys(jwks, true)
                .map_err(|(i, message)| Error::config(at.index(i), message))?;
            if keys.is_empty() {
                return Err(Error::config(
                    at,
                    "no signing keys (`use: sig` or no `use`)",
                ));
            }
            return Ok(KeySource::Fixed(Arc::new(KeySet::new(
                keys,
                jwks.clone(),
                1,
            ))));
        }
        let url = jwks.url.clone().unwrap_or_default();
        if url.is_empty() {
            return Err(Error::config(at.key("url"), "must not be empty"));
        }
        let fetcher = fetcher.ok_or_else(|| {
            Error::config(
                at.key("url"),
                "a JWKS url needs a JwksFetcher from the embedder (GatewayBuilder::jwks_fetcher)",
            )
        })?;
        let refresh_seconds = jwks.refresh_seconds.unwrap_or(DEFAULT_REFRESH_SECONDS);
        if refresh_seconds == 0 {
            return Err(Error::config(at.key("refreshSeconds"), "at least 1"));
        }
        Ok(KeySource::Remote(RemoteKeys {
            url,
            fetcher,
            refresh_every: Duration::from_secs(refresh_seconds),
            min_refetch: MIN_REFETCH_INTERVAL,
            current: ArcSwapOption::empty(),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
        }))
    }
}

impl KeySet {
    /// A set loaded now.
    fn new(keys: Vec<JwtKey>, jwks: Vec<Value>, generation: u64) -> Self {
        KeySet {
            keys,
            generation,
            jwks,
            loaded_at: Instant::now(),
        }
    }

    /// Whether some key carries this `kid`.
    fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid.as_deref() == Some(kid))
    }

    /// The key that verifies a token with this `kid` and `alg`: the first key with that `kid`
    /// allowing `alg`; without a `kid`, the one key allowing `alg`, if exactly one does.
    fn select(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<(&DecodingKey, &Validation), JwtRejection> {
        match kid {
            Some(kid) => {
                let mut named = self
                    .keys
                    .iter()
                    .filter(|key| key.kid.as_deref() == Some(kid))
                    .peekable();
                if named.peek().is_none() {
                    return Err(unauthorized("no signing key matches the token's kid"));
                }
                named
                    .find_map(|key| key.verifying(alg))
                    .ok_or_else(|| unauthorized("the token's algorithm is not allowed for its key"))
            }
            None => {
                let mut fitting = self.keys.iter().filter_map(|key| key.verifying(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(only), None) => Ok(only),
                    (None, _) => Err(unauthorized("no signing key allows the token's algorithm")),
                    (Some(_), Some(_)) => Err(unauthorized(
                        "the token has no kid and several signing keys allow its algorithm",
                    )),
                }
            }
        }
    }
}

impl JwtKey {
    /// The key and its validation settings for `alg`, if the key allows `alg`.
    fn verifying(&self, alg: Algorithm) -> Option<(&DecodingKey, &Validation)> {
        self.algorithms
            .iter()
            .find(|(allowed, _)| *allowed == alg)
            .map(|(_, validation)| (&self.key, validation))
    }
}

impl RemoteKeys {
    /// The key set to verify a token naming `kid` with: the current one while it is fresh and
    /// knows the `kid`, else a refreshed one (rate-limited; concurrent callers share a fetch).
    async fn keys_for(
        &self,
        kid: Option<&str>,
        cache: &Mutex<TokenCache>,
    ) -> Result<Arc<KeySet>, JwtRejection> {
        let seen = self.current.load_full();
        let usable = match &seen {
            Some(set) => {
                let fresh = set.loaded_at.elapsed() < self.refresh_every;
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
        match self.fetch().await {
            Ok((jwks, keys)) => {
                state.last_error = None;
                let changed = current.as_ref().is_none_or(|current| current.jwks != jwks);
                let generation = match &current {
                    Some(current) if !changed => current.generation,
                    Some(current) => current.generation + 1,
                    None => 1,
                };
                let set = Arc::new(KeySet::new(keys, jwks, generation));
                self.current.store(Some(Arc::clone(&set)));
                if changed {
                    let mut cache = lock(cache);
                    cache.generation = generation;
                    cache.entries.clear();
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

    /// Fetches and reads the JWKS; keys this gateway cannot use are skipped (the identity
    /// provider may publish encryption keys or algorithms we do not verify).
    async fn fetch(&self) -> Result<(Vec<Value>, Vec<JwtKey>), String> {
        let text = self.fetcher.fetch(&self.url).await?;
        if text.len() > MAX_JWKS_BYTES {
            return Err(format!("the JWKS is longer than {MAX_JWKS_BYTES} bytes"));
        }
        let jwks = parse_jwks(&text)?;
        let keys =
            build_keys(&jwks, false).map_err(|(i, message)| format!("keys[{i}]: {message}"))?;
        if keys.is_empty() {
            return Err("the JWKS holds no usable signing keys".to_owned());
        }
        Ok((jwks, keys))
    }
}

/// The 401 when a JWKS URL has never been fetched successfully.
fn unavailable(state: &RefreshState) -> JwtRejection {
    JwtRejection::Unauthorized(match &state.last_error {
        Some(error) => format!("the signing keys are unavailable: {error}"),
        None => "the signing keys are unavailable".to_owned(),
    })
}

/// The token without its optional `Bearer ` prefix; missing, empty or oversized tokens are
/// refused.
fn bare_token(raw: Option<&str>) -> Result<&str, JwtRejection> {
    let raw = raw.ok_or_else(|| unauthorized("the request carries no token"))?;
    if raw.len() > MAX_TOKEN_BYTES {
        return Err(unauthorized("the token is too long"));
    }
    let raw = raw.trim();
    let token = match (raw.get(..7), raw.get(7..)) {
        (Some(prefix), Some(rest)) if prefix.eq_ignore_ascii_case("bearer ") => rest.trim_start(),
        _ => raw,
    };
    if token.is_empty() {
        return Err(unauthorized("the request carries no token"));
    }
    Ok(token)
}

/// The scopes a token grants: `scope` (space-separated) and `scp` (a string or a list).
fn scopes_of(claims: &Map<String, Value>) -> Vec<String> {
    let mut scopes = Vec::new();
    for claim in ["scope", "scp"] {
        match claims.get(claim) {
            Some(Value::String(text)) => {
                scopes.extend(text.split_ascii_whitespace().map(str::to_owned));
            }
            Some(Value::Array(items)) => {
                scopes.extend(items.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            _ => {}
        }
    }
    scopes
}

/// A NumericDate claim as whole seconds (`round` says which way fractions go), if it is one.
fn seconds(value: &Value, round: fn(f64) -> f64) -> Option<u64> {
    if let Some(whole) = value.as_u64() {
        return Some(whole);
    }
    let float = value.as_f64()?;
    // `as` saturates; the range check keeps negative and absurd values out.
    (float.is_finite() && (0.0..1e15).contains(&float)).then(|| round(float) as u64)
}

/// The wall clock in Unix seconds, as `exp`, `nbf` and `iat` count.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The cache stays usable after a panic elsewhere: it holds no invariant a panic can break.
fn lock(cache: &Mutex<TokenCache>) -> MutexGuard<'_, TokenCache> {
    cache.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The `keys` of a JWKS document.
fn parse_jwks(text: &str) -> Result<Vec<Value>, String> {
    let document: Value =
        serde_json::from_str(text).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
    match document.get("keys") {
        Some(Value::Array(keys)) => Ok(keys.clone()),
        _ => Err("a JWKS is an object with a `keys` list".to_owned()),
    }
}

/// The signing keys among `jwks`. `strict` (keys the definition holds): any key that cannot be
/// used is an error naming its index; otherwise (a fetched JWKS) such keys are skipped.
fn build_keys(jwks: &[Value], strict: bool) -> Result<Vec<JwtKey>, (usize, String)> {
    let mut keys = Vec::with_capacity(jwks.len());
    for (i, jwk) in jwks.iter().enumerate() {
        match parse_jwk(jwk) {
            Ok(Some(key)) => keys.push(key),
            Ok(None) => {}
            Err(message) if strict => return Err((i, message)),
            Err(message) => tracing::warn!("skipping JWKS key [{i}]: {message}"),
        }
    }
    Ok(keys)
}

/// One JWK as a verification key; `None` for keys not meant for signatures (`use` other than
/// `sig`).
fn parse_jwk(jwk: &Value) -> Result<Option<JwtKey>, String> {
    let object = jwk.as_object().ok_or("a JWK is a JSON object")?;
    let text = |name: &str| match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.as_str())),
        Some(_) => Err(format!("`{name}` must be a string")),
    };
    if text("use")?.is_some_and(|usage| usage != "sig") {
        return Ok(None);
    }
    let kty = text("kty")?.ok_or("`kty` is required")?;
    let required =
        |name: &str| text(name)?.ok_or_else(|| format!("`{name}` is required for kty {kty}"));
    let alg = match text("alg")? {
        None => None,
        Some(name) => Some(name.parse::<Algorithm>().map_err(|_| {
            format!(
                "unsupported alg \"{name}\": expected RS256/384/512, PS256/384/512, ES256, ES384, \
                 EdDSA or HS256/384/512"
            )
        })?),
    };
    let (key, family): (DecodingKey, Vec<Algorithm>) = match kty {
        "RSA" => {
            let n = base64url(required("n")?, "n")?;
            let e = base64url(required("e")?, "e")?;
            check_rsa(&n, &e)?;
            (
                DecodingKey::from_rsa_raw_components(&n, &e),
                RSA_ALGORITHMS.to_vec(),
            )
        }
        "EC" => {
            let crv = required("crv")?;
            let (alg, size) = match crv {
                "P-256" => (Algorithm::ES256, 32),
                "P-384" => (Algorithm::ES384, 48),
                other => {
                    return Err(format!(
                        "unsupported curve \"{other}\": expected P-256 or P-384"
                    ))
                }
            };
            let (x, y) = (required("x")?, required("y")?);
            for (name, coordinate) in [("x", x), ("y", y)] {
                if base64url(coordinate, name)?.len() != size {
                    return Err(format!("`{name}` must be {size} bytes for {crv}"));
                }
            }
            let key = DecodingKey::from_ec_components(unpadded(x), unpadded(y))
                .map_err(|e| format!("bad EC key: {e}"))?;
            (key, vec![alg])
        }
        "OKP" => {
            let crv = required("crv")?;
            if crv != "Ed25519" {
                return Err(format!("unsupported curve \"{crv}\": expected Ed25519"));
            }
            let x = required("x")?;
            if base64url(x, "x")?.len() != 32 {
                return Err("`x` must be 32 bytes for Ed25519".to_owned());
            }
            let key = DecodingKey::from_ed_components(unpadded(x))
                .map_err(|e| format!("bad Ed25519 key: {e}"))?;
            (key, vec![Algorithm::EdDSA])
        }
        "oct" => {
            let secret = base64url(required("k")?, "k")?;
            // RFC 7518 §3.2: an HMAC key at least as long as the hash output.
            let long_enough = |alg: &Algorithm| secret.len() >= hmac_key_bytes(*alg);
            if let Some(alg) = alg.filter(|alg| HMAC_ALGORITHMS.contains(alg) && !long_enough(alg))
            {
                return Err(format!(
                    "`k` is {} bytes; {alg:?} needs at least {}",
                    secret.len(),
                    hmac_key_bytes(alg)
                ));
            }
            let family: Vec<Algorithm> = HMAC_ALGORITHMS
                .iter()
                .copied()
                .filter(long_enough)
                .collect();
            if family.is_empty() {
                return Err(format!(
                    "`k` is {} bytes; HMAC keys need at least 32",
                    secret.len()
                ));
            }
            (DecodingKey::from_secret(&secret), family)
        }
        other => {
            return Err(format!(
                "unsupported kty \"{other}\": expected RSA, EC, OKP or oct"
            ))
        }
    };
    let algorithms = match alg {
        None => family,
        Some(alg) if family.contains(&alg) => vec![alg],
        Some(alg) => return Err(format!("alg {alg:?} does not fit kty {kty}")),
    };
    // Building a verifier checks the key material (curve points, Ed25519 keys) now, not on the
    // first token; the probe signature itself is not expected to verify.
    for alg in &algorithms {
        if let Err(e) = jsonwebtoken::crypto::verify("AA", b"probe", &key, *alg) {
            return Err(format!("unusable key: {e}"));
        }
    }
    let algorithms = algorithms
        .into_iter()
        .map(|alg| (alg, signature_only(alg)))
        .collect();
    Ok(Some(JwtKey {
        kid: text("kid")?.map(str::to_owned),
        key,
        algorithms,
    }))
}

/// Validation settings that leave only the signature (and the header's `alg`) to
/// `jsonwebtoken`: the claims are checked by [`JwtAuthorizer::check_claims`], with API
/// Gateway's rules.
fn signature_only(alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation
}

/// The shortest key RFC 7518 allows for an HMAC algorithm: its hash's output length.
fn hmac_key_bytes(alg: Algorithm) -> usize {
    match alg {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}

/// RSA public key sanity: a modulus of 2048 to 4096 bits, an odd exponent from 3 to 2^33-1.
fn check_rsa(n: &[u8], e: &[u8]) -> Result<(), String> {
    let n = trim_leading_zeros(n);
    let bits = match n.first() {
        Some(first) => n.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    };
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(format!(
            "the RSA modulus has {bits} bits; {MIN_RSA_BITS} to {MAX_RSA_BITS} are accepted"
        ));
    }
    let e = trim_leading_zeros(e);
    let exponent = if e.len() > 8 {
        u64::MAX
    } else {
        e.iter().fold(0u64, |acc, byte| acc << 8 | u64::from(*byte))
    };
    if !(3..=MAX_RSA_EXPONENT).contains(&exponent) || exponent % 2 == 0 {
        return Err("the RSA exponent must be odd, from 3 to 2^33-1".to_owned());
    }
    Ok(())
}

/// A big-endian integer without its leading zero bytes.
fn trim_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// A JWK member is base64url without padding; padding is tolerated.
fn unpadded(text: &str) -> &str {
    text.trim_end_matches('=')
}

/// Decodes the JWK member `name`.
fn base64url(text: &str, name: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(unpadded(text))
        .map_err(|e| format!("`{name}` is not base64url: {e}"))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::OnceLock;

    use jsonwebtoken::{EncodingKey, Header};
    use rand::rngs::OsRng;
    use serde_json::json;

    use super::*;

    const ISSUER: &str = "https://issuer.example.com/pool-1";
    const AUDIENCE: &str = "client-abc";
    const SUBJECT: &str = "user-1";

    /// Keys generated once per test run; the JWKs hold only their public halves.
    struct TestKeys {
        rsa: EncodingKey,
        rsa_jwk: Value,
        rsa_public_pem: String,
        ec256: EncodingKey,
        ec256_jwk: Value,
        ec384: EncodingKey,
        ec384_jwk: Value,
        ed: EncodingKey,
        ed_jwk: Value,
        other_ed: EncodingKey,
        hmac_secret: Vec<u8>,
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn keys() -> &'static TestKeys {
        static KEYS: OnceLock<TestKeys> = OnceLock::new();
        KEYS.get_or_init(|| {
            use ed25519_dalek::pkcs8::EncodePrivateKey as _;
            use rsa::pkcs1::EncodeRsaPrivateKey as _;
            use rsa::pkcs8::EncodePublicKey as _;
            use rsa::traits::PublicKeyParts as _;

            let rsa = rsa::RsaPrivateKey::new(&mut OsRng, 2048).expect("RSA key");
            let rsa_der = rsa.to_pkcs1_der().expect("PKCS#1");
            let rsa_public = rsa.to_public_key();
            let rsa_jwk = json!({
                "kty": "RSA",
                "n": b64(&rsa_public.n().to_bytes_be()),
                "e": b64(&rsa_public.e().to_bytes_be()),
            });
            let rsa_public_pem = rsa_public
                .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
                .expect("PEM");

            let ec256 = p256::ecdsa::SigningKey::random(&mut OsRng);
            let point = ec256.verifying_key().to_encoded_point(false);
            let ec256_jwk = json!({
                "kty": "EC", "crv": "P-256",
                "x": b64(point.x().expect("x")), "y": b64(point.y().expect("y")),
            });
            let ec256_der = p256::pkcs8::EncodePrivateKey::to_pkcs8_der(&ec256).expect("PKCS#8");

            let ec384 = p384::ecdsa::SigningKey::random(&mut OsRng);
            let point = ec384.verifying_key().to_encoded_point(false);
            let ec384_jwk = json!({
                "kty": "EC", "crv": "P-384",
                "x": b64(point.x().expect("x")), "y": b64(point.y().expect("y")),
            });
            let ec384_der = p384::pkcs8::EncodePrivateKey::to_pkcs8_der(&ec384).expect("PKCS#8");

            let ed = ed25519_dalek::SigningKey::generate(&mut OsRng);
            let ed_jwk = json!({
                "kty": "OKP", "crv": "Ed25519", "x": b64(ed.verifying_key().as_bytes()),
            });
            let other_ed = ed25519_dalek::SigningKey::generate(&mut OsRng);

            let mut hmac_secret = vec![0u8; 32];
            rand::RngCore::fill_bytes(&mut OsRng, &mut hmac_secret);

            TestKeys {
                rsa: EncodingKey::from_rsa_der(rsa_der.as_bytes()),
                rsa_jwk,
                rsa_public_pem,
                ec256: EncodingKey::from_ec_der(ec256_der.as_bytes()),
                ec256_jwk,
                ec384: EncodingKey::from_ec_der(ec384_der.as_bytes()),
                ec384_jwk,
                ed: EncodingKey::from_ed_der(ed.to_pkcs8_der().expect("PKCS#8").as_bytes()),
                ed_jwk,
                other_ed: EncodingKey::from_ed_der(
                    other_ed.to_pkcs8_der().expect("PKCS#8").as_bytes(),
                ),
                hmac_secret,
            }
        })
    }

    /// `jwk` with extra members (`kid`, `alg`, `use`).
    fn with(jwk: &Value, extra: Value) -> Value {
        let mut jwk = jwk.clone();
        if let (Some(jwk), Some(extra)) = (jwk.as_object_mut(), extra.as_object()) {
            jwk.extend(extra.clone());
        }
        jwk
    }

    /// Every kind of key, under its own kid; the RSA key a second time, limited to RS256.
    fn all_jwks() -> Value {
        let k = keys();
        json!([
            with(&k.rsa_jwk, json!({"kid": "rsa"})),
            with(&k.rsa_jwk, json!({"kid": "rsa-rs256", "alg": "RS256"})),
            with(&k.ec256_jwk, json!({"kid": "ec256"})),
            with(&k.ec384_jwk, json!({"kid": "ec384", "alg": "ES384"})),
            with(&k.ed_jwk, json!({"kid": "ed"})),
            {"kty": "oct", "kid": "hmac", "alg": "HS256", "k": b64(&k.hmac_secret)},
            with(&k.rsa_jwk, json!({"kid": "enc", "use": "enc"})),
        ])
    }

    fn definition(jwks: Value, extra: Value) -> AuthorizerDefinition {
        let mut definition = json!({
            "type": "jwt",
            "issuer": ISSUER,
            "audience": [AUDIENCE, "second-audience"],
            "jwks": jwks,
        });
        if let (Some(definition), Some(extra)) = (definition.as_object_mut(), extra.as_object()) {
            definition.extend(extra.clone());
        }
        serde_json::from_value(definition).expect("a valid definition")
    }

    fn at() -> KeyPath {
        KeyPath::root().key("authorizers").key("a")
    }

    fn compile(definition: &AuthorizerDefinition) -> Result<JwtAuthorizer, Error> {
        JwtAuthorizer::compile(definition, Path::new("."), None, &at())
    }

    fn authorizer(jwks: Value) -> JwtAuthorizer {
        compile(&definition(json!({ "keys": jwks }), json!({}))).expect("compiles")
    }

    /// Standard claims, then `changes` (a `null` removes the claim).
    fn claims(changes: Value) -> Value {
        let now = unix_now();
        let mut claims = json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": SUBJECT,
            "iat": now, "exp": now + 600, "scope": "read write",
        });
        if let (Some(claims), Some(changes)) = (claims.as_object_mut(), changes.as_object()) {
            for (name, value) in changes {
                if value.is_null() {
                    claims.remove(name);
                } else {
                    claims.insert(name.clone(), value.clone());
                }
            }
        }
        claims
    }

    fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, key).expect("signs")
    }

    fn rs256(changes: Value) -> String {
        sign(Algorithm::RS256, Some("rsa"), &keys().rsa, &claims(changes))
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Expect {
        Pass,
        Unauthorized,
        Forbidden,
    }

    /// A table row: name, authorizer, token, the route's scopes, the expected outcome.
    type Case<'a> = (
        &'a str,
        &'a JwtAuthorizer,
        Option<String>,
        &'a [&'a str],
        Expect,
    );

    fn outcome(result: &Result<Arc<VerifiedToken>, JwtRejection>) -> Expect {
        match result {
            Ok(_) => Expect::Pass,
            Err(JwtRejection::Unauthorized(_)) => Expect::Unauthorized,
            Err(JwtRejection::Forbidden) => Expect::Forbidden,
        }
    }

    fn scopes(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn tokens_are_judged_as_api_gateway_does() {
        use Expect::*;
        let k = keys();
        let main = authorizer(all_jwks());
        let rsa_only = authorizer(json!([with(&k.rsa_jwk, json!({"kid": "rsa"}))]));
        let now = unix_now();
        let good = rs256(json!({}));
        let hmac = EncodingKey::from_secret(&k.hmac_secret);
        let pem_as_secret = EncodingKey::from_secret(k.rsa_public_pem.as_bytes());

        let mut tampered: Vec<String> = good.split('.').map(str::to_owned).collect();
        tampered[1] = b64(claims(json!({"sub": "admin"})).to_string().as_bytes());
        let tampered = tampered.join(".");

        let none_alg = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"JWT"}"#),
            b64(claims(json!({})).to_string().as_bytes())
        );
        let mut crit = Header::new(Algorithm::RS256);
        crit.kid = Some("rsa".into());
        crit.crit = Some(vec!["b64".into()]);
        let crit = jsonwebtoken::encode(&crit, &claims(json!({})), &k.rsa).expect("signs");
        let array_payload = {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some("hmac".into());
            jsonwebtoken::encode(&header, &json!([1, 2, 3]), &hmac).expect("signs")
        };
        let oversized = sign(
            Algorithm::HS256,
            Some("hmac"),
            &hmac,
            &claims(json!({"pad": "x".repeat(MAX_TOKEN_BYTES)})),
        );

        let cases: Vec<Case> = vec![
            ("good", &main, Some(good.clone()), &[], Pass),
            (
                "Bearer prefix",
                &main,
                Some(format!("Bearer {good}")),
                &[],
                Pass,
            ),
            (
                "bearer, any case",
                &main,
                Some(format!("bEaReR {good}")),
                &[],
                Pass,
            ),
            (
                "expired",
                &main,
                Some(rs256(json!({"exp": now - 600}))),
                &[],
                Unauthorized,
            ),
            (
                "expired, within leeway",
                &main,
                Some(rs256(json!({"exp": now - 10}))),
                &[],
                Pass,
            ),
            (
                "not yet valid",
                &main,
                Some(rs256(json!({"nbf": now + 600}))),
                &[],
                Unauthorized,
            ),
            (
                "nbf within leeway",
                &main,
                Some(rs256(json!({"nbf": now + 10}))),
                &[],
                Pass,
            ),
            (
                "iat in the future",
                &main,
                Some(rs256(json!({"iat": now + 600}))),
                &[],
                Unauthorized,
            ),
            (
                "no exp",
                &main,
                Some(rs256(json!({"exp": null}))),
                &[],
                Unauthorized,
            ),
            (
                "exp not a number",
                &main,
                Some(rs256(json!({"exp": "soon"}))),
                &[],
                Unauthorized,
            ),
            (
                "fractional exp",
                &main,
                Some(rs256(json!({"exp": now as f64 + 600.5}))),
                &[],
                Pass,
            ),
            (
                "wrong iss",
                &main,
                Some(rs256(json!({"iss": "https://evil.example"}))),
                &[],
                Unauthorized,
            ),
            (
                "iss as a list",
                &main,
                Some(rs256(json!({"iss": [ISSUER]}))),
                &[],
                Unauthorized,
            ),
            (
                "no iss",
                &main,
                Some(rs256(json!({"iss": null}))),
                &[],
                Unauthorized,
            ),
            (
                "wrong aud",
                &main,
                Some(rs256(json!({"aud": "someone-else"}))),
                &[],
                Unauthorized,
            ),
            (
                "aud list with one match",
                &main,
                Some(rs256(json!({"aud": ["x", "second-audience"]}))),
                &[],
                Pass,
            ),
            (
                "aud via client_id",
                &main,
                Some(rs256(json!({"aud": null, "client_id": AUDIENCE}))),
                &[],
                Pass,
            ),
            (
                "wrong client_id",
                &main,
                Some(rs256(json!({"aud": null, "client_id": "x"}))),
                &[],
                Unauthorized,
            ),
            (
                "aud wins over client_id",
                &main,
                Some(rs256(json!({"aud": "x", "client_id": AUDIENCE}))),
                &[],
                Unauthorized,
            ),
            (
                "no aud, no client_id",
                &main,
                Some(rs256(json!({"aud": null}))),
                &[],
                Unauthorized,
            ),
            (
                "one of the route's scopes",
                &main,
                Some(good.clone()),
                &["admin", "write"],
                Pass,
            ),
            (
                "insufficient scopes",
                &main,
                Some(good.clone()),
                &["admin"],
                Forbidden,
            ),
            (
                "no scope claim",
                &main,
                Some(rs256(json!({"scope": null}))),
                &["read"],
                Forbidden,
            ),
            (
                "no scope claim, no route scopes",
                &main,
                Some(rs256(json!({"scope": null}))),
                &[],
                Pass,
            ),
            (
                "scope is not a prefix match",
                &main,
                Some(rs256(json!({"scope": "reader"}))),
                &["read"],
                Forbidden,
            ),
            (
                "scp list",
                &main,
                Some(rs256(json!({"scope": null, "scp": ["admin"]}))),
                &["admin"],
                Pass,
            ),
            (
                "scp string",
                &main,
                Some(rs256(json!({"scope": null, "scp": "a admin"}))),
                &["admin"],
                Pass,
            ),
            (
                "RS384",
                &main,
                Some(sign(
                    Algorithm::RS384,
                    Some("rsa"),
                    &k.rsa,
                    &claims(json!({})),
                )),
                &[],
                Pass,
            ),
            (
                "RS512",
                &main,
                Some(sign(
                    Algorithm::RS512,
                    Some("rsa"),
                    &k.rsa,
                    &claims(json!({})),
                )),
                &[],
                Pass,
            ),
            (
                "PS256",
                &main,
                Some(sign(
                    Algorithm::PS256,
                    Some("rsa"),
                    &k.rsa,
                    &claims(json!({})),
                )),
                &[],
                Pass,
            ),
            (
                "PS384",
                &main,
                Some(sign(
                    Algorithm::PS384,
                    Some("rsa"),
                    &k.rsa,
                    &claims(json!({})),
                )),
                &[],
                Pass,
            ),
            (
                "PS512",
                &main,
                Some(sign(
                    Algorithm::PS512,
                    Some("rsa"),
                    &k.rsa,
                    &claims(json!({})),
                )),
                &[],
                Pass,
            ),
            (
                "ES256",
                &main,
                Some(sign(
                    Algorithm::ES256,
                    Some("ec256"),
                    &k.ec256,
                    &claims(json!({})),
                )),
                &[],
                Pass,
            ),
            (
                "ES384",
                &main,
                Some(sign(
                    Algorithm::ES384,
                    Some("ec384"),
                    &k.ec384,
                    &claims(json!({})),
                )),
                &[],
                Pass,
            ),
            (
                "EdDSA",
                &main,
                Some(sign(
                    Algorithm::EdDSA,
                    Some("ed"),
                    &k.ed,
                    &claims(json!({})),
                )),
                &[],
                Pass,
            ),
            (
                "HS256 with the oct key",
                &main,
                Some(sign(
                    Algorithm::HS256,
                    Some("hmac"),
                    &hmac,
                    &claims(json!({})),
                )),
                &[],
                Pass,
            ),
            (
                "no kid, one key fits",
                &main,
                Some(sign(Algorithm::EdDSA, None, &k.ed, &claims(json!({})))),
                &[],
                Pass,
            ),
            (
                "no kid, two keys fit",
                &main,
                Some(sign(Algorithm::RS256, None, &k.rsa, &claims(json!({})))),
                &[],
                Unauthorized,
            ),
            (
                "HS256 without an oct key",
                &rsa_only,
                Some(sign(Algorithm::HS256, None, &hmac, &claims(json!({})))),
                &[],
                Unauthorized,
            ),
            (
                "HS256 with the RSA public key as secret",
                &main,
                Some(sign(
                    Algorithm::HS256,
                    Some("rsa"),
                    &pem_as_secret,
                    &claims(json!({})),
                )),
                &[],
                Unauthorized,
            ),
            (
                "HS256 with the RSA public key, no kid",
                &rsa_only,
                Some(sign(
                    Algorithm::HS256,
                    None,
                    &pem_as_secret,
                    &claims(json!({})),
                )),
                &[],
                Unauthorized,
            ),
            (
                "HS256 with a wrong secret",
                &main,
                Some(sign(
                    Algorithm::HS256,
                    Some("hmac"),
                    &EncodingKey::from_secret(&[7; 32]),
                    &claims(json!({})),
                )),
                &[],
                Unauthorized,
            ),
            (
                "PS256 for a key limited to RS256",
                &main,
                Some(sign(
                    Algorithm::PS256,
                    Some("rsa-rs256"),
                    &k.rsa,
                    &claims(json!({})),
                )),
                &[],
                Unauthorized,
            ),
            (
                "ES384 under a P-256 kid",
                &main,
                Some(sign(
                    Algorithm::ES384,
                    Some("ec256"),
                    &k.ec384,
                    &claims(json!({})),
                )),
                &[],
                Unauthorized,
            ),
            (
                "ES256 under an ES384 kid",
                &main,
                Some(sign(
                    Algorithm::ES256,
                    Some("ec384"),
                    &k.ec256,
                    &claims(json!({})),
                )),
                &[],
                Unauthorized,
            ),
            (
                "an encryption key's kid",
                &main,
                Some(sign(
                    Algorithm::RS256,
                    Some("enc"),
                    &k.rsa,
                    &claims(json!({})),
                )),
                &[],
                Unauthorized,
            ),
            (
                "signed by another Ed25519 key",
                &main,
                Some(sign(
                    Algorithm::EdDSA,
                    Some("ed"),
                    &k.other_ed,
                    &claims(json!({})),
                )),
                &[],
                Unauthorized,
            ),
            ("alg none", &main, Some(none_alg), &[], Unauthorized),
            (
                "unknown kid",
                &main,
                Some(sign(
                    Algorithm::RS256,
                    Some("nope"),
                    &k.rsa,
                    &claims(json!({})),
                )),
                &[],
                Unauthorized,
            ),
            ("critical header", &main, Some(crit), &[], Unauthorized),
            (
                "payload not an object",
                &main,
                Some(array_payload),
                &[],
                Unauthorized,
            ),
            ("tampered payload", &main, Some(tampered), &[], Unauthorized),
            (
                "garbage",
                &main,
                Some("not-a-jwt".into()),
                &[],
                Unauthorized,
            ),
            (
                "garbage with dots",
                &main,
                Some("a.b.c".into()),
                &[],
                Unauthorized,
            ),
            ("empty", &main, Some(String::new()), &[], Unauthorized),
            (
                "Bearer and nothing",
                &main,
                Some("Bearer ".into()),
                &[],
                Unauthorized,
            ),
            ("missing", &main, None, &[], Unauthorized),
            ("oversized", &main, Some(oversized), &[], Unauthorized),
        ];

        let mut failures = Vec::new();
        for (name, authorizer, token, route_scopes, expected) in &cases {
            let result = authorizer
                .authorize(token.as_deref(), &scopes(route_scopes))
                .await;
            if outcome(&result) != *expected {
                failures.push(format!("{name}: expected {expected:?}, got {result:?}"));
            }
            if let Ok(verified) = &result {
                assert_eq!(verified.principal_id(), SUBJECT, "{name}");
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} cases failed:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );
    }

    #[tokio::test]
    async fn a_verified_token_exposes_its_claims_and_scopes() {
        let auth = authorizer(all_jwks());
        let token = rs256(json!({"scope": "a b", "scp": ["c"], "email": "u@example.com"}));
        let verified = auth.authorize(Some(&token), &[]).await.expect("valid");
        assert_eq!(verified.scopes(), ["a", "b", "c"]);
        assert_eq!(verified.claims()["email"], "u@example.com");
        assert_eq!(verified.principal_id(), SUBJECT);
        assert_eq!(
            Some(verified.expires_at()),
            verified.claims()["exp"].as_u64()
        );
        let anonymous = rs256(json!({"sub": null}));
        let verified = auth.authorize(Some(&anonymous), &[]).await.expect("valid");
        assert_eq!(verified.principal_id(), "");
    }

    #[tokio::test]
    async fn a_cache_hit_does_not_verify_again_and_is_cheap() {
        let auth = authorizer(all_jwks());
        let token = rs256(json!({}));
        let route = scopes(&["write"]);
        auth.authorize(Some(&token), &route).await.expect("valid");
        assert_eq!(auth.verifications(), 1);

        const HITS: u32 = 20_000;
        let started = Instant::now();
        for _ in 0..HITS {
            auth.authorize(Some(&token), &route).await.expect("valid");
        }
        let per_hit = started.elapsed() / HITS;
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
        // An RSA verification takes tens of microseconds; a hit is a hash lookup.
        eprintln!("cache hit: {per_hit:?} per authorize");
        assert!(
            per_hit < Duration::from_micros(10),
            "a hit took {per_hit:?}"
        );
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
        let now = unix_now();
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

    /// The embedder's side: answers `documents` in turn (repeating the last), counting calls.
    struct ScriptedFetcher {
        documents: Vec<Result<String, String>>,
        calls: AtomicUsize,
        delay: Duration,
    }

    impl ScriptedFetcher {
        fn new(documents: Vec<Result<String, String>>) -> Arc<Self> {
            Arc::new(ScriptedFetcher {
                documents,
                calls: AtomicUsize::new(0),
                delay: Duration::ZERO,
            })
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    impl JwksFetcher for ScriptedFetcher {
        fn fetch<'a>(
            &'a self,
            url: &'a str,
        ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
            Box::pin(async move {
                assert_eq!(url, "https://issuer.example.com/jwks.json");
                let call = self.calls.fetch_add(1, Ordering::SeqCst);
                if !self.delay.is_zero() {
                    tokio::time::sleep(self.delay).await;
                }
                let last = self.documents.len() - 1;
                self.documents[call.min(last)].clone()
            })
        }
    }

    fn jwks_document(keys: &[Value]) -> Result<String, String> {
        Ok(json!({ "keys": keys }).to_string())
    }

    fn remote_authorizer(fetcher: &Arc<ScriptedFetcher>, extra: Value) -> JwtAuthorizer {
        let definition = definition(
            json!({"url": "https://issuer.example.com/jwks.json"}),
            extra,
        );
        let fetcher: Arc<dyn JwksFetcher> = Arc::clone(fetcher) as Arc<dyn JwksFetcher>;
        JwtAuthorizer::compile(&definition, Path::new("."), Some(fetcher), &at()).expect("compiles")
    }

    fn remote(auth: &mut JwtAuthorizer) -> &mut RemoteKeys {
        match &mut auth.keys {
            KeySource::Remote(remote) => remote,
            KeySource::Fixed(_) => panic!("not a url source"),
        }
    }

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
        auth.remember(&old, &verified, old_generation, unix_now());
        assert!(auth.cached(&old, unix_now()).is_none());
        assert!(auth.authorize(Some(&old), &[]).await.is_err(), "A is gone");
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

    fn rs_a(changes: Value) -> String {
        sign(Algorithm::RS256, Some("A"), &keys().rsa, &claims(changes))
    }

    #[test]
    fn the_authorizer_and_its_future_can_cross_threads() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: &T) {}
        let auth = authorizer(all_jwks());
        send_sync(&auth);
        let future = auth.authorize(None, &[]);
        send(&future);
        let fetcher = ScriptedFetcher::new(vec![Err("unused".into())]);
        let remote = remote_authorizer(&fetcher, json!({}));
        send_sync(&remote);
        send(&remote.authorize(None, &[]));
    }

    /// The error's key path and message.
    fn load_error(definition: &AuthorizerDefinition) -> (String, String) {
        match compile(definition) {
            Ok(_) => panic!("expected a load error"),
            Err(e) => (
                e.key_path()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
                e.to_string(),
            ),
        }
    }

    #[test]
    fn load_errors_name_what_is_wrong() {
        let k = keys();
        let good = json!([with(&k.rsa_jwk, json!({"kid": "rsa"}))]);
        let cases: Vec<(&str, AuthorizerDefinition, &str, &str)> = vec![
            (
                "two sources",
                definition(json!({"keys": good, "url": "https://x"}), json!({})),
                "authorizers.a.jwks",
                "exactly one of",
            ),
            (
                "no source",
                definition(json!({}), json!({})),
                "authorizers.a.jwks",
                "exactly one of",
            ),
            (
                "bad JWK",
                definition(
                    json!({"keys": [good[0], {"kty": "RSA", "e": "AQAB"}]}),
                    json!({}),
                ),
                "authorizers.a.jwks.keys[1]",
                "`n` is required",
            ),
            (
                "unsupported alg",
                definition(
                    json!({"keys": [with(&k.ec256_jwk, json!({"alg": "ES512"}))]}),
                    json!({}),
                ),
                "authorizers.a.jwks.keys[0]",
                "unsupported alg",
            ),
            (
                "alg none on a key",
                definition(
                    json!({"keys": [with(&k.rsa_jwk, json!({"alg": "none"}))]}),
                    json!({}),
                ),
                "authorizers.a.jwks.keys[0]",
                "unsupported alg",
            ),
            (
                "alg of another family",
                definition(
                    json!({"keys": [with(&k.rsa_jwk, json!({"alg": "HS256"}))]}),
                    json!({}),
                ),
                "authorizers.a.jwks.keys[0]",
                "does not fit kty RSA",
            ),
            (
                "P-521",
                definition(
                    json!({"keys": [with(&k.ec256_jwk, json!({"crv": "P-521"}))]}),
                    json!({}),
                ),
                "authorizers.a.jwks.keys[0]",
                "unsupported curve",
            ),
            (
                "EC point off the curve",
                definition(
                    json!({"keys": [with(&k.ec256_jwk, json!({"y": b64(&[1; 32])}))]}),
                    json!({}),
                ),
                "authorizers.a.jwks.keys[0]",
                "unusable key",
            ),
            (
                "short RSA modulus",
                definition(
                    json!({"keys": [{"kty": "RSA", "n": b64(&[0xff; 128]), "e": "AQAB"}]}),
                    json!({}),
                ),
                "authorizers.a.jwks.keys[0]",
                "1024 bits",
            ),
            (
                "even RSA exponent",
                definition(
                    json!({"keys": [with(&k.rsa_jwk, json!({"e": "Ag"}))]}),
                    json!({}),
                ),
                "authorizers.a.jwks.keys[0]",
                "exponent",
            ),
            (
                "short HMAC secret",
                definition(
                    json!({"keys": [{"kty": "oct", "k": b64(b"short"), "alg": "HS256"}]}),
                    json!({}),
                ),
                "authorizers.a.jwks.keys[0]",
                "needs at least 32",
            ),
            (
                "HS512 secret of 32 bytes",
                definition(
                    json!({"keys": [{"kty": "oct", "k": b64(&[1; 32]), "alg": "HS512"}]}),
                    json!({}),
                ),
                "authorizers.a.jwks.keys[0]",
                "needs at least 64",
            ),
            (
                "not base64url",
                definition(json!({"keys": [{"kty": "oct", "k": "+/+/"}]}), json!({})),
                "authorizers.a.jwks.keys[0]",
                "not base64url",
            ),
            (
                "unknown kty",
                definition(json!({"keys": [{"kty": "ML-DSA"}]}), json!({})),
                "authorizers.a.jwks.keys[0]",
                "unsupported kty",
            ),
            (
                "only encryption keys",
                definition(
                    json!({"keys": [with(&k.rsa_jwk, json!({"use": "enc"}))]}),
                    json!({}),
                ),
                "authorizers.a.jwks.keys",
                "no signing keys",
            ),
            (
                "url without a fetcher",
                definition(
                    json!({"url": "https://issuer.example.com/jwks.json"}),
                    json!({}),
                ),
                "authorizers.a.jwks.url",
                "JwksFetcher",
            ),
            (
                "refreshSeconds without url",
                definition(json!({"keys": good, "refreshSeconds": 60}), json!({})),
                "authorizers.a.jwks.refreshSeconds",
                "only applies to a jwks url",
            ),
            (
                "missing file",
                definition(json!({"path": "no/such/jwks.json"}), json!({})),
                "authorizers.a.jwks.path",
                "cannot read",
            ),
            (
                "no issuer",
                definition(json!({"keys": good}), json!({"issuer": null})),
                "authorizers.a.issuer",
                "required",
            ),
            (
                "no audience",
                definition(json!({"keys": good}), json!({"audience": []})),
                "authorizers.a.audience",
                "required",
            ),
            (
                "leeway too large",
                definition(json!({"keys": good}), json!({"leewaySeconds": 86400})),
                "authorizers.a.leewaySeconds",
                "at most 300",
            ),
        ];
        for (name, definition, path, message) in cases {
            let (got_path, got_message) = load_error(&definition);
            assert_eq!(got_path, path, "{name}: {got_message}");
            assert!(got_message.contains(message), "{name}: {got_message}");
        }
    }

    #[test]
    fn refresh_seconds_must_be_positive() {
        let fetcher: Arc<dyn JwksFetcher> = ScriptedFetcher::new(vec![Err("unused".into())]);
        let definition = definition(
            json!({"url": "https://issuer.example.com/jwks.json", "refreshSeconds": 0}),
            json!({}),
        );
        let error = JwtAuthorizer::compile(&definition, Path::new("."), Some(fetcher), &at())
            .err()
            .expect("a load error");
        assert_eq!(
            error.key_path().map(KeyPath::as_str),
            Some("authorizers.a.jwks.refreshSeconds")
        );
    }

    #[tokio::test]
    async fn a_jwks_file_is_read_relative_to_the_definition() {
        let k = keys();
        let dir = tempfile::tempdir().expect("temp dir");
        let jwks = json!({"keys": [with(&k.ed_jwk, json!({"kid": "ed"}))]});
        std::fs::write(dir.path().join("jwks.json"), jwks.to_string()).expect("writes");
        let auth = JwtAuthorizer::compile(
            &definition(json!({"path": "jwks.json"}), json!({})),
            dir.path(),
            None,
            &at(),
        )
        .expect("compiles");
        let token = sign(Algorithm::EdDSA, Some("ed"), &k.ed, &claims(json!({})));
        auth.authorize(Some(&token), &[]).await.expect("valid");

        std::fs::write(dir.path().join("bad.json"), r#"{"keys": [{"kty": "EC"}]}"#)
            .expect("writes");
        let error = JwtAuthorizer::compile(
            &definition(json!({"path": "bad.json"}), json!({})),
            dir.path(),
            None,
            &at(),
        )
        .err()
        .expect("a load error");
        assert_eq!(
            error.key_path().map(KeyPath::as_str),
            Some("authorizers.a.jwks.path")
        );
        assert!(
            error.to_string().contains("keys[0]: `crv` is required"),
            "{error}"
        );
    }

    /// What the JWK reader answers for keys that are malformed in one way each: the first
    /// problem, named after the member; keys for another `use` are skipped whatever they hold.
    #[test]
    fn malformed_jwks_are_refused_by_their_first_problem() {
        let k = keys();
        let rsa = &k.rsa_jwk;
        let padded_n = format!("{}==", rsa["n"].as_str().expect("n"));
        let ec_x = k.ec256_jwk["x"].clone();
        let cases: Vec<(&str, Value, Option<&str>)> = vec![
            ("not an object", json!(5), Some("a JWK is a JSON object")),
            ("use not a string", with(rsa, json!({"use": 5})), Some("`use` must be a string")),
            ("enc with junk", json!({"use": "enc", "kid": 5, "kty": 7}), None),
            ("another use", json!({"use": "tls", "kty": "RSA"}), None),
            ("no kty", json!({"n": rsa["n"], "e": rsa["e"]}), Some("`kty` is required")),
            ("kty not a string", json!({"kty": 5}), Some("`kty` must be a string")),
            ("alg not a string", with(rsa, json!({"alg": 5})), Some("`alg` must be a string")),
            (
                "an encryption alg",
                with(rsa, json!({"alg": "RSA-OAEP"})),
                Some("unsupported alg \"RSA-OAEP\""),
            ),
            (
                "alg checked before members",
                json!({"kty": "RSA", "alg": "ES512"}),
                Some("unsupported alg \"ES512\""),
            ),
            ("kid not a string", with(rsa, json!({"kid": 5})), Some("`kid` must be a string")),
            (
                "n not a string",
                with(rsa, json!({"n": 5})),
                Some("`n` must be a string"),
            ),
            (
                "e missing",
                json!({"kty": "RSA", "n": rsa["n"]}),
                Some("`e` is required for kty RSA"),
            ),
            (
                "n null",
                with(rsa, json!({"n": null})),
                Some("`n` is required for kty RSA"),
            ),
            (
                "unknown EC curve",
                json!({"kty": "EC", "crv": "secp256k1", "x": ec_x, "y": ec_x}),
                Some("unsupported curve \"secp256k1\": expected P-256 or P-384"),
            ),
            (
                "Ed25519 as EC",
                json!({"kty": "EC", "crv": "Ed25519", "x": ec_x, "y": ec_x}),
                Some("unsupported curve \"Ed25519\": expected P-256 or P-384"),
            ),
            (
                "EC without y",
                json!({"kty": "EC", "crv": "P-256", "x": ec_x}),
                Some("`y` is required for kty EC"),
            ),
            (
                "EC coordinate of the wrong size",
                with(&k.ec256_jwk, json!({"x": b64(&[1; 48])})),
                Some("`x` must be 32 bytes for P-256"),
            ),
            (
                "unknown OKP curve",
                json!({"kty": "OKP", "crv": "X25519", "x": k.ed_jwk["x"]}),
                Some("unsupported curve \"X25519\": expected Ed25519"),
            ),
            (
                "P-256 as OKP",
                json!({"kty": "OKP", "crv": "P-256", "x": k.ed_jwk["x"]}),
                Some("unsupported curve \"P-256\": expected Ed25519"),
            ),
            (
                "Ed25519 key of the wrong size",
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&[1; 31])}),
                Some("`x` must be 32 bytes for Ed25519"),
            ),
            ("oct without k", json!({"kty": "oct"}), Some("`k` is required for kty oct")),
            (
                "HMAC secret too short for any HS",
                json!({"kty": "oct", "k": b64(&[1; 16])}),
                Some("`k` is 16 bytes; HMAC keys need at least 32"),
            ),
            (
                "RSA exponent too large",
                with(rsa, json!({"e": b64(&[1; 9])})),
                Some("the RSA exponent must be odd"),
            ),
        ];
        let mut failures = Vec::new();
        for (name, jwk, expected) in &cases {
            let result = parse_jwk(jwk).map(|key| key.is_some());
            let ok = match (expected, &result) {
                (None, Ok(false)) => true,
                (Some(message), Err(got)) => got.contains(message),
                _ => false,
            };
            if !ok {
                failures.push(format!("{name}: expected {expected:?}, got {result:?}"));
            }
        }
        // Nulls count as absent and padding is tolerated.
        for (name, jwk) in [
            ("nulls", with(rsa, json!({"kid": null, "alg": null, "use": null}))),
            ("padded base64url", with(rsa, json!({"n": padded_n, "use": "sig"}))),
        ] {
            if !matches!(parse_jwk(&jwk), Ok(Some(_))) {
                failures.push(format!("{name}: expected a key"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
