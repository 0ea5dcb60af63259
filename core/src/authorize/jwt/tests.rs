//! The authorizer as a whole: the table of tokens and how API Gateway judges each, and the
//! load errors of its definition.

use std::path::Path;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use super::fixtures::*;
use super::{JwksFetcher, JwtAuthorizer, JwtRejection, VerifiedToken, MAX_TOKEN_BYTES};
use crate::config::AuthorizerDefinition;
use crate::error::KeyPath;
use crate::time::epoch_seconds_now;

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

#[tokio::test]
async fn tokens_are_judged_as_api_gateway_does() {
    use Expect::*;
    let k = keys();
    let main = authorizer(all_jwks());
    let rsa_only = authorizer(json!([with(&k.rsa_jwk, json!({"kid": "rsa"}))]));
    let now = epoch_seconds_now();
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

    std::fs::write(dir.path().join("bad.json"), r#"{"keys": [{"kty": "EC"}]}"#).expect("writes");
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
