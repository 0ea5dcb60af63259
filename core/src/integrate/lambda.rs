//! Lambda proxy integrations: the event JSON API Gateway hands a Lambda function (payload
//! format 1.0, REST's and HTTP API's; 2.0, HTTP API's), and the function's answer read back
//! the way API Gateway reads it. Plugins of the `lambda` world receive exactly this JSON.

use std::borrow::Cow;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST,
    SET_COOKIE, USER_AGENT,
};
use http::{HeaderMap, Response, StatusCode};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::authorize::caller::{claim_text, context_number, context_text, Authorization};
use crate::authorize::CustomGrant;
use crate::exchange::Exchange;
use crate::integrate::binary::BinaryMediaTypes;
use crate::plugin::ContextValue;
use crate::plugin::PluginFailure;

/// Which event shape a Lambda integration receives (`payloadFormatVersion`).
pub(crate) use crate::config::PayloadFormatVersion as PayloadVersion;

/// The version the definition names, or the protocol's default (REST 1.0, HTTP 2.0).
pub(crate) fn resolve_version(version: Option<PayloadVersion>, rest: bool) -> PayloadVersion {
    match version {
        Some(version) => version,
        None if rest => PayloadVersion::V1,
        None => PayloadVersion::V2,
    }
}

/// The event of `version` for the request, as JSON text.
pub(crate) fn event(
    version: PayloadVersion,
    x: &Exchange<'_>,
    binary: Option<&BinaryMediaTypes>,
) -> String {
    let request = Facts::of(x, binary);
    // Room for the whole event at once: grown from serde_json's 128 bytes, it would be
    // copied four or five times over.
    let mut json = Vec::with_capacity(request.event_size_hint());
    let result = match version {
        PayloadVersion::V1 => serde_json::to_writer(&mut json, &v1_event(x, &request)),
        PayloadVersion::V2 => serde_json::to_writer(&mut json, &v2_event(x, &request)),
    };
    // Every key is a string and every value JSON: serializing cannot fail, and serde_json
    // writes UTF-8.
    result
        .ok()
        .and_then(|()| String::from_utf8(json).ok())
        .unwrap_or_default()
}

/// What both event shapes derive from the request.
struct Facts<'a> {
    /// Headers other than `cookie`, grouped by name in order of first appearance.
    headers: Vec<(String, Vec<String>)>,
    /// The `cookie` header(s).
    cookies: Vec<String>,
    /// The name the `cookie` header goes under in a 1.0 event (the client's spelling).
    cookie_name: String,
    /// Query parameters, decoded, grouped by name.
    query: Vec<(String, Vec<String>)>,
    body: Option<Cow<'a, str>>,
    is_base64: bool,
    domain_name: String,
    domain_prefix: String,
    source_ip: String,
    user_agent: Option<String>,
    time: String,
    time_epoch: u64,
}

impl<'a> Facts<'a> {
    fn of(x: &'a Exchange<'_>, binary: Option<&BinaryMediaTypes>) -> Self {
        let parts = x.parts;
        // A REST API names headers as the client did (`"User-Agent"`, LocalStack's
        // test_apigateway_lambda.snapshot.json, recorded against AWS) when the embedder passed
        // the spelling on; an HTTP API's are lower-case ("HTTP API ... header names are
        // lowercased", working-with-lambda payload format 2.0 and 1.0 alike).
        let case = parts
            .extensions
            .get::<crate::HeaderCase>()
            .filter(|case| x.rest && case.describes(&parts.headers));
        let spelling = |name: &'a str| case.map_or(name, |case| case.spelling(name));
        let mut headers: Vec<(String, Vec<String>)> = Vec::new();
        let mut cookies = Vec::new();
        // A traced request's function gets the gateway's trace headers (`X-Amzn-Trace-Id`,
        // as Lambda gets it from API Gateway), not the caller's.
        let passed_on = x.trace.map(|trace| trace.passed_on().headers());
        for (name, value) in &parts.headers {
            if passed_on.is_some() && crate::trace::is_trace_header(name) {
                continue;
            }
            let value = crate::net::text(value.as_bytes()).into_owned();
            if name == COOKIE {
                cookies.push(value);
            } else {
                push_grouped(&mut headers, spelling(name.as_str()), value);
            }
        }
        // REST events spell it as AWS does (`X-Amzn-Trace-Id`, the developer guide's
        // sample 1.0 event), HTTP APIs lower-case like every other header.
        for (name, value) in passed_on.iter().flatten() {
            let value = crate::net::text(value.as_bytes()).into_owned();
            let name = if x.rest && name == crate::trace::X_AMZN_TRACE_ID {
                "X-Amzn-Trace-Id"
            } else {
                name.as_str()
            };
            push_grouped(&mut headers, name, value);
        }
        let cookie_name = spelling(COOKIE.as_str()).to_owned();
        let mut query = Vec::new();
        for (name, value) in x.query() {
            push_grouped(&mut query, name, value.clone());
        }
        let (body, is_base64) = match binary {
            Some(types) => rest_body(&parts.headers, &x.body, types),
            None => body(&parts.headers, &x.body),
        };
        let domain_name = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            // The host name, without a port.
            .and_then(|h| h.parse::<http::uri::Authority>().ok())
            .map(|a| a.host().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| {
                format!(
                    "{}.execute-api.{}.amazonaws.com",
                    x.api.api_id, x.api.region
                )
            });
        let domain_prefix = domain_name.split('.').next().unwrap_or_default().to_owned();
        let time_epoch = x.received_epoch_ms();
        Facts {
            headers,
            cookies,
            cookie_name,
            query,
            body,
            is_base64,
            domain_name,
            domain_prefix,
            source_ip: crate::net::source_ip(x.peer()),
            user_agent: parts
                .headers
                .get(USER_AGENT)
                .map(|v| crate::net::text(v.as_bytes()).into_owned()),
            time: request_time(time_epoch),
            time_epoch,
        }
    }
}

impl Facts<'_> {
    /// About the size of the event's JSON: the fixed keys and context, then what the request
    /// brings (headers and query parameters appear twice in 1.0).
    fn event_size_hint(&self) -> usize {
        let groups = |groups: &[(String, Vec<String>)]| -> usize {
            groups
                .iter()
                .map(|(name, values)| {
                    8 + name.len() + values.iter().map(String::len).sum::<usize>()
                })
                .sum()
        };
        let cookies: usize = self.cookies.iter().map(String::len).sum();
        let body = self.body.as_deref().map_or(0, str::len);
        1536 + 2 * (groups(&self.headers) + groups(&self.query) + cookies) + body + body / 8
    }
}

fn push_grouped(groups: &mut Vec<(String, Vec<String>)>, name: &str, value: String) {
    match groups.iter_mut().find(|(n, _)| n == name) {
        Some((_, values)) => values.push(value),
        None => groups.push((name.to_owned(), vec![value])),
    }
}

/// Content types API Gateway passes as text; anything else travels base64-encoded.
fn is_text_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("/json")
        || essence.ends_with("+json")
        || essence.ends_with("/xml")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/javascript"
                | "application/x-www-form-urlencoded"
                | "application/yaml"
                | "application/x-yaml"
                | "application/graphql"
        )
}

/// The body as Lambda carries it: absent when empty, text when it is UTF-8 of a text type (or
/// of no stated type), base64 otherwise (binary types, compressed bodies, invalid UTF-8).
fn body<'a>(headers: &HeaderMap, body: &'a Bytes) -> (Option<Cow<'a, str>>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    let textual = headers
        .get(CONTENT_TYPE)
        .map(|t| is_text_type(&crate::net::text(t.as_bytes())))
        .unwrap_or(true)
        && headers
            .get(CONTENT_ENCODING)
            .is_none_or(|e| e.as_bytes().eq_ignore_ascii_case(b"identity"));
    match std::str::from_utf8(body) {
        Ok(text) if textual => (Some(Cow::Borrowed(text)), false),
        _ => (
            Some(Cow::Owned(
                base64::engine::general_purpose::STANDARD.encode(body),
            )),
            true,
        ),
    }
}

/// A REST API's request body as its Lambda gets it: base64 when its `Content-Type` is one of
/// the API's binary media types, else text, bytes that are not UTF-8 replaced by U+FFFD (as
/// AWS stored a gzip body sent as `image/png` to an API without binary media types: LocalStack
/// test_apigateway_s3.snapshot.json, `test_apigw_s3_binary_support_request[None]`).
fn rest_body<'a>(
    headers: &HeaderMap,
    body: &'a Bytes,
    types: &BinaryMediaTypes,
) -> (Option<Cow<'a, str>>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    let binary = headers
        .get(CONTENT_TYPE)
        .and_then(|t| t.to_str().ok())
        .is_some_and(|t| types.lists(t));
    if binary {
        let encoded = base64::engine::general_purpose::STANDARD.encode(body);
        (Some(Cow::Owned(encoded)), true)
    } else {
        (Some(crate::net::text(body)), false)
    }
}

/// `04/Mar/2020:19:03:58 +0000`, API Gateway's `requestTime`.
fn request_time(epoch_ms: u64) -> String {
    crate::time::clf_time(std::time::UNIX_EPOCH + std::time::Duration::from_millis(epoch_ms))
}

/// A JSON object whose keys keep the order they were added in.
struct Object<V>(Vec<(String, V)>);

impl<V: Serialize> Serialize for Object<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// `Some(object)` of the pairs, or `None` (JSON `null`, or left out) when there are none.
fn object<V, I: IntoIterator<Item = (String, V)>>(pairs: I) -> Option<Object<V>> {
    let pairs: Vec<_> = pairs.into_iter().collect();
    (!pairs.is_empty()).then_some(Object(pairs))
}

/// The route's path (`/users/{userId}`); the request path for `$default`.
fn resource<'a>(x: &'a Exchange<'_>) -> &'a str {
    match x.route_key.split_once(' ') {
        Some((_, path)) => path,
        None => x.path,
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct V2Event<'a> {
    version: &'static str,
    route_key: &'a str,
    raw_path: &'a str,
    raw_query_string: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cookies: Option<Vec<String>>,
    headers: Object<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_string_parameters: Option<Object<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_parameters: Option<Object<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stage_variables: Option<Object<&'a str>>,
    request_context: V2Context<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    is_base64_encoded: bool,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct V2Context<'a> {
    account_id: &'a str,
    api_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorizer: Option<Value>,
    domain_name: &'a str,
    domain_prefix: &'a str,
    http: V2Http<'a>,
    request_id: &'a str,
    route_key: &'a str,
    stage: &'a str,
    time: &'a str,
    time_epoch: u64,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct V2Http<'a> {
    method: &'a str,
    path: &'a str,
    protocol: &'static str,
    source_ip: &'a str,
    user_agent: &'a str,
}

fn v2_event<'a>(x: &'a Exchange<'_>, facts: &'a Facts<'_>) -> V2Event<'a> {
    // 2.0 splits the cookie header(s) into their cookies.
    let cookies: Vec<String> = facts
        .cookies
        .iter()
        .flat_map(|c| super::cookie_pairs(c))
        .map(str::to_owned)
        .collect();
    let (path_parameters, stage_variables) = parameters(x);
    // A request without a body shows `content-length: 0` (captured 2.0 events: the Lambda
    // developer guide's sample-apps/nodejs-apig/event-v2.json, aws-lambda-rust-runtime's
    // lambda-events fixture example-apigw-v2-request-no-authorizer.json).
    let no_length = (x.body.is_empty() && !x.parts.headers.contains_key(CONTENT_LENGTH))
        .then(|| ("content-length".to_owned(), "0".to_owned()));
    V2Event {
        version: "2.0",
        route_key: x.route_key,
        // The path as requested: a named stage's prefix kept (`/default/...` in
        // sample-apps/nodejs-apig/event-v2.json, whose stage is `default`), as is a custom
        // domain's base path.
        raw_path: x.parts.uri.path(),
        raw_query_string: x.parts.uri.query().unwrap_or(""),
        cookies: (!cookies.is_empty()).then_some(cookies),
        headers: Object(joined(&facts.headers).chain(no_length).collect()),
        query_string_parameters: object(joined(&facts.query)),
        path_parameters,
        stage_variables,
        request_context: V2Context {
            account_id: &x.api.account_id,
            api_id: &x.api.api_id,
            authorizer: x.caller.authorization.as_ref().map(v2_authorizer),
            domain_name: &facts.domain_name,
            domain_prefix: &facts.domain_prefix,
            http: V2Http {
                method: x.parts.method.as_str(),
                path: x.parts.uri.path(),
                protocol: protocol(x.parts.version),
                source_ip: &facts.source_ip,
                user_agent: facts.user_agent.as_deref().unwrap_or(""),
            },
            request_id: x.request_id,
            route_key: x.route_key,
            stage: x.stage,
            time: &facts.time,
            time_epoch: facts.time_epoch,
        },
        body: facts.body.as_deref(),
        is_base64_encoded: facts.is_base64,
    }
}

/// 2.0's map of grouped values (headers, query parameters): a name's values joined by commas.
fn joined(groups: &[(String, Vec<String>)]) -> impl Iterator<Item = (String, String)> + '_ {
    groups
        .iter()
        .map(|(name, values)| (name.clone(), values.join(",")))
}

/// 1.0's two maps of grouped values (headers, query parameters): the last value of each name
/// (`headers`, `queryStringParameters`) and all of them (`multiValue…`).
fn single_and_multi<'a>(
    groups: impl Iterator<Item = (&'a str, &'a [String])> + Clone,
) -> (Option<Object<&'a str>>, Option<Object<&'a [String]>>) {
    let last = |values: &'a [String]| values.last().map_or("", String::as_str);
    (
        object(
            groups
                .clone()
                .map(|(name, values)| (name.to_owned(), last(values))),
        ),
        object(groups.map(|(name, values)| (name.to_owned(), values))),
    )
}

/// The groups by reference.
fn borrowed(groups: &[(String, Vec<String>)]) -> impl Iterator<Item = (&str, &[String])> + Clone {
    groups
        .iter()
        .map(|(name, values)| (name.as_str(), values.as_slice()))
}

/// `pathParameters` and `stageVariables`, the same in both versions.
fn parameters<'a>(x: &'a Exchange<'_>) -> (Option<Object<&'a str>>, Option<Object<&'a str>>) {
    fn texts<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Option<Object<&'a str>> {
        object(pairs.map(|(name, value)| (name.to_owned(), value)))
    }
    (
        texts(x.path_params.iter().map(|(name, value)| (*name, &**value))),
        texts(
            x.stage_variables
                .iter()
                .map(|(name, value)| (&**name, &**value)),
        ),
    )
}

fn protocol(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// `requestContext.authorizer` of 2.0: `{"jwt": {"claims", "scopes"}}` or `{"lambda": context}`.
fn v2_authorizer(authorization: &Authorization) -> Value {
    let (kind, description) = match authorization {
        Authorization::Jwt(token) => ("jwt", jwt_description(token)),
        Authorization::Custom(grant) => ("lambda", Value::Object(grant_context(grant, typed))),
    };
    Value::Object(Map::from_iter([(kind.to_owned(), description)]))
}

/// A custom authorizer's context as a JSON object, each value as `value` writes it.
fn grant_context(grant: &CustomGrant, value: fn(&ContextValue) -> Value) -> Map<String, Value> {
    grant
        .context
        .iter()
        .map(|(name, v)| (name.clone(), value(v)))
        .collect()
}

/// `{"claims": {name: text}, "scopes": [..] | null}`: API Gateway hands claims on as strings.
fn jwt_description(token: &crate::authorize::jwt::VerifiedToken) -> Value {
    let claims: Map<String, Value> = token
        .claims()
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(claim_text(v))))
        .collect();
    let scopes = if token.scopes().is_empty() {
        Value::Null
    } else {
        Value::from(token.scopes().to_vec())
    };
    serde_json::json!({ "claims": claims, "scopes": scopes })
}

fn typed(value: &ContextValue) -> Value {
    match value {
        ContextValue::Text(s) => Value::String(s.clone()),
        ContextValue::Boolean(b) => Value::Bool(*b),
        ContextValue::Number(n) => context_number(*n),
    }
}

/// A context value as a JSON string: 1.0 hands every value on as text.
fn as_string(value: &ContextValue) -> Value {
    Value::String(context_text(value))
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct V1Event<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'static str>,
    resource: &'a str,
    path: &'a str,
    http_method: &'a str,
    headers: Option<Object<&'a str>>,
    multi_value_headers: Option<Object<&'a [String]>>,
    query_string_parameters: Option<Object<&'a str>>,
    multi_value_query_string_parameters: Option<Object<&'a [String]>>,
    request_context: V1Context<'a>,
    path_parameters: Option<Object<&'a str>>,
    stage_variables: Option<Object<&'a str>>,
    body: Option<&'a str>,
    is_base64_encoded: bool,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct V1Context<'a> {
    account_id: &'a str,
    api_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorizer: Option<Value>,
    deployment_id: &'a str,
    domain_name: &'a str,
    domain_prefix: &'a str,
    extended_request_id: &'a str,
    http_method: &'a str,
    identity: V1Identity<'a>,
    path: &'a str,
    protocol: &'static str,
    request_id: &'a str,
    request_time: &'a str,
    request_time_epoch: u64,
    resource_id: Option<String>,
    resource_path: &'a str,
    stage: &'a str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct V1Identity<'a> {
    access_key: Option<&'a str>,
    account_id: Option<&'a str>,
    // Only with an API key: a route without one gets AWS's 12 keys (LocalStack
    // test_apigateway_lambda.snapshot.json, `invocation-payload-without-trailing-slash`).
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key_id: Option<&'a str>,
    caller: Option<&'a str>,
    cognito_authentication_provider: Option<&'a str>,
    cognito_authentication_type: Option<&'a str>,
    cognito_identity_id: Option<&'a str>,
    cognito_identity_pool_id: Option<&'a str>,
    principal_org_id: Option<&'a str>,
    source_ip: &'a str,
    user: Option<&'a str>,
    user_agent: Option<&'a str>,
    user_arn: Option<&'a str>,
}

fn v1_event<'a>(x: &'a Exchange<'_>, facts: &'a Facts<'_>) -> V1Event<'a> {
    // 1.0 keeps the cookie header as a header.
    let cookies = (!facts.cookies.is_empty())
        .then_some((facts.cookie_name.as_str(), facts.cookies.as_slice()));
    let (headers, multi_value_headers) = single_and_multi(borrowed(&facts.headers).chain(cookies));
    let (query_string_parameters, multi_value_query_string_parameters) =
        single_and_multi(borrowed(&facts.query));
    let (path_parameters, stage_variables) = parameters(x);
    let method = x.parts.method.as_str();
    let resource = resource(x);
    let rest = x.rest;
    // The path as requested (the stage segment, a custom domain's base path and doubled
    // slashes after the stage kept: `"requestContext": {"path": "/stage//hardcoded"}` in
    // LocalStack's test_apigateway_lambda.snapshot.json), leading slashes collapsed.
    let path_with_stage = crate::stage::collapse_leading_slashes(x.parts.uri.path());
    V1Event {
        version: (!rest).then_some("1.0"),
        resource,
        path: x.path,
        http_method: method,
        headers,
        multi_value_headers,
        query_string_parameters,
        multi_value_query_string_parameters,
        request_context: V1Context {
            account_id: &x.api.account_id,
            api_id: &x.api.api_id,
            authorizer: v1_authorizer(x.caller.authorization.as_ref(), rest),
            deployment_id: x.deployment_id,
            domain_name: &facts.domain_name,
            domain_prefix: &facts.domain_prefix,
            extended_request_id: x.extended_request_id,
            http_method: method,
            identity: V1Identity {
                access_key: None,
                account_id: None,
                api_key: x.caller.api_key.as_ref().map(|key| &*key.value),
                api_key_id: x.caller.api_key.as_ref().map(|key| &*key.id),
                caller: None,
                cognito_authentication_provider: None,
                cognito_authentication_type: None,
                cognito_identity_id: None,
                cognito_identity_pool_id: None,
                principal_org_id: None,
                source_ip: &facts.source_ip,
                user: None,
                user_agent: facts.user_agent.as_deref(),
                user_arn: None,
            },
            path: path_with_stage,
            protocol: protocol(x.parts.version),
            request_id: x.request_id,
            request_time: &facts.time,
            request_time_epoch: facts.time_epoch,
            // REST resources have ids; HTTP APIs say null.
            resource_id: rest.then(|| resource_id(resource)),
            resource_path: resource,
            stage: x.stage,
        },
        path_parameters,
        stage_variables,
        body: facts.body.as_deref(),
        is_base64_encoded: facts.is_base64,
    }
}

/// A stable 6-character id for a REST resource path (API Gateway's look: `roq9wj`).
fn resource_id(resource: &str) -> String {
    use sha2::Digest as _;
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    sha2::Sha256::digest(resource.as_bytes())
        .iter()
        .take(6)
        .map(|b| ALPHABET[usize::from(*b) % 36] as char)
        .collect()
}

/// `requestContext.authorizer` of 1.0: a JWT's `{claims, scopes}`; a custom authorizer's
/// `principalId`, `integrationLatency` and context (values as strings); HTTP APIs write
/// `{"claims": null, "scopes": null}` for a route without an authorizer, REST leaves it out.
fn v1_authorizer(authorization: Option<&Authorization>, rest: bool) -> Option<Value> {
    match authorization {
        None if rest => None,
        None => Some(serde_json::json!({ "claims": null, "scopes": null })),
        Some(Authorization::Jwt(token)) => Some(jwt_description(token)),
        Some(Authorization::Custom(grant)) => {
            let mut authorizer = grant_context(grant, as_string);
            authorizer.insert("principalId".into(), grant.principal_id.clone().into());
            authorizer.insert("integrationLatency".into(), 0.into());
            Some(Value::Object(authorizer))
        }
    }
}

/// The function's answer as an HTTP response, read as API Gateway reads payload `version`'s
/// responses for an API of REST (`rest`) or HTTP semantics; a base64 body is decoded when
/// `decode_base64` (see `binary.rs`). Anything it cannot use is a malformed response.
pub(crate) fn response(
    version: PayloadVersion,
    output: &str,
    rest: bool,
    decode_base64: bool,
) -> Result<Response<Bytes>, PluginFailure> {
    let bad = |message: String| PluginFailure::BadResponse(message);
    let value: Value = serde_json::from_str(output)
        .map_err(|e| bad(format!("the Lambda response is not JSON: {e}")))?;
    let structured = match &value {
        Value::Object(fields) if fields.contains_key("statusCode") => fields,
        // 1.0 takes an object without a status code as a 200 (recorded against AWS:
        // LocalStack test_apigateway_lambda.snapshot.json, `invoke-api-only-headers`).
        Value::Object(fields) if version == PayloadVersion::V1 => fields,
        // 2.0 infers a response from any JSON without a status code.
        _ if version == PayloadVersion::V2 => {
            let body = match value {
                Value::String(text) => text,
                _ => output.trim().to_owned(),
            };
            let mut response = Response::new(Bytes::from(body));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            return Ok(response);
        }
        _ => return Err(bad("the Lambda response is not a JSON object".into())),
    };
    if version == PayloadVersion::V1 && rest {
        // A key 1.0 does not know is refused by a REST API (`{"statusCode": 200, "wrongValue": "value"}`
        // was answered 502: `invoke-api-wrong-format` in the same snapshot).
        if let Some(unknown) = structured
            .keys()
            .find(|k| !V1_RESPONSE_KEYS.contains(&k.as_str()))
        {
            return Err(bad(format!(
                "the Lambda response has an unknown key {unknown:?}"
            )));
        }
    }
    let status = match structured.get("statusCode") {
        None => Some(200),
        Some(Value::Number(n)) => n.as_u64(),
        // 1.0 reads a status given as a string (`{"statusCode": "201"}` answered 201:
        // `invoke-api-status-code-str`; `"test"` 502: `invoke-api-invalid-status-code`).
        Some(Value::String(text)) if version == PayloadVersion::V1 => text.parse().ok(),
        Some(_) => None,
    }
    .and_then(|s| u16::try_from(s).ok())
    .filter(|s| (100..=599).contains(s))
    .and_then(|s| StatusCode::from_u16(s).ok())
    .ok_or_else(|| bad(format!("statusCode {}", structured["statusCode"])))?;

    // The header lines the answer asks for (each value of a list one), bounded.
    let lines_of = |key: &str| match structured.get(key) {
        Some(Value::Object(map)) => map
            .values()
            .map(|value| match value {
                Value::Array(values) => values.len(),
                _ => 1,
            })
            .sum(),
        Some(Value::Array(list)) => list.len(),
        _ => 0,
    };
    let lines = lines_of("headers")
        + match version {
            PayloadVersion::V1 => lines_of("multiValueHeaders"),
            PayloadVersion::V2 => lines_of("cookies"),
        };
    let mut headers = super::answer_headers(lines)?;
    let multi = match version {
        // 2.0's response format has no multiValueHeaders (commas join values instead).
        PayloadVersion::V2 => None,
        PayloadVersion::V1 => match structured.get("multiValueHeaders") {
            None | Some(Value::Null) => None,
            Some(Value::Object(multi)) => Some(multi),
            Some(_) => return Err(bad("multiValueHeaders is not an object".into())),
        },
    };
    // A name in both maps gets both: the multi-value map's values, then the single one
    // (`"test-multi": "value-multi, value-solo"`, whatever the names' case:
    // `invoke-api-multi-headers-overwrite` and `...-overwrite-casing` in the same snapshot).
    for (name, values) in multi.into_iter().flatten() {
        let values = match values {
            Value::Array(values) => values,
            Value::Null => continue,
            _ => return Err(bad(format!("multiValueHeaders.{name} is not a list"))),
        };
        let header = header_name(name)?;
        for value in values {
            if let Some(value) = header_text(value, name)? {
                headers.append(header.clone(), header_value(&value, name)?);
            }
        }
    }
    match structured.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(single)) => {
            for (name, value) in single {
                if let Some(value) = header_text(value, name)? {
                    headers.append(header_name(name)?, header_value(&value, name)?);
                }
            }
        }
        Some(_) => return Err(bad("headers is not an object".into())),
    }
    if version == PayloadVersion::V2 {
        match structured.get("cookies") {
            None | Some(Value::Null) => {}
            Some(Value::Array(cookies)) => {
                for cookie in cookies {
                    let Value::String(cookie) = cookie else {
                        return Err(bad("a cookie is not a string".into()));
                    };
                    headers.append(SET_COOKIE, header_value(cookie, "set-cookie")?);
                }
            }
            Some(_) => return Err(bad("cookies is not a list".into())),
        }
    }
    if version == PayloadVersion::V1 && !headers.contains_key(CONTENT_TYPE) {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }

    let base64 = match structured.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("isBase64Encoded is not a boolean".into())),
    };
    let body = match structured.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) if base64 && decode_base64 => {
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|e| PluginFailure::NotBase64(e.to_string()))?
        }
        Some(Value::String(text)) => text.clone().into_bytes(),
        Some(_) => return Err(bad("body is not a string".into())),
    };
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// The keys of a 1.0 Lambda response.
const V1_RESPONSE_KEYS: &[&str] = &[
    "statusCode",
    "headers",
    "multiValueHeaders",
    "body",
    "isBase64Encoded",
];

/// A header value given as a string, number or boolean; `null` leaves the header out.
fn header_text(value: &Value, name: &str) -> Result<Option<String>, PluginFailure> {
    match value {
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Null => Ok(None),
        _ => Err(PluginFailure::BadResponse(format!(
            "the value of header {name} is not a string"
        ))),
    }
}

fn header_name(name: &str) -> Result<HeaderName, PluginFailure> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| PluginFailure::BadResponse(format!("header name {name:?}")))
}

fn header_value(value: &str, name: &str) -> Result<HeaderValue, PluginFailure> {
    HeaderValue::from_str(value)
        .map_err(|_| PluginFailure::BadResponse(format!("value of header {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(version: PayloadVersion, output: &str) -> Response<Bytes> {
        response(version, output, false, true).unwrap_or_else(|e| panic!("{output}: {e}"))
    }

    /// As a REST API reads it (a base64 body decoded).
    fn rest(output: &str) -> Response<Bytes> {
        response(V1, output, true, true).unwrap_or_else(|e| panic!("{output}: {e}"))
    }

    fn fails(version: PayloadVersion, output: &str) {
        for rest in [false, true] {
            assert!(
                matches!(
                    response(version, output, rest, true),
                    Err(PluginFailure::BadResponse(_))
                ),
                "{output} should be malformed"
            );
        }
    }

    fn all(r: &Response<Bytes>, name: &str) -> Vec<String> {
        r.headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    use PayloadVersion::{V1, V2};

    #[test]
    fn the_payload_version_defaults_by_protocol() {
        let parse = |text: &str| yaml_serde::from_str::<PayloadVersion>(text).ok();
        assert_eq!(resolve_version(None, true), V1);
        assert_eq!(resolve_version(None, false), V2);
        assert_eq!(resolve_version(parse("'1.0'"), false), V1);
        assert_eq!(resolve_version(parse("'2.0'"), true), V2);
        assert_eq!(parse("2.0"), Some(V2), "an unquoted YAML 2.0 is a number");
        assert_eq!(parse("'2'"), None);
        assert_eq!(parse("2"), None);
    }

    #[test]
    fn resource_ids_are_stable_and_short() {
        let id = resource_id("/users/{userId}");
        assert_eq!(id, resource_id("/users/{userId}"));
        assert_ne!(id, resource_id("/users"));
        assert_eq!(id.len(), 6);
    }

    #[test]
    fn request_time_is_api_gateways_format() {
        assert_eq!(
            request_time(1_583_348_638_390),
            "04/Mar/2020:19:03:58 +0000"
        );
        assert_eq!(request_time(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(request_time(951_782_400_000), "29/Feb/2000:00:00:00 +0000");
        assert_eq!(
            request_time(1_798_761_599_000),
            "31/Dec/2026:23:59:59 +0000"
        );
    }

    #[test]
    fn a_full_response_maps_in_both_versions() {
        for version in [V1, V2] {
            let r = v(
                version,
                r#"{"statusCode": 201, "headers": {"Content-Type": "text/plain", "X-N": 5},
                   "body": "made", "isBase64Encoded": false}"#,
            );
            assert_eq!(r.status(), 201);
            assert_eq!(all(&r, "content-type"), ["text/plain"]);
            assert_eq!(all(&r, "x-n"), ["5"]);
            assert_eq!(r.body(), "made");
        }
    }

    // A name in both maps: the multi-value map's values, then the single one, whatever the
    // case (LocalStack test_apigateway_lambda.snapshot.json,
    // `invoke-api-multi-headers-overwrite-casing`: `"tesT-Multi": "value-multi, value-solo"`).
    #[test]
    fn v1_merges_multi_value_headers_with_the_single_ones() {
        let r = v(
            V1,
            r#"{"statusCode": 200, "headers": {"x-a": "single", "x-b": "b"},
               "multiValueHeaders": {"X-A": ["m1", "m2"], "x-c": ["c"]}}"#,
        );
        assert_eq!(all(&r, "x-a"), ["m1", "m2", "single"]);
        assert_eq!(all(&r, "x-b"), ["b"]);
        assert_eq!(all(&r, "x-c"), ["c"]);
        // REST answers JSON unless the function says otherwise.
        assert_eq!(all(&r, "content-type"), ["application/json"]);
        assert_eq!(r.body(), "");
    }

    #[test]
    fn v2_cookies_become_set_cookie_headers() {
        let r = v(
            V2,
            r#"{"statusCode": 200, "cookies": ["a=1; Path=/", "b=2"], "body": "x"}"#,
        );
        assert_eq!(all(&r, "set-cookie"), ["a=1; Path=/", "b=2"]);
        assert!(r.headers().get("content-type").is_none());
        // 1.0 has no cookies field: an HTTP API ignores it, a REST API refuses the key.
        let r = v(V1, r#"{"statusCode": 200, "cookies": ["a=1"]}"#);
        assert!(r.headers().get("set-cookie").is_none());
        assert!(response(V1, r#"{"statusCode": 200, "cookies": ["a=1"]}"#, true, true).is_err());
    }

    /// A function's answer with more headers than an HTTP header map holds is malformed, not a
    /// panic (`http`'s `HeaderMap` panics past 32,768 slots), in either map and as cookies.
    #[test]
    fn an_answer_with_too_many_headers_is_malformed() {
        let many = |n: usize| {
            (0..n)
                .map(|i| format!("\"x-h{i}\": \"v\""))
                .collect::<Vec<_>>()
                .join(",")
        };
        let over = super::super::MAX_ANSWER_HEADERS + 1;
        let cookies = (0..40_000)
            .map(|i| format!("\"c{i}=1\""))
            .collect::<Vec<_>>()
            .join(",");
        for (version, output) in [
            (
                V1,
                format!(r#"{{"statusCode": 200, "headers": {{{}}}}}"#, many(over)),
            ),
            (
                V2,
                format!(r#"{{"statusCode": 200, "headers": {{{}}}}}"#, many(30_000)),
            ),
            (
                V1,
                format!(
                    r#"{{"statusCode": 200, "multiValueHeaders": {{{}}}}}"#,
                    many(30_000).replace(": \"v\"", ": [\"v\"]")
                ),
            ),
            (
                V2,
                format!(r#"{{"statusCode": 200, "cookies": [{cookies}]}}"#),
            ),
        ] {
            for rest in [false, true] {
                match response(version, &output, rest, true) {
                    Err(PluginFailure::BadResponse(why)) => {
                        assert!(why.contains("headers, more than"), "{why}")
                    }
                    other => panic!("{version:?}: {:?}", other.map(|r| r.headers().len())),
                }
            }
        }
    }

    #[test]
    fn base64_bodies_are_decoded() {
        for version in [V1, V2] {
            let r = v(
                version,
                r#"{"statusCode": 200, "body": "/wA=", "isBase64Encoded": true}"#,
            );
            assert_eq!(r.body().as_ref(), [0xff, 0x00]);
            // A body that does not decode is a failed conversion (500), not a malformed answer.
            for rest in [false, true] {
                let output =
                    r#"{"statusCode": 200, "body": "not base64!", "isBase64Encoded": true}"#;
                assert!(matches!(
                    response(version, output, rest, true),
                    Err(PluginFailure::NotBase64(_))
                ));
            }
        }
    }

    #[test]
    fn v2_infers_a_response_from_json_without_a_status_code() {
        let r = v(V2, r#""Hello from Lambda!""#);
        assert_eq!(r.status(), 200);
        assert_eq!(all(&r, "content-type"), ["application/json"]);
        assert_eq!(r.body(), "Hello from Lambda!");
        let r = v(V2, r#"{ "message": "Hello from Lambda!" }"#);
        assert_eq!(r.status(), 200);
        assert_eq!(r.body(), r#"{ "message": "Hello from Lambda!" }"#);
        assert_eq!(all(&r, "content-type"), ["application/json"]);
        for json in [
            "[1, 2]",
            "42",
            "true",
            "null",
            r#"{"body": "b", "headers": {}}"#,
        ] {
            let r = v(V2, json);
            assert_eq!(
                (r.status().as_u16(), r.body().as_ref()),
                (200, json.as_bytes())
            );
        }
    }

    /// The 1.0 answers LocalStack recorded against AWS
    /// (test_apigateway_lambda.snapshot.json, `test_aws_proxy_response_payload_format_validation`).
    #[test]
    fn v1_reads_answers_as_leniently_as_aws() {
        // `invoke-api-only-headers`: no statusCode is a 200.
        let r = rest(r#"{"headers": {"test-header": "value"}}"#);
        assert_eq!(
            (r.status().as_u16(), all(&r, "test-header")),
            (200, vec!["value".to_owned()])
        );
        // `invoke-api-status-code-str`: a status as a string.
        assert_eq!(rest(r#"{"statusCode": "201"}"#).status(), 201);
        // `invoke-api-with-headers`: a boolean header value is its text.
        let r = rest(r#"{"statusCode": 200, "headers": {"header-bool": true}}"#);
        assert_eq!(all(&r, "header-bool"), ["true"]);
        // `invoke-api-wrong-format`, `invoke-api-invalid-status-code`, `invoke-api-just-string`,
        // `invoke-api-multi-headers-invalid`: 502.
        for json in [
            r#"{"statusCode": 200, "wrongValue": "value"}"#,
            r#"{"statusCode": "test"}"#,
            r#""justAString""#,
            r#"{"statusCode": 200, "multiValueHeaders": {"test-multi-invalid": "value1"}}"#,
        ] {
            assert!(response(V1, json, true, true).is_err(), "{json}");
        }
        for json in [r#""Hello""#, "[1]", "null"] {
            fails(V1, json);
        }
    }

    /// `invoke-api-b64-encoded-true`: a REST API whose client did not ask for a binary type
    /// sends the base64 text as it is.
    #[test]
    fn a_base64_answer_is_decoded_only_when_asked() {
        let json = r#"{"statusCode": 200, "body": "dGVzdC1kYXRh", "isBase64Encoded": true}"#;
        let r = response(V1, json, true, false).unwrap();
        assert_eq!(r.body(), "dGVzdC1kYXRh");
        assert_eq!(response(V1, json, true, true).unwrap().body(), "test-data");
    }

    #[test]
    fn malformed_answers_are_refused() {
        for version in [V1, V2] {
            for output in [
                "",
                "not json",
                r#"{"statusCode": 99}"#,
                r#"{"statusCode": 600}"#,
                r#"{"statusCode": 200.5}"#,
                r#"{"statusCode": null}"#,
                r#"{"statusCode": 200, "headers": []}"#,
                r#"{"statusCode": 200, "headers": {"x": {"a": 1}}}"#,
                r#"{"statusCode": 200, "headers": {"bad name": "v"}}"#,
                r#"{"statusCode": 200, "headers": {"x": "line\nbreak"}}"#,
                r#"{"statusCode": 200, "body": {"a": 1}}"#,
                r#"{"statusCode": 200, "isBase64Encoded": "yes"}"#,
            ] {
                fails(version, output);
            }
        }
        fails(
            V1,
            r#"{"statusCode": 200, "multiValueHeaders": {"x": "v"}}"#,
        );
        fails(V2, r#"{"statusCode": 200, "cookies": "a=1"}"#);
        fails(V2, r#"{"statusCode": 200, "cookies": [1]}"#);
    }

    #[test]
    fn null_fields_are_left_out() {
        let r = v(
            V1,
            r#"{"statusCode": 204, "headers": null, "multiValueHeaders": null, "body": null,
               "isBase64Encoded": null}"#,
        );
        assert_eq!(r.status(), 204);
        assert_eq!(r.body(), "");
    }

    #[test]
    fn text_types_travel_as_text() {
        for t in [
            "application/json",
            "text/plain; charset=utf-8",
            "application/hal+json",
            "application/xml",
            "application/x-www-form-urlencoded",
        ] {
            assert!(is_text_type(t), "{t}");
        }
        for t in ["application/octet-stream", "image/png", "application/pdf"] {
            assert!(!is_text_type(t), "{t}");
        }
        let mut headers = HeaderMap::new();
        assert_eq!(body(&headers, &Bytes::new()), (None, false));
        assert_eq!(
            body(&headers, &Bytes::from_static(b"hi")),
            (Some("hi".into()), false)
        );
        assert_eq!(
            body(&headers, &Bytes::from_static(&[0xff, 0])),
            (Some("/wA=".into()), true)
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("image/png"));
        assert_eq!(
            body(&headers, &Bytes::from_static(b"hi")),
            (Some("aGk=".into()), true)
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert_eq!(
            body(&headers, &Bytes::from_static(b"hi")),
            (Some("aGk=".into()), true)
        );
    }
}
