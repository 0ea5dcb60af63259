//! Export: a native definition written back as an OpenAPI 3.0 document with API Gateway's
//! extensions and a functions file, the reverse of the import (AWS exports one stage of an API:
//! `GetExport` on `restapis/{id}/stages/{stage}/exports/oas30`). Importing the export gives the
//! definition back (tests/e2e/openapi.rs checks it on every twin in tests/data).
//!
//! Works on the definition's JSON shape, as the import does, so integration types the native
//! definition gains (`http_proxy`) export without a change here.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::FunctionsFile;
use crate::config::ApiDefinition;
use crate::error::{Error, KeyPath};

/// An exported API: the OpenAPI document and the functions file that goes with it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OpenApiExport {
    /// The OpenAPI 3.0 document (JSON; write it with `serde_json` or `yaml_serde`).
    pub document: Value,
    /// The plugins, JWT keys, stage variables and API keys the document refers to.
    pub functions: FunctionsFile,
    /// Settings of the definition that OpenAPI cannot carry (throttles, usage plans, access
    /// logs, stores, ...), left out of the export.
    pub left_out: Vec<KeyPath>,
}

/// Top-level settings the export carries.
const EXPORTED: [&str; 14] = [
    "name",
    "protocol",
    "apiId",
    "plugins",
    "integrations",
    "authorizers",
    "models",
    "routes",
    "cors",
    "stages",
    "apiKeys",
    "gatewayResponses",
    "binaryMediaTypes",
    "region",
];

impl ApiDefinition {
    /// The API as an OpenAPI 3.0 document, its stage `stage` (whose variables go in the
    /// functions file). What OpenAPI cannot carry is listed in [`OpenApiExport::left_out`].
    pub fn to_openapi(&self, stage: &str) -> Result<OpenApiExport, Error> {
        let native = serde_json::to_value(self)
            .map_err(|e| Error::config(KeyPath::root(), e.to_string()))?;
        let empty = Map::new();
        let get = |key: &str| native.get(key).and_then(Value::as_object).unwrap_or(&empty);
        let mut left_out = Vec::new();
        for key in native.as_object().into_iter().flat_map(Map::keys) {
            if !EXPORTED.contains(&key.as_str()) && key != "accountId" {
                left_out.push(KeyPath::root().key(key));
            }
        }
        let stage_definition = get("stages").get(stage).ok_or_else(|| {
            Error::config(
                KeyPath::root().key("stages"),
                format!("no stage \"{stage}\" to export"),
            )
        })?;
        for key in stage_definition.as_object().into_iter().flat_map(Map::keys) {
            if key != "variables" {
                left_out.push(KeyPath::root().key("stages").key(stage).key(key));
            }
        }
        let arns = Arns {
            region: self.region.clone().unwrap_or_else(|| "us-east-1".into()),
            account: self
                .account_id
                .clone()
                .unwrap_or_else(|| "123456789012".into()),
        };
        let mut document = Map::new();
        document.insert("openapi".into(), json!("3.0.1"));
        document.insert(
            "info".into(),
            json!({ "title": self.name, "version": "1.0" }),
        );

        let mut integrations = Map::new();
        for (name, integration) in get("integrations") {
            let at = KeyPath::root().key("integrations").key(name);
            integrations.insert(name.clone(), integration_of(integration, &arns, &at)?);
        }
        let mut schemes = Map::new();
        for (name, authorizer) in get("authorizers") {
            let at = KeyPath::root().key("authorizers").key(name);
            schemes.insert(name.clone(), scheme_of(authorizer, &arns, &at)?);
        }
        let mut schemas = Map::new();
        let base = format!(
            "https://apigateway.amazonaws.com/restapis/{}/models/",
            self.api_id.as_deref().unwrap_or(&self.name)
        );
        for (name, model) in get("models") {
            schemas.insert(name.clone(), openapi_schema(model, &base));
        }

        let mut validators: BTreeMap<&'static str, (bool, bool)> = BTreeMap::new();
        let mut paths: Map<String, Value> = Map::new();
        for (route_key, route) in get("routes") {
            let at = KeyPath::root().key("routes").key(route_key);
            let (method, path) = match route_key.split_once(' ') {
                Some((method, path)) => (method.to_ascii_lowercase(), path.to_owned()),
                None => ("any".to_owned(), "/$default".to_owned()),
            };
            let mut operation = Map::new();
            // A REST route's cache keys go on its integration, as AWS keeps them
            // ("x-amazon-apigateway-integration object": cacheKeyParameters), in AWS's
            // `method.request.*` spelling; a shared integration is then written inline, since
            // a `$ref` cannot carry them.
            let cache_keys: Vec<String> = route
                .get("cacheKeyParameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|key| match key.strip_prefix("$request.") {
                    Some(rest) => format!("method.request.{rest}"),
                    None => key.to_owned(),
                })
                .collect();
            let integration = match route.get("integration") {
                Some(Value::String(name)) if cache_keys.is_empty() => json!({
                    "$ref": format!("#/components/x-amazon-apigateway-integrations/{name}")
                }),
                Some(Value::String(name)) => {
                    let shared = get("integrations").get(name).ok_or_else(|| {
                        Error::config(at.key("integration"), format!("no integration \"{name}\""))
                    })?;
                    let at = KeyPath::root().key("integrations").key(name);
                    integration_of(shared, &arns, &at)?
                }
                Some(inline) => integration_of(inline, &arns, &at.key("integration"))?,
                None => return Err(Error::config(at.key("integration"), "missing")),
            };
            let mut integration = integration;
            if !cache_keys.is_empty() {
                integration["cacheKeyParameters"] = json!(cache_keys);
            }
            operation.insert("x-amazon-apigateway-integration".into(), integration);
            if route_key == "$default" {
                operation.insert("isDefaultRoute".into(), json!(true));
            }
            let mut parameters = Vec::new();
            for (key, required) in route
                .get("requestParameters")
                .and_then(Value::as_object)
                .unwrap_or(&empty)
            {
                let bare = key.strip_prefix("method.request.").unwrap_or(key);
                let (kind, name) = bare.split_once('.').unwrap_or(("", bare));
                let location = match kind {
                    "querystring" => "query",
                    "path" => "path",
                    _ => "header",
                };
                parameters.push(json!({
                    "name": name, "in": location, "required": required, "schema": { "type": "string" }
                }));
            }
            // A cache key names a method request parameter (AWS refuses a key the method does
            // not declare): one the route does not list is declared, not required.
            for key in &cache_keys {
                let Some((kind, name)) = key
                    .strip_prefix("method.request.")
                    .and_then(|k| k.split_once('.'))
                else {
                    continue;
                };
                let location = match kind {
                    "querystring" | "multivaluequerystring" => "query",
                    "header" | "multivalueheader" => "header",
                    _ => continue,
                };
                let declared = parameters.iter().any(|p| {
                    p["in"] == location
                        && p["name"]
                            .as_str()
                            .is_some_and(|n| n.eq_ignore_ascii_case(name))
                });
                if !declared {
                    parameters.push(json!({
                        "name": name, "in": location, "required": false, "schema": { "type": "string" }
                    }));
                }
            }
            if !parameters.is_empty() {
                operation.insert("parameters".into(), Value::Array(parameters));
            }
            // `requestModel` is written as the application/json schema (what the import reads
            // back into `requestModel`); `requestModels` keeps its media types, `$default`
            // as `*/*`.
            let mut content = serde_json::Map::new();
            let single = route.get("requestModel").and_then(Value::as_str);
            let by_type = route.get("requestModels").and_then(Value::as_object);
            let entries = single.map(|m| ("application/json", m)).into_iter().chain(
                by_type
                    .into_iter()
                    .flatten()
                    .filter_map(|(media, m)| Some((media.as_str(), m.as_str()?))),
            );
            for (media, model) in entries {
                let media = if media == "$default" { "*/*" } else { media };
                content.insert(
                    media.to_owned(),
                    json!({ "schema": { "$ref": format!("#/components/schemas/{model}") } }),
                );
            }
            let has_model = !content.is_empty();
            if has_model {
                operation.insert("requestBody".into(), json!({ "content": content }));
            }
            // What the native route validates (its defaults: the body when it has a model,
            // its required parameters), as a named validator.
            let validate = route.get("validate").cloned().unwrap_or(Value::Null);
            let body = validate
                .get("body")
                .and_then(Value::as_bool)
                .unwrap_or(has_model);
            let params = validate
                .get("parameters")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let declared = has_model || operation.contains_key("parameters");
            if declared && (body || params) {
                let name = match (body, params) {
                    (true, true) => "all",
                    (true, false) => "body-only",
                    _ => "params-only",
                };
                validators.insert(name, (body, params));
                operation.insert("x-amazon-apigateway-request-validator".into(), json!(name));
            }
            let mut requirement = Map::new();
            if let Some(authorizer) = route.get("authorizer").and_then(Value::as_str) {
                let scopes = route
                    .get("authorizationScopes")
                    .cloned()
                    .unwrap_or_else(|| json!([]));
                requirement.insert(authorizer.to_owned(), scopes);
            }
            if route.get("apiKeyRequired") == Some(&Value::Bool(true)) {
                requirement.insert("api_key".into(), json!([]));
                schemes.insert(
                    "api_key".into(),
                    json!({ "type": "apiKey", "name": "x-api-key", "in": "header" }),
                );
            }
            if !requirement.is_empty() {
                operation.insert("security".into(), json!([requirement]));
            }
            let key = if method == "any" {
                super::ANY_METHOD.to_owned()
            } else {
                method
            };
            let item = paths
                .entry(path)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(item) = item.as_object_mut() {
                item.insert(key, Value::Object(operation));
            }
        }
        document.insert("paths".into(), Value::Object(paths));
        if !validators.is_empty() {
            let map: Map<String, Value> = validators
                .into_iter()
                .map(|(name, (body, params))| {
                    (
                        name.to_owned(),
                        json!({ "validateRequestBody": body, "validateRequestParameters": params }),
                    )
                })
                .collect();
            document.insert(
                "x-amazon-apigateway-request-validators".into(),
                Value::Object(map),
            );
        }
        if let Some(cors) = native.get("cors") {
            document.insert("x-amazon-apigateway-cors".into(), cors.clone());
        }
        if let Some(types) = native.get("binaryMediaTypes") {
            document.insert(
                "x-amazon-apigateway-binary-media-types".into(),
                types.clone(),
            );
        }
        if !get("gatewayResponses").is_empty() {
            let mut responses = Map::new();
            for (kind, response) in get("gatewayResponses") {
                let mut out = Map::new();
                if let Some(status) = response.get("statusCode") {
                    out.insert("statusCode".into(), status.clone());
                }
                if let Some(headers) = response.get("headers").and_then(Value::as_object) {
                    let at = KeyPath::root()
                        .key("gatewayResponses")
                        .key(kind)
                        .key("headers");
                    out.insert(
                        "responseParameters".into(),
                        gateway_response_mappings(headers, &at, &mut left_out),
                    );
                }
                if let Some(body) = response.get("body") {
                    out.insert(
                        "responseTemplates".into(),
                        json!({ "application/json": body }),
                    );
                }
                responses.insert(kind.clone(), Value::Object(out));
            }
            document.insert(
                "x-amazon-apigateway-gateway-responses".into(),
                Value::Object(responses),
            );
        }
        let mut components = Map::new();
        if !schemas.is_empty() {
            components.insert("schemas".into(), Value::Object(schemas));
        }
        if !schemes.is_empty() {
            components.insert("securitySchemes".into(), Value::Object(schemes));
        }
        if !integrations.is_empty() {
            components.insert(
                "x-amazon-apigateway-integrations".into(),
                Value::Object(integrations),
            );
        }
        if !components.is_empty() {
            document.insert("components".into(), Value::Object(components));
        }

        let mut functions = FunctionsFile {
            functions: self.plugins.clone(),
            api_keys: self.api_keys.clone(),
            ..FunctionsFile::default()
        };
        if let Some(stage) = self.stages.get(stage) {
            functions.stage_variables = stage.variables.clone();
        }
        for (name, authorizer) in self.authorizers.iter() {
            if let Some(jwks) = &authorizer.jwks {
                let _ = functions.jwks.insert(name, jwks.clone());
            }
        }
        Ok(OpenApiExport {
            document: Value::Object(document),
            functions,
            left_out,
        })
    }
}

/// The region and account Lambda ARNs are written with.
struct Arns {
    region: String,
    account: String,
}

impl Arns {
    /// The API Gateway invocation URI of the function a plugin stands for (the function's
    /// name is the plugin's: `NAME` or `NAME:QUALIFIER`).
    fn lambda(&self, plugin: &str) -> String {
        let Arns { region, account } = self;
        format!("arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/arn:aws:lambda:{region}:{account}:function:{plugin}/invocations")
    }
}

/// `PREFIX.NAME: "'value'"` for each header.
fn static_mappings(prefix: &str, headers: &Map<String, Value>) -> Value {
    Value::Object(
        headers
            .iter()
            .map(|(name, value)| {
                (
                    format!("{prefix}{name}"),
                    json!(format!("'{}'", value.as_str().unwrap_or(""))),
                )
            })
            .collect(),
    )
}

/// A gateway response's native headers as `gatewayresponse.header.NAME` mappings in AWS's
/// spellings: request values and AWS's `stageVariables.X` / `context.X` as written, the native
/// `$stageVariables.X` / `$context.X` without the `$` (request-response-data-mappings.md: "The
/// "$" prefix is omitted in this syntax"), plain text as a `'static'` value. A template mixing
/// text and variables has no mapping expression: it is left out, and said so.
fn gateway_response_mappings(
    headers: &Map<String, Value>,
    at: &KeyPath,
    left_out: &mut Vec<KeyPath>,
) -> Value {
    use super::GATEWAY_HEADER_SOURCES as AS_WRITTEN;
    let mut out = Map::new();
    for (name, value) in headers {
        let text = value.as_str().unwrap_or("");
        let variable = |prefix: &str| {
            text.strip_prefix(prefix).filter(|rest| {
                !rest.is_empty()
                    && rest
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
            })
        };
        let quoted = text.starts_with('\'') && text.ends_with('\'') && text.len() >= 2;
        let mapping = if quoted || AS_WRITTEN.iter().any(|p| text.starts_with(p)) {
            Some(text.to_owned())
        } else if let Some(name) = variable("$stageVariables.") {
            Some(format!("stageVariables.{name}"))
        } else if let Some(name) = variable("$context.") {
            Some(format!("context.{name}"))
        } else if !text.contains('$') {
            Some(format!("'{text}'"))
        } else {
            None
        };
        match mapping {
            Some(mapping) => {
                out.insert(format!("gatewayresponse.header.{name}"), json!(mapping));
            }
            None => left_out.push(at.key(name)),
        }
    }
    Value::Object(out)
}

/// A native integration as an `x-amazon-apigateway-integration` object.
fn integration_of(native: &Value, arns: &Arns, at: &KeyPath) -> Result<Value, Error> {
    let kind = native.get("type").and_then(Value::as_str).unwrap_or("");
    let mut out = Map::new();
    match kind {
        "plugin" => {
            let plugin = native.get("plugin").and_then(Value::as_str).unwrap_or("");
            out.insert("type".into(), json!("aws_proxy"));
            out.insert("httpMethod".into(), json!("POST"));
            out.insert("uri".into(), json!(arns.lambda(plugin)));
            if let Some(version) = native.get("payloadFormatVersion") {
                out.insert("payloadFormatVersion".into(), version.clone());
            }
        }
        "http_proxy" => {
            out.insert("type".into(), json!("http_proxy"));
            if let Some(uri) = native.get("uri") {
                out.insert("uri".into(), uri.clone());
            }
            let method = native
                .get("method")
                .cloned()
                .unwrap_or_else(|| json!("ANY"));
            out.insert("httpMethod".into(), method);
        }
        "mock" => {
            let status = native
                .get("statusCode")
                .and_then(Value::as_u64)
                .unwrap_or(200);
            out.insert("type".into(), json!("mock"));
            out.insert(
                "requestTemplates".into(),
                json!({ "application/json": format!("{{\"statusCode\": {status}}}") }),
            );
            let mut response = Map::new();
            response.insert("statusCode".into(), json!(status.to_string()));
            if let Some(headers) = native.get("headers").and_then(Value::as_object) {
                response.insert(
                    "responseParameters".into(),
                    static_mappings("method.response.header.", headers),
                );
            }
            if let Some(body) = native.get("body").and_then(Value::as_str) {
                // The native `${stageVariables.X}` in a mapping template's spelling.
                let template = regex::Regex::new(r"\$\{stageVariables\.([A-Za-z0-9_]+)\}")
                    .map(|re| re.replace_all(body, "$$stageVariables.$1").into_owned())
                    .unwrap_or_else(|_| body.to_owned());
                response.insert(
                    "responseTemplates".into(),
                    json!({ "application/json": template }),
                );
            }
            out.insert(
                "responses".into(),
                json!({ "default": Value::Object(response) }),
            );
        }
        other => {
            return Err(Error::not_supported(
                at.key("type"),
                format!("exporting integrations of type \"{other}\""),
            ))
        }
    }
    if let Some(ms) = native.get("timeoutMs") {
        out.insert("timeoutInMillis".into(), ms.clone());
    }
    // Same names and meanings in AWS's object: a REST API's `contentHandling`, an HTTP API's
    // parameter mapping ("x-amazon-apigateway-integration object").
    for key in ["contentHandling", "requestParameters", "responseParameters"] {
        if let Some(value) = native.get(key) {
            out.insert(key.into(), value.clone());
        }
    }
    Ok(Value::Object(out))
}

/// A native authorizer as a security scheme with `x-amazon-apigateway-authorizer`.
fn scheme_of(native: &Value, arns: &Arns, at: &KeyPath) -> Result<Value, Error> {
    let kind = native.get("type").and_then(Value::as_str).unwrap_or("");
    let sources: Vec<String> = match native.get("identitySource") {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let mut authorizer = Map::new();
    authorizer.insert("type".into(), json!(kind));
    if !sources.is_empty() {
        authorizer.insert("identitySource".into(), json!(sources.join(", ")));
    }
    match kind {
        "jwt" => {
            let mut config = Map::new();
            if let Some(issuer) = native.get("issuer") {
                config.insert("issuer".into(), issuer.clone());
            }
            if let Some(audience) = native.get("audience") {
                config.insert("audience".into(), audience.clone());
            }
            authorizer.insert("jwtConfiguration".into(), Value::Object(config));
            Ok(json!({
                "type": "oauth2",
                "flows": {},
                "x-amazon-apigateway-authorizer": Value::Object(authorizer),
            }))
        }
        "token" | "request" => {
            let plugin = native.get("plugin").and_then(Value::as_str).unwrap_or("");
            authorizer.insert("authorizerUri".into(), json!(arns.lambda(plugin)));
            if let Some(ttl) = native.get("resultTtlSeconds") {
                authorizer.insert("authorizerResultTtlInSeconds".into(), ttl.clone());
            }
            if let Some(expression) = native.get("identityValidationExpression") {
                authorizer.insert("identityValidationExpression".into(), expression.clone());
            }
            if native.get("responseFormat").and_then(Value::as_str) == Some("simple") {
                authorizer.insert("enableSimpleResponses".into(), json!(true));
            }
            // The header a TOKEN authorizer reads is the scheme's `name`.
            let header = sources
                .first()
                .and_then(|s| {
                    s.strip_prefix("$request.header.")
                        .or_else(|| s.strip_prefix("method.request.header."))
                })
                .unwrap_or("Unused");
            Ok(json!({
                "type": "apiKey",
                "name": header,
                "in": "header",
                "x-amazon-apigateway-authtype": "custom",
                "x-amazon-apigateway-authorizer": Value::Object(authorizer),
            }))
        }
        other => Err(Error::not_supported(
            at.key("type"),
            format!("exporting authorizers of type \"{other}\""),
        )),
    }
}

/// A model as an OpenAPI 3.0 schema: model URLs back to `#/components/schemas/NAME`, a
/// `"null"` among the types back to `nullable: true`.
fn openapi_schema(model: &Value, base: &str) -> Value {
    match model {
        Value::Object(fields) => {
            let mut out = Map::new();
            for (key, value) in fields {
                let converted = match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => match target.strip_prefix(base) {
                        Some(rest) => {
                            let (name, inner) = rest.split_once('#').unwrap_or((rest, ""));
                            json!(format!("#/components/schemas/{name}{inner}"))
                        }
                        None => value.clone(),
                    },
                    ("enum" | "default" | "example", _) => value.clone(),
                    _ => openapi_schema(value, base),
                };
                out.insert(key.clone(), converted);
            }
            if let Some(Value::Array(types)) = out.get("type").cloned() {
                let non_null: Vec<Value> = types
                    .iter()
                    .filter(|t| t.as_str() != Some("null"))
                    .cloned()
                    .collect();
                if non_null.len() == 1 && non_null.len() < types.len() {
                    out.insert("type".into(), non_null[0].clone());
                    out.insert("nullable".into(), json!(true));
                    if let Some(Value::Array(values)) = out.get_mut("enum") {
                        values.retain(|v| !v.is_null());
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| openapi_schema(i, base)).collect())
        }
        other => other.clone(),
    }
}
