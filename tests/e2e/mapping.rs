//! Parameter mapping through `portico-serve` over real HTTP: HTTP APIs' `requestParameters`
//! and `responseParameters` on an `http_proxy` integration whose upstream (started here, on
//! loopback) records what it receives, and on a Lambda-world plugin (python_users, which
//! answers its own event); REST gateway responses whose headers are mapped from the request
//! being refused.
//!
//! AWS's rules: API Gateway Developer Guide, "Transforming API requests and responses"
//! (http-api-parameter-mapping.md, awsdocs/amazon-api-gateway-developer-guide) and
//! "x-amazon-apigateway-gateway-responses.responseParameters"
//! (api-gateway-swagger-extensions-gateway-responses.responseParameters.md). Where AWS is silent
//! the expectation is Portico's choice, marked *Portico* (README, "Parameter mapping").

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use portico_tests::{http1_server, plugins_dist, ServeProcess};
use serde_json::Value;
use tokio::task::JoinHandle;

/// What the upstream received.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    query: Option<String>,
    headers: HeaderMap,
}

/// A loopback HTTP/1.1 server that records every request and answers `/status/N` with status
/// N, anything else 200; every answer has a JSON body `{"id":"u-7","tags":["a","b"]}` and the
/// headers `x-upstream: hit`, `x-drop: me`.
struct Upstream {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    accept: JoinHandle<()>,
}

impl Upstream {
    async fn start() -> Upstream {
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let (addr, accept) = http1_server(move |request| answer(request, Arc::clone(&log))).await;
        Upstream {
            addr,
            received,
            accept,
        }
    }

    /// The last request received (and forgets them all).
    fn last(&self) -> Received {
        let mut received = self.received.lock().unwrap();
        let last = received.pop().expect("the upstream got a request");
        received.clear();
        last
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn answer(
    request: Request<Incoming>,
    log: Arc<Mutex<Vec<Received>>>,
) -> Result<Response<BoxBody<Bytes, Infallible>>, Infallible> {
    let (parts, _) = request.into_parts();
    let path = parts.uri.path().to_owned();
    log.lock().unwrap().push(Received {
        path: path.clone(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers.clone(),
    });
    let body = Full::new(Bytes::from_static(br#"{"id":"u-7","tags":["a","b"]}"#)).boxed();
    let mut response = Response::new(body);
    if let Some(code) = path.strip_prefix("/status/") {
        *response.status_mut() = code.parse::<u16>().unwrap().try_into().unwrap();
    }
    let headers = response.headers_mut();
    headers.insert("content-type", "application/json".parse().unwrap());
    headers.insert("x-upstream", "hit".parse().unwrap());
    headers.insert("x-drop", "me".parse().unwrap());
    Ok(response)
}

/// The HTTP API: one `http_proxy` integration per group of mappings, a Lambda-world plugin
/// with mappings, stage `prod` with variable `ENV`.
fn http_api(upstream: &Upstream) -> String {
    let host = upstream.addr;
    let plugin = plugins_dist(&["python_users"]).join("python_users.wasm");
    let plugin = plugin.display();
    format!(
        r#"
name: mapping
apiId: mapapi
plugins:
  py: {{ path: "{plugin}" }}
integrations:
  requests:
    type: http_proxy
    uri: "http://{host}/in/{{id}}?fixed=1"
    requestParameters:
      "append:header.x-appended": "$request.header.x-source"
      "append:header.x-multi": "third"
      "overwrite:header.x-over": "$request.querystring.q"
      "remove:header.x-gone": "''"
      "append:header.x-static": "plain text"
      "append:header.x-absent": "$request.header.x-nothing"
      "append:querystring.added": "$stageVariables.ENV"
      "overwrite:querystring.q": "${{request.path.id}}-${{context.stage}}"
      "remove:querystring.secret": "''"
      "append:header.x-path": "$request.path"
      "append:header.x-path-id": "$request.path.id"
      "append:header.x-body": "$request.body.user.name"
      "append:header.x-body-index": "${{request.body.items[1]}}"
      "append:header.x-context": "$context.routeKey|$context.httpMethod|$context.apiId"
      "append:header.x-request-id": "$context.requestId"
      "append:header.x-mixed": "id=${{request.path.id}}; env=${{stageVariables.ENV}}; q=${{request.querystring.q}}"
  rewrite:
    type: http_proxy
    uri: "http://{host}/ignored/path?fixed=1"
    requestParameters:
      "overwrite:path": "/v2/items/${{request.path.id}}/detail"
  responses:
    type: http_proxy
    uri: "http://{host}/status/{{code}}"
    responseParameters:
      "200":
        "append:header.x-upstream": "again"
        "overwrite:header.content-type": "text/plain"
        "remove:header.x-drop": "''"
        "append:header.x-from-header": "$response.header.x-upstream"
        "append:header.x-from-body": "$response.body.id"
        "append:header.x-from-body-list": "$response.body.tags"
        "append:header.x-context": "${{context.stage}}/${{stageVariables.ENV}}"
        "append:header.x-none": "$response.body.nothing"
      "404":
        "overwrite:statuscode": "410"
        "append:header.x-was": "404"
  lambda:
    type: plugin
    plugin: py
    requestParameters:
      "append:header.x-mapped": "${{request.path.itemId}}@$stageVariables.ENV"
      "remove:header.x-secret": "''"
      "overwrite:querystring.page": "2"
    responseParameters:
      "200":
        "overwrite:statuscode": "203"
        "append:header.x-lambda": "$context.routeKey"
routes:
  GET /in/{{id}}: {{ integration: requests }}
  POST /in/{{id}}: {{ integration: requests }}
  GET /rewrite/{{id}}: {{ integration: rewrite }}
  GET /out/{{code}}: {{ integration: responses }}
  POST /fn/{{itemId}}/event: {{ integration: lambda }}
stages:
  prod:
    variables: {{ ENV: production, TABLE: users }}
"#
    )
}

/// A REST API whose gateway responses map headers from the request being refused.
const REST_API: &str = r#"
name: refusals
apiId: restmap
protocol: rest
routes:
  GET /pets/{petId}:
    integration: { type: mock, body: '{}' }
    apiKeyRequired: true
gatewayResponses:
  INVALID_API_KEY:
    headers:
      Access-Control-Allow-Origin: "'*.example.domain'"
      x-from-header: method.request.header.Accept
      x-from-custom: method.request.header.x-custom
      x-from-path: method.request.path.petId
      x-from-query: method.request.querystring.qname
      x-stage: $stageVariables.TABLE
      x-context: "id=$context.requestId stage=$context.stage"
      x-plain: "plain ${stageVariables.TABLE}"
  MISSING_AUTHENTICATION_TOKEN:
    headers:
      x-from-path: method.request.path.petId
      x-from-header: method.request.header.Accept
stages:
  test:
    variables: { TABLE: pets-test }
"#;

fn write_api(dir: &tempfile::TempDir, name: &str, yaml: &str) -> std::path::PathBuf {
    let file = dir.path().join(name);
    std::fs::write(&file, yaml).unwrap();
    file
}

async fn start(file: std::path::PathBuf) -> ServeProcess {
    tokio::task::spawn_blocking(move || ServeProcess::start(&file, &[]))
        .await
        .unwrap()
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

fn all<'h>(headers: &'h HeaderMap, name: &str) -> Vec<&'h str> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

#[tokio::test]
async fn http_api_parameter_mapping_through_portico_serve() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let serve = start(write_api(&dir, "http.yaml", &http_api(&upstream))).await;
    let base = serve.base().to_owned();
    let client = reqwest::Client::new();
    let mut failures: Vec<String> = Vec::new();
    let mut check = |what: &str, got: Option<&str>, want: Option<&str>| {
        if got != want {
            failures.push(format!("{what}: got {got:?}, want {want:?}"));
        }
    };

    // Every request operation and value source on one request.
    let response = client
        .post(format!(
            "{base}/prod/in/7?q=orig&keep=a%20b&secret=s&q=again"
        ))
        .header("x-source", "from-client")
        .header("x-multi", "first")
        .header("x-over", "old")
        .header("x-gone", "bye")
        .header("content-type", "application/json")
        .body(r#"{"user":{"name":"Ada"},"items":[1,{"k":"v"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let request_id = response
        .headers()
        .get("apigw-requestid")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let got = upstream.last();
    let h = &got.headers;
    // append on a header the client did not send adds it.
    check(
        "append from a request header",
        header(h, "x-appended"),
        Some("from-client"),
    );
    // *Portico*: append on a header the client sent adds a line (RFC 9110: the same as a
    // comma-joined value).
    assert_eq!(all(h, "x-multi"), ["first", "third"]);
    // "API Gateway combines multiple values with commas" (the guide's table, query strings).
    check("overwrite", header(h, "x-over"), Some("orig,again"));
    check("remove", header(h, "x-gone"), None);
    check("static value", header(h, "x-static"), Some("plain text"));
    // *Portico*: a value whose source is absent maps nothing.
    check("absent source", header(h, "x-absent"), None);
    // `$request.path`: "The request path, without the stage name" (the guide).
    check("$request.path", header(h, "x-path"), Some("/in/7"));
    check("$request.path.id", header(h, "x-path-id"), Some("7"));
    check("$request.body JSON path", header(h, "x-body"), Some("Ada"));
    check(
        "$request.body index",
        header(h, "x-body-index"),
        Some(r#"{"k":"v"}"#),
    );
    check(
        "$context",
        header(h, "x-context"),
        Some("POST /in/{id}|POST|mapapi"),
    );
    // The guide's first example: `"append:header.header1": "$context.requestId"`.
    check(
        "$context.requestId",
        header(h, "x-request-id"),
        Some(&request_id),
    );
    check(
        "mixed template",
        header(h, "x-mixed"),
        Some("id=7; env=production; q=orig,again"),
    );
    // Query: the `uri`'s own first, untouched parameters as the client wrote them, the
    // operations in the file's order (append `added`, overwrite `q`, remove `secret`).
    check(
        "query",
        got.query.as_deref(),
        Some("fixed=1&keep=a%20b&added=production&q=7-prod"),
    );
    check("path", Some(&got.path), Some("/in/7"));

    // overwrite:path: the backend URL's path (*Portico*: the uri's host and query kept).
    let response = client
        .get(format!("{base}/prod/rewrite/42?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let got = upstream.last();
    check(
        "overwrite:path",
        Some(&got.path),
        Some("/v2/items/42/detail"),
    );
    check(
        "overwrite:path query",
        got.query.as_deref(),
        Some("fixed=1&x=1"),
    );

    // Response mapping for a 200: append, overwrite, remove, values from the answer.
    let response = client
        .get(format!("{base}/prod/out/200"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let h = response.headers().clone();
    assert_eq!(all(&h, "x-upstream"), ["hit", "again"]);
    check(
        "response overwrite",
        header(&h, "content-type"),
        Some("text/plain"),
    );
    check("response remove", header(&h, "x-drop"), None);
    check("$response.header", header(&h, "x-from-header"), Some("hit"));
    check("$response.body", header(&h, "x-from-body"), Some("u-7"));
    check(
        "$response.body (not a string)",
        header(&h, "x-from-body-list"),
        Some(r#"["a","b"]"#),
    );
    check(
        "response $context/$stageVariables",
        header(&h, "x-context"),
        Some("prod/production"),
    );
    check("response absent source", header(&h, "x-none"), None);
    // The guide's example: `{"500": {..., "overwrite:statuscode": "403"}, "404": {...}}`.
    let response = client
        .get(format!("{base}/prod/out/404"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 410);
    check(
        "404 selection",
        header(response.headers(), "x-was"),
        Some("404"),
    );
    // A status with no mapping passes as it is.
    let response = client
        .get(format!("{base}/prod/out/201"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert!(response.headers().get("x-was").is_none());
    upstream.last();

    // A Lambda (plugin) integration: AWS maps its requests too (the console offers it, the
    // CDK's HttpLambdaIntegration takes `parameterMapping`: aws/aws-cdk#17255). The plugin
    // answers with the 2.0 event it got.
    let response = client
        .post(format!("{base}/prod/fn/it-9/event?page=1"))
        .header("x-secret", "s")
        .body("{}")
        .send()
        .await
        .unwrap();
    let status = response.status();
    let h = response.headers().clone();
    let body = response.bytes().await.unwrap();
    assert_eq!(status, 203, "{body:?}\n{}", serve.log());
    check(
        "lambda response header",
        header(&h, "x-lambda"),
        Some("POST /fn/{itemId}/event"),
    );
    let event: Value = serde_json::from_slice(&body).unwrap();
    check(
        "lambda mapped header",
        event["headers"]["x-mapped"].as_str(),
        Some("it-9@production"),
    );
    check(
        "lambda removed header",
        event["headers"]["x-secret"].as_str(),
        None,
    );
    check(
        "lambda mapped query",
        event["queryStringParameters"]["page"].as_str(),
        Some("2"),
    );
    check(
        "lambda raw query",
        event["rawQueryString"].as_str(),
        Some("page=2"),
    );
    assert!(failures.is_empty(), "{failures:#?}\n{}", serve.log());
}

/// REST gateway responses with headers from the request being refused: a quoted literal, a
/// request header, path parameter and query parameter, `$stageVariables`, `$context`, and
/// absent values (the header left out).
#[tokio::test]
async fn rest_gateway_response_headers_from_request_values() {
    let dir = tempfile::tempdir().unwrap();
    let serve = start(write_api(&dir, "rest.yaml", REST_API)).await;
    let base = serve.base().to_owned();
    let client = reqwest::Client::new();
    // No API key: INVALID_API_KEY (403).
    let response = client
        .get(format!("{base}/test/pets/p-1?qname=a&qname=b"))
        .header("accept", "application/xml")
        .header("x-custom", "c")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let h = response.headers().clone();
    let request_id = header(&h, "x-amzn-requestid").unwrap().to_owned();
    let mut failures = Vec::new();
    let cases = [
        // "gatewayresponse.header.Access-Control-Allow-Origin": "'*.example.domain'" (the
        // responseParameters page's example; static values are single-quoted).
        (
            "access-control-allow-origin",
            Some("*.example.domain".to_owned()),
        ),
        // "gatewayresponse.header.from-request-header": "method.request.header.Accept".
        ("x-from-header", Some("application/xml".to_owned())),
        ("x-from-custom", Some("c".to_owned())),
        // "gatewayresponse.header.from-request-path": "method.request.path.petId".
        ("x-from-path", Some("p-1".to_owned())),
        // "gatewayresponse.header.from-request-query": "method.request.querystring.qname";
        // several values give the last (LocalStack's parameters_mapping.py).
        ("x-from-query", Some("b".to_owned())),
        ("x-stage", Some("pets-test".to_owned())),
        ("x-context", Some(format!("id={request_id} stage=test"))),
        // Portico's plain-string form keeps working.
        ("x-plain", Some("plain pets-test".to_owned())),
    ];
    for (name, want) in cases {
        let got = header(&h, name).map(str::to_owned);
        if got != want {
            failures.push(format!("{name}: got {got:?}, want {want:?}"));
        }
    }
    // Absent request values: *Portico* leaves the header out (nothing empty is sent; LocalStack
    // skips a mapping whose value is absent).
    let response = client
        .get(format!("{base}/test/pets/p-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let h = response.headers().clone();
    for name in ["x-from-custom", "x-from-query"] {
        if h.get(name).is_some() {
            failures.push(format!("{name}: sent for an absent value: {:?}", h[name]));
        }
    }
    if header(&h, "x-from-path") != Some("p-2") {
        failures.push(format!("x-from-path: {:?}", h.get("x-from-path")));
    }
    // No route: no path parameters to read; the header from a request header still comes.
    let response = client
        .get(format!("{base}/test/nothing/here"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let h = response.headers().clone();
    if h.get("x-from-path").is_some() || header(&h, "x-from-header") != Some("text/html") {
        failures.push(format!("no route: {h:?}"));
    }
    assert!(failures.is_empty(), "{failures:#?}\n{}", serve.log());
}
