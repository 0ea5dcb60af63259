//! Just enough JWT (RFC 7519) for HS256 and RS256: split the compact form, check the
//! signature with RustCrypto, validate the registered claims the way PyJWT (the seed's
//! library) does.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use portico_plugin::serde_json::{self, Map, Value};
use portico_plugin::Error;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::RsaPublicKey;
use sha2::Sha256;

/// A token split into its parts, its signature not yet checked.
pub struct Token<'a> {
    /// The header's `alg`.
    pub alg: String,
    /// `base64url(header).base64url(payload)`: what the signature covers.
    signing_input: &'a str,
    signature: Vec<u8>,
    /// The payload.
    pub claims: Map<String, Value>,
}

fn decode_part(part: &str, what: &str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| Error::new(format!("the token's {what} is not base64url: {e}")))
}

fn json_object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, Error> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::new(format!(
            "the token's {what} is not a JSON object"
        ))),
    }
}

/// Splits a compact JWT (`header.payload.signature`).
pub fn parse(token: &str) -> Result<Token<'_>, Error> {
    let (signing_input, signature) = token
        .rsplit_once('.')
        .ok_or_else(|| Error::new("the token is not a JWT"))?;
    let (header, payload) = signing_input
        .split_once('.')
        .ok_or_else(|| Error::new("the token is not a JWT"))?;
    let header = json_object(&decode_part(header, "header")?, "header")?;
    if header.contains_key("crit") {
        return Err(Error::new("the token has critical header extensions"));
    }
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg.clone(),
        _ => return Err(Error::new("the token's header has no alg")),
    };
    Ok(Token {
        alg,
        signing_input,
        signature: decode_part(signature, "signature")?,
        claims: json_object(&decode_part(payload, "payload")?, "payload")?,
    })
}

impl Token<'_> {
    /// Checks an HS256 signature (in constant time).
    pub fn verify_hs256(&self, secret: &[u8]) -> Result<(), Error> {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret)
            .map_err(|_| Error::new("the HS256 secret is unusable"))?;
        mac.update(self.signing_input.as_bytes());
        mac.verify_slice(&self.signature)
            .map_err(|_| Error::new("the token's signature is invalid"))
    }

    /// Checks an RS256 (RSASSA-PKCS1-v1_5 with SHA-256) signature.
    pub fn verify_rs256(&self, key: &RsaPublicKey) -> Result<(), Error> {
        let signature = Signature::try_from(self.signature.as_slice())
            .map_err(|_| Error::new("the token's signature is malformed"))?;
        VerifyingKey::<Sha256>::new(key.clone())
            .verify(self.signing_input.as_bytes(), &signature)
            .map_err(|_| Error::new("the token's signature is invalid"))
    }
}

/// An RSA public key from PEM: SPKI (`BEGIN PUBLIC KEY`) or PKCS#1 (`BEGIN RSA PUBLIC KEY`).
pub fn rsa_public_key(pem: &str) -> Result<RsaPublicKey, Error> {
    RsaPublicKey::from_public_key_pem(pem)
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
        .map_err(|e| {
            Error::new(format!(
                "the RS256 public key is not a PEM RSA public key: {e}"
            ))
        })
}

/// What the claims must satisfy.
pub struct Expectations<'a> {
    /// The required `iss`.
    pub issuer: &'a str,
    /// `aud` must name at least one of these.
    pub audiences: &'a [&'a str],
    /// Seconds since the epoch.
    pub now: f64,
    /// Clock skew allowed, in seconds.
    pub leeway: f64,
}

fn number(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, Error> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| Error::new(format!("the token's {name} is not a number"))),
    }
}

/// Validates `exp` (required), `nbf`, `iss` and `aud` as PyJWT does.
pub fn validate(claims: &Map<String, Value>, expect: &Expectations<'_>) -> Result<(), Error> {
    let exp = number(claims, "exp")?.ok_or_else(|| Error::new("the token has no exp"))?;
    if exp <= expect.now - expect.leeway {
        return Err(Error::new("the token has expired"));
    }
    if let Some(nbf) = number(claims, "nbf")? {
        if nbf > expect.now + expect.leeway {
            return Err(Error::new("the token is not yet valid (nbf)"));
        }
    }
    if claims.get("iss").and_then(Value::as_str) != Some(expect.issuer) {
        return Err(Error::new("the token's issuer is not the expected one"));
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => expect.audiences.contains(&aud.as_str()),
        Some(Value::Array(auds)) => auds
            .iter()
            .filter_map(Value::as_str)
            .any(|aud| expect.audiences.contains(&aud)),
        _ => false,
    };
    if !audience_ok {
        return Err(Error::new("the token's audience is not an expected one"));
    }
    Ok(())
}
