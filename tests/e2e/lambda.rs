//! Plugins of the `lambda` world through the gateway: the Lambda proxy events Portico produces
//! (payload 1.0, for HTTP and REST APIs, and 2.0) read as `aws_lambda_events`' own types with
//! every field as API Gateway fills it in, and the seed guide's Python handlers
//! (plugins/python_users) answering the users API on the kv store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use bytes::Bytes;
use http::Method;
use portico::{ApiDefinition, Format, Gateway};
use portico_tests::e2e_api_file;
use serde_json::{json, Value};

use super::plugins::call;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| {
        let file = e2e_api_file("plugins-api.yaml", &["python_users", "policy_authorizer"]);
        Gateway::from_file(file).expect("plugins API loads")
    })
}

/// The same plugin behind a REST API (payload 1.0 by default).
fn rest_gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| {
        let yaml = r#"
name: rest-e2e
apiId: restapi123
protocol: rest
region: eu-west-1
accountId: "111122223333"
plugins:
  py: { path: python_users.wasm }
routes:
  POST /items/{itemId}/event: { integration: { type: plugin, plugin: py } }
  POST /keyed/{itemId}/event: { integration: { type: plugin, plugin: py }, apiKeyRequired: true }
stages:
  test: { variables: { TABLE: t } }
usagePlans:
  free: { stages: [test] }
apiKeys:
  - { name: customer-001, id: n2xnxga958, value: k-0123456789abcdef0123, usagePlans: [free] }
"#;
        let definition = ApiDefinition::from_str_as(yaml, Format::Yaml).expect("parses");
        Gateway::builder(definition)
            .base_dir(repo().join("plugins/dist"))
            .build()
            .expect("REST API loads")
    })
}

/// The fixed request every event test sends (to `path`, with `/dev` or `/test` in front).
fn fixed_request(uri: &str) -> http::Request<Bytes> {
    let mut request = http::Request::post(uri)
        .header("host", "abc123.example.com")
        .header("user-agent", "curl/8.5.0")
        .header("content-type", "application/json")
        .header("x-multi", "one")
        .header("x-multi", "two")
        .header("cookie", "s=1; t=2")
        .header("cookie", "u=3")
        .body(Bytes::from_static(br#"{"k":"v"}"#))
        .expect("request");
    request
        .extensions_mut()
        .insert(SocketAddr::from(([192, 0, 2, 7], 40_000)));
    request
}

/// The event the plugin saw, as JSON.
async fn event_of(gateway: &Gateway, request: http::Request<Bytes>) -> Value {
    let (status, headers, event) = call(gateway, request).await;
    assert_eq!(status, 200, "{event}");
    assert_eq!(headers["content-type"], "application/json");
    event
}

fn is_clf_time(text: &str) -> bool {
    // 25/Nov/2026:06:30:00 +0000
    text.len() == 26 && text.ends_with(" +0000") && text.as_bytes()[2] == b'/'
}

#[tokio::test]
async fn the_2_0_event_is_api_gateways() {
    let uri = "/dev/py/v2/items/a%20b/event?a=1&a=2&b=x%20y";
    let raw = event_of(gateway(), fixed_request(uri)).await;
    // Absent, never null, when there is nothing to say.
    let context = &raw["requestContext"];
    assert!(context.get("authorizer").is_none(), "{raw}");
    let event: ApiGatewayV2httpRequest = serde_json::from_value(raw.clone()).expect("2.0 event");
    assert_eq!(event.version.as_deref(), Some("2.0"));
    assert_eq!(
        event.route_key.as_deref(),
        Some("POST /py/v2/items/{itemId}/event")
    );
    // The path as requested, the named stage's prefix kept (the Lambda developer guide's
    // captured sample-apps/nodejs-apig/event-v2.json: `"rawPath": "/default/nodejs-apig-..."`
    // on stage `default`).
    assert_eq!(
        event.raw_path.as_deref(),
        Some("/dev/py/v2/items/a%20b/event")
    );
    assert_eq!(event.raw_query_string.as_deref(), Some("a=1&a=2&b=x%20y"));
    assert_eq!(
        event.cookies,
        Some(vec!["s=1".to_owned(), "t=2".into(), "u=3".into()])
    );
    // Repeated headers and parameters are joined with commas; cookies are not headers.
    assert_eq!(raw["headers"]["x-multi"], "one,two");
    assert_eq!(event.headers["host"], "abc123.example.com");
    assert_eq!(event.headers["user-agent"], "curl/8.5.0");
    assert_eq!(event.headers["content-type"], "application/json");
    assert!(event.headers.get("cookie").is_none());
    assert_eq!(event.headers.len(), 4, "{:?}", event.headers);
    assert_eq!(
        raw["queryStringParameters"],
        json!({"a": "1,2", "b": "x y"})
    );
    assert_eq!(event.query_string_parameters.first("b"), Some("x y"));
    assert_eq!(event.path_parameters.len(), 1);
    assert_eq!(event.path_parameters["itemId"], "a b");
    assert_eq!(event.stage_variables.len(), 1);
    assert_eq!(event.stage_variables["TABLE"], "dev-Users");
    assert_eq!(event.body.as_deref(), Some(r#"{"k":"v"}"#));
    assert!(!event.is_base64_encoded);

    let c = &event.request_context;
    assert_eq!(c.route_key, event.route_key);
    assert_eq!(c.account_id.as_deref(), Some("123456789012"));
    assert_eq!(c.apiid.as_deref(), Some("plugins-e2e"));
    assert_eq!(c.stage.as_deref(), Some("dev"));
    assert_eq!(c.domain_name.as_deref(), Some("abc123.example.com"));
    assert_eq!(c.domain_prefix.as_deref(), Some("abc123"));
    let request_id = c.request_id.as_deref().expect("requestId");
    assert_eq!(request_id.len(), 16);
    assert!(c.time.as_deref().is_some_and(is_clf_time), "{:?}", c.time);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    assert!((now_ms - c.time_epoch).abs() < 60_000, "{}", c.time_epoch);
    assert_eq!(c.http.method, Method::POST);
    assert_eq!(c.http.path.as_deref(), Some("/dev/py/v2/items/a%20b/event"));
    assert_eq!(c.http.protocol.as_deref(), Some("HTTP/1.1"));
    assert_eq!(c.http.source_ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(c.http.user_agent.as_deref(), Some("curl/8.5.0"));
    assert!(c.authorizer.is_none());
    assert!(c.authentication.is_none());

    // Without query, cookies, body or path parameters those keys are left out.
    let mut bare = http::Request::post("/dev/py/v2/items/1/event")
        .body(Bytes::new())
        .expect("request");
    bare.headers_mut()
        .insert("host", "h.example.com".parse().expect("host"));
    let raw = event_of(gateway(), bare).await;
    for key in ["cookies", "queryStringParameters", "body"] {
        assert!(raw.get(key).is_none(), "{key}: {raw}");
    }
    assert_eq!(raw["rawQueryString"], "");
    assert_eq!(raw["isBase64Encoded"], false);
    // A request without a body shows `content-length: 0` (the Lambda developer guide's
    // captured sample-apps/nodejs-apig/event-v2.json; aws-lambda-rust-runtime's curl-captured
    // lambda-events fixture example-apigw-v2-request-no-authorizer.json).
    assert_eq!(raw["headers"]["content-length"], "0");
    assert_eq!(raw["requestContext"]["http"]["userAgent"], "");
}

#[tokio::test]
async fn the_1_0_event_of_an_http_api_is_api_gateways() {
    let uri = "/dev/py/v1/items/42/event?a=1&a=2&b=x%20y";
    let raw = event_of(gateway(), fixed_request(uri)).await;
    assert_eq!(raw["version"], "1.0");
    assert_eq!(
        raw["requestContext"]["authorizer"],
        json!({"claims": null, "scopes": null})
    );
    assert_eq!(raw["requestContext"]["resourceId"], Value::Null);
    assert_eq!(raw["requestContext"]["identity"]["caller"], Value::Null);
    // The deployment that answered, recorded against AWS in LocalStack's
    // tests/aws/services/apigateway/test_apigateway_lambda.snapshot.json
    // (`"deploymentId": "<deployment-id:1>"` in the 1.0 event's requestContext).
    let deployment = raw["requestContext"]["deploymentId"]
        .as_str()
        .expect("requestContext.deploymentId");
    assert!(
        deployment.len() == 6
            && deployment
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{deployment}"
    );
    let event: ApiGatewayProxyRequest = serde_json::from_value(raw.clone()).expect("1.0 event");
    assert_eq!(
        event.resource.as_deref(),
        Some("/py/v1/items/{itemId}/event")
    );
    assert_eq!(event.path.as_deref(), Some("/py/v1/items/42/event"));
    assert_eq!(event.http_method, Method::POST);
    // The single-value maps keep the last value; cookies stay a header.
    assert_eq!(event.headers["x-multi"], "two");
    assert_eq!(event.headers["cookie"], "u=3");
    assert_eq!(
        event
            .multi_value_headers
            .get_all("x-multi")
            .iter()
            .collect::<Vec<_>>(),
        ["one", "two"]
    );
    assert_eq!(
        event
            .multi_value_headers
            .get_all("cookie")
            .iter()
            .collect::<Vec<_>>(),
        ["s=1; t=2", "u=3"]
    );
    assert_eq!(event.query_string_parameters.first("a"), Some("2"));
    assert_eq!(event.query_string_parameters.first("b"), Some("x y"));
    assert_eq!(
        event.multi_value_query_string_parameters.all("a"),
        Some(vec!["1", "2"])
    );
    assert_eq!(raw["queryStringParameters"], json!({"a": "2", "b": "x y"}));
    assert_eq!(event.path_parameters["itemId"], "42");
    assert_eq!(event.stage_variables["TABLE"], "dev-Users");
    assert_eq!(event.body.as_deref(), Some(r#"{"k":"v"}"#));
    assert!(!event.is_base64_encoded);

    let c = &event.request_context;
    assert_eq!(c.account_id.as_deref(), Some("123456789012"));
    assert_eq!(c.apiid.as_deref(), Some("plugins-e2e"));
    assert_eq!(c.stage.as_deref(), Some("dev"));
    assert_eq!(c.domain_name.as_deref(), Some("abc123.example.com"));
    assert_eq!(c.domain_prefix.as_deref(), Some("abc123"));
    assert_eq!(c.http_method, Method::POST);
    assert_eq!(c.path.as_deref(), Some("/dev/py/v1/items/42/event"));
    assert_eq!(c.protocol.as_deref(), Some("HTTP/1.1"));
    assert_eq!(
        c.resource_path.as_deref(),
        Some("/py/v1/items/{itemId}/event")
    );
    assert_eq!(c.resource_id, None);
    assert!(c.request_time.as_deref().is_some_and(is_clf_time));
    assert!(c.request_time_epoch > 1_700_000_000_000);
    assert_eq!(
        raw["requestContext"]["extendedRequestId"],
        raw["requestContext"]["requestId"]
    );
    assert_eq!(c.identity.source_ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(c.identity.user_agent.as_deref(), Some("curl/8.5.0"));
    assert_eq!(c.identity.api_key, None);
    assert_eq!(c.identity.user_arn, None);

    // No query, path parameters or body: null, not absent.
    let bare = http::Request::post("/prod/py/v1/items/7/event")
        .body(Bytes::new())
        .expect("request");
    let raw = event_of(gateway(), bare).await;
    for key in [
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "body",
    ] {
        assert_eq!(raw.get(key), Some(&Value::Null), "{key}: {raw}");
    }
}

#[tokio::test]
async fn the_rest_event_is_api_gateways() {
    let raw = event_of(rest_gateway(), fixed_request("/test/items/9/event?q=1")).await;
    assert!(raw.get("version").is_none(), "{raw}");
    // REST leaves the authorizer out when the method has none.
    assert!(raw["requestContext"].get("authorizer").is_none(), "{raw}");
    let event: ApiGatewayProxyRequest = serde_json::from_value(raw.clone()).expect("REST event");
    assert_eq!(event.resource.as_deref(), Some("/items/{itemId}/event"));
    assert_eq!(event.path.as_deref(), Some("/items/9/event"));
    let c = &event.request_context;
    assert_eq!(c.account_id.as_deref(), Some("111122223333"));
    assert_eq!(c.apiid.as_deref(), Some("restapi123"));
    assert_eq!(c.stage.as_deref(), Some("test"));
    assert_eq!(c.path.as_deref(), Some("/test/items/9/event"));
    let id = c.resource_id.as_deref().expect("resourceId");
    assert_eq!(id.len(), 6);
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    assert_eq!(event.stage_variables["TABLE"], "t");
    assert_eq!(event.query_string_parameters.first("q"), Some("1"));

    // Without a host header the domain is the execute-api one of the API's region.
    let bare = http::Request::post("/test/items/9/event")
        .body(Bytes::new())
        .expect("request");
    let raw = event_of(rest_gateway(), bare).await;
    assert_eq!(
        raw["requestContext"]["domainName"],
        "restapi123.execute-api.eu-west-1.amazonaws.com"
    );
    assert_eq!(raw["requestContext"]["domainPrefix"], "restapi123");
    assert_eq!(raw["headers"], Value::Null);
    assert_eq!(raw["pathParameters"], json!({"itemId": "9"}));
}

#[tokio::test]
async fn the_rest_event_names_the_api_key_it_was_called_with() {
    // API Gateway writes the key and its id into the 1.0 event's identity, as in this event
    // recorded from a REST API with a required key (jonstefansson/dynadb-mileage,
    // python/README.md): "apiKey": "eSd3RRbO...", "apiKeyId": "n2xnxga958".
    let mut request = fixed_request("/test/keyed/9/event");
    request.headers_mut().insert(
        "x-api-key",
        http::HeaderValue::from_static("k-0123456789abcdef0123"),
    );
    let raw = event_of(rest_gateway(), request).await;
    let event: ApiGatewayProxyRequest = serde_json::from_value(raw.clone()).expect("REST event");
    let identity = &event.request_context.identity;
    assert_eq!(identity.api_key.as_deref(), Some("k-0123456789abcdef0123"));
    assert_eq!(identity.api_key_id.as_deref(), Some("n2xnxga958"));
    // A route without a required key says nothing of a key the caller happens to send.
    let mut request = fixed_request("/test/items/9/event");
    request.headers_mut().insert(
        "x-api-key",
        http::HeaderValue::from_static("k-0123456789abcdef0123"),
    );
    let raw = event_of(rest_gateway(), request).await;
    assert_eq!(raw["requestContext"]["identity"]["apiKey"], Value::Null);
    assert_eq!(raw["requestContext"]["identity"]["apiKeyId"], Value::Null);
}

#[tokio::test]
async fn binary_bodies_travel_as_base64() {
    for uri in ["/dev/py/v2/items/1/event", "/dev/py/v1/items/1/event"] {
        let request = http::Request::post(uri)
            .header("content-type", "application/octet-stream")
            .body(Bytes::from_static(&[0xff, 0x00, 0x01]))
            .expect("request");
        let raw = event_of(gateway(), request).await;
        assert_eq!(raw["isBase64Encoded"], true, "{raw}");
        assert_eq!(raw["body"], "/wAB");
        let request = http::Request::post(uri)
            .body(Bytes::from_static(&[0xc3, 0x28]))
            .expect("request");
        let raw = event_of(gateway(), request).await;
        assert_eq!(
            (&raw["isBase64Encoded"], &raw["body"]),
            (&json!(true), &json!("wyg="))
        );
    }
}

#[tokio::test]
async fn authorizer_grants_reach_the_event() {
    let request = |uri: &str| {
        http::Request::get(uri)
            .header("authorization", "allow;sub=alice")
            .body(Bytes::new())
            .expect("request")
    };
    let raw = event_of(gateway(), request("/dev/py/v2/auth/event")).await;
    let event: ApiGatewayV2httpRequest = serde_json::from_value(raw.clone()).expect("2.0 event");
    let authorizer = event.request_context.authorizer.expect("authorizer");
    assert!(authorizer.jwt.is_none());
    // 2.0: the context as the authorizer returned it, typed.
    assert_eq!(authorizer.fields["sub"], "alice");
    assert_eq!(authorizer.fields["kind"], "token");
    assert!(authorizer.fields["calls"].is_u64(), "{raw}");

    let raw = event_of(gateway(), request("/dev/py/v1/auth/event")).await;
    let event: ApiGatewayProxyRequest = serde_json::from_value(raw.clone()).expect("1.0 event");
    let fields = &event.request_context.authorizer.fields;
    // 1.0: principalId, integrationLatency and the context, its values as strings.
    assert_eq!(fields["principalId"], "alice");
    assert_eq!(fields["integrationLatency"], 0);
    assert!(fields["calls"].is_string(), "{raw}");
    assert_eq!(fields["script"], "allow;sub=alice");

    let (status, _, _) = call(
        gateway(),
        http::Request::get("/dev/py/v2/auth/event")
            .body(Bytes::new())
            .expect("request"),
    )
    .await;
    assert_eq!(status, 401);
}

fn post(uri: &str, body: &str) -> http::Request<Bytes> {
    http::Request::post(uri)
        .body(Bytes::from(body.to_owned()))
        .expect("request")
}

fn get(uri: &str) -> http::Request<Bytes> {
    http::Request::get(uri).body(Bytes::new()).expect("request")
}

#[tokio::test]
async fn the_seed_handlers_in_python_serve_the_users_api() {
    // Its own stage, so the other tests' users do not show.
    let yaml = std::fs::read_to_string(repo().join("tests/e2e/plugins-api.yaml")).expect("yaml");
    let yaml = yaml.replace("TABLE: prod-Users", "TABLE: py-Users");
    let definition = ApiDefinition::from_str_as(&yaml, Format::Yaml).expect("parses");
    let gw = Gateway::builder(definition)
        .base_dir(repo().join("tests/e2e"))
        .build()
        .expect("gateway");

    let (status, headers, created) = call(
        &gw,
        post(
            "/prod/py/users",
            r#"{"name":"Alice","email":"alice@example.com"}"#,
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(headers["content-type"], "application/json");
    let user = &created["user"];
    let id = user["userId"].as_str().expect("userId").to_owned();
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4", "a v4 UUID: {id}");
    assert_eq!(user["PK"], format!("USER#{id}"));
    assert_eq!(user["SK"], "PROFILE");
    assert_eq!(user["name"], "Alice");
    assert_eq!(user["email"], "alice@example.com");
    assert!(
        user["createdAt"].as_str().is_some_and(|t| t.contains('T')),
        "{user}"
    );

    let (status, _, got) = call(&gw, get(&format!("/prod/py/users/{id}"))).await;
    assert_eq!((status, &got["user"]), (200, user));

    for i in 0..2 {
        let body = format!(r#"{{"name":"u{i}","email":"u{i}@example.com"}}"#);
        assert_eq!(call(&gw, post("/prod/py/users", &body)).await.0, 201);
    }
    let (status, _, listed) = call(&gw, get("/prod/py/users")).await;
    assert_eq!((status, &listed["count"]), (200, &json!(3)), "{listed}");
    let (_, _, listed) = call(&gw, get("/prod/py/users?limit=2")).await;
    assert_eq!(listed["count"], 2, "{listed}");
    assert_eq!(listed["users"].as_array().map(Vec::len), Some(2));
    let (status, _, bad) = call(&gw, get("/prod/py/users?limit=ten")).await;
    assert_eq!(status, 500);
    assert_eq!(
        bad,
        json!({"error": "invalid literal for int() with base 10: 'ten'"})
    );

    // The Rust users plugin reads the same table.
    let (status, _, got) = call(&gw, get(&format!("/prod/users/{id}"))).await;
    assert_eq!(
        (status, &got["user"]["name"]),
        (200, &json!("Alice")),
        "{got}"
    );

    let (status, _, missing) = call(&gw, get("/prod/py/users/no-such-user")).await;
    assert_eq!((status, missing), (404, json!({"error": "User not found"})));

    let (status, _, bad) = call(&gw, post("/prod/py/users", r#"{"name":"Bob"}"#)).await;
    assert_eq!(
        (status, bad),
        (400, json!({"error": "Missing field: 'email'"}))
    );
    for body in ["not json", "[1, 2]", ""] {
        let (status, _, bad) = call(&gw, post("/prod/py/users", body)).await;
        let expected = if body.is_empty() {
            json!({"error": "Missing field: 'name'"})
        } else {
            json!({"error": "Invalid JSON body"})
        };
        assert_eq!((status, bad), (400, expected), "{body:?}");
    }
}

#[tokio::test]
async fn a_lambda_plugin_without_its_table_answers_500() {
    let yaml = r#"
name: t
plugins:
  py: { path: python_users.wasm }
routes:
  GET /users: { integration: { type: plugin, plugin: py } }
stages:
  dev: {}
"#;
    let definition = ApiDefinition::from_str_as(yaml, Format::Yaml).expect("parses");
    let gw = Gateway::builder(definition)
        .base_dir(repo().join("plugins/dist"))
        .build()
        .expect("gateway");
    let (status, _, body) = call(&gw, get("/dev/users")).await;
    assert_eq!(
        (status, body),
        // An HTTP API's failed Lambda integration (http-api-troubleshooting-lambda.md).
        (500, json!({"message": "Internal Server Error"}))
    );
}

#[test]
fn the_lambda_world_is_found_from_the_exports_and_checked_when_named() {
    let load = |world: &str| {
        let yaml = format!(
            "name: t\nplugins:\n  py: {{ path: python_users.wasm{world} }}\nstages:\n  dev: {{}}\n"
        );
        let definition = ApiDefinition::from_str_as(&yaml, Format::Yaml).expect("parses");
        Gateway::builder(definition)
            .base_dir(repo().join("plugins/dist"))
            .build()
    };
    assert!(load("").is_ok());
    assert!(load(", world: lambda").is_ok());
    let Err(err) = load(", world: integration") else {
        panic!("a lambda component is not of the integration world")
    };
    let err = err.to_string();
    assert!(
        err.contains("does not export the integration world") && err.contains("handle-event"),
        "{err}"
    );
}
