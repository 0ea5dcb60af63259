//! Key sets: JWKs read with `jsonwebtoken`'s [`Jwk`] types, and this gateway's own rules on top.
//!
//! A key verifies the algorithms its JWK allows (its `alg`, or without one those of its type and
//! curve), never what a token asks for; keys for another `use` than `sig` are skipped; RSA moduli
//! have 2048 to 4096 bits and a sane exponent; EC keys are on P-256 or P-384 and OKP keys on
//! Ed25519, with coordinates of the curve's size; HMAC only from an `oct` key at least as long as
//! its hash. Key material is checked when the set is read, not on the first token (an Ed25519
//! key only for its length: aws-lc-rs decodes its point when verifying, so a key that is not on
//! the curve refuses every token).
//!
//! Each key holds one [`Verifier`] per algorithm it allows, built when the set is read: the key
//! parsed once by aws-lc-rs (an RSA key's Montgomery context is then computed on its first use
//! and kept), so that verifying a token costs the signature check and nothing else.

use std::path::Path;
use std::time::Instant;

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{
    self as aws, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents, VerificationAlgorithm,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, EllipticCurveKeyParameters, Jwk, OctetKeyPairParameters,
    OctetKeyParameters, PublicKeyUse, RSAKeyParameters,
};
use jsonwebtoken::Algorithm;
use serde::Deserialize as _;
use serde_json::{Map, Value};

use crate::error::{Error, KeyPath};

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
/// The JWK members this gateway reads. Others (`x5c`, `key_ops`, ...) are ignored whatever they
/// hold, as RFC 7517 lets a recipient ignore what it does not use: jsonwebtoken's types would
/// refuse the whole key for one of them of an unexpected type.
const READ_MEMBERS: [&str; 10] = ["use", "kty", "alg", "kid", "n", "e", "crv", "x", "y", "k"];

/// One version of an authorizer's keys.
pub(super) struct KeySet {
    keys: Vec<JwtKey>,
    /// Bumped whenever the keys change; cached tokens belong to one generation.
    generation: u64,
    /// The JWKs the set was built from, to tell whether a refresh changed anything.
    jwks: Vec<Value>,
    loaded_at: Instant,
}

/// A verification key: for each algorithm it may verify, that algorithm's verifier.
struct JwtKey {
    kid: Option<String>,
    verifiers: Vec<(Algorithm, Verifier)>,
}

/// One key, ready to check signatures of one algorithm (aws-lc-rs).
pub(super) enum Verifier {
    /// RSA (PKCS#1 v1.5 or PSS), ECDSA or Ed25519: a parsed public key bound to its algorithm.
    PublicKey(ParsedPublicKey),
    /// HMAC with a shared secret; tags are compared in constant time. (Boxed: the key holds
    /// the hash's precomputed state, some 1.2 kB.)
    Hmac(Box<hmac::Key>),
}

impl Verifier {
    /// Whether `signature` (decoded from the token) signs `message` (the token's
    /// `header.payload`) under this key and algorithm.
    pub(super) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Verifier::PublicKey(key) => key.verify_sig(message, signature).is_ok(),
            Verifier::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
        }
    }
}

/// A JWK's key material, decoded and checked, before it is bound to algorithms.
enum KeyMaterial {
    /// Modulus and public exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An uncompressed SEC1 point (`04 || x || y`) on P-256 or P-384.
    Ec(Vec<u8>),
    /// An Ed25519 public key.
    Ed25519(Vec<u8>),
    /// An HMAC secret.
    Secret(Vec<u8>),
}

impl KeySet {
    /// The keys of the JWKS file at `path`; `at` is `authorizers.NAME.jwks.path`. The file is
    /// part of the definition, so every key in it must be usable.
    pub(super) fn read_file(path: &Path, at: &KeyPath) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(at.clone(), format!("cannot read {}: {e}", path.display()))
        })?;
        let jwks = parse_jwks(&text).map_err(|message| Error::config(at.clone(), message))?;
        let keys = build_keys(&jwks, true)
            .map_err(|(i, message)| Error::config(at.clone(), format!("keys[{i}]: {message}")))?;
        if keys.is_empty() {
            return Err(Error::config(at.clone(), "the file holds no signing keys"));
        }
        Ok(KeySet::new(keys, jwks, 1))
    }

    /// The JWKs written in the definition; `at` is `authorizers.NAME.jwks.keys`. Every key must
    /// be usable.
    pub(super) fn inline(jwks: &[Value], at: &KeyPath) -> Result<Self, Error> {
        let keys =
            build_keys(jwks, true).map_err(|(i, message)| Error::config(at.index(i), message))?;
        if keys.is_empty() {
            return Err(Error::config(
                at.clone(),
                "no signing keys (`use: sig` or no `use`)",
            ));
        }
        Ok(KeySet::new(keys, jwks.to_vec(), 1))
    }

    /// A fetched JWKS document as the set that follows `previous`: of the same generation when
    /// it holds the same JWKs, of the next one otherwise. Keys this gateway cannot use are
    /// skipped (an identity provider may publish encryption keys or algorithms we do not
    /// verify); a document without any usable key is refused.
    pub(super) fn fetched(text: &str, previous: Option<&KeySet>) -> Result<Self, String> {
        let jwks = parse_jwks(text)?;
        let keys =
            build_keys(&jwks, false).map_err(|(i, message)| format!("keys[{i}]: {message}"))?;
        if keys.is_empty() {
            return Err("the JWKS holds no usable signing keys".to_owned());
        }
        let generation = match previous {
            Some(previous) if previous.jwks == jwks => previous.generation,
            Some(previous) => previous.generation + 1,
            None => 1,
        };
        Ok(KeySet::new(keys, jwks, generation))
    }

    /// A set loaded now.
    fn new(keys: Vec<JwtKey>, jwks: Vec<Value>, generation: u64) -> Self {
        KeySet {
            keys,
            generation,
            jwks,
            loaded_at: Instant::now(),
        }
    }

    /// The set's generation: tokens verified with it are cached under this number.
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// When the set was read.
    pub(super) fn loaded_at(&self) -> Instant {
        self.loaded_at
    }

    /// Whether some key carries this `kid`.
    pub(super) fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid.as_deref() == Some(kid))
    }

    /// The key that verifies a token with this `kid` and `alg`: the first key with that `kid`
    /// allowing `alg`; without a `kid`, the one key allowing `alg`, if exactly one does. The
    /// error is a 401's reason.
    pub(super) fn select(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<&Verifier, &'static str> {
        match kid {
            Some(kid) => {
                let mut named = self
                    .keys
                    .iter()
                    .filter(|key| key.kid.as_deref() == Some(kid))
                    .peekable();
                if named.peek().is_none() {
                    return Err("no signing key matches the token's kid");
                }
                named
                    .find_map(|key| key.verifying(alg))
                    .ok_or("the token's algorithm is not allowed for its key")
            }
            None => {
                let mut fitting = self.keys.iter().filter_map(|key| key.verifying(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(only), None) => Ok(only),
                    (None, _) => Err("no signing key allows the token's algorithm"),
                    (Some(_), Some(_)) => {
                        Err("the token has no kid and several signing keys allow its algorithm")
                    }
                }
            }
        }
    }
}

impl JwtKey {
    /// The key's verifier for `alg`, if the key allows `alg`.
    fn verifying(&self, alg: Algorithm) -> Option<&Verifier> {
        self.verifiers
            .iter()
            .find(|(allowed, _)| *allowed == alg)
            .map(|(_, verifier)| verifier)
    }
}

/// The `keys` of a JWKS document, each left as JSON so that one bad key can be named (or
/// skipped) without failing the others.
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
fn parse_jwk(value: &Value) -> Result<Option<JwtKey>, String> {
    let object = value.as_object().ok_or("a JWK is a JSON object")?;
    let read: Map<String, Value> = READ_MEMBERS
        .iter()
        .filter_map(|name| object.get_key_value(*name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let jwk = match Jwk::deserialize(&Value::Object(read)) {
        Ok(jwk) => jwk,
        Err(e) => {
            // A key for another use is skipped whatever else it holds.
            if matches!(member(object, "use"), Ok(Some(usage)) if usage != "sig") {
                return Ok(None);
            }
            check_members(object)?;
            return Err(format!("not a JWK: {e}"));
        }
    };
    if !matches!(
        jwk.common.public_key_use,
        None | Some(PublicKeyUse::Signature)
    ) {
        return Ok(None);
    }
    // jsonwebtoken reads a JWK whose `kty` or members it does not recognise as `Other`.
    if matches!(jwk.algorithm, AlgorithmParameters::Other(_)) {
        check_members(object)?;
        return Err("not a usable JWK".to_owned());
    }
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(alg) => {
            Some(Algorithm::try_from(alg).map_err(|_| unsupported_alg(sent(object, "alg")))?)
        }
    };
    let (material, family) = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => rsa_key(rsa)?,
        AlgorithmParameters::EllipticCurve(ec) => ec_key(ec, sent(object, "crv"))?,
        AlgorithmParameters::OctetKeyPair(okp) => ed_key(okp, sent(object, "crv"))?,
        AlgorithmParameters::OctetKey(oct) => hmac_key(oct, alg)?,
        _ => {
            check_members(object)?;
            return Err("not a usable JWK".to_owned());
        }
    };
    let kty = sent(object, "kty");
    let algorithms = match alg {
        None => family,
        Some(alg) if family.contains(&alg) => vec![alg],
        Some(alg) => return Err(format!("alg {alg:?} does not fit kty {kty}")),
    };
    let verifiers = algorithms
        .into_iter()
        .map(|alg| Ok((alg, verifier(&material, alg)?)))
        .collect::<Result<_, String>>()?;
    Ok(Some(JwtKey {
        kid: jwk.common.key_id,
        verifiers,
    }))
}

/// `material`'s verifier for `alg` (one of the algorithms its key type allows). Parsing the key
/// here refuses a point off its curve or a bad Ed25519 key when the set is read, not at the
/// first token.
fn verifier(material: &KeyMaterial, alg: Algorithm) -> Result<Verifier, String> {
    let unusable = |e: aws_lc_rs::error::KeyRejected| format!("unusable key: {e}");
    Ok(match material {
        KeyMaterial::Rsa { n, e } => {
            let parameters: &'static RsaParameters = match alg {
                Algorithm::RS256 => &aws::RSA_PKCS1_2048_8192_SHA256,
                Algorithm::RS384 => &aws::RSA_PKCS1_2048_8192_SHA384,
                Algorithm::RS512 => &aws::RSA_PKCS1_2048_8192_SHA512,
                Algorithm::PS256 => &aws::RSA_PSS_2048_8192_SHA256,
                Algorithm::PS384 => &aws::RSA_PSS_2048_8192_SHA384,
                Algorithm::PS512 => &aws::RSA_PSS_2048_8192_SHA512,
                _ => return Err(format!("alg {alg:?} does not fit kty RSA")),
            };
            let components = RsaPublicKeyComponents { n, e };
            Verifier::PublicKey(
                components
                    .to_parsed_public_key(parameters)
                    .map_err(unusable)?,
            )
        }
        KeyMaterial::Ec(point) => {
            let algorithm: &'static dyn VerificationAlgorithm = match alg {
                Algorithm::ES256 => &aws::ECDSA_P256_SHA256_FIXED,
                Algorithm::ES384 => &aws::ECDSA_P384_SHA384_FIXED,
                _ => return Err(format!("alg {alg:?} does not fit kty EC")),
            };
            Verifier::PublicKey(ParsedPublicKey::new(algorithm, point).map_err(unusable)?)
        }
        KeyMaterial::Ed25519(x) => {
            Verifier::PublicKey(ParsedPublicKey::new(&aws::ED25519, x).map_err(unusable)?)
        }
        KeyMaterial::Secret(secret) => {
            let algorithm = match alg {
                Algorithm::HS256 => hmac::HMAC_SHA256,
                Algorithm::HS384 => hmac::HMAC_SHA384,
                Algorithm::HS512 => hmac::HMAC_SHA512,
                _ => return Err(format!("alg {alg:?} does not fit kty oct")),
            };
            Verifier::Hmac(Box::new(hmac::Key::new(algorithm, secret)))
        }
    })
}

/// An RSA JWK's key, checked by [`check_rsa`], for the RSA and RSA-PSS algorithms.
fn rsa_key(rsa: &RSAKeyParameters) -> Result<(KeyMaterial, Vec<Algorithm>), String> {
    let n = base64url(&rsa.n, "n")?;
    let e = base64url(&rsa.e, "e")?;
    check_rsa(&n, &e)?;
    let (n, e) = (
        trim_leading_zeros(&n).to_vec(),
        trim_leading_zeros(&e).to_vec(),
    );
    Ok((KeyMaterial::Rsa { n, e }, RSA_ALGORITHMS.to_vec()))
}

/// An EC JWK's key on P-256 (ES256) or P-384 (ES384); `crv` is the curve's name as sent.
fn ec_key(
    ec: &EllipticCurveKeyParameters,
    crv: &str,
) -> Result<(KeyMaterial, Vec<Algorithm>), String> {
    let (alg, size) = match ec.curve {
        EllipticCurve::P256 => (Algorithm::ES256, 32),
        EllipticCurve::P384 => (Algorithm::ES384, 48),
        _ => return Err(unsupported_curve(crv, "P-256 or P-384")),
    };
    let mut point = vec![4u8];
    for (name, coordinate) in [("x", &ec.x), ("y", &ec.y)] {
        let coordinate = base64url(coordinate, name)?;
        if coordinate.len() != size {
            return Err(format!("`{name}` must be {size} bytes for {crv}"));
        }
        point.extend_from_slice(&coordinate);
    }
    Ok((KeyMaterial::Ec(point), vec![alg]))
}

/// An OKP JWK's Ed25519 key (EdDSA); `crv` is the curve's name as sent.
fn ed_key(
    okp: &OctetKeyPairParameters,
    crv: &str,
) -> Result<(KeyMaterial, Vec<Algorithm>), String> {
    if okp.curve != EllipticCurve::Ed25519 {
        return Err(unsupported_curve(crv, "Ed25519"));
    }
    let x = base64url(&okp.x, "x")?;
    if x.len() != 32 {
        return Err("`x` must be 32 bytes for Ed25519".to_owned());
    }
    Ok((KeyMaterial::Ed25519(x), vec![Algorithm::EdDSA]))
}

/// An `oct` JWK's HMAC secret, for the HMAC algorithms its length allows (RFC 7518 §3.2: at
/// least as long as the hash output); a named `alg` it is too short for is refused.
fn hmac_key(
    oct: &OctetKeyParameters,
    alg: Option<Algorithm>,
) -> Result<(KeyMaterial, Vec<Algorithm>), String> {
    let secret = base64url(&oct.value, "k")?;
    let long_enough = |alg: &Algorithm| secret.len() >= hmac_key_bytes(*alg);
    if let Some(alg) = alg.filter(|alg| HMAC_ALGORITHMS.contains(alg) && !long_enough(alg)) {
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
    Ok((KeyMaterial::Secret(secret), family))
}

/// Why `jsonwebtoken`'s types would not read a JWK, named after the first member at fault in
/// the order they matter: `use`, `kty`, `alg`, the key type's own members, `kid`. `Ok` when
/// none of these is at fault (another member is).
fn check_members(object: &Map<String, Value>) -> Result<(), String> {
    member(object, "use")?;
    let kty = member(object, "kty")?.ok_or("`kty` is required")?;
    if let Some(name) = member(object, "alg")? {
        name.parse::<Algorithm>()
            .map_err(|_| unsupported_alg(name))?;
    }
    let required = |name: &str| {
        member(object, name)?.ok_or_else(|| format!("`{name}` is required for kty {kty}"))
    };
    match kty {
        "RSA" => {
            required("n")?;
            required("e")?;
        }
        "EC" => {
            let crv = required("crv")?;
            if !matches!(crv, "P-256" | "P-384") {
                return Err(unsupported_curve(crv, "P-256 or P-384"));
            }
            required("x")?;
            required("y")?;
        }
        "OKP" => {
            let crv = required("crv")?;
            if crv != "Ed25519" {
                return Err(unsupported_curve(crv, "Ed25519"));
            }
            required("x")?;
        }
        "oct" => {
            required("k")?;
        }
        other => {
            return Err(format!(
                "unsupported kty \"{other}\": expected RSA, EC, OKP or oct"
            ))
        }
    }
    member(object, "kid")?;
    Ok(())
}

/// A JWK member that is a string when present (`null` counts as absent).
fn member<'a>(object: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.as_str())),
        Some(_) => Err(format!("`{name}` must be a string")),
    }
}

/// A string member as sent, to quote in a message (`""` if it is not a string).
fn sent<'a>(object: &'a Map<String, Value>, name: &str) -> &'a str {
    object.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// The refusal of an `alg` this gateway does not verify.
fn unsupported_alg(name: &str) -> String {
    format!(
        "unsupported alg \"{name}\": expected RS256/384/512, PS256/384/512, ES256, ES384, EdDSA \
         or HS256/384/512"
    )
}

/// The refusal of a curve this gateway does not verify for the key's type.
fn unsupported_curve(crv: &str, expected: &str) -> String {
    format!("unsupported curve \"{crv}\": expected {expected}")
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
    use serde_json::json;

    use super::super::fixtures::*;
    use super::*;

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
            (
                "use not a string",
                with(rsa, json!({"use": 5})),
                Some("`use` must be a string"),
            ),
            (
                "enc with junk",
                json!({"use": "enc", "kid": 5, "kty": 7}),
                None,
            ),
            ("another use", json!({"use": "tls", "kty": "RSA"}), None),
            (
                "no kty",
                json!({"n": rsa["n"], "e": rsa["e"]}),
                Some("`kty` is required"),
            ),
            (
                "kty not a string",
                json!({"kty": 5}),
                Some("`kty` must be a string"),
            ),
            (
                "alg not a string",
                with(rsa, json!({"alg": 5})),
                Some("`alg` must be a string"),
            ),
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
            (
                "kid not a string",
                with(rsa, json!({"kid": 5})),
                Some("`kid` must be a string"),
            ),
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
            (
                "oct without k",
                json!({"kty": "oct"}),
                Some("`k` is required for kty oct"),
            ),
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
        // Nulls count as absent, padding is tolerated, members it does not use are ignored.
        for (name, jwk) in [
            (
                "nulls",
                with(rsa, json!({"kid": null, "alg": null, "use": null})),
            ),
            (
                "padded base64url",
                with(rsa, json!({"n": padded_n, "use": "sig"})),
            ),
            (
                "members it does not read, of any type",
                with(rsa, json!({"x5c": "not a list", "key_ops": 5, "x5t": [1]})),
            ),
        ] {
            if !matches!(parse_jwk(&jwk), Ok(Some(_))) {
                failures.push(format!("{name}: expected a key"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
