//! `http_proxy` integrations (API Gateway's `HTTP_PROXY`): the request is passed to an HTTP
//! backend through the embedder's [`HttpClient`] and the backend's answer is passed back:
//! status, headers (by API Gateway's rules, see [`headers`]) and body.
//!
//! - The URL is the integration's `uri` (see [`uri`]) with the client's query string.
//! - The method is the integration's `method`, or the client's for `ANY`; the body is the
//!   client's (already read under the gateway's 10 MB limit).
//! - The whole exchange, response body included, runs under `timeoutMs` (default 29000): past
//!   it the gateway answers 504 `{"message":"Endpoint request timed out"}` (INTEGRATION_TIMEOUT).
//! - A backend that cannot be reached (refused, reset, no such host, TLS) or whose response
//!   body breaks off or is over 10 MB is answered 502 `{"message":"Internal server error"}`
//!   (REST) / `{"message":"Internal Server Error"}` (HTTP APIs), INTEGRATION_FAILURE; the
//!   reason goes to `$context.integrationErrorMessage`.

mod client;
mod headers;
mod uri;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;

pub use client::{HttpClient, HttpClientError, HttpClientFuture, UpstreamBody};

use self::headers::Hop;
use self::uri::UriTemplate;
use super::IntegrationScope;
use crate::config::{IntegrationDefinition, IntegrationMethod};
use crate::error::{Error, KeyPath};
use crate::exchange::Exchange;
use crate::respond::{GatewayError, ResponseType};
use crate::trace::call_span;
use tracing::Instrument;

/// API Gateway's payload quota, 10 MB (API Gateway Developer Guide, "quotas", for HTTP and
/// REST APIs alike), which integration responses are held to as requests are.
const MAX_RESPONSE_BYTES: usize = 10 * 1024 * 1024;

/// The integration timeout when the definition sets none: API Gateway's 29 s.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(29_000);

/// A compiled `http_proxy` integration of one stage and route.
#[derive(Clone)]
pub(crate) struct HttpProxy {
    uri: UriTemplate,
    /// `None`: the client's method (`ANY`).
    method: Option<Method>,
    timeout: Duration,
    client: Arc<dyn HttpClient>,
    /// REST API semantics (headers, error messages).
    rest: bool,
    /// `X-Amzn-Apigateway-Api-Id` (REST).
    api_id: HeaderValue,
}

impl std::fmt::Debug for HttpProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpProxy")
            .field("uri", &self.uri)
            .field("method", &self.method)
            .field("timeout", &self.timeout)
            .field("rest", &self.rest)
            .finish_non_exhaustive()
    }
}

impl HttpProxy {
    /// Compiles `definition` (found at `at`, its other settings already checked) with
    /// `timeout` (`None`: the default) for `scope`.
    pub(crate) fn compile(
        definition: &IntegrationDefinition,
        timeout: Option<Duration>,
        scope: &IntegrationScope<'_>,
        at: &KeyPath,
    ) -> Result<Self, Error> {
        let uri = definition.uri.as_deref().ok_or_else(|| {
            Error::config(
                at.key("uri"),
                "required for integrations of type http_proxy",
            )
        })?;
        let client = scope.http_client.ok_or_else(|| {
            Error::config(
                at.key("type"),
                "http_proxy integrations need an HTTP client: give the gateway one with GatewayBuilder::http_client (portico-serve has one)",
            )
        })?;
        let uri = UriTemplate::compile(
            uri,
            scope.variables,
            scope.route_key,
            scope.stage,
            &at.key("uri"),
        )?;
        let method = match definition.method.unwrap_or_default() {
            IntegrationMethod::Any => None,
            IntegrationMethod::Get => Some(Method::GET),
            IntegrationMethod::Post => Some(Method::POST),
            IntegrationMethod::Put => Some(Method::PUT),
            IntegrationMethod::Delete => Some(Method::DELETE),
            IntegrationMethod::Patch => Some(Method::PATCH),
            IntegrationMethod::Head => Some(Method::HEAD),
            IntegrationMethod::Options => Some(Method::OPTIONS),
        };
        let api_id =
            HeaderValue::from_str(scope.api_id).unwrap_or_else(|_| HeaderValue::from_static("-"));
        Ok(HttpProxy {
            uri,
            method,
            timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
            client: Arc::clone(client),
            rest: scope.rest,
            api_id,
        })
    }

    /// Passes the request to the backend and its answer back; `path`, a parameter mapping's
    /// `overwrite:path`, replaces the URL's path. Boxed: the exchange's future is large, and
    /// the integrate phase's must stay small for mocks.
    pub(crate) fn call<'a>(
        &'a self,
        x: &'a Exchange<'_>,
        path: Option<&str>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, GatewayError>> + Send + 'a>> {
        let parts = x.parts;
        let head = parts.method == Method::HEAD;
        let span = call_span!(
            "http_proxy",
            otel.kind = "client",
            server.address = self.uri.authority().as_str(),
            http.response.status_code = tracing::field::Empty,
        );
        let request = match span.in_scope(|| self.request(x, path)) {
            Ok(request) => request,
            Err(error) => return Box::pin(std::future::ready(Err(error))),
        };
        // Sent here, outside the async block: a future that held `&dyn HttpClient` across an
        // await would not be `Send` for every lifetime (rustc's higher-ranked check).
        let sent = span.in_scope(|| self.client.send(request));
        let call = async move {
            let exchange = async {
                let response = sent.await.map_err(|e| Failure::Request(e.to_string()))?;
                read_whole(response, head).await
            };
            match tokio::time::timeout(self.timeout, exchange).await {
                Ok(Ok((status, upstream_headers, body))) => {
                    tracing::Span::current().record("http.response.status_code", status.as_u16());
                    let mut response = Response::new(body);
                    *response.status_mut() = status;
                    *response.headers_mut() = headers::to_client(upstream_headers, self.rest, head);
                    Ok(response)
                }
                Ok(Err(failure)) => Err(self.failure_answer(&failure)),
                Err(_) => Err(GatewayError::new(
                    ResponseType::IntegrationTimeout,
                    "Endpoint request timed out",
                )
                .with_detail(format!(
                    "the backend did not answer within {} ms",
                    self.timeout.as_millis()
                ))),
            }
        };
        Box::pin(call.instrument(span))
    }

    /// The upstream request for the client's: URL (its path `path` when given), method,
    /// headers, body.
    fn request(
        &self,
        x: &Exchange<'_>,
        path: Option<&str>,
    ) -> Result<Request<Bytes>, GatewayError> {
        let parts = x.parts;
        let uri = self
            .uri
            .render(x.path, parts.uri.query(), path)
            .map_err(|e| {
                self.configuration_error(format!(
                    "the backend URL for this request is invalid: {e}"
                ))
            })?;
        // Timers need a tokio runtime; without one, say so rather than panic.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(self.configuration_error(
                "http_proxy integrations run on a tokio runtime (with timers enabled)",
            ));
        }
        let hop = Hop {
            upstream: self.uri.authority().as_str(),
            rest: self.rest,
            api_id: &self.api_id,
            client: x.peer(),
        };
        let mut request = Request::new(x.body.clone());
        *request.method_mut() = self.method.clone().unwrap_or_else(|| parts.method.clone());
        *request.uri_mut() = uri;
        *request.headers_mut() = headers::to_upstream(parts, &hop);
        // A traced request's backend gets the gateway's trace headers: both families, the
        // `http_proxy` span as their parent.
        if let Some(trace) = x.trace {
            trace.passed_on().replace_headers(request.headers_mut());
        }
        Ok(request)
    }

    /// How each kind of API spells its 5xx answers: "Internal server error" (REST, as
    /// recorded in LocalStack's snapshot test_apigateway_header_remapping_http) and "Internal
    /// Server Error" (HTTP APIs, "Troubleshooting issues with HTTP API Lambda integrations").
    fn internal_error_message(&self) -> &'static str {
        if self.rest {
            "Internal server error"
        } else {
            "Internal Server Error"
        }
    }

    /// The backend could not be reached or answered something unusable: 502, as for a
    /// failed Lambda invocation.
    fn failure_answer(&self, failure: &Failure) -> GatewayError {
        GatewayError {
            status: Some(StatusCode::BAD_GATEWAY),
            ..GatewayError::new(
                ResponseType::IntegrationFailure,
                self.internal_error_message(),
            )
        }
        .with_detail(failure.to_string())
    }

    /// The request cannot be sent as configured: 500 API_CONFIGURATION_ERROR ("an invalid
    /// endpoint address", in AWS's gateway response types).
    fn configuration_error(&self, detail: impl Into<String>) -> GatewayError {
        GatewayError::new(
            ResponseType::ApiConfigurationError,
            self.internal_error_message(),
        )
        .with_detail(detail)
    }
}

/// Why the backend's answer is unusable, for the access log.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("the request to the backend failed: {0}")]
    Request(String),
    #[error("the backend's response body broke off: {0}")]
    Body(String),
    #[error("the backend's response body is over {max} bytes (API Gateway's 10 MB payload quota)", max = MAX_RESPONSE_BYTES)]
    TooLarge,
}

/// The response's status, headers and whole body, read under [`MAX_RESPONSE_BYTES`]: a
/// declared length over it is refused before a byte is read (but for the answer to a `HEAD`,
/// whose length is that of a body never sent).
async fn read_whole(
    response: Response<UpstreamBody>,
    head: bool,
) -> Result<(StatusCode, http::HeaderMap, Bytes), Failure> {
    let (parts, body) = response.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if !head && declared > MAX_RESPONSE_BYTES as u64 {
        return Err(Failure::TooLarge);
    }
    // Read frame by frame (not through `Limited`, whose error conversion makes this future
    // fail rustc's higher-ranked `Send` check), counting against the limit as it arrives.
    let mut body = body;
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Failure::Body(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            total += data.len();
            if total > MAX_RESPONSE_BYTES {
                return Err(Failure::TooLarge);
            }
            chunks.push(data);
        }
    }
    let body = match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => Bytes::from(chunks.concat()),
    };
    Ok((parts.status, parts.headers, body))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::task::{Context, Poll};

    use http_body::{Body, Frame};
    use http_body_util::Full;

    use super::*;
    use crate::integrate::Integration;

    type BoxError = Box<dyn std::error::Error + Send + Sync>;

    /// A client that keeps the request it got and answers with `answer()`, no network.
    struct Fake {
        seen: Mutex<Option<Request<Bytes>>>,
        answer: fn() -> Result<Response<UpstreamBody>, HttpClientError>,
    }

    impl Fake {
        fn answering(answer: fn() -> Result<Response<UpstreamBody>, HttpClientError>) -> Arc<Fake> {
            Arc::new(Fake {
                seen: Mutex::new(None),
                answer,
            })
        }
    }

    impl HttpClient for Fake {
        fn send(&self, request: Request<Bytes>) -> HttpClientFuture<'_> {
            *self.seen.lock().unwrap() = Some(request);
            let answer = (self.answer)();
            Box::pin(async move { answer })
        }
    }

    fn created() -> Result<Response<UpstreamBody>, HttpClientError> {
        let body = Full::new(Bytes::from_static(b"made"))
            .map_err(|never| match never {})
            .boxed_unsync();
        let mut response = Response::new(body);
        *response.status_mut() = StatusCode::CREATED;
        response
            .headers_mut()
            .insert("x-from", HeaderValue::from_static("upstream"));
        Ok(response)
    }

    fn refused() -> Result<Response<UpstreamBody>, HttpClientError> {
        Err(HttpClientError::new("connection refused"))
    }

    /// A body that sends three bytes, then fails.
    struct Broken(bool);

    impl Body for Broken {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            if self.0 {
                return Poll::Ready(Some(Err("reset by peer".into())));
            }
            self.0 = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"par")))))
        }
    }

    fn broken_body() -> Result<Response<UpstreamBody>, HttpClientError> {
        Ok(Response::new(Broken(false).boxed_unsync()))
    }

    fn proxy(client: Arc<dyn HttpClient>, rest: bool) -> Integration {
        let definition: IntegrationDefinition =
            yaml_serde::from_str("{type: http_proxy, uri: 'http://backend:9/o/{id}'}").unwrap();
        let variables = BTreeMap::new();
        let scope = IntegrationScope {
            variables: &variables,
            plugins: &|_| None,
            http_client: Some(&client),
            rest,
            route_key: "GET /o/{id}",
            stage: "dev",
            api_id: "api",
            binary: &Arc::default(),
        };
        Integration::compile(&definition, &scope, &KeyPath::root().key("i")).unwrap()
    }

    fn parts(uri: &str) -> http::request::Parts {
        Request::get(uri).body(()).unwrap().into_parts().0
    }

    #[tokio::test]
    async fn the_upstream_answer_passes_back() {
        let fake = Fake::answering(created);
        let integration = proxy(fake.clone(), false);
        let parts = parts("/o/7?q=1");
        let x = Exchange::for_test(&parts);
        let response = integration.invoke(&x).await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()["x-from"], "upstream");
        assert_eq!(response.body(), "made");
        let seen = fake.seen.lock().unwrap().take().unwrap();
        assert_eq!(seen.method(), Method::GET);
        assert_eq!(seen.uri(), "http://backend:9/o/7?q=1");
        assert_eq!(seen.headers()["host"], "backend:9");
    }

    #[tokio::test]
    async fn failures_are_502_in_each_apis_words() {
        let parts = parts("/o/7");
        let x = Exchange::for_test(&parts);
        for (rest, message) in [
            (false, "Internal Server Error"),
            (true, "Internal server error"),
        ] {
            let error = proxy(Fake::answering(refused), rest)
                .invoke(&x)
                .await
                .unwrap_err();
            assert_eq!(error.response_type, ResponseType::IntegrationFailure);
            assert_eq!(error.status, Some(StatusCode::BAD_GATEWAY));
            assert_eq!(error.message, message);
            assert_eq!(
                error.detail.as_deref(),
                Some("the request to the backend failed: connection refused")
            );
        }
        let error = proxy(Fake::answering(broken_body), false)
            .invoke(&x)
            .await
            .unwrap_err();
        assert_eq!(error.status, Some(StatusCode::BAD_GATEWAY));
        assert_eq!(
            error.detail.as_deref(),
            Some("the backend's response body broke off: reset by peer")
        );
    }

    /// Outside a tokio runtime there are no timers: the request is refused, never a panic.
    #[test]
    fn without_a_runtime_the_answer_is_a_configuration_error() {
        let integration = proxy(Fake::answering(created), false);
        let parts = parts("/o/7");
        let x = Exchange::for_test(&parts);
        let mut call = std::pin::pin!(integration.invoke(&x));
        let mut context = Context::from_waker(std::task::Waker::noop());
        let Poll::Ready(Err(error)) = call.as_mut().poll(&mut context) else {
            panic!("answered or pending without a runtime");
        };
        assert_eq!(error.response_type, ResponseType::ApiConfigurationError);
        assert!(error.detail.unwrap().contains("tokio runtime"));
    }
}
