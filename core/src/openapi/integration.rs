//! `x-amazon-apigateway-integration` (developer guide, "x-amazon-apigateway-integration
//! object") and `components/x-amazon-apigateway-integrations` ("x-amazon-apigateway-integrations
//! object") into native integrations: `aws_proxy` (a Lambda function, run by the plugin the
//! functions file names), `http_proxy` and `mock`.

use serde_json::{json, Map, Value};

use super::context::{integer_field, object, string_field, Ctx};
use super::WarningKind;
use crate::error::{Error, KeyPath};

/// Where `$ref`s to shared integrations point.
const INTEGRATIONS_REF: &str = "#/components/x-amazon-apigateway-integrations/";

/// The native `integration` of a route whose operation has `value` (at `at`) as its
/// `x-amazon-apigateway-integration`: the name of a shared integration, or one written inline.
pub(super) fn route_integration(
    ctx: &mut Ctx<'_>,
    value: &Value,
    at: &KeyPath,
) -> Result<Value, Error> {
    let fields = object(value, at)?;
    let Some(reference) = fields.get("$ref") else {
        return translate(ctx, fields, at);
    };
    let name = reference
        .as_str()
        .and_then(|r| r.strip_prefix(INTEGRATIONS_REF))
        .filter(|name| !name.is_empty() && !name.contains('/'))
        .ok_or_else(|| {
            Error::config(
                at.key("$ref"),
                format!("expected a reference to {INTEGRATIONS_REF}NAME"),
            )
        })?;
    if !ctx.integrations.contains_key(name) {
        let source = KeyPath::root()
            .key("components")
            .key("x-amazon-apigateway-integrations")
            .key(name);
        let shared = ctx
            .document
            .components
            .as_ref()
            .and_then(|c| c.extensions.get("x-amazon-apigateway-integrations"))
            .and_then(|all| all.get(name))
            .cloned()
            .ok_or_else(|| {
                Error::config(
                    at.key("$ref"),
                    format!(
                        "components.x-amazon-apigateway-integrations has no integration \"{name}\""
                    ),
                )
            })?;
        let native = translate(ctx, object(&shared, &source)?, &source)?;
        let native_at = KeyPath::root().key("integrations").key(name);
        ctx.report.origin(&native_at, &source);
        ctx.integrations.insert(name.to_owned(), native);
    }
    Ok(Value::String(name.to_owned()))
}

/// A REST route's `cacheKeyParameters`, written on its integration (inline, or the shared one
/// `value` refers to), with where they were written; `None` when there are none or the API is
/// an HTTP API (whose integrations warn about them: HTTP APIs have no cache).
pub(super) fn cache_key_parameters(
    ctx: &Ctx<'_>,
    value: &Value,
    at: &KeyPath,
) -> Result<Option<(Value, KeyPath)>, Error> {
    if !ctx.rest() {
        return Ok(None);
    }
    let shared;
    let (fields, at) = match value
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix(INTEGRATIONS_REF))
    {
        Some(name) => {
            shared = ctx
                .document
                .components
                .as_ref()
                .and_then(|c| c.extensions.get("x-amazon-apigateway-integrations"))
                .and_then(|all| all.get(name));
            let source = KeyPath::root()
                .key("components")
                .key("x-amazon-apigateway-integrations")
                .key(name);
            (shared, source)
        }
        None => (Some(value), at.clone()),
    };
    let Some(keys) = fields.and_then(|f| f.get("cacheKeyParameters")) else {
        return Ok(None);
    };
    let at = at.key("cacheKeyParameters");
    let list = keys
        .as_array()
        .filter(|list| list.iter().all(Value::is_string))
        .ok_or_else(|| Error::config(at.clone(), "expected a list of request parameters"))?;
    Ok((!list.is_empty()).then(|| (keys.clone(), at)))
}

/// The answer of a route whose integration Portico cannot run: what API Gateway answers when
/// an integration fails (500).
pub(super) fn failing_integration(ctx: &Ctx<'_>) -> Value {
    let message = if ctx.rest() {
        "Internal server error"
    } else {
        "Internal Server Error"
    };
    json!({
        "type": "mock",
        "statusCode": 500,
        "body": json!({ "message": message }).to_string(),
    })
}

/// One integration object into a native integration (or the failing stand-in, warned about).
fn translate(ctx: &mut Ctx<'_>, fields: &Map<String, Value>, at: &KeyPath) -> Result<Value, Error> {
    let kind = string_field(fields, "type", at)?
        .ok_or_else(|| Error::config(at.key("type"), "required: aws_proxy, http_proxy or mock"))?
        .to_ascii_lowercase();
    if let Some(subtype) = string_field(fields, "integrationSubtype", at)? {
        return Ok(unsupported(
            ctx,
            at,
            &format!("AWS service integrations ({subtype}) are not supported"),
        ));
    }
    if string_field(fields, "connectionType", at)?
        .is_some_and(|c| c.eq_ignore_ascii_case("VPC_LINK"))
    {
        return Ok(unsupported(ctx, at, "VPC links are not supported"));
    }
    match kind.as_str() {
        "aws_proxy" => aws_proxy(ctx, fields, at),
        "http_proxy" => http_proxy(ctx, fields, at),
        "mock" => mock(ctx, fields, at),
        "aws" | "http" => Ok(unsupported(
            ctx,
            at,
            &format!(
                "integrations of type {kind} (with mapping templates) are not supported; aws_proxy, http_proxy and mock are"
            ),
        )),
        other => Err(Error::config(
            at.key("type"),
            format!("unknown integration type \"{other}\": expected aws_proxy, http_proxy, mock, aws or http"),
        )),
    }
}

/// Warns that the integration at `at` cannot run, and stands in for it.
fn unsupported(ctx: &mut Ctx<'_>, at: &KeyPath, why: &str) -> Value {
    ctx.warn(
        WarningKind::UnsupportedIntegration,
        at,
        format!("{why}: the route answers 500"),
    );
    failing_integration(ctx)
}

/// Fields every integration type may carry that change nothing Portico does: IAM
/// credentials (plugins need no role), the default connection type, and cache namespaces:
/// Portico's response cache keeps each route's answers apart, which is AWS's default namespace
/// (the resource id); a namespace shared by several resources to share their entries is not
/// followed.
const INERT_FIELDS: [&str; 5] = [
    "type",
    "credentials",
    "cacheNamespace",
    "connectionType",
    "description",
];

/// Warns about every field of `fields` outside `known` (and the inert ones).
fn warn_unknown(ctx: &mut Ctx<'_>, fields: &Map<String, Value>, known: &[&str], at: &KeyPath) {
    for (key, value) in fields {
        if known.contains(&key.as_str()) || INERT_FIELDS.contains(&key.as_str()) {
            continue;
        }
        // A REST API's cache keys are the route's (`route()` reads them, `cache_key_parameters`);
        // an empty list says nothing (AWS's exports write one).
        if key == "cacheKeyParameters"
            && (ctx.rest() || value.as_array().is_some_and(Vec::is_empty))
        {
            continue;
        }
        ctx.warn(
            WarningKind::UnsupportedField,
            &at.key(key),
            "not supported by Portico: ignored",
        );
    }
}

/// Warns about every field of a proxy integration (`aws_proxy`, `http_proxy`) outside the ones
/// both read, `extra`, and the protocol's own (`protocol_fields`).
fn warn_unknown_proxy(
    ctx: &mut Ctx<'_>,
    fields: &Map<String, Value>,
    extra: &[&str],
    at: &KeyPath,
) {
    const PROXY_FIELDS: [&str; 6] = [
        "uri",
        "httpMethod",
        "payloadFormatVersion",
        "timeoutInMillis",
        "passthroughBehavior",
        "responses",
    ];
    let known: Vec<&str> = PROXY_FIELDS
        .iter()
        .chain(extra)
        .chain(protocol_fields(ctx))
        .copied()
        .collect();
    warn_unknown(ctx, fields, &known, at);
}

/// The timeout, checked where the document says it (API Gateway's 50 ms to 29 s).
fn timeout(fields: &Map<String, Value>, at: &KeyPath) -> Result<Option<u64>, Error> {
    let timeout = integer_field(fields, "timeoutInMillis", at)?;
    if let Some(ms) = timeout {
        if !(50..=29_000).contains(&ms) {
            return Err(Error::config(
                at.key("timeoutInMillis"),
                format!("{ms} is not between 50 and 29000 milliseconds (API Gateway's integration timeout)"),
            ));
        }
    }
    Ok(timeout)
}

/// `"1.0"` or `"2.0"`, written as a string or a number.
fn payload_format_version(
    fields: &Map<String, Value>,
    at: &KeyPath,
) -> Result<Option<Value>, Error> {
    match fields.get("payloadFormatVersion") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s == "1.0" || s == "2.0" => Ok(Some(Value::String(s.clone()))),
        Some(Value::Number(n)) if n.as_f64() == Some(1.0) || n.as_f64() == Some(2.0) => Ok(Some(
            Value::String(format!("{:.1}", n.as_f64().unwrap_or(1.0))),
        )),
        Some(_) => Err(Error::config(
            at.key("payloadFormatVersion"),
            "expected \"1.0\" or \"2.0\"",
        )),
    }
}

/// A Lambda proxy integration: the plugin the functions file names for the function.
fn aws_proxy(ctx: &mut Ctx<'_>, fields: &Map<String, Value>, at: &KeyPath) -> Result<Value, Error> {
    // Request and response mappings do not apply to proxy integrations (AWS ignores them too).
    warn_unknown_proxy(ctx, fields, &[], at);
    let uri = string_field(fields, "uri", at)?
        .ok_or_else(|| Error::config(at.key("uri"), "required for aws_proxy integrations"))?;
    let plugin = plugin_for(ctx, uri, &at.key("uri"))?;
    let mut native = json!({ "type": "plugin", "plugin": plugin });
    if let Some(version) = payload_format_version(fields, at)? {
        native["payloadFormatVersion"] = version;
    }
    if let Some(ms) = timeout(fields, at)? {
        native["timeoutMs"] = json!(ms);
    }
    protocol_settings(ctx, fields, at, &mut native);
    Ok(native)
}

/// The integration fields one protocol adds to those of every proxy integration: a REST API's
/// `contentHandling` ("x-amazon-apigateway-integration object": "Request payload encoding
/// conversion types"), an HTTP API's parameter mapping (`requestParameters`,
/// `responseParameters`: "x-amazon-apigateway-integration object", "For HTTP APIs ...").
fn protocol_fields(ctx: &Ctx<'_>) -> &'static [&'static str] {
    if ctx.rest() {
        &["contentHandling"]
    } else {
        &["requestParameters", "responseParameters"]
    }
}

/// Copies `protocol_fields` onto the native integration, whose own keys have the same names
/// and meanings; compiling the definition checks their values (and the import explains a
/// refusal at the document's key path).
fn protocol_settings(
    ctx: &mut Ctx<'_>,
    fields: &Map<String, Value>,
    at: &KeyPath,
    native: &mut Value,
) {
    for key in protocol_fields(ctx) {
        let Some(value) = fields.get(*key) else {
            continue;
        };
        if *key != "requestParameters" {
            native[*key] = value.clone();
            continue;
        }
        // Request mappings: an HTTP API's operations (`append:header.x`); REST-style
        // `integration.request.*` mappings are `rest_mappings`' to judge.
        let Some(mappings) = value.as_object() else {
            native[*key] = value.clone();
            continue;
        };
        let operations: Map<String, Value> = mappings
            .iter()
            .filter(|(target, _)| is_http_mapping(target))
            .map(|(target, source)| (target.clone(), source.clone()))
            .collect();
        if !operations.is_empty() {
            native[*key] = Value::Object(operations);
        }
        rest_mappings(ctx, mappings, &at.key("requestParameters"));
    }
}

/// Whether `target` is an HTTP API's parameter-mapping operation (`append:header.x`,
/// `overwrite:path`, `remove:querystring.q`), not a REST API's `integration.request.*` target.
fn is_http_mapping(target: &str) -> bool {
    ["append:", "overwrite:", "remove:"]
        .iter()
        .any(|op| target.starts_with(op))
}

/// REST-style request mappings (`integration.request.path.proxy: method.request.path.proxy`):
/// identity mappings name the path parameters an HTTP proxy URI uses, which is what the
/// native integration does anyway; any other is warned about and ignored.
fn rest_mappings(ctx: &mut Ctx<'_>, mappings: &Map<String, Value>, at: &KeyPath) {
    for (target, source) in mappings {
        // An HTTP API's operations are copied by `protocol_settings`; a REST API has none.
        if !ctx.rest() && is_http_mapping(target) {
            continue;
        }
        let identity = target
            .strip_prefix("integration.request.")
            .zip(
                source
                    .as_str()
                    .and_then(|s| s.strip_prefix("method.request.")),
            )
            .is_some_and(|(t, s)| t == s);
        if !identity {
            ctx.warn(
                WarningKind::UnsupportedField,
                &at.key(target),
                "parameter mapping is not supported: ignored",
            );
        }
    }
}

/// An HTTP proxy integration, onto the native keys `{type: http_proxy, uri, method,
/// timeoutMs}`; `${stageVariables.X}` and `{proxy}` in the URI are the native integration's to
/// substitute per request.
fn http_proxy(
    ctx: &mut Ctx<'_>,
    fields: &Map<String, Value>,
    at: &KeyPath,
) -> Result<Value, Error> {
    warn_unknown_proxy(ctx, fields, &["requestParameters"], at);
    let uri = string_field(fields, "uri", at)?
        .ok_or_else(|| Error::config(at.key("uri"), "required for http_proxy integrations"))?;
    let uri = aws_variables(uri);
    let method = string_field(fields, "httpMethod", at)?.unwrap_or("ANY");
    // On a REST API, `requestParameters` are REST mappings (an HTTP API's go through
    // `protocol_settings`, which judges the REST-style ones among them the same way).
    if let Some(mappings) = fields
        .get("requestParameters")
        .and_then(Value::as_object)
        .filter(|_| ctx.rest())
    {
        rest_mappings(ctx, mappings, &at.key("requestParameters"));
    }
    let mut native =
        json!({ "type": "http_proxy", "uri": uri, "method": method.to_ascii_uppercase() });
    if let Some(ms) = timeout(fields, at)? {
        native["timeoutMs"] = json!(ms);
    }
    protocol_settings(ctx, fields, at, &mut native);
    Ok(native)
}

/// A mock integration, as API Gateway answers it: the request template's `statusCode` picks an
/// integration response (by its selection pattern, else `default`), whose `statusCode`, static
/// header mappings and template are the answer. Templates that compute anything (VTL) are not
/// supported.
fn mock(ctx: &mut Ctx<'_>, fields: &Map<String, Value>, at: &KeyPath) -> Result<Value, Error> {
    warn_unknown(
        ctx,
        fields,
        &[
            "requestTemplates",
            "responses",
            "passthroughBehavior",
            "timeoutInMillis",
        ],
        at,
    );
    let selected = match one_template(fields.get("requestTemplates"), &at.key("requestTemplates"))?
    {
        None => 200,
        Some((template, template_at)) => {
            match serde_json::from_str::<Value>(template.trim())
                .ok()
                .and_then(|v| v.get("statusCode").cloned())
            {
                Some(Value::Number(n)) if n.as_u64().is_some_and(|c| (100..=599).contains(&c)) => {
                    n.as_u64().unwrap_or(200)
                }
                _ => {
                    return Ok(unsupported(
                        ctx,
                        &template_at,
                        "a mock request template other than {\"statusCode\": NNN} (VTL) is not supported",
                    ))
                }
            }
        }
    };
    let responses_at = at.key("responses");
    let mut native = Map::new();
    native.insert("type".into(), json!("mock"));
    native.insert("statusCode".into(), json!(selected));
    let Some(responses) = fields.get("responses") else {
        return Ok(Value::Object(native));
    };
    let responses = object(responses, &responses_at)?;
    let code = selected.to_string();
    let mut chosen = None;
    for (pattern, response) in responses {
        if pattern == "default" {
            continue;
        }
        let regex = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
            Error::config(
                responses_at.key(pattern),
                format!("not a valid selection pattern: {e}"),
            )
        })?;
        if regex.is_match(&code) {
            chosen = Some((pattern.as_str(), response));
            break;
        }
    }
    let Some((pattern, response)) =
        chosen.or_else(|| responses.get("default").map(|r| ("default", r)))
    else {
        return Ok(Value::Object(native));
    };
    let response_at = responses_at.key(pattern);
    let response = object(response, &response_at)?;
    for key in response.keys() {
        if ![
            "statusCode",
            "responseParameters",
            "responseTemplates",
            "selectionPattern",
        ]
        .contains(&key.as_str())
        {
            ctx.warn(
                WarningKind::UnsupportedField,
                &response_at.key(key),
                "not supported by Portico: ignored",
            );
        }
    }
    if let Some(status) = integer_field(response, "statusCode", &response_at)? {
        native.insert("statusCode".into(), json!(status));
    }
    if let Some(parameters) = response.get("responseParameters") {
        let headers = static_headers(
            ctx,
            object(parameters, &response_at.key("responseParameters"))?,
            "method.response.header.",
            &response_at.key("responseParameters"),
        );
        if !headers.is_empty() {
            native.insert("headers".into(), Value::Object(headers));
        }
    }
    if let Some((template, template_at)) = one_template(
        response.get("responseTemplates"),
        &response_at.key("responseTemplates"),
    )? {
        match static_template(template) {
            Some(body) => {
                native.insert("body".into(), Value::String(body));
            }
            None => {
                return Ok(unsupported(
                    ctx,
                    &template_at,
                    "mapping templates (VTL) are not supported; a template may use only $stageVariables.NAME",
                ))
            }
        }
    }
    Ok(Value::Object(native))
}

/// The template for `application/json`, else the only one.
fn one_template<'v>(
    templates: Option<&'v Value>,
    at: &KeyPath,
) -> Result<Option<(&'v str, KeyPath)>, Error> {
    let Some(templates) = templates else {
        return Ok(None);
    };
    let templates = object(templates, at)?;
    let entry = templates.get_key_value("application/json").or_else(|| {
        (templates.len() == 1)
            .then(|| templates.iter().next())
            .flatten()
    });
    match entry {
        None => Ok(None),
        Some((media, Value::String(text))) => Ok(Some((text, at.key(media)))),
        Some((media, Value::Null)) => Ok(Some(("", at.key(media)))),
        Some((media, _)) => Err(Error::config(
            at.key(media),
            "expected a template (a string)",
        )),
    }
}

/// A template that computes nothing, with `$stageVariables.NAME` written the native way;
/// `None` when it uses VTL (directives, `$input`, `$context`, `$util`, ...).
fn static_template(template: &str) -> Option<String> {
    let stage_variable = regex::Regex::new(
        r"\$(?:\{stageVariables\.([A-Za-z0-9_]+)\}|stageVariables\.([A-Za-z0-9_]+))",
    )
    .ok()?;
    let rewritten = stage_variable.replace_all(template, |c: &regex::Captures<'_>| {
        let name = c.get(1).or_else(|| c.get(2)).map_or("", |m| m.as_str());
        format!("\u{0}{{stageVariables.{name}}}")
    });
    if rewritten.contains('$') || rewritten.lines().any(|l| l.trim_start().starts_with('#')) {
        return None;
    }
    Some(rewritten.replace('\u{0}', "$"))
}

/// Static header mappings (`PREFIX.NAME: "'value'"`) as headers; other mappings are warned
/// about and left out.
fn static_headers(
    ctx: &mut Ctx<'_>,
    mappings: &Map<String, Value>,
    prefix: &str,
    at: &KeyPath,
) -> Map<String, Value> {
    let mut headers = Map::new();
    for (target, source) in mappings {
        let name = target.strip_prefix(prefix);
        let value = source
            .as_str()
            .map(str::trim)
            .and_then(|s| s.strip_prefix('\'')?.strip_suffix('\''));
        match (name, value) {
            (Some(name), Some(value)) if !name.is_empty() => {
                headers.insert(name.to_owned(), Value::String(value.to_owned()));
            }
            _ => ctx.warn(
                WarningKind::UnsupportedField,
                &at.key(target),
                "only static header values ('...') are supported: ignored",
            ),
        }
    }
    headers
}

/// The AWS variables API Gateway resolves at import ("AWS variables for OpenAPI import"), with
/// the native definition's defaults (`us-east-1`, `123456789012`, partition `aws`).
pub(super) fn aws_variables(text: &str) -> String {
    text.replace("${AWS::Region}", "us-east-1")
        .replace("${AWS::AccountId}", "123456789012")
        .replace("${AWS::Partition}", "aws")
}

/// The plugin that runs the Lambda function a URI names: the integration URI
/// (`arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/FUNCTION_ARN/invocations`), the
/// function's ARN itself (HTTP APIs), or an authorizer's `authorizerUri`. The function is found
/// in the functions file by its name (`NAME:QUALIFIER` first, for an alias or version); a
/// CloudFormation placeholder (`${GetUserFn}`, `${GetUserFn.Arn}`) names it too, and
/// `${stageVariables.X}` is resolved with the served stage's variables, as AWS resolves it for
/// each stage. Adds the plugin to the definition; returns its name.
pub(super) fn plugin_for(ctx: &mut Ctx<'_>, uri: &str, at: &KeyPath) -> Result<String, Error> {
    let uri = aws_variables(uri);
    let uri = stage_variables(ctx, &uri, at)?;
    let function = uri
        .split_once("/functions/")
        .filter(|(head, _)| head.contains(":apigateway:") && head.contains(":lambda:path/"))
        .map(|(_, tail)| tail.strip_suffix("/invocations").unwrap_or(tail))
        .unwrap_or(&uri);
    let (name, qualifier) = function_name(function).ok_or_else(|| {
        Error::config(
            at.clone(),
            format!("\"{uri}\" names no Lambda function: expected arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/arn:aws:lambda:REGION:ACCOUNT:function:NAME/invocations or the function's ARN"),
        )
    })?;
    let candidates: Vec<String> = match qualifier {
        Some(q) => vec![format!("{name}:{q}"), name.to_owned()],
        None => vec![name.to_owned()],
    };
    let found = candidates.iter().find_map(|c| {
        ctx.functions
            .functions
            .get(c)
            .map(|p| (c.clone(), p.clone()))
    });
    let Some((key, plugin)) = found else {
        return Err(Error::config(
            at.clone(),
            format!(
                "Lambda function \"{name}\" has no plugin: name one in the functions file (portico-serve --functions FILE): functions: {{{name}: {{path: FILE.wasm}}}}"
            ),
        ));
    };
    if !ctx.plugins.contains_key(&key) {
        let value = serde_json::to_value(&plugin)
            .map_err(|e| Error::config(at.clone(), format!("cannot use the plugin: {e}")))?;
        ctx.plugins.insert(key.clone(), value);
        let native = KeyPath::root().key("plugins").key(&key);
        let source = KeyPath::root().key("functions").key(&key);
        let file = ctx.functions.file().map(std::path::Path::to_path_buf);
        ctx.report.origin_in(&native, &source, file.as_deref());
    }
    Ok(key)
}

/// `${stageVariables.NAME}` replaced by the stage's value; an undefined one is an error (the
/// function could never be found).
fn stage_variables(ctx: &Ctx<'_>, text: &str, at: &KeyPath) -> Result<String, Error> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${stageVariables.") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "${stageVariables.".len()..];
        let end = after
            .find('}')
            .ok_or_else(|| Error::config(at.clone(), "unterminated ${stageVariables."))?;
        let name = &after[..end];
        let value = ctx.stage_variables.get(name).ok_or_else(|| {
            Error::config(
                at.clone(),
                format!("stage variable \"{name}\" is not defined (stageVariables in the functions file)"),
            )
        })?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The name (and qualifier) of a Lambda function ARN, a bare name, or a CloudFormation
/// placeholder.
fn function_name(function: &str) -> Option<(&str, Option<&str>)> {
    if let Some(inner) = function
        .strip_prefix("${")
        .and_then(|f| f.strip_suffix('}'))
    {
        let name = inner.strip_suffix(".Arn").unwrap_or(inner);
        return (!name.is_empty() && !name.contains(['$', '{', '}'])).then_some((name, None));
    }
    if let Some(rest) = function.strip_prefix("arn:") {
        // PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
        let parts: Vec<&str> = rest.split(':').collect();
        if parts.len() < 6 || parts[1] != "lambda" || parts[4] != "function" {
            return None;
        }
        let name = parts[5];
        let qualifier = parts.get(6).copied();
        return (!name.is_empty() && parts.len() <= 7).then_some((name, qualifier));
    }
    let valid = !function.is_empty()
        && function
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    valid.then_some((function, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_from_arns_and_placeholders() {
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:HelloWorld"),
            Some(("HelloWorld", None))
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:fn:prod"),
            Some(("fn", Some("prod")))
        );
        assert_eq!(function_name("${GetUserFn}"), Some(("GetUserFn", None)));
        assert_eq!(function_name("${GetUserFn.Arn}"), Some(("GetUserFn", None)));
        assert_eq!(function_name("my-function"), Some(("my-function", None)));
        assert_eq!(function_name("arn:aws:s3:::bucket"), None);
        assert_eq!(function_name("${}"), None);
        assert_eq!(function_name("http://example.com"), None);
    }

    #[test]
    fn templates_that_compute_are_refused() {
        assert_eq!(
            static_template(r#"{"table": "$stageVariables.TABLE"}"#).as_deref(),
            Some(r#"{"table": "${stageVariables.TABLE}"}"#)
        );
        assert_eq!(static_template(r#"{"id": "$context.requestId"}"#), None);
        assert_eq!(static_template("#set($a = 1)\n{}"), None);
        assert_eq!(
            static_template(r#"{"ok": true}"#).as_deref(),
            Some(r#"{"ok": true}"#)
        );
    }
}
