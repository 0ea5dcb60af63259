//! Security: `components/securitySchemes` with `x-amazon-apigateway-authorizer` (developer
//! guide, "x-amazon-apigateway-authorizer object": `jwt`, `token`, `request`) and
//! `x-amazon-apigateway-authtype`, the API key scheme, and each operation's `security`.
//! A requirement Portico cannot enforce (IAM, Cognito user pools, a scheme without an
//! authorizer) is a load error: a route is never served open because its protection was not
//! understood.

use openapiv3::{APIKeyLocation, ReferenceOr, SecurityRequirement, SecurityScheme};
use serde_json::{json, Map, Value};

use super::context::{bool_field, integer_field, object, string_field, Ctx};
use super::integration::plugin_for;
use super::WarningKind;
use crate::error::{Error, KeyPath};

/// What a route's security asks for.
#[derive(Debug, Default, PartialEq)]
pub(super) struct RouteAuth {
    pub(super) authorizer: Option<String>,
    pub(super) scopes: Vec<String>,
    pub(super) api_key_required: bool,
}

/// The security of an operation: its own `security` (at `at`), else the document's.
pub(super) fn route_auth(
    ctx: &mut Ctx<'_>,
    own: Option<&Vec<SecurityRequirement>>,
    at: &KeyPath,
) -> Result<RouteAuth, Error> {
    let (requirements, at) = match own {
        Some(own) => (own.clone(), at.key("security")),
        None => match &ctx.document.security {
            Some(top) => (top.clone(), KeyPath::root().key("security")),
            None => return Ok(RouteAuth::default()),
        },
    };
    if requirements.len() > 1 {
        // "Each operation can have only one of IAM authorization, a Lambda authorizer, or a
        // JWT authorizer. Attempting to model multiple security requirements results in an
        // error." (developer guide, "Working with OpenAPI definitions for HTTP APIs")
        return Err(Error::config(
            at,
            "API Gateway takes one security requirement per operation, not a list of alternatives",
        ));
    }
    let mut auth = RouteAuth::default();
    let Some(requirement) = requirements.first() else {
        return Ok(auth); // `security: []`: open, overriding the document's
    };
    let at = at.index(0);
    for (name, scopes) in requirement {
        let here = at.key(name);
        match scheme_kind(ctx, name, &here)? {
            SchemeKind::ApiKey => auth.api_key_required = true,
            SchemeKind::Authorizer => {
                if auth.authorizer.is_some() {
                    return Err(Error::config(
                        here,
                        "API Gateway takes one authorizer per operation",
                    ));
                }
                authorizer(ctx, name)?;
                auth.authorizer = Some(name.clone());
                auth.scopes = scopes.clone();
            }
        }
    }
    Ok(auth)
}

enum SchemeKind {
    ApiKey,
    Authorizer,
}

/// The scheme `name` (referenced at `at`).
fn scheme<'d>(ctx: &Ctx<'d>, name: &str, at: &KeyPath) -> Result<&'d SecurityScheme, Error> {
    let scheme = ctx
        .document
        .components
        .as_ref()
        .and_then(|c| c.security_schemes.get(name))
        .ok_or_else(|| {
            Error::config(
                at.clone(),
                format!("components.securitySchemes has no scheme \"{name}\""),
            )
        })?;
    match scheme {
        ReferenceOr::Item(scheme) => Ok(scheme),
        ReferenceOr::Reference { .. } => Err(Error::not_supported(
            scheme_path(name),
            "a security scheme that is a $ref",
        )),
    }
}

fn scheme_path(name: &str) -> KeyPath {
    KeyPath::root()
        .key("components")
        .key("securitySchemes")
        .key(name)
}

fn extensions(scheme: &SecurityScheme) -> impl Iterator<Item = (&String, &Value)> {
    match scheme {
        SecurityScheme::APIKey { extensions, .. }
        | SecurityScheme::HTTP { extensions, .. }
        | SecurityScheme::OAuth2 { extensions, .. }
        | SecurityScheme::OpenIDConnect { extensions, .. } => extensions.iter(),
    }
}

fn extension<'s>(scheme: &'s SecurityScheme, key: &str) -> Option<&'s Value> {
    extensions(scheme).find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// Whether scheme `name` is the API key or an authorizer; refuses what Portico cannot enforce.
fn scheme_kind(ctx: &mut Ctx<'_>, name: &str, at: &KeyPath) -> Result<SchemeKind, Error> {
    let scheme = scheme(ctx, name, at)?;
    let path = scheme_path(name);
    for (key, _) in extensions(scheme) {
        if key.starts_with("x-amazon-apigateway-")
            && key != "x-amazon-apigateway-authorizer"
            && key != "x-amazon-apigateway-authtype"
        {
            ctx.warn(
                WarningKind::UnsupportedExtension,
                &path.key(key),
                "not supported by Portico: ignored",
            );
        }
    }
    if extension(scheme, "x-amazon-apigateway-authorizer").is_some() {
        return Ok(SchemeKind::Authorizer);
    }
    let authtype = extension(scheme, "x-amazon-apigateway-authtype")
        .and_then(Value::as_str)
        .unwrap_or("");
    // "the term awsSigv4 is a reserved term, along with any term prefixed by aws" (developer
    // guide, "x-amazon-apigateway-authtype property"): IAM authorization.
    if authtype.to_ascii_lowercase().starts_with("aws") {
        return Err(Error::not_supported(
            path.key("x-amazon-apigateway-authtype"),
            "IAM authorization (awsSigv4)",
        ));
    }
    match scheme {
        SecurityScheme::APIKey {
            location,
            name: header,
            ..
        } => {
            if *location != APIKeyLocation::Header || !header.eq_ignore_ascii_case("x-api-key") {
                ctx.warn(
                    WarningKind::UnsupportedField,
                    &path.key("name"),
                    format!("API Gateway's API keys are read from the x-api-key header, not from \"{header}\""),
                );
            }
            Ok(SchemeKind::ApiKey)
        }
        _ => Err(Error::not_supported(
            path,
            "a security scheme without x-amazon-apigateway-authorizer (Portico could not enforce it)",
        )),
    }
}

/// Adds scheme `name`'s authorizer to the definition (once).
fn authorizer(ctx: &mut Ctx<'_>, name: &str) -> Result<(), Error> {
    if ctx.authorizers.contains_key(name) {
        return Ok(());
    }
    let path = scheme_path(name);
    let scheme = scheme(ctx, name, &path)?;
    let at = path.key("x-amazon-apigateway-authorizer");
    let fields = object(
        extension(scheme, "x-amazon-apigateway-authorizer").unwrap_or(&Value::Null),
        &at,
    )?
    .clone();
    let kind = string_field(&fields, "type", &at)?
        .ok_or_else(|| Error::config(at.key("type"), "required: jwt, token or request"))?
        .to_ascii_lowercase();
    let known: &[&str] = match kind.as_str() {
        "jwt" => &["type", "jwtConfiguration", "identitySource"],
        "token" | "request" => &[
            "type",
            "authorizerUri",
            "authorizerCredentials",
            "authorizerPayloadFormatVersion",
            "authorizerResultTtlInSeconds",
            "enableSimpleResponses",
            "identitySource",
            "identityValidationExpression",
        ],
        "cognito_user_pools" => {
            return Err(Error::not_supported(
                at.key("type"),
                "Cognito user pool authorizers (use a jwt authorizer with the pool's issuer)",
            ))
        }
        other => {
            return Err(Error::config(
                at.key("type"),
                format!("unknown authorizer type \"{other}\": expected jwt, token or request"),
            ))
        }
    };
    for key in fields.keys().filter(|k| !known.contains(&k.as_str())) {
        ctx.warn(
            WarningKind::UnsupportedField,
            &at.key(key),
            "not supported by Portico: ignored",
        );
    }
    let sources = identity_sources(&fields, &at)?;
    let mut native = Map::new();
    native.insert("type".into(), json!(kind));
    match kind.as_str() {
        "jwt" => {
            let empty = Map::new();
            let config = match fields.get("jwtConfiguration") {
                Some(v) => object(v, &at.key("jwtConfiguration"))?,
                None => &empty,
            };
            let config_at = at.key("jwtConfiguration");
            let issuer = match string_field(config, "issuer", &config_at)? {
                Some(issuer) => issuer.to_owned(),
                // "uses the OpenAPI openIdConnectUrl property to automatically detect the
                // issuer" (developer guide, x-amazon-apigateway-authorizer examples).
                None => match scheme {
                    SecurityScheme::OpenIDConnect {
                        open_id_connect_url,
                        ..
                    } => open_id_connect_url
                        .trim_end_matches('/')
                        .trim_end_matches("/.well-known/openid-configuration")
                        .to_owned(),
                    _ => {
                        return Err(Error::config(
                            config_at.key("issuer"),
                            "required (or an openIdConnect scheme's openIdConnectUrl)",
                        ))
                    }
                },
            };
            native.insert("issuer".into(), json!(issuer));
            if let Some(audience) = config.get("audience") {
                native.insert("audience".into(), audience.clone());
            }
            if !sources.is_empty() {
                native.insert("identitySource".into(), json!(sources));
            }
            let jwks = ctx.functions.jwks.get(name).ok_or_else(|| {
                Error::config(
                    at.clone(),
                    format!("a JWT authorizer needs its signing keys: name them in the functions file (jwks: {{{name}: {{path: FILE}} | {{keys: [...]}} | {{url: URL}}}}); Portico does not read the issuer's discovery document"),
                )
            })?;
            let jwks = serde_json::to_value(jwks)
                .map_err(|e| Error::config(at.clone(), format!("cannot use the keys: {e}")))?;
            native.insert("jwks".into(), jwks);
            let file = ctx.functions.file().map(std::path::Path::to_path_buf);
            ctx.report.origin_in(
                &KeyPath::root().key("authorizers").key(name).key("jwks"),
                &KeyPath::root().key("jwks").key(name),
                file.as_deref(),
            );
        }
        _ => {
            let uri = string_field(&fields, "authorizerUri", &at)?.ok_or_else(|| {
                Error::config(
                    at.key("authorizerUri"),
                    "required for token and request authorizers",
                )
            })?;
            let plugin = plugin_for(ctx, uri, &at.key("authorizerUri"))?;
            native.insert("plugin".into(), json!(plugin));
            let sources = if sources.is_empty() && kind == "token" {
                // A TOKEN authorizer reads the header the apiKey scheme names.
                match scheme {
                    SecurityScheme::APIKey { name: header, .. } => {
                        vec![format!("$request.header.{header}")]
                    }
                    _ => sources,
                }
            } else {
                sources
            };
            if !sources.is_empty() {
                native.insert("identitySource".into(), json!(sources));
            }
            if let Some(ttl) = integer_field(&fields, "authorizerResultTtlInSeconds", &at)? {
                native.insert("resultTtlSeconds".into(), json!(ttl));
            }
            if let Some(expression) = string_field(&fields, "identityValidationExpression", &at)? {
                native.insert("identityValidationExpression".into(), json!(expression));
            }
            if bool_field(&fields, "enableSimpleResponses", &at)? == Some(true) {
                native.insert("responseFormat".into(), json!("simple"));
            }
        }
    }
    ctx.report
        .origin(&KeyPath::root().key("authorizers").key(name), &at);
    ctx.authorizers
        .insert(name.to_owned(), Value::Object(native));
    Ok(())
}

/// `identitySource`, a comma-separated list (REST's `method.request.header.X` spelling or HTTP
/// APIs' `$request.header.X`; the native authorizer reads both).
fn identity_sources(fields: &Map<String, Value>, at: &KeyPath) -> Result<Vec<String>, Error> {
    Ok(string_field(fields, "identitySource", at)?
        .map(|text| {
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default())
}

/// `x-amazon-apigateway-api-key-source`: `HEADER` is what the native gateway reads; with
/// `AUTHORIZER` it takes the authorizer's `usageIdentifierKey` first but falls back to the
/// header, which AWS does not.
pub(super) fn api_key_source(ctx: &mut Ctx<'_>, value: &Value, at: &KeyPath) -> Result<(), Error> {
    match value.as_str().map(str::to_ascii_uppercase).as_deref() {
        Some("HEADER") => Ok(()),
        Some("AUTHORIZER") => {
            ctx.warn(
                WarningKind::UnsupportedField,
                at,
                "Portico takes the API key from the authorizer's usageIdentifierKey, and from the x-api-key header when the authorizer gives none",
            );
            Ok(())
        }
        _ => Err(Error::config(at.clone(), "expected HEADER or AUTHORIZER")),
    }
}
