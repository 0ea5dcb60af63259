//! What the JWT authorizer's tests share: keys generated once per run and their public JWKs,
//! definitions, signed tokens, and a scripted [`JwksFetcher`].

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::rngs::OsRng;
use serde_json::{json, Value};

use super::remote::RemoteKeys;
use super::{JwksFetchError, JwksFetcher, JwtAuthorizer, KeySource};
use crate::config::AuthorizerDefinition;
use crate::error::{Error, KeyPath};
use crate::time::epoch_seconds_now;

pub(super) const ISSUER: &str = "https://issuer.example.com/pool-1";
pub(super) const AUDIENCE: &str = "client-abc";
pub(super) const SUBJECT: &str = "user-1";

/// Keys generated once per test run; the JWKs hold only their public halves.
pub(super) struct TestKeys {
    pub(super) rsa: EncodingKey,
    pub(super) rsa_jwk: Value,
    pub(super) rsa_public_pem: String,
    pub(super) ec256: EncodingKey,
    pub(super) ec256_jwk: Value,
    pub(super) ec384: EncodingKey,
    pub(super) ec384_jwk: Value,
    pub(super) ed: EncodingKey,
    pub(super) ed_jwk: Value,
    pub(super) other_ed: EncodingKey,
    pub(super) hmac_secret: Vec<u8>,
}

/// Base64url without padding, as JWKs and JWTs write bytes.
pub(super) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The run's keys, generated on first use.
pub(super) fn keys() -> &'static TestKeys {
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
            other_ed: EncodingKey::from_ed_der(other_ed.to_pkcs8_der().expect("PKCS#8").as_bytes()),
            hmac_secret,
        }
    })
}

/// `jwk` with extra members (`kid`, `alg`, `use`).
pub(super) fn with(jwk: &Value, extra: Value) -> Value {
    let mut jwk = jwk.clone();
    if let (Some(jwk), Some(extra)) = (jwk.as_object_mut(), extra.as_object()) {
        jwk.extend(extra.clone());
    }
    jwk
}

/// Every kind of key, under its own kid; the RSA key a second time, limited to RS256.
pub(super) fn all_jwks() -> Value {
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

/// A `jwt` authorizer definition over `jwks`, with `extra` members added or replaced.
pub(super) fn definition(jwks: Value, extra: Value) -> AuthorizerDefinition {
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

/// The key path of the authorizer under test.
pub(super) fn at() -> KeyPath {
    KeyPath::root().key("authorizers").key("a")
}

/// Compiles `definition` without a fetcher, relative to the current directory.
pub(super) fn compile(definition: &AuthorizerDefinition) -> Result<JwtAuthorizer, Error> {
    JwtAuthorizer::compile(definition, Path::new("."), None, &at())
}

/// An authorizer over the inline `jwks`.
pub(super) fn authorizer(jwks: Value) -> JwtAuthorizer {
    compile(&definition(json!({ "keys": jwks }), json!({}))).expect("compiles")
}

/// Standard claims, then `changes` (a `null` removes the claim).
pub(super) fn claims(changes: Value) -> Value {
    let now = epoch_seconds_now();
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

/// `claims` signed with `key` under a header naming `alg` and `kid`.
pub(super) fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("signs")
}

/// Standard claims with `changes`, signed RS256 under `kid: rsa`.
pub(super) fn rs256(changes: Value) -> String {
    sign(Algorithm::RS256, Some("rsa"), &keys().rsa, &claims(changes))
}

/// A route's scopes.
pub(super) fn scopes(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// The embedder's side: answers `documents` in turn (repeating the last), counting calls.
pub(super) struct ScriptedFetcher {
    documents: Vec<Result<String, String>>,
    calls: AtomicUsize,
    /// How long each fetch takes.
    pub(super) delay: Duration,
}

impl ScriptedFetcher {
    /// A fetcher answering `documents` (an `Err` is a failed fetch's message).
    pub(super) fn new(documents: Vec<Result<String, String>>) -> Arc<Self> {
        Arc::new(ScriptedFetcher {
            documents,
            calls: AtomicUsize::new(0),
            delay: Duration::ZERO,
        })
    }

    /// Fetches so far.
    pub(super) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl JwksFetcher for ScriptedFetcher {
    fn fetch<'a>(
        &'a self,
        url: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String, JwksFetchError>> + Send + 'a>> {
        Box::pin(async move {
            assert_eq!(url, "https://issuer.example.com/jwks.json");
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            let last = self.documents.len() - 1;
            self.documents[call.min(last)]
                .clone()
                .map_err(JwksFetchError::new)
        })
    }
}

/// A fetch answering a JWKS document of `keys`.
pub(super) fn jwks_document(keys: &[Value]) -> Result<String, String> {
    Ok(json!({ "keys": keys }).to_string())
}

/// An authorizer over the JWKS URL `fetcher` serves, with `extra` definition members.
pub(super) fn remote_authorizer(fetcher: &Arc<ScriptedFetcher>, extra: Value) -> JwtAuthorizer {
    let definition = definition(
        json!({"url": "https://issuer.example.com/jwks.json"}),
        extra,
    );
    let fetcher: Arc<dyn JwksFetcher> = Arc::clone(fetcher) as Arc<dyn JwksFetcher>;
    JwtAuthorizer::compile(&definition, Path::new("."), Some(fetcher), &at()).expect("compiles")
}

/// The remote key set of `auth`, whose intervals tests shorten.
pub(super) fn remote(auth: &mut JwtAuthorizer) -> &mut RemoteKeys {
    match &mut auth.keys {
        KeySource::Remote(remote) => remote,
        KeySource::Fixed(_) => panic!("not a url source"),
    }
}

/// Standard claims with `changes`, signed RS256 under `kid: A`.
pub(super) fn rs_a(changes: Value) -> String {
    sign(Algorithm::RS256, Some("A"), &keys().rsa, &claims(changes))
}
