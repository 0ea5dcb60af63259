//! The authorize phase, between route and integrate: the route's authorizer (JWT, or a custom
//! TOKEN/REQUEST authorizer run as a plugin, with its IAM policy and result cache), then its API
//! key. Every refusal is one of API Gateway's answers (401, 403, 500), decided here.

mod api_key;
pub(crate) mod caller;
mod custom;
pub(crate) mod jwt;
pub(crate) mod policy;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use http::header::{HeaderName, HOST, USER_AGENT};

use crate::config::{
    ApiDefinition, ApiIdentity, AuthorizerDefinition, AuthorizerType, OneOrMany, RouteDefinition,
    SharedStoreKind,
};
use crate::error::{Error, KeyPath};
use crate::exchange::{Exchange, Flow, Step};
use crate::fleet::{Budget, RedisLink};
use crate::header_case::HeaderCase;
use crate::net::text;
use crate::plugin::{AuthCall, AuthorizerKind, LoadedPlugin};
use crate::respond::{GatewayError, NotAParameter, RequestParameter};

pub(crate) use api_key::{key_id, ApiKeys};
pub(crate) use caller::Authorization;
use caller::Caller;
use custom::CustomAuthorizer;
pub(crate) use custom::CustomGrant;
use jwt::{JwksFetcher, JwtAuthorizer, JwtRejection};
use policy::{MethodArn, DEFAULT_ROUTE};

/// API Gateway refuses requests whose method ARN would be longer (414).
const MAX_METHOD_ARN_BYTES: usize = 1600;
/// The header API keys come in.
const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");
/// The identity source of JWT and TOKEN authorizers that name none.
const DEFAULT_IDENTITY_SOURCE: &str = "$request.header.Authorization";

/// What every route of an API shares for the authorize phase.
#[derive(Default)]
pub(crate) struct ApiAccess {
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

impl RouteAuth {
    /// Whether the route has an authorizer (a CORS preflight that reaches `$default` then
    /// meets it, see gateway.rs).
    pub(crate) fn has_authorizer(&self) -> bool {
        self.authorizer.is_some()
    }
}

/// The request as the authorize phase sees it.
pub(crate) struct AuthInput<'a> {
    pub(crate) parts: &'a http::request::Parts,
    /// The client's address, when known.
    pub(crate) peer: Option<std::net::IpAddr>,
    /// The raw path without the stage segment.
    pub(crate) path: &'a str,
    pub(crate) route_key: &'a str,
    pub(crate) path_params: &'a [(&'a str, Cow<'a, str>)],
    pub(crate) stage: &'a str,
    pub(crate) stage_variables: &'a BTreeMap<String, String>,
    pub(crate) request_id: &'a str,
    pub(crate) api: &'a ApiIdentity,
    /// The query string's parameters, decoded: parsed on first use, once per request (a JWT
    /// authorizer never reads them), kept in the exchange (see [`AuthInput::query`]).
    pub(crate) query: &'a OnceLock<Vec<(String, String)>>,
    /// What is left of the time the request may wait for Redis (a shared result cache).
    pub(crate) redis_budget: &'a Budget,
    /// Whether the API is a REST API (its REQUEST authorizers see header names as sent).
    pub(crate) rest: bool,
}

impl AuthInput<'_> {
    /// The query string's parameters, decoded.
    pub(crate) fn query(&self) -> &[(String, String)] {
        crate::exchange::query_of(self.parts, self.query)
    }
}

impl ApiAccess {
    /// Compiles the authorizers and API keys of `definition` (references are checked before).
    /// `redis` is the rate store's Redis, which `authorizerCache: {type: redis}` caches in.
    pub(crate) fn compile(
        definition: &ApiDefinition,
        plugins: &dyn Fn(&str) -> Option<Arc<LoadedPlugin>>,
        base_dir: &Path,
        fetcher: Option<&Arc<dyn JwksFetcher>>,
        redis: Option<&Arc<RedisLink>>,
    ) -> Result<Self, Error> {
        let shared_cache = match definition.authorizer_cache.map(|c| c.kind) {
            None | Some(SharedStoreKind::Local) => None,
            Some(SharedStoreKind::Redis) => Some(redis.ok_or_else(|| {
                Error::config(
                    KeyPath::root().key("authorizerCache").key("type"),
                    "a redis cache needs a Redis server: set rateStore: {type: redis, url: ...} (or start portico-serve with --redis URL)",
                )
            })?),
        };
        let api_id = definition.identity()?.api_id;
        let mut authorizers = BTreeMap::new();
        for (name, authorizer) in definition.authorizers.iter() {
            let at = KeyPath::root().key("authorizers").key(name);
            let shared = shared_cache.map(|link| {
                (
                    Arc::clone(link),
                    custom::shared_prefix(&api_id, name, authorizer),
                )
            });
            let compiled =
                Authorizer::compile(authorizer, plugins, base_dir, fetcher, shared, &at)?;
            authorizers.insert(name.to_owned(), Arc::new(compiled));
        }
        Ok(ApiAccess {
            api_keys: ApiKeys::compile(definition),
            authorizers,
        })
    }
}

impl ApiAccess {
    /// Forgets every authorizer's cached results.
    #[cfg(feature = "bench")]
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
        shared_cache: Option<(Arc<RedisLink>, String)>,
        at: &KeyPath,
    ) -> Result<Self, Error> {
        let kind = definition.authorizer_type;
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
            None if kind == AuthorizerType::Request => Vec::new(),
            None => vec![IdentitySource::parse(DEFAULT_IDENTITY_SOURCE, at)?],
        };
        let check = if kind == AuthorizerType::Jwt {
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
                    format!("required for authorizers of type {}", kind.name()),
                )
            })?;
            let plugin = plugins(name).ok_or_else(|| {
                Error::config(at.key("plugin"), format!("unknown plugin \"{name}\""))
            })?;
            let custom = CustomAuthorizer::compile(definition, plugin, shared_cache, at)?;
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
        // The request parameters' one reader (validate's and the cache's); an identity source
        // is a header or a query parameter, never a path parameter.
        match rest.map(|rest| RequestParameter::parse(rest, false)) {
            Some(Ok((RequestParameter::Header(header), _))) => {
                return Ok(IdentitySource::Header(header))
            }
            Some(Ok((RequestParameter::Query(name), _))) => return Ok(IdentitySource::Query(name)),
            Some(Err(NotAParameter::HeaderName(name))) => {
                return bad(format!("bad header name \"{name}\""))
            }
            _ => {}
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

    /// A header source's value as sent when the request has exactly one: `None` for other
    /// sources and for a missing or repeated header (which [`Self::value`] reads).
    fn single_header<'a>(&self, input: &'a AuthInput<'_>) -> Option<&'a [u8]> {
        let IdentitySource::Header(name) = self else {
            return None;
        };
        let mut values = input.parts.headers.get_all(name).iter();
        let first = values.next()?;
        values.next().is_none().then(|| first.as_bytes())
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
            IdentitySource::Query(name) => Cow::Borrowed(
                input
                    .query()
                    .iter()
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.as_str())?,
            ),
            IdentitySource::StageVariable(name) => {
                Cow::Borrowed(input.stage_variables.get(name)?.as_str())
            }
            IdentitySource::Context(variable) => match variable {
                ContextVariable::ApiId => Cow::Borrowed(&input.api.api_id),
                ContextVariable::DomainName => text(input.parts.headers.get(HOST)?.as_bytes()),
                ContextVariable::HttpMethod => Cow::Borrowed(input.parts.method.as_str()),
                ContextVariable::Path => Cow::Borrowed(input.parts.uri.path()),
                ContextVariable::RequestId => Cow::Borrowed(input.request_id),
                ContextVariable::RouteKey => Cow::Borrowed(input.route_key),
                ContextVariable::SourceIp => Cow::Owned(crate::net::source_ip(input.peer)),
                ContextVariable::Stage => Cow::Borrowed(input.stage),
                ContextVariable::UserAgent => text(input.parts.headers.get(USER_AGENT)?.as_bytes()),
            },
        };
        (!value.trim().is_empty()).then_some(value)
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

/// The authorize phase: the route's authorizer, then its API key; what they establish becomes
/// the exchange's [`Caller`], a refusal is recorded for the log. An open route, or one that
/// only wants an API key, is decided now; an authorizer's decision may wait (a key set
/// fetched, a plugin called), so it is boxed (see [`Step`]).
pub(crate) fn phase<'f, 'a: 'f>(
    route: &'f RouteAuth,
    access: &'f ApiAccess,
    x: &'f mut Exchange<'a>,
) -> Step<'f> {
    match &route.authorizer {
        None if !route.api_key_required => Step::Now(Ok(())),
        None => {
            let caller = caller(route, access, x.parts, x.stage, None);
            Step::Now(settle(x, caller))
        }
        Some(authorizer) => {
            // A decision that needs no wait (a JWT verified before) is taken now.
            let input = auth_input(x);
            if let Some(decision) = authorizer.decide_now(route, &input) {
                let caller = decision.and_then(|authorization| {
                    caller(route, access, input.parts, input.stage, Some(authorization))
                });
                return Step::Now(settle(x, caller));
            }
            Step::Wait(Box::pin(decide_later(authorizer, route, access, x)))
        }
    }
}

/// The authorize phase's decision that may wait (a key set fetched, a plugin called).
async fn decide_later(
    authorizer: &Authorizer,
    route: &RouteAuth,
    access: &ApiAccess,
    x: &mut Exchange<'_>,
) -> Flow {
    let input = auth_input(x);
    let caller = match authorizer.decide(route, &input).await {
        Ok(authorization) => caller(route, access, input.parts, input.stage, Some(authorization)),
        Err(error) => Err(error),
    };
    settle(x, caller)
}

/// The request as the authorize phase sees it.
fn auth_input<'x>(x: &'x Exchange<'_>) -> AuthInput<'x> {
    AuthInput {
        parts: x.parts,
        peer: x.peer(),
        path: x.path,
        route_key: x.route_key,
        path_params: &x.path_params,
        stage: x.stage,
        stage_variables: x.stage_variables,
        request_id: x.request_id,
        api: x.api,
        query: x.query_cell(),
        redis_budget: &x.redis_budget,
        rest: x.rest,
    }
}

/// The caller the phase established becomes the exchange's; a refusal is recorded.
fn settle(x: &mut Exchange<'_>, caller: Result<Caller, GatewayError>) -> Flow {
    match caller {
        Ok(caller) => {
            if let Some(authorization) = &caller.authorization {
                x.record.authorized(authorization);
            }
            if let Some(key) = &caller.api_key {
                x.record.accepted_key(key);
            }
            x.caller = caller;
            Ok(())
        }
        Err(error) => {
            x.record.authorizer_refused(&error);
            Err(error)
        }
    }
}

/// The caller, once the authorizer (if any) let the request through with `authorization`: the
/// route's API key, when it wants one, from the authorizer's grant or the `x-api-key` header.
fn caller(
    route: &RouteAuth,
    access: &ApiAccess,
    parts: &http::request::Parts,
    stage: &str,
    authorization: Option<Authorization>,
) -> Result<Caller, GatewayError> {
    if route.api_key_required {
        let from_authorizer = match &authorization {
            Some(Authorization::Custom(grant)) => grant.usage_identifier_key.as_deref(),
            _ => None,
        };
        let presented = from_authorizer.or_else(|| {
            parts
                .headers
                .get(API_KEY_HEADER)
                .and_then(|v| v.to_str().ok())
        });
        match presented.and_then(|key| access.api_keys.check(key, stage)) {
            Some((name, key)) => {
                tracing::debug!(api_key = name, "API key accepted");
                return Ok(Caller {
                    authorization,
                    api_key: Some(key),
                });
            }
            None => return Err(GatewayError::invalid_api_key()),
        }
    }
    Ok(Caller {
        authorization,
        api_key: None,
    })
}

/// A JWT authorizer's decision as the phase answers it.
fn jwt_verdict(
    decision: Result<Arc<jwt::VerifiedToken>, JwtRejection>,
    route_key: &str,
) -> Result<Authorization, GatewayError> {
    match decision {
        Ok(verified) => Ok(Authorization::Jwt(verified)),
        Err(JwtRejection::Unauthorized(reason)) => {
            tracing::debug!(route_key, "JWT refused: {reason}");
            // AWS's JWT troubleshooting page (http-api-troubleshooting-jwt.md) shows the
            // refusal's header: `www-authenticate: Bearer scope="" error="invalid_token"
            // error_description="the token does not have a valid audience"`; a request with no
            // token has no token to call invalid (RFC 6750 section 3.1).
            let challenge = if reason == jwt::NO_TOKEN {
                "Bearer scope=\"\"".to_owned()
            } else {
                format!(
                    "Bearer scope=\"\" error=\"invalid_token\" error_description=\"{}\"",
                    reason.replace(['"', '\\'], "'")
                )
            };
            Err(GatewayError {
                challenge: http::HeaderValue::from_str(&challenge).ok(),
                ..GatewayError::unauthorized().with_detail(reason)
            })
        }
        Err(JwtRejection::Forbidden) => Err(GatewayError::forbidden()),
    }
}

impl Authorizer {
    /// The decision, when it needs no wait: a JWT seen before (or none, or malformed).
    fn decide_now(
        &self,
        route: &RouteAuth,
        input: &AuthInput<'_>,
    ) -> Option<Result<Authorization, GatewayError>> {
        match &self.check {
            Check::Jwt(jwt) => {
                // A token seen before is found by its bytes; anything else reads the text.
                let source = self.sources.first();
                let cached = source
                    .and_then(|s| s.single_header(input))
                    .and_then(|raw| jwt.authorize_cached(raw, &route.scopes));
                let decision = match cached {
                    Some(decision) => decision,
                    None => {
                        let token = source.and_then(|s| s.value(input));
                        jwt.authorize_now(token.as_deref(), &route.scopes)?
                    }
                };
                Some(jwt_verdict(decision, input.route_key))
            }
            Check::Custom(_) => None,
        }
    }

    async fn decide(
        &self,
        route: &RouteAuth,
        input: &AuthInput<'_>,
    ) -> Result<Authorization, GatewayError> {
        match &self.check {
            Check::Jwt(jwt) => {
                let token = self.sources.first().and_then(|s| s.value(input));
                let decision = jwt.authorize(token.as_deref(), &route.scopes).await;
                jwt_verdict(decision, input.route_key)
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
                let method_arn = method_arn(input);
                if method_arn.len() > MAX_METHOD_ARN_BYTES {
                    return Err(GatewayError::uri_too_long());
                }
                let cache_key = cache_key(input.stage, &values);
                let grant = custom
                    .authorize(&cache_key, &method_arn, input.redis_budget, |kind| {
                        auth_request(kind, &values, &method_arn, input)
                    })
                    .await?;
                Ok(Authorization::Custom(grant))
            }
        }
    }
}

/// The method ARN of the request in `x`, as its authorizer saw it (the cache phase asks the
/// caller's policy about it).
pub(crate) fn request_method_arn(x: &Exchange<'_>) -> String {
    method_arn(&auth_input(x))
}

/// `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}/{path}` (or `.../$default`).
fn method_arn(input: &AuthInput<'_>) -> String {
    let api = input.api;
    let arn = if input.route_key == DEFAULT_ROUTE {
        MethodArn::default_route(&api.region, &api.account_id, &api.api_id, input.stage)
    } else {
        MethodArn::new(
            &api.region,
            &api.account_id,
            &api.api_id,
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
    let headers = if request_kind {
        // A REST API's REQUEST authorizer gets the header names as the client wrote them,
        // like its Lambda proxy event (integrate/lambda.rs), when the embedder passed the
        // spelling on: AWS's developer guide, api-gateway-lambda-authorizer-input.md, "REQUEST
        // input format", shows `"headers": {"X-AMZ-Date": ..., "Accept": "*/*",
        // "HeaderAuth1": "headerValue1", ...}` and the same names in `multiValueHeaders`
        // (LocalStack's apigateway snapshots record no REST authorizer event). An HTTP API's
        // authorizers get lower-case names, as its payload format 2.0 does.
        let case = parts
            .extensions
            .get::<HeaderCase>()
            .filter(|case| input.rest && case.describes(&parts.headers));
        parts
            .headers
            .iter()
            .map(|(name, value)| {
                let name = name.as_str();
                (
                    case.map_or(name, |case| case.spelling(name)).to_owned(),
                    text(value.as_bytes()).into_owned(),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let query_parameters = if request_kind {
        input.query().to_vec()
    } else {
        Vec::new()
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
        source_ip: crate::net::source_ip(input.peer),
        headers,
        query_parameters,
        path_parameters: if request_kind {
            input
                .path_params
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone().into_owned()))
                .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

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
            "$request.header.bad name",
            "$request.querystring.",
            "$request.path.id",
            "method.request.path.id",
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
            peer: None,
            path: "/p",
            route_key: "GET /p",
            path_params: &[],
            stage: "dev",
            stage_variables: &variables,
            request_id: "rid",
            api: &ApiDefinition::new("api").identity().unwrap(),
            query: &OnceLock::from(vec![
                ("t".to_owned(), "abc".to_owned()),
                ("e".to_owned(), String::new()),
            ]),
            redis_budget: &Budget::default(),
            rest: false,
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
    fn rest_request_authorizers_see_the_clients_header_names() {
        let (mut parts, _) = http::Request::get("/p")
            .header("accept", "*/*")
            .header("x-multi", "1")
            .header("x-multi", "2")
            .body(())
            .unwrap()
            .into_parts();
        let sent = ["Accept", "X-Multi", "x-MULTI"].map(str::to_owned).to_vec();
        parts.extensions.insert(HeaderCase::new(sent));
        let variables = BTreeMap::new();
        let identity = ApiDefinition::new("api").identity().unwrap();
        let headers = |rest: bool, kind: AuthorizerKind| {
            let input = AuthInput {
                parts: &parts,
                peer: None,
                path: "/p",
                route_key: "GET /p",
                path_params: &[],
                stage: "dev",
                stage_variables: &variables,
                request_id: "rid",
                api: &identity,
                query: &OnceLock::new(),
                redis_budget: &Budget::default(),
                rest,
            };
            auth_request(kind, &[], "arn", &input).headers
        };
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect()
        };
        // REST: the first spelling of each name, every value (`multiValueHeaders`).
        assert_eq!(
            headers(true, AuthorizerKind::Request),
            pairs(&[("Accept", "*/*"), ("X-Multi", "1"), ("X-Multi", "2")])
        );
        // HTTP APIs: lower-case; TOKEN authorizers: no headers at all.
        assert_eq!(
            headers(false, AuthorizerKind::Request),
            pairs(&[("accept", "*/*"), ("x-multi", "1"), ("x-multi", "2")])
        );
        assert!(headers(true, AuthorizerKind::Token).is_empty());
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
