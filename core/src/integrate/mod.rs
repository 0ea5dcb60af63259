//! The integrate phase: what answers a matched route (a mock, a plugin of the `integration`
//! world, a plugin of the `lambda` world fed API Gateway's Lambda proxy events, or a standard
//! `wasi:http/proxy` component).

pub(crate) mod lambda;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, COOKIE, HOST, SET_COOKIE, USER_AGENT};
use http::{HeaderMap, Response, StatusCode};

use crate::authorize::Authorization;
use crate::config::{IntegrationDefinition, IntegrationType};
use crate::error::{Error, KeyPath};
use crate::plugin::bindings::types;
use crate::plugin::{LoadedPlugin, PluginFailure, World};
use crate::respond::{header_map, status_code, GatewayError};
use crate::stage;
pub(crate) use lambda::PayloadVersion;

/// A compiled integration of one stage (stage variables already substituted).
#[derive(Debug, Clone)]
pub(crate) enum Integration {
    /// A static response.
    Mock(MockResponse),
    /// A component of the `portico:plugin/integration` world.
    Plugin(Arc<LoadedPlugin>),
    /// A component of the `portico:plugin/lambda` world, fed Lambda proxy events of `version`.
    Lambda {
        plugin: Arc<LoadedPlugin>,
        version: PayloadVersion,
    },
    /// A standard `wasi:http/proxy` component.
    WasiHttp(Arc<LoadedPlugin>),
}

/// What a Lambda event says about the API itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ApiInfo<'a> {
    pub(crate) api_id: &'a str,
    pub(crate) region: &'a str,
    pub(crate) account_id: &'a str,
    /// REST API semantics (events of 1.0 without `version`, with resource ids).
    pub(crate) rest: bool,
}

/// Everything an integration may need to know about the request it answers.
pub(crate) struct RequestContext<'a> {
    pub(crate) parts: &'a http::request::Parts,
    pub(crate) body: &'a Bytes,
    /// The raw path without the stage segment.
    pub(crate) path: &'a str,
    pub(crate) route_key: &'a str,
    /// Decoded path parameters.
    pub(crate) path_params: Vec<(String, String)>,
    pub(crate) stage: &'a str,
    pub(crate) stage_variables: &'a BTreeMap<String, String>,
    pub(crate) request_id: &'a str,
    /// When the gateway received the request (monotonic; see [`RequestContext::received_epoch_ms`]).
    pub(crate) received: Instant,
    /// What the route's authorizer established, when it has one.
    pub(crate) authorization: Option<&'a Authorization>,
    pub(crate) api: ApiInfo<'a>,
}

impl RequestContext<'_> {
    /// When the gateway received the request, in Unix epoch milliseconds (AWS's
    /// `requestTimeEpoch`). Read from the wall clock only for integrations that ask.
    pub(crate) fn received_epoch_ms(&self) -> u64 {
        crate::time::epoch_millis(crate::time::wall_clock(self.received))
    }
}

/// A mock integration's response, built once per stage.
#[derive(Debug, Clone)]
pub(crate) struct MockResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Integration {
    /// Compiles `definition` (found at `at`) for a stage with `variables`, in an API of REST
    /// semantics when `rest`.
    pub(crate) fn compile(
        definition: &IntegrationDefinition,
        variables: &BTreeMap<String, String>,
        plugins: &dyn Fn(&str) -> Option<Arc<LoadedPlugin>>,
        rest: bool,
        at: &KeyPath,
    ) -> Result<Self, Error> {
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
        match definition.integration_type {
            IntegrationType::Mock => {
                only_for("plugin", definition.plugin.is_some(), "plugin")?;
                only_for("uri", definition.uri.is_some(), "http")?;
                only_for(
                    "payloadFormatVersion",
                    definition.payload_format_version.is_some(),
                    "plugin or http",
                )?;
                only_for(
                    "timeoutMs",
                    definition.timeout_ms.is_some(),
                    "plugin or http",
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
                    headers,
                    body: Bytes::from(body),
                }))
            }
            IntegrationType::Plugin => {
                only_for("statusCode", definition.status_code.is_some(), "mock")?;
                only_for("headers", definition.headers.is_some(), "mock")?;
                only_for("body", definition.body.is_some(), "mock")?;
                only_for("uri", definition.uri.is_some(), "http")?;
                let version = definition.payload_format_version.as_deref();
                let Some(version) = PayloadVersion::parse(version, rest) else {
                    return Err(Error::config(
                        at.key("payloadFormatVersion"),
                        format!(
                            "unknown payload format version \"{}\": expected \"1.0\" or \"2.0\"",
                            version.unwrap_or_default()
                        ),
                    ));
                };
                let name = definition.plugin.as_deref().ok_or_else(|| {
                    Error::config(at.key("plugin"), "required for integrations of type plugin")
                })?;
                let plugin = plugins(name).ok_or_else(|| {
                    Error::config(at.key("plugin"), format!("unknown plugin \"{name}\""))
                })?;
                match plugin.world() {
                    World::Integration => Ok(Integration::Plugin(plugin)),
                    World::Lambda => Ok(Integration::Lambda { plugin, version }),
                    World::WasiHttp => Ok(Integration::WasiHttp(plugin)),
                    World::Authorizer => Err(Error::config(
                        at.key("plugin"),
                        format!("plugin \"{name}\" implements the authorizer world; an integration needs the integration, lambda or wasi-http world"),
                    )),
                }
            }
            IntegrationType::Http => {
                if definition.uri.is_none() {
                    return Err(Error::config(
                        at.key("uri"),
                        "required for integrations of type http",
                    ));
                }
                Err(Error::not_supported(
                    at.clone(),
                    "integration type \"http\"",
                ))
            }
        }
    }

    /// Calls the integration.
    pub(crate) async fn invoke(
        &self,
        context: &RequestContext<'_>,
    ) -> Result<Response<Bytes>, GatewayError> {
        match self {
            Integration::Mock(mock) => {
                let mut response = Response::new(mock.body.clone());
                *response.status_mut() = mock.status;
                *response.headers_mut() = mock.headers.clone();
                Ok(response)
            }
            Integration::Plugin(plugin) => {
                let request = plugin_request(context);
                // Boxed, as the plugin futures are kilobytes: mocks should not move them.
                let response = Box::pin(plugin.handle(&request))
                    .await
                    .map_err(|f| GatewayError::from_plugin(&f))?;
                plugin_response(response).map_err(|failure| {
                    tracing::error!(plugin = plugin.name(), "plugin {failure}");
                    GatewayError::from_plugin(&failure)
                })
            }
            Integration::Lambda { plugin, version } => {
                let event = lambda::event(*version, context);
                let output = Box::pin(plugin.handle_event(&event))
                    .await
                    .map_err(|f| GatewayError::from_plugin(&f))?;
                lambda::response(*version, &output).map_err(|failure| {
                    tracing::error!(plugin = plugin.name(), "plugin {failure}");
                    GatewayError::from_plugin(&failure)
                })
            }
            Integration::WasiHttp(plugin) => {
                let response = Box::pin(plugin.serve_http(wasi_http_request(context)))
                    .await
                    .map_err(|f| GatewayError::from_plugin(&f))?;
                Ok(response)
            }
        }
    }
}

/// The `request` record of the integration world.
fn plugin_request(context: &RequestContext<'_>) -> types::Request {
    let parts = context.parts;
    let raw_query = parts.uri.query().unwrap_or("");
    let mut headers = Vec::with_capacity(parts.headers.len());
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == COOKIE {
            cookies.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned),
            );
        } else {
            headers.push((name.as_str().to_owned(), value));
        }
    }
    let text = |name: HeaderName| {
        parts
            .headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default()
    };
    types::Request {
        method: parts.method.as_str().to_owned(),
        raw_path: context.path.to_owned(),
        raw_query: raw_query.to_owned(),
        query_parameters: form_urlencoded::parse(raw_query.as_bytes())
            .into_owned()
            .collect(),
        headers,
        cookies,
        path_parameters: context.path_params.clone(),
        stage: context.stage.to_owned(),
        stage_variables: context
            .stage_variables
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        route_key: context.route_key.to_owned(),
        request_id: context.request_id.to_owned(),
        source_ip: source_ip(parts),
        user_agent: text(USER_AGENT),
        request_time_epoch_ms: context.received_epoch_ms(),
        authorizer: context.authorization.map(Authorization::plugin_context),
        body: context.body.to_vec(),
    }
}

/// The client address the embedder put in the request's extensions, if any.
pub(crate) fn source_ip(parts: &http::request::Parts) -> String {
    parts
        .extensions
        .get::<std::net::SocketAddr>()
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

/// The integration world's `response` record as an HTTP response.
fn plugin_response(response: types::Response) -> Result<Response<Bytes>, PluginFailure> {
    let bad = |message: String| PluginFailure::BadResponse(message);
    let status = StatusCode::from_u16(response.status)
        .ok()
        .filter(|s| (100..=599).contains(&s.as_u16()))
        .ok_or_else(|| bad(format!("status {}", response.status)))?;
    let mut headers = HeaderMap::with_capacity(response.headers.len() + response.cookies.len());
    for (name, value) in response.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| bad(format!("header name {name:?}")))?;
        let value =
            HeaderValue::from_str(&value).map_err(|_| bad(format!("value of header {name}")))?;
        headers.append(name, value);
    }
    for cookie in response.cookies {
        let value = HeaderValue::from_str(&cookie).map_err(|_| bad("a cookie".into()))?;
        headers.append(SET_COOKIE, value);
    }
    let mut http_response = Response::new(Bytes::from(response.body));
    *http_response.status_mut() = status;
    *http_response.headers_mut() = headers;
    Ok(http_response)
}

/// The request a `wasi:http/proxy` component sees: the path without the stage segment.
fn wasi_http_request(context: &RequestContext<'_>) -> http::Request<Bytes> {
    let parts = context.parts;
    let host = parts
        .headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| http::uri::Authority::try_from(*h).is_ok())
        .unwrap_or("localhost");
    let path_and_query = match parts.uri.query() {
        Some(query) => format!("{}?{query}", context.path),
        None => context.path.to_owned(),
    };
    let uri = http::Uri::builder()
        .scheme("http")
        .authority(host)
        .path_and_query(path_and_query)
        .build()
        .unwrap_or_else(|_| http::Uri::from_static("http://localhost/"));
    let mut request = http::Request::new(context.body.clone());
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = parts.headers.clone();
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mock(yaml: &str) -> Result<Integration, Error> {
        let def: IntegrationDefinition = serde_yaml::from_str(yaml).unwrap();
        let vars = BTreeMap::from([("TABLE".to_owned(), "dev-Users".to_owned())]);
        Integration::compile(&def, &vars, &|_| None, false, &KeyPath::root().key("i"))
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

    #[test]
    fn plugin_integrations_need_a_known_plugin() {
        let err = mock("{type: plugin, plugin: users}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("i.plugin: unknown plugin \"users\""), "{err}");
        let err = mock("{type: plugin, plugin: users, payloadFormatVersion: '3.0'}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("i.payloadFormatVersion"), "{err}");
    }

    async fn invoke(integration: &Integration) -> Response<Bytes> {
        let (parts, body) = http::Request::get("/x")
            .body(Bytes::new())
            .unwrap()
            .into_parts();
        let context = RequestContext {
            parts: &parts,
            body: &body,
            path: "/x",
            route_key: "GET /x",
            path_params: Vec::new(),
            stage: "dev",
            stage_variables: &BTreeMap::new(),
            request_id: "id",
            received: Instant::now(),
            authorization: None,
            api: ApiInfo {
                api_id: "api",
                region: "us-east-1",
                account_id: "123456789012",
                rest: false,
            },
        };
        integration.invoke(&context).await.unwrap()
    }
}
