//! JWT authorizers with HTTP API semantics.
//!
//! A token (optionally prefixed with `Bearer `) is verified against the authorizer's key set (a
//! JWKS file, inline JWKs, or a JWKS URL fetched through the embedder's [`JwksFetcher`]), then
//! its claims against the authorizer (`iss`, `aud` or `client_id`, `exp`, `nbf`, `iat`) and the
//! route (`scope`/`scp`: at least one of the route's scopes), as API Gateway does.
//!
//! The signing algorithm comes from the key, never from the token alone: a key allows its `alg`,
//! or without one the algorithms of its type and curve; HMAC only from a configured `oct` key.
//! Signatures are checked by aws-lc-rs on keys parsed when the key set is read (`keys`);
//! `jsonwebtoken` reads the JWKs and the token's header.
//! Verified tokens are cached by their text until their `exp`, so a repeated token costs one
//! hash lookup; the scope check runs on every request because it depends on the route.
//!
//! This module is the authorizer and its verdict; the parts live beside it: `claims` (the claim
//! checks and the verified token), `keys` (JWK sets and the rules on keys), `remote` (a JWKS URL
//! and its refreshes) and `cache` (the verified-token cache). They answer a 401's reason; only
//! this module decides between 401 and 403.

mod cache;
mod claims;
mod keys;
mod remote;

/// A verified token's decision for a route that requires `required_scopes` (any of them).
fn scoped(
    verified: Arc<VerifiedToken>,
    required_scopes: &[String],
) -> Result<Arc<VerifiedToken>, JwtRejection> {
    if verified.grants_any(required_scopes) {
        Ok(verified)
    } else {
        Err(JwtRejection::Forbidden)
    }
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::config::{AuthorizerDefinition, JwksDefinition};
use crate::error::{Error, KeyPath};
use crate::time::epoch_seconds_now;
use cache::TokenCache;
use claims::ClaimChecks;
use keys::KeySet;
use remote::RemoteKeys;

pub(crate) use claims::VerifiedToken;
pub use remote::{JwksFetchError, JwksFetcher};

/// Tokens longer than this are refused without being parsed.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

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

/// The reason of a request that carries no token.
pub(crate) const NO_TOKEN: &str = "the request carries no token";

/// Shorthand for a 401 with a fixed reason.
fn unauthorized(reason: &str) -> JwtRejection {
    JwtRejection::Unauthorized(reason.to_owned())
}

/// A compiled JWT authorizer: its expectations, its keys and its verified-token cache.
pub(crate) struct JwtAuthorizer {
    claims: ClaimChecks,
    keys: KeySource,
    cache: TokenCache,
    /// Signature verifications performed (cache misses that got as far as a key).
    verifications: AtomicU64,
}

/// Where an authorizer's keys come from.
enum KeySource {
    /// A JWKS file or inline JWKs, read once when the definition is compiled.
    Fixed(Arc<KeySet>),
    /// A JWKS URL, fetched when first needed and refreshed.
    Remote(RemoteKeys),
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
        let claims = ClaimChecks::compile(definition, at)?;
        let jwks_at = at.key("jwks");
        let jwks = definition.jwks.as_ref().ok_or_else(|| {
            Error::config(
                jwks_at.clone(),
                "required for JWT authorizers: one of path, keys or url",
            )
        })?;
        let keys = KeySource::compile(jwks, base_dir, fetcher, &jwks_at)?;
        let generation = match &keys {
            KeySource::Fixed(set) => set.generation(),
            KeySource::Remote(_) => 0,
        };
        Ok(JwtAuthorizer {
            claims,
            keys,
            cache: TokenCache::new(generation),
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
        self.authorize_at(token, required_scopes, epoch_seconds_now())
            .await
    }

    /// The decision on a token that needs no verification now (none, malformed, or verified
    /// before and cached), without waiting: `None` when it must be verified, which may wait
    /// for a key fetch ([`Self::authorize`]).
    pub(crate) fn authorize_now(
        &self,
        token: Option<&str>,
        required_scopes: &[String],
    ) -> Option<Result<Arc<VerifiedToken>, JwtRejection>> {
        self.authorize_now_at(token, required_scopes, epoch_seconds_now())
    }

    /// The decision on a token verified before, found by the identity source's bytes as sent
    /// (one header value, not checked as UTF-8 or copied): `None` for anything else (no such
    /// token cached, or bytes that [`bare_token`] would read differently), which
    /// [`Self::authorize_now`] and [`Self::authorize`] then decide. The common case of a JWT
    /// route: about 300 instructions a request less than the text's way.
    pub(crate) fn authorize_cached(
        &self,
        raw: &[u8],
        required_scopes: &[String],
    ) -> Option<Result<Arc<VerifiedToken>, JwtRejection>> {
        let verified = self
            .cache
            .get(bare_token_bytes(raw)?, epoch_seconds_now())?;
        Some(scoped(verified, required_scopes))
    }

    fn authorize_now_at(
        &self,
        token: Option<&str>,
        required_scopes: &[String],
        now: u64,
    ) -> Option<Result<Arc<VerifiedToken>, JwtRejection>> {
        let token = match bare_token(token) {
            Ok(token) => token,
            Err(rejection) => return Some(Err(rejection)),
        };
        let verified = self.cache.get(token.as_bytes(), now)?;
        Some(scoped(verified, required_scopes))
    }

    /// [`Self::authorize`] at `now` (Unix seconds).
    async fn authorize_at(
        &self,
        token: Option<&str>,
        required_scopes: &[String],
        now: u64,
    ) -> Result<Arc<VerifiedToken>, JwtRejection> {
        if let Some(decision) = self.authorize_now_at(token, required_scopes, now) {
            return decision;
        }
        let token = bare_token(token)?;
        // Boxed: verification may wait for a key fetch, and its future would otherwise make
        // every request's future (cache hits included) larger to move around.
        let verified = Box::pin(self.verify(token, now)).await?;
        scoped(verified, required_scopes)
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
            KeySource::Remote(remote) => remote
                .keys_for(kid, &self.cache)
                .await
                .map_err(JwtRejection::Unauthorized)?,
        };
        let verifier = set.select(kid, header.alg).map_err(unauthorized)?;
        self.verifications.fetch_add(1, Ordering::Relaxed);
        // RFC 7515 §5.2: the signature covers `header.payload` as sent; decode_header has
        // checked the three parts and the header.
        let malformed = || unauthorized("the token is not a well-formed JWT");
        let (message, signature) = token.rsplit_once('.').ok_or_else(malformed)?;
        let (_, payload) = message.rsplit_once('.').ok_or_else(malformed)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| malformed())?;
        if !verifier.verifies(message.as_bytes(), &signature) {
            return Err(unauthorized("the token's signature is not valid"));
        }
        let claims: Map<String, Value> = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or_else(malformed)?;
        let verified = Arc::new(self.claims.verify(claims, now).map_err(unauthorized)?);
        self.cache.remember(token, &verified, set.generation(), now);
        Ok(verified)
    }

    /// Forgets every verified token (the keys stay): the next request with each token verifies
    /// it again.
    #[cfg(any(test, feature = "bench"))]
    pub(crate) fn clear_cache(&self) {
        self.cache.clear();
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
            let set = KeySet::read_file(&base_dir.join(path), &at.key("path"))?;
            return Ok(KeySource::Fixed(Arc::new(set)));
        }
        if let Some(keys) = &jwks.keys {
            let set = KeySet::inline(keys, &at.key("keys"))?;
            return Ok(KeySource::Fixed(Arc::new(set)));
        }
        let url = jwks.url.as_deref().unwrap_or_default();
        let remote = RemoteKeys::compile(url, jwks.refresh_seconds, fetcher, at)?;
        Ok(KeySource::Remote(remote))
    }
}

/// [`bare_token`] on the bytes as sent, for a cache lookup only: ASCII whitespace trimmed (the
/// text's way trims any Unicode whitespace; bytes it would read differently miss the cache and
/// take that way), `None` for what it would refuse.
fn bare_token_bytes(raw: &[u8]) -> Option<&[u8]> {
    if raw.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let raw = raw.trim_ascii();
    let token = match raw.split_at_checked(7) {
        Some((prefix, rest)) if prefix.eq_ignore_ascii_case(b"bearer ") => rest.trim_ascii_start(),
        _ => raw,
    };
    (!token.is_empty()).then_some(token)
}

/// The token without its optional `Bearer ` prefix; missing, empty or oversized tokens are
/// refused.
fn bare_token(raw: Option<&str>) -> Result<&str, JwtRejection> {
    let raw = raw.ok_or_else(|| unauthorized(NO_TOKEN))?;
    if raw.len() > MAX_TOKEN_BYTES {
        return Err(unauthorized("the token is too long"));
    }
    let raw = raw.trim();
    let token = match (raw.get(..7), raw.get(7..)) {
        (Some(prefix), Some(rest)) if prefix.eq_ignore_ascii_case("bearer ") => rest.trim_start(),
        _ => raw,
    };
    if token.is_empty() {
        return Err(unauthorized(NO_TOKEN));
    }
    Ok(token)
}
