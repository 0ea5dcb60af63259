//! What crosses the plugin module's border: plain core-side types for the calls of the
//! `portico:plugin` worlds, their answers and their failures. The WIT-generated twins of
//! these types stay in `bindings`, which converts between the two.

use std::borrow::Cow;
use std::collections::BTreeMap;

/// Why a plugin call produced no answer. Each maps to one gateway response (see integrate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PluginFailure {
    /// The call ran past its time limit: 504.
    Timeout,
    /// The instance asked for more memory than its cap: 502.
    MemoryExceeded,
    /// The instance trapped (or failed to instantiate): 502.
    Trap(String),
    /// The plugin returned its own error: 502.
    PluginError(String),
    /// The plugin's answer cannot be turned into an HTTP response: 502.
    BadResponse(String),
    /// The answer's base64 body (`isBase64Encoded: true`) does not decode, for a client that
    /// asked for binary: a failed conversion, 500 ("If the conversion fails, it returns a 500
    /// response": API Gateway developer guide, api-gateway-payload-encodings-workflow.md).
    NotBase64(String),
    /// The call found `maxConcurrency` calls running and no room (or no patience left) in the
    /// queue: what a throttled Lambda is to API Gateway, 500.
    Throttled(String),
}

impl std::fmt::Display for PluginFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginFailure::Timeout => f.write_str("timed out"),
            PluginFailure::MemoryExceeded => f.write_str("memory limit exceeded"),
            PluginFailure::Trap(message) => write!(f, "trapped: {message}"),
            PluginFailure::PluginError(message) => write!(f, "returned an error: {message}"),
            PluginFailure::BadResponse(message) => {
                write!(f, "returned a malformed response: {message}")
            }
            PluginFailure::NotBase64(why) => write!(f, "answered a body that is not base64: {why}"),
            PluginFailure::Throttled(why) => write!(f, "was throttled: {why}"),
        }
    }
}

/// A value of an authorizer context: API Gateway allows strings, numbers and booleans.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ContextValue {
    /// A string.
    Text(String),
    /// A number.
    Number(f64),
    /// A boolean.
    Boolean(bool),
}

/// What an authorizer established about the caller, as an integration plugin receives it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AuthorizerContext {
    /// The principal id (empty when none).
    pub(crate) principal_id: String,
    /// A custom authorizer's context entries, or a JWT's claims.
    pub(crate) context: Vec<(String, ContextValue)>,
}

/// A request for the integration world's `handle`: the WIT `request` record, borrowing what
/// the gateway already holds (the text of a header that is not UTF-8, and what a trace adds,
/// are the only copies: see `bindings::RequestRecord`, which lowers it into the plugin as is).
#[derive(Debug)]
pub(crate) struct CallRequest<'a> {
    /// The HTTP method, upper-case.
    pub(crate) method: &'a str,
    /// The path as sent, without the stage segment.
    pub(crate) raw_path: &'a str,
    /// The query string without `?` (empty when none).
    pub(crate) raw_query: &'a str,
    /// Query parameters, decoded, in order.
    pub(crate) query_parameters: Cow<'a, [(String, String)]>,
    /// Headers other than `cookie`, names lower-case, in order.
    pub(crate) headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Cookies from the `cookie` header(s), each `name=value`.
    pub(crate) cookies: Vec<Cow<'a, str>>,
    /// Decoded path parameters of the matched route.
    pub(crate) path_parameters: &'a [(&'a str, Cow<'a, str>)],
    /// The stage name.
    pub(crate) stage: &'a str,
    /// The stage's variables.
    pub(crate) stage_variables: &'a BTreeMap<String, String>,
    /// The route key that matched.
    pub(crate) route_key: &'a str,
    /// The request id.
    pub(crate) request_id: &'a str,
    /// The client's IP address (empty when unknown).
    pub(crate) source_ip: String,
    /// The `user-agent` header (empty when none).
    pub(crate) user_agent: Cow<'a, str>,
    /// When the gateway received the request, in Unix epoch milliseconds.
    pub(crate) request_time_epoch_ms: u64,
    /// What the route's authorizer established, when it has one.
    pub(crate) authorizer: Option<AuthorizerContext>,
    /// The body, as received.
    pub(crate) body: &'a [u8],
    /// The `X-Amzn-Trace-Id` value of the call, when the stage traces.
    pub(crate) trace_id: Option<String>,
}

/// The integration world's answer: the WIT `response` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallResponse {
    /// The status code, as the plugin gave it (checked by the caller).
    pub(crate) status: u16,
    /// Response headers, in order.
    pub(crate) headers: Vec<(String, String)>,
    /// `set-cookie` values.
    pub(crate) cookies: Vec<String>,
    /// The body.
    pub(crate) body: Vec<u8>,
}

/// Which kind of custom authorizer is asking, as in API Gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthorizerKind {
    /// TOKEN: one header, its value in `token`.
    Token,
    /// REQUEST: several identity sources and the whole request context.
    Request,
}

/// What the authorizer world's `authorize` decides on: API Gateway's authorizer event.
#[derive(Debug, Clone)]
pub(crate) struct AuthCall {
    /// TOKEN or REQUEST.
    pub(crate) kind: AuthorizerKind,
    /// TOKEN: the identity source header's value; empty for REQUEST.
    pub(crate) token: String,
    /// The identity source values, in the configured order.
    pub(crate) identity_source: Vec<String>,
    /// The method ARN the decision is asked for.
    pub(crate) method_arn: String,
    /// The HTTP method.
    pub(crate) method: String,
    /// The raw path, without the stage segment.
    pub(crate) raw_path: String,
    /// The route key that matched.
    pub(crate) route_key: String,
    /// The stage name.
    pub(crate) stage: String,
    /// The request id.
    pub(crate) request_id: String,
    /// The client's IP address.
    pub(crate) source_ip: String,
    /// REQUEST: headers; empty for TOKEN.
    pub(crate) headers: Vec<(String, String)>,
    /// REQUEST: query parameters; empty for TOKEN.
    pub(crate) query_parameters: Vec<(String, String)>,
    /// REQUEST: path parameters; empty for TOKEN.
    pub(crate) path_parameters: Vec<(String, String)>,
    /// The stage's variables.
    pub(crate) stage_variables: Vec<(String, String)>,
}

/// Who the caller is, as an authorizer plugin grants it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AuthGrant {
    /// The principal id.
    pub(crate) principal_id: String,
    /// Context entries handed to the integration.
    pub(crate) context: Vec<(String, ContextValue)>,
    /// An IAM policy document (JSON); none allows the request.
    pub(crate) policy_document: Option<String>,
    /// The API key to meter against usage plans, when the authorizer supplies it.
    pub(crate) usage_identifier_key: Option<String>,
}

/// An authorizer plugin's decision.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AuthVerdict {
    /// The request may proceed (subject to the policy document, when there is one).
    Allow(AuthGrant),
    /// The caller is known and refused.
    Deny(AuthGrant),
    /// The caller is not authenticated.
    Unauthorized,
}
