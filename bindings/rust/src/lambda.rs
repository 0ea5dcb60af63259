//! AWS Lambda-shaped handlers (feature `lambda`): an API Gateway handler written against
//! `aws_lambda_events` runs as a Portico integration.
//!
//! A handler for HTTP APIs (payload 2.0), as `lambda_runtime` runs it:
//!
//! ```ignore
//! use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
//! use portico_plugin::lambda::{Error, LambdaEvent}; // was: use lambda_runtime::{Error, LambdaEvent};
//!
//! async fn function_handler(
//!     event: LambdaEvent<ApiGatewayV2httpRequest>,
//! ) -> Result<ApiGatewayV2httpResponse, Error> {
//!     let mut response = ApiGatewayV2httpResponse::default();
//!     response.status_code = 200;
//!     Ok(response)
//! }
//!
//! portico_plugin::lambda_v2!(function_handler); // was: #[tokio::main] async fn main() { ... }
//! ```
//!
//! The handler may take the `LambdaEvent<T>` or the bare `T`, be `async` or not, and return a
//! `Result` whose error is anything `Display` (`lambda_runtime::Error` is). Plugins have no
//! async I/O: a future that waits for something other than itself fails the request.
//! [`lambda_v1!`](crate::lambda_v1) does the same for REST API proxy events
//! (`ApiGatewayProxyRequest`).

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::{Duration, SystemTime};

use ::time::format_description::BorrowedFormatItem;
use ::time::macros::format_description;
pub use aws_lambda_events;
pub use aws_lambda_events::apigw::{
    ApiGatewayProxyRequest, ApiGatewayProxyResponse, ApiGatewayV2httpRequest,
    ApiGatewayV2httpResponse,
};
use aws_lambda_events::apigw::{
    ApiGatewayProxyRequestContext, ApiGatewayRequestAuthorizer,
    ApiGatewayRequestAuthorizerJwtDescription, ApiGatewayV2httpRequestContext,
};
pub use aws_lambda_events::encodings::Body;
use aws_lambda_events::query_map::QueryMap;
use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::{AuthorizerContext, ContextValue, Fields, Request, Response};

/// The error type of `lambda_runtime` handlers.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// How long an integration may run by default; `Context::deadline` is the request time plus this.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(29);

/// An event and its invocation context, as `lambda_runtime` hands them to a handler.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LambdaEvent<T> {
    /// The event.
    pub payload: T,
    /// What the invocation knows about itself.
    pub context: Context,
}

impl<T> LambdaEvent<T> {
    /// An event with its context.
    pub fn new(payload: T, context: Context) -> Self {
        Self { payload, context }
    }

    /// The event and its context.
    pub fn into_parts(self) -> (T, Context) {
        (self.payload, self.context)
    }
}

/// The parts of `lambda_runtime::Context` that a gateway request can fill in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Context {
    /// The gateway's request id.
    pub request_id: String,
    /// The request time plus the default integration timeout (29 s), in ms since the epoch;
    /// the host may stop the plugin earlier when its route has a shorter timeout.
    pub deadline: u64,
    /// Empty: a plugin is not a Lambda function.
    pub invoked_function_arn: String,
    /// None.
    pub xray_trace_id: Option<String>,
}

impl Context {
    fn for_request(request: &Request) -> Self {
        Self {
            request_id: request.request_id.clone(),
            deadline: request.request_time_epoch_ms + DEFAULT_TIMEOUT.as_millis() as u64,
            ..Self::default()
        }
    }

    /// The deadline as a time.
    pub fn deadline(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.deadline)
    }
}

/// Marks handlers that take the bare payload.
#[doc(hidden)]
pub struct Payload;
/// Marks handlers that take a `LambdaEvent`.
#[doc(hidden)]
pub struct Event;
/// Marks handlers that return a `Result`.
#[doc(hidden)]
pub struct Blocking;
/// Marks handlers that return a future.
#[doc(hidden)]
pub struct Async;

/// A Lambda handler from `Ev` to `Resp`, in any of the four shapes above (`Marker` tells them
/// apart, inferred).
pub trait LambdaHandler<Ev, Resp, Marker> {
    /// Runs the handler to completion.
    fn call(self, event: LambdaEvent<Ev>) -> Result<Resp, crate::Error>;
}

fn handler_error(e: impl Display) -> crate::Error {
    crate::Error::new(e.to_string())
}

impl<F, Ev, Resp, E> LambdaHandler<Ev, Resp, (Payload, Blocking)> for F
where
    F: FnOnce(Ev) -> Result<Resp, E>,
    E: Display,
{
    fn call(self, event: LambdaEvent<Ev>) -> Result<Resp, crate::Error> {
        self(event.payload).map_err(handler_error)
    }
}

impl<F, Ev, Resp, E> LambdaHandler<Ev, Resp, (Event, Blocking)> for F
where
    F: FnOnce(LambdaEvent<Ev>) -> Result<Resp, E>,
    E: Display,
{
    fn call(self, event: LambdaEvent<Ev>) -> Result<Resp, crate::Error> {
        self(event).map_err(handler_error)
    }
}

impl<F, Fut, Ev, Resp, E> LambdaHandler<Ev, Resp, (Payload, Async)> for F
where
    F: FnOnce(Ev) -> Fut,
    Fut: Future<Output = Result<Resp, E>>,
    E: Display,
{
    fn call(self, event: LambdaEvent<Ev>) -> Result<Resp, crate::Error> {
        block_on(self(event.payload))?.map_err(handler_error)
    }
}

impl<F, Fut, Ev, Resp, E> LambdaHandler<Ev, Resp, (Event, Async)> for F
where
    F: FnOnce(LambdaEvent<Ev>) -> Fut,
    Fut: Future<Output = Result<Resp, E>>,
    E: Display,
{
    fn call(self, event: LambdaEvent<Ev>) -> Result<Resp, crate::Error> {
        block_on(self(event))?.map_err(handler_error)
    }
}

/// Records whether the future asked to be polled again.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Polls `future` to completion. Nothing outside the instance can wake it, so a future that is
/// pending without having woken itself would wait forever: that is an error instead.
fn block_on<F: Future>(future: F) -> Result<F::Output, crate::Error> {
    let mut future = pin!(future);
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(flag.clone());
    let mut cx = TaskContext::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Ok(output);
        }
        if !flag.0.swap(false, Ordering::Relaxed) {
            return Err(crate::Error::new(
                "the handler's future waits for I/O that a plugin cannot do (no async runtime)",
            ));
        }
    }
}

/// Runs a payload 2.0 handler on a request (called by `lambda_v2!`).
pub fn run_v2<H, M>(handler: H, request: Request) -> Result<Response, crate::Error>
where
    H: LambdaHandler<ApiGatewayV2httpRequest, ApiGatewayV2httpResponse, M>,
{
    run(handler, request, v2_request, v2_response)
}

/// Runs a REST API (payload 1.0) handler on a request (called by `lambda_v1!`).
pub fn run_v1<H, M>(handler: H, request: Request) -> Result<Response, crate::Error>
where
    H: LambdaHandler<ApiGatewayProxyRequest, ApiGatewayProxyResponse, M>,
{
    run(handler, request, v1_request, v1_response)
}

/// Runs `handler` on the request as the event `to_event` makes of it; `from_response` reads
/// its answer.
fn run<Ev, Resp, M>(
    handler: impl LambdaHandler<Ev, Resp, M>,
    request: Request,
    to_event: fn(Request) -> Result<Ev, crate::Error>,
    from_response: fn(Resp) -> Result<Response, crate::Error>,
) -> Result<Response, crate::Error> {
    let context = Context::for_request(&request);
    let event = to_event(request)?;
    from_response(handler.call(LambdaEvent::new(event, context))?)
}

/// The request as an HTTP API payload 2.0 event.
pub fn v2_request(r: Request) -> Result<ApiGatewayV2httpRequest, crate::Error> {
    let method = parse_method(&r.method)?;
    let mut http =
        aws_lambda_events::apigw::ApiGatewayV2httpRequestContextHttpDescription::default();
    http.method = method;
    http.path = Some(r.raw_path.clone());
    http.protocol = Some("HTTP/1.1".into());
    http.source_ip = Some(r.source_ip.clone());
    http.user_agent = Some(r.user_agent.clone());

    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(r.route_key.clone());
    context.stage = Some(r.stage.clone());
    context.request_id = Some(r.request_id.clone());
    context.domain_name = r.header("host").map(str::to_owned);
    context.time = Some(clf_time(r.request_time_epoch_ms));
    context.time_epoch = r.request_time_epoch_ms as i64;
    context.http = http;
    context.authorizer = r.authorizer.as_ref().map(|a| {
        let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
        jwt.claims = context_map(a, ContextValue::to_string);
        let mut authorizer = custom_authorizer(a);
        authorizer.jwt = Some(jwt);
        authorizer
    });

    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".into());
    event.route_key = Some(r.route_key);
    event.raw_path = Some(r.raw_path);
    event.raw_query_string = Some(r.raw_query);
    event.cookies = (!r.cookies.is_empty()).then_some(r.cookies);
    event.headers = header_map(r.headers.iter(), true)?;
    event.query_string_parameters = query_map(&r.query_parameters, true);
    event.path_parameters = r.path_parameters.into_iter().collect();
    event.stage_variables = r.stage_variables.into_iter().collect();
    event.request_context = context;
    (event.body, event.is_base64_encoded) = lambda_body(r.body);
    Ok(event)
}

/// The request as a REST API proxy (payload 1.0) event.
pub fn v1_request(r: Request) -> Result<ApiGatewayProxyRequest, crate::Error> {
    let method = parse_method(&r.method)?;
    let resource = match r.route_key.split_once(' ') {
        Some((_, path)) => path.to_owned(),
        None => r.route_key.clone(),
    };
    let cookie = (!r.cookies.is_empty()).then(|| r.cookies.join("; "));
    let headers = || {
        r.headers
            .iter()
            .chain(cookie.as_deref().map(|c| ("cookie", c)))
    };

    let mut identity = aws_lambda_events::apigw::ApiGatewayRequestIdentity::default();
    identity.source_ip = Some(r.source_ip.clone());
    identity.user_agent = Some(r.user_agent.clone());

    let mut context = ApiGatewayProxyRequestContext::default();
    context.stage = Some(r.stage.clone());
    context.request_id = Some(r.request_id.clone());
    context.protocol = Some("HTTP/1.1".into());
    context.identity = identity;
    context.resource_path = Some(resource.clone());
    context.path = Some(if r.stage == "$default" {
        r.raw_path.clone()
    } else {
        format!("/{}{}", r.stage, r.raw_path)
    });
    context.http_method = method.clone();
    context.domain_name = r.header("host").map(str::to_owned);
    context.request_time = Some(clf_time(r.request_time_epoch_ms));
    context.request_time_epoch = r.request_time_epoch_ms as i64;
    if let Some(a) = &r.authorizer {
        let mut authorizer = custom_authorizer(a);
        authorizer
            .fields
            .insert("principalId".into(), a.principal_id.clone().into());
        context.authorizer = authorizer;
    }

    let mut event = ApiGatewayProxyRequest::default();
    event.resource = Some(resource);
    event.path = Some(r.raw_path.clone());
    event.http_method = method;
    // REST APIs keep the last value of a repeated header or parameter in the single-value maps.
    event.headers = header_map(headers(), false)?;
    event.multi_value_headers = header_map(headers(), true)?;
    event.query_string_parameters = query_map(&r.query_parameters, false);
    event.multi_value_query_string_parameters = query_map(&r.query_parameters, true);
    event.path_parameters = r.path_parameters.into_iter().collect();
    event.stage_variables = r.stage_variables.into_iter().collect();
    event.request_context = context;
    (event.body, event.is_base64_encoded) = lambda_body(r.body);
    Ok(event)
}

/// A payload 2.0 response as the integration's answer. A status of 0 (the `Default`) is 200,
/// as API Gateway assumes when a function returns no status code.
pub fn v2_response(r: ApiGatewayV2httpResponse) -> Result<Response, crate::Error> {
    let mut response = response(
        r.status_code,
        r.headers,
        r.multi_value_headers,
        r.body,
        r.is_base64_encoded,
    )?;
    response.cookies = r.cookies;
    Ok(response)
}

/// A REST API proxy response as the integration's answer.
pub fn v1_response(r: ApiGatewayProxyResponse) -> Result<Response, crate::Error> {
    response(
        r.status_code,
        r.headers,
        r.multi_value_headers,
        r.body,
        r.is_base64_encoded,
    )
}

fn response(
    status: i64,
    headers: HeaderMap,
    multi_value_headers: HeaderMap,
    body: Option<Body>,
    is_base64_encoded: bool,
) -> Result<Response, crate::Error> {
    let status = match status {
        0 => 200,
        100..=599 => status as u16,
        _ => return Err(crate::Error::new(format!("invalid status code {status}"))),
    };
    let mut fields = Fields::new();
    for (name, value) in headers.iter() {
        fields.append(name.as_str(), String::from_utf8_lossy(value.as_bytes()));
    }
    for (name, value) in multi_value_headers.iter() {
        if !headers.contains_key(name) {
            fields.append(name.as_str(), String::from_utf8_lossy(value.as_bytes()));
        }
    }
    let body = match body {
        None | Some(Body::Empty) => Vec::new(),
        Some(Body::Text(text)) if is_base64_encoded => base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| crate::Error::new(format!("body is not valid base64: {e}")))?,
        Some(Body::Text(text)) => text.into_bytes(),
        Some(Body::Binary(bytes)) => bytes,
        Some(_) => return Err(crate::Error::new("unsupported body kind")),
    };
    let mut response = Response::new(status).body(body);
    response.headers = fields;
    Ok(response)
}

fn parse_method(method: &str) -> Result<Method, crate::Error> {
    Method::from_bytes(method.as_bytes())
        .map_err(|_| crate::Error::new(format!("invalid HTTP method {method:?}")))
}

fn header_map<'a>(
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
    keep_all: bool,
) -> Result<HeaderMap, crate::Error> {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| crate::Error::new(format!("invalid header name {name:?}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| crate::Error::new(format!("invalid value of header {name}")))?;
        if keep_all {
            map.append(name, value);
        } else {
            map.insert(name, value);
        }
    }
    Ok(map)
}

/// The query parameters by name: every value of a repeated name with `keep_all`, else the last.
fn query_map(fields: &Fields, keep_all: bool) -> QueryMap {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in fields.iter() {
        let values = map.entry(k.to_owned()).or_default();
        if !keep_all {
            values.clear();
        }
        values.push(v.to_owned());
    }
    QueryMap::from(map)
}

/// `requestContext.authorizer` with the custom authorizer's context as its fields.
fn custom_authorizer(a: &AuthorizerContext) -> ApiGatewayRequestAuthorizer {
    let mut authorizer = ApiGatewayRequestAuthorizer::default();
    authorizer.fields = context_map(a, ContextValue::to_json);
    authorizer
}

/// The custom authorizer's context by name, each value as `value` writes it.
fn context_map<T>(a: &AuthorizerContext, value: fn(&ContextValue) -> T) -> HashMap<String, T> {
    a.context
        .iter()
        .map(|(name, v)| (name.clone(), value(v)))
        .collect()
}

/// The body as Lambda carries it: text when it is UTF-8, base64 otherwise.
fn lambda_body(body: Vec<u8>) -> (Option<String>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    match String::from_utf8(body) {
        Ok(text) => (Some(text), false),
        Err(e) => (
            Some(base64::engine::general_purpose::STANDARD.encode(e.as_bytes())),
            true,
        ),
    }
}

/// `12/Mar/2020:19:03:58 +0000`, API Gateway's request time format.
fn clf_time(epoch_ms: u64) -> String {
    const CLF: &[BorrowedFormatItem<'static>] = format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
    );
    // Formatting fails only on a writer's error or a component the value lacks; a String and a
    // UTC date-time have neither.
    crate::time::utc(epoch_ms / 1000)
        .format(CLF)
        .unwrap_or_default()
}

/// Exports an HTTP API (payload 2.0) Lambda handler as the `integration` world: a function of
/// `ApiGatewayV2httpRequest` or `LambdaEvent<ApiGatewayV2httpRequest>`, sync or `async`,
/// returning `Result<ApiGatewayV2httpResponse, E: Display>`.
#[macro_export]
macro_rules! lambda_v2 {
    ($handler:expr) => {
        fn __portico_lambda_v2(
            request: $crate::Request,
        ) -> ::core::result::Result<$crate::Response, $crate::Error> {
            $crate::lambda::run_v2($handler, request)
        }
        $crate::integration!(__portico_lambda_v2);
    };
}

/// Exports a REST API (payload 1.0) Lambda handler as the `integration` world: a function of
/// `ApiGatewayProxyRequest` or `LambdaEvent<ApiGatewayProxyRequest>`, sync or `async`,
/// returning `Result<ApiGatewayProxyResponse, E: Display>`.
#[macro_export]
macro_rules! lambda_v1 {
    ($handler:expr) => {
        fn __portico_lambda_v1(
            request: $crate::Request,
        ) -> ::core::result::Result<$crate::Response, $crate::Error> {
            $crate::lambda::run_v1($handler, request)
        }
        $crate::integration!(__portico_lambda_v1);
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuthorizerContext, ContextValue};

    fn request() -> Request {
        let mut r = Request::new("POST", "/users/7");
        r.raw_query = "a=1&a=2".into();
        r.query_parameters = [("a", "1"), ("a", "2")].into_iter().collect();
        r.headers = [("host", "api.example.com"), ("x-h", "1"), ("x-h", "2")]
            .into_iter()
            .collect();
        r.cookies = vec!["s=1".into()];
        r.path_parameters = [("userId", "7")].into_iter().collect();
        r.stage = "dev".into();
        r.stage_variables = [("TABLE", "t")].into_iter().collect();
        r.route_key = "POST /users/{userId}".into();
        r.request_id = "rid".into();
        r.source_ip = "1.2.3.4".into();
        r.user_agent = "curl".into();
        r.request_time_epoch_ms = 1_583_348_638_390;
        let mut auth = AuthorizerContext::new("user-1");
        auth.context
            .push(("role".into(), ContextValue::Text("admin".into())));
        r.authorizer = Some(auth);
        r.body = b"{\"a\":1}".to_vec();
        r
    }

    #[test]
    fn clf_time_matches_api_gateway() {
        assert_eq!(clf_time(1_583_348_638_390), "04/Mar/2020:19:03:58 +0000");
        assert_eq!(clf_time(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(clf_time(951_782_400_000), "29/Feb/2000:00:00:00 +0000");
    }

    #[test]
    fn v2_event_carries_the_request() {
        let e = v2_request(request()).unwrap();
        assert_eq!(e.version.as_deref(), Some("2.0"));
        assert_eq!(e.route_key.as_deref(), Some("POST /users/{userId}"));
        assert_eq!(e.raw_path.as_deref(), Some("/users/7"));
        assert_eq!(e.raw_query_string.as_deref(), Some("a=1&a=2"));
        assert_eq!(e.cookies, Some(vec!["s=1".to_owned()]));
        assert_eq!(e.headers.get_all("x-h").iter().count(), 2);
        assert_eq!(e.query_string_parameters.all("a"), Some(vec!["1", "2"]));
        assert_eq!(e.path_parameters["userId"], "7");
        assert_eq!(e.stage_variables["TABLE"], "t");
        assert_eq!(e.body.as_deref(), Some("{\"a\":1}"));
        assert!(!e.is_base64_encoded);
        let c = &e.request_context;
        assert_eq!(c.http.method, Method::POST);
        assert_eq!(c.http.source_ip.as_deref(), Some("1.2.3.4"));
        assert_eq!(c.stage.as_deref(), Some("dev"));
        assert_eq!(c.domain_name.as_deref(), Some("api.example.com"));
        assert_eq!(c.time_epoch, 1_583_348_638_390);
        let a = c.authorizer.as_ref().unwrap();
        assert_eq!(a.fields["role"], "admin");
        assert_eq!(a.jwt.as_ref().unwrap().claims["role"], "admin");
    }

    #[test]
    fn v1_event_carries_the_request() {
        let e = v1_request(request()).unwrap();
        assert_eq!(e.resource.as_deref(), Some("/users/{userId}"));
        assert_eq!(e.http_method, Method::POST);
        assert_eq!(e.headers["x-h"], "2");
        assert_eq!(e.headers["cookie"], "s=1");
        assert_eq!(e.multi_value_headers.get_all("x-h").iter().count(), 2);
        assert_eq!(e.query_string_parameters.first("a"), Some("2"));
        assert_eq!(
            e.multi_value_query_string_parameters.all("a"),
            Some(vec!["1", "2"])
        );
        assert_eq!(e.request_context.path.as_deref(), Some("/dev/users/7"));
        assert_eq!(e.request_context.authorizer.fields["principalId"], "user-1");
        assert_eq!(
            e.request_context.identity.user_agent.as_deref(),
            Some("curl")
        );
    }

    #[test]
    fn binary_bodies_travel_as_base64() {
        let mut r = request();
        r.body = vec![0xff, 0x00];
        let e = v2_request(r).unwrap();
        assert!(e.is_base64_encoded);
        assert_eq!(e.body.as_deref(), Some("/wA="));
    }

    #[test]
    fn responses_convert() {
        let mut r = ApiGatewayV2httpResponse::default();
        r.headers
            .insert("content-type", HeaderValue::from_static("text/plain"));
        r.body = Some(Body::Text("aGk=".into()));
        r.is_base64_encoded = true;
        r.cookies = vec!["a=1".into()];
        let out = v2_response(r).unwrap();
        assert_eq!(out.status, 200);
        assert_eq!(out.body, b"hi");
        assert_eq!(out.cookies, ["a=1"]);
        assert_eq!(out.headers.get("content-type"), Some("text/plain"));

        let mut r = ApiGatewayProxyResponse::default();
        r.status_code = 700;
        assert!(v1_response(r).is_err());
    }

    #[test]
    fn every_handler_shape_runs() {
        fn sync_payload(e: ApiGatewayV2httpRequest) -> Result<ApiGatewayV2httpResponse, Error> {
            let mut r = ApiGatewayV2httpResponse::default();
            r.status_code = 201;
            r.body = e.raw_path.map(Body::Text);
            Ok(r)
        }
        async fn async_event(
            e: LambdaEvent<ApiGatewayV2httpRequest>,
        ) -> Result<ApiGatewayV2httpResponse, Error> {
            let mut r = ApiGatewayV2httpResponse::default();
            r.status_code = 202;
            r.body = Some(Body::Text(e.context.request_id));
            Ok(r)
        }
        async fn async_v1(_: ApiGatewayProxyRequest) -> Result<ApiGatewayProxyResponse, Error> {
            Err("nope".into())
        }
        fn sync_v1_event(
            e: LambdaEvent<ApiGatewayProxyRequest>,
        ) -> Result<ApiGatewayProxyResponse, String> {
            let mut r = ApiGatewayProxyResponse::default();
            r.status_code = 204;
            r.body = e.payload.path.map(Body::Text);
            Ok(r)
        }
        let out = run_v2(sync_payload, request()).unwrap();
        assert_eq!((out.status, out.body.as_slice()), (201, &b"/users/7"[..]));
        let out = run_v2(async_event, request()).unwrap();
        assert_eq!((out.status, out.body.as_slice()), (202, &b"rid"[..]));
        assert_eq!(run_v1(async_v1, request()).unwrap_err().message(), "nope");
        assert_eq!(run_v1(sync_v1_event, request()).unwrap().status, 204);
    }

    #[test]
    fn a_future_that_never_wakes_is_an_error() {
        async fn stuck(_: ApiGatewayV2httpRequest) -> Result<ApiGatewayV2httpResponse, Error> {
            std::future::pending::<()>().await;
            unreachable!()
        }
        assert!(run_v2(stuck, request())
            .unwrap_err()
            .message()
            .contains("no async runtime"));
    }
}
