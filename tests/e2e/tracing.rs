//! Tracing (`tracingEnabled`) end to end: portico-serve with `--otlp-endpoint` pointed at a
//! real OTLP/HTTP receiver started here (a loopback hyper server decoding the collector's
//! `ExportTraceServiceRequest` with opentelemetry-proto's types), requests through a route with
//! a custom authorizer and a plugin, a Lambda (python_users) or an http_proxy integration
//! (a loopback upstream recording the headers it got).
//!
//! What API Gateway does, as the developer guide says it ("Trace user requests to REST APIs
//! using X-Ray", apigateway-xray.md; xray-services-apigateway.md):
//! - it "adds a trace header to incoming HTTP requests that don't already have one"
//!   (`X-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793`): a request without one
//!   starts a trace whose id is an X-Ray trace id;
//! - a caller that is "already being traced" has its trace passed through: an incoming
//!   `X-Amzn-Trace-Id` (or, W3C's, `traceparent`) is continued, same trace id;
//! - the sampling decision travels with the trace: an unsampled trace is exported by nobody,
//!   and its header (`Sampled=0`) still reaches the integration.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use portico_tests::{http1_server, plugins_dist, ServeProcess};
use prost::Message as _;
use serde_json::Value;

/// The spans an OTLP/HTTP receiver got, in the order they came.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Span>>>);

impl Received {
    fn spans(&self) -> Vec<Span> {
        self.0.lock().expect("spans").clone()
    }

    /// The spans of trace `trace_id` (32 hex digits), once its `request` span (the last to
    /// end: every other span of the request ends inside it, so it is exported in the same
    /// batch or a later one) has arrived; panics after a deadline, with what did arrive.
    async fn trace(&self, trace_id: &str) -> Vec<Span> {
        // The batch processor exports every 5 s (OTEL_BSP_SCHEDULE_DELAY's default).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let spans: Vec<Span> = self
                .spans()
                .into_iter()
                .filter(|s| hex(&s.trace_id) == trace_id)
                .collect();
            if spans.iter().any(|s| s.name == "request") {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "no request span of trace {trace_id}; received: {:?}",
                self.spans()
                    .iter()
                    .map(|s| (s.name.clone(), hex(&s.trace_id)))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Starts an OTLP/HTTP receiver on loopback: its endpoint (`http://ADDR`) and what it gets.
async fn otlp_receiver() -> (String, Received) {
    let received = Received::default();
    let store = received.clone();
    let (addr, _task) = http1_server(move |request: hyper::Request<hyper::body::Incoming>| {
        let store = store.clone();
        async move {
            let path = request.uri().path().to_owned();
            let body = request
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let status = match ExportTraceServiceRequest::decode(body) {
                Ok(export) if path == "/v1/traces" => {
                    let spans = export
                        .resource_spans
                        .into_iter()
                        .flat_map(|r| r.scope_spans)
                        .flat_map(|s| s.spans);
                    store.0.lock().expect("spans").extend(spans);
                    200
                }
                _ => 400,
            };
            let answer = ExportTraceServiceResponse::default().encode_to_vec();
            Ok::<_, std::convert::Infallible>(
                hyper::Response::builder()
                    .status(status)
                    .header("content-type", "application/x-protobuf")
                    .body(Full::new(Bytes::from(answer)))
                    .expect("an answer"),
            )
        }
    })
    .await;
    (format!("http://{addr}"), received)
}

/// The headers the upstream got, one map per request.
type Seen = Arc<Mutex<Vec<http::HeaderMap>>>;

/// A loopback upstream for the http_proxy route, answering 200 `upstream`.
async fn upstream() -> (std::net::SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let store = seen.clone();
    let (addr, _task) = http1_server(move |request: hyper::Request<hyper::body::Incoming>| {
        let store = store.clone();
        async move {
            store.lock().expect("seen").push(request.headers().clone());
            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(
                "upstream",
            ))))
        }
    })
    .await;
    (addr, seen)
}

/// The API: every integration kind behind a scripted custom authorizer, on a traced stage
/// (`prod`, with an access log of the trace ids) and an untraced one (`dev`).
fn api_file(dir: &std::path::Path, upstream: std::net::SocketAddr) -> std::path::PathBuf {
    let dist = plugins_dist(&["echo", "policy_authorizer", "python_users"]);
    let dist = dist.display();
    let yaml = format!(
        r#"
name: traced
plugins:
  echo: {{ path: {dist}/echo.wasm }}
  policy: {{ path: {dist}/policy_authorizer.wasm }}
  python-users: {{ path: {dist}/python_users.wasm }}
authorizers:
  scripted: {{ type: token, plugin: policy, resultTtlSeconds: 0 }}
routes:
  GET /echo: {{ integration: {{ type: plugin, plugin: echo }}, authorizer: scripted }}
  GET /proxy: {{ integration: {{ type: http_proxy, uri: "http://{upstream}/backend" }}, authorizer: scripted }}
  GET /lambda/event: {{ integration: {{ type: plugin, plugin: python-users, payloadFormatVersion: "2.0" }} }}
stages:
  prod:
    variables: {{ TABLE: traced-Users }}
    tracingEnabled: true
    accessLog:
      format: '{{"requestId":"$context.requestId","xrayTraceId":"$context.xrayTraceId","traceId":"$context.traceId"}}'
  dev: {{ variables: {{ TABLE: untraced-Users }} }}
"#
    );
    let file = dir.join("api.yaml");
    std::fs::write(&file, yaml).expect("write the API file");
    file
}

/// An answer: status, headers, body.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

async fn get(base: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let mut request = client.get(format!("{base}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("an answer");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.expect("a body"),
    }
}

/// The fields of an `X-Amzn-Trace-Id` value: (Root, Parent, Sampled).
fn xray_fields(value: &str) -> (String, String, String) {
    let field = |key: &str| {
        value
            .split(';')
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .unwrap_or_default()
            .to_owned()
    };
    (field("Root"), field("Parent"), field("Sampled"))
}

/// The X-Ray root `1-XXXXXXXX-YYYY…` as W3C's 32 hex digits.
fn w3c_of(root: &str) -> String {
    root.trim_start_matches("1-").replace('-', "")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
        .map(|v| match v {
            AnyValue::StringValue(s) => s.clone(),
            AnyValue::IntValue(i) => i.to_string(),
            other => format!("{other:?}"),
        })
}

/// The one span named `name` (and, for `plugin`, of world `world`) in `spans`.
fn span<'s>(spans: &'s [Span], name: &str, world: Option<&str>) -> &'s Span {
    let found: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| world.is_none() || attribute(s, "plugin.world").as_deref() == world)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {name} span ({world:?}) in {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    found[0]
}

/// The span tree of one traced request through an authorizer and a plugin, the incoming trace
/// headers continued, the upstream's and the Lambda's headers, the access log.
#[tokio::test(flavor = "multi_thread")]
async fn a_traced_stage_exports_the_request_its_phases_and_its_calls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (upstream, seen) = upstream().await;
    let api = api_file(dir.path(), upstream);
    let (endpoint, received) = otlp_receiver().await;
    let log = dir.path().join("access.log");
    let serve = {
        let (api, log) = (api.clone(), log.clone());
        tokio::task::spawn_blocking(move || {
            ServeProcess::start(
                &api,
                &[
                    "--otlp-endpoint",
                    &endpoint,
                    "--trace-sample",
                    "1",
                    "--access-log",
                    log.to_str().expect("utf-8 path"),
                ],
            )
        })
        .await
        .expect("start portico-serve")
    };
    let base = serve.base();
    let allow = ("authorization", "allow");

    // 1. No trace header: the gateway starts a trace (an X-Ray id), sampled (ratio 1); the
    // answer and the plugin carry it.
    let echo = get(base, "/prod/echo", &[allow]).await;
    assert_eq!(echo.status, 200, "{}", echo.body);
    let (root, parent, sampled) = xray_fields(echo.header("x-amzn-trace-id"));
    assert!(root.starts_with("1-") && root.len() == 35, "{root}");
    assert_eq!((parent.len(), sampled.as_str()), (16, "1"));
    let trace_id = w3c_of(&root);
    let echoed = echo.json();
    let plugin_trace = echoed["traceId"].as_str().expect("the plugin's trace-id");
    let (plugin_root, plugin_parent, plugin_sampled) = xray_fields(plugin_trace);
    assert_eq!(
        (plugin_root.as_str(), plugin_sampled.as_str()),
        (root.as_str(), "1")
    );
    assert_eq!(
        echoed["headers"]["x-amzn-trace-id"][0].as_str(),
        Some(plugin_trace),
        "{echoed}"
    );
    let traceparent = echoed["headers"]["traceparent"][0].as_str().unwrap_or("");
    assert_eq!(
        traceparent,
        format!("00-{trace_id}-{plugin_parent}-01"),
        "{echoed}"
    );

    let spans = received.trace(&trace_id).await;
    let request = span(&spans, "request", None);
    assert!(request.parent_span_id.is_empty(), "a new trace's root");
    assert_eq!(hex(&request.span_id), parent, "the answer's Parent");
    assert_eq!(
        attribute(request, "http.route").as_deref(),
        Some("GET /echo")
    );
    assert_eq!(attribute(request, "stage").as_deref(), Some("prod"));
    let mut failures = Vec::new();
    for phase in [
        "route",
        "authorize",
        "validate",
        "cache",
        "integrate",
        "respond",
        "log",
    ] {
        let phase_span = span(&spans, phase, None);
        if phase_span.parent_span_id != request.span_id {
            failures.push(format!("{phase} is not a child of the request span"));
        }
    }
    let throttles: Vec<&Span> = spans.iter().filter(|s| s.name == "throttle").collect();
    if throttles.len() != 2
        || throttles
            .iter()
            .any(|s| s.parent_span_id != request.span_id)
    {
        failures.push(format!(
            "two throttle spans under the request: {}",
            throttles.len()
        ));
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let integrate = span(&spans, "integrate", None);
    let plugin = span(&spans, "plugin", Some("integration"));
    assert_eq!(plugin.parent_span_id, integrate.span_id);
    assert_eq!(attribute(plugin, "plugin.name").as_deref(), Some("echo"));
    assert_eq!(hex(&plugin.span_id), plugin_parent, "the plugin's Parent");
    let authorizer = span(&spans, "plugin", Some("authorizer"));
    assert_eq!(
        authorizer.parent_span_id,
        span(&spans, "authorize", None).span_id
    );
    assert_eq!(
        attribute(authorizer, "plugin.name").as_deref(),
        Some("policy")
    );
    assert!(
        spans.iter().all(|s| hex(&s.trace_id) == trace_id),
        "one trace"
    );

    // 2. An incoming W3C traceparent is continued; the upstream gets both header families,
    // the http_proxy span as their parent.
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let proxied = get(
        base,
        "/prod/proxy",
        &[
            allow,
            (
                "traceparent",
                &format!("00-{caller_trace}-00f067aa0ba902b7-01"),
            ),
        ],
    )
    .await;
    assert_eq!((proxied.status, proxied.body.as_str()), (200, "upstream"));
    let (root, _, _) = xray_fields(proxied.header("x-amzn-trace-id"));
    assert_eq!(w3c_of(&root), caller_trace);
    let got = seen
        .lock()
        .expect("seen")
        .last()
        .cloned()
        .expect("a proxied request");
    let header = |name: &str| {
        got.get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (up_root, up_parent, up_sampled) = xray_fields(&header("x-amzn-trace-id"));
    assert_eq!(
        (w3c_of(&up_root).as_str(), up_sampled.as_str()),
        (caller_trace, "1")
    );
    assert_eq!(
        header("traceparent"),
        format!("00-{caller_trace}-{up_parent}-01")
    );
    let spans = received.trace(caller_trace).await;
    let request = span(&spans, "request", None);
    assert_eq!(
        hex(&request.parent_span_id),
        "00f067aa0ba902b7",
        "the caller's span"
    );
    let proxy = span(&spans, "http_proxy", None);
    assert_eq!(
        proxy.parent_span_id,
        span(&spans, "integrate", None).span_id
    );
    assert_eq!(hex(&proxy.span_id), up_parent, "the upstream's parent");
    assert_eq!(
        attribute(proxy, "http.response.status_code").as_deref(),
        Some("200")
    );

    // 3. An incoming X-Amzn-Trace-Id is continued, and the Lambda event carries the call's.
    let caller = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let event = get(base, "/prod/lambda/event", &[("x-amzn-trace-id", caller)]).await;
    assert_eq!(event.status, 200, "{}", event.body);
    let (root, _, _) = xray_fields(event.header("x-amzn-trace-id"));
    assert_eq!(root, "1-5759e988-bd862e3fe1be46a994272793");
    let event_json = event.json();
    let in_event = event_json["headers"]["x-amzn-trace-id"]
        .as_str()
        .unwrap_or_else(|| panic!("no trace header in the event: {event_json}"));
    let (event_root, event_parent, event_sampled) = xray_fields(in_event);
    assert_eq!(
        (event_root.as_str(), event_sampled.as_str()),
        ("1-5759e988-bd862e3fe1be46a994272793", "1")
    );
    let spans = received.trace("5759e988bd862e3fe1be46a994272793").await;
    let request = span(&spans, "request", None);
    assert_eq!(hex(&request.parent_span_id), "53995c3f42cd8ad8");
    let lambda = span(&spans, "plugin", Some("lambda"));
    assert_eq!(hex(&lambda.span_id), event_parent, "the event's Parent");

    // 4. The untraced stage adds no trace header and exports nothing.
    let untraced = get(base, "/dev/echo", &[allow]).await;
    assert_eq!(untraced.status, 200);
    assert!(untraced.headers.get("x-amzn-trace-id").is_none());
    assert_eq!(untraced.json()["traceId"], Value::Null);

    // 5. The access log's $context.xrayTraceId and $context.traceId.
    let lines: Vec<Value> = portico_tests::settled_read(&log)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let first = lines
        .iter()
        .find(|l| l["traceId"] == trace_id)
        .unwrap_or_else(|| panic!("no line of trace {trace_id}: {lines:?}"));
    let xray = format!("1-{}-{}", &trace_id[..8], &trace_id[8..]);
    assert_eq!(first["xrayTraceId"], xray.as_str());
    assert!(
        lines
            .iter()
            .any(|l| l["xrayTraceId"] == "1-5759e988-bd862e3fe1be46a994272793"),
        "{lines:?}"
    );
    drop(serve);
}

/// `--trace-sample 0`: a trace that starts at the gateway is not recorded, and its header
/// (`Sampled=0`, flags `00`) still reaches the upstream; a caller's sampled trace is kept.
#[tokio::test(flavor = "multi_thread")]
async fn an_unsampled_trace_is_passed_on_and_not_exported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (upstream, seen) = upstream().await;
    let api = api_file(dir.path(), upstream);
    let (endpoint, received) = otlp_receiver().await;
    let serve = tokio::task::spawn_blocking(move || {
        ServeProcess::start(&api, &["--otlp-endpoint", &endpoint, "--trace-sample", "0"])
    })
    .await
    .expect("start portico-serve");
    let allow = ("authorization", "allow");

    let unsampled = get(serve.base(), "/prod/proxy", &[allow]).await;
    assert_eq!(unsampled.status, 200, "{}", unsampled.body);
    let (root, _, sampled) = xray_fields(unsampled.header("x-amzn-trace-id"));
    assert_eq!(sampled, "0");
    let unsampled_trace = w3c_of(&root);
    let got = seen
        .lock()
        .expect("seen")
        .last()
        .cloned()
        .expect("a proxied request");
    let (up_root, up_parent, up_sampled) = xray_fields(
        got.get("x-amzn-trace-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default(),
    );
    assert_eq!(
        (up_root.as_str(), up_sampled.as_str()),
        (root.as_str(), "0")
    );
    assert_eq!(
        got.get("traceparent").and_then(|v| v.to_str().ok()),
        Some(format!("00-{unsampled_trace}-{up_parent}-00").as_str())
    );

    // A caller's sampled trace is recorded: once its spans are in, the unsampled request's
    // (which ended before) would be too, had they been exported.
    let caller_trace = "0af7651916cd43dd8448eb211c80319c";
    let sampled = get(
        serve.base(),
        "/prod/proxy",
        &[
            allow,
            (
                "traceparent",
                &format!("00-{caller_trace}-b7ad6b7169203331-01"),
            ),
        ],
    )
    .await;
    assert_eq!(sampled.status, 200);
    received.trace(caller_trace).await;
    let leaked: Vec<String> = received
        .spans()
        .iter()
        .filter(|s| hex(&s.trace_id) == unsampled_trace)
        .map(|s| s.name.clone())
        .collect();
    assert!(leaked.is_empty(), "unsampled spans exported: {leaked:?}");
}
