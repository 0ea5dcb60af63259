//! Compiling an [`ApiDefinition`] into immutable per-stage deployments: every reference
//! resolved, every template substituted, every router built, once.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use crate::authorize::jwt::JwksFetcher;
use crate::authorize::{ApiAccess, RouteAuth};
use crate::cache::{CacheStores, ResponseCaches, RouteCache, StageCaching};
use crate::config::{ApiDefinition, ApiIdentity, IntegrationRef, Protocol, RouteDefinition};
use crate::cors::Cors;
use crate::error::{Error, KeyPath};
use crate::exchange::Exchange;
use crate::integrate::binary::BinaryMediaTypes;
use crate::integrate::http_proxy::HttpClient;
use crate::integrate::{Integration, IntegrationScope};
use crate::observe::{RouteMetrics, StageLog};
use crate::plugin::{LoadedPlugin, PluginRuntime};
use crate::respond::{GatewayError, GatewayResponses};
use crate::route::Router;
use crate::stage::{self, DEFAULT_STAGE};
use crate::throttle::{ApiThrottle, RateStore, RouteThrottle, UsageBook};
use crate::validate::{Models, RouteValidation};

/// The id of a deployment: 6 of `[a-z0-9]`, as API Gateway's (`abc123`), unique among the
/// deployments a gateway keeps.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeploymentId(Arc<str>);

impl DeploymentId {
    /// A new id that `taken` says is free.
    pub(crate) fn new_unique(taken: impl Fn(&str) -> bool) -> Self {
        const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        loop {
            let id: String = (0..6)
                .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
                .collect();
            if !taken(&id) {
                return DeploymentId(id.into());
            }
        }
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reading an id an operator typed (an admin endpoint's path, a canary's `deployment`).
impl FromStr for DeploymentId {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        if crate::config::looks_like_id(text) {
            Ok(DeploymentId(text.into()))
        } else {
            Err(Error::config(
                KeyPath::root(),
                format!("\"{text}\" is not a deployment id (1-64 of [a-z0-9])"),
            ))
        }
    }
}

/// What a compile makes: a deployment (`canary: false`), or the stage variant a canary serves,
/// whose log and metrics say so.
#[derive(Clone)]
pub(crate) struct Release {
    pub(crate) id: DeploymentId,
    pub(crate) canary: bool,
    /// A canary's `useStageCache`: its answers cached with the stage's, not apart.
    pub(crate) shares_stage_cache: bool,
}

/// A compiled API (a deployment: immutable once compiled): one compiled stage per stage.
pub(crate) struct Api {
    /// The deployment's id.
    pub(crate) id: DeploymentId,
    /// When it was compiled.
    pub(crate) created: SystemTime,
    /// What it was compiled from (canaries and promotions compile variants of it).
    pub(crate) definition: Arc<ApiDefinition>,
    pub(crate) protocol: Protocol,
    /// Named stages (not `$default`), in file order.
    pub(crate) stages: Vec<(String, Arc<Deployment>)>,
    pub(crate) default_stage: Option<Arc<Deployment>>,
    /// Gateway responses for requests that reach no stage (no stage variables).
    pub(crate) responses: GatewayResponses,
    /// `apiId`, region and account id, defaults filled in.
    pub(crate) identity: ApiIdentity,
    /// Every loaded plugin, by name (benchmarks instantiate them alone).
    #[cfg(feature = "bench")]
    pub(crate) plugins: Plugins,
    /// Authorizers and API keys.
    pub(crate) access: ApiAccess,
    /// CORS settings (HTTP APIs only).
    pub(crate) cors: Option<Cors>,
    /// Whether some stage writes an access log.
    pub(crate) access_logs: bool,
    /// What the API's keys used (`Gateway::usage`); none for the empty API.
    pub(crate) usage: Option<UsageBook>,
}

/// What one stage serves.
pub(crate) struct Deployment {
    pub(crate) stage: String,
    /// The deployment this stage was compiled in (`$context.deploymentId`).
    pub(crate) deployment_id: DeploymentId,
    pub(crate) variables: BTreeMap<String, String>,
    pub(crate) router: Router<CompiledRoute>,
    pub(crate) responses: GatewayResponses,
    /// The log phase's access log and metric labels.
    pub(crate) log: StageLog,
    /// Whether the stage traces its requests (`tracingEnabled`; see `crate::trace`).
    pub(crate) tracing: bool,
}

/// What compiling needs from the gateway: where relative paths start, and the plugin runtime
/// (created on first need, shared across reloads).
pub(crate) struct CompileContext<'a> {
    pub(crate) base_dir: &'a Path,
    pub(crate) plugin_runtime: &'a dyn Fn() -> Result<Arc<PluginRuntime>, Error>,
    /// The embedder's JWKS fetcher, for JWT authorizers with a `jwks.url`.
    pub(crate) jwks_fetcher: Option<&'a Arc<dyn JwksFetcher>>,
    /// Where buckets and quota counters live (kept across reloads).
    pub(crate) rate_store: &'a RateStore,
    /// The embedder's HTTP client, for `http_proxy` integrations.
    pub(crate) http_client: Option<&'a Arc<dyn HttpClient>>,
    /// The stages' response caches (kept across deployments).
    pub(crate) response_caches: &'a ResponseCaches,
}

type Plugins = BTreeMap<String, Arc<LoadedPlugin>>;

/// A route of one stage.
pub(crate) struct CompiledRoute {
    pub(crate) throttle: RouteThrottle,
    pub(crate) auth: RouteAuth,
    pub(crate) validation: RouteValidation,
    pub(crate) cache: RouteCache,
    pub(crate) integration: Integration,
    /// The route's metric keys (labels api, stage, route).
    pub(crate) metrics: RouteMetrics,
}

impl Api {
    /// The compiled stage `name` (`$default` for the default stage).
    pub(crate) fn stage_named(&self, name: &str) -> Option<&Arc<Deployment>> {
        if name == DEFAULT_STAGE {
            return self.default_stage.as_ref();
        }
        self.stages
            .iter()
            .find(|(stage, _)| stage == name)
            .map(|(_, deployment)| deployment)
    }

    /// An API with no stage: answers every request "Not Found".
    pub(crate) fn empty() -> Api {
        Api {
            id: DeploymentId("".into()),
            created: SystemTime::UNIX_EPOCH,
            definition: Arc::new(ApiDefinition::default()),
            protocol: Protocol::Http,
            stages: Vec::new(),
            default_stage: None,
            responses: GatewayResponses::default(),
            identity: ApiIdentity {
                api_id: String::new(),
                region: String::new(),
                account_id: String::new(),
            },
            #[cfg(feature = "bench")]
            plugins: Plugins::new(),
            access: ApiAccess::default(),
            cors: None,
            access_logs: false,
            usage: None,
        }
    }

    /// Checks and compiles `def` as `release`.
    pub(crate) fn compile(
        def: Arc<ApiDefinition>,
        context: &CompileContext<'_>,
        release: &Release,
    ) -> Result<Api, Error> {
        let root = KeyPath::root();
        check_references(&def)?;
        let identity = def.identity()?;
        let throttle = ApiThrottle::compile(&def, &identity.api_id, context.rate_store)?;
        let plugins = if def.plugins.is_empty() {
            Plugins::new()
        } else {
            let runtime = (context.plugin_runtime)()?;
            runtime.load_all(
                &identity.api_id,
                def.plugins.iter(),
                context.base_dir,
                &root.key("plugins"),
            )?
        };
        let plugin = |name: &str| plugins.get(name).cloned();
        let access = ApiAccess::compile(
            &def,
            &plugin,
            context.base_dir,
            context.jwks_fetcher,
            context.rate_store.redis(),
        )?;
        let models = Models::compile(&def)?;
        let caches =
            CacheStores::compile(&def, context.response_caches, context.rate_store.redis())?;
        let cors = match &def.cors {
            None => None,
            Some(_) if def.protocol == Protocol::Rest => {
                return Err(Error::config(
                    root.key("cors"),
                    "cors is an HTTP API setting (protocol: http), as in API Gateway",
                ))
            }
            Some(cors) => Some(Cors::compile(cors, &root.key("cors"))?),
        };
        if !def.binary_media_types.is_empty() && def.protocol != Protocol::Rest {
            return Err(Error::config(
                root.key("binaryMediaTypes"),
                "binaryMediaTypes is a REST API setting (protocol: rest), as in API Gateway: an HTTP API's Lambda integrations infer the encoding",
            ));
        }
        let binary = Arc::new(BinaryMediaTypes::compile(
            &def.binary_media_types,
            &root.key("binaryMediaTypes"),
        )?);
        if def.stages.is_empty() {
            return Err(Error::config(
                root.key("stages"),
                "at least one stage is required (`$default` is served at /)",
            ));
        }
        let rest = def.protocol == Protocol::Rest;
        let mut stages = Vec::new();
        let mut default_stage = None;
        for (name, stage_def) in def.stages.iter() {
            let at = root.key("stages").key(name);
            stage::check_stage_name(name, !rest, &at)?;
            let variables =
                stage::check_variables(stage_def.variables.iter(), &at.key("variables"))?;
            stage::check_canary(stage_def, &at)?;
            let deployment = Arc::new(Deployment::compile(
                &def,
                release,
                &identity,
                name,
                variables,
                &plugins,
                &access,
                &models,
                &throttle,
                context.http_client,
                &caches,
                &binary,
            )?);
            if name == DEFAULT_STAGE {
                default_stage = Some(deployment);
            } else {
                stages.push((name.to_owned(), deployment));
            }
        }
        let responses = GatewayResponses::compile(
            def.gateway_responses.iter(),
            &BTreeMap::new(),
            &root.key("gatewayResponses"),
        )?;
        let usage = Some(throttle.usage(&def));
        let access_logs = def.stages.iter().any(|(_, s)| s.access_log.is_some());
        drop(throttle);
        drop(models);
        Ok(Api {
            id: release.id.clone(),
            created: SystemTime::now(),
            protocol: def.protocol,
            stages,
            default_stage,
            responses,
            identity,
            #[cfg(feature = "bench")]
            plugins,
            access,
            cors,
            access_logs,
            usage,
            definition: def,
        })
    }
}

impl Deployment {
    /// The stage phase's last step: this stage enters the exchange with its variables,
    /// gateway responses and log; `path` is the path within the stage.
    pub(crate) fn enter<'a>(&'a self, x: &mut Exchange<'a>, path: &'a str) {
        x.record.reached_stage(&self.log);
        x.stage = &self.stage;
        x.deployment_id = self.deployment_id.as_str();
        x.stage_variables = &self.variables;
        x.responses = &self.responses;
        x.path = path;
    }

    /// The route phase: the route matching the request's method and path (AWS's precedence,
    /// see [`crate::route`]) enters the exchange with its decoded path parameters; none is
    /// 404 (REST: 403 "Missing Authentication Token").
    pub(crate) fn route<'a>(
        &'a self,
        x: &mut Exchange<'a>,
    ) -> Result<&'a CompiledRoute, GatewayError> {
        let Some(matched) = self.router.at(&x.parts.method, x.path) else {
            return Err(GatewayError::no_route(x.rest));
        };
        let route_key = matched.route_key();
        x.record.matched_route(route_key, &matched.value.metrics);
        tracing::debug!(route_key, stage = %self.stage, "route matched");
        x.route_key = route_key;
        // REST APIs pass path parameters as sent, HTTP APIs decoded once (see crate::route).
        x.path_params = if x.rest {
            matched
                .raw_params()
                .map(|(name, value)| (name, Cow::Borrowed(value)))
                .collect()
        } else {
            matched.params().collect()
        };
        Ok(matched.value)
    }

    #[allow(clippy::too_many_arguments)] // What a stage compiles from: each phase's API-wide part.
    fn compile(
        def: &ApiDefinition,
        release: &Release,
        identity: &ApiIdentity,
        stage: &str,
        variables: BTreeMap<String, String>,
        plugins: &Plugins,
        access: &ApiAccess,
        models: &Models,
        throttle: &ApiThrottle<'_>,
        http_client: Option<&Arc<dyn HttpClient>>,
        caches: &CacheStores<'_>,
        binary: &Arc<BinaryMediaTypes>,
    ) -> Result<Self, Error> {
        let root = KeyPath::root();
        let mut router = if def.protocol == Protocol::Rest {
            Router::rest()
        } else {
            Router::new()
        };
        let caching = StageCaching::compile(
            def,
            stage,
            &identity.api_id,
            release.canary && !release.shares_stage_cache,
            caches,
        )?;
        let plugin_exists = |name: &str| plugins.get(name).cloned();
        for (route_key, route) in def.routes.iter() {
            let at = root.key("routes").key(route_key);
            let scope = IntegrationScope {
                variables: &variables,
                plugins: &plugin_exists,
                http_client,
                rest: def.protocol == Protocol::Rest,
                route_key,
                stage,
                api_id: &identity.api_id,
                binary,
            };
            let integration = compile_route_integration(def, route, &scope, &at)?;
            let auth = RouteAuth::compile(route, access, &at)?;
            let validation =
                RouteValidation::compile(route_key, route, models, def.validation_details, &at)?;
            let compiled = CompiledRoute {
                throttle: throttle.route(def, stage, route_key)?,
                auth,
                validation,
                cache: caching.route(route_key, route, &at)?,
                integration,
                metrics: RouteMetrics::new(&identity.api_id, stage, route_key, release.canary),
            };
            router
                .insert(route_key, compiled)
                .map_err(|e| Error::config(at, e.message))?;
        }
        let responses = GatewayResponses::compile(
            def.gateway_responses.iter(),
            &variables,
            &root.key("gatewayResponses"),
        )?;
        let log = compile_stage_log(def, release, identity, stage)?;
        let tracing = def.stages.get(stage).is_some_and(|s| s.tracing_enabled);
        if tracing && !cfg!(feature = "otel") {
            return Err(Error::config(
                KeyPath::root()
                    .key("stages")
                    .key(stage)
                    .key("tracingEnabled"),
                "tracing needs portico built with its `otel` cargo feature",
            ));
        }
        Ok(Deployment {
            stage: stage.to_owned(),
            deployment_id: release.id.clone(),
            variables,
            router,
            responses,
            log,
            tracing,
        })
    }
}

fn compile_stage_log(
    def: &ApiDefinition,
    release: &Release,
    identity: &ApiIdentity,
    stage: &str,
) -> Result<StageLog, Error> {
    let stage_def = def.stages.get(stage);
    let format = stage_def.and_then(|s| s.access_log.as_ref().map(|a| a.format.as_str()));
    StageLog::compile(
        &identity.api_id,
        &identity.account_id,
        stage,
        release.id.as_str(),
        release.canary,
        format,
        &KeyPath::root()
            .key("stages")
            .key(stage)
            .key("accessLog")
            .key("format"),
    )
}

fn compile_route_integration(
    def: &ApiDefinition,
    route: &RouteDefinition,
    scope: &IntegrationScope<'_>,
    at: &KeyPath,
) -> Result<Integration, Error> {
    match &route.integration {
        IntegrationRef::Inline(inline) => {
            Integration::compile(inline, scope, &at.key("integration"))
        }
        IntegrationRef::Named(name) => {
            let shared = def.integrations.get(name).ok_or_else(|| {
                Error::config(
                    at.key("integration"),
                    format!("unknown integration \"{name}\""),
                )
            })?;
            Integration::compile(
                shared,
                scope,
                &KeyPath::root().key("integrations").key(name),
            )
        }
    }
}

/// Every name that refers to another part of the definition must exist.
fn check_references(def: &ApiDefinition) -> Result<(), Error> {
    let root = KeyPath::root();
    let unknown = |at: KeyPath, what: &str, name: &str| {
        Err(Error::config(at, format!("unknown {what} \"{name}\"")))
    };
    for (name, integration) in def.integrations.iter() {
        if let Some(plugin) = &integration.plugin {
            if def.plugins.get(plugin).is_none() {
                return unknown(
                    root.key("integrations").key(name).key("plugin"),
                    "plugin",
                    plugin,
                );
            }
        }
    }
    for (name, authorizer) in def.authorizers.iter() {
        let at = root.key("authorizers").key(name);
        if let Some(plugin) = &authorizer.plugin {
            if def.plugins.get(plugin).is_none() {
                return unknown(at.key("plugin"), "plugin", plugin);
            }
        }
    }
    for (route_key, route) in def.routes.iter() {
        let at = root.key("routes").key(route_key);
        if let IntegrationRef::Named(name) = &route.integration {
            if def.integrations.get(name).is_none() {
                return unknown(at.key("integration"), "integration", name);
            }
        }
        if let Some(name) = &route.authorizer {
            if def.authorizers.get(name).is_none() {
                return unknown(at.key("authorizer"), "authorizer", name);
            }
        }
        if let Some(name) = &route.request_model {
            if def.models.get(name).is_none() {
                return unknown(at.key("requestModel"), "model", name);
            }
        }
        for (media_type, name) in route.request_models.iter() {
            if def.models.get(name).is_none() {
                return unknown(at.key("requestModels").key(media_type), "model", name);
            }
        }
    }
    for (stage_name, stage_def) in def.stages.iter() {
        for (route_key, _) in stage_def.route_settings.iter() {
            if def.routes.get(route_key).is_none() {
                let at = root
                    .key("stages")
                    .key(stage_name)
                    .key("routeSettings")
                    .key(route_key);
                return unknown(at, "route", route_key);
            }
        }
    }
    for (name, plan) in def.usage_plans.iter() {
        for (i, stage_name) in plan.stages.iter().enumerate() {
            if def.stages.get(stage_name).is_none() {
                return unknown(
                    root.key("usagePlans").key(name).key("stages").index(i),
                    "stage",
                    stage_name,
                );
            }
        }
    }
    for (i, key) in def.api_keys.iter().enumerate() {
        let at = root.key("apiKeys").index(i);
        for (j, plan) in key.usage_plans.iter().enumerate() {
            if def.usage_plans.get(plan).is_none() {
                return unknown(at.key("usagePlans").index(j), "usage plan", plan);
            }
        }
        if def.api_keys[..i].iter().any(|k| k.name == key.name) {
            return Err(Error::config(
                at.key("name"),
                format!("duplicate API key name \"{}\"", key.name),
            ));
        }
        if def.api_keys[..i].iter().any(|k| k.value == key.value) {
            return Err(Error::config(at.key("value"), "duplicate API key value"));
        }
    }
    Ok(())
}
