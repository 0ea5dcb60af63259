//! The API definition: plain serde types for the YAML/JSON format of CONFIG.md.
//!
//! Loading checks the *shape* of the file (unknown keys, wrong types, duplicate map keys) and
//! reports the key path of the offending field. Cross references and semantics (routes, stage
//! names, stage variables, ...) are checked when a [`crate::Gateway`] compiles the definition.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, KeyPath};

/// One API: routes, integrations, stages and the settings of later phases.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct ApiDefinition {
    /// The API's name (informational; shows up in logs and metrics).
    pub name: String,
    /// `http` (HTTP API semantics) or `rest` (REST API semantics).
    #[serde(default)]
    pub protocol: Protocol,
    /// An identifier used where AWS shows the API id (`$context.apiId`, ARNs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_id: Option<String>,
    /// The region written in method ARNs handed to authorizers (default `us-east-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The account id written in method ARNs handed to authorizers (default `123456789012`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// WASM components, by name.
    #[serde(default, skip_serializing_if = "UniqueMap::is_empty")]
    pub plugins: UniqueMap<PluginDefinition>,
    /// Named integrations that routes refer to.
    #[serde(default, skip_serializing_if = "UniqueMap::is_empty")]
    pub integrations: UniqueMap<IntegrationDefinition>,
    /// Named authorizers that routes refer to.
    #[serde(default, skip_serializing_if = "UniqueMap::is_empty")]
    pub authorizers: UniqueMap<AuthorizerDefinition>,
    /// JSON Schema (draft 4) models, by name.
    #[serde(default, skip_serializing_if = "UniqueMap::is_empty")]
    pub models: UniqueMap<serde_json::Value>,
    /// Whether a 400 for an invalid body lists its violations (`errors`: pointer and reason).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub validation_details: bool,
    /// Route key (`GET /pets/{id}`, `ANY /{proxy+}`, `$default`) to route.
    #[serde(default)]
    pub routes: UniqueMap<RouteDefinition>,
    /// CORS settings (HTTP API semantics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<CorsDefinition>,
    /// REST APIs: the media types Lambda proxy integrations treat as binary
    /// (`image/png`, `image/*`, `*/*`), as API Gateway's `binaryMediaTypes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub binary_media_types: Vec<String>,
    /// Stage name (`$default` or `[A-Za-z0-9_-]+`) to stage.
    #[serde(default)]
    pub stages: UniqueMap<StageDefinition>,
    /// Usage plans, by name.
    #[serde(default, skip_serializing_if = "UniqueMap::is_empty")]
    pub usage_plans: UniqueMap<UsagePlanDefinition>,
    /// API keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_keys: Vec<ApiKeyDefinition>,
    /// Overrides of AWS's gateway responses, by response type (`RESOURCE_NOT_FOUND`, `DEFAULT_4XX`, ...).
    #[serde(default, skip_serializing_if = "UniqueMap::is_empty")]
    pub gateway_responses: UniqueMap<GatewayResponseDefinition>,
    /// The API-wide token bucket, standing for AWS's account-level limit: every request of
    /// every stage draws from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<ThrottleDefinition>,
    /// Where token buckets and quota counters live (default `{type: memory}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_store: Option<RateStoreDefinition>,
    /// Where the plugins' key-value data lives: `{type: local}` (the default: memory, or
    /// redb with a data directory) or `{type: redis}` (on `rateStore`'s Redis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_store: Option<SharedStoreDefinition>,
    /// Where custom authorizers' results are cached: `{type: local}` (the default, in this
    /// process) or `{type: redis}` (on `rateStore`'s Redis, shared by the fleet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer_cache: Option<SharedStoreDefinition>,
    /// Where REST stage caches keep their answers: `{type: memory}` (the default, in this
    /// process) or `{type: redis}` (on `rateStore`'s Redis, shared by the fleet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_cache: Option<SharedStoreDefinition>,
}

/// Where a store a fleet may share lives (`kvStore`, `authorizerCache`, `responseCache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct SharedStoreDefinition {
    /// `local` or `redis`.
    #[serde(rename = "type")]
    pub kind: SharedStoreKind,
}

impl SharedStoreDefinition {
    /// A store of `kind`.
    pub fn new(kind: SharedStoreKind) -> Self {
        SharedStoreDefinition { kind }
    }
}

/// Which backend a shared store uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SharedStoreKind {
    /// This process's own (the default): in memory, or for the kv store durable in redb when
    /// the gateway has a data directory.
    #[default]
    #[serde(alias = "memory")]
    Local,
    /// The Redis of `rateStore` (or the embedder's rate store, portico-serve's `--redis`):
    /// every gateway pointed at it shares the data.
    Redis,
}

/// Where token buckets and quota counters live (`rateStore`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum RateStoreDefinition {
    /// In this process (the default): exact, and lost when the process ends.
    Memory,
    /// In Redis, shared by every gateway that points at the same server.
    Redis(RedisDefinition),
}

/// A Redis server and how to behave when it does not answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisDefinition {
    /// `redis://host:port/db` (or `redis+unix://`); a list names the seed nodes of a Redis
    /// Cluster.
    pub url: OneOrMany,
    /// Whether `url` is a node of a Redis Cluster (implied by a list of urls).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cluster: bool,
    /// When Redis does not answer in time: let the request through (true, AWS's behaviour for
    /// usage plans) or answer 503 (false).
    #[serde(default = "enabled_by_default")]
    pub fail_open: bool,
    /// The longest a request waits for Redis, in milliseconds.
    #[serde(default = "redis_timeout_ms")]
    pub timeout_ms: u64,
}

fn redis_timeout_ms() -> u64 {
    50
}

impl RedisDefinition {
    /// The server at `url`, failing open after 50 ms.
    pub fn new(url: impl Into<String>) -> Self {
        RedisDefinition {
            url: OneOrMany::One(url.into()),
            cluster: false,
            fail_open: true,
            timeout_ms: redis_timeout_ms(),
        }
    }
}

/// Which flavour of API Gateway the API behaves like.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Protocol {
    /// HTTP API (apigatewayv2): 404 `{"message":"Not Found"}` when no route matches.
    #[default]
    Http,
    /// REST API (apigateway v1): 403 `{"message":"Missing Authentication Token"}` when no route matches.
    Rest,
}

/// A WASM component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct PluginDefinition {
    /// The component file, relative to the definition file.
    pub path: PathBuf,
    /// The world the component implements; found from the component's exports when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world: Option<PluginWorld>,
    /// Time limit for one call, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Memory limit for one instance, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    /// Free-form settings handed to the plugin.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// A new instance for every call (`fresh`) or instances reused from call to call
    /// (`warm`, as Lambda reuses an execution environment). The default depends on the world:
    /// `warm` for `lambda` and `authorizer`, `fresh` for `integration` and `wasi-http`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<InstanceLifecycle>,
    /// `warm`: calls one instance serves before it is replaced (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests_per_instance: Option<u64>,
    /// `warm`: seconds an instance may stay unused before it is discarded (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_seconds: Option<u64>,
    /// Calls the plugin may run at once, as Lambda's reserved concurrency (default 64); calls
    /// over it wait in the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// `warm`: instances created at load and kept however idle, as Lambda's provisioned
    /// concurrency (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned: Option<u32>,
    /// Calls that may wait for a free slot when `maxConcurrency` calls are running (default
    /// 1000); a call beyond it is refused at once as a throttled Lambda is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queued: Option<u32>,
    /// How long a call waits in the queue, in milliseconds, before it is refused (default
    /// 1000; the wait counts against the call's own time limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_timeout_ms: Option<u64>,
}

impl PluginDefinition {
    /// A plugin of the component at `path` with every other setting at its default.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        PluginDefinition {
            path: path.into(),
            world: None,
            timeout_ms: None,
            memory_mb: None,
            config: BTreeMap::new(),
            instances: None,
            max_requests_per_instance: None,
            idle_seconds: None,
            max_concurrency: None,
            provisioned: None,
            max_queued: None,
            queue_timeout_ms: None,
        }
    }
}

/// How a plugin's instances live (`instances`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceLifecycle {
    /// A new instance for every call, dropped after it: nothing one call leaves in the
    /// instance's memory reaches the next.
    Fresh,
    /// An instance serves one call at a time and is kept for the next: module-level state
    /// persists between calls, as in a warm Lambda execution environment.
    Warm,
}

/// The world a plugin's component implements (`world`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginWorld {
    /// `integration`: `portico:plugin/integration`, answers requests.
    Integration,
    /// `lazy-integration`: `portico:plugin/lazy-integration`, answers requests that it reads
    /// part by part.
    LazyIntegration,
    /// `lambda`: `portico:plugin/lambda`, answers API Gateway's Lambda proxy events.
    Lambda,
    /// `authorizer`: `portico:plugin/authorizer`, a custom (TOKEN/REQUEST) authorizer.
    Authorizer,
    /// `wasi-http`: a standard `wasi:http/proxy` component.
    WasiHttp,
}

impl PluginWorld {
    /// The world's name as the definition writes it (`wasi-http`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            PluginWorld::Integration => "integration",
            PluginWorld::LazyIntegration => "lazy-integration",
            PluginWorld::Lambda => "lambda",
            PluginWorld::Authorizer => "authorizer",
            PluginWorld::WasiHttp => "wasi-http",
        }
    }
}

impl fmt::Display for PluginWorld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind of backend an integration calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum IntegrationType {
    /// A static response from the gateway itself.
    Mock,
    /// A WASM plugin.
    Plugin,
    /// API Gateway's HTTP custom integration (mapping templates); not supported yet: use
    /// `http_proxy`.
    Http,
    /// An HTTP backend the request is passed to and whose answer is passed back (API
    /// Gateway's `HTTP_PROXY`), reached through the embedder's [`crate::HttpClient`].
    #[serde(rename = "http_proxy")]
    HttpProxy,
}

/// The method an `http_proxy` integration sends the request with (`method`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum IntegrationMethod {
    /// The client's own method (the default).
    #[default]
    Any,
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
    /// `PATCH`.
    Patch,
    /// `HEAD`.
    Head,
    /// `OPTIONS`.
    Options,
}

/// An integration: what answers a matched route.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct IntegrationDefinition {
    /// `mock`, `plugin` or `http_proxy`.
    #[serde(rename = "type")]
    pub integration_type: IntegrationType,
    /// `plugin`: the plugin's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// `plugin`: Lambda proxy payload version, `"1.0"` or `"2.0"` (default: `"1.0"` for
    /// `protocol: rest`, `"2.0"` for `http`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_format_version: Option<PayloadFormatVersion>,
    /// `http_proxy`: the backend's absolute `http`/`https` URL, with `${stageVariables.NAME}`
    /// and the route's path parameters (`{id}`, `{proxy}` for `{proxy+}`) in its path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// `http_proxy`: the method the backend is called with (default `ANY`: the client's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<IntegrationMethod>,
    /// Time limit for the backend call, in milliseconds (50 to 29000, API Gateway's
    /// integration timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// `mock`: the status code (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// `mock`: response headers (stage variables allowed in values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// `mock`: the response body (stage variables allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// REST `plugin` and `http_proxy`: how the request body is converted on its way to the
    /// integration (API Gateway's `contentHandling`; none passes it as it came).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_handling: Option<ContentHandling>,
    /// HTTP APIs (`http_proxy`, `plugin`): parameter mapping of the request before it reaches
    /// the integration, as `AWS::ApiGatewayV2::Integration`'s `RequestParameters`
    /// (`append:header.x: $request.header.y`, `remove:querystring.q: "''"`, `overwrite:path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_parameters: Option<UniqueMap<String>>,
    /// HTTP APIs: parameter mapping of the integration's answer, per status code it answers
    /// (`"404": {overwrite:statuscode: "410"}`), as `ResponseParameters`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_parameters: Option<UniqueMap<UniqueMap<String>>>,
}

/// A REST integration's request payload conversion (API Gateway's `contentHandling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ContentHandling {
    /// A binary body (its `Content-Type` in `binaryMediaTypes`) goes on base64-encoded.
    #[serde(rename = "CONVERT_TO_TEXT")]
    ConvertToText,
    /// A text body (its `Content-Type` not in `binaryMediaTypes`) is base64 and goes on
    /// decoded.
    #[serde(rename = "CONVERT_TO_BINARY")]
    ConvertToBinary,
}

/// A route's integration: the name of a shared one, or one written inline.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum IntegrationRef {
    /// The name of an entry of `integrations`.
    Named(String),
    /// An integration written in the route itself.
    Inline(Box<IntegrationDefinition>),
}

impl<'de> Deserialize<'de> for IntegrationRef {
    // Hand-written rather than `untagged` so that errors inside an inline integration keep
    // their key path and message instead of "data did not match any variant".
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RefVisitor;
        impl<'de> Visitor<'de> for RefVisitor {
            type Value = IntegrationRef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integration name or an inline integration")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
                Ok(IntegrationRef::Named(name.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                IntegrationDefinition::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|inline| IntegrationRef::Inline(Box::new(inline)))
            }
        }
        deserializer.deserialize_any(RefVisitor)
    }
}

/// An authorizer (JWT, or a custom TOKEN/REQUEST authorizer run as a plugin).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct AuthorizerDefinition {
    /// `jwt`, `token` or `request`.
    #[serde(rename = "type")]
    pub authorizer_type: AuthorizerType,
    /// Where the identity comes from (`$request.header.Authorization`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_source: Option<OneOrMany>,
    /// `jwt`: the required `iss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `jwt`: accepted `aud`/`client_id` values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audience: Vec<String>,
    /// `jwt`: where the signing keys come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<JwksDefinition>,
    /// `jwt`: clock skew allowed when checking `exp` and `nbf`, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leeway_seconds: Option<u64>,
    /// `token`/`request`: the plugin that decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// `token`/`request`: seconds a decision is cached (0 disables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_ttl_seconds: Option<u32>,
    /// `token`/`request`: `iam` (default) or `simple`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// `token`: a regex the token must match before the plugin is called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_validation_expression: Option<String>,
}

/// The kind of an authorizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AuthorizerType {
    /// A JWT authorizer (HTTP APIs): the token is verified against a key set.
    Jwt,
    /// A custom (Lambda) TOKEN authorizer: one identity value, handed to a plugin.
    Token,
    /// A custom (Lambda) REQUEST authorizer: the request's facts, handed to a plugin.
    Request,
}

impl AuthorizerType {
    /// The type as the definition writes it.
    pub fn name(self) -> &'static str {
        match self {
            AuthorizerType::Jwt => "jwt",
            AuthorizerType::Token => "token",
            AuthorizerType::Request => "request",
        }
    }
}

/// What a custom authorizer answers with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ResponseFormat {
    /// An IAM policy (and principal id and context), as REST APIs' Lambda authorizers return.
    #[default]
    Iam,
    /// HTTP APIs' simple response: `isAuthorized` (and context).
    Simple,
}

/// The Lambda proxy event shape a plugin of the `lambda` world receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PayloadFormatVersion {
    /// `"1.0"`: REST APIs' event (`httpMethod`, `multiValueHeaders`, ...).
    V1,
    /// `"2.0"`: HTTP APIs' event (`rawPath`, `cookies`, `requestContext.http`, ...).
    V2,
}

impl PayloadFormatVersion {
    /// The version as API Gateway writes it: `"1.0"` or `"2.0"`.
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadFormatVersion::V1 => "1.0",
            PayloadFormatVersion::V2 => "2.0",
        }
    }
}

impl Serialize for PayloadFormatVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PayloadFormatVersion {
    // By hand: YAML writers often leave `2.0` unquoted, which is a number, not a string.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct VersionVisitor;
        impl Visitor<'_> for VersionVisitor {
            type Value = PayloadFormatVersion;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"1.0\" or \"2.0\"")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                match value {
                    "1.0" => Ok(PayloadFormatVersion::V1),
                    "2.0" => Ok(PayloadFormatVersion::V2),
                    other => Err(E::custom(format_args!(
                        "unknown payload format version \"{other}\": expected \"1.0\" or \"2.0\""
                    ))),
                }
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
                self.visit_str(&format!("{value:.1}"))
            }
        }
        deserializer.deserialize_any(VersionVisitor)
    }
}

/// Where a JWT authorizer's signing keys come from: exactly one of `path`, `keys` or `url`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct JwksDefinition {
    /// A JWKS file (`{"keys": [...]}`), relative to the definition file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// The keys themselves (JWKs), written inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<serde_json::Value>>,
    /// A JWKS URL, fetched through the embedder's [`crate::JwksFetcher`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `url`: seconds between refreshes (an unknown `kid` also triggers one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_seconds: Option<u64>,
}

/// A string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum OneOrMany {
    /// A single value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

/// A route: the integration that answers it and the checks before it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct RouteDefinition {
    /// The integration answering the route.
    pub integration: IntegrationRef,
    /// The name of an entry of `authorizers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer: Option<String>,
    /// Scopes a JWT must carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_scopes: Vec<String>,
    /// The name of an entry of `models` every body must satisfy, whatever its `Content-Type`
    /// (`requestModels: {$default: NAME}` in API Gateway's terms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_model: Option<String>,
    /// Models by the body's media type (`application/json: CreateUser`), `$default` for any
    /// other, as API Gateway's method `requestModels`. Not together with `requestModel`.
    #[serde(default, skip_serializing_if = "UniqueMap::is_empty")]
    pub request_models: UniqueMap<String>,
    /// `header.X` / `querystring.X` / `path.X` to whether it is required.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub request_parameters: BTreeMap<String, bool>,
    /// Which validations run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate: Option<ValidateDefinition>,
    /// Whether an API key is required.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub api_key_required: bool,
    /// REST APIs: the request parameters whose values key the response cache (AWS's
    /// integration `cacheKeyParameters`: `method.request.querystring.page`,
    /// `method.request.header.X`, `method.request.path.id`; `$request.querystring.page` style
    /// also reads).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache_key_parameters: Vec<String>,
}

/// Request validator settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct ValidateDefinition {
    /// Validate the body against `requestModel`/`requestModels` (default: whether the route
    /// has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<bool>,
    /// Validate the required `requestParameters` (default: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<bool>,
}

/// CORS settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct CorsDefinition {
    /// Allowed origins (exact, or with a `*` wildcard).
    #[serde(default)]
    pub allow_origins: Vec<String>,
    /// Allowed methods.
    #[serde(default)]
    pub allow_methods: Vec<String>,
    /// Allowed request headers.
    #[serde(default)]
    pub allow_headers: Vec<String>,
    /// Headers exposed to the browser.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// Seconds a preflight answer may be cached (-1 to 86400, as AWS allows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
    /// Whether credentials are allowed.
    #[serde(default)]
    pub allow_credentials: bool,
}

/// A stage: variables and per-stage settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct StageDefinition {
    /// Stage variables, usable as `${stageVariables.NAME}`.
    #[serde(default)]
    pub variables: UniqueMap<String>,
    /// Stage-wide throttling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<ThrottleDefinition>,
    /// Per-route settings, by route key.
    #[serde(default, skip_serializing_if = "UniqueMap::is_empty")]
    pub route_settings: UniqueMap<RouteSettingsDefinition>,
    /// The access log line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<AccessLogDefinition>,
    /// A description (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Adds the IETF `RateLimit-Policy` and `RateLimit` headers (draft-ietf-httpapi-ratelimit-headers)
    /// to the stage's answers; not something API Gateway does, so off by default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rate_limit_headers: bool,
    /// A canary release on this stage (AWS's `canarySettings`): a share of its requests served
    /// by another deployment, or by the stage's own with other stage variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryDefinition>,
    /// REST APIs: the stage's response cache (AWS's cache cluster and its method settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheDefinition>,
    /// Traces the stage's requests (AWS's `tracingEnabled`, default false): spans for the
    /// request and each phase, and the trace headers passed on (needs the `otel` feature).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tracing_enabled: bool,
}

/// A stage's response cache (REST APIs): AWS's `cacheClusterEnabled` and `cacheClusterSize`,
/// and the caching defaults of its method settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct CacheDefinition {
    /// Whether the stage has a cache (AWS's `cacheClusterEnabled`; default false).
    #[serde(default)]
    pub enabled: bool,
    /// The cache's capacity in MiB of cached answers (default 512: AWS's smallest cache
    /// cluster, 0.5 GB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_mb: Option<u32>,
    /// How long an answer stays cached, 0 to 3600 seconds (default 300; 0 caches nothing), as
    /// AWS's `cacheTtlInSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u32>,
    /// Whether `Cache-Control: max-age=0` needs the caller's permission
    /// (`execute-api:InvalidateCache`) to bypass and refresh the cache (default true, AWS's
    /// recorded default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_authorization_for_cache_control: Option<bool>,
    /// What an unpermitted `Cache-Control: max-age=0` gets (default
    /// `SUCCEED_WITH_RESPONSE_HEADER`, AWS's recorded default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unauthorized_cache_control_header_strategy: Option<UnauthorizedCacheControlHeaderStrategy>,
}

/// How a `Cache-Control: max-age=0` from a caller who may not invalidate the cache is
/// answered (AWS's `unauthorizedCacheControlHeaderStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum UnauthorizedCacheControlHeaderStrategy {
    /// Refused: 403.
    #[serde(rename = "FAIL_WITH_403")]
    FailWith403,
    /// The header is ignored and the answer carries a `Warning` header saying so.
    #[serde(rename = "SUCCEED_WITH_RESPONSE_HEADER")]
    SucceedWithResponseHeader,
    /// The header is ignored, silently.
    #[serde(rename = "SUCCEED_WITHOUT_RESPONSE_HEADER")]
    SucceedWithoutResponseHeader,
}

/// A stage's canary (AWS's `canarySettings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct CanaryDefinition {
    /// The share of the stage's requests the canary serves, 0.0 to 100.0; each request is
    /// drawn independently.
    pub percent_traffic: f64,
    /// What the canary runs: the id of a deployment the gateway keeps, or the path of another
    /// API definition file (relative to this one's directory). Without it the canary runs the
    /// stage's own deployment with [`Self::stage_variable_overrides`], as AWS allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// Stage variables the canary sees instead of the stage's (merged over them).
    #[serde(default, skip_serializing_if = "UniqueMap::is_empty")]
    pub stage_variable_overrides: UniqueMap<String>,
    /// Whether the canary's requests use the stage's response cache (their answers cached with
    /// the stage's); when false (the default, as AWS's) the canary's answers are cached apart.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub use_stage_cache: bool,
}

/// Token-bucket settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct ThrottleDefinition {
    /// Steady-state requests per second.
    pub rate_limit: f64,
    /// Bucket size.
    pub burst_limit: u64,
}

/// Per-route settings of a stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct RouteSettingsDefinition {
    /// Route-level throttling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<ThrottleDefinition>,
    /// The route's caching on this stage, over the stage cache's defaults (AWS's method
    /// settings `cachingEnabled` and `cacheTtlInSeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caching: Option<RouteCachingDefinition>,
}

/// A route's caching on a stage (AWS's method settings): only `GET` routes are cached unless
/// `enabled` says otherwise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct RouteCachingDefinition {
    /// Whether the route's answers are cached (default: for `GET` requests only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The route's TTL, 0 to 3600 seconds (default: the stage cache's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u32>,
}

/// Access log settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct AccessLogDefinition {
    /// The line, with `$context.*` variables.
    pub format: String,
}

/// A usage plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct UsagePlanDefinition {
    /// The stages the plan covers.
    #[serde(default)]
    pub stages: Vec<String>,
    /// Per-key throttling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<ThrottleDefinition>,
    /// Per-key quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaDefinition>,
    /// Stages of the plan with per-route limits (AWS's `apiStages`); a stage named here is in
    /// the plan as if listed in `stages`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_stages: Vec<ApiStageDefinition>,
}

/// A stage of a usage plan with per-route limits for each key (AWS's `ApiStage`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct ApiStageDefinition {
    /// The stage.
    pub stage: String,
    /// Route key (`GET /users`) to the limits each key has on it, replacing the plan's
    /// `throttle` for that route.
    #[serde(default, skip_serializing_if = "UniqueMap::is_empty")]
    pub throttle: UniqueMap<ThrottleDefinition>,
}

/// A request quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct QuotaDefinition {
    /// Requests per period.
    pub limit: u64,
    /// `DAY`, `WEEK` or `MONTH`.
    pub period: QuotaPeriod,
    /// The day a period starts (AWS's `offset`): for `WEEK`, days after Sunday (0 Sunday,
    /// 1 Monday, ... 6); for `MONTH`, days after the 1st (0-27); `DAY` takes only 0.
    #[serde(default)]
    pub offset: u64,
}

/// The period of a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum QuotaPeriod {
    /// A calendar day (UTC).
    Day,
    /// A week (UTC).
    Week,
    /// A calendar month (UTC).
    Month,
}

/// An API key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct ApiKeyDefinition {
    /// The key's name.
    pub name: String,
    /// The key's id (API Gateway's `apiKeyId`, in Lambda events and logs); by default ten
    /// letters and digits derived from the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The secret value clients send in `x-api-key`.
    pub value: String,
    /// The usage plans the key belongs to.
    #[serde(default)]
    pub usage_plans: Vec<String>,
    /// Whether the key is accepted.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// An override of one of AWS's gateway responses.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct GatewayResponseDefinition {
    /// The status code to answer with instead of AWS's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Headers added to the response.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The body template (`$context.error.messageString`, `$context.requestId`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// [`UniqueMap::insert`] refused a key that the map already has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("duplicate key \"{key}\"")]
#[non_exhaustive]
pub struct DuplicateKey {
    /// The key.
    pub key: String,
}

/// A map that keeps the file's order and refuses duplicate keys (serde would keep the last).
#[derive(Debug, Clone, PartialEq)]
pub struct UniqueMap<V>(Vec<(String, V)>);

impl<V> Default for UniqueMap<V> {
    fn default() -> Self {
        UniqueMap(Vec::new())
    }
}

impl<V> UniqueMap<V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds an entry, refusing a key that is already there.
    pub fn insert(&mut self, key: impl Into<String>, value: V) -> Result<(), DuplicateKey> {
        let key = key.into();
        if self.get(&key).is_some() {
            return Err(DuplicateKey { key });
        }
        self.0.push((key, value));
        Ok(())
    }
    /// Sets `key` to `value`: its value replaced in its place if it has one, else added.
    pub fn set(&mut self, key: impl Into<String>, value: V) {
        let key = key.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, old)) => *old = value,
            None => self.0.push((key, value)),
        }
    }
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    /// Entries in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
    /// Entries in file order, values mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut V)> {
        self.0.iter_mut().map(|(k, v)| (k.as_str(), v))
    }
    /// Keys in file order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>, V> FromIterator<(K, V)> for UniqueMap<V> {
    /// Later duplicates are dropped; use [`UniqueMap::insert`] to see them.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = UniqueMap::new();
        for (k, v) in iter {
            let _ = map.insert(k, v);
        }
        map
    }
}

impl<V: Serialize> Serialize for UniqueMap<V> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for UniqueMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = UniqueMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(UniqueMap::new()) // `routes:` with nothing under it
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut map = UniqueMap::new();
                while let Some(key) = access.next_key::<String>()? {
                    if map.get(&key).is_some() {
                        return Err(de::Error::custom(DuplicateKey { key }));
                    }
                    let value = access.next_value()?;
                    map.0.push((key, value));
                }
                Ok(map)
            }
        }
        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

// Constructors for the types an embedder builds in code (the types are `#[non_exhaustive]`,
// so struct literals work only inside this crate); set further fields on the value.

impl ApiDefinition {
    /// An empty definition named `name` (an HTTP API with no routes and no stages).
    pub fn new(name: impl Into<String>) -> Self {
        ApiDefinition {
            name: name.into(),
            ..Default::default()
        }
    }
}

impl IntegrationDefinition {
    fn of_type(integration_type: IntegrationType) -> Self {
        IntegrationDefinition {
            integration_type,
            plugin: None,
            payload_format_version: None,
            uri: None,
            method: None,
            timeout_ms: None,
            status_code: None,
            headers: None,
            body: None,
            content_handling: None,
            request_parameters: None,
            response_parameters: None,
        }
    }

    /// A mock integration answering `status_code` with `body`.
    pub fn mock(status_code: u16, body: impl Into<String>) -> Self {
        IntegrationDefinition {
            status_code: Some(status_code),
            body: Some(body.into()),
            ..Self::of_type(IntegrationType::Mock)
        }
    }

    /// An integration calling plugin `name`.
    pub fn plugin(name: impl Into<String>) -> Self {
        IntegrationDefinition {
            plugin: Some(name.into()),
            ..Self::of_type(IntegrationType::Plugin)
        }
    }

    /// An `http_proxy` integration passing requests to `uri` with the client's method (set
    /// `method` and `timeout_ms` on the value for others).
    pub fn http_proxy(uri: impl Into<String>) -> Self {
        IntegrationDefinition {
            uri: Some(uri.into()),
            ..Self::of_type(IntegrationType::HttpProxy)
        }
    }
}

impl RouteDefinition {
    /// A route answered by `integration`, with no authorizer, model or API key.
    pub fn new(integration: IntegrationRef) -> Self {
        RouteDefinition {
            integration,
            authorizer: None,
            authorization_scopes: Vec::new(),
            request_model: None,
            request_models: UniqueMap::new(),
            request_parameters: BTreeMap::new(),
            validate: None,
            api_key_required: false,
            cache_key_parameters: Vec::new(),
        }
    }
}

impl AccessLogDefinition {
    /// An access log whose lines are `format` (`$context.*` variables substituted).
    pub fn new(format: impl Into<String>) -> Self {
        AccessLogDefinition {
            format: format.into(),
        }
    }
}

impl GatewayResponseDefinition {
    /// An override answering with the body template `body` (and AWS's status code).
    pub fn with_body(body: impl Into<String>) -> Self {
        GatewayResponseDefinition {
            body: Some(body.into()),
            ..Default::default()
        }
    }

    /// The same override, answering with `status_code`.
    pub fn status(mut self, status_code: u16) -> Self {
        self.status_code = Some(status_code);
        self
    }
}

impl ThrottleDefinition {
    /// A steady `rate_limit` (requests per second) with bursts of `burst_limit`.
    pub fn new(rate_limit: f64, burst_limit: u64) -> Self {
        ThrottleDefinition {
            rate_limit,
            burst_limit,
        }
    }
}

/// Where method ARNs and events say the API lives when the definition does not (AWS's doc
/// examples' region and account).
const DEFAULT_REGION: &str = "us-east-1";
const DEFAULT_ACCOUNT_ID: &str = "123456789012";

/// The API's identity as requests see it (`$context.apiId`, method ARNs, Lambda events), its
/// defaults resolved once at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiIdentity {
    /// `apiId`, else the API's `name`.
    pub(crate) api_id: String,
    /// `region`, else `us-east-1`.
    pub(crate) region: String,
    /// `accountId`, else `123456789012`.
    pub(crate) account_id: String,
}

impl ApiDefinition {
    /// The API's identity, its defaults filled in; region and account id must fit in an ARN.
    pub(crate) fn identity(&self) -> Result<ApiIdentity, Error> {
        let arn_part = |value: &Option<String>, default: &str, key: &str| {
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
        Ok(ApiIdentity {
            api_id: self.api_id.clone().unwrap_or_else(|| self.name.clone()),
            region: arn_part(&self.region, DEFAULT_REGION, "region")?,
            account_id: arn_part(&self.account_id, DEFAULT_ACCOUNT_ID, "accountId")?,
        })
    }
}

/// The two file formats a definition may be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// YAML 1.2 (also accepts most JSON).
    Yaml,
    /// JSON.
    Json,
}

/// The text of a definition file (an API, an OpenAPI document, a functions file) and its
/// format: JSON for `.json`, else YAML.
pub(crate) fn read_file(path: &Path) -> Result<(String, Format), Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => Format::Json,
        _ => Format::Yaml,
    };
    Ok((text, format))
}

impl ApiDefinition {
    /// Reads a definition from a `.yaml`/`.yml`/`.json` file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let (text, format) = crate::config::read_file(path)?;
        Self::from_str_as(&text, format).map_err(|e| e.in_file(path))
    }

    /// Parses a definition from text in the given format.
    pub fn from_str_as(text: &str, format: Format) -> Result<Self, Error> {
        deserialize_text(text, format)
    }
}

/// Reads `text` as a `T`, an error naming the key path and the line (the definition's reader,
/// shared with the OpenAPI import's functions file).
pub(crate) fn deserialize_text<T: serde::de::DeserializeOwned>(
    text: &str,
    format: Format,
) -> Result<T, Error> {
    match format {
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            let def: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let inner = e.inner();
                let location = format!("line {} column {}", inner.line(), inner.column());
                parse_error(e.path(), strip_location(&inner.to_string()), Some(location))
            })?;
            de.end()
                .map_err(|e| Error::config(KeyPath::root(), e.to_string()))?;
            Ok(def)
        }
        Format::Yaml => {
            let de = yaml_serde::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let inner = e.inner();
                let location = inner
                    .location()
                    .map(|l| format!("line {} column {}", l.line(), l.column()));
                // yaml_serde puts its own unquoted path (that of the enclosing map, or of
                // the key) in front of the message; we print ours instead.
                let message = inner.to_string();
                let full_path = e.path().to_string();
                let message = message
                    .match_indices(": ")
                    .map(|(i, _)| i)
                    .find(|&i| i > 0 && full_path.starts_with(&message[..i]))
                    .map_or(message.as_str(), |i| &message[i + 2..]);
                parse_error(e.path(), strip_location(message), location)
            })
        }
    }
}

/// The key path serde_path_to_error tracked to a deserialization error (shared with the OpenAPI
/// import, which reads its documents the same way).
pub(crate) fn key_path_of(path: &serde_path_to_error::Path) -> KeyPath {
    let mut key_path = KeyPath::root();
    for segment in path.iter() {
        key_path = match segment {
            serde_path_to_error::Segment::Seq { index } => key_path.index(*index),
            serde_path_to_error::Segment::Map { key } => key_path.key(key),
            serde_path_to_error::Segment::Enum { variant } => key_path.key(variant),
            serde_path_to_error::Segment::Unknown => key_path,
        };
    }
    key_path
}

fn parse_error(
    path: &serde_path_to_error::Path,
    message: String,
    location: Option<String>,
) -> Error {
    Error::Config {
        file: None,
        key_path: key_path_of(path),
        message: match location {
            Some(location) => format!("{message} (at {location})"),
            None => message,
        },
    }
}

/// yaml_serde and serde_json append " at line X column Y"; we report the location ourselves.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_unknown_key_names_its_path() {
        let err = ApiDefinition::from_str_as(
            "name: a\nroutes:\n  GET /x:\n    integration: {type: mock}\n    integraton: x\n",
            Format::Yaml,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("routes.\"GET /x\""), "{err}");
        assert!(err.contains("unknown field `integraton`"), "{err}");
    }

    #[test]
    fn inline_integration_errors_keep_their_path() {
        let err = ApiDefinition::from_str_as(
            "name: a\nroutes:\n  GET /x:\n    integration: {type: mock, statusCode: abc}\n",
            Format::Yaml,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("routes.\"GET /x\".integration.statusCode"),
            "{err}"
        );
    }

    #[test]
    fn json_duplicate_route_is_refused() {
        let err = ApiDefinition::from_str_as(
            r#"{"name":"a","routes":{"GET /x":{"integration":"m"},"GET /x":{"integration":"m"}}}"#,
            Format::Json,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("duplicate key \"GET /x\""), "{err}");
        assert!(err.contains("routes"), "{err}");
    }

    #[test]
    fn named_and_inline_integrations_parse() {
        let def = ApiDefinition::from_str_as(
            "name: a\nroutes:\n  GET /a: {integration: shared}\n  GET /b: {integration: {type: mock, body: hi}}\n",
            Format::Yaml,
        )
        .unwrap();
        assert!(
            matches!(def.routes.get("GET /a").unwrap().integration, IntegrationRef::Named(ref n) if n == "shared")
        );
        assert!(matches!(
            def.routes.get("GET /b").unwrap().integration,
            IntegrationRef::Inline(_)
        ));
    }
}

/// A gateway file (`portico-serve --gateway gateway.yaml`): several APIs served by one gateway,
/// and the custom domains that map host names and base paths onto their stages.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct GatewayDefinition {
    /// The APIs, by the name mappings and deployments use.
    pub apis: UniqueMap<ApiSource>,
    /// Custom domains, by host name (`api.example.com`, or a wildcard `*.example.com`).
    #[serde(default)]
    pub domains: UniqueMap<DomainDefinition>,
}

/// Where an API of a gateway file comes from: a native definition (`file`) or an OpenAPI
/// document (`openapi`, with the import's settings). Paths start from the gateway file's
/// directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct ApiSource {
    /// A native API definition file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// An OpenAPI 3.0 document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openapi: Option<PathBuf>,
    /// With `openapi`: the functions file (plugins for the document's Lambda functions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub functions: Option<PathBuf>,
    /// With `openapi`: the stage the API is served on (default `$default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// With `openapi`: REST or HTTP API semantics (default `http`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// With `openapi`: refuse the document when the import gives warnings.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fail_on_warnings: bool,
}

/// A custom domain: its API mappings by base path (`""` catches what no other takes).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct DomainDefinition {
    /// Base path -> the API stage it serves.
    pub mappings: UniqueMap<MappingDefinition>,
}

/// An API mapping: the stage of one of the gateway's APIs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct MappingDefinition {
    /// The API's name in `apis`.
    pub api: String,
    /// The stage (`$default` for an HTTP API's default stage).
    pub stage: String,
}

/// Whether `text` has the shape of a deployment id (a canary's `deployment` is an id or a
/// file's path).
pub(crate) fn looks_like_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl CanaryDefinition {
    /// The file [`Self::deployment`] names, when it names a file rather than a kept
    /// deployment's id (relative to the definition's directory).
    pub fn deployment_file(&self) -> Option<&Path> {
        self.deployment
            .as_deref()
            .filter(|d| !looks_like_id(d))
            .map(Path::new)
    }
}

impl MappingDefinition {
    /// Maps to `stage` of `api`.
    pub fn new(api: impl Into<String>, stage: impl Into<String>) -> Self {
        MappingDefinition {
            api: api.into(),
            stage: stage.into(),
        }
    }
}

impl GatewayDefinition {
    /// Reads a gateway file (`.yaml`/`.yml`/`.json`).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let (text, format) = read_file(path)?;
        Self::from_str_as(&text, format).map_err(|e| e.in_file(path))
    }

    /// Parses a gateway file's text.
    pub fn from_str_as(text: &str, format: Format) -> Result<Self, Error> {
        deserialize_text(text, format)
    }
}
