//! The authorize phase, between route and integrate: the route's authorizer (JWT, or a custom
//! TOKEN/REQUEST authorizer run as a plugin, with its IAM policy and result cache), then its API
//! key. Every refusal is one of API Gateway's answers (401, 403, 500), decided here.

mod api_key;
mod custom;
pub(crate) mod jwt;
pub(crate) mod policy;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use http::header::{HeaderName, HOST, USER_AGENT};

use crate::config::{ApiDefinition, AuthorizerDefinition, OneOrMany, RouteDefinition};
use crate::error::{Error, KeyPath};
use crate::plugin::{AuthCall, AuthorizerContext, AuthorizerKind, ContextValue, LoadedPlugin};
use crate::respond::GatewayError;

pub(crate) use api_key::ApiKeys;
use custom::CustomAuthorizer;
pub(crate) use custom::CustomGrant;
use jwt::{JwksFetcher, JwtAuthorizer, JwtRejection, VerifiedToken};
use policy::{MethodArn, DEFAULT_ROUTE};

/// API Gateway refuses requests whose method ARN would be longer (414).
const MAX_METHOD_ARN_BYTES: usize = 1600;
/// Where method ARNs say the API lives when the definition does not say (AWS's doc examples).
const DEFAULT_REGION: &str = "us-east-1";
pub(crate) const DEFAULT_ACCOUNT_ID: &str = "123456789012";
/// The header API keys come in.
const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");
/// The identity source of JWT and TOKEN authorizers that name none.
const DEFAULT_IDENTITY_SOURCE: &str = "$request.header.Authorization";

/// What every route of an API shares for the authorize phase.
#[derive(Default)]
pub(crate) struct ApiAccess {
    region: String,
    account_id: String,
    api_keys: ApiKeys,
    authorizers: BTreeMap<String, Arc<Authorizer>>,
}

/// A compiled authorizer of the definition.
pub(crate) struct Authorizer {
    sources: Vec<IdentitySource>,
    check: Check,
}

/// How an authorizer decides.
enum Check {
    Jwt(JwtAuthorizer),
    Custom(CustomAuthorizer),
}

/// Where an identity value comes from (`identitySource`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum IdentitySource {
    Header(HeaderName),
    Query(String),
    StageVariable(String),
    Context(ContextVariable),
}

/// The `$context` variables an identity source may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContextVariable {
    ApiId,
    DomainName,
    HttpMethod,
    Path,
    RequestId,
    RouteKey,
    SourceIp,
    Stage,
    UserAgent,
}

/// A route's access rules.
#[derive(Default)]
pub(crate) struct RouteAuth {
    authorizer: Option<Arc<Authorizer>>,
    scopes: Vec<String>,
    api_key_required: bool,
}

/// The request as the authorize phase sees it.
pub(crate) struct AuthInput<'a> {
    pub(crate) parts: &'a http::request::Parts,
    /// The raw path without the stage segment.
    pub(crate) path: &'a str,
    pub(crate) route_key: &'a str,
    pub(crate) path_params: &'a [(String, String)],
    pub(crate) stage: &'a str,
    pub(crate) stage_variables: &'a BTreeMap<String, String>,
    pub(crate) request_id: &'a str,
    pub(crate) api_id: &'a str,
}

/// What the route's authorizer established: handed to the integration.
#[derive(Debug, Clone)]
pub(crate) enum Authorization {
    /// A verified JWT.
    Jwt(Arc<VerifiedToken>),
    /// A custom authorizer's grant.
    Custom(Arc<CustomGrant>),
}

impl ApiAccess {
    /// Compiles the authorizers and API keys of `definition` (references are checked before).
    pub(crate) fn compile(
        definition: &ApiDefinition,
        plugins: &dyn Fn(&str) -> Option<Arc<LoadedPlugin>>,
        base_dir: &Path,
        fetcher: Option<&Arc<dyn JwksFetcher>>,
    ) -> Result<Self, Error> {
        let mut authorizers = BTreeMap::new();
        for (name, authorizer) in definition.authorizers.iter() {
            let at = KeyPath::root().key("authorizers").key(name);
            let compiled = Authorizer::compile(authorizer, plugins, base_dir, fetcher, &at)?;
            authorizers.insert(name.to_owned(), Arc::new(compiled));
        }
        let field = |value: &Option<String>, default: &str, key: &str| -> Result<String, Error> {
            let value = value.as_deref().unwrap_or(default);
            if value.is_empty()
                || value.contains([':', '/'])
                || value.chars().any(char::is_whitespace)
            {
                return Err(Error::config(
                    KeyPath::root().key(key),
                    format!("\"{value}\" cannot be part of an ARN"),
                ));
            }
            Ok(value.to_owned())
        };
        Ok(ApiAccess {
            region: field(&definition.region, DEFAULT_REGION, "region")?,
            account_id: field(&definition.account_id, DEFAULT_ACCOUNT_ID, "accountId")?,
            api_keys: ApiKeys::compile(definition),
            authorizers,
        })
    }
}

impl ApiAccess {
    /// The region method ARNs and Lambda events name (`us-east-1` by default).
    pub(crate) fn region(&self) -> &str {
        &self.region
    }

    /// The account id method ARNs and Lambda events name (`123456789012` by default).
    pub(crate) fn account_id(&self) -> &str {
        &self.account_id
    }

    /// Forgets every authorizer's cached results.
    pub(crate) fn clear_caches(&self) {
        for authorizer in self.authorizers.values() {
            match &authorizer.check {
                Check::Jwt(jwt) => jwt.clear_cache(),
                Check::Custom(custom) => custom.clear_cache(),
            }
        }
    }
}

impl Authorizer {
    fn compile(
        definition: &AuthorizerDefinition,
        plugins: &dyn Fn(&str) -> Option<Arc<LoadedPlugin>>,
        base_dir: &Path,
        fetcher: Option<&Arc<dyn JwksFetcher>>,
        at: &KeyPath,
    ) -> Result<Self, Error> {
        let kind = definition.authorizer_type.as_str();
        let only_for = |field: &str, set: bool, kinds: &str| {
            if set {
                Err(Error::config(
                    at.key(field),
                    format!("only valid for authorizers of type {kinds}"),
                ))
            } else {
                Ok(())
            }
        };
        let sources = match &definition.identity_source {
            Some(OneOrMany::One(source)) => {
                vec![IdentitySource::parse(source, &at.key("identitySource"))?]
            }
            Some(OneOrMany::Many(sources)) => sources
                .iter()
                .enumerate()
                .map(|(i, s)| IdentitySource::parse(s, &at.key("identitySource").index(i)))
                .collect::<Result<_, _>>()?,
            None if kind == "request" => Vec::new(),
            None => vec![IdentitySource::parse(DEFAULT_IDENTITY_SOURCE, at)?],
        };
        let check = if kind == "jwt" {
            only_for("plugin", definition.plugin.is_some(), "token or request")?;
            only_for(
                "resultTtlSeconds",
                definition.result_ttl_seconds.is_some(),
                "token or request",
            )?;
            only_for(
                "responseFormat",
                definition.response_format.is_some(),
                "token or request",
            )?;
            only_for(
                "identityValidationExpression",
                definition.identity_validation_expression.is_some(),
                "token",
            )?;
            if sources.len() != 1 {
                return Err(Error::config(
                    at.key("identitySource"),
                    "a JWT authorizer takes its token from exactly one identity source",
                ));
            }
            Check::Jwt(JwtAuthorizer::compile(
                definition,
                base_dir,
                fetcher.cloned(),
                at,
            )?)
        } else {
            only_for("issuer", definition.issuer.is_some(), "jwt")?;
            only_for("audience", !definition.audience.is_empty(), "jwt")?;
            only_for("jwks", definition.jwks.is_some(), "jwt")?;
            only_for("leewaySeconds", definition.leeway_seconds.is_some(), "jwt")?;
            let name = definition.plugin.as_deref().ok_or_else(|| {
                Error::config(
                    at.key("plugin"),
                    format!("required for authorizers of type {kind}"),
                )
            })?;
            let plugin = plugins(name).ok_or_else(|| {
                Error::config(at.key("plugin"), format!("unknown plugin \"{name}\""))
            })?;
            let custom = CustomAuthorizer::compile(definition, plugin, at)?;
            if custom.is_token() && !matches!(sources.as_slice(), [IdentitySource::Header(_)]) {
                return Err(Error::config(
                    at.key("identitySource"),
                    "a token authorizer takes exactly one header (`$request.header.NAME`)",
                ));
            }
            if custom.caches() && sources.is_empty() {
                return Err(Error::config(
                    at.key("identitySource"),
                    "required when results are cached (resultTtlSeconds is not 0): the cache is keyed by it",
                ));
            }
            Check::Custom(custom)
        };
        Ok(Authorizer { sources, check })
    }
}

impl IdentitySource {
    /// Reads `$request.header.X`, `$request.querystring.X`, `$stageVariables.X` or
    /// `$context.X` (REST's `method.request.header.X` spelling too).
    fn parse(text: &str, at: &KeyPath) -> Result<Self, Error> {
        let bad = |message: String| Err(Error::config(at.clone(), message));
        let text = text.trim();
        let rest = text
            .strip_prefix("$request.")
            .or_else(|| text.strip_prefix("method.request."));
        if let Some(rest) = rest {
            if let Some(name) = rest.strip_prefix("header.") {
                return match HeaderName::from_bytes(name.as_bytes()) {
                    Ok(header) => Ok(IdentitySource::Header(header)),
                    Err(_) => bad(format!("bad header name \"{name}\"")),
                };
            }
            if let Some(name) = rest.strip_prefix("querystring.").filter(|n| !n.is_empty()) {
                return Ok(IdentitySource::Query(name.to_owned()));
            }
        }
        let stage_variable = text
            .strip_prefix("$stageVariables.")
            .or_else(|| text.strip_prefix("stageVariables."));
        if let Some(name) = stage_variable.filter(|n| !n.is_empty()) {
            return Ok(IdentitySource::StageVariable(name.to_owned()));
        }
        if let Some(name) = text
            .strip_prefix("$context.")
            .or_else(|| text.strip_prefix("context."))
        {
            let variable = match name {
                "apiId" => ContextVariable::ApiId,
                "domainName" => ContextVariable::DomainName,
                "httpMethod" => ContextVariable::HttpMethod,
                "path" => ContextVariable::Path,
                "requestId" => ContextVariable::RequestId,
                "routeKey" => ContextVariable::RouteKey,
                "identity.sourceIp" => ContextVariable::SourceIp,
                "stage" => ContextVariable::Stage,
                "identity.userAgent" => ContextVariable::UserAgent,
                _ => return bad(format!(
                    "unknown context variable \"$context.{name}\": expected apiId, domainName, httpMethod, path, requestId, routeKey, identity.sourceIp, identity.userAgent or stage"
                )),
            };
            return Ok(IdentitySource::Context(variable));
        }
        bad(format!(
            "bad identity source \"{text}\": expected $request.header.NAME, $request.querystring.NAME, $stageVariables.NAME or $context.NAME"
        ))
    }

    /// The value in `input`; `None` when it is missing or empty (API Gateway's 401 case).
    fn value<'a>(&self, input: &'a AuthInput<'_>) -> Option<Cow<'a, str>> {
        let value: Cow<'a, str> = match self {
            IdentitySource::Header(name) => {
                let mut values = input.parts.headers.get_all(name).iter();
                let first = values.next()?;
                match values.next() {
                    // Several headers of one name reach authorizers joined, as API Gateway does.
                    Some(_) => Cow::Owned(
                        input
                            .parts
                            .headers
                            .get_all(name)
                            .iter()
                            .map(|v| text(v.as_bytes()))
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                    None => text(first.as_bytes()),
                }
            }
            IdentitySource::Query(name) => {
                let query = input.parts.uri.query()?;
                let value = form_urlencoded::parse(query.as_bytes())
                    .find(|(key, _)| key == name.as_str())?
                    .1;
                Cow::Owned(value.into_owned())
            }
            IdentitySource::StageVariable(name) => {
                Cow::Borrowed(input.stage_variables.get(name)?.as_str())
            }
            IdentitySource::Context(variable) => match variable {
                ContextVariable::ApiId => Cow::Borrowed(input.api_id),
                ContextVariable::DomainName => text(input.parts.headers.get(HOST)?.as_bytes()),
                ContextVariable::HttpMethod => Cow::Borrowed(input.parts.method.as_str()),
                ContextVariable::Path => Cow::Borrowed(input.parts.uri.path()),
                ContextVariable::RequestId => Cow::Borrowed(input.request_id),
                ContextVariable::RouteKey => Cow::Borrowed(input.route_key),
                ContextVariable::SourceIp => Cow::Owned(crate::integrate::source_ip(input.parts)),
                ContextVariable::Stage => Cow::Borrowed(input.stage),
                ContextVariable::UserAgent => text(input.parts.headers.get(USER_AGENT)?.as_bytes()),
            },
        };
        (!value.trim().is_empty()).then_some(value)
    }
}

/// A header value as text: borrowed when it is UTF-8 (the usual case, checked with the fast
/// validator), else with U+FFFD for the bad bytes.
fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

impl RouteAuth {
    /// The access rules of `route` (found at `at`).
    pub(crate) fn compile(
        route: &RouteDefinition,
        access: &ApiAccess,
        at: &KeyPath,
    ) -> Result<Self, Error> {
        let authorizer = match &route.authorizer {
            None => None,
            Some(name) => Some(Arc::clone(access.authorizers.get(name).ok_or_else(
                || {
                    Error::config(
                        at.key("authorizer"),
                        format!("unknown authorizer \"{name}\""),
                    )
                },
            )?)),
        };
        let jwt = matches!(
            authorizer.as_deref(),
            Some(Authorizer {
                check: Check::Jwt(_),
                ..
            })
        );
        if !route.authorization_scopes.is_empty() && !jwt {
            return Err(Error::config(
                at.key("authorizationScopes"),
                "scopes need a JWT authorizer on the route",
            ));
        }
        Ok(RouteAuth {
            authorizer,
            scopes: route.authorization_scopes.clone(),
            api_key_required: route.api_key_required,
        })
    }
}

/// The authorize phase: the route's authorizer, then its API key. `Ok(None)` for open routes.
pub(crate) async fn authorize(
    route: &RouteAuth,
    access: &ApiAccess,
    input: &AuthInput<'_>,
) -> Result<Option<Authorization>, GatewayError> {
    let authorization = match &route.authorizer {
        None => None,
        Some(authorizer) => Some(authorizer.decide(route, access, input).await?),
    };
    if route.api_key_required {
        let from_authorizer = match &authorization {
            Some(Authorization::Custom(grant)) => grant.usage_identifier_key.as_deref(),
            _ => None,
        };
        let presented = from_authorizer.or_else(|| {
            input
                .parts
                .headers
                .get(API_KEY_HEADER)
                .and_then(|v| v.to_str().ok())
        });
        match presented.and_then(|key| access.api_keys.check(key, input.stage)) {
            Some(name) => tracing::debug!(api_key = name, "API key accepted"),
            None => return Err(GatewayError::invalid_api_key()),
        }
    }
    Ok(authorization)
}

impl Authorizer {
    async fn decide(
        &self,
        route: &RouteAuth,
        access: &ApiAccess,
        input: &AuthInput<'_>,
    ) -> Result<Authorization, GatewayError> {
        match &self.check {
            Check::Jwt(jwt) => {
                let token = self.sources.first().and_then(|s| s.value(input));
                match jwt.authorize(token.as_deref(), &route.scopes).await {
                    Ok(verified) => Ok(Authorization::Jwt(verified)),
                    Err(JwtRejection::Unauthorized(reason)) => {
                        tracing::debug!(route_key = input.route_key, "JWT refused: {reason}");
                        Err(GatewayError::unauthorized().with_detail(reason))
                    }
                    Err(JwtRejection::Forbidden) => Err(GatewayError::forbidden()),
                }
            }
            Check::Custom(custom) => {
                let mut values = Vec::with_capacity(self.sources.len());
                for source in &self.sources {
                    // A missing identity source is a 401 without calling the plugin.
                    values.push(source.value(input).ok_or_else(GatewayError::unauthorized)?);
                }
                if custom.is_token()
                    && !values
                        .first()
                        .is_some_and(|token| custom.token_is_valid(token))
                {
                    return Err(GatewayError::unauthorized());
                }
                let method_arn = method_arn(access, input);
                if method_arn.len() > MAX_METHOD_ARN_BYTES {
                    return Err(GatewayError::uri_too_long());
                }
                let cache_key = cache_key(input.stage, &values);
                let grant = custom
                    .authorize(&cache_key, &method_arn, |kind| {
                        auth_request(kind, &values, &method_arn, input)
                    })
                    .await?;
                Ok(Authorization::Custom(grant))
            }
        }
    }
}

/// `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}/{path}` (or `.../$default`).
fn method_arn(access: &ApiAccess, input: &AuthInput<'_>) -> String {
    let arn = if input.route_key == DEFAULT_ROUTE {
        MethodArn::default_route(
            &access.region,
            &access.account_id,
            input.api_id,
            input.stage,
        )
    } else {
        MethodArn::new(
            &access.region,
            &access.account_id,
            input.api_id,
            input.stage,
            input.parts.method.as_str(),
            input.path,
        )
    };
    arn.to_string()
}

/// The cache key: the stage and the exact identity values, each length-prefixed so that no two
/// different lists make the same key.
fn cache_key(stage: &str, values: &[Cow<'_, str>]) -> String {
    let mut key =
        String::with_capacity(stage.len() + values.iter().map(|v| v.len() + 8).sum::<usize>());
    for part in std::iter::once(stage).chain(values.iter().map(|v| v.as_ref())) {
        key.push_str(&part.len().to_string());
        key.push(':');
        key.push_str(part);
    }
    key
}

/// API Gateway's authorizer event as the authorizer world's record.
fn auth_request(
    kind: AuthorizerKind,
    values: &[Cow<'_, str>],
    method_arn: &str,
    input: &AuthInput<'_>,
) -> AuthCall {
    let parts = input.parts;
    let request_kind = kind == AuthorizerKind::Request;
    let fields = |pairs: &[(String, String)]| pairs.to_vec();
    let headers = if request_kind {
        parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let query_parameters = match (request_kind, parts.uri.query()) {
        (true, Some(query)) => form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
        _ => Vec::new(),
    };
    AuthCall {
        kind,
        token: if request_kind {
            String::new()
        } else {
            values.first().map(|v| v.to_string()).unwrap_or_default()
        },
        identity_source: values.iter().map(|v| v.to_string()).collect(),
        method_arn: method_arn.to_owned(),
        method: parts.method.as_str().to_owned(),
        raw_path: input.path.to_owned(),
        route_key: input.route_key.to_owned(),
        stage: input.stage.to_owned(),
        request_id: input.request_id.to_owned(),
        source_ip: crate::integrate::source_ip(parts),
        headers,
        query_parameters,
        path_parameters: if request_kind {
            fields(input.path_params)
        } else {
            Vec::new()
        },
        stage_variables: input
            .stage_variables
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

impl Authorization {
    /// The principal id (a JWT's `sub`).
    pub(crate) fn principal_id(&self) -> &str {
        match self {
            Authorization::Jwt(token) => token.principal_id(),
            Authorization::Custom(grant) => &grant.principal_id,
        }
    }

    /// JWT claim `name` as text (`$context.authorizer.claims.NAME`): see [`claim_text`]. None
    /// for a custom authorizer, or a claim the token does not carry.
    pub(crate) fn claim(&self, name: &str) -> Option<String> {
        match self {
            Authorization::Jwt(token) => token.claims().get(name).map(claim_text),
            Authorization::Custom(_) => None,
        }
    }

    /// A custom authorizer's context value `key` as text (`$context.authorizer.KEY`): see
    /// [`context_text`]. None for a JWT, or a key the authorizer did not return.
    pub(crate) fn context_value(&self, key: &str) -> Option<String> {
        match self {
            Authorization::Custom(grant) => grant
                .context
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| context_text(value)),
            Authorization::Jwt(_) => None,
        }
    }

    /// The authorizer context the integration world's request carries: a custom authorizer's
    /// context as returned; a JWT's claims, strings, numbers and booleans typed, the rest as JSON.
    pub(crate) fn plugin_context(&self) -> AuthorizerContext {
        let context = match self {
            Authorization::Custom(grant) => grant.context.clone(),
            Authorization::Jwt(token) => token
                .claims()
                .iter()
                .map(|(name, value)| {
                    let value = match value {
                        serde_json::Value::String(s) => ContextValue::Text(s.clone()),
                        serde_json::Value::Bool(b) => ContextValue::Boolean(*b),
                        serde_json::Value::Number(n) => match n.as_f64() {
                            Some(f) => ContextValue::Number(f),
                            None => ContextValue::Text(n.to_string()),
                        },
                        other => ContextValue::Text(other.to_string()),
                    };
                    (name.clone(), value)
                })
                .collect(),
        };
        AuthorizerContext {
            principal_id: self.principal_id().to_owned(),
            context,
        }
    }
}

/// A claim as text, as API Gateway writes claims into payload 1.0 events and access logs:
/// strings as they are, lists as `[a b]`, anything else as JSON.
pub(crate) fn claim_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => format!(
            "[{}]",
            items.iter().map(claim_text).collect::<Vec<_>>().join(" ")
        ),
        other => other.to_string(),
    }
}

/// An authorizer context value as text: strings as they are, numbers as JSON writes them
/// (`1`, not `1.0`), booleans as `true`/`false`.
pub(crate) fn context_text(value: &ContextValue) -> String {
    match value {
        ContextValue::Text(s) => s.clone(),
        ContextValue::Boolean(b) => b.to_string(),
        ContextValue::Number(n) => context_number(*n).to_string(),
    }
}

/// A context number as JSON: an integer when it is whole (`1`, not `1.0`), `null` when it is
/// not a JSON number (NaN, infinities).
pub(crate) fn context_number(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_and_context_values_render_as_api_gateway_writes_them() {
        use serde_json::json;
        assert_eq!(claim_text(&json!("alice")), "alice");
        assert_eq!(claim_text(&json!(["read", "write"])), "[read write]");
        assert_eq!(claim_text(&json!(42)), "42");
        assert_eq!(claim_text(&json!({"a": 1})), r#"{"a":1}"#);
        assert_eq!(claim_text(&json!(true)), "true");
        let text = |v| context_text(&v);
        assert_eq!(text(ContextValue::Text("v".into())), "v");
        assert_eq!(text(ContextValue::Number(1.0)), "1");
        assert_eq!(text(ContextValue::Number(-2.5)), "-2.5");
        assert_eq!(text(ContextValue::Number(f64::NAN)), "null");
        assert_eq!(text(ContextValue::Boolean(true)), "true");
        assert_eq!(context_number(3.0), json!(3));
        assert_eq!(context_number(2.5), json!(2.5));
    }

    fn source(text: &str) -> Result<IdentitySource, String> {
        IdentitySource::parse(text, &KeyPath::root().key("s")).map_err(|e| e.to_string())
    }

    #[test]
    fn identity_sources_parse_in_both_spellings() {
        assert_eq!(
            source("$request.header.Authorization"),
            Ok(IdentitySource::Header(HeaderName::from_static(
                "authorization"
            )))
        );
        assert_eq!(
            source("method.request.header.X-Token"),
            Ok(IdentitySource::Header(HeaderName::from_static("x-token")))
        );
        assert_eq!(
            source("$request.querystring.t"),
            Ok(IdentitySource::Query("t".into()))
        );
        assert_eq!(
            source("$stageVariables.V"),
            Ok(IdentitySource::StageVariable("V".into()))
        );
        assert_eq!(
            source("$context.identity.sourceIp"),
            Ok(IdentitySource::Context(ContextVariable::SourceIp))
        );
        for bad in [
            "",
            "$request.header.",
            "$request.body",
            "$context.nope",
            "Authorization",
        ] {
            assert!(source(bad).unwrap_err().starts_with("s: "), "{bad}");
        }
    }

    #[test]
    fn identity_values_are_read_and_empty_ones_are_missing() {
        let (parts, _) = http::Request::get("/p?t=abc&e=")
            .header("authorization", "Bearer x")
            .header("x-multi", "a")
            .header("x-multi", "b")
            .header("x-blank", " ")
            .body(())
            .unwrap()
            .into_parts();
        let variables = BTreeMap::from([("V".to_owned(), "stage-value".to_owned())]);
        let input = AuthInput {
            parts: &parts,
            path: "/p",
            route_key: "GET /p",
            path_params: &[],
            stage: "dev",
            stage_variables: &variables,
            request_id: "rid",
            api_id: "api",
        };
        let value = |text: &str| source(text).unwrap().value(&input).map(|v| v.into_owned());
        assert_eq!(
            value("$request.header.Authorization").as_deref(),
            Some("Bearer x")
        );
        assert_eq!(value("$request.header.x-multi").as_deref(), Some("a,b"));
        assert_eq!(value("$request.header.x-blank"), None);
        assert_eq!(value("$request.header.missing"), None);
        assert_eq!(value("$request.querystring.t").as_deref(), Some("abc"));
        assert_eq!(value("$request.querystring.e"), None);
        assert_eq!(value("$stageVariables.V").as_deref(), Some("stage-value"));
        assert_eq!(value("$context.routeKey").as_deref(), Some("GET /p"));
        assert_eq!(value("$context.identity.sourceIp"), None);
    }

    #[test]
    fn cache_keys_do_not_collide() {
        let key = |values: &[&str]| {
            cache_key(
                "dev",
                &values.iter().map(|v| Cow::Borrowed(*v)).collect::<Vec<_>>(),
            )
        };
        assert_ne!(key(&["a:b"]), key(&["a", "b"]));
        assert_ne!(key(&["ab", ""]), key(&["a", "b"]));
        assert_eq!(key(&["x"]), key(&["x"]));
        assert_ne!(
            cache_key("dev", &[Cow::Borrowed("x")]),
            cache_key("prod", &[Cow::Borrowed("x")])
        );
    }
}
