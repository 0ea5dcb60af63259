//! JWT authorizers end to end through `Gateway`: a table of tokens and the status each gets,
//! keys from a JWKS file and from the embedder's fetcher, and the claims the integration sees.
//! Keys are generated here (`portico_tests::JwtKeys`); the module's own table of every
//! algorithm and edge case is in core/src/authorize/jwt/tests.rs.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use portico::{ApiDefinition, Format, Gateway, JwksFetchError, JwksFetcher};
use portico_tests::{b64, unix_now, JwtKeys};
use serde_json::{json, Value};

const ISSUER: &str = "https://issuer.example/pool-1";

fn keys() -> &'static JwtKeys {
    static KEYS: OnceLock<JwtKeys> = OnceLock::new();
    KEYS.get_or_init(JwtKeys::generate)
}

/// The API: one JWT authorizer reading `jwks` (a path, or a url), echo behind it.
fn api(jwks: &str) -> String {
    format!(
        r#"
name: jwt-e2e
plugins:
  echo: {{ path: {dist}/echo.wasm }}
authorizers:
  jwt:
    type: jwt
    identitySource: $request.header.Authorization
    issuer: {ISSUER}
    audience: [client-1, client-2]
    jwks: {jwks}
routes:
  GET /reports: {{ integration: {{ type: plugin, plugin: echo }}, authorizer: jwt, authorizationScopes: [reports.read, admin] }}
  GET /me: {{ integration: {{ type: plugin, plugin: echo }}, authorizer: jwt }}
stages:
  $default: {{}}
"#,
        dist = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../plugins/dist")
            .display()
    )
}

/// A gateway whose key set is a JWKS file.
fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<(tempfile::TempDir, Gateway)> = OnceLock::new();
    &GATEWAY
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("jwks.json"), keys().jwks().to_string()).unwrap();
            let definition =
                ApiDefinition::from_str_as(&api("{ path: jwks.json }"), Format::Yaml).unwrap();
            let gateway = Gateway::builder(definition)
                .base_dir(dir.path())
                .build()
                .expect("JWT API loads");
            (dir, gateway)
        })
        .1
}

fn claims(changes: Value) -> Value {
    let now = unix_now();
    let mut claims = json!({
        "iss": ISSUER, "aud": "client-1", "sub": "user-1", "email": "u1@example.com",
        "iat": now, "exp": now + 600, "scope": "openid reports.read",
    });
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

async fn status_of(gateway: &Gateway, path: &str, authorization: Option<&str>) -> (u16, Value) {
    let mut request = http::Request::get(path);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = gateway.handle(request.body(Bytes::new()).unwrap()).await;
    let body = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
    (response.status().as_u16(), body)
}

#[tokio::test]
async fn each_token_gets_the_status_aws_gives_it() {
    let k = keys();
    let bearer = |token: String| format!("Bearer {token}");
    let now = unix_now();
    let header_none = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64(claims(json!({})).to_string().as_bytes());
    let hs256_with_public_key = {
        let n = k.rsa_jwk["n"].as_str().unwrap();
        let key = jsonwebtoken::EncodingKey::from_secret(n.as_bytes());
        portico_tests::sign(
            jsonwebtoken::Algorithm::HS256,
            "rsa",
            &key,
            &claims(json!({})),
        )
    };
    let tampered = {
        let token = k.rs256(&claims(json!({})));
        let parts: Vec<&str> = token.split('.').collect();
        let forged = b64(claims(json!({"sub": "admin"})).to_string().as_bytes());
        format!("{}.{forged}.{}", parts[0], parts[2])
    };
    let rs = |changes: Value| Some(bearer(k.rs256(&claims(changes))));
    let es = |changes: Value| Some(bearer(k.es256(&claims(changes))));
    let cases: Vec<(&str, &str, Option<String>, u16)> = vec![
        ("RS256", "/reports", rs(json!({})), 200),
        ("ES256", "/reports", es(json!({})), 200),
        (
            "no Bearer prefix",
            "/reports",
            Some(k.rs256(&claims(json!({})))),
            200,
        ),
        (
            "lower-case prefix",
            "/reports",
            Some(format!("bearer {}", k.es256(&claims(json!({}))))),
            200,
        ),
        ("missing", "/reports", None, 401),
        ("empty", "/reports", Some(String::new()), 401),
        ("expired", "/reports", rs(json!({"exp": now - 3600})), 401),
        (
            "not yet valid",
            "/reports",
            rs(json!({"nbf": now + 3600})),
            401,
        ),
        (
            "wrong issuer",
            "/reports",
            rs(json!({"iss": "https://evil.example"})),
            401,
        ),
        (
            "wrong audience",
            "/reports",
            rs(json!({"aud": "client-9"})),
            401,
        ),
        (
            "second audience",
            "/reports",
            rs(json!({"aud": ["x", "client-2"]})),
            200,
        ),
        (
            "client_id instead of aud",
            "/reports",
            rs(json!({"aud": null, "client_id": "client-2"})),
            200,
        ),
        (
            "no scope claim",
            "/reports",
            rs(json!({"scope": null})),
            403,
        ),
        (
            "other scopes",
            "/reports",
            rs(json!({"scope": "openid profile"})),
            403,
        ),
        (
            "one of the route's scopes",
            "/reports",
            rs(json!({"scope": "admin"})),
            200,
        ),
        (
            "scp list",
            "/reports",
            es(json!({"scope": null, "scp": ["reports.read"]})),
            200,
        ),
        ("no scopes needed", "/me", rs(json!({"scope": null})), 200),
        (
            "alg none",
            "/me",
            Some(format!("{header_none}.{payload}.")),
            401,
        ),
        (
            "HS256 with the RSA key",
            "/me",
            Some(bearer(hs256_with_public_key)),
            401,
        ),
        (
            "unknown kid",
            "/me",
            Some(bearer(k.rs256_with_kid("nope", &claims(json!({}))))),
            401,
        ),
        ("tampered payload", "/me", Some(bearer(tampered)), 401),
        ("garbage", "/me", Some("Bearer not.a.jwt".to_owned()), 401),
        ("oversized", "/me", Some(bearer("a".repeat(20_000))), 401),
    ];
    for (name, path, authorization, expected) in cases {
        let (status, body) = status_of(gateway(), path, authorization.as_deref()).await;
        assert_eq!(status, expected, "{name}: {body}");
        let message = match expected {
            401 => json!({"message": "Unauthorized"}),
            403 => json!({"message": "Forbidden"}),
            _ => continue,
        };
        assert_eq!(body, message, "{name}");
    }
}

#[tokio::test]
async fn claims_reach_the_integration() {
    let token = keys().es256(&claims(
        json!({"custom:role": "admin", "groups": ["a", "b"]}),
    ));
    let (status, body) = status_of(gateway(), "/me", Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, 200, "{body}");
    let authorizer = &body["authorizer"];
    assert_eq!(authorizer["principalId"], "user-1");
    assert_eq!(authorizer["context"]["sub"], "user-1");
    assert_eq!(authorizer["context"]["email"], "u1@example.com");
    assert_eq!(authorizer["context"]["custom:role"], "admin");
    assert_eq!(authorizer["context"]["scope"], "openid reports.read");
    assert_eq!(authorizer["context"]["groups"], r#"["a","b"]"#);
    assert!(authorizer["context"]["exp"].is_number());
}

/// The embedder's side of a `jwks.url`: serves a fixed document and counts the fetches.
struct StaticJwks {
    document: String,
    fetches: AtomicUsize,
}

impl JwksFetcher for StaticJwks {
    fn fetch<'a>(
        &'a self,
        url: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String, JwksFetchError>> + Send + 'a>> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            match url {
                "https://issuer.example/pool-1/.well-known/jwks.json" => Ok(self.document.clone()),
                other => Err(JwksFetchError::new(format!("no such URL {other}"))),
            }
        })
    }
}

#[tokio::test]
async fn keys_can_come_from_the_embedders_fetcher() {
    let url_api = api("{ url: 'https://issuer.example/pool-1/.well-known/jwks.json' }");
    let definition = ApiDefinition::from_str_as(&url_api, Format::Yaml).unwrap();
    let error = Gateway::new(&definition).expect_err("a url needs a fetcher");
    assert!(
        error.to_string().contains("authorizers.jwt.jwks"),
        "{error}"
    );
    let fetcher = Arc::new(StaticJwks {
        document: keys().jwks().to_string(),
        fetches: AtomicUsize::new(0),
    });
    let gateway = Gateway::builder(definition)
        .jwks_fetcher(fetcher.clone())
        .build()
        .expect("loads with a fetcher");
    for _ in 0..3 {
        let token = keys().rs256(&claims(json!({})));
        let (status, body) = status_of(&gateway, "/reports", Some(&token)).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        fetcher.fetches.load(Ordering::SeqCst),
        1,
        "one fetch serves many requests"
    );
}

/// A 401 carries AWS's `www-authenticate`, as AWS's "Troubleshooting issues with HTTP API JWT
/// authorizers" (http-api-troubleshooting-jwt.md) shows it: `< HTTP/1.1 401 Unauthorized`,
/// `< Content-Length: 26`, `< www-authenticate: Bearer scope="" error="invalid_token"
/// error_description="the token does not have a valid audience"`, `{"message":"Unauthorized"}`.
#[tokio::test]
async fn a_refused_token_gets_aws_www_authenticate_header() {
    let me = |token: Option<String>| async move {
        let mut request = http::Request::get("/me");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        gateway().handle(request.body(Bytes::new()).unwrap()).await
    };
    let response = me(Some(keys().rs256(&claims(json!({"aud": "client-9"}))))).await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.body(), r#"{"message":"Unauthorized"}"#);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer scope="" error="invalid_token" error_description="the token does not have a valid audience""#
    );
    // An expired token: the same shape, our own description of why.
    let response = me(Some(
        keys().rs256(&claims(json!({"exp": unix_now() - 3600}))),
    ))
    .await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer scope="" error="invalid_token" error_description="the token has expired""#
    );
    // No token: nothing to call invalid (RFC 6750, section 3.1).
    let response = me(None).await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], r#"Bearer scope="""#);
}
