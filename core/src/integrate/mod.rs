//! The integrate phase: what answers a matched route (a mock, a plugin of the `integration`
//! world, a plugin of the `lambda` world fed API Gateway's Lambda proxy events, a standard
//! `wasi:http/proxy` component, or an HTTP backend behind an `http_proxy` integration).

pub(crate) mod binary;
pub(crate) mod http_proxy;
pub(crate) mod lambda;
mod mapping;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, COOKIE, HOST, SET_COOKIE, USER_AGENT};
use http::{HeaderMap, Response, StatusCode};
use tracing::Instrument;

use crate::authorize::caller::Authorization;
use crate::config::{ContentHandling, IntegrationDefinition, IntegrationType, PluginWorld};
use crate::error::{Error, KeyPath};
use crate::exchange::{Exchange, Step};
use crate::net::text;
use crate::plugin::{CallRequest, CallResponse, LoadedPlugin, PluginFailure};
use crate::respond::{header_map, status_code, GatewayError, ResponseType};
use crate::stage;
use crate::trace::call_span;
use binary::{BinaryMediaTypes, RequestConversion};
use http_proxy::{HttpClient, HttpProxy};
pub(crate) use lambda::PayloadVersion;
use mapping::{MappingScope, ParameterMapping};

/// The range of an integration's `timeoutMs`, as API Gateway's integration timeout.
const INTEGRATION_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 50..=29_000;

/// A compiled integration of one stage (stage variables already substituted). A plugin's
/// `cap` is the integration's `timeoutMs`: it shortens the plugin's own time limit.
#[derive(Debug, Clone)]
pub(crate) enum Integration {
    /// A static response.
    Mock(MockResponse),
    /// A component of the `portico:plugin/integration` world.
    Plugin {
        plugin: Arc<LoadedPlugin>,
        cap: Option<Duration>,
        convert: Option<RequestConversion>,
    },
    /// A component of the `portico:plugin/lambda` world, fed Lambda proxy events of `version`.
    Lambda {
        plugin: Arc<LoadedPlugin>,
        version: PayloadVersion,
        cap: Option<Duration>,
        /// A REST API's binary media types (`None` for an HTTP API).
        binary: Option<Arc<BinaryMediaTypes>>,
    },
    /// A standard `wasi:http/proxy` component.
    WasiHttp {
        plugin: Arc<LoadedPlugin>,
        cap: Option<Duration>,
        convert: Option<RequestConversion>,
    },
    /// An HTTP backend (`http_proxy`), boxed: it is larger than the others.
    HttpProxy(Box<HttpProxy>, Option<RequestConversion>),
    /// An HTTP API integration with parameter mapping (`requestParameters`,
    /// `responseParameters`) around it.
    Mapped(Box<Mapped>),
}

/// An integration and the parameter mapping of its requests and answers.
#[derive(Debug, Clone)]
pub(crate) struct Mapped {
    inner: Integration,
    mapping: ParameterMapping,
}

/// What an integration is compiled for: the stage, the route, and what the gateway offers.
pub(crate) struct IntegrationScope<'a> {
    /// The stage's variables.
    pub(crate) variables: &'a BTreeMap<String, String>,
    /// The API's loaded plugins, by name.
    pub(crate) plugins: &'a dyn Fn(&str) -> Option<Arc<LoadedPlugin>>,
    /// The embedder's HTTP client, for `http_proxy` integrations.
    pub(crate) http_client: Option<&'a Arc<dyn HttpClient>>,
    /// REST API semantics.
    pub(crate) rest: bool,
    /// The route the integration answers (`GET /orders/{id}`).
    pub(crate) route_key: &'a str,
    /// The stage's name.
    pub(crate) stage: &'a str,
    /// The API's id.
    pub(crate) api_id: &'a str,
    /// A REST API's binary media types.
    pub(crate) binary: &'a Arc<BinaryMediaTypes>,
}

/// A mock integration's response, built once per stage.
#[derive(Debug, Clone)]
pub(crate) struct MockResponse {
    status: StatusCode,
    /// In order; each answer gets its own map with room for what the gateway adds.
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

/// Headers the gateway may add to an integration's answer (the request id, CORS, RateLimit):
/// the room an answer's map is made with, so that adding them does not grow it (a map made
/// for a plugin's one header grew when the request id went in: about 560 instructions of a
/// warm `echo` call in process, 458 of a request to portico-serve, callgrind).
const ROOM_FOR_GATEWAY_HEADERS: usize = 4;

/// The most header lines (cookies included) a plugin's or a function's answer may carry; more
/// is a malformed answer. A bound of Portico's own (AWS's HTTP API quotas, http-api-quotas.md,
/// bound a request's header values at 10,240 bytes and name none for an answer), far below
/// what an HTTP header map holds (`http`'s `HeaderMap` panics past 32,768 slots), so that the
/// gateway's headers always fit.
pub(super) const MAX_ANSWER_HEADERS: usize = 10_000;

/// The header map of a plugin's or a function's answer of `lines` header lines: refused past
/// [`MAX_ANSWER_HEADERS`], made with room for one line more (a 1.0 Lambda answer's default
/// `content-type`) and the gateway's own headers.
pub(super) fn answer_headers(lines: usize) -> Result<HeaderMap, PluginFailure> {
    if lines > MAX_ANSWER_HEADERS {
        return Err(PluginFailure::BadResponse(format!(
            "{lines} headers, more than {MAX_ANSWER_HEADERS}"
        )));
    }
    Ok(HeaderMap::with_capacity(
        lines + 1 + ROOM_FOR_GATEWAY_HEADERS,
    ))
}

impl MockResponse {
    /// The mock's answer, in a header map with room for what the gateway adds.
    fn answer(&self) -> Response<Bytes> {
        let mut response = Response::new(self.body.clone());
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.reserve(self.headers.len() + ROOM_FOR_GATEWAY_HEADERS);
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        response
    }
}

impl Integration {
    /// Compiles `definition` (found at `at`) for `scope`, with its parameter mapping.
    pub(crate) fn compile(
        definition: &IntegrationDefinition,
        scope: &IntegrationScope<'_>,
        at: &KeyPath,
    ) -> Result<Self, Error> {
        let request = definition.request_parameters.as_ref();
        let response = definition.response_parameters.as_ref();
        let mapped_key = match (request, response) {
            (Some(_), _) => Some("requestParameters"),
            (None, Some(_)) => Some("responseParameters"),
            (None, None) => None,
        };
        if let Some(key) = mapped_key {
            if scope.rest {
                // A REST API maps parameters with its own syntax
                // (`integration.request.header.x: method.request.header.y`), on integration
                // responses of non-proxy integrations: refused rather than read as HTTP API
                // mappings.
                return Err(Error::not_supported(
                    at.key(key),
                    "parameter mapping on a REST API (protocol: rest); requestParameters and responseParameters are HTTP API parameter mappings",
                ));
            }
            if definition.integration_type == IntegrationType::Mock {
                return Err(Error::config(
                    at.key(key),
                    "only valid for integrations of type http_proxy or plugin",
                ));
            }
        }
        let integration = Self::compile_unmapped(definition, scope, at)?;
        if mapped_key.is_none() {
            return Ok(integration);
        }
        // AWS maps parameters for HTTP_PROXY and for Lambda proxy (AWS_PROXY) integrations
        // alike: the console offers it for both, and the CDK's HttpLambdaIntegration takes a
        // `parameterMapping` (aws/aws-cdk#17255, aws/serverless-application-model#2510). Every
        // plugin world stands for a Lambda function here.
        let mapping_scope = MappingScope {
            variables: scope.variables,
            route_key: scope.route_key,
            path_allowed: definition.integration_type == IntegrationType::HttpProxy,
        };
        Ok(
            match ParameterMapping::compile(request, response, &mapping_scope, at)? {
                Some(mapping) => Integration::Mapped(Box::new(Mapped {
                    inner: integration,
                    mapping,
                })),
                None => integration,
            },
        )
    }

    /// Compiles `definition` (found at `at`) for `scope`, without its parameter mapping.
    fn compile_unmapped(
        definition: &IntegrationDefinition,
        scope: &IntegrationScope<'_>,
        at: &KeyPath,
    ) -> Result<Self, Error> {
        let (variables, rest) = (scope.variables, scope.rest);
        let only_for = |field: &str, set: bool, kind: &str| {
            if set {
                Err(Error::config(
                    at.key(field),
                    format!("only valid for integrations of type {kind}"),
                ))
            } else {
                Ok(())
            }
        };
        // `contentHandling`: REST APIs only (HTTP APIs infer a body's encoding), and only for
        // integrations that get the request's body.
        let convert = match definition.content_handling {
            None => None,
            Some(_) if !rest => {
                return Err(Error::config(
                    at.key("contentHandling"),
                    "only REST APIs convert payloads (HTTP APIs pass bodies as they come)",
                ))
            }
            Some(handling) => Some(RequestConversion::new(handling, Arc::clone(scope.binary))),
        };
        match definition.integration_type {
            IntegrationType::Mock => {
                only_for("contentHandling", convert.is_some(), "plugin or http_proxy")?;
                only_for("plugin", definition.plugin.is_some(), "plugin")?;
                only_for("uri", definition.uri.is_some(), "http_proxy")?;
                only_for("method", definition.method.is_some(), "http_proxy")?;
                only_for(
                    "payloadFormatVersion",
                    definition.payload_format_version.is_some(),
                    "plugin",
                )?;
                only_for(
                    "timeoutMs",
                    definition.timeout_ms.is_some(),
                    "plugin or http_proxy",
                )?;
                let status =
                    status_code(definition.status_code.unwrap_or(200), &at.key("statusCode"))?;
                let mut headers = match &definition.headers {
                    Some(headers) => header_map(headers.iter(), variables, &at.key("headers"))?,
                    None => HeaderMap::new(),
                };
                headers
                    .entry(CONTENT_TYPE)
                    .or_insert(HeaderValue::from_static("application/json"));
                let body = match &definition.body {
                    Some(body) => stage::substitute(body, variables, &at.key("body"))?,
                    None => String::new(),
                };
                Ok(Integration::Mock(MockResponse {
                    status,
                    headers: headers
                        .iter()
                        .map(|(name, value)| (name.clone(), value.clone()))
                        .collect(),
                    body: Bytes::from(body),
                }))
            }
            IntegrationType::Plugin => {
                only_for("statusCode", definition.status_code.is_some(), "mock")?;
                only_for("headers", definition.headers.is_some(), "mock")?;
                only_for("body", definition.body.is_some(), "mock")?;
                only_for("uri", definition.uri.is_some(), "http_proxy")?;
                only_for("method", definition.method.is_some(), "http_proxy")?;
                let version = lambda::resolve_version(definition.payload_format_version, rest);
                let cap = integration_timeout(definition, at)?;
                let name = definition.plugin.as_deref().ok_or_else(|| {
                    Error::config(at.key("plugin"), "required for integrations of type plugin")
                })?;
                let plugin = (scope.plugins)(name).ok_or_else(|| {
                    Error::config(at.key("plugin"), format!("unknown plugin \"{name}\""))
                })?;
                match plugin.world() {
                    PluginWorld::Integration | PluginWorld::LazyIntegration => Ok(Integration::Plugin {
                        plugin,
                        cap,
                        convert,
                    }),
                    // A Lambda proxy event carries a binary body base64-encoded already (see
                    // binary.rs): CONVERT_TO_TEXT is what it does anyway, CONVERT_TO_BINARY
                    // cannot be put into a JSON event.
                    PluginWorld::Lambda
                        if definition.content_handling == Some(ContentHandling::ConvertToBinary) =>
                    {
                        Err(Error::config(
                            at.key("contentHandling"),
                            "a Lambda proxy event is JSON: its body cannot be binary (CONVERT_TO_TEXT is what it gets)",
                        ))
                    }
                    PluginWorld::Lambda => Ok(Integration::Lambda {
                        plugin,
                        version,
                        cap,
                        binary: rest.then(|| Arc::clone(scope.binary)),
                    }),
                    PluginWorld::WasiHttp => Ok(Integration::WasiHttp {
                        plugin,
                        cap,
                        convert,
                    }),
                    PluginWorld::Authorizer => Err(Error::config(
                        at.key("plugin"),
                        format!("plugin \"{name}\" implements the authorizer world; an integration needs the integration, lazy-integration, lambda or wasi-http world"),
                    )),
                }
            }
            IntegrationType::HttpProxy => {
                only_for("plugin", definition.plugin.is_some(), "plugin")?;
                only_for(
                    "payloadFormatVersion",
                    definition.payload_format_version.is_some(),
                    "plugin",
                )?;
                only_for("statusCode", definition.status_code.is_some(), "mock")?;
                only_for("headers", definition.headers.is_some(), "mock")?;
                only_for("body", definition.body.is_some(), "mock")?;
                let timeout = integration_timeout(definition, at)?;
                let proxy = HttpProxy::compile(definition, timeout, scope, at)?;
                Ok(Integration::HttpProxy(Box::new(proxy), convert))
            }
            IntegrationType::Http => {
                if definition.uri.is_none() {
                    return Err(Error::config(
                        at.key("uri"),
                        "required for integrations of type http",
                    ));
                }
                // API Gateway's HTTP custom integration maps requests and responses with
                // templates; passing them through is `http_proxy`.
                Err(Error::not_supported(
                    at.clone(),
                    "integration type \"http\" (for a backend that gets the request as it came, use http_proxy)",
                ))
            }
        }
    }

    /// The integration's `contentHandling`, when it has one.
    fn request_conversion(&self) -> Option<&RequestConversion> {
        match self {
            Integration::Plugin { convert, .. }
            | Integration::WasiHttp { convert, .. }
            | Integration::HttpProxy(_, convert) => convert.as_ref(),
            // Mapping is for HTTP APIs, conversions for REST APIs: never both.
            Integration::Mock(_) | Integration::Lambda { .. } | Integration::Mapped(_) => None,
        }
    }

    /// Calls the integration with what the earlier phases established about the request.
    pub(crate) async fn invoke(&self, x: &Exchange<'_>) -> Result<Response<Bytes>, GatewayError> {
        match self {
            Integration::Mock(mock) => Ok(mock.answer()),
            Integration::Plugin { plugin, cap, .. } => {
                let span = call_span!(
                    "plugin",
                    plugin.name = plugin.name(),
                    plugin.world = "integration"
                );
                let request = span.in_scope(|| plugin_request(x));
                // Boxed, as the plugin futures are kilobytes: mocks should not move them.
                let response = Box::pin(plugin.handle(request, *cap).instrument(span))
                    .await
                    .map_err(|f| failure_answer(&f, x.rest))?;
                // A malformed answer is answered as any failed call, as the lambda world's is:
                // a REST API's 502, an HTTP API's 500 (an HTTP API's access log, quoted in
                // middyjs/middy#1005: `"status": "500"`, `"errorResponseType":
                // "MALFORMED_PROXY_RESPONSE"`).
                plugin_response(response).map_err(|failure| {
                    tracing::error!(plugin = plugin.name(), "plugin {failure}");
                    failure_answer(&failure, x.rest)
                })
            }
            Integration::Lambda {
                plugin,
                version,
                cap,
                binary,
            } => {
                let binary = binary.as_deref();
                let span = call_span!(
                    "plugin",
                    plugin.name = plugin.name(),
                    plugin.world = "lambda"
                );
                let event = span.in_scope(|| lambda::event(*version, x, binary));
                let output = Box::pin(plugin.handle_event(&event, *cap).instrument(span))
                    .await
                    .map_err(|f| failure_answer(&f, x.rest))?;
                // A REST API decodes a base64 answer only for a client whose first Accept
                // type is binary; an HTTP API always does.
                let decode = binary.is_none_or(|types| {
                    types.accepted(
                        x.parts
                            .headers
                            .get(http::header::ACCEPT)
                            .and_then(|a| a.to_str().ok()),
                    )
                });
                lambda::response(*version, &output, x.rest, decode).map_err(|failure| {
                    tracing::error!(plugin = plugin.name(), "plugin {failure}");
                    failure_answer(&failure, x.rest)
                })
            }
            Integration::WasiHttp { plugin, cap, .. } => {
                let span = call_span!(
                    "plugin",
                    plugin.name = plugin.name(),
                    plugin.world = "wasi-http"
                );
                let request = span.in_scope(|| wasi_http_request(x));
                let response = Box::pin(plugin.serve_http(request, *cap).instrument(span))
                    .await
                    .map_err(|f| failure_answer(&f, x.rest))?;
                Ok(response)
            }
            // Boxed (by `call`), like the plugins' futures: the mock path's stays small.
            Integration::HttpProxy(proxy, _) => proxy.call(x, None).await,
            Integration::Mapped(mapped) => Box::pin(mapped.invoke(x)).await,
        }
    }
}

impl Mapped {
    /// The integration called with the mapped request, its answer mapped. A refusal (the
    /// integration failed, timed out) is a gateway response and is not mapped.
    async fn invoke(&self, x: &Exchange<'_>) -> Result<Response<Bytes>, GatewayError> {
        let mut response = if self.mapping.maps_request() {
            let request = self.mapping.request(x);
            let view = x.with_request(&request.parts);
            match (&self.inner, request.path.as_deref()) {
                (Integration::HttpProxy(proxy, _), path) => proxy.call(&view, path).await,
                (inner, _) => Box::pin(inner.invoke(&view)).await,
            }
        } else {
            Box::pin(self.inner.invoke(x)).await
        }?;
        self.mapping.response(x, &mut response);
        Ok(response)
    }
}

/// The integration's `timeoutMs` (API Gateway's integration timeout, 50 ms to 29 s); `None`
/// when it sets none.
fn integration_timeout(
    definition: &IntegrationDefinition,
    at: &KeyPath,
) -> Result<Option<Duration>, Error> {
    match definition.timeout_ms {
        None => Ok(None),
        Some(ms) if INTEGRATION_TIMEOUT_MS.contains(&ms) => Ok(Some(Duration::from_millis(ms))),
        Some(ms) => Err(Error::config(
            at.key("timeoutMs"),
            format!(
                "{ms} is not between {} and {} milliseconds (API Gateway's integration timeout)",
                INTEGRATION_TIMEOUT_MS.start(),
                INTEGRATION_TIMEOUT_MS.end()
            ),
        )),
    }
}

/// The integrate phase: the route's integration answers, its latency and outcome recorded for
/// the log.
///
/// A mock answers now, from memory, and its latency is recorded as zero without a clock read:
/// there is no backend to wait for (two clock reads were about 1% of a mock answer's time over
/// HTTP). Every other integration's call is boxed (the request's future stays the size of the
/// mock path's: it is moved through every layer up to the server's connection) and timed.
pub(crate) fn phase<'x>(
    integration: &'x Integration,
    x: &'x mut Exchange<'_>,
) -> Step<'x, Response<Bytes>> {
    if let Err(error) = convert_request(integration, x) {
        x.record.integrated(Duration::ZERO, Err(&error));
        return Step::Now(Err(error));
    }
    if let Integration::Mock(mock) = integration {
        let response = mock.answer();
        x.record.integrated(Duration::ZERO, Ok(&response));
        return Step::Now(Ok(response));
    }
    Step::Wait(Box::pin(async move {
        let invoked = Instant::now();
        let outcome = integration.invoke(x).await;
        x.record.integrated(invoked.elapsed(), outcome.as_ref());
        outcome
    }))
}

/// The integration's `contentHandling` applied to the request body, if it has one.
fn convert_request(integration: &Integration, x: &mut Exchange<'_>) -> Result<(), GatewayError> {
    let Some(convert) = integration.request_conversion() else {
        return Ok(());
    };
    let content_type = x
        .parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    x.body = convert
        .apply(content_type, &x.body)
        .map_err(|why| conversion_failed().with_detail(why))?;
    Ok(())
}

/// A payload conversion that failed (a body that is not base64 where binary is wanted): "If
/// the conversion fails, it returns a 500 response" (API Gateway developer guide,
/// api-gateway-payload-encodings-workflow.md).
fn conversion_failed() -> GatewayError {
    GatewayError {
        status: Some(StatusCode::INTERNAL_SERVER_ERROR),
        ..GatewayError::new(ResponseType::IntegrationFailure, "Internal server error")
    }
}

/// The payload `version` Lambda event of the request, for the pipeline benchmark.
#[cfg(feature = "bench")]
pub(crate) fn lambda_event(version: PayloadVersion, x: &Exchange<'_>) -> String {
    lambda::event(version, x, None)
}

/// A plugin's failure as an API of REST (`rest`) or HTTP API semantics answers it: see the
/// `From` conversion; a throttled call's message is spelled as each kind of API spells its
/// Lambda invocation errors ("Internal server error" / "Internal Server Error").
fn failure_answer(failure: &PluginFailure, rest: bool) -> GatewayError {
    let answer = GatewayError::from(failure);
    match failure {
        PluginFailure::Timeout => answer,
        // An HTTP API answers a Lambda integration that fails 500 `{"message":"Internal Server
        // Error"}`: the body is the heading of AWS's "Troubleshooting issues with HTTP API
        // Lambda integrations" (http-api-troubleshooting-lambda.md); the status, what users
        // report of it (awslabs/aws-lambda-cpp#117).
        _ if !rest => GatewayError {
            status: Some(StatusCode::INTERNAL_SERVER_ERROR),
            message: "Internal Server Error".into(),
            ..answer
        },
        PluginFailure::Throttled(_) => GatewayError {
            message: "Internal server error".into(),
            ..answer
        },
        _ => answer,
    }
}

/// A plugin's failure as the gateway answers it: a timeout is API Gateway's 504 "Endpoint
/// request timed out"; a call refused by the plugin's `maxConcurrency` is a throttled
/// Lambda's 500 (see [`failure_answer`]); anything else (trap, memory cap, plugin error,
/// malformed answer) a Lambda-style 502.
impl From<&PluginFailure> for GatewayError {
    fn from(failure: &PluginFailure) -> Self {
        // One line: a trap's message is a backtrace whose last line names the trap.
        let text = failure.to_string();
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let first = lines.next().unwrap_or_default();
        let detail = match lines.next_back() {
            Some(last) => format!("{first} {last}"),
            None => first.to_owned(),
        };
        let error = match failure {
            PluginFailure::Timeout => GatewayError::new(
                ResponseType::IntegrationTimeout,
                "Endpoint request timed out",
            ),
            // "If the Lambda API rejects the invocation request, API Gateway returns a 500
            // error code" (AWS Lambda Developer Guide, services-apigateway-errors); a
            // throttled invocation is one (see the test beside this).
            PluginFailure::Throttled(_) => GatewayError {
                status: Some(StatusCode::INTERNAL_SERVER_ERROR),
                ..GatewayError::new(ResponseType::IntegrationFailure, "Internal Server Error")
            },
            // Recorded: LocalStack test_apigateway_lambda.py `test_aws_proxy_binary_response`
            // (validated against AWS) asserts a 500 for a binary client and a body that is
            // not base64.
            PluginFailure::NotBase64(_) => conversion_failed(),
            _ => GatewayError {
                status: Some(StatusCode::BAD_GATEWAY),
                ..GatewayError::new(ResponseType::IntegrationFailure, "Internal server error")
            },
        };
        error.with_detail(detail)
    }
}

/// The `request` record of the integration world, borrowing the request's parts.
fn plugin_request<'a>(x: &'a Exchange<'_>) -> CallRequest<'a> {
    let parts = x.parts;
    let raw_query = parts.uri.query().unwrap_or("");
    let mut headers = Vec::with_capacity(parts.headers.len());
    let mut cookies = Vec::new();
    // A traced request's plugin gets the gateway's trace headers, not the caller's.
    let passed_on = x.trace.map(|trace| trace.passed_on());
    for (name, value) in &parts.headers {
        if passed_on.is_some() && crate::trace::is_trace_header(name) {
            continue;
        }
        let value = text(value.as_bytes());
        if name == COOKIE {
            match value {
                Cow::Borrowed(all) => cookies.extend(cookie_pairs(all).map(Cow::Borrowed)),
                Cow::Owned(all) => {
                    cookies.extend(cookie_pairs(&all).map(|c| Cow::Owned(c.to_owned())))
                }
            }
        } else {
            headers.push((Cow::Borrowed(name.as_str()), value));
        }
    }
    for (name, value) in passed_on.iter().flat_map(|p| p.headers()) {
        if let Some(name) = name {
            let value = text(value.as_bytes()).into_owned();
            headers.push((Cow::Owned(name.as_str().to_owned()), Cow::Owned(value)));
        }
    }
    CallRequest {
        method: parts.method.as_str(),
        raw_path: x.path,
        raw_query,
        query_parameters: Cow::Borrowed(x.query()),
        headers,
        cookies,
        path_parameters: &x.path_params,
        stage: x.stage,
        stage_variables: x.stage_variables,
        route_key: x.route_key,
        request_id: x.request_id,
        source_ip: crate::net::source_ip(x.peer()),
        user_agent: parts
            .headers
            .get(USER_AGENT)
            .map(|v| text(v.as_bytes()))
            .unwrap_or_default(),
        request_time_epoch_ms: x.received_epoch_ms(),
        authorizer: x
            .caller
            .authorization
            .as_ref()
            .map(Authorization::plugin_context),
        body: &x.body,
        trace_id: passed_on.as_ref().map(|p| p.xray()),
    }
}

/// The `name=value` pairs of a `cookie` header.
fn cookie_pairs(header: &str) -> impl Iterator<Item = &str> {
    header.split(';').map(str::trim).filter(|c| !c.is_empty())
}

/// The integration world's `response` record as an HTTP response.
fn plugin_response(response: CallResponse) -> Result<Response<Bytes>, PluginFailure> {
    let bad = |message: String| PluginFailure::BadResponse(message);
    let status = StatusCode::from_u16(response.status)
        .ok()
        .filter(|s| (100..=599).contains(&s.as_u16()))
        .ok_or_else(|| bad(format!("status {}", response.status)))?;
    let mut headers = answer_headers(response.headers.len() + response.cookies.len())?;
    for (name, value) in response.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| bad(format!("header name {name:?}")))?;
        // From the lifted `String` itself: its buffer becomes the value's (`from_str` would
        // allocate and copy it, then free the string).
        let value =
            HeaderValue::try_from(value).map_err(|_| bad(format!("value of header {name}")))?;
        headers.append(name, value);
    }
    for cookie in response.cookies {
        let value = HeaderValue::try_from(cookie).map_err(|_| bad("a cookie".into()))?;
        headers.append(SET_COOKIE, value);
    }
    let mut http_response = Response::new(Bytes::from(response.body));
    *http_response.status_mut() = status;
    *http_response.headers_mut() = headers;
    Ok(http_response)
}

/// The request a `wasi:http/proxy` component sees: the path without the stage segment.
fn wasi_http_request(x: &Exchange<'_>) -> http::Request<Bytes> {
    let parts = x.parts;
    let host = parts
        .headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| http::uri::Authority::try_from(*h).is_ok())
        .unwrap_or("localhost");
    let path_and_query = match parts.uri.query() {
        Some(query) => format!("{}?{query}", x.path),
        None => x.path.to_owned(),
    };
    let uri = http::Uri::builder()
        .scheme("http")
        .authority(host)
        .path_and_query(path_and_query)
        .build()
        .unwrap_or_else(|_| http::Uri::from_static("http://localhost/"));
    let mut request = http::Request::new(x.body.clone());
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = parts.headers.clone();
    if let Some(trace) = x.trace {
        trace.passed_on().replace_headers(request.headers_mut());
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mock(yaml: &str) -> Result<Integration, Error> {
        let def: IntegrationDefinition = yaml_serde::from_str(yaml).unwrap();
        let vars = BTreeMap::from([("TABLE".to_owned(), "dev-Users".to_owned())]);
        let scope = IntegrationScope {
            variables: &vars,
            plugins: &|_| None,
            http_client: None,
            rest: false,
            route_key: "GET /x",
            stage: "dev",
            api_id: "api",
            binary: &Arc::default(),
        };
        Integration::compile(&def, &scope, &KeyPath::root().key("i"))
    }

    #[tokio::test]
    async fn mock_substitutes_stage_variables() {
        let i = mock("{type: mock, statusCode: 201, headers: {x-t: '${stageVariables.TABLE}'}, body: 't=${stageVariables.TABLE}'}")
            .unwrap();
        let r = invoke(&i).await;
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["x-t"], "dev-Users");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.body(), "t=dev-Users");
    }

    #[test]
    fn mock_rejects_fields_of_other_types() {
        let err = mock("{type: mock, plugin: users}").unwrap_err().to_string();
        assert!(
            err.contains("i.plugin: only valid for integrations of type plugin"),
            "{err}"
        );
        assert!(mock("{type: mock, statusCode: 42}")
            .unwrap_err()
            .to_string()
            .contains("i.statusCode"));
    }

    fn compile_for(yaml: &str, rest: bool) -> Result<Integration, String> {
        let def: IntegrationDefinition = yaml_serde::from_str(yaml).unwrap();
        let vars = BTreeMap::new();
        let scope = IntegrationScope {
            variables: &vars,
            plugins: &|_| None,
            http_client: None,
            rest,
            route_key: "GET /x",
            stage: "dev",
            api_id: "api",
            binary: &Arc::default(),
        };
        Integration::compile(&def, &scope, &KeyPath::root().key("i")).map_err(|e| e.to_string())
    }

    /// HTTP API parameter mapping is refused on a REST API (whose mappings have another
    /// syntax) and on a mock (AWS's HTTP APIs have none), at the mapping's key.
    #[test]
    fn parameter_mapping_is_refused_where_it_does_not_apply() {
        let err = compile_for(
            "{type: plugin, plugin: users, requestParameters: {'append:header.a': b}}",
            true,
        )
        .unwrap_err();
        assert!(
            err.contains("i.requestParameters") && err.contains("parameter mapping on a REST API"),
            "{err}"
        );
        let err = compile_for(
            "{type: plugin, plugin: users, responseParameters: {'200': {'append:header.a': b}}}",
            true,
        )
        .unwrap_err();
        assert!(err.contains("i.responseParameters"), "{err}");
        let err = compile_for(
            "{type: mock, requestParameters: {'append:header.a': b}}",
            false,
        )
        .unwrap_err();
        assert!(
            err.contains(
                "i.requestParameters: only valid for integrations of type http_proxy or plugin"
            ),
            "{err}"
        );
        // Mapping errors come after the integration's own (here: no such plugin) ...
        let err = compile_for(
            "{type: plugin, plugin: users, requestParameters: {'append:header.a': b}}",
            false,
        )
        .unwrap_err();
        assert!(err.contains("i.plugin: unknown plugin"), "{err}");
        // ... and an empty mapping changes nothing.
        assert!(matches!(
            compile_for("{type: mock, body: x}", false),
            Ok(Integration::Mock(_))
        ));
    }

    #[test]
    fn plugin_integrations_need_a_known_plugin() {
        let err = mock("{type: plugin, plugin: users}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("i.plugin: unknown plugin \"users\""), "{err}");
        // An unknown payloadFormatVersion is refused when the file is read (a typed setting):
        // tests/e2e/config_errors.rs typed_settings_refuse_unknown_values_at_their_key.
    }

    #[test]
    fn a_plugin_integration_timeout_is_api_gateways_range() {
        for bad in [0, 49, 29_001] {
            let err = mock(&format!(
                "{{type: plugin, plugin: users, timeoutMs: {bad}}}"
            ))
            .unwrap_err()
            .to_string();
            assert!(
                err.contains(&format!("i.timeoutMs: {bad} is not between 50 and 29000")),
                "{err}"
            );
        }
        for good in [50, 29_000] {
            let err = mock(&format!(
                "{{type: plugin, plugin: users, timeoutMs: {good}}}"
            ))
            .unwrap_err()
            .to_string();
            assert!(err.contains("i.plugin: unknown plugin"), "{err}");
        }
    }

    #[test]
    fn a_plugin_timeout_answers_504_and_anything_else_502() {
        let timeout = GatewayError::from(&PluginFailure::Timeout);
        assert_eq!(timeout.response_type, ResponseType::IntegrationTimeout);
        assert_eq!(timeout.message, "Endpoint request timed out");
        assert_eq!(timeout.status, None);
        let trap = GatewayError::from(&PluginFailure::Trap("at\n  0: f\n  1: wasm trap".into()));
        assert_eq!(trap.response_type, ResponseType::IntegrationFailure);
        assert_eq!(trap.status, Some(StatusCode::BAD_GATEWAY));
        assert_eq!(trap.detail.as_deref(), Some("trapped: at 1: wasm trap"));
    }

    /// API Gateway answers a Lambda invocation that Lambda refuses (a throttled function:
    /// reserved concurrency reached) with 500, not 429: "API Gateway treats all invocation
    /// and function errors as internal errors. If the Lambda API rejects the invocation
    /// request, API Gateway returns a 500 error code. If the function runs but returns an
    /// error, or returns a response in the wrong format, API Gateway returns a 502. In both
    /// cases, the body of the response from API Gateway is {"message": "Internal server
    /// error"}" (AWS Lambda Developer Guide, "Handling Lambda errors with an API Gateway
    /// API", https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html).
    /// re:Post's "How do I troubleshoot the internal server error with status code 500 for
    /// API Gateway endpoints that integrate with Lambda?" names throttling as a cause
    /// (https://repost.aws/knowledge-center/api-gateway-internal-server-error). An HTTP API
    /// spells the same error `{"message":"Internal Server Error"}` (API Gateway Developer
    /// Guide, "Troubleshooting issues with HTTP API Lambda integrations",
    /// http-api-troubleshooting-lambda.md in awsdocs/amazon-api-gateway-developer-guide).
    #[test]
    fn a_throttled_plugin_call_answers_500_as_a_throttled_lambda() {
        let throttled = PluginFailure::Throttled("2 calls running".into());
        let http = failure_answer(&throttled, false);
        assert_eq!(http.status, Some(StatusCode::INTERNAL_SERVER_ERROR));
        assert_eq!(http.response_type, ResponseType::IntegrationFailure);
        assert_eq!(http.message, "Internal Server Error");
        assert_eq!(
            http.detail.as_deref(),
            Some("was throttled: 2 calls running")
        );
        let rest = failure_answer(&throttled, true);
        assert_eq!(rest.status, Some(StatusCode::INTERNAL_SERVER_ERROR));
        assert_eq!(rest.message, "Internal server error");
        // Any other failure keeps its answer whatever the protocol.
        let trap = PluginFailure::Trap("boom".into());
        assert_eq!(
            failure_answer(&trap, true).status,
            Some(StatusCode::BAD_GATEWAY)
        );
    }

    async fn invoke(integration: &Integration) -> Response<Bytes> {
        let (parts, _) = http::Request::get("/x")
            .body(Bytes::new())
            .unwrap()
            .into_parts();
        let mut x = Exchange::for_test(&parts);
        x.stage = "dev";
        x.route_key = "GET /x";
        integration.invoke(&x).await.unwrap()
    }

    /// A plugin's answer becomes the response as given: header values kept byte for byte (UTF-8
    /// text beyond ASCII included, as HTTP's obs-text allows), cookies as `set-cookie` lines.
    /// A value or cookie with a control character, a bad name or a status outside 100-599 is a
    /// bad response, named.
    #[test]
    fn plugin_responses_are_checked_as_they_become_http() {
        let answer = |headers: Vec<(&str, &str)>, cookies: Vec<&str>, status: u16| {
            plugin_response(CallResponse {
                status,
                headers: headers
                    .into_iter()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect(),
                cookies: cookies.into_iter().map(str::to_owned).collect(),
                body: b"{}".to_vec(),
            })
        };
        let ok = answer(
            vec![("content-type", "application/json"), ("x-city", "Zürich")],
            vec!["a=1; Path=/", "b=2"],
            201,
        )
        .unwrap();
        assert_eq!(ok.status(), StatusCode::CREATED);
        assert_eq!(ok.headers()["x-city"].as_bytes(), "Zürich".as_bytes());
        assert_eq!(ok.headers()["content-type"], "application/json");
        let cookies: Vec<_> = ok.headers().get_all(SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1; Path=/", "b=2"]);
        assert_eq!(ok.body().as_ref(), b"{}");

        let bad = |result: Result<Response<Bytes>, PluginFailure>| match result {
            Err(PluginFailure::BadResponse(why)) => why,
            other => panic!("not a bad response: {other:?}"),
        };
        assert_eq!(
            bad(answer(vec![("x-a", "one\ntwo")], vec![], 200)),
            "value of header x-a"
        );
        assert_eq!(bad(answer(vec![], vec!["a=1\r\n"], 200)), "a cookie");
        assert_eq!(
            bad(answer(vec![("bad name", "v")], vec![], 200)),
            "header name \"bad name\""
        );
        assert_eq!(bad(answer(vec![], vec![], 600)), "status 600");
    }

    /// More header lines than [`MAX_ANSWER_HEADERS`] is a bad response, not a panic (`http`'s
    /// `HeaderMap` panics past 32,768 slots), and an answer at the bound leaves room for the
    /// gateway's own headers.
    #[test]
    fn a_plugin_answer_with_too_many_headers_is_refused() {
        let answer = |count: usize, cookies: usize| {
            plugin_response(CallResponse {
                status: 200,
                headers: (0..count)
                    .map(|i| (format!("x-h{i}"), "v".into()))
                    .collect(),
                cookies: (0..cookies).map(|i| format!("c{i}=1")).collect(),
                body: Vec::new(),
            })
        };
        for (headers, cookies) in [(MAX_ANSWER_HEADERS + 1, 0), (30_000, 0), (0, 40_000)] {
            match answer(headers, cookies) {
                Err(PluginFailure::BadResponse(why)) => assert_eq!(
                    why,
                    format!(
                        "{} headers, more than {MAX_ANSWER_HEADERS}",
                        headers + cookies
                    )
                ),
                other => panic!("{headers} headers, {cookies} cookies: {other:?}"),
            }
        }
        let mut full = answer(MAX_ANSWER_HEADERS, 0).unwrap();
        assert_eq!(full.headers().len(), MAX_ANSWER_HEADERS);
        for i in 0..ROOM_FOR_GATEWAY_HEADERS * 4 {
            let name = http::HeaderName::from_bytes(format!("x-gw{i}").as_bytes()).unwrap();
            full.headers_mut()
                .insert(name, HeaderValue::from_static("1"));
        }
    }
}
