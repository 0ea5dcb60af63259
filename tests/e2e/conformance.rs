//! What real API Gateway was recorded or documented answering, checked against Portico: each
//! expectation names its source beside it. LocalStack's snapshots
//! (localstack/localstack, tests/aws/services/apigateway/*.snapshot.json) are recorded against
//! AWS (`@markers.aws.validated`); AWS's developer guide is
//! awsdocs/amazon-api-gateway-developer-guide. More of issue 14's list lives beside the
//! feature it is about: the Lambda events in lambda.rs, the JWT refusal in jwt.rs.

use bytes::Bytes;
use portico::{ApiDefinition, Format, Gateway};
use portico_tests::plugins_dist;

/// A REST API: a mock route and a route whose plugin traps.
fn rest_api() -> Gateway {
    let dist = plugins_dist(&["hostile_trap"]);
    let yaml = format!(
        r#"
name: conformance-rest
protocol: rest
plugins:
  trap: {{ path: {dist}/hostile_trap.wasm }}
routes:
  GET /ok: {{ integration: {{ type: mock, body: ok }} }}
  GET /trap: {{ integration: {{ type: plugin, plugin: trap }} }}
stages:
  test: {{}}
"#,
        dist = dist.display()
    );
    let definition = ApiDefinition::from_str_as(&yaml, Format::Yaml).expect("parses");
    Gateway::new(&definition).expect("compiles")
}

/// A REST API (stage `stage`) whose route `route_key` runs the seed's python_users, which
/// answers a path ending in `/event` with the event it got.
fn python_rest_api(route_key: &str) -> Gateway {
    let dist = plugins_dist(&["python_users"]);
    let yaml = format!(
        r#"
name: conformance-python
protocol: rest
plugins:
  py: {{ path: {dist}/python_users.wasm }}
routes:
  {route_key}: {{ integration: {{ type: plugin, plugin: py }} }}
stages:
  stage: {{ variables: {{ TABLE: items }} }}
"#,
        dist = dist.display()
    );
    Gateway::new(&ApiDefinition::from_str_as(&yaml, Format::Yaml).unwrap()).unwrap()
}

async fn get(gateway: &Gateway, path: &str) -> http::Response<Bytes> {
    gateway
        .handle(
            http::Request::get(path)
                .body(Bytes::new())
                .expect("request"),
        )
        .await
}

fn header<'r>(response: &'r http::Response<Bytes>, name: &str) -> Option<&'r str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[tokio::test]
async fn rest_answers_carry_amazons_request_ids() {
    let gateway = rest_api();
    // Every REST answer: `x-amzn-RequestId` (a UUID) and `x-amz-apigw-id`, never HTTP
    // API's `apigw-requestid`: LocalStack test_apigateway_lambda.snapshot.json,
    // `test_aws_proxy_response_payload_format_validation` -> `invoke-api-with-headers`
    // (`"x-amz-apigw-id": "<x-amz-apigw-id:1>"`, `"x-amzn-RequestId": "<uuid:1>"`).
    for path in ["/test/ok", "/test/nowhere", "/test/trap"] {
        let response = get(&gateway, path).await;
        let id = header(&response, "x-amzn-requestid").expect("x-amzn-RequestId");
        assert!(is_uuid(id), "{path}: {id}");
        let extended = header(&response, "x-amz-apigw-id").expect("x-amz-apigw-id");
        assert_eq!(extended.len(), 16, "{path}: {extended}");
        assert!(header(&response, "apigw-requestid").is_none(), "{path}");
    }
    let ok = get(&gateway, "/test/ok").await;
    assert_eq!(
        (ok.status().as_u16(), ok.body().as_ref()),
        (200, b"ok".as_ref())
    );
    assert!(header(&ok, "x-amzn-errortype").is_none());
}

#[tokio::test]
async fn rest_refusals_name_their_error_type() {
    let gateway = rest_api();
    // An unknown path: 403 Missing Authentication Token, `x-amzn-ErrorType:
    // MissingAuthenticationTokenException` (LocalStack test_apigateway_common.snapshot.json,
    // `TestApigatewayRouting::test_routing_not_found` -> `not-found`: `"errorType":
    // "MissingAuthenticationTokenException"`; its 403 is the default status of
    // MISSING_AUTHENTICATION_TOKEN, test_apigateway_api.snapshot.json
    // `get-gateway-response-default`).
    let missing = get(&gateway, "/test/nowhere").await;
    assert_eq!(missing.status(), 403);
    assert_eq!(
        missing.body(),
        r#"{"message":"Missing Authentication Token"}"#
    );
    assert_eq!(
        header(&missing, "x-amzn-errortype"),
        Some("MissingAuthenticationTokenException")
    );
    // A failed integration: 502 `{"message": "Internal server error"}` with AWS's space
    // (LocalStack test_apigateway_integrations.snapshot.json,
    // `test_apigateway_header_remapping_http[HTTP]` -> `content-length`: `"Content-Length":
    // "36"`, `"x-amzn-ErrorType": "InternalServerErrorException"`; the 502 for a function
    // that fails: AWS Lambda developer guide, "Handling errors with an API Gateway API":
    // "If the function runs but returns an error ... API Gateway returns a 502").
    let failed = get(&gateway, "/test/trap").await;
    assert_eq!(failed.status(), 502);
    assert_eq!(failed.body(), r#"{"message": "Internal server error"}"#);
    assert_eq!(failed.body().len(), 36);
    assert_eq!(
        header(&failed, "x-amzn-errortype"),
        Some("InternalServerErrorException")
    );
}

/// The 1.0 event a REST API hands a Lambda proxy integration (the seed's python_users answers
/// `.../event` with the event it got).
#[tokio::test(flavor = "multi_thread")]
async fn a_rest_lambda_event_has_exactly_aws_keys() {
    let gateway = python_rest_api("GET /items/event");
    let response = get(&gateway, "/stage/items/event").await;
    assert_eq!(response.status(), 200);
    let event: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    let keys = |value: &serde_json::Value| -> Vec<String> {
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    // LocalStack test_apigateway_lambda.snapshot.json, `test_lambda_aws_proxy_integration`
    // -> `invocation-payload-without-trailing-slash`: the event's keys (no `version` on
    // REST), its requestContext's, and `identity`'s 12 when the route takes no API key.
    assert_eq!(
        keys(&event),
        [
            "body",
            "headers",
            "httpMethod",
            "isBase64Encoded",
            "multiValueHeaders",
            "multiValueQueryStringParameters",
            "path",
            "pathParameters",
            "queryStringParameters",
            "requestContext",
            "resource",
            "stageVariables"
        ]
    );
    let context = &event["requestContext"];
    assert_eq!(
        keys(context),
        [
            "accountId",
            "apiId",
            "deploymentId",
            "domainName",
            "domainPrefix",
            "extendedRequestId",
            "httpMethod",
            "identity",
            "path",
            "protocol",
            "requestId",
            "requestTime",
            "requestTimeEpoch",
            "resourceId",
            "resourcePath",
            "stage"
        ]
    );
    assert_eq!(
        keys(&context["identity"]),
        [
            "accessKey",
            "accountId",
            "caller",
            "cognitoAuthenticationProvider",
            "cognitoAuthenticationType",
            "cognitoIdentityId",
            "cognitoIdentityPoolId",
            "principalOrgId",
            "sourceIp",
            "user",
            "userAgent",
            "userArn"
        ]
    );
    // The ids in the event are the answer's headers'.
    assert_eq!(
        context["requestId"],
        header(&response, "x-amzn-requestid").unwrap()
    );
    assert_eq!(
        context["extendedRequestId"],
        header(&response, "x-amz-apigw-id").unwrap()
    );
    assert_eq!(context["path"], "/stage/items/event");
    assert_eq!(event["body"], serde_json::Value::Null);
}

/// Doubled slashes around a REST API's stage, as LocalStack recorded AWS serving them
/// (test_apigateway_lambda.snapshot.json, `test_lambda_aws_proxy_integration`:
/// `invocation-payload-with-prepended-slash-to-stage` and `invocation-hardcoded`, whose
/// `requestContext.path` is `/stage//hardcoded` while `path` is `/hardcoded`).
#[tokio::test(flavor = "multi_thread")]
async fn rest_apis_serve_doubled_slashes_around_the_stage() {
    let gateway = python_rest_api("GET /hardcoded/event");
    for (sent, context_path) in [
        ("/stage//hardcoded/event", "/stage//hardcoded/event"),
        ("//stage/hardcoded/event", "/stage/hardcoded/event"),
    ] {
        let response = get(&gateway, sent).await;
        assert_eq!(response.status(), 200, "{sent}");
        let event: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(event["path"], "/hardcoded/event", "{sent}");
        assert_eq!(event["resource"], "/hardcoded/event", "{sent}");
        assert_eq!(event["requestContext"]["path"], context_path, "{sent}");
    }
}

/// A REST API's greedy route (`/{proxy+}`) as LocalStack recorded AWS serving it
/// (test_apigateway_lambda.snapshot.json, `test_lambda_aws_proxy_integration`): a doubled
/// slash inside the path is kept everywhere (`invocation-payload-with-double-slash`), one
/// right after the stage only in `requestContext.path` (`invocation-payload-with-prepended-slash`),
/// a trailing slash stays in `path` but not in `proxy` (`invocation-payload-with-trailing-slash`),
/// and path parameters keep their percent-encoding while `+` stays `+`
/// (`invocation-payload-with-path-encoded-email`).
#[tokio::test(flavor = "multi_thread")]
async fn rest_greedy_paths_are_passed_as_sent() {
    let gateway = python_rest_api("GET /{proxy+}");
    for (sent, path, proxy, context_path) in [
        (
            "/stage/proxy-value//double-slash/event",
            "/proxy-value//double-slash/event",
            "proxy-value//double-slash/event",
            "/stage/proxy-value//double-slash/event",
        ),
        (
            "/stage//proxy-value/event",
            "/proxy-value/event",
            "proxy-value/event",
            "/stage//proxy-value/event",
        ),
        (
            "/stage/proxy-value/event/",
            "/proxy-value/event/",
            "proxy-value/event",
            "/stage/proxy-value/event/",
        ),
        (
            "/stage/proxy-value/api/user/test%2Balias@gmail.com/plus/test+alias@gmail.com/event",
            "/proxy-value/api/user/test%2Balias@gmail.com/plus/test+alias@gmail.com/event",
            "proxy-value/api/user/test%2Balias@gmail.com/plus/test+alias@gmail.com/event",
            "/stage/proxy-value/api/user/test%2Balias@gmail.com/plus/test+alias@gmail.com/event",
        ),
    ] {
        let response = get(&gateway, sent).await;
        assert_eq!(response.status(), 200, "{sent}");
        let event: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(event["resource"], "/{proxy+}", "{sent}");
        assert_eq!(event["path"], path, "{sent}");
        assert_eq!(event["pathParameters"]["proxy"], proxy, "{sent}");
        assert_eq!(event["requestContext"]["path"], context_path, "{sent}");
    }
}

/// A REST API's 1.0 event names headers as the client wrote them: LocalStack's
/// test_apigateway_lambda.snapshot.json (`test_lambda_aws_proxy_integration`,
/// `invocation-payload-without-trailing-slash`) records `"User-Agent"`, `"Accept-Encoding"`
/// and the test's own `"tEsT-HEADeR": "aValUE"` in `headers` and `multiValueHeaders`. The
/// embedder passes the spelling as a `portico::HeaderCase` extension; one that does not
/// describe the request is ignored.
#[tokio::test]
async fn rest_events_keep_the_clients_header_names() {
    let gateway = python_rest_api("GET /items/event");
    let request = |case: Option<Vec<&str>>| {
        let mut request = http::Request::get("/stage/items/event")
            .header("host", "example.com")
            .header("test-header", "aValUE")
            .header("x-multi", "1")
            .header("x-multi", "2")
            .header("cookie", "a=b")
            .body(Bytes::new())
            .expect("request");
        if let Some(names) = case {
            request.extensions_mut().insert(portico::HeaderCase::new(
                names.into_iter().map(str::to_owned).collect(),
            ));
        }
        request
    };
    let event = |response: http::Response<Bytes>| -> serde_json::Value {
        assert_eq!(response.status(), 200);
        serde_json::from_slice(response.body()).expect("the event")
    };
    let sent = vec!["Host", "tEsT-HEADeR", "X-Multi", "x-multi", "Cookie"];
    let got = event(gateway.handle(request(Some(sent))).await);
    assert_eq!(got["headers"]["tEsT-HEADeR"], "aValUE");
    assert_eq!(got["headers"]["Host"], "example.com");
    assert_eq!(got["headers"]["Cookie"], "a=b");
    assert_eq!(
        got["multiValueHeaders"]["X-Multi"],
        serde_json::json!(["1", "2"])
    );
    assert!(got["headers"].get("test-header").is_none(), "{got}");
    // Names that do not describe the request (one `x-multi` short) change nothing.
    let stale = vec!["Host", "tEsT-HEADeR", "X-Multi", "Cookie"];
    let got = event(gateway.handle(request(Some(stale))).await);
    assert_eq!(got["headers"]["test-header"], "aValUE");
    let got = event(gateway.handle(request(None)).await);
    assert_eq!(got["headers"]["test-header"], "aValUE");
}

/// portico-serve reads the spelling off the wire: three pipelined HTTP/1.1 requests on one
/// connection (a chunked POST first, so the body framing is followed), each event naming its
/// own headers as sent.
#[test]
fn portico_serve_passes_the_clients_header_names_on() {
    use std::io::{Read, Write};

    let dist = plugins_dist(&["python_users"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let api = dir.path().join("api.yaml");
    std::fs::write(
        &api,
        format!(
            r#"
name: header-case
protocol: rest
plugins:
  py: {{ path: {dist}/python_users.wasm }}
routes:
  ANY /items/event: {{ integration: {{ type: plugin, plugin: py }} }}
stages:
  stage: {{ variables: {{ TABLE: items }} }}
"#,
            dist = dist.display()
        ),
    )
    .expect("writes the API");
    let serve = portico_tests::ServeProcess::start(&api, &[]);
    let address = serve.base().trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&address).expect("connects");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    let wire = format!(
        "POST /stage/items/event HTTP/1.1\r\nHost: {address}\r\nTransfer-Encoding: chunked\r\nX-First: 1\r\n\r\n5\r\nhello\r\n0\r\n\r\n\
         GET /stage/items/event HTTP/1.1\r\nHOST: {address}\r\ntEsT-HEADeR: aValUE\r\n\r\n\
         GET /stage/items/event HTTP/1.1\r\nhost: {address}\r\nX-Last: 3\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(wire.as_bytes()).expect("sends");
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .expect("reads the answers");
    // Each answer's body is the event (JSON on one line, after its head).
    let events: Vec<serde_json::Value> = answer
        .split("HTTP/1.1 ")
        .skip(1)
        .map(|one| {
            let body = one.split_once("\r\n\r\n").expect("a head").1;
            serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {one}"))
        })
        .collect();
    assert_eq!(events.len(), 3, "{answer}");
    assert_eq!(events[0]["headers"]["X-First"], "1");
    assert_eq!(events[0]["body"], "hello");
    assert_eq!(events[1]["headers"]["tEsT-HEADeR"], "aValUE");
    assert!(events[1]["headers"].get("HOST").is_some(), "{}", events[1]);
    assert_eq!(events[2]["headers"]["X-Last"], "3");
    assert!(events[2]["headers"].get("host").is_some(), "{}", events[2]);
}

/// A REST API's REQUEST authorizer gets the header names as the client wrote them too: AWS's
/// developer guide (api-gateway-lambda-authorizer-input.md, "REQUEST input format") shows a
/// REST REQUEST authorizer's input with `"headers": {"X-AMZ-Date": ..., "Accept": "*/*",
/// "HeaderAuth1": "headerValue1", ...}` and the same names in `multiValueHeaders`. (LocalStack's
/// apigateway snapshots, checked at 8b9a79f05, record no REST authorizer event.) An HTTP API's
/// authorizer gets lower-case names, as its payload format 2.0 event does. Over real HTTP
/// through portico-serve: policy_authorizer's `headers` option hands back, in its grant's
/// context, the headers it was given, and the echo plugin shows that context.
#[test]
fn rest_request_authorizers_get_the_clients_header_names() {
    use std::io::{Read, Write};

    let dist = plugins_dist(&["policy_authorizer", "echo"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let serve = |protocol: &str, source: &str| {
        let api = dir.path().join(format!("{protocol}.yaml"));
        std::fs::write(
            &api,
            format!(
                r#"
name: authorizer-header-case
protocol: {protocol}
plugins:
  policy: {{ path: {dist}/policy_authorizer.wasm }}
  echo: {{ path: {dist}/echo.wasm }}
authorizers:
  scripted:
    type: request
    plugin: policy
    identitySource: [{source}]
    resultTtlSeconds: 0
routes:
  GET /whoami: {{ integration: {{ type: plugin, plugin: echo }}, authorizer: scripted }}
stages:
  stage: {{}}
"#,
                dist = dist.display()
            ),
        )
        .expect("writes the API");
        portico_tests::ServeProcess::start(&api, &[])
    };
    // The headers the authorizer was handed, as [name, value] pairs in order.
    let handed = |serve: &portico_tests::ServeProcess| -> Vec<(String, String)> {
        let address = serve.base().trim_start_matches("http://").to_owned();
        let mut stream = std::net::TcpStream::connect(&address).expect("connects");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .expect("timeout");
        let wire = format!(
            "GET /stage/whoami HTTP/1.1\r\nHost: {address}\r\nX-Script: allow;headers\r\n\
             Accept: */*\r\ntEsT-HEADeR: aValUE\r\nX-Multi: 1\r\nx-MULTI: 2\r\n\
             Connection: close\r\n\r\n"
        );
        stream.write_all(wire.as_bytes()).expect("sends");
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .expect("reads the answer");
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
        assert!(head.starts_with("HTTP/1.1 200"), "{answer}");
        let echoed: serde_json::Value = serde_json::from_str(body.trim()).expect("echo's JSON");
        let headers = echoed["authorizer"]["context"]["headers"]
            .as_str()
            .unwrap_or_else(|| panic!("no headers in the grant: {echoed}"));
        serde_json::from_str(headers).expect("[[name, value], ...]")
    };
    let pair = |name: &str, value: &str| (name.to_owned(), value.to_owned());

    let rest = handed(&serve("rest", "method.request.header.X-Script"));
    for expected in [
        pair("X-Script", "allow;headers"),
        pair("Accept", "*/*"),
        pair("tEsT-HEADeR", "aValUE"),
        // Repeated names keep the first spelling, as the 1.0 event's multiValueHeaders do.
        pair("X-Multi", "1"),
        pair("X-Multi", "2"),
    ] {
        assert!(rest.contains(&expected), "{expected:?} in {rest:?}");
    }
    assert!(rest.iter().any(|(name, _)| name == "Host"), "{rest:?}");
    assert!(
        !rest
            .iter()
            .any(|(name, _)| name == "test-header" || name == "x-multi"),
        "{rest:?}"
    );

    let http = handed(&serve("http", "$request.header.X-Script"));
    for expected in [
        pair("x-script", "allow;headers"),
        pair("accept", "*/*"),
        pair("test-header", "aValUE"),
        pair("x-multi", "1"),
        pair("x-multi", "2"),
    ] {
        assert!(http.contains(&expected), "{expected:?} in {http:?}");
    }
    assert!(
        http.iter()
            .all(|(name, _)| *name == name.to_ascii_lowercase()),
        "{http:?}"
    );
}
