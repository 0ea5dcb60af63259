//! `Gateway`: the request pipeline over an atomically swappable compiled API.
//!
//! cors (preflight) -> stage -> route -> throttle (server side) -> authorize -> throttle (usage
//! plan) -> validate -> cache -> integrate -> respond -> cors (headers) -> log, over one [`Exchange`] per request. Each phase lives in its own module;
//! this one only strings them together (see `phases`).

use std::borrow::Cow;
use std::future::Future;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::request::Parts;
use http::{Method, Request, Response};
use tracing::Instrument;

use crate::authorize::{self, jwt::JwksFetcher};
use crate::cache::{self, ResponseCaches};
use crate::config::{
    ApiDefinition, DomainDefinition, GatewayDefinition, OneOrMany, Protocol, RateStoreDefinition,
    SharedStoreKind, UniqueMap,
};
use crate::deployment::{Api, CompileContext, CompiledRoute, Deployment, DeploymentId, Release};
use crate::domain::{Served, Unserved};
use crate::error::Error;
use crate::exchange::Exchange;
use crate::exchange::Step;
use crate::integrate;
use crate::integrate::http_proxy::HttpClient;
use crate::observe::{access_log_wanted, Record, RequestHead};
use crate::plugin::{PluginHost, PluginRuntime};
use crate::release::{Candidate, DeploymentInfo, Releases, KEEP_DEPLOYMENTS};
use crate::respond::{self, GatewayError, RequestIds, ResponseContext};
use crate::store::{KvStore, MemoryKv, RedbKv, RedisKv};
use crate::throttle::{self, RateStore, Usage, UsageError};
use crate::time::Clock;
use crate::trace::{enter, phase_span, RequestTrace};
use crate::validate;

/// API Gateway's payload limit: larger request bodies are answered 413.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// An API gateway serving one API, or several behind custom domains.
///
/// Cheap to clone (a shared handle); `Send + Sync`. An API is redeployed atomically while
/// requests are in flight with [`Gateway::deploy`] (or [`Gateway::reload`]): requests already
/// running finish on the deployment they started on.
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
}

/// What outlives a deployment: the settings, the key-value store and the plugin runtime.
struct Shared {
    /// What requests read: swapped whole on every deployment change.
    served: ArcSwap<Served>,
    /// The deployments and what each stage runs; changes are made under this lock, one at a
    /// time, then published to `served`.
    releases: Mutex<Releases>,
    kv: Arc<dyn KvStore>,
    /// The embedder's plugin host, if it gave one.
    plugin_host: Option<PluginHost>,
    /// Created when a definition first has plugins, on the embedder's host or on a host of the
    /// gateway's own, sized from its plugins' needs.
    plugin_runtime: Mutex<Option<Arc<PluginRuntime>>>,
    jwks_fetcher: Option<Arc<dyn JwksFetcher>>,
    /// Sends `http_proxy` integrations' requests.
    http_client: Option<Arc<dyn HttpClient>>,
    /// The time source of buckets and quotas.
    clock: Clock,
    /// The embedder's rate store, over the definition's `rateStore`.
    rate_store_override: Option<RateStoreDefinition>,
    /// Buckets and quota counters: kept across reloads while the store asked for stays the
    /// same.
    rate_store: Mutex<Option<Arc<RateStore>>>,
    /// The Redis the kv store is on (`kvStore: {type: redis}`), which a reload cannot change;
    /// `None` for a local store, and for the embedder's store (its own choice).
    kv_redis: Option<Option<RedisServer>>,
    /// The stages' response caches: answers survive a redeploy.
    response_caches: ResponseCaches,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("stages", &self.stage_names())
            .finish()
    }
}

/// Settings for a [`Gateway`] beyond the definition itself.
pub struct GatewayBuilder {
    /// The APIs (one for [`Gateway::builder`]), each with its base directory.
    apis: Vec<Candidate>,
    domains: UniqueMap<DomainDefinition>,
    keep: usize,
    kv: Option<Arc<dyn KvStore>>,
    data_dir: Option<PathBuf>,
    jwks_fetcher: Option<Arc<dyn JwksFetcher>>,
    http_client: Option<Arc<dyn HttpClient>>,
    plugin_host: Option<PluginHost>,
    clock: Clock,
    rate_store: Option<RateStoreDefinition>,
    /// The file the definition came from, named in errors.
    file: Option<PathBuf>,
}

impl GatewayBuilder {
    fn in_file(mut self, path: &Path) -> Self {
        self.file = Some(path.to_path_buf());
        self
    }

    /// The directory relative paths in the definition (plugin files) start from; by default
    /// the current directory, or the definition file's directory with [`Gateway::from_file`].
    /// (With a gateway file each API's paths start from its own file's directory.)
    pub fn base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        for api in &mut self.apis {
            api.base_dir = dir.clone();
        }
        self
    }

    /// How many deployments of each API are kept for [`Gateway::rollback`] (default 10; at
    /// least 1). A stage running an older one keeps it too.
    pub fn keep_deployments(mut self, count: usize) -> Self {
        self.keep = count;
        self
    }

    /// The key-value store behind the plugins' `kv` import (overrides [`Self::data_dir`] and
    /// the definition's `kvStore`).
    pub fn kv_store(mut self, store: Arc<dyn KvStore>) -> Self {
        self.kv = Some(store);
        self
    }

    /// Keeps the plugins' key-value data durably in `dir/kv.redb`; without it (and without
    /// [`Self::kv_store`]) the data lives in memory.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Fetches the key sets of JWT authorizers whose `jwks` names a `url` (Portico opens no
    /// sockets itself); without it such a definition does not load.
    pub fn jwks_fetcher(mut self, fetcher: Arc<dyn JwksFetcher>) -> Self {
        self.jwks_fetcher = Some(fetcher);
        self
    }

    /// Sends the requests of `http_proxy` integrations (Portico opens no sockets itself);
    /// without it a definition with such an integration does not load. portico-serve's
    /// `UpstreamClient` is one, on hyper-util's pooled client.
    pub fn http_client(mut self, client: Arc<dyn HttpClient>) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Runs the plugins on `host` (shared with whoever else holds it: components are compiled
    /// once per host, and each plugin reserves its share of the host's instance pool). Without
    /// it the gateway makes a host of its own, with [`PluginHost::builder`]'s defaults and a
    /// pool sized for its plugins (twice what their `maxConcurrency` instances take, so that
    /// a reload fits while the old plugins finish; a reload that needs more gets a larger
    /// host), the first time its definition has plugins.
    pub fn plugin_host(mut self, host: PluginHost) -> Self {
        self.plugin_host = Some(host);
        self
    }

    /// The time source of token buckets and quota periods (default [`Clock::system`]); a
    /// [`Clock::manual`] lets tests step through time.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Where buckets and quota counters live, whatever the definition's `rateStore` says
    /// (portico-serve's `--redis`).
    pub fn rate_store(mut self, store: RateStoreDefinition) -> Self {
        self.rate_store = Some(store);
        self
    }

    /// Compiles the definition (loading every plugin) and builds the gateway.
    ///
    /// Compiling a component takes up to seconds of CPU; inside a multi-thread tokio runtime it
    /// runs in `block_in_place`, so the worker's other tasks move on to other workers. On a
    /// current-thread runtime it runs in place: call this from `spawn_blocking` there if the
    /// runtime must not wait. [`Gateway::reload`] does the same.
    pub fn build(self) -> Result<Gateway, Error> {
        let file = self.file.clone();
        self.build_inner().map_err(|e| match &file {
            Some(path) => e.in_file(path),
            None => e,
        })
    }

    fn build_inner(self) -> Result<Gateway, Error> {
        let first = self
            .apis
            .first()
            .map(|api| &api.definition)
            .ok_or_else(|| {
                Error::config(
                    crate::KeyPath::root().key("apis"),
                    "a gateway serves at least one API",
                )
            })?;
        let wanted = wanted_rate_store(self.rate_store.as_ref(), first);
        let rate_store = Arc::new(RateStore::open(wanted, self.clock.clone())?);
        let kv_redis = match &self.kv {
            Some(_) => None,
            None => Some(kv_redis(first, &rate_store)?),
        };
        let kv: Arc<dyn KvStore> = match (self.kv, rate_store.redis(), self.data_dir) {
            (Some(kv), _, _) => kv,
            (None, Some(link), _) if matches!(kv_redis, Some(Some(_))) => {
                Arc::new(RedisKv::new(Arc::clone(link)))
            }
            (None, _, Some(dir)) => Arc::new(RedbKv::open(dir.join("kv.redb"))?),
            (None, _, None) => Arc::new(MemoryKv::new()),
        };
        let shared = Shared {
            served: ArcSwap::from_pointee(Served::new(Vec::new(), &UniqueMap::new())?),
            releases: Mutex::new(Releases::new(self.keep)),
            kv,
            plugin_host: self.plugin_host,
            plugin_runtime: Mutex::new(None),
            jwks_fetcher: self.jwks_fetcher,
            http_client: self.http_client,
            clock: self.clock,
            rate_store_override: self.rate_store,
            rate_store: Mutex::new(Some(rate_store)),
            kv_redis,
            response_caches: ResponseCaches::default(),
        };
        let gateway = Gateway {
            shared: Arc::new(shared),
        };
        gateway.publish(|releases, compile| {
            releases.deploy(self.apis, Some(self.domains), true, compile)
        })?;
        Ok(gateway)
    }
}

impl Shared {
    fn compile(
        &self,
        definition: Arc<ApiDefinition>,
        base_dir: &Path,
        release: &Release,
    ) -> Result<Api, Error> {
        let runtime = || -> Result<Arc<PluginRuntime>, Error> {
            let mut slot = self
                .plugin_runtime
                .lock()
                .map_err(|_| Error::PluginRuntime("lock poisoned".into()))?;
            if let Some(runtime) = slot.as_ref() {
                return Ok(Arc::clone(runtime));
            }
            let runtime = PluginRuntime::new(self.plugin_host.clone(), Arc::clone(&self.kv));
            *slot = Some(Arc::clone(&runtime));
            Ok(runtime)
        };
        let rate_store = self.rate_store(&definition)?;
        if let Some(at_start) = &self.kv_redis {
            if kv_redis(&definition, &rate_store)? != *at_start {
                return Err(Error::config(
                    crate::KeyPath::root().key("kvStore"),
                    "the plugins' key-value store (and its Redis) is chosen when the gateway starts: restart it to change kvStore",
                ));
            }
        }
        let context = CompileContext {
            base_dir,
            plugin_runtime: &runtime,
            jwks_fetcher: self.jwks_fetcher.as_ref(),
            rate_store: &rate_store,
            http_client: self.http_client.as_ref(),
            response_caches: &self.response_caches,
        };
        Api::compile(definition, &context, release)
    }

    /// The rate store `definition` asks for: the one already open when it is the same (so a
    /// reload keeps every bucket and quota), else a new one.
    fn rate_store(&self, definition: &ApiDefinition) -> Result<Arc<RateStore>, Error> {
        let wanted = wanted_rate_store(self.rate_store_override.as_ref(), definition);
        let mut slot = self
            .rate_store
            .lock()
            .map_err(|_| Error::PluginRuntime("rate store lock poisoned".into()))?;
        if let Some(store) = slot.as_ref().filter(|s| s.is(wanted)) {
            return Ok(Arc::clone(store));
        }
        let store = Arc::new(RateStore::open(wanted, self.clock.clone())?);
        *slot = Some(Arc::clone(&store));
        Ok(store)
    }
}

/// The rate store a gateway uses: the embedder's (portico-serve's `--redis`), else the
/// definition's `rateStore`, else memory.
fn wanted_rate_store<'a>(
    embedder: Option<&'a RateStoreDefinition>,
    definition: &'a ApiDefinition,
) -> &'a RateStoreDefinition {
    embedder
        .or(definition.rate_store.as_ref())
        .unwrap_or(&RateStoreDefinition::Memory)
}

/// A Redis server (or cluster): its `url` and `cluster`.
type RedisServer = (OneOrMany, bool);

/// The Redis `definition`'s `kvStore` is on: the rate store's (`Some`), or none for a local
/// store; a redis store without a Redis rate store is a load error at `kvStore.type`.
fn kv_redis(
    definition: &ApiDefinition,
    rate_store: &RateStore,
) -> Result<Option<RedisServer>, Error> {
    match definition.kv_store.map(|kv| kv.kind) {
        None | Some(SharedStoreKind::Local) => Ok(None),
        Some(SharedStoreKind::Redis) => match rate_store.settings() {
            RateStoreDefinition::Redis(redis) => Ok(Some((redis.url.clone(), redis.cluster))),
            RateStoreDefinition::Memory => Err(Error::config(
                crate::KeyPath::root().key("kvStore").key("type"),
                "a redis store needs a Redis server: set rateStore: {type: redis, url: ...} (or start portico-serve with --redis URL)",
            )),
        },
    }
}

impl Gateway {
    /// Settings beyond the definition: base directory, key-value store.
    pub fn builder(definition: ApiDefinition) -> GatewayBuilder {
        // The API's name in the gateway: its apiId, as `identity` resolves it.
        let name = definition
            .api_id
            .clone()
            .unwrap_or_else(|| definition.name.clone());
        GatewayBuilder {
            apis: vec![Candidate {
                name,
                definition,
                base_dir: PathBuf::from("."),
            }],
            domains: UniqueMap::new(),
            keep: KEEP_DEPLOYMENTS,
            kv: None,
            data_dir: None,
            jwks_fetcher: None,
            http_client: None,
            plugin_host: None,
            clock: Clock::system(),
            rate_store: None,
            file: None,
        }
    }

    /// Loads and compiles the definition in a YAML or JSON file; relative paths in it start
    /// from the file's directory.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::file_builder(path)?.build()
    }

    /// A builder for the definition in a file, for further settings.
    pub fn file_builder(path: impl AsRef<Path>) -> Result<GatewayBuilder, Error> {
        let path = path.as_ref();
        let definition = ApiDefinition::from_file(path)?;
        Ok(Self::builder(definition)
            .base_dir(directory_of(path))
            .in_file(path))
    }

    /// A builder for the APIs and custom domains of a gateway file
    /// (`portico-serve --gateway`); each API's relative paths start from its own file's
    /// directory.
    pub fn gateway_file_builder(path: impl AsRef<Path>) -> Result<GatewayBuilder, Error> {
        let path = path.as_ref();
        let (apis, domains) = read_gateway_file(path)?;
        let mut builder = Self::builder(ApiDefinition::default()).in_file(path);
        builder.apis = apis;
        builder.domains = domains;
        Ok(builder)
    }

    /// Compiles a typed definition (relative paths start from the current directory).
    pub fn new(definition: &ApiDefinition) -> Result<Self, Error> {
        Self::builder(definition.clone()).build()
    }

    /// Deploys `definition` to a gateway of one API (see [`Gateway::deploy`]); a gateway of
    /// several APIs names the one with `deploy`.
    pub fn reload(&self, definition: &ApiDefinition) -> Result<(), Error> {
        let names = self.api_names();
        match names.as_slice() {
            [name] => self.deploy(name, definition).map(|_| ()),
            _ => Err(Error::Release(format!(
                "this gateway serves {} APIs: deploy names the one to change",
                names.len()
            ))),
        }
    }

    /// Compiles `definition` as a new deployment of API `api` (a new API when the gateway has
    /// none of that name) and points every stage it defines at it, each stage's `canary`
    /// compiled too; then swaps it in atomically: requests already running finish on the
    /// deployment they started on, new requests see the new one. Plugins whose file and
    /// settings did not change are kept, not compiled again. On error nothing changes and
    /// the error says why. Relative paths start where the API's did.
    ///
    /// Compiling runs in `block_in_place` as [`GatewayBuilder::build`] says.
    pub fn deploy(&self, api: &str, definition: &ApiDefinition) -> Result<DeploymentId, Error> {
        let base_dir = self.with_releases(|r| r.base_dir(api))?;
        let candidate = Candidate {
            name: api.to_owned(),
            definition: definition.clone(),
            base_dir: base_dir.unwrap_or_else(|| PathBuf::from(".")),
        };
        let mut ids = self
            .publish(|releases, compile| releases.deploy(vec![candidate], None, false, compile))?;
        ids.pop()
            .ok_or_else(|| Error::Release("the deployment made no id".into()))
    }

    /// Reads a gateway file again and deploys every API in it, and its domains, all at once
    /// (APIs it no longer names are dropped): on an error nothing changes. Returns each
    /// API's new deployment id.
    pub fn deploy_gateway_file(
        &self,
        path: impl AsRef<Path>,
    ) -> Result<Vec<(String, DeploymentId)>, Error> {
        let path = path.as_ref();
        let (apis, domains) = read_gateway_file(path)?;
        let names: Vec<String> = apis.iter().map(|api| api.name.clone()).collect();
        let ids = self
            .publish(|releases, compile| releases.deploy(apis, Some(domains), true, compile))
            .map_err(|e| e.in_file(path))?;
        Ok(names.into_iter().zip(ids).collect())
    }

    /// Stage `stage` runs deployment `id` (one the gateway keeps, see
    /// [`Gateway::deployments`]) again, at once: nothing is compiled. The stage's canary, if
    /// any, stays.
    pub fn rollback(&self, stage: &str, id: &DeploymentId) -> Result<(), Error> {
        self.publish(|releases, _| releases.rollback(stage, id).map(|served| (served, ())))
    }

    /// The canary of stage `stage` of API `api` becomes the stage's deployment, its stage
    /// variable overrides merged into the stage's variables; the stage has no canary after.
    pub fn promote_canary(&self, api: &str, stage: &str) -> Result<(), Error> {
        self.publish(|releases, compile| {
            releases
                .promote(api, stage, compile)
                .map(|served| (served, ()))
        })
    }

    /// Stage `stage` of API `api` stops sending requests to its canary.
    pub fn remove_canary(&self, api: &str, stage: &str) -> Result<(), Error> {
        self.publish(|releases, _| {
            releases
                .remove_canary(api, stage)
                .map(|served| (served, ()))
        })
    }

    /// The deployments of API `api` the gateway keeps, oldest first, and the stages running
    /// each.
    pub fn deployments(&self, api: &str) -> Result<Vec<DeploymentInfo>, Error> {
        self.with_releases(|r| r.deployments(api))?
    }

    /// Forgets every answer the response cache of stage `stage` of API `api` holds, its
    /// canary's included (AWS's FlushStageCache); a stage without a cache has nothing to
    /// forget. A cache on Redis (`responseCache: {type: redis}`) is flushed for every gateway
    /// of the fleet, or not at all: [`Error::Unavailable`] when Redis does not answer.
    pub async fn flush_stage_cache(&self, api: &str, stage: &str) -> Result<(), Error> {
        let served = self.shared.served.load();
        let latest = served
            .apis
            .iter()
            .find(|served| served.name == api)
            .map(|served| &served.latest)
            .ok_or_else(|| Error::Release(format!("no API named \"{api}\"")))?;
        if latest.stage_named(stage).is_none() {
            return Err(Error::Release(format!(
                "API \"{api}\" has no stage \"{stage}\""
            )));
        }
        let api_id = latest.identity.api_id.clone();
        drop(served);
        self.shared.response_caches.flush(&api_id, stage).await
    }

    /// The names of the APIs served (a gateway built from one definition serves it under
    /// its `apiId`, or its `name` when it has none).
    pub fn api_names(&self) -> Vec<String> {
        self.with_releases(Releases::api_names).unwrap_or_default()
    }

    /// Whether an API this gateway serves now is a REST API (`protocol: rest`, its latest
    /// deployment). Only REST APIs read a request's [`HeaderCase`](crate::HeaderCase), so an
    /// embedder may skip capturing header spelling on connections opened while this is false.
    pub fn serves_rest(&self) -> bool {
        self.shared
            .served
            .load()
            .apis
            .iter()
            .any(|api| api.latest.protocol == Protocol::Rest)
    }

    fn with_releases<T>(&self, f: impl FnOnce(&Releases) -> T) -> Result<T, Error> {
        let releases = self
            .shared
            .releases
            .lock()
            .map_err(|_| Error::Release("the deployments' lock is poisoned".into()))?;
        Ok(f(&releases))
    }

    /// Makes a change to the deployments under their lock and publishes what it serves.
    fn publish<T>(
        &self,
        change: impl FnOnce(&mut Releases, &crate::release::Compile<'_>) -> Result<(Served, T), Error>,
    ) -> Result<T, Error> {
        let mut releases = self
            .shared
            .releases
            .lock()
            .map_err(|_| Error::Release("the deployments' lock is poisoned".into()))?;
        let shared = &self.shared;
        let compile = |definition: Arc<ApiDefinition>, base_dir: &Path, release: &Release| {
            shared.compile(definition, base_dir, release)
        };
        let (served, value) = change(&mut releases, &compile)?;
        self.shared.served.store(Arc::new(served));
        Ok(value)
    }

    /// What the keys of usage plan `plan` used from `start` to `end` (`YYYY-MM-DD`, UTC,
    /// inclusive), day by day: AWS's GetUsage, for one key (`key_id`) or all of the plan's.
    /// With several APIs, the first whose last deployment has the plan answers.
    pub async fn usage(
        &self,
        plan: &str,
        key_id: Option<&str>,
        start: &str,
        end: &str,
    ) -> Result<Usage, UsageError> {
        match self.api_with_plan(plan) {
            Some(api) => match &api.usage {
                Some(book) => book.usage(plan, key_id, start, end).await,
                None => Err(UsageError::UnknownPlan(plan.to_owned())),
            },
            None => Err(UsageError::UnknownPlan(plan.to_owned())),
        }
    }

    /// Gives API key `key_id` its whole quota of usage plan `plan` back for the current period
    /// (its usage by day stays as it was).
    pub async fn reset_quota(&self, plan: &str, key_id: &str) -> Result<(), UsageError> {
        match self
            .api_with_plan(plan)
            .as_ref()
            .and_then(|api| api.usage.as_ref())
        {
            Some(book) => book.reset_quota(plan, key_id).await,
            None => Err(UsageError::UnknownPlan(plan.to_owned())),
        }
    }

    /// The last deployment of the first API that has usage plan `plan`.
    fn api_with_plan(&self, plan: &str) -> Option<Arc<Api>> {
        let served = self.shared.served.load();
        served
            .apis
            .iter()
            .find(|api| api.latest.definition.usage_plans.get(plan).is_some())
            .or(served.apis.first())
            .map(|api| Arc::clone(&api.latest))
    }

    /// The names of the stages of the first API, `$default` first when there is one.
    pub fn stage_names(&self) -> Vec<String> {
        let served = self.shared.served.load();
        let Some(api) = served.apis.first() else {
            return Vec::new();
        };
        let api = &api.latest;
        let default = api
            .default_stage
            .as_ref()
            .map(|_| crate::stage::DEFAULT_STAGE.to_owned());
        default
            .into_iter()
            .chain(api.stages.iter().map(|(name, _)| name.clone()))
            .collect()
    }

    /// Answers one request. Never fails: every failure is an API Gateway gateway response.
    /// A `std::net::SocketAddr` in the request's extensions is taken as the client's address.
    pub fn handle(
        &self,
        request: Request<Bytes>,
    ) -> impl Future<Output = Response<Bytes>> + Send + '_ {
        let peer = crate::net::peer_ip(request.extensions());
        let (parts, body) = request.into_parts();
        async move { self.answer(&parts, body, peer).await }
    }

    /// [`Gateway::handle`] for a request (`parts`, `body`) from the client at `peer`.
    ///
    /// The request's future is moved through every layer up to the server's connection, so
    /// its size is paid on every request: this is not an `async fn` (whose arguments the
    /// future would hold twice, as arguments and as locals), it borrows the request's head
    /// from the caller's future instead of holding a copy, the CORS and phases layers are
    /// inlined here, and every phase that may wait boxes its wait (`Step`).
    pub(crate) fn answer<'a>(
        &'a self,
        parts: &'a Parts,
        body: Bytes,
        peer: Option<IpAddr>,
    ) -> impl Future<Output = Response<Bytes>> + Send + 'a {
        let served = self.shared.served.load_full();
        async move {
            let selected = served.select(parts);
            let api = selected.api;
            let stage = &selected.stage;
            let request_id = RequestIds::new(api.protocol == Protocol::Rest);
            // Boxed: only a traced stage's requests pay for it; the others' futures stay small.
            let trace = start_trace(api, stage, parts, &request_id);
            let mut x = exchange(api, parts, peer, body, &request_id);
            if let Some(trace) = &trace {
                x.trace = Some(trace);
                x.record.traced(trace.trace_id());
            }
            let head = parts.method == Method::HEAD;
            // Returned from here, so that the preflight's `Option` is not kept across the wait.
            if let Some(answer) = preflight(api, stage, &mut x) {
                return finish_and_log(api, &x.record, &request_id, answer, head, x.trace);
            }
            // A traced request's phases run in spans (boxed: only traced requests pay for the
            // larger future); the others' are compiled without a span in sight.
            let phased = match x.trace {
                None => phases::<false>(api, stage, &mut x).await,
                Some(_) => traced_phases(api, stage, &mut x).await,
            };
            let response = decorate(api, &mut x, phased);
            finish_and_log(api, &x.record, &request_id, response, head, x.trace)
        }
    }

    /// The gateway response for `error`, found before the body was read (too large,
    /// unreadable; see `crate::service`): rendered with the stage's gateway responses, logged
    /// and counted like every other answer.
    pub(crate) fn refuse_unread(
        &self,
        parts: &Parts,
        peer: Option<IpAddr>,
        error: GatewayError,
    ) -> Response<Bytes> {
        let served = self.shared.served.load_full();
        let selected = served.select(parts);
        let api = selected.api;
        let request_id = RequestIds::new(api.protocol == Protocol::Rest);
        let mut x = exchange(api, parts, peer, Bytes::new(), &request_id);
        // The stage phase alone: its gateway responses and log apply even to this answer.
        let error = match &selected.stage {
            Ok((stage, path)) => {
                stage.enter(&mut x, path);
                error
            }
            Err(unserved) => unserved.error(),
        };
        let response = refuse(&mut x, &error);
        finish_and_log(api, &x.record, &request_id, response, false, None)
    }
}

/// The directory a file's relative paths start from.
fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The APIs of a gateway file (each read from its file, or imported from its OpenAPI
/// document) and its domains; errors name the file they are about.
fn read_gateway_file(path: &Path) -> Result<(Vec<Candidate>, UniqueMap<DomainDefinition>), Error> {
    let gateway = GatewayDefinition::from_file(path)?;
    let dir = directory_of(path);
    let mut apis = Vec::new();
    for (name, source) in gateway.apis.iter() {
        let at = crate::KeyPath::root().key("apis").key(name);
        let in_gateway_file = |e: Error| e.in_file(path);
        let (definition, file) = match (&source.file, &source.openapi) {
            (Some(file), None) => {
                let file = dir.join(file);
                (ApiDefinition::from_file(&file)?, file)
            }
            (None, Some(document)) => {
                let document = dir.join(document);
                let mut options = crate::OpenApiOptions::new()
                    .fail_on_warnings(source.fail_on_warnings)
                    .protocol(source.protocol.unwrap_or_default());
                if let Some(stage) = &source.stage {
                    options = options.stage(stage.clone());
                }
                if let Some(functions) = &source.functions {
                    options = options
                        .functions(crate::openapi::FunctionsFile::from_file(dir.join(functions))?);
                }
                let import = ApiDefinition::from_openapi_file(&document, &options)?;
                (import.definition, document)
            }
            _ => {
                return Err(in_gateway_file(Error::config(
                    at,
                    "an API is read from one file: give file (a Portico definition) or openapi (an OpenAPI document)",
                )))
            }
        };
        if source.file.is_some()
            && (source.functions.is_some()
                || source.stage.is_some()
                || source.protocol.is_some()
                || source.fail_on_warnings)
        {
            return Err(in_gateway_file(Error::config(
                at,
                "functions, stage, protocol and failOnWarnings are settings of an openapi import",
            )));
        }
        apis.push(Candidate {
            name: name.to_owned(),
            definition,
            base_dir: directory_of(&file),
        });
    }
    if apis.is_empty() {
        return Err(Error::config(
            crate::KeyPath::root().key("apis"),
            "a gateway file names at least one API",
        )
        .in_file(path));
    }
    Ok((apis, gateway.domains))
}

/// The request's context before any phase ran.
fn exchange<'a>(
    api: &'a Api,
    parts: &'a Parts,
    peer: Option<IpAddr>,
    body: Bytes,
    request_id: &'a RequestIds,
) -> Exchange<'a> {
    let record = Record::new(
        RequestHead::new(parts, peer),
        access_log_wanted(api.access_logs),
    );
    Exchange::new(
        parts,
        body,
        request_id,
        &api.identity,
        api.protocol == Protocol::Rest,
        &api.responses,
        record,
    )
}

/// CORS before the phases: a preflight is the gateway's to answer, for every path, before any
/// route (logged and counted under the stage the path names, with no route).
fn preflight<'a>(
    api: &'a Api,
    stage: &'a StageChoice<'a>,
    x: &mut Exchange<'a>,
) -> Option<Response<Bytes>> {
    let cors = api.cors.as_ref()?;
    let answer = cors.preflight(&x.parts.method, &x.parts.headers)?;
    if preflight_meets_default_authorizer(stage, x) {
        return None;
    }
    if let Ok((deployment, _)) = stage {
        x.record.reached_stage(&deployment.log);
    }
    Some(answer)
}

/// After the phases: a refusal rendered (the respond phase), the RateLimit headers and the
/// CORS headers its origin is allowed added to every answer.
fn decorate(
    api: &Api,
    x: &mut Exchange<'_>,
    phased: Result<Response<Bytes>, GatewayError>,
) -> Response<Bytes> {
    let mut response = match phased {
        Ok(response) => response,
        Err(error) => refuse(x, &error),
    };
    if let Some(note) = &x.rate_limit {
        throttle::add_rate_limit_headers(note, response.headers_mut());
    }
    if let Some(cors) = &api.cors {
        cors.decorate(x.parts.headers.get(http::header::ORIGIN), &mut response);
    }
    response
}

/// Whether a CORS preflight goes through the phases instead of being answered by the gateway:
/// when the route it reaches is `$default` with an authorizer. AWS's "Configuring CORS for an
/// HTTP API with a $default route and JWT authorizer" (http-api-cors.md): "The $default route
/// catches requests for all methods and routes that you haven't explicitly defined, including
/// OPTIONS requests. To support unauthorized OPTIONS requests, add an OPTIONS /{proxy+} route
/// to your API that doesn't require authorization". Any other route's preflight is the
/// gateway's to answer ("API Gateway automatically sends a response to preflight OPTIONS
/// requests").
fn preflight_meets_default_authorizer(stage: &StageChoice<'_>, x: &Exchange<'_>) -> bool {
    let Ok((deployment, path)) = stage else {
        return false;
    };
    deployment
        .router
        .at(&x.parts.method, path)
        .is_some_and(|m| m.route_key() == "$default" && m.value.auth.has_authorizer())
}

/// The phases, in order. Each takes the request's [`Exchange`] and either lets it go on or
/// answers now with a gateway response; integrate answers when all the others let it pass.
/// A new phase is a module with a `phase` function and one line here.
async fn phases<'a, const TRACED: bool>(
    api: &'a Api,
    stage: &'a StageChoice<'a>,
    x: &mut Exchange<'a>,
) -> Result<Response<Bytes>, GatewayError> {
    // On a traced stage (`TRACED`) each phase runs in its span (`crate::trace`), entered by a
    // guard scoped to the phase's synchronous part. An untraced request's copy of this
    // function has `trace` constant `None`: no span, no branch, the same code as before
    // tracing existed (branching on the request's trace here cost about 400 instructions a
    // mock request, `pipeline_ic::gateway_mock`, mostly in moves of the phases' results).
    let trace = if TRACED { x.trace } else { None };
    // A phase that may wait (on Redis, on an authorizer): its synchronous part inside its
    // span, and its wait, if any, carried in the same span.
    macro_rules! waiting_phase {
        ($name:literal, $step:expr) => {{
            let span = phase_span!(trace, $name);
            let step = {
                let _in = enter(&span);
                $step
            };
            match step {
                Step::Now(flow) => flow?,
                Step::Wait(wait) => traced(wait, span).await?,
            }
        }};
    }
    let route = {
        let span = phase_span!(trace, "route");
        let _in = enter(&span);
        let route = stage_and_route(stage, x)?;
        if let Some(trace) = trace {
            trace.span().record("http.route", x.route_key);
        }
        route
    };
    waiting_phase!("throttle", throttle::server(&route.throttle, x));
    waiting_phase!("authorize", authorize::phase(&route.auth, &api.access, x));
    waiting_phase!("throttle", throttle::client(&route.throttle, x));
    {
        let span = phase_span!(trace, "validate");
        let _in = enter(&span);
        validate::phase(&route.validation, x)?;
    }
    let cached = {
        let span = phase_span!(trace, "cache");
        let _in = enter(&span);
        cache::phase(&route.cache, x)?
    };
    match cached {
        None => Ok(waiting_phase!(
            "integrate",
            integrate::phase(&route.integration, x)
        )),
        // Boxed: the cache's future holds the integration's, and would make every request's
        // future that much larger. The integrate phase runs only on a miss.
        Some(lookup) => {
            let span = phase_span!(trace, "integrate").unwrap_or_else(tracing::Span::none);
            let integrate = async { integrate::phase(&route.integration, x).outcome().await };
            Box::pin(lookup.answer(integrate.instrument(span)))
                .await
                .settle(x)
        }
    }
}

/// [`phases`] of a traced request, boxed; out of line, so that the untraced path's code
/// stays as it was (inlined where it was).
#[inline(never)]
fn traced_phases<'a, 'x>(
    api: &'a Api,
    stage: &'a StageChoice<'a>,
    x: &'x mut Exchange<'a>,
) -> std::pin::Pin<Box<dyn Future<Output = Result<Response<Bytes>, GatewayError>> + Send + 'x>>
where
    'a: 'x,
{
    Box::pin(phases::<true>(api, stage, x))
}

/// A phase's wait inside the phase's span (when the request is traced).
fn traced<'f, T>(
    wait: std::pin::Pin<Box<dyn Future<Output = Result<T, GatewayError>> + Send + 'f>>,
    span: Option<tracing::Span>,
) -> std::pin::Pin<Box<dyn Future<Output = Result<T, GatewayError>> + Send + 'f>>
where
    T: 'f,
{
    match span {
        Some(span) => Box::pin(wait.instrument(span)),
        None => wait,
    }
}

/// The request's trace when its stage traces (`tracingEnabled`), boxed (see `answer`).
fn start_trace(
    api: &Api,
    stage: &StageChoice<'_>,
    parts: &Parts,
    request_id: &RequestIds,
) -> Option<Box<RequestTrace>> {
    let Ok((deployment, _)) = stage else {
        return None;
    };
    if !deployment.tracing {
        return None;
    }
    #[cfg(feature = "otel")]
    return Some(Box::new(RequestTrace::start(
        parts,
        &api.identity.api_id,
        &deployment.stage,
        request_id.id(),
    )));
    // Without the `otel` feature no stage traces (a load error).
    #[cfg(not(feature = "otel"))]
    {
        let _ = (api, parts, request_id);
        None
    }
}

/// The stage the host/domain and stage phases chose (`crate::domain`) and the path within
/// it, or the refusal when none serves the request.
type StageChoice<'a> = Result<(&'a Deployment, Cow<'a, str>), Unserved>;

/// The stage and route phases, and API Gateway's payload limit between them (a 413 is
/// rendered with the stage's gateway responses): the compiled route the request is for.
fn stage_and_route<'a>(
    stage: &'a StageChoice<'a>,
    x: &mut Exchange<'a>,
) -> Result<&'a CompiledRoute, GatewayError> {
    let (deployment, path) = stage.as_ref().map_err(|unserved| unserved.error())?;
    deployment.enter(x, path);
    if x.body.len() > MAX_BODY_BYTES {
        return Err(GatewayError::too_large());
    }
    deployment.route(x)
}

/// The respond phase for a refusal: the gateway response of `error`, rendered with the
/// stage's overrides once a stage is known.
fn refuse(x: &mut Exchange<'_>, error: &GatewayError) -> Response<Bytes> {
    x.record.failed(error);
    let context = ResponseContext {
        request_id: x.request_id,
        rest: x.rest,
        stage: x.stage,
        api_id: &x.api.api_id,
        request: Some(&*x),
    };
    x.responses.render(error, &context)
}

/// The respond phase's last step (the request id header; no body for `HEAD`), then the log
/// phase: what every answer goes through once.
fn finish_and_log(
    api: &Api,
    record: &Record<'_>,
    request_id: &RequestIds,
    mut response: Response<Bytes>,
    head: bool,
    trace: Option<&RequestTrace>,
) -> Response<Bytes> {
    let Some(trace) = trace else {
        respond::finish(&mut response, request_id, head);
        record.finish(&api.identity.api_id, request_id, &response);
        return response;
    };
    {
        let span = phase_span!(Some(trace), "respond");
        let _in = enter(&span);
        respond::finish(&mut response, request_id, head);
        trace.finish(&mut response);
    }
    let span = phase_span!(Some(trace), "log");
    let _in = enter(&span);
    record.finish(&api.identity.api_id, request_id, &response);
    response
}

/// Hooks for the benchmarks in benches/ (the `bench` cargo feature): parts of the request path
/// measured alone. Not part of the API.
#[cfg(feature = "bench")]
impl Gateway {
    /// Runs the phases up to authorize only: an empty 200 when the request would reach its
    /// integration, else the gateway response that refuses it.
    #[doc(hidden)]
    pub async fn authorize_only(&self, request: Request<Bytes>) -> Response<Bytes> {
        let served = self.shared.served.load_full();
        let (parts, body) = request.into_parts();
        let selected = served.select(&parts);
        let api = selected.api;
        let request_id = RequestIds::new(api.protocol == Protocol::Rest);
        let peer = crate::net::peer_ip(&parts.extensions);
        let mut x = exchange(api, &parts, peer, body, &request_id);
        let authorized = async {
            let route = stage_and_route(&selected.stage, &mut x)?;
            authorize::phase(&route.auth, &api.access, &mut x)
                .outcome()
                .await
        };
        match authorized.await {
            Ok(()) => Response::new(Bytes::new()),
            Err(error) => refuse(&mut x, &error),
        }
    }

    /// [`Gateway::handle`], plus building the request's payload 2.0 Lambda event from the
    /// exchange the phases filled, as a plugin integration would get it: the whole path's cost
    /// measured with a mock.
    #[doc(hidden)]
    pub async fn handle_with_lambda_event(&self, request: Request<Bytes>) -> Response<Bytes> {
        let served = self.shared.served.load_full();
        let (parts, body) = request.into_parts();
        let selected = served.select(&parts);
        let api = selected.api;
        let request_id = RequestIds::new(api.protocol == Protocol::Rest);
        let peer = crate::net::peer_ip(&parts.extensions);
        let mut x = exchange(api, &parts, peer, body, &request_id);
        let response = match preflight(api, &selected.stage, &mut x) {
            Some(answer) => answer,
            None => {
                let phased = phases::<false>(api, &selected.stage, &mut x).await;
                decorate(api, &mut x, phased)
            }
        };
        std::hint::black_box(integrate::lambda_event(integrate::PayloadVersion::V2, &x));
        finish_and_log(api, &x.record, &request_id, response, false, None)
    }

    /// Forgets every authorizer's cached results (JWT verifications, custom decisions), so the
    /// next requests pay for a full check.
    #[doc(hidden)]
    pub fn clear_authorizer_caches(&self) {
        for api in &self.shared.served.load().apis {
            api.latest.access.clear_caches();
        }
    }

    /// Instantiates plugin `name` on a fresh store and drops it: what every call pays before
    /// the plugin runs; false if there is no such plugin or it failed.
    #[doc(hidden)]
    pub async fn instantiate_plugin(&self, name: &str) -> bool {
        let served = self.shared.served.load_full();
        let Some(api) = served.apis.first() else {
            return false;
        };
        match api.latest.plugins.get(name) {
            Some(plugin) => plugin.instantiate_only().await.is_ok(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Format;

    const API: &str = r#"
name: t
routes:
  GET /health:
    integration: {type: mock, body: 'table=${stageVariables.TABLE}'}
stages:
  dev: {variables: {TABLE: dev-Users}}
  prod: {variables: {TABLE: prod-Users}}
"#;

    fn gateway(text: &str) -> Gateway {
        Gateway::new(&ApiDefinition::from_str_as(text, Format::Yaml).unwrap()).unwrap()
    }

    fn get(path: &str) -> Request<Bytes> {
        Request::get(path).body(Bytes::new()).unwrap()
    }

    #[tokio::test]
    async fn stages_route_and_substitute() {
        let gw = gateway(API);
        let r = gw.handle(get("/dev/health")).await;
        assert_eq!(
            (r.status().as_u16(), r.body().as_ref()),
            (200, b"table=dev-Users".as_ref())
        );
        let r = gw.handle(get("/prod/health?x=1")).await;
        assert_eq!(r.body(), "table=prod-Users");
        assert_eq!(r.headers()["apigw-requestid"].len(), 16);
        let r = gw.handle(get("/health")).await;
        assert_eq!(
            (r.status().as_u16(), r.body().as_ref()),
            (404, br#"{"message":"Not Found"}"#.as_ref())
        );
    }

    #[tokio::test]
    async fn head_keeps_headers_and_drops_body() {
        let gw = gateway(&API.replace("GET /health", "ANY /health"));
        let r = gw
            .handle(Request::head("/dev/health").body(Bytes::new()).unwrap())
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-length"], "15");
        assert!(r.body().is_empty());
    }

    #[tokio::test]
    async fn reload_swaps_atomically_and_keeps_old_on_error() {
        let gw = gateway(API);
        let clone = gw.clone();
        let mut next =
            ApiDefinition::from_str_as(&API.replace("table=", "t="), Format::Yaml).unwrap();
        gw.reload(&next).unwrap();
        assert_eq!(clone.handle(get("/dev/health")).await.body(), "t=dev-Users");
        next.stages = Default::default();
        assert!(gw.reload(&next).is_err());
        assert_eq!(clone.handle(get("/dev/health")).await.body(), "t=dev-Users");
    }

    #[tokio::test]
    async fn deployments_are_kept_for_an_instant_rollback_of_one_stage() {
        let gw = gateway(API).clone();
        let name = gw.api_names().remove(0);
        let first = gw.deployments(&name).unwrap()[0].id.clone();
        let next = ApiDefinition::from_str_as(&API.replace("table=", "t="), Format::Yaml).unwrap();
        let second = gw.deploy(&name, &next).unwrap();
        assert_ne!(first, second);
        assert_eq!(gw.handle(get("/dev/health")).await.body(), "t=dev-Users");
        gw.rollback("dev", &first).unwrap();
        assert_eq!(
            gw.handle(get("/dev/health")).await.body(),
            "table=dev-Users"
        );
        assert_eq!(gw.handle(get("/prod/health")).await.body(), "t=prod-Users");
        let kept = gw.deployments(&name).unwrap();
        assert_eq!(kept.len(), 2);
        assert_eq!(
            (kept[0].stages.clone(), kept[1].stages.clone()),
            (vec!["dev".to_owned()], vec!["prod".to_owned()])
        );
        assert!(matches!(
            gw.rollback("dev", &"zzzzzz".parse().unwrap()),
            Err(Error::Release(_))
        ));
        // Only the last `keep` deployments stay.
        let small = Gateway::builder(next.clone())
            .keep_deployments(2)
            .build()
            .unwrap();
        let ids: Vec<DeploymentId> = (0..3)
            .map(|_| small.deploy(&name, &next).unwrap())
            .collect();
        let kept: Vec<DeploymentId> = small
            .deployments(&name)
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(kept, ids[1..]);
    }

    #[tokio::test]
    async fn a_canary_runs_a_kept_deployment_or_another_file_with_the_stage_variables() {
        let gw = gateway(API);
        let name = gw.api_names().remove(0);
        let first = gw.deployments(&name).unwrap()[0].id.clone();
        let with_canary = |canary: &str| {
            let text = API.replace("table=", "t=").replace(
                "dev: {variables: {TABLE: dev-Users}}",
                &format!("dev: {{variables: {{TABLE: dev-Users}}, canary: {canary}}}"),
            );
            ApiDefinition::from_str_as(&text, Format::Yaml).unwrap()
        };
        // A kept deployment by id, all traffic: the old body, the overridden variable.
        let next = with_canary(&format!("{{percentTraffic: 100, deployment: {first}, stageVariableOverrides: {{TABLE: canary-Users}}}}"));
        gw.deploy(&name, &next).unwrap();
        assert_eq!(
            gw.handle(get("/dev/health")).await.body(),
            "table=canary-Users"
        );
        assert_eq!(gw.handle(get("/prod/health")).await.body(), "t=prod-Users");
        // No traffic: the stage's own.
        gw.deploy(
            &name,
            &with_canary(&format!("{{percentTraffic: 0, deployment: {first}}}")),
        )
        .unwrap();
        assert_eq!(gw.handle(get("/dev/health")).await.body(), "t=dev-Users");
        // An unknown id is a load error at its key; the running deployment stays.
        let error = gw
            .deploy(
                &name,
                &with_canary("{percentTraffic: 5, deployment: nope12}"),
            )
            .unwrap_err()
            .to_string();
        assert!(error.contains("stages.dev.canary.deployment"), "{error}");
        assert_eq!(gw.handle(get("/dev/health")).await.body(), "t=dev-Users");
        // Another definition file, relative to the API's directory; then promoted.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("v2.yaml"),
            "name: t\nroutes:\n  GET /health:\n    integration: {type: mock, body: 'v2 ${stageVariables.TABLE}'}\nstages:\n  other: {}\n",
        )
        .unwrap();
        let file = dir.path().join("api.yaml");
        let text = API.replace("dev: {variables: {TABLE: dev-Users}}", "dev: {variables: {TABLE: dev-Users}, canary: {percentTraffic: 100, deployment: v2.yaml, stageVariableOverrides: {TABLE: c-Users}}}");
        std::fs::write(&file, text).unwrap();
        let gw = Gateway::from_file(&file).unwrap();
        assert_eq!(gw.handle(get("/dev/health")).await.body(), "v2 c-Users");
        gw.promote_canary(&name, "dev").unwrap();
        assert_eq!(gw.handle(get("/dev/health")).await.body(), "v2 c-Users");
        assert!(matches!(
            gw.promote_canary(&name, "dev"),
            Err(Error::Release(_))
        ));
        let kept = gw.deployments(&name).unwrap();
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert_eq!(kept[1].stages, vec!["dev".to_owned()]);
        assert!(kept[1].canary_stages.is_empty());
    }

    #[tokio::test]
    async fn body_over_ten_megabytes_is_413() {
        let gw = gateway(API);
        let body = Bytes::from(vec![b'a'; MAX_BODY_BYTES + 1]);
        let r = gw
            .handle(Request::post("/dev/health").body(body).unwrap())
            .await;
        assert_eq!(r.status(), 413);
        assert_eq!(r.body(), r#"{"message":"Request Entity Too Large"}"#);
    }
}
