//! HTTP proxy integrations (`type: http_proxy`) against real upstream servers this file starts
//! on loopback (hyper), which record what they received: path, query and header mapping for
//! HTTP APIs and REST APIs, stage-variable URIs, the integration's `method`, a timeout (504), a
//! refused connection (502), large bodies both ways, and the access log's integration
//! variables; through a `Gateway` with portico-serve's `UpstreamClient`, through
//! `portico_serve::Server` and through the `portico-serve` binary over real HTTP.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use portico::{ApiDefinition, Format, Gateway, OpenApiOptions, MAX_BODY_BYTES};
use portico_serve::UpstreamClient;
use portico_tests::{free_port, http1_server, Captured, ServeProcess};
use serde_json::Value;
use tokio::task::JoinHandle;

/// What an upstream received.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
}

/// A hyper HTTP/1.1 server on a loopback port that records every request and answers by path:
/// `/hang` never answers, `/big/N` sends N bytes (with a `Content-Length`), `/chunked/N`
/// streams N bytes (chunked, no length), `/status/N` answers status N, anything else 200
/// with a JSON summary and a few headers of each kind (hop-by-hop, cookies, `Server`).
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

    /// `127.0.0.1:PORT`.
    fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The requests received so far.
    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The one request received so far.
    fn only(&self) -> Received {
        let received = self.received();
        assert_eq!(received.len(), 1, "{received:#?}");
        received.into_iter().next().unwrap()
    }

    fn clear(&self) {
        self.received.lock().unwrap().clear();
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

type UpstreamResponse = Response<BoxBody<Bytes, Infallible>>;

async fn answer(
    request: Request<Incoming>,
    log: Arc<Mutex<Vec<Received>>>,
) -> Result<UpstreamResponse, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    log.lock().unwrap().push(Received {
        method: parts.method.to_string(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    let full = |bytes: Bytes| Full::new(bytes).boxed();
    let size = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|n| n.parse::<usize>().ok())
    };
    if path == "/hang" {
        std::future::pending::<()>().await;
    }
    if let Some(n) = size("/big/") {
        return Ok(Response::new(full(Bytes::from(vec![b'a'; n]))));
    }
    if let Some(n) = size("/chunked/") {
        return Ok(Response::new(Chunks { left: n }.boxed()));
    }
    if let Some(code) = size("/status/") {
        let mut response = Response::new(full(Bytes::from(format!("{{\"status\":{code}}}"))));
        *response.status_mut() = StatusCode::from_u16(code as u16).unwrap();
        response
            .headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        return Ok(response);
    }
    let summary = serde_json::json!({
        "method": parts.method.as_str(),
        "path": path,
        "bodyLength": body.len(),
    });
    let mut response = Response::new(full(Bytes::from(summary.to_string())));
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-type", "application/json"),
        ("x-upstream", "hit"),
        ("server", "upstream-test"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
        ("keep-alive", "timeout=5"),
        ("x-hop", "dropped"),
        ("connection", "x-hop"),
    ] {
        headers.append(name, value.parse().unwrap());
    }
    Ok(response)
}

/// A body of `left` bytes sent in 64 KiB chunks with no declared length.
struct Chunks {
    left: usize,
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(64 * 1024);
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'c'; n])))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// The access log line of every test API: what the integration variables say.
const ACCESS_LOG: &str = r#"{"status":"$context.status","integrationStatus":"$context.integration.status","error":"$context.integrationErrorMessage","latency":"$context.integration.latency"}"#;

/// An API (`protocol`) whose `orders` integration reaches `prod`'s or `dev`'s upstream through
/// the stage variable `ORDERS_HOST`, plus routes for the method, timeout, refusal and size
/// cases on `prod`'s upstream.
fn api(protocol: &str, prod: &Upstream, dev: &Upstream) -> String {
    let refused = free_port();
    let host = prod.host();
    let (prod_host, dev_host) = (prod.host(), dev.host());
    format!(
        r#"
name: proxy-{protocol}
apiId: api-{protocol}
protocol: {protocol}
integrations:
  orders: {{ type: http_proxy, uri: "http://${{stageVariables.ORDERS_HOST}}/orders/{{proxy}}", method: ANY, timeoutMs: 29000 }}
routes:
  ANY /shop/{{proxy+}}: {{ integration: orders }}
  GET /items/{{id}}:
    integration: {{ type: http_proxy, uri: "http://{host}/v1/items/{{id}}/detail?src=gw", method: POST }}
  GET /hang:
    integration: {{ type: http_proxy, uri: "http://{host}/hang", timeoutMs: 50 }}
  GET /refused:
    integration: {{ type: http_proxy, uri: "http://127.0.0.1:{refused}/x" }}
  ANY /sized/{{kind}}/{{n}}:
    integration: {{ type: http_proxy, uri: "http://{host}/{{kind}}/{{n}}" }}
  $default:
    integration: {{ type: http_proxy, uri: "http://{host}/base/" }}
stages:
  prod:
    variables: {{ ORDERS_HOST: "{prod_host}" }}
    accessLog: {{ format: '{ACCESS_LOG}' }}
  dev:
    variables: {{ ORDERS_HOST: "{dev_host}" }}
"#
    )
}

fn gateway(yaml: &str) -> Gateway {
    let definition = ApiDefinition::from_str_as(yaml, Format::Yaml).expect("the API parses");
    let client = UpstreamClient::new().expect("the client");
    Gateway::builder(definition)
        .http_client(Arc::new(client))
        .build()
        .expect("the API loads")
}

/// A request from the client 192.0.2.9 to `api.example.com`.
fn request(method: &str, uri: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "api.example.com")
        .extension(SocketAddr::from(([192, 0, 2, 9], 40000)))
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

/// HTTP API (`http_proxy`, "Working with HTTP proxy integrations for HTTP APIs",
/// http-api-develop-integrations-http.md in awsdocs/amazon-api-gateway-developer-guide): the
/// greedy variable's value fills `{proxy}`, the query string and body pass on, `Host` is the
/// upstream's, hop-by-hop headers are dropped both ways and the client's `X-Forwarded-*`
/// become `Forwarded` with this hop appended ("HTTP APIs translate incoming X-Forwarded-*
/// headers into a standard Forwarded header and will append the egress IP, Host, and
/// protocol", "Amazon API Gateway important notes"). The status, headers and body come back.
#[tokio::test]
async fn http_api_passes_path_query_headers_and_body_both_ways() {
    let (prod, dev) = (Upstream::start().await, Upstream::start().await);
    let gateway = gateway(&api("http", &prod, &dev));
    let response = gateway
        .handle(
            request("POST", "/prod/shop/a/b%2Fc?x=1&y=two%20words")
                .header("content-type", "application/json")
                .header("x-custom", "kept")
                .header("cookie", "a=1")
                .header("cookie", "b=2")
                .header("connection", "x-hop")
                .header("x-hop", "dropped")
                .header("keep-alive", "timeout=5")
                .header("x-forwarded-for", "203.0.113.1")
                .body(Bytes::from_static(br#"{"order":7}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.body());
    let got = prod.only();
    assert!(dev.received().is_empty());
    assert_eq!(got.method, "POST");
    assert_eq!(got.path, "/orders/a/b%2Fc");
    assert_eq!(got.query.as_deref(), Some("x=1&y=two%20words"));
    assert_eq!(header(&got.headers, "host"), Some(prod.host().as_str()));
    assert_eq!(header(&got.headers, "x-custom"), Some("kept"));
    assert_eq!(
        header(&got.headers, "content-type"),
        Some("application/json")
    );
    assert_eq!(header(&got.headers, "cookie"), Some("a=1; b=2"));
    for dropped in ["x-hop", "keep-alive", "x-forwarded-for"] {
        assert_eq!(
            header(&got.headers, dropped),
            None,
            "{dropped} reached the upstream"
        );
    }
    assert_eq!(
        header(&got.headers, "forwarded"),
        Some("for=203.0.113.1, for=192.0.2.9;host=api.example.com;proto=http")
    );
    assert_eq!(got.body, br#"{"order":7}"#.as_ref());
    // The answer: the upstream's status, headers (but hop-by-hop) and body.
    let headers = response.headers();
    assert_eq!(header(headers, "x-upstream"), Some("hit"));
    assert_eq!(header(headers, "server"), Some("upstream-test"));
    assert_eq!(headers.get_all("set-cookie").iter().count(), 2);
    for dropped in ["keep-alive", "x-hop", "connection"] {
        assert_eq!(
            header(headers, dropped),
            None,
            "{dropped} reached the client"
        );
    }
    let body: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(body["bodyLength"], 11);
    assert!(header(headers, "apigw-requestid").is_some());
}

/// REST API (`HTTP_PROXY`): the client's address appended to `X-Forwarded-For`, the API named
/// in `X-Amzn-Apigateway-Api-Id`, `Server`/`Via`/`Max-Forwards` not sent on, and the
/// upstream's `Connection`, `Content-Length`, `Date` and `Server` renamed `x-amzn-Remapped-*`:
/// as recorded against AWS in LocalStack's snapshots
/// `test_apigateway_header_remapping_http[HTTP_PROXY]` (test_apigateway_integrations) and
/// `test_http_integration_with_lambda[HTTP_PROXY]` (test_apigateway_http); the upstream's
/// status passes through (`test_http_integration_invoke_status_code_passthrough[HTTP_PROXY]`:
/// a 400 stays a 400).
#[tokio::test]
async fn rest_api_appends_x_forwarded_for_and_remaps_response_headers() {
    let (prod, dev) = (Upstream::start().await, Upstream::start().await);
    let gateway = gateway(&api("rest", &prod, &dev));
    let response = gateway
        .handle(
            request("GET", "/prod/shop/list")
                .header("x-forwarded-for", "203.0.113.1")
                .header("server", "client-side")
                .header("via", "1.1 a-proxy")
                .header("max-forwards", "3")
                .body(Bytes::new())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), 200);
    let got = prod.only();
    assert_eq!(got.path, "/orders/list");
    assert_eq!(
        header(&got.headers, "x-forwarded-for"),
        Some("203.0.113.1, 192.0.2.9")
    );
    assert_eq!(
        header(&got.headers, "x-amzn-apigateway-api-id"),
        Some("api-rest")
    );
    assert_eq!(header(&got.headers, "forwarded"), None);
    for dropped in ["server", "via", "max-forwards"] {
        assert_eq!(
            header(&got.headers, dropped),
            None,
            "{dropped} reached the upstream"
        );
    }
    let headers = response.headers();
    assert_eq!(
        header(headers, "x-amzn-remapped-server"),
        Some("upstream-test")
    );
    assert!(header(headers, "x-amzn-remapped-date").is_some());
    assert!(header(headers, "x-amzn-remapped-content-length").is_some());
    assert_eq!(header(headers, "server"), None);
    assert_eq!(header(headers, "x-upstream"), Some("hit"));
    prod.clear();
    let response = gateway
        .handle(
            request("GET", "/prod/sized/status/404")
                .body(Bytes::new())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.body(), r#"{"status":404}"#);
}

/// The URI's `${stageVariables.ORDERS_HOST}` is each stage's own (API Gateway Developer Guide,
/// "Setting up stage variables": an HTTP integration URI may hold stage variables); a fixed
/// `method` replaces the client's, and a query in the URI is kept before the client's. The
/// `$default` route sends the whole path on ("When the `$default` route receives a request,
/// API Gateway sends the full request path to the integration", "Working with routes for HTTP
/// APIs", http-api-develop-routes.md).
#[tokio::test]
async fn stage_variables_choose_the_upstream_and_method_replaces_the_clients() {
    let (prod, dev) = (Upstream::start().await, Upstream::start().await);
    let gateway = gateway(&api("http", &prod, &dev));
    for (path, upstream, other) in [("/prod/shop/x", &prod, &dev), ("/dev/shop/x", &dev, &prod)] {
        let response = gateway
            .handle(request("DELETE", path).body(Bytes::new()).unwrap())
            .await;
        assert_eq!(response.status(), 200, "{path}");
        let got = upstream.only();
        assert_eq!(
            (got.method.as_str(), got.path.as_str()),
            ("DELETE", "/orders/x")
        );
        assert_eq!(header(&got.headers, "host"), Some(upstream.host().as_str()));
        assert!(
            other.received().is_empty(),
            "{path} reached the other stage's upstream"
        );
        upstream.clear();
    }
    let response = gateway
        .handle(
            request("GET", "/prod/items/7?q=1")
                .body(Bytes::new())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), 200);
    let got = prod.only();
    assert_eq!(got.method, "POST");
    assert_eq!(got.path, "/v1/items/7/detail");
    assert_eq!(got.query.as_deref(), Some("src=gw&q=1"));
    prod.clear();
    let response = gateway
        .handle(
            request("PATCH", "/prod/store/check%20out?z=1")
                .body(Bytes::new())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), 200);
    let got = prod.only();
    assert_eq!(
        (got.method.as_str(), got.path.as_str(), got.query.as_deref()),
        ("PATCH", "/base/store/check%20out", Some("z=1"))
    );
}

/// An upstream that does not answer within `timeoutMs` is answered 504 INTEGRATION_TIMEOUT
/// `{"message":"Endpoint request timed out"}` (API Gateway's gateway response types:
/// INTEGRATION_TIMEOUT is 504); a refused connection 502 INTEGRATION_FAILURE with the 5xx
/// message of each kind of API; the reason is in `$context.integrationErrorMessage`
/// (http-api-logging-variables.md), the integration status `-`.
#[tokio::test]
async fn a_timeout_is_504_and_a_refused_connection_502_with_the_reason_logged() {
    let (prod, dev) = (Upstream::start().await, Upstream::start().await);
    let (captured, _guard) = Captured::start();
    // REST writes its integration failure with a space: `{"message": "Internal server
    // error"}` (Content-Length 36, recorded in LocalStack's
    // test_apigateway_integrations.snapshot.json, `test_apigateway_header_remapping_http`).
    for (protocol, body) in [
        ("http", r#"{"message":"Internal Server Error"}"#),
        ("rest", r#"{"message": "Internal server error"}"#),
    ] {
        let gateway = gateway(&api(protocol, &prod, &dev));
        let response = gateway
            .handle(request("GET", "/prod/hang").body(Bytes::new()).unwrap())
            .await;
        assert_eq!(response.status(), 504, "{protocol}");
        assert_eq!(
            response.body(),
            r#"{"message":"Endpoint request timed out"}"#
        );
        let response = gateway
            .handle(request("GET", "/prod/refused").body(Bytes::new()).unwrap())
            .await;
        assert_eq!(response.status(), 502, "{protocol}");
        assert_eq!(response.body(), body);
    }
    let lines = captured.lines();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    for timeout in [&lines[0], &lines[2]] {
        assert_eq!(timeout["status"], "504");
        assert_eq!(timeout["integrationStatus"], "-");
        assert_eq!(timeout["error"], "the backend did not answer within 50 ms");
        assert!(timeout["latency"].as_str().unwrap().parse::<u64>().unwrap() >= 50);
    }
    for refused in [&lines[1], &lines[3]] {
        assert_eq!(refused["status"], "502");
        assert_eq!(refused["integrationStatus"], "-");
        let error = refused["error"].as_str().unwrap();
        assert!(
            error.starts_with("the request to the backend failed: ")
                && error.contains("Connection refused"),
            "{error}"
        );
    }
}

/// Bodies up to API Gateway's 10 MB payload quota pass both ways ("Amazon API Gateway quotas":
/// payload size 10 MB, for HTTP and REST APIs); a response over it, declared or streamed, is
/// refused with 502, as an unusable integration response.
#[tokio::test]
async fn large_bodies_pass_up_to_ten_megabytes() {
    let (prod, dev) = (Upstream::start().await, Upstream::start().await);
    let gateway = gateway(&api("http", &prod, &dev));
    let (captured, _guard) = Captured::start();
    let upload = Bytes::from(vec![b'u'; MAX_BODY_BYTES]);
    let response = gateway
        .handle(
            request("PUT", "/prod/shop/upload")
                .body(upload.clone())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(prod.only().body, upload);
    for kind in ["big", "chunked"] {
        let path = format!("/prod/sized/{kind}/{MAX_BODY_BYTES}");
        let response = gateway
            .handle(request("GET", &path).body(Bytes::new()).unwrap())
            .await;
        assert_eq!(response.status(), 200, "{kind}");
        assert_eq!(response.body().len(), MAX_BODY_BYTES, "{kind}");
        let path = format!("/prod/sized/{kind}/{}", MAX_BODY_BYTES + 1);
        let response = gateway
            .handle(request("GET", &path).body(Bytes::new()).unwrap())
            .await;
        assert_eq!(response.status(), 502, "{kind}");
        assert_eq!(response.body(), r#"{"message":"Internal Server Error"}"#);
    }
    let errors: Vec<String> = captured
        .lines()
        .iter()
        .filter(|line| line["status"] == "502")
        .map(|line| line["error"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(errors.len(), 2);
    for error in errors {
        assert!(error.contains("is over 10485760 bytes"), "{error}");
    }
}

/// portico-serve (the library's `Server` and the binary) gives its gateway an HTTP client:
/// real HTTP in, real HTTP out, the client's address (loopback) forwarded.
#[tokio::test]
async fn portico_serve_proxies_over_real_http() {
    let (prod, dev) = (Upstream::start().await, Upstream::start().await);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("proxy-api.yaml");
    std::fs::write(&file, api("rest", &prod, &dev)).unwrap();
    let client = reqwest::Client::new();

    let server = portico_tests::RunningServer::start(&file).await;
    let response = client
        .post(format!("{}/dev/shop/in-process?via=server", server.base))
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let got = dev.only();
    assert_eq!(got.path, "/orders/in-process");
    assert_eq!(got.query.as_deref(), Some("via=server"));
    assert_eq!(got.body, "hello");
    assert_eq!(header(&got.headers, "x-forwarded-for"), Some("127.0.0.1"));
    server.shutdown().await;

    let process = tokio::task::spawn_blocking(move || ServeProcess::start(&file, &[]))
        .await
        .unwrap();
    let response = client
        .get(format!("{}/prod/shop/from-binary", process.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-upstream"], "hit");
    assert_eq!(prod.only().path, "/orders/from-binary");
    let response = client
        .get(format!("{}/prod/refused", process.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    drop(process);
    drop(dir);
}

/// An OpenAPI document's `x-amazon-apigateway-integration` of type `http_proxy` (imported with
/// `ApiDefinition::from_openapi`, issue 13 item 6) proxies to a real upstream as the native
/// integration does: `httpMethod: ANY` keeps the client's method, `{proxy}` takes the greedy
/// path, the query passes on ("x-amazon-apigateway-integration object",
/// api-gateway-swagger-extensions-integration.md in awsdocs/amazon-api-gateway-developer-guide).
#[tokio::test]
async fn an_imported_openapi_http_proxy_reaches_a_real_upstream() {
    let upstream = Upstream::start().await;
    let document = format!(
        r#"
openapi: 3.0.1
info: {{ title: orders, version: "1" }}
paths:
  /orders/{{proxy+}}:
    x-amazon-apigateway-any-method:
      parameters:
        - {{ name: proxy, in: path, required: true, schema: {{ type: string }} }}
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: ANY
        uri: "http://{host}/backend/{{proxy}}"
        payloadFormatVersion: "1.0"
        timeoutInMillis: 5000
"#,
        host = upstream.host()
    );
    let import = ApiDefinition::from_openapi(&document, Format::Yaml, &OpenApiOptions::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        import.definition.routes.iter().count(),
        1,
        "{:?}",
        import.warnings
    );
    let client = UpstreamClient::new().expect("the client");
    let gateway = Gateway::builder(import.definition)
        .http_client(Arc::new(client))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let response = gateway
        .handle(
            request("DELETE", "/orders/7/items?force=yes")
                .body(Bytes::new())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.body());
    let got = upstream.only();
    assert_eq!(got.method, "DELETE");
    assert_eq!(got.path, "/backend/7/items");
    assert_eq!(got.query.as_deref(), Some("force=yes"));
}

/// A REST integration's `contentHandling`, by the request rows of the workflow table in API
/// Gateway's developer guide ("Content type conversions in API Gateway",
/// api-gateway-payload-encodings-workflow.md): CONVERT_TO_TEXT base64-encodes a binary body
/// (its type listed in `binaryMediaTypes`) and leaves text as it is; CONVERT_TO_BINARY decodes
/// a base64 text body and leaves binary as it is; "If the conversion fails, it returns a 500
/// response". Without `contentHandling` the body passes as it came (the API reference's
/// `Integration.contentHandling`: "If this property is not defined, the request payload will
/// be passed through ... without modification").
#[tokio::test]
async fn rest_content_handling_converts_request_bodies() {
    let upstream = Upstream::start().await;
    let host = upstream.host();
    let gateway = gateway(&format!(
        r#"
name: content-handling
protocol: rest
binaryMediaTypes: [image/png]
routes:
  POST /to-text: {{ integration: {{ type: http_proxy, uri: "http://{host}/t", contentHandling: CONVERT_TO_TEXT }} }}
  POST /to-binary: {{ integration: {{ type: http_proxy, uri: "http://{host}/b", contentHandling: CONVERT_TO_BINARY }} }}
  POST /as-is: {{ integration: {{ type: http_proxy, uri: "http://{host}/a" }} }}
stages:
  prod: {{}}
"#
    ));
    let png: &[u8] = &[0x89, b'P', b'N', b'G', 0xff];
    let send = |path: &str, content_type: &str, body: &[u8]| {
        gateway.handle(
            request("POST", &format!("/prod{path}"))
                .header("content-type", content_type)
                .body(Bytes::copy_from_slice(body))
                .unwrap(),
        )
    };
    for (path, content_type, sent, expected) in [
        ("/to-text", "image/png", png, &b"iVBOR/8="[..]),
        ("/to-text", "text/plain", &b"hello"[..], &b"hello"[..]),
        ("/to-binary", "text/plain", &b"iVBOR/8="[..], png),
        ("/to-binary", "image/png", png, png),
        ("/as-is", "image/png", png, png),
        ("/as-is", "application/octet-stream", png, png),
    ] {
        upstream.clear();
        let response = send(path, content_type, sent).await;
        assert_eq!(response.status(), 200, "{path} {content_type}");
        assert_eq!(
            upstream.only().body.as_ref(),
            expected,
            "{path} {content_type}"
        );
    }
    upstream.clear();
    let failed = send("/to-binary", "text/plain", "èé+à)(".as_bytes()).await;
    assert_eq!(failed.status(), 500);
    assert_eq!(failed.body(), r#"{"message": "Internal server error"}"#);
    assert!(upstream.received().is_empty(), "the upstream was called");
    // HTTP APIs have no payload conversions: the key is refused where it is written.
    let error = ApiDefinition::from_str_as(
        &format!(
            "name: h\nroutes:\n  POST /x: {{ integration: {{ type: http_proxy, uri: \"http://{host}/x\", contentHandling: CONVERT_TO_TEXT }} }}\nstages:\n  $default: {{}}\n"
        ),
        Format::Yaml,
    )
    .and_then(|d| Gateway::new(&d).map(|_| ()))
    .unwrap_err()
    .to_string();
    assert!(error.contains("contentHandling"), "{error}");
}
