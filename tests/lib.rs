//! End-to-end tests live in `e2e/`. This library holds what they share with the benches: JWT
//! signing keys generated on the spot (never copied from anywhere) and their public JWKs.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::rngs::OsRng;
use serde_json::{json, Value};

/// A freshly generated RS256 key (2048 bits) and ES256 key, with their public JWKs.
pub struct JwtKeys {
    rsa: EncodingKey,
    ec: EncodingKey,
    /// The RSA public key as a JWK with `kid: rsa`.
    pub rsa_jwk: Value,
    /// The P-256 public key as a JWK with `kid: ec`.
    pub ec_jwk: Value,
}

impl JwtKeys {
    /// New keys from the OS's random source. RSA generation takes a fraction of a second.
    pub fn generate() -> Self {
        use rsa::pkcs1::EncodeRsaPrivateKey as _;
        use rsa::traits::PublicKeyParts as _;
        let rsa = rsa::RsaPrivateKey::new(&mut OsRng, 2048).expect("RSA key");
        let public = rsa.to_public_key();
        let rsa_jwk = json!({
            "kty": "RSA", "kid": "rsa", "alg": "RS256",
            "n": b64(&public.n().to_bytes_be()), "e": b64(&public.e().to_bytes_be()),
        });
        let rsa_der = rsa.to_pkcs1_der().expect("PKCS#1");
        let ec = p256::ecdsa::SigningKey::random(&mut OsRng);
        let point = ec.verifying_key().to_encoded_point(false);
        let ec_jwk = json!({
            "kty": "EC", "crv": "P-256", "kid": "ec",
            "x": b64(point.x().expect("x")), "y": b64(point.y().expect("y")),
        });
        let ec_der = p256::pkcs8::EncodePrivateKey::to_pkcs8_der(&ec).expect("PKCS#8");
        JwtKeys {
            rsa: EncodingKey::from_rsa_der(rsa_der.as_bytes()),
            ec: EncodingKey::from_ec_der(ec_der.as_bytes()),
            rsa_jwk,
            ec_jwk,
        }
    }

    /// `{"keys": [rsa, ec]}`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.rsa_jwk, self.ec_jwk] })
    }

    /// `claims` signed RS256 under `kid: rsa`.
    pub fn rs256(&self, claims: &Value) -> String {
        sign(Algorithm::RS256, "rsa", &self.rsa, claims)
    }

    /// `claims` signed with the RSA key (RS256) under another `kid`.
    pub fn rs256_with_kid(&self, kid: &str, claims: &Value) -> String {
        sign(Algorithm::RS256, kid, &self.rsa, claims)
    }

    /// `claims` signed ES256 under `kid: ec`.
    pub fn es256(&self, claims: &Value) -> String {
        sign(Algorithm::ES256, "ec", &self.ec, claims)
    }
}

/// `claims` signed with `key` under a header naming `alg` and `kid`.
pub fn sign(alg: Algorithm, kid: &str, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).expect("signs")
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// Unpadded base64url, as JWKs and JWTs write bytes.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}
