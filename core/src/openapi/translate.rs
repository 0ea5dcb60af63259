//! The walk over the document: the API's own settings, then each path's operations as routes.

use std::collections::BTreeMap;

use openapiv3::{
    OpenAPI, Operation, Parameter, ParameterSchemaOrContent, ReferenceOr, RequestBody,
};
use serde_json::{json, Map, Value};

use super::context::{bool_field, integer_field, object, pointer_token, Ctx};
use super::{integration, schema, security};
use super::{BasePathMode, FunctionsFile, OpenApiOptions, Origin, Report, WarningKind, ANY_METHOD};
use crate::config::Protocol;
use crate::error::{Error, KeyPath};
use crate::stage::DEFAULT_STAGE;

/// The native definition (as JSON), the warnings, and where each part came from.
pub(super) struct Translated {
    pub(super) native: Value,
    pub(super) warnings: Vec<super::ImportWarning>,
    pub(super) origins: Vec<Origin>,
}

/// Top-level extensions that are translated, or that change nothing Portico does.
const TOP_LEVEL: [&str; 8] = [
    "x-amazon-apigateway-cors",
    "x-amazon-apigateway-api-key-source",
    "x-amazon-apigateway-request-validators",
    "x-amazon-apigateway-request-validator",
    "x-amazon-apigateway-gateway-responses",
    // Version markers and documentation parts: nothing to serve.
    "x-amazon-apigateway-importexport-version",
    "x-amazon-apigateway-importer-version",
    "x-amazon-apigateway-documentation",
];

pub(super) fn translate(
    document: &OpenAPI,
    raw: &Value,
    options: &OpenApiOptions,
) -> Result<Translated, Error> {
    let no_functions = FunctionsFile::default();
    let functions = options.functions.as_ref().unwrap_or(&no_functions);
    let title = document.info.title.trim();
    if title.is_empty() {
        return Err(Error::config(
            KeyPath::root().key("info").key("title"),
            "the API's name: required",
        ));
    }
    let mut ctx = Ctx {
        document,
        raw,
        options,
        functions,
        report: Report::default(),
        stage_variables: functions
            .stage_variables
            .iter()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect(),
        api_id: api_id(title),
        plugins: Map::new(),
        integrations: Map::new(),
        authorizers: Map::new(),
        models: Map::new(),
    };
    let mut native = Map::new();
    native.insert("name".into(), json!(title));
    native.insert("apiId".into(), json!(ctx.api_id));
    native.insert(
        "protocol".into(),
        json!(match options.protocol {
            Protocol::Rest => "rest",
            _ => "http",
        }),
    );

    for (key, value) in &document.extensions {
        let at = KeyPath::root().key(key);
        match key.as_str() {
            "x-amazon-apigateway-cors" if ctx.rest() => ctx.warn(
                WarningKind::UnsupportedExtension,
                &at,
                "CORS configuration is for HTTP APIs (import with protocol http): ignored",
            ),
            "x-amazon-apigateway-cors" => {
                native.insert("cors".into(), value.clone());
                ctx.report.origin(&KeyPath::root().key("cors"), &at);
            }
            "x-amazon-apigateway-binary-media-types" if !ctx.rest() => ctx.warn(
                WarningKind::UnsupportedExtension,
                &at,
                "binary media types are for REST APIs (import with protocol rest): ignored",
            ),
            "x-amazon-apigateway-binary-media-types" => {
                native.insert("binaryMediaTypes".into(), value.clone());
                ctx.report
                    .origin(&KeyPath::root().key("binaryMediaTypes"), &at);
            }
            "x-amazon-apigateway-api-key-source" => security::api_key_source(&mut ctx, value, &at)?,
            "x-amazon-apigateway-gateway-responses" => {
                let responses = gateway_responses(&mut ctx, value, &at)?;
                native.insert("gatewayResponses".into(), responses);
                ctx.report
                    .origin(&KeyPath::root().key("gatewayResponses"), &at);
            }
            k if TOP_LEVEL.contains(&k) => {}
            k if k.starts_with("x-amazon-apigateway-") => ctx.warn(
                WarningKind::UnsupportedExtension,
                &at,
                "not supported by Portico: ignored",
            ),
            _ => {} // other tools' extensions
        }
    }
    for (i, server) in document.servers.iter().enumerate() {
        for key in server.extensions.keys() {
            if key.starts_with("x-amazon-apigateway-") {
                ctx.warn(
                    WarningKind::UnsupportedExtension,
                    &KeyPath::root().key("servers").index(i).key(key),
                    "not supported by Portico: ignored",
                );
            }
        }
    }
    if let Some(components) = &document.components {
        for key in components.extensions.keys() {
            if key.starts_with("x-amazon-apigateway-") && key != "x-amazon-apigateway-integrations"
            {
                ctx.warn(
                    WarningKind::UnsupportedExtension,
                    &KeyPath::root().key("components").key(key),
                    "not supported by Portico: ignored",
                );
            }
        }
    }

    let validators = validators(
        document
            .extensions
            .get("x-amazon-apigateway-request-validators"),
    )?;
    let default_validator = match document
        .extensions
        .get("x-amazon-apigateway-request-validator")
    {
        None => None,
        Some(name) => Some(validator(
            &validators,
            name,
            &KeyPath::root().key("x-amazon-apigateway-request-validator"),
        )?),
    };
    schema::models(&mut ctx)?;
    let prefix = base_path(document, options.base_path);

    let mut routes = Map::new();
    for (path, item) in document.paths.iter() {
        let path_at = KeyPath::root().key("paths").key(path);
        let item = match item {
            ReferenceOr::Item(item) => item,
            ReferenceOr::Reference { .. } => {
                return Err(Error::not_supported(path_at, "a path item that is a $ref"))
            }
        };
        for key in item.extensions.keys() {
            if key.starts_with("x-amazon-apigateway-") && key != ANY_METHOD {
                ctx.warn(
                    WarningKind::UnsupportedExtension,
                    &path_at.key(key),
                    "not supported by Portico: ignored",
                );
            }
        }
        let mut operations: Vec<(String, Operation, KeyPath, String)> = Vec::new();
        for (method, operation) in item.iter() {
            let at = path_at.key(method);
            if method == "trace" {
                ctx.warn(
                    WarningKind::UnsupportedField,
                    &at,
                    "API Gateway has no TRACE method: the operation is not imported",
                );
                continue;
            }
            let pointer = format!("/paths/{}/{method}", pointer_token(path));
            operations.push((method.to_ascii_uppercase(), operation.clone(), at, pointer));
        }
        if let Some(any) = item.extensions.get(ANY_METHOD) {
            let at = path_at.key(ANY_METHOD);
            let mut any = any.clone();
            if let Some(fields) = any.as_object_mut() {
                fields
                    .entry("responses")
                    .or_insert_with(|| Value::Object(Default::default()));
            }
            let operation: Operation = serde_path_to_error::deserialize(any).map_err(|e| {
                Error::config(
                    at.join_printed(&format!(".{}", e.path())),
                    format!("not a valid operation: {}", e.inner()),
                )
            })?;
            let pointer = format!("/paths/{}/{ANY_METHOD}", pointer_token(path));
            operations.push(("ANY".into(), operation, at, pointer));
        }
        for (method, operation, at, pointer) in operations {
            // `isDefaultRoute` is not an `x-` key, so openapiv3 keeps it nowhere: read as written.
            let default_route = path == "/$default"
                || (method == "ANY"
                    && match ctx.raw_at(&pointer).and_then(Value::as_object) {
                        Some(fields) => bool_field(fields, "isDefaultRoute", &at)? == Some(true),
                        None => false,
                    });
            let route_key = if default_route {
                "$default".to_owned()
            } else {
                format!("{method} {}", full_path(&prefix, path))
            };
            let route = route(
                &mut ctx,
                &route_key,
                &item.parameters,
                &operation,
                Rules {
                    validators: &validators,
                    default_validator,
                },
                &at,
                &pointer,
            )?;
            let native_at = KeyPath::root().key("routes").key(&route_key);
            if routes.contains_key(&route_key) {
                return Err(Error::config(
                    at,
                    format!("another operation is also route {route_key}"),
                ));
            }
            ctx.report.origin(&native_at, &at);
            routes.insert(route_key, route);
        }
    }

    let stage = options.stage.as_deref().unwrap_or(DEFAULT_STAGE);
    let variables: Map<String, Value> = ctx
        .stage_variables
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let mut stages = Map::new();
    stages.insert(stage.to_owned(), json!({ "variables": variables }));
    native.insert("stages".into(), Value::Object(stages));
    if !functions.api_keys.is_empty() {
        let keys = serde_json::to_value(&functions.api_keys)
            .map_err(|e| Error::config(KeyPath::root().key("apiKeys"), e.to_string()))?;
        native.insert("apiKeys".into(), keys);
        ctx.report.origin_in(
            &KeyPath::root().key("apiKeys"),
            &KeyPath::root().key("apiKeys"),
            functions.file(),
        );
    }
    let file = functions.file();
    ctx.report.origin_in(
        &KeyPath::root().key("stages").key(stage).key("variables"),
        &KeyPath::root().key("stageVariables"),
        file,
    );
    native.insert("plugins".into(), Value::Object(ctx.plugins));
    native.insert("integrations".into(), Value::Object(ctx.integrations));
    native.insert("authorizers".into(), Value::Object(ctx.authorizers));
    native.insert("models".into(), Value::Object(ctx.models));
    native.insert("routes".into(), Value::Object(routes));
    Ok(Translated {
        native: Value::Object(native),
        warnings: ctx.report.warnings,
        origins: ctx.report.origins,
    })
}

/// An `apiId` from the title (`Example Pet Store` -> `example-pet-store`): it is part of model
/// URLs and ARNs, which take no spaces.
fn api_id(title: &str) -> String {
    let mut id = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            id.push(c.to_ascii_lowercase());
        } else if !id.ends_with('-') && !id.is_empty() {
            id.push('-');
        }
    }
    let id = id.trim_end_matches('-').to_owned();
    if id.is_empty() {
        "api".to_owned()
    } else {
        id
    }
}

/// A request validator: (validate the body, validate the parameters).
type Validator = (bool, bool);

/// `x-amazon-apigateway-request-validators` (developer guide, "x-amazon-apigateway-request-
/// validators object").
fn validators(value: Option<&Value>) -> Result<BTreeMap<String, Validator>, Error> {
    let at = KeyPath::root().key("x-amazon-apigateway-request-validators");
    let Some(value) = value else {
        return Ok(BTreeMap::new());
    };
    let mut out = BTreeMap::new();
    for (name, rules) in object(value, &at)? {
        let here = at.key(name);
        let rules = object(rules, &here)?;
        for key in rules.keys() {
            if key != "validateRequestBody" && key != "validateRequestParameters" {
                return Err(Error::config(
                    here.key(key),
                    "unknown field: expected validateRequestBody or validateRequestParameters",
                ));
            }
        }
        let body = bool_field(rules, "validateRequestBody", &here)?.unwrap_or(false);
        let parameters = bool_field(rules, "validateRequestParameters", &here)?.unwrap_or(false);
        out.insert(name.clone(), (body, parameters));
    }
    Ok(out)
}

/// The validator `name` (an `x-amazon-apigateway-request-validator` at `at`) refers to.
fn validator(
    validators: &BTreeMap<String, Validator>,
    name: &Value,
    at: &KeyPath,
) -> Result<Validator, Error> {
    let name = name
        .as_str()
        .ok_or_else(|| Error::config(at.clone(), "expected a validator's name"))?;
    validators.get(name).copied().ok_or_else(|| {
        Error::config(
            at.clone(),
            format!("x-amazon-apigateway-request-validators has no validator \"{name}\""),
        )
    })
}

/// What the document says about validation.
#[derive(Clone, Copy)]
struct Rules<'v> {
    validators: &'v BTreeMap<String, Validator>,
    default_validator: Option<Validator>,
}

/// The base path of `servers`, as API Gateway finds it ("Set the OpenAPI basePath property"):
/// a `basePath` server variable (the first one), else the path of the first server's URL.
/// Returned as the prefix the mode puts in front of every path (`""` when none).
fn base_path(document: &OpenAPI, mode: BasePathMode) -> String {
    let variable = document.servers.iter().find_map(|server| {
        server
            .variables
            .as_ref()
            .and_then(|vars| vars.get("basePath"))
            .map(|v| v.default.clone())
    });
    let found = variable.or_else(|| {
        let server = document.servers.first()?;
        let mut url = server.url.clone();
        for (name, variable) in server.variables.iter().flatten() {
            url = url.replace(&format!("{{{name}}}"), &variable.default);
        }
        let path = match url.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]).to_owned(),
            None => url,
        };
        Some(path)
    });
    let segments: Vec<&str> = found
        .as_deref()
        .unwrap_or("")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let kept = match mode {
        BasePathMode::Ignore => &[][..],
        BasePathMode::Prepend => &segments[..],
        BasePathMode::Split => segments.get(1..).unwrap_or(&[]),
    };
    kept.iter().map(|s| format!("/{s}")).collect()
}

fn full_path(prefix: &str, path: &str) -> String {
    if prefix.is_empty() {
        return path.to_owned();
    }
    if path == "/" {
        return prefix.to_owned();
    }
    format!("{prefix}{path}")
}

/// One operation as a native route.
#[allow(clippy::too_many_arguments)]
fn route(
    ctx: &mut Ctx<'_>,
    route_key: &str,
    path_parameters: &[ReferenceOr<Parameter>],
    operation: &Operation,
    rules: Rules<'_>,
    at: &KeyPath,
    pointer: &str,
) -> Result<Value, Error> {
    let mut native = Map::new();
    for key in operation.extensions.keys() {
        let known = [
            "x-amazon-apigateway-integration",
            "x-amazon-apigateway-request-validator",
            "x-amazon-apigateway-auth",
        ];
        if key.starts_with("x-amazon-apigateway-") && !known.contains(&key.as_str()) {
            ctx.warn(
                WarningKind::UnsupportedExtension,
                &at.key(key),
                "not supported by Portico: ignored",
            );
        }
    }
    if let Some(auth) = operation.extensions.get("x-amazon-apigateway-auth") {
        let here = at.key("x-amazon-apigateway-auth");
        let kind = auth.get("type").and_then(Value::as_str).unwrap_or("");
        if !kind.eq_ignore_ascii_case("NONE") {
            return Err(Error::not_supported(
                here.key("type"),
                format!("authorization type \"{kind}\" (IAM)"),
            ));
        }
    }

    let integration = match operation.extensions.get("x-amazon-apigateway-integration") {
        Some(value) => {
            integration::route_integration(ctx, value, &at.key("x-amazon-apigateway-integration"))?
        }
        None => {
            ctx.warn(
                WarningKind::UnsupportedIntegration,
                at,
                "no x-amazon-apigateway-integration: the route answers 500",
            );
            integration::failing_integration(ctx)
        }
    };
    native.insert("integration".into(), integration);
    let native_at = KeyPath::root().key("routes").key(route_key);
    ctx.report.origin(
        &native_at.key("integration"),
        &at.key("x-amazon-apigateway-integration"),
    );
    // AWS writes cache keys on the integration; the native route holds them.
    if let Some(value) = operation.extensions.get("x-amazon-apigateway-integration") {
        let here = at.key("x-amazon-apigateway-integration");
        if let Some((keys, source)) = integration::cache_key_parameters(ctx, value, &here)? {
            native.insert("cacheKeyParameters".into(), keys);
            ctx.report
                .origin(&native_at.key("cacheKeyParameters"), &source);
        }
    }

    let auth = security::route_auth(ctx, operation.security.as_ref(), at)?;
    if let Some(authorizer) = auth.authorizer {
        native.insert("authorizer".into(), json!(authorizer));
    }
    if !auth.scopes.is_empty() {
        native.insert("authorizationScopes".into(), json!(auth.scopes));
    }
    if auth.api_key_required {
        native.insert("apiKeyRequired".into(), json!(true));
    }

    let parameters = parameters(ctx, path_parameters, &operation.parameters, at)?;
    let model = match &operation.request_body {
        None => None,
        Some(body) => request_model(ctx, body, route_key, at, pointer)?,
    };
    let validator = match operation
        .extensions
        .get("x-amazon-apigateway-request-validator")
    {
        Some(name) => Some(validator(
            rules.validators,
            name,
            &at.key("x-amazon-apigateway-request-validator"),
        )?),
        None => rules.default_validator,
    };
    // Without a validator API Gateway checks nothing, whatever the operation declares.
    let (body, params) = validator.unwrap_or((false, false));
    if model.is_some() || !parameters.is_empty() {
        native.insert(
            "validate".into(),
            json!({ "body": body && model.is_some(), "parameters": params }),
        );
    }
    if let Some(model) = model {
        native.insert("requestModel".into(), json!(model));
    }
    if !parameters.is_empty() {
        native.insert("requestParameters".into(), Value::Object(parameters));
        ctx.report
            .origin(&native_at.key("requestParameters"), &at.key("parameters"));
    }
    Ok(Value::Object(native))
}

/// The operation's parameters (the path item's, overridden by the operation's own) as native
/// `requestParameters`.
fn parameters(
    ctx: &mut Ctx<'_>,
    shared: &[ReferenceOr<Parameter>],
    own: &[ReferenceOr<Parameter>],
    at: &KeyPath,
) -> Result<Map<String, Value>, Error> {
    let path_item_at = at.clone();
    let mut merged: Vec<(Parameter, KeyPath)> = Vec::new();
    let sources = shared
        .iter()
        .enumerate()
        .map(|(i, p)| (p, parent(&path_item_at).key("parameters").index(i)))
        .chain(
            own.iter()
                .enumerate()
                .map(|(i, p)| (p, at.key("parameters").index(i))),
        );
    for (parameter, here) in sources {
        let parameter = resolve_parameter(ctx, parameter, &here)?;
        let key = (
            location(&parameter),
            parameter.parameter_data_ref().name.clone(),
        );
        merged.retain(|(p, _)| (location(p), p.parameter_data_ref().name.clone()) != key);
        merged.push((parameter, here));
    }
    let mut native = Map::new();
    for (parameter, here) in merged {
        let data = parameter.parameter_data_ref();
        let kind = match location(&parameter) {
            "cookie" => {
                ctx.warn(
                    WarningKind::NotValidated,
                    &here,
                    format!("cookie parameter \"{}\" is not validated", data.name),
                );
                continue;
            }
            kind => kind,
        };
        if let ParameterSchemaOrContent::Schema(schema) = &data.format {
            let schema = match schema {
                ReferenceOr::Item(schema) => serde_json::to_value(schema).unwrap_or(Value::Null),
                ReferenceOr::Reference { reference } => reference
                    .strip_prefix("#/components/schemas/")
                    .and_then(|name| {
                        ctx.raw_at(&format!("/components/schemas/{}", pointer_token(name)))
                    })
                    .cloned()
                    .unwrap_or(Value::Null),
            };
            let constraints: Vec<&str> = CONSTRAINTS
                .iter()
                .copied()
                .filter(|k| schema.get(k).is_some())
                .chain(
                    schema
                        .get("type")
                        .and_then(Value::as_str)
                        .filter(|t| *t != "string")
                        .map(|_| "type"),
                )
                .collect();
            if !constraints.is_empty() {
                ctx.warn(
                    WarningKind::NotValidated,
                    &here.key("schema"),
                    format!(
                        "{} of parameter \"{}\" not validated: API Gateway's request validators check only that required parameters are present and not blank",
                        constraints.join(", "),
                        data.name
                    ),
                );
            }
        }
        native.insert(format!("{kind}.{}", data.name), json!(data.required));
    }
    Ok(native)
}

/// Schema keywords that constrain a value (what a parameter's schema could ask to check).
const CONSTRAINTS: [&str; 12] = [
    "pattern",
    "enum",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
];

/// The key path of the path item that holds the operation at `at`.
fn parent(at: &KeyPath) -> KeyPath {
    // `paths."/x".get` -> `paths."/x"`: the operation is the last plain segment.
    let text = at.as_str();
    let cut = text.rfind('.').unwrap_or(0);
    KeyPath::root().join_printed(&text[..cut])
}

/// The native location word of a parameter.
fn location(parameter: &Parameter) -> &'static str {
    match parameter {
        Parameter::Query { .. } => "querystring",
        Parameter::Header { .. } => "header",
        Parameter::Path { .. } => "path",
        Parameter::Cookie { .. } => "cookie",
    }
}

fn resolve_parameter(
    ctx: &Ctx<'_>,
    parameter: &ReferenceOr<Parameter>,
    at: &KeyPath,
) -> Result<Parameter, Error> {
    match parameter {
        ReferenceOr::Item(parameter) => Ok(parameter.clone()),
        ReferenceOr::Reference { reference } => {
            let name = reference
                .strip_prefix("#/components/parameters/")
                .ok_or_else(|| {
                    Error::config(
                        at.key("$ref"),
                        "expected a reference to #/components/parameters/NAME",
                    )
                })?;
            match ctx
                .document
                .components
                .as_ref()
                .and_then(|c| c.parameters.get(name))
            {
                Some(ReferenceOr::Item(parameter)) => Ok(parameter.clone()),
                _ => Err(Error::config(
                    at.key("$ref"),
                    format!("components.parameters has no parameter \"{name}\""),
                )),
            }
        }
    }
}

/// The model of a request body: its `application/json` schema. Other media types are not
/// validated (warned about).
fn request_model(
    ctx: &mut Ctx<'_>,
    body: &ReferenceOr<RequestBody>,
    route_key: &str,
    at: &KeyPath,
    pointer: &str,
) -> Result<Option<String>, Error> {
    let (body, body_at, body_pointer) = match body {
        ReferenceOr::Item(body) => (
            body.clone(),
            at.key("requestBody"),
            format!("{pointer}/requestBody"),
        ),
        ReferenceOr::Reference { reference } => {
            let here = at.key("requestBody").key("$ref");
            let name = reference
                .strip_prefix("#/components/requestBodies/")
                .ok_or_else(|| {
                    Error::config(
                        here.clone(),
                        "expected a reference to #/components/requestBodies/NAME",
                    )
                })?;
            match ctx
                .document
                .components
                .as_ref()
                .and_then(|c| c.request_bodies.get(name))
            {
                Some(ReferenceOr::Item(body)) => (
                    body.clone(),
                    KeyPath::root()
                        .key("components")
                        .key("requestBodies")
                        .key(name),
                    format!("/components/requestBodies/{}", pointer_token(name)),
                ),
                _ => {
                    return Err(Error::config(
                        here,
                        format!("components.requestBodies has no request body \"{name}\""),
                    ))
                }
            }
        }
    };
    let content_at = body_at.key("content");
    let json_media = body
        .content
        .iter()
        .find(|(media, _)| media.eq_ignore_ascii_case("application/json"));
    for (media, described) in &body.content {
        if Some(media) != json_media.map(|(m, _)| m) && described.schema.is_some() {
            ctx.warn(
                WarningKind::NotValidated,
                &content_at.key(media),
                match json_media {
                    Some(_) => "only the application/json schema is a model: every body is validated against it, whatever its Content-Type",
                    None => "only JSON bodies are validated (against an application/json schema): not validated",
                },
            );
        }
    }
    let Some((media, described)) = json_media else {
        return Ok(None);
    };
    if described.schema.is_none() {
        return Ok(None);
    }
    let schema_pointer = format!("{body_pointer}/content/{}/schema", pointer_token(media));
    let suggested = model_name(route_key);
    schema::body_model(
        ctx,
        &schema_pointer,
        &suggested,
        &content_at.key(media).key("schema"),
    )
    .map(Some)
}

/// A model name for a route's inline body schema: `POST /pets/{id}` -> `PostPetsIdBody`.
fn model_name(route_key: &str) -> String {
    let mut name = String::new();
    for word in route_key.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            name.push(first.to_ascii_uppercase());
            name.extend(chars.map(|c| c.to_ascii_lowercase()));
        }
    }
    name.push_str("Body");
    name
}

/// `x-amazon-apigateway-gateway-responses` (developer guide, "x-amazon-apigateway-gateway-
/// responses object") as native `gatewayResponses`: status code, static headers, the
/// `application/json` template (its `$context.error.*` variables are the native template's).
fn gateway_responses(ctx: &mut Ctx<'_>, value: &Value, at: &KeyPath) -> Result<Value, Error> {
    let mut native = Map::new();
    for (kind, response) in object(value, at)? {
        let here = at.key(kind);
        let response = object(response, &here)?;
        let mut out = Map::new();
        for key in response.keys() {
            if !["statusCode", "responseParameters", "responseTemplates"].contains(&key.as_str()) {
                ctx.warn(
                    WarningKind::UnsupportedField,
                    &here.key(key),
                    "not supported by Portico: ignored",
                );
            }
        }
        if let Some(status) = integer_field(response, "statusCode", &here)? {
            out.insert("statusCode".into(), json!(status));
        }
        if let Some(parameters) = response.get("responseParameters") {
            let headers = mapped_headers(
                ctx,
                object(parameters, &here.key("responseParameters"))?,
                &here.key("responseParameters"),
            );
            if !headers.is_empty() {
                let native_at = KeyPath::root().key("gatewayResponses").key(kind);
                for name in headers.keys() {
                    ctx.report.origin(
                        &native_at.key("headers").key(name),
                        &here
                            .key("responseParameters")
                            .key(&format!("gatewayresponse.header.{name}")),
                    );
                }
                out.insert("headers".into(), Value::Object(headers));
            }
        }
        if let Some(templates) = response.get("responseTemplates") {
            let templates_at = here.key("responseTemplates");
            let templates = object(templates, &templates_at)?;
            let template = templates.get("application/json").or_else(|| {
                (templates.len() == 1)
                    .then(|| templates.values().next())
                    .flatten()
            });
            if let Some(template) = template {
                let text = template.as_str().ok_or_else(|| {
                    Error::config(templates_at.clone(), "expected a template (a string)")
                })?;
                out.insert("body".into(), json!(text));
            }
        }
        native.insert(kind.clone(), Value::Object(out));
    }
    Ok(Value::Object(native))
}

/// A gateway response's `gatewayresponse.header.NAME` mappings as native headers: a static
/// `'value'` as its text; `method.request.header|path|querystring.X`, `stageVariables.X` and
/// `context.X` as written (the native header reads AWS's spellings); anything else (a body, a
/// `path`/`querystring` target) is warned about and left out.
fn mapped_headers(
    ctx: &mut Ctx<'_>,
    mappings: &Map<String, Value>,
    at: &KeyPath,
) -> Map<String, Value> {
    use super::GATEWAY_HEADER_SOURCES as SOURCES;
    let mut headers = Map::new();
    for (target, source) in mappings {
        let name = target
            .strip_prefix("gatewayresponse.header.")
            .filter(|name| !name.is_empty());
        let source = source.as_str().map(str::trim);
        let value = match source {
            Some(text) => match text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
                // Plain native text, unless it would read as a mapping or a template: then
                // the quoted form, which the native header reads as a literal too.
                Some(literal)
                    if !literal.contains('$')
                        && !SOURCES.iter().any(|prefix| literal.starts_with(prefix)) =>
                {
                    Some(literal)
                }
                Some(_) => Some(text),
                None => SOURCES
                    .iter()
                    .any(|prefix| text.strip_prefix(prefix).is_some_and(|n| !n.is_empty()))
                    .then_some(text),
            },
            None => None,
        };
        match (name, value) {
            (Some(name), Some(value)) => {
                headers.insert(name.to_owned(), Value::String(value.to_owned()));
            }
            _ => ctx.warn(
                WarningKind::UnsupportedField,
                &at.key(target),
                "only headers from a static value ('...'), method.request.header|path|querystring, stageVariables or context are supported: ignored",
            ),
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_titles_and_routes() {
        assert_eq!(api_id("Example Pet Store"), "example-pet-store");
        assert_eq!(api_id("  !!  "), "api");
        assert_eq!(model_name("POST /pets/{petId}"), "PostPetsPetidBody");
    }
}
