//! HTTP API parameter mapping (an integration's `requestParameters` and `responseParameters`,
//! as `AWS::ApiGatewayV2::Integration` spells them): the request changed before the
//! integration sees it, the integration's answer changed before the client does. AWS's rules
//! are in the API Gateway Developer Guide, "Transforming API requests and responses"
//! (http-api-parameter-mapping.md); where it is silent, Portico's choices are marked *Portico*:
//!
//! - Keys: `append|overwrite|remove:header.NAME`, `append|overwrite|remove:querystring.NAME`,
//!   `overwrite:path` (requests); `append|overwrite|remove:header.NAME`, `overwrite:statuscode`
//!   under the status code (200-599) the integration answers (responses). AWS's reserved
//!   headers may not be mapped.
//! - Values: selection expressions on the one template engine (`Template::parse_selection`),
//!   compiled once per stage and route. A header's several values and a query parameter's
//!   several values are joined with commas, as the guide says. `$request.body.PATH` and
//!   `$response.body.PATH` read the first 100 KB of the body as JSON (the guide: "API Gateway
//!   truncates the request body at 100 KB and then applies the selection expression").
//! - *Portico*: every value is read from the request (or answer) as it came, before any
//!   operation, so that a rename (`append:header.b: $request.header.a` with `remove:header.a`)
//!   does not depend on the order; the operations then apply in the file's order.
//! - *Portico*: `append` adds a header line (RFC 9110 §5.3: the same as joining with a comma)
//!   or a query parameter; on an absent one it adds it. `overwrite` replaces every value.
//! - *Portico*: a value that renders empty (its source absent: no such header, parameter or
//!   JSON member) skips its `append` or `overwrite`: nothing empty is sent, and what was there
//!   stays. A status code that is not 100-599 leaves the answer's own.
//! - *Portico*: `overwrite:path` is the path of the backend's URL (the `uri`'s scheme, host and
//!   query kept); it applies to `http_proxy` integrations only, as a Lambda event has no
//!   integration path to overwrite.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, HOST, USER_AGENT};
use http::request::Parts;
use http::{HeaderMap, Request, Response, StatusCode, Uri};

use crate::config::UniqueMap;
use crate::error::{Error, KeyPath};
use crate::exchange::Exchange;
use crate::template::{Output, Selection, Template};

/// "When you specify a JSON path, API Gateway truncates the request body at 100 KB".
const BODY_SELECTION_LIMIT: usize = 100 * 1024;

/// What a mapping does to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Append,
    Overwrite,
    Remove,
}

/// What a request mapping changes.
#[derive(Debug, Clone)]
enum RequestTarget {
    Header(HeaderName),
    Query(String),
}

/// A value a mapping reads, per request.
#[derive(Debug, Clone)]
enum Value {
    RequestHeader(HeaderName),
    RequestQuery(String),
    /// A JSON pointer into the body (`None`: the whole body).
    RequestBody(Option<String>),
    RequestPath,
    PathParameter(String),
    Context(Context),
    ResponseHeader(HeaderName),
    ResponseBody(Option<String>),
}

/// The `$context` variables a mapping may read (HTTP APIs' context variables, "Customizing
/// HTTP API access logs", that the request path knows before the integration answers).
#[derive(Debug, Clone)]
enum Context {
    AccountId,
    ApiId,
    DomainName,
    DomainPrefix,
    ExtendedRequestId,
    HttpMethod,
    Path,
    Protocol,
    RequestId,
    RequestTimeEpoch,
    RouteKey,
    SourceIp,
    Stage,
    UserAgent,
    PrincipalId,
    Claim(String),
    Authorizer(String),
}

/// The context variable names (after `$context.`) and what each reads.
const CONTEXT_NAMES: &[(&str, Context)] = &[
    ("accountId", Context::AccountId),
    ("apiId", Context::ApiId),
    ("authorizer.principalId", Context::PrincipalId),
    ("domainName", Context::DomainName),
    ("domainPrefix", Context::DomainPrefix),
    ("extendedRequestId", Context::ExtendedRequestId),
    ("httpMethod", Context::HttpMethod),
    ("identity.sourceIp", Context::SourceIp),
    ("identity.userAgent", Context::UserAgent),
    ("path", Context::Path),
    ("protocol", Context::Protocol),
    ("requestId", Context::RequestId),
    ("requestTimeEpoch", Context::RequestTimeEpoch),
    ("routeKey", Context::RouteKey),
    ("stage", Context::Stage),
];

impl Context {
    fn from_name(name: &str) -> Result<Self, String> {
        if let Some((_, var)) = CONTEXT_NAMES.iter().find(|(known, _)| *known == name) {
            return Ok(var.clone());
        }
        match name.strip_prefix("authorizer.") {
            Some(key) => match key.strip_prefix("claims.") {
                Some(claim) if !claim.is_empty() => Ok(Context::Claim(claim.to_owned())),
                _ if !key.is_empty() && !key.contains('.') => {
                    Ok(Context::Authorizer(key.to_owned()))
                }
                _ => Err(unknown_context()),
            },
            None => Err(unknown_context()),
        }
    }
}

fn unknown_context() -> String {
    let names: Vec<String> = CONTEXT_NAMES
        .iter()
        .map(|(name, _)| format!("$context.{name}"))
        .chain([
            "$context.authorizer.claims.NAME".to_owned(),
            "$context.authorizer.KEY".to_owned(),
        ])
        .collect();
    format!(
        "unknown context variable: supported are {}",
        names.join(", ")
    )
}

/// One compiled request mapping.
#[derive(Debug, Clone)]
struct RequestMapping {
    operation: Operation,
    target: RequestTarget,
    value: Template<Value>,
}

/// One compiled header mapping of an answer.
#[derive(Debug, Clone)]
struct HeaderMapping {
    operation: Operation,
    name: HeaderName,
    value: Template<Value>,
}

/// What an answer of one status code gets.
#[derive(Debug, Clone)]
struct ResponseMapping {
    status: StatusCode,
    headers: Vec<HeaderMapping>,
    status_code: Option<Template<Value>>,
}

/// An integration's compiled `requestParameters` and `responseParameters`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ParameterMapping {
    request: Vec<RequestMapping>,
    path: Option<Template<Value>>,
    responses: Vec<ResponseMapping>,
}

/// What the integration is sent instead of the client's request.
pub(crate) struct MappedRequest {
    /// The request line and headers, mapped.
    pub(crate) parts: Parts,
    /// `overwrite:path`'s path, when it gave one.
    pub(crate) path: Option<String>,
}

/// Where the mapping is compiled: the stage's variables, the route, whether `overwrite:path`
/// may be used.
pub(crate) struct MappingScope<'a> {
    pub(crate) variables: &'a BTreeMap<String, String>,
    pub(crate) route_key: &'a str,
    pub(crate) path_allowed: bool,
}

impl ParameterMapping {
    /// Compiles `request` (at `at.requestParameters`) and `response` (at
    /// `at.responseParameters`); `None` when there is nothing to map.
    pub(crate) fn compile(
        request: Option<&UniqueMap<String>>,
        response: Option<&UniqueMap<UniqueMap<String>>>,
        scope: &MappingScope<'_>,
        at: &KeyPath,
    ) -> Result<Option<Self>, Error> {
        let mut mapping = ParameterMapping::default();
        let request_at = at.key("requestParameters");
        for (key, value) in request.into_iter().flat_map(UniqueMap::iter) {
            let here = request_at.key(key);
            let (operation, target) = split_key(key, &here)?;
            let value = compile_value(value, Side::Request, scope, &here)?;
            match target.split_once('.') {
                Some(("header", name)) => mapping.request.push(RequestMapping {
                    operation,
                    target: RequestTarget::Header(mappable_header(name, &here)?),
                    value,
                }),
                Some(("querystring", name)) if !name.is_empty() => {
                    mapping.request.push(RequestMapping {
                        operation,
                        target: RequestTarget::Query(name.to_owned()),
                        value,
                    })
                }
                None if target == "path" => {
                    if operation != Operation::Overwrite {
                        return Err(Error::config(
                            here,
                            "the path can only be overwritten (overwrite:path)",
                        ));
                    }
                    if !scope.path_allowed {
                        return Err(Error::config(
                            here,
                            "overwrite:path applies to http_proxy integrations only (a Lambda event has no integration path to overwrite)",
                        ));
                    }
                    mapping.path = Some(value);
                }
                _ => {
                    return Err(Error::config(
                        here,
                        "unknown target: expected header.NAME, querystring.NAME or path",
                    ))
                }
            }
        }
        let response_at = at.key("responseParameters");
        for (code, entries) in response.into_iter().flat_map(UniqueMap::iter) {
            let code_at = response_at.key(code);
            // "The selection key must be a valid HTTP status code within the range of
            // 200-599" (AWS::ApiGatewayV2::Integration ResponseParameterMap).
            let status = code
                .parse::<u16>()
                .ok()
                .filter(|c| (200..=599).contains(c))
                .and_then(|c| StatusCode::from_u16(c).ok())
                .ok_or_else(|| {
                    Error::config(
                        code_at.clone(),
                        "the selection key is the status code the integration answers, 200-599",
                    )
                })?;
            let mut compiled = ResponseMapping {
                status,
                headers: Vec::new(),
                status_code: None,
            };
            for (key, value) in entries.iter() {
                let here = code_at.key(key);
                let (operation, target) = split_key(key, &here)?;
                let value = compile_value(value, Side::Response, scope, &here)?;
                match target.split_once('.') {
                    Some(("header", name)) => compiled.headers.push(HeaderMapping {
                        operation,
                        name: mappable_header(name, &here)?,
                        value,
                    }),
                    None if target == "statuscode" => {
                        if operation != Operation::Overwrite {
                            return Err(Error::config(
                                here,
                                "the status code can only be overwritten (overwrite:statuscode)",
                            ));
                        }
                        check_static_status(&value, &here)?;
                        compiled.status_code = Some(value);
                    }
                    _ => {
                        return Err(Error::config(
                            here,
                            "unknown target: expected header.NAME or statuscode",
                        ))
                    }
                }
            }
            mapping.responses.push(compiled);
        }
        let empty =
            mapping.request.is_empty() && mapping.path.is_none() && mapping.responses.is_empty();
        Ok((!empty).then_some(mapping))
    }

    /// Whether the request is mapped at all (else the integration gets the client's).
    pub(crate) fn maps_request(&self) -> bool {
        !self.request.is_empty() || self.path.is_some()
    }

    /// The request the integration gets for the client's (in `x`).
    pub(crate) fn request(&self, x: &Exchange<'_>) -> MappedRequest {
        let parts = x.parts;
        // Every value first, from the request as it came.
        let values: Vec<String> = self
            .request
            .iter()
            .map(|m| render(&m.value, x, None))
            .collect();
        let mut headers = parts.headers.clone();
        let mut query: Option<Vec<(String, String)>> = None;
        for (mapping, value) in self.request.iter().zip(values) {
            let skip = value.is_empty() && mapping.operation != Operation::Remove;
            if skip {
                continue;
            }
            match &mapping.target {
                RequestTarget::Header(name) => {
                    apply_header(&mut headers, mapping.operation, name, &value)
                }
                RequestTarget::Query(name) => {
                    let pairs = query.get_or_insert_with(|| raw_pairs(parts.uri.query()));
                    apply_query(pairs, mapping.operation, name, &value);
                }
            }
        }
        let uri = match query {
            Some(pairs) => with_query(&parts.uri, &pairs),
            None => parts.uri.clone(),
        };
        let path = self
            .path
            .as_ref()
            .map(|path| render(path, x, None))
            .filter(|path| !path.is_empty())
            .map(|path| {
                if path.starts_with('/') {
                    path
                } else {
                    format!("/{path}")
                }
            });
        let mut request = Request::new(());
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = uri;
        *request.version_mut() = parts.version;
        *request.headers_mut() = headers;
        MappedRequest {
            parts: request.into_parts().0,
            path,
        }
    }

    /// Maps the integration's `response` for the client's request (in `x`), when its status
    /// has a mapping.
    pub(crate) fn response(&self, x: &Exchange<'_>, response: &mut Response<Bytes>) {
        let Some(mapping) = self
            .responses
            .iter()
            .find(|m| m.status == response.status())
        else {
            return;
        };
        let values: Vec<String> = mapping
            .headers
            .iter()
            .map(|m| render(&m.value, x, Some(response)))
            .collect();
        let status = mapping
            .status_code
            .as_ref()
            .map(|t| render(t, x, Some(response)))
            .and_then(|text| text.trim().parse::<u16>().ok())
            .filter(|code| (100..=599).contains(code))
            .and_then(|code| StatusCode::from_u16(code).ok());
        let headers = response.headers_mut();
        for (mapping, value) in mapping.headers.iter().zip(values) {
            if value.is_empty() && mapping.operation != Operation::Remove {
                continue;
            }
            apply_header(headers, mapping.operation, &mapping.name, &value);
        }
        if let Some(status) = status {
            *response.status_mut() = status;
        }
    }
}

/// Which side a value is read on: a request mapping cannot read the answer, a response
/// mapping only reads the answer, the context and stage variables (the guide's two tables).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Request,
    Response,
}

/// `append:header.x` as its operation and `header.x`.
fn split_key<'k>(key: &'k str, at: &KeyPath) -> Result<(Operation, &'k str), Error> {
    let (operation, target) = key.split_once(':').ok_or_else(|| {
        Error::config(
            at.clone(),
            "expected OPERATION:TARGET (append:header.NAME, overwrite:querystring.NAME, remove:header.NAME, overwrite:path, overwrite:statuscode)",
        )
    })?;
    let operation = match operation {
        "append" => Operation::Append,
        "overwrite" => Operation::Overwrite,
        "remove" => Operation::Remove,
        other => {
            return Err(Error::config(
                at.clone(),
                format!("unknown operation \"{other}\": expected append, overwrite or remove"),
            ))
        }
    };
    Ok((operation, target))
}

/// A header a mapping may change: a valid name that is not one of AWS's reserved headers
/// ("Reserved headers" in the guide: "You can't configure request or response mappings for
/// these headers").
fn mappable_header(name: &str, at: &KeyPath) -> Result<HeaderName, Error> {
    let header = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| Error::config(at.clone(), format!("bad header name \"{name}\"")))?;
    const RESERVED: [&str; 18] = [
        "authorization",
        "connection",
        "content-encoding",
        "content-length",
        "content-location",
        "forwarded",
        "keep-alive",
        "origin",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "via",
    ];
    const RESERVED_PREFIXES: [&str; 4] = ["access-control-", "apigw-", "x-amz-", "x-amzn-"];
    let lower = header.as_str();
    if RESERVED.contains(&lower) || RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p)) {
        return Err(Error::config(
            at.clone(),
            format!("\"{name}\" is one of API Gateway's reserved headers, which cannot be mapped"),
        ));
    }
    Ok(header)
}

/// Compiles a mapping's value on `side`.
fn compile_value(
    text: &str,
    side: Side,
    scope: &MappingScope<'_>,
    at: &KeyPath,
) -> Result<Template<Value>, Error> {
    let route_variables = route_path_variables(scope.route_key);
    Template::parse_selection(text, scope.variables, at, |selection, name| {
        match (selection, side) {
            (Selection::Context, _) => Context::from_name(name).map(Value::Context),
            (Selection::Request, Side::Request) => request_value(name, &route_variables),
            (Selection::Response, Side::Response) => response_value(name),
            (Selection::Request, Side::Response) => Err(
                "a response mapping reads the answer ($response.header.NAME, $response.body.PATH), the context and stage variables".to_owned(),
            ),
            (Selection::Response, Side::Request) => {
                Err("a request mapping cannot read the integration's answer".to_owned())
            }
        }
    })
}

/// `$request.NAME`'s value.
fn request_value(name: &str, route_variables: &[&str]) -> Result<Value, String> {
    if name == "path" {
        return Ok(Value::RequestPath);
    }
    if name == "body" {
        return Ok(Value::RequestBody(None));
    }
    match name.split_once('.') {
        Some(("header", header)) => HeaderName::from_bytes(header.as_bytes())
            .map(Value::RequestHeader)
            .map_err(|_| format!("bad header name \"{header}\"")),
        Some(("querystring", query)) if !query.is_empty() => {
            Ok(Value::RequestQuery(query.to_owned()))
        }
        Some(("path", parameter)) => {
            if route_variables.contains(&parameter) {
                Ok(Value::PathParameter(parameter.to_owned()))
            } else {
                Err("not a path parameter of the route".to_owned())
            }
        }
        Some(("body", path)) => json_pointer(path).map(|p| Value::RequestBody(Some(p))),
        _ => Err("expected $request.header.NAME, $request.querystring.NAME, $request.body.PATH, $request.path or $request.path.NAME".to_owned()),
    }
}

/// `$response.NAME`'s value.
fn response_value(name: &str) -> Result<Value, String> {
    if name == "body" {
        return Ok(Value::ResponseBody(None));
    }
    match name.split_once('.') {
        Some(("header", header)) => HeaderName::from_bytes(header.as_bytes())
            .map(Value::ResponseHeader)
            .map_err(|_| format!("bad header name \"{header}\"")),
        Some(("body", path)) => json_pointer(path).map(|p| Value::ResponseBody(Some(p))),
        _ => Err("expected $response.header.NAME or $response.body.PATH".to_owned()),
    }
}

/// The path variables of a route key (`GET /pets/{petId}/{proxy+}`: `petId`, `proxy`).
fn route_path_variables(route_key: &str) -> Vec<&str> {
    let path = route_key.split_once(' ').map_or("", |(_, path)| path);
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| name.trim_end_matches('+'))
        .collect()
}

/// A JSON path after `$request.body.` (`items[0].id`) as a JSON pointer (`/items/0/id`).
/// AWS's JSON paths are member names and indexes: "Recursive descent ($request.body..name)
/// and filter expressions (?(expression)) aren't supported", which is what a JSON pointer
/// (RFC 6901, serde_json's `Value::pointer`) reads.
fn json_pointer(path: &str) -> Result<String, String> {
    let bad = || {
        format!("\"{path}\" is not a JSON path of member names and [indexes] (recursive descent, wildcards and filters are not supported)")
    };
    let mut pointer = String::new();
    for member in path.split('.') {
        let (name, mut indexes) = match member.find('[') {
            Some(i) => (&member[..i], &member[i..]),
            None => (member, ""),
        };
        if name.is_empty() && indexes.is_empty() {
            return Err(bad());
        }
        if !name.is_empty() {
            if name.contains([']', '*', '?', '(', ')']) {
                return Err(bad());
            }
            pointer.push('/');
            pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
        }
        while !indexes.is_empty() {
            let inner = indexes.strip_prefix('[').ok_or_else(bad)?;
            let end = inner.find(']').ok_or_else(bad)?;
            let index = &inner[..end];
            if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let _ = write!(pointer, "/{index}");
            indexes = &inner[end + 1..];
        }
    }
    Ok(pointer)
}

/// An `overwrite:statuscode` whose value is static text must be a status code.
fn check_static_status(value: &Template<Value>, at: &KeyPath) -> Result<(), Error> {
    let is_static = value
        .segments()
        .iter()
        .all(|s| matches!(s, crate::template::Segment::Literal(_)));
    if !is_static {
        return Ok(());
    }
    let text = value.render(|_, _| {});
    match text.trim().parse::<u16>() {
        Ok(code) if (100..=599).contains(&code) => Ok(()),
        _ => Err(Error::config(
            at.clone(),
            format!("bad status code \"{text}\": expected 100-599"),
        )),
    }
}

/// `value` rendered for the request in `x` and, for response mappings, the answer.
fn render(value: &Template<Value>, x: &Exchange<'_>, response: Option<&Response<Bytes>>) -> String {
    value.render(|var, out| write_value(var, x, response, out))
}

fn write_value(
    var: &Value,
    x: &Exchange<'_>,
    response: Option<&Response<Bytes>>,
    out: &mut Output<'_>,
) {
    let parts = x.parts;
    match var {
        Value::RequestHeader(name) => write_joined(&parts.headers, name, out),
        Value::RequestQuery(name) => {
            let mut first = true;
            for (_, value) in x.query().iter().filter(|(n, _)| n == name) {
                if !first {
                    out.text(",");
                }
                out.text(value);
                first = false;
            }
        }
        Value::RequestBody(pointer) => write_body(&x.body, pointer.as_deref(), out),
        Value::RequestPath => out.text(x.path),
        Value::PathParameter(name) => {
            if let Some((_, value)) = x.path_params.iter().find(|(n, _)| *n == name.as_str()) {
                out.text(value);
            }
        }
        Value::Context(context) => write_context(context, x, out),
        Value::ResponseHeader(name) => {
            if let Some(response) = response {
                write_joined(response.headers(), name, out);
            }
        }
        Value::ResponseBody(pointer) => {
            if let Some(response) = response {
                write_body(response.body(), pointer.as_deref(), out);
            }
        }
    }
}

/// A header's values joined with commas ("API Gateway combines multiple header values with
/// commas").
fn write_joined(headers: &HeaderMap, name: &HeaderName, out: &mut Output<'_>) {
    let mut first = true;
    for value in headers.get_all(name) {
        if !first {
            out.text(",");
        }
        out.text(&crate::net::text(value.as_bytes()));
        first = false;
    }
}

/// The body (whole), or the JSON value at `pointer` in its first 100 KB: a string as it is,
/// anything else as JSON.
fn write_body(body: &Bytes, pointer: Option<&str>, out: &mut Output<'_>) {
    let Some(pointer) = pointer else {
        out.text(&crate::net::text(body));
        return;
    };
    let head = &body[..body.len().min(BODY_SELECTION_LIMIT)];
    let Ok(document) = serde_json::from_slice::<serde_json::Value>(head) else {
        return;
    };
    match document.pointer(pointer) {
        Some(serde_json::Value::String(text)) => out.text(text),
        Some(serde_json::Value::Null) | None => {}
        Some(other) => out.text(&other.to_string()),
    }
}

fn write_context(context: &Context, x: &Exchange<'_>, out: &mut Output<'_>) {
    let parts = x.parts;
    let host = || {
        parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
    };
    let authorization = x.caller.authorization.as_ref();
    match context {
        Context::AccountId => out.text(&x.api.account_id),
        Context::ApiId => out.text(&x.api.api_id),
        Context::DomainName => out.text(host()),
        Context::DomainPrefix => out.text(host().split('.').next().unwrap_or_default()),
        Context::ExtendedRequestId => out.text(x.extended_request_id),
        Context::HttpMethod => out.text(parts.method.as_str()),
        Context::Path => out.text(parts.uri.path()),
        Context::Protocol => out.text(match parts.version {
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_2 => "HTTP/2.0",
            http::Version::HTTP_3 => "HTTP/3.0",
            _ => "HTTP/1.1",
        }),
        Context::RequestId => out.text(x.request_id),
        Context::RequestTimeEpoch => {
            let _ = write!(out, "{}", x.received_epoch_ms());
        }
        Context::RouteKey => out.text(x.route_key),
        Context::SourceIp => out.text(&crate::net::source_ip(x.peer())),
        Context::Stage => out.text(x.stage),
        Context::UserAgent => {
            if let Some(agent) = parts.headers.get(USER_AGENT) {
                out.text(&crate::net::text(agent.as_bytes()));
            }
        }
        Context::PrincipalId => {
            if let Some(authorization) = authorization {
                out.text(authorization.principal_id());
            }
        }
        Context::Claim(name) => {
            if let Some(claim) = authorization.and_then(|a| a.claim(name)) {
                out.text(&claim);
            }
        }
        Context::Authorizer(key) => {
            if let Some(value) = authorization.and_then(|a| a.context_value(key)) {
                out.text(&value);
            }
        }
    }
}

/// Applies a header operation; a value that is not a valid header value is not sent.
fn apply_header(headers: &mut HeaderMap, operation: Operation, name: &HeaderName, value: &str) {
    let value = || HeaderValue::from_str(value).ok();
    match operation {
        Operation::Remove => {
            headers.remove(name);
        }
        Operation::Overwrite => {
            if let Some(value) = value() {
                headers.insert(name.clone(), value);
            }
        }
        Operation::Append => {
            if let Some(value) = value() {
                headers.append(name.clone(), value);
            }
        }
    }
}

/// The raw query's parameters as (decoded name, raw `name=value` text): untouched ones are
/// sent as the client wrote them.
fn raw_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            let decoded = form_urlencoded::parse(name.as_bytes())
                .next()
                .map(|(n, _)| n.into_owned())
                .unwrap_or_default();
            (decoded, pair.to_owned())
        })
        .collect()
}

/// Applies a query string operation to `pairs`.
fn apply_query(pairs: &mut Vec<(String, String)>, operation: Operation, name: &str, value: &str) {
    if operation != Operation::Append {
        pairs.retain(|(n, _)| n != name);
    }
    if operation != Operation::Remove {
        let encoded: String = form_urlencoded::Serializer::new(String::new())
            .append_pair(name, value)
            .finish();
        pairs.push((name.to_owned(), encoded));
    }
}

/// `uri` with its query made of `pairs`.
fn with_query(uri: &Uri, pairs: &[(String, String)]) -> Uri {
    let mut path_and_query = uri.path().to_owned();
    if !pairs.is_empty() {
        path_and_query.push('?');
        let raw: Vec<&str> = pairs.iter().map(|(_, raw)| raw.as_str()).collect();
        path_and_query.push_str(&raw.join("&"));
    }
    let mut parts = uri.clone().into_parts();
    match path_and_query.parse() {
        Ok(pq) => parts.path_and_query = Some(pq),
        Err(_) => return uri.clone(),
    }
    Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(yaml: &str, path_allowed: bool) -> Result<Option<ParameterMapping>, String> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Maps {
            request_parameters: Option<UniqueMap<String>>,
            response_parameters: Option<UniqueMap<UniqueMap<String>>>,
        }
        let maps: Maps = yaml_serde::from_str(yaml).unwrap();
        let variables = BTreeMap::from([("ENV".to_owned(), "prod".to_owned())]);
        let scope = MappingScope {
            variables: &variables,
            route_key: "GET /pets/{petId}",
            path_allowed,
        };
        ParameterMapping::compile(
            maps.request_parameters.as_ref(),
            maps.response_parameters.as_ref(),
            &scope,
            &KeyPath::root().key("integrations").key("pets"),
        )
        .map_err(|e| e.to_string())
    }

    /// Each class of load error, at its key path.
    #[test]
    fn bad_mappings_are_load_errors_at_their_key() {
        let cases = [
            (
                "requestParameters: {'add:header.a': x}",
                "integrations.pets.requestParameters.\"add:header.a\": unknown operation \"add\"",
            ),
            (
                "requestParameters: {'header.a': x}",
                "integrations.pets.requestParameters.\"header.a\": expected OPERATION:TARGET",
            ),
            (
                "requestParameters: {'append:cookie.a': x}",
                "integrations.pets.requestParameters.\"append:cookie.a\": unknown target",
            ),
            (
                "requestParameters: {'append:path': /x}",
                "the path can only be overwritten",
            ),
            (
                "requestParameters: {'overwrite:header.Authorization': x}",
                "\"Authorization\" is one of API Gateway's reserved headers",
            ),
            (
                "requestParameters: {'remove:header.x-amzn-trace-id': \"''\"}",
                "reserved headers",
            ),
            (
                "responseParameters: {'200': {'append:header.Access-Control-Allow-Origin': '*'}}",
                "reserved headers",
            ),
            (
                "responseParameters: {'199': {'append:header.a': b}}",
                "integrations.pets.responseParameters.199: the selection key is the status code the integration answers, 200-599",
            ),
            (
                "responseParameters: {'600': {'append:header.a': b}}",
                "200-599",
            ),
            (
                "responseParameters: {'2xx': {'append:header.a': b}}",
                "200-599",
            ),
            (
                "responseParameters: {'200': {'append:statuscode': '201'}}",
                "the status code can only be overwritten",
            ),
            (
                "responseParameters: {'200': {'overwrite:statuscode': '700'}}",
                "bad status code \"700\"",
            ),
            (
                "responseParameters: {'200': {'overwrite:querystring.a': b}}",
                "unknown target: expected header.NAME or statuscode",
            ),
            (
                "requestParameters: {'append:header.a': $response.header.b}",
                "a request mapping cannot read the integration's answer",
            ),
            (
                "responseParameters: {'200': {'append:header.a': $request.header.b}}",
                "a response mapping reads the answer",
            ),
            (
                "requestParameters: {'append:header.a': $request.path.nope}",
                "\"$request.path.nope\": not a path parameter of the route",
            ),
            (
                "requestParameters: {'append:header.a': $request.body..name}",
                "is not a JSON path",
            ),
            (
                "requestParameters: {'append:header.a': '${request.body.a[?(@.b)]}'}",
                "is not a JSON path",
            ),
            (
                "requestParameters: {'append:header.a': $context.nope}",
                "unknown context variable",
            ),
            (
                "requestParameters: {'append:header.a': $request.cookie.a}",
                "expected $request.header.NAME",
            ),
        ];
        let mut failures = Vec::new();
        for (yaml, expected) in cases {
            match compile(yaml, true) {
                Ok(_) => failures.push(format!("{yaml}: accepted")),
                Err(e) if !e.contains(expected) => failures.push(format!("{yaml}: {e}")),
                Err(_) => {}
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
        // `overwrite:path` is for http_proxy integrations only.
        let err = compile("requestParameters: {'overwrite:path': /x}", false).unwrap_err();
        assert!(
            err.contains("applies to http_proxy integrations only"),
            "{err}"
        );
    }

    #[test]
    fn json_paths_become_pointers() {
        assert_eq!(json_pointer("a").unwrap(), "/a");
        assert_eq!(json_pointer("items[0].id").unwrap(), "/items/0/id");
        assert_eq!(json_pointer("a/b.c~d").unwrap(), "/a~1b/c~0d");
        assert_eq!(json_pointer("m[1][2]").unwrap(), "/m/1/2");
        for bad in ["", "a..b", "a[*]", "a[x]", "a[1", "*", "a]"] {
            assert!(json_pointer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nothing_to_map_compiles_to_none() {
        assert!(compile("{}", true).unwrap().is_none());
        assert!(compile("requestParameters: {}", true).unwrap().is_none());
    }

    fn exchange_parts(uri: &str) -> Parts {
        Request::get(uri)
            .header("header1", "one")
            .header("x-multi", "a")
            .header("x-multi", "b")
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn request_values_are_read_before_operations_apply_in_order() {
        let mapping = compile(
            "requestParameters:
               'append:header.header2': $request.header.header1
               'remove:header.header1': \"''\"
               'overwrite:header.x-joined': '${request.header.x-multi}|${request.querystring.q}'
               'append:header.x-absent': $request.header.nope
               'overwrite:querystring.q': 'new value'
               'remove:querystring.drop': \"''\"
               'append:querystring.added': $stageVariables.ENV",
            true,
        )
        .unwrap()
        .unwrap();
        let parts = exchange_parts("/pets/7?q=1&keep=a%20b&q=2&drop=x");
        let x = Exchange::for_test(&parts);
        let mapped = mapping.request(&x);
        let headers = &mapped.parts.headers;
        assert_eq!(headers["header2"], "one");
        assert!(!headers.contains_key("header1"));
        assert_eq!(headers["x-joined"], "a,b|1,2");
        assert!(!headers.contains_key("x-absent"));
        assert_eq!(
            mapped.parts.uri,
            "/pets/7?keep=a%20b&q=new+value&added=prod"
        );
        assert_eq!(mapped.path, None);
    }
}
