//! CORS end to end through `Gateway` (HTTP API semantics): preflights answered by the gateway
//! itself, CORS headers on actual answers (integration and gateway responses alike), origin
//! wildcards, and the settings refused at load time.

use bytes::Bytes;
use portico::config::CorsDefinition;
use portico::{ApiDefinition, Format, Gateway, Protocol};
use portico_tests::{Answer, EchoApi};

const APP: &str = "https://app.example.com";

/// The CORS API, its `cors` settings changed by `edit`.
struct Fixture(EchoApi);

impl Fixture {
    fn new(edit: impl FnOnce(&mut CorsDefinition)) -> Self {
        Fixture(EchoApi::load("cors-api.yaml", |d| {
            edit(d.cors.as_mut().expect("the file sets cors"))
        }))
    }

    async fn send(&self, method: &str, uri: &str, headers: &[(&str, &str)]) -> Answer {
        self.0.send(method, uri, headers, Bytes::new()).await
    }

    async fn preflight(&self, origin: &str, method: &str, headers: Option<&str>) -> Answer {
        let mut list = vec![
            ("origin", origin),
            ("access-control-request-method", method),
        ];
        if let Some(headers) = headers {
            list.push(("access-control-request-headers", headers));
        }
        self.send("OPTIONS", "/api/users/7?kv=1", &list).await
    }

    fn echo_calls(&self) -> usize {
        self.0.echo_calls()
    }
}

#[tokio::test]
async fn an_allowed_preflight_is_answered_by_the_gateway() {
    let f = Fixture::new(|_| {});
    let r = f
        .preflight(APP, "POST", Some("Content-Type, Authorization"))
        .await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET,POST,PUT,DELETE")
    );
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("authorization,content-type")
    );
    assert_eq!(r.header("access-control-max-age"), Some("3600"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("access-control-expose-headers"), None);
    assert_eq!(r.header("vary"), Some("origin"));
    assert!(r.header("apigw-requestid").is_some());
    // Methods and headers are compared without regard to case; no requested headers is fine.
    let r = f
        .preflight("https://ADMIN.example.com", "delete", None)
        .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://ADMIN.example.com")
    );
    // `ANY /api/{proxy+}` would have answered OPTIONS: the echo plugin never ran.
    assert_eq!(f.echo_calls(), 0);
    // A preflight to a path no route serves is answered all the same.
    let r = f
        .send(
            "OPTIONS",
            "/nowhere",
            &[("origin", APP), ("access-control-request-method", "GET")],
        )
        .await;
    assert_eq!(
        (r.status, r.header("access-control-allow-origin")),
        (204, Some(APP))
    );
}

#[tokio::test]
async fn preflights_are_access_logged_under_their_stage_without_a_route() {
    let yaml = r#"
name: cors-log
routes:
  GET /pets: { integration: { type: mock } }
cors: { allowOrigins: ["https://app.example.com"], allowMethods: [GET] }
stages:
  prod: { accessLog: { format: '$context.httpMethod $context.stage $context.routeKey $context.status' } }
"#;
    let gateway = Gateway::new(&ApiDefinition::from_str_as(yaml, Format::Yaml).unwrap()).unwrap();
    let (captured, _guard) = portico_tests::Captured::start();
    for uri in ["/prod/pets", "/elsewhere"] {
        let request = http::Request::builder()
            .method("OPTIONS")
            .uri(uri)
            .header("origin", APP)
            .header("access-control-request-method", "GET")
            .body(Bytes::new())
            .unwrap();
        assert_eq!(gateway.handle(request).await.status(), 204);
    }
    // The second path names no stage: no stage's access log has it.
    assert_eq!(captured.text(), "OPTIONS prod - 204\n");
}

#[tokio::test]
async fn a_refused_preflight_has_no_cors_headers() {
    let f = Fixture::new(|_| {});
    let refused = [
        ("https://evil.example.com", "POST", None),
        ("https://app.example.com.evil.test", "POST", None),
        ("http://app.example.com", "POST", None),
        (APP, "PATCH", None),
        (APP, "POST", Some("content-type, x-secret")),
    ];
    for (origin, method, headers) in refused {
        let r = f.preflight(origin, method, headers).await;
        assert_eq!(r.status, 204, "{origin} {method} {headers:?}");
        assert!(
            r.has_no_cors_headers(),
            "{origin} {method} {headers:?}: {:?}",
            r.headers
        );
        assert_eq!(r.header("vary"), Some("origin"));
    }
    assert_eq!(f.echo_calls(), 0);
}

#[tokio::test]
async fn options_that_is_not_a_preflight_reaches_its_route() {
    let f = Fixture::new(|_| {});
    let r = f.send("OPTIONS", "/api/x?kv=1", &[("origin", APP)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(r#""method":"OPTIONS""#), "{}", r.body);
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert_eq!(f.echo_calls(), 1);
}

#[tokio::test]
async fn actual_answers_carry_origin_credentials_and_exposed_headers() {
    let f = Fixture::new(|_| {});
    let r = f.send("GET", "/api/users", &[("origin", APP)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("x-request-id,date")
    );
    assert_eq!(r.header("vary"), Some("origin"));
    // Preflight-only headers stay off actual answers.
    assert_eq!(r.header("access-control-allow-methods"), None);
    assert_eq!(r.header("access-control-max-age"), None);
    // A refused origin, or none at all: no CORS headers (but caches still vary on Origin).
    for headers in [&[("origin", "https://evil.example.com")][..], &[]] {
        let r = f.send("GET", "/api/users", headers).await;
        assert_eq!(r.status, 200);
        assert!(r.has_no_cors_headers(), "{:?}", r.headers);
        assert_eq!(r.header("vary"), Some("origin"));
    }
}

#[tokio::test]
async fn the_integrations_own_cors_headers_are_replaced() {
    let f = Fixture::new(|_| {});
    let r = f.send("GET", "/backend-cors", &[("origin", APP)]).await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert_eq!(r.header("access-control-allow-methods"), None);
    assert_eq!(r.header("x-request-id"), Some("r-1"));
    let r = f
        .send(
            "GET",
            "/backend-cors",
            &[("origin", "https://evil.example.com")],
        )
        .await;
    assert!(r.has_no_cors_headers(), "{:?}", r.headers);
}

#[tokio::test]
async fn gateway_responses_carry_cors_headers_too() {
    let f = Fixture::new(|_| {});
    let r = f.send("GET", "/nowhere", &[("origin", APP)]).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (404, r#"{"message":"Not Found"}"#)
    );
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    let r = f.send("GET", "/keyed", &[("origin", APP)]).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
}

#[tokio::test]
async fn a_lone_star_allows_every_origin() {
    let f = Fixture::new(|c| {
        c.allow_origins = vec!["*".into()];
        c.allow_credentials = false;
    });
    let r = f.preflight("https://anyone.test", "GET", None).await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-credentials"), None);
    assert_eq!(r.header("vary"), None);
    let r = f.send("GET", "/api/x", &[("origin", "null")]).await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("vary"), None);
}

#[tokio::test]
async fn a_scheme_wildcard_allows_every_origin_of_that_scheme() {
    let f = Fixture::new(|c| c.allow_origins = vec!["https://*".into()]);
    let r = f.preflight("https://anyone.test:8443", "PUT", None).await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://anyone.test:8443")
    );
    let r = f.preflight("http://anyone.test", "PUT", None).await;
    assert!(r.has_no_cors_headers());
    let r = f
        .send("GET", "/api/x", &[("origin", "https://b.test")])
        .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://b.test")
    );
}

#[tokio::test]
async fn wildcard_methods_and_headers() {
    let f = Fixture::new(|c| {
        c.allow_origins = vec!["*".into()];
        c.allow_credentials = false;
        c.allow_methods = vec!["*".into()];
        c.allow_headers = vec!["*".into()];
        c.max_age = None;
    });
    let r = f.preflight(APP, "PATCH", Some("x-anything")).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-methods"), Some("*"));
    assert_eq!(r.header("access-control-allow-headers"), Some("*"));
    assert_eq!(r.header("access-control-max-age"), None);
}

#[tokio::test]
async fn without_cors_options_goes_to_the_routes() {
    let api = EchoApi::load("cors-api.yaml", |d| d.cors = None);
    let headers = [("origin", APP), ("access-control-request-method", "GET")];
    let r = api.send("OPTIONS", "/api/x", &headers, Bytes::new()).await;
    assert_eq!(r.status, 200);
    assert!(r.header("access-control-allow-origin").is_none());
}

#[test]
fn bad_settings_are_load_errors_naming_the_key() {
    let cases = [
        (
            "allowOrigins: ['*']\n  allowCredentials: true",
            "cors.allowCredentials",
        ),
        (
            "allowOrigins: [https://*.example.com]",
            "cors.allowOrigins[0]",
        ),
        (
            "allowOrigins: [https://example.com/app]",
            "cors.allowOrigins[0]",
        ),
        ("allowOrigins: [example.com]", "cors.allowOrigins[0]"),
        ("allowMethods: [GET, FETCH]", "cors.allowMethods[1]"),
        ("allowHeaders: ['x a']", "cors.allowHeaders[0]"),
        ("exposeHeaders: ['x:y']", "cors.exposeHeaders[0]"),
        ("maxAge: -2", "cors.maxAge"),
        ("maxAge: 86401", "cors.maxAge"),
        ("maxAge: abc", "cors.maxAge"),
    ];
    for (cors, key) in cases {
        let yaml = format!(
            "name: t\nroutes:\n  GET /: {{integration: {{type: mock}}}}\ncors:\n  {cors}\nstages:\n  $default: {{}}\n"
        );
        let err = ApiDefinition::from_str_as(&yaml, Format::Yaml)
            .map_err(|e| e.to_string())
            .and_then(|d| Gateway::new(&d).map_err(|e| e.to_string()))
            .expect_err(cors);
        assert!(err.starts_with(key), "{cors}: {err}");
    }
    let yaml = "name: t\nprotocol: rest\nroutes:\n  GET /: {integration: {type: mock}}\ncors:\n  allowOrigins: ['*']\nstages:\n  prod: {}\n";
    let mut definition = ApiDefinition::from_str_as(yaml, Format::Yaml).unwrap();
    let err = Gateway::new(&definition).unwrap_err().to_string();
    assert!(err.starts_with("cors: "), "{err}");
    definition.protocol = Protocol::Http;
    Gateway::new(&definition).unwrap();
}

/// A `$default` route with a JWT authorizer catches preflights too, so they meet the
/// authorizer, until an `OPTIONS /{proxy+}` route without one takes them: AWS's "Configuring
/// CORS for an HTTP API with a $default route and JWT authorizer" (http-api-cors.md).
#[tokio::test]
async fn a_preflight_that_reaches_an_authorized_default_route_meets_its_authorizer() {
    let dir = tempfile::tempdir().unwrap();
    let keys = portico_tests::JwtKeys::generate();
    std::fs::write(dir.path().join("jwks.json"), keys.jwks().to_string()).unwrap();
    let api = |extra: &str| {
        let yaml = format!(
            r#"
name: cors-default-jwt
cors: {{ allowOrigins: ["{APP}"], allowMethods: [GET, POST] }}
authorizers:
  jwt: {{ type: jwt, identitySource: $request.header.Authorization, issuer: https://issuer.example, audience: [a], jwks: {{ path: jwks.json }} }}
routes:
  $default: {{ integration: {{ type: mock, body: default }}, authorizer: jwt }}
  {extra}
stages:
  $default: {{}}
"#
        );
        let definition = ApiDefinition::from_str_as(&yaml, Format::Yaml).unwrap();
        Gateway::builder(definition)
            .base_dir(dir.path())
            .build()
            .unwrap()
    };
    let preflight = |gateway: Gateway| async move {
        gateway
            .handle(
                http::Request::builder()
                    .method("OPTIONS")
                    .uri("/orders/7")
                    .header("origin", APP)
                    .header("access-control-request-method", "POST")
                    .body(Bytes::new())
                    .unwrap(),
            )
            .await
    };
    let refused = preflight(api("")).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.body(), r#"{"message":"Unauthorized"}"#);
    let open = preflight(api(
        "OPTIONS /{proxy+}: { integration: { type: mock, body: options } }",
    ))
    .await;
    assert_eq!(open.status(), 204);
    assert_eq!(open.headers()["access-control-allow-origin"], APP);
}
