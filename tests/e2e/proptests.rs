//! Nothing a client sends makes the router or the gateway panic, and every gateway answer
//! carries an `apigw-requestid` and a sane status.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request};
use portico::{ApiDefinition, Format, Gateway, Router};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Routes of every kind: literal, parameter, greedy at several depths, `ANY`, `$default`.
const ROUTES: &[&str] = &[
    "GET /",
    "GET /pets",
    "GET /pets/dog",
    "GET /pets/{id}",
    "POST /pets/{id}",
    "GET /pets/{id}/toys/{toyId}",
    "GET /pets/{proxy+}",
    "HEAD /files/{name}",
    "OPTIONS /files/{proxy+}",
    "ANY /{proxy+}",
    "GET /{tenant}/files/{proxy+}",
    "DELETE /{a}/{b}",
    "$default",
];

/// Pieces that paths are made of: what routes look for, and what breaks naive routers.
fn path_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("/".to_owned()),
        4 => prop::sample::select(vec![
            ".", "..", "%", "%2", "%2e", "%2E", "%2F", "%2f", "%25", "%2541", "%FF", "%C3",
            "%C3%A9", "%E2%82", "%00", "%20", "+", "?", "?a=b&c", "#", "#frag", "{", "}",
            "{proxy+}", "*", ";", ":", "@", "\\", " ", "\t", "pets", "dog", "files", "toys",
            "prod", "dev", "$default", "v1", "é", "日本", "🦀", "\u{0}", "\u{7f}", "\u{fffd}",
        ])
        .prop_map(str::to_owned),
        2 => "[a-zA-Z0-9._~-]{1,6}",
        1 => any::<char>().prop_map(String::from),
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::collection::vec(path_piece(), 0..10).prop_map(|pieces| pieces.concat()),
        1 => any::<String>(),
        1 => "\\PC{0,20}",
    ]
}

/// Valid methods: the standard ones and arbitrary tokens (RFC 9110 `tchar`s).
fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        prop::sample::select(vec![
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::HEAD,
            Method::OPTIONS,
            Method::CONNECT,
            Method::TRACE,
        ]),
        "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,16}"
            .prop_map(|token| Method::from_bytes(token.as_bytes()).expect("a token is a method")),
    ]
}

/// Headers as raw bytes; the invalid ones are dropped when the request is built.
fn headers() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let name = prop_oneof![
        prop::sample::select(vec![
            "host",
            "content-type",
            "content-length",
            "authorization",
            "x-api-key",
            "origin",
            "access-control-request-method",
            "cookie",
            "x-forwarded-for",
            "apigw-requestid",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,20}",
        any::<String>(),
    ];
    let value = prop_oneof![
        "[ -~]{0,40}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..40),
    ];
    prop::collection::vec((name, value), 0..8)
}

fn router() -> Router<&'static str> {
    let mut router = Router::new();
    for key in ROUTES {
        router.insert(key, *key).expect("the routes are valid");
    }
    router
}

/// Whether the route module's docs say `path` can never be routed: it does not start with
/// `/`, or (one trailing slash aside) it has an empty, `.` or `..` segment, percent-encoded
/// or not.
fn unroutable(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return true;
    };
    if rest.is_empty() {
        return false; // the root
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    rest.split('/').any(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        segment.is_empty() || decoded == "." || decoded == ".."
    })
}

/// A runner for `cases` cases, or as many as `PROPTEST_CASES` asks for (for a longer hunt).
fn runner(cases: u32) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    TestRunner::new(Config {
        cases,
        ..Config::default()
    })
}

#[test]
fn router_never_panics_and_refuses_unroutable_paths() {
    let router = router();
    runner(512)
        .run(&(method(), path()), |(method, path)| {
            let found = router.at(&method, &path);
            if unroutable(&path) {
                prop_assert!(
                    found.is_none(),
                    "{method} {path:?} is unroutable but matched {:?}",
                    found.as_ref().map(|m| m.route_key())
                );
            }
            if let Some(found) = found {
                prop_assert!(ROUTES.contains(&found.route_key()));
                prop_assert_eq!(found.route_key(), *found.value);
                let params: Vec<_> = found.params().collect();
                if found.route_key() == "$default" {
                    prop_assert!(params.is_empty());
                }
            }
            Ok(())
        })
        .unwrap();
}

/// One gateway for every case: named stages, a `$default` stage, greedy routes, mocks and
/// gateway response overrides that use stage variables.
const API: &str = r#"
name: proptest-api
routes:
  GET /:
    integration: { type: mock, body: root }
  GET /pets/{id}:
    integration: { type: mock, statusCode: 200, body: '{"table":"${stageVariables.TABLE}"}' }
  POST /pets:
    integration: { type: mock, statusCode: 201, headers: { location: '/pets/1' } }
  ANY /files/{proxy+}:
    integration: { type: mock, statusCode: 204 }
  GET /{tenant}/files/{proxy+}:
    integration: { type: mock, statusCode: 302, headers: { location: '${stageVariables.HOME}' } }
  HEAD /health:
    integration: { type: mock, body: ok }
  $default:
    integration: { type: mock, statusCode: 418, body: teapot }
stages:
  $default:
    variables: { TABLE: default-Users, HOME: 'https://example.com/' }
  prod:
    variables: { TABLE: prod-Users }
  dev:
    variables: { TABLE: dev-Users, HOME: /dev }
gatewayResponses:
  RESOURCE_NOT_FOUND:
    statusCode: 404
    headers: { x-table: '${stageVariables.TABLE}' }
    body: '{"error":$context.error.messageString,"id":"$context.requestId","stage":"$context.stage"}'
  DEFAULT_5XX:
    body: 'oops'
"#;

/// A request target the http crate accepts: `path` as is, else with every byte it may refuse
/// percent-encoded (`%` itself stays, so the router still sees broken escapes), else that
/// with a leading `/`.
fn uri_for(path: &str, absolute: bool) -> Option<http::Uri> {
    // Origin form as generated (the http crate judges it); absolute form needs a `/` after
    // the host.
    let prefix = match (absolute, path.starts_with('/')) {
        (false, _) => "",
        (true, true) => "http://example.com",
        (true, false) => "http://example.com/",
    };
    if let Ok(uri) = format!("{prefix}{path}").parse() {
        return Some(uri);
    }
    let mut escaped = String::with_capacity(path.len() * 3);
    for byte in path.bytes() {
        if byte.is_ascii_graphic() && !b"\"<>\\^`{|}#".contains(&byte) {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    // A request target that is not a path (`*`, `host:port`) may parse as is; other
    // strings without a leading `/` can only reach a gateway with one.
    format!("{prefix}{escaped}")
        .parse()
        .or_else(|_| format!("/{escaped}").parse())
        .ok()
}

#[test]
fn gateway_never_panics_and_always_answers_with_a_request_id() {
    let gateway = Gateway::new(&ApiDefinition::from_str_as(API, Format::Yaml).unwrap()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let body = prop_oneof![
        Just(Bytes::new()),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from),
    ];
    let input = (method(), path(), any::<bool>(), headers(), body);
    runner(512)
        .run(&input, |(method, path, absolute, headers, body)| {
            // What the http crate refuses never reaches a gateway: not our panic to find.
            let Some(uri) = uri_for(&path, absolute) else {
                return Ok(());
            };
            let Ok(mut request) = Request::builder()
                .method(method.clone())
                .uri(uri)
                .body(body)
            else {
                return Ok(());
            };
            for (name, value) in headers {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_bytes(&value),
                ) {
                    request.headers_mut().append(name, value);
                }
            }
            let response = runtime.block_on(gateway.handle(request));
            let status = response.status().as_u16();
            prop_assert!((200..600).contains(&status), "status {}", status);
            let id = response
                .headers()
                .get("apigw-requestid")
                .ok_or_else(|| TestCaseError::fail("no apigw-requestid header"))?;
            prop_assert!(!id.is_empty());
            prop_assert_eq!(
                response.headers().get_all("apigw-requestid").iter().count(),
                1
            );
            if method == Method::HEAD {
                prop_assert!(response.body().is_empty(), "a body in answer to HEAD");
            }
            Ok(())
        })
        .unwrap();
}

/// An API whose every route sits behind an authorizer or an API key.
const AUTH_API: &str = r#"
name: authorize-proptest
plugins:
  policy: { path: ../../plugins/dist/policy_authorizer.wasm }
authorizers:
  jwt:
    type: jwt
    issuer: https://issuer.example
    audience: [aud-1]
    jwks: { keys: [{ kty: oct, kid: k1, alg: HS256, k: cHJvcHRlc3Qtc2VjcmV0LXByb3B0ZXN0LXNlY3JldC0w }] }
  custom:
    type: request
    plugin: policy
    identitySource: [$request.header.Authorization, $request.querystring.t]
apiKeys:
  - { name: k, value: k-proptest-0123456789abc }
routes:
  GET /jwt/{proxy+}: { integration: { type: mock }, authorizer: jwt, authorizationScopes: [read] }
  ANY /custom/{proxy+}: { integration: { type: mock }, authorizer: custom }
  GET /keyed: { integration: { type: mock }, apiKeyRequired: true }
stages:
  $default: {}
"#;

/// HS256 with the API's `oct` key (`proptest-secret-proptest-secret-0`).
fn signed(header: &serde_json::Value, claims: &serde_json::Value) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let input = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    let key = jsonwebtoken::EncodingKey::from_secret(b"proptest-secret-proptest-secret-0");
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
            .expect("signs");
    format!("{input}.{signature}")
}

/// Tokens: random text, JWT-shaped junk, and real tokens with random claims or one byte changed.
fn token() -> impl Strategy<Value = String> {
    let claim_value = prop_oneof![
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
        Just(serde_json::json!(["read", "write"])),
        Just(serde_json::Value::Null),
        Just(serde_json::json!({"nested": [1, {"x": "y"}]})),
    ];
    let claims = prop::collection::btree_map(
        prop::sample::select(vec![
            "iss",
            "aud",
            "client_id",
            "exp",
            "nbf",
            "sub",
            "scope",
            "scp",
            "x",
        ]),
        claim_value,
        0..8,
    )
    .prop_map(|map| {
        serde_json::Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    });
    let header = prop_oneof![
        Just(serde_json::json!({"alg": "HS256", "kid": "k1"})),
        Just(serde_json::json!({"alg": "HS256"})),
        Just(serde_json::json!({"alg": "none", "kid": "k1"})),
        Just(serde_json::json!({"alg": "RS256", "kid": "k1"})),
        Just(serde_json::json!({"alg": "HS256", "kid": "other"})),
        Just(serde_json::json!({"kid": 5})),
    ];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let good = serde_json::json!({
        "iss": "https://issuer.example", "aud": "aud-1", "sub": "s", "scope": "read", "exp": now + 600,
    });
    let valid = signed(&serde_json::json!({"alg": "HS256", "kid": "k1"}), &good);
    prop_oneof![
        1 => Just(valid),
        3 => "\\PC{0,60}",
        2 => prop::collection::vec("[A-Za-z0-9_=+/-]{0,30}", 1..5).prop_map(|parts| parts.join(".")),
        2 => (header.clone(), claims).prop_map(|(h, c)| signed(&h, &c)),
        2 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(move |(at, byte)| {
            let mut token = signed(&serde_json::json!({"alg": "HS256", "kid": "k1"}), &good).into_bytes();
            let i = at.index(token.len());
            token[i] = byte;
            String::from_utf8_lossy(&token).into_owned()
        }),
        1 => prop::sample::select(vec!["allow", "deny", "trap", "bad-policy", "allow-only=GET/x", "no-policy"])
            .prop_map(str::to_owned),
    ]
}

#[test]
fn the_authorize_phase_never_panics() {
    let plugin = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/dist/policy_authorizer.wasm");
    assert!(
        plugin.exists(),
        "{} is missing: run plugins/build",
        plugin.display()
    );
    let definition = ApiDefinition::from_str_as(AUTH_API, Format::Yaml).unwrap();
    let gateway = Gateway::builder(definition)
        .base_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e"))
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let target = prop::sample::select(vec![
        "/jwt/a",
        "/custom/a?t=1",
        "/custom/a",
        "/keyed",
        "/custom/a?t=",
    ]);
    let bearer = prop::sample::select(vec!["", "Bearer ", "bearer ", "BEARER  "]);
    let input = (target, bearer, token(), headers(), "\\PC{0,30}");
    let seen = std::cell::RefCell::new(std::collections::BTreeSet::new());
    runner(512)
        .run(&input, |(target, bearer, token, headers, api_key)| {
            let mut request = Request::get(target).body(Bytes::new()).unwrap();
            for (name, value) in headers {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_bytes(&value),
                ) {
                    request.headers_mut().append(name, value);
                }
            }
            if let Ok(value) = HeaderValue::from_str(&format!("{bearer}{token}")) {
                request.headers_mut().insert("authorization", value);
            }
            if let Ok(value) = HeaderValue::from_str(&api_key) {
                request.headers_mut().insert("x-api-key", value);
            }
            let response = runtime.block_on(gateway.handle(request));
            let status = response.status().as_u16();
            seen.borrow_mut().insert(status);
            prop_assert!(
                [200, 401, 403, 500].contains(&status),
                "status {} {:?}",
                status,
                response.body()
            );
            Ok(())
        })
        .unwrap();
    // The inputs reach every outcome, not only the first refusal.
    if std::env::var("PROPTEST_CASES").is_err() {
        assert!(
            seen.borrow().is_superset(&[200, 401, 403].into()),
            "{seen:?}"
        );
    }
}

/// Pieces of access log formats: variable names whole and cut, and what JSON and lines care about.
fn format_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "$context.", "$context", "$", "authorizer.", "authorizer", "claims.", "claims",
            "principalId", "error", "requestId", "status", "identity.sourceIp", "requestTime",
            "error.messageString", ".", "..", "_", "{", "}", "\"", "\\", " ", "\n", "é", "🦀",
        ])
        .prop_map(str::to_owned),
        1 => "[a-zA-Z0-9._]{1,8}",
    ]
}

#[test]
fn access_log_formats_never_panic_the_gateway() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let formats = prop::collection::vec(format_piece(), 0..12).prop_map(|p| p.concat());
    let (captured, _guard) = portico_tests::Captured::start();
    let (loaded, refused) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    runner(256)
        .run(&formats, |format| {
            let mut definition = ApiDefinition::from_str_as(
                "name: t\nroutes:\n  GET /x: { integration: { type: mock } }\nstages:\n  prod: {}\n",
                Format::Yaml,
            )
            .unwrap();
            let mut stage = portico::config::StageDefinition::default();
            stage.access_log = Some(portico::config::AccessLogDefinition::new(format));
            definition.stages = [("prod", stage)].into_iter().collect();
            let Ok(gateway) = Gateway::new(&definition) else {
                refused.set(refused.get() + 1);
                return Ok(());
            };
            loaded.set(loaded.get() + 1);
            let before = captured.text().len();
            let request = Request::get("/prod/x").body(Bytes::new()).unwrap();
            let response = runtime.block_on(gateway.handle(request));
            prop_assert_eq!(response.status(), 200);
            // One line was written for the request (an empty format writes an empty line).
            prop_assert!(captured.text()[before..].ends_with('\n'));
            Ok(())
        })
        .unwrap();
    // Both kinds of format were tried.
    let (loaded, refused) = (loaded.get(), refused.get());
    assert!(
        loaded > 0 && refused > 0,
        "loaded {loaded}, refused {refused}"
    );
}
