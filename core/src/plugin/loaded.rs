//! Loaded components and their limits: [`PluginRuntime`] loads the plugins of a definition on
//! its host (compiled, checked against their world, linked, their share of the host's pool
//! reserved, provisioned instances made), and [`LoadedPlugin`] runs calls on them, each on an
//! instance leased from the plugin's [`Instances`], under a time limit and a memory cap.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use wasmtime::component::Resource;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::bindings::{self, IncomingRequest};
use super::call::{AuthCall, AuthVerdict, CallRequest, CallResponse, PluginFailure};
use super::host::{Confinement, FileStamp, PerEngine, PluginHost, PoolShare};
use super::instances::{Bound, Instances, Lease, Lifecycle, Pre, Slot, StoreParts};
use super::needs::{read_component, PoolNeeds};
use crate::config::{InstanceLifecycle, PluginDefinition, PluginWorld};
use crate::error::{Error, KeyPath};
use crate::store::KvStore;

/// Default time limits, as in API Gateway (29 s for integrations, 10 s for authorizers).
const INTEGRATION_TIMEOUT: Duration = Duration::from_millis(29_000);
const AUTHORIZER_TIMEOUT: Duration = Duration::from_millis(10_000);
/// Default memory cap of one instance.
const DEFAULT_MEMORY_MB: u64 = 128;
/// Default `maxConcurrency`.
pub(crate) const DEFAULT_MAX_CONCURRENCY: u32 = 64;
/// The largest `maxConcurrency` (Lambda's default account concurrency).
const MAX_CONCURRENCY: u32 = 1000;
/// Default `maxQueued`, and its largest value.
const DEFAULT_MAX_QUEUED: u32 = 1000;
const MAX_QUEUED: u32 = 100_000;
/// Default `queueTimeoutMs`; at most API Gateway's 29 s integration timeout.
const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_millis(1000);
const MAX_QUEUE_TIMEOUT_MS: u64 = 29_000;
/// The largest `idleSeconds` (a day).
const MAX_IDLE_SECONDS: u64 = 86_400;
/// A gateway's own host is sized for twice its plugins' needs, so that a reload that changes
/// every plugin still fits while the old ones serve their last calls.
const OWN_HOST_HEADROOM: u64 = 2;

/// What every plugin of a gateway shares: the plugin host and the gateway's key-value store.
/// Lives as long as the gateway, across reloads.
pub(crate) struct PluginRuntime {
    /// The embedder's host; `None` when the gateway sizes a host of its own.
    embedder: Option<PluginHost>,
    /// The gateway's own host, sized from its plugins' needs; replaced by a larger one when a
    /// reload needs more than is left of it.
    own: Mutex<Option<PluginHost>>,
    kv: Arc<dyn KvStore>,
    /// The plugins loaded and still in use: a reload that leaves a plugin as it was keeps it
    /// (its warm instances and its share of the pool), as an API redeploy leaves its Lambdas
    /// alone.
    loaded: Mutex<Kept>,
}

/// Every loaded version of each plugin still in use, by API id and plugin name (an API's
/// kept deployments and canaries may run several).
type Kept = HashMap<(String, String), Vec<Weak<LoadedPlugin>>>;

/// The loaded plugin `candidate` would load as, if there is one in use.
fn kept(
    loaded: &Kept,
    candidate: &Candidate<'_>,
    api_id: &str,
    host: &PluginHost,
) -> Option<Arc<LoadedPlugin>> {
    loaded
        .get(&(api_id.to_owned(), candidate.name.to_owned()))?
        .iter()
        .filter_map(Weak::upgrade)
        .find(|plugin| plugin.same_as(candidate, api_id, host))
}

/// A plugin of the definition, read and measured but not compiled yet.
struct Candidate<'a> {
    name: &'a str,
    definition: &'a PluginDefinition,
    at: KeyPath,
    path: PathBuf,
    canonical: PathBuf,
    bytes: Vec<u8>,
    stamp: FileStamp,
    /// The names its component exports.
    exports: Vec<String>,
    /// How its instances live: its setting, else its world's default. Known before it is
    /// compiled, as it decides the engine (`Confinement`) it is compiled for.
    instances: InstanceLifecycle,
    /// What its `maxConcurrency` instances take of that engine's pool.
    needs: PoolNeeds,
    /// What one instance takes.
    per_instance: PoolNeeds,
    concurrency: u32,
}

impl Candidate<'_> {
    /// The engine its instances run on.
    fn confinement(&self) -> Confinement {
        Confinement::of(self.instances)
    }

    /// What it takes of each engine's pool.
    fn share(&self) -> PerEngine {
        PerEngine::on(self.confinement(), self.needs)
    }
}

impl PluginRuntime {
    /// A runtime for a gateway whose plugins run on the embedder's `host`, or on a host of the
    /// gateway's own (sized from its plugins) when `None`, and use `kv`.
    pub(crate) fn new(host: Option<PluginHost>, kv: Arc<dyn KvStore>) -> Arc<Self> {
        Arc::new(PluginRuntime {
            embedder: host,
            own: Mutex::new(None),
            kv,
            loaded: Mutex::new(HashMap::new()),
        })
    }

    /// Loads the `plugins` of a definition (found at `at`, the `plugins` key) for the API
    /// `api_id`: compiled and linked, their share of the host's pool reserved, their
    /// provisioned instances made. A plugin loaded before with the same file and settings is
    /// kept as it is.
    pub(crate) fn load_all<'a>(
        &self,
        api_id: &str,
        plugins: impl IntoIterator<Item = (&'a str, &'a PluginDefinition)>,
        base_dir: &Path,
        at: &KeyPath,
    ) -> Result<BTreeMap<String, Arc<LoadedPlugin>>, Error> {
        let candidates = plugins
            .into_iter()
            .map(|(name, definition)| read(name, definition, base_dir, &at.key(name)))
            .collect::<Result<Vec<_>, Error>>()?;
        let mut loaded = self
            .loaded
            .lock()
            .map_err(|_| Error::PluginRuntime("plugin list poisoned".into()))?;
        let host = self.host_for(&candidates, &loaded, api_id)?;
        let mut plugins = BTreeMap::new();
        for candidate in candidates {
            let plugin = match kept(&loaded, &candidate, api_id, &host) {
                Some(plugin) => plugin,
                None => self.load_one(&candidate, &host, api_id)?,
            };
            plugins.insert(candidate.name.to_owned(), plugin);
        }
        // Every version still in use stays findable (the API's other deployments, canaries,
        // other APIs); the dropped ones are forgotten.
        for (name, plugin) in &plugins {
            let versions = loaded.entry((api_id.to_owned(), name.clone())).or_default();
            if !versions.iter().any(|v| v.as_ptr() == Arc::as_ptr(plugin)) {
                versions.push(Arc::downgrade(plugin));
            }
        }
        loaded.retain(|_, versions| {
            versions.retain(|v| v.strong_count() > 0);
            !versions.is_empty()
        });
        Ok(plugins)
    }

    /// The host the candidates load on: the embedder's; else the gateway's own while what
    /// they need beyond the plugins kept fits in it, else a new own host sized for them all.
    fn host_for(
        &self,
        candidates: &[Candidate<'_>],
        loaded: &Kept,
        api_id: &str,
    ) -> Result<PluginHost, Error> {
        if let Some(host) = &self.embedder {
            return Ok(host.clone());
        }
        let mut own = self
            .own
            .lock()
            .map_err(|_| Error::PluginRuntime("plugin host poisoned".into()))?;
        if let Some(host) = own.as_ref() {
            let added = candidates
                .iter()
                .filter(|c| kept(loaded, c, api_id, host).is_none())
                .fold(PerEngine::default(), |total, c| total.plus(c.share()));
            if host.has_room_for(added) {
                return Ok(host.clone());
            }
        }
        let all = candidates
            .iter()
            .fold(PerEngine::default(), |total, c| total.plus(c.share()));
        let host = PluginHost::sized(all.times(OWN_HOST_HEADROOM))?;
        *own = Some(host.clone());
        Ok(host)
    }

    /// Compiles and links one plugin on `host`, reserves its share of the pool and makes its
    /// provisioned instances.
    fn load_one(
        &self,
        candidate: &Candidate<'_>,
        host: &PluginHost,
        api_id: &str,
    ) -> Result<Arc<LoadedPlugin>, Error> {
        let Candidate {
            name,
            definition,
            at,
            path,
            canonical,
            bytes,
            stamp,
            exports,
            instances,
            ..
        } = candidate;
        let confinement = candidate.confinement();
        let fail = |message: String| {
            Error::config(at.key("path"), format!("{}: {message}", path.display()))
        };
        let exported = exported_world(exports);
        let world = match (definition.world, exported) {
            (Some(declared), found) => {
                if found != Some(declared) {
                    return Err(fail(format!(
                        "does not export the {declared} world ({})",
                        describe_exports(exports)
                    )));
                }
                declared
            }
            (None, Some(found)) => found,
            (None, None) => {
                return Err(fail(format!(
                    "exports none of the integration world (`handle`), the lazy-integration world (`handle-request`), the lambda world (`handle-event`), the authorizer world (`authorize`) or wasi:http/incoming-handler ({})",
                    describe_exports(exports)
                )))
            }
        };
        let default_timeout = if world == PluginWorld::Authorizer {
            AUTHORIZER_TIMEOUT
        } else {
            INTEGRATION_TIMEOUT
        };
        let timeout = match definition.timeout_ms {
            Some(0) => return Err(Error::config(at.key("timeoutMs"), "must be at least 1")),
            Some(ms) => Duration::from_millis(ms),
            None => default_timeout,
        };
        let memory_mb = definition.memory_mb.unwrap_or(DEFAULT_MEMORY_MB);
        let max_memory_mb = host.max_memory_mb();
        if memory_mb == 0 || memory_mb > max_memory_mb {
            return Err(Error::config(
                at.key("memoryMb"),
                format!("must be 1-{max_memory_mb}"),
            ));
        }
        let lifecycle = lifecycle(definition, world, *instances, timeout, at)?;
        let component = host
            .component(canonical, bytes, *stamp, confinement)
            .map_err(fail)?;
        let instance_pre = host
            .linker(confinement)
            .instantiate_pre(&component)
            .map_err(|e| {
                fail(format!(
                    "imports something the host does not provide: {e:#}"
                ))
            })?;
        let pre = match world {
            PluginWorld::Integration => bindings::HandleExport::new(&instance_pre)
                .map(|handle| Pre::Integration(instance_pre, handle)),
            PluginWorld::LazyIntegration => {
                bindings::lazy_integration::LazyIntegrationPre::new(instance_pre)
                    .map(Pre::LazyIntegration)
            }
            PluginWorld::Lambda => bindings::lambda::LambdaPre::new(instance_pre).map(Pre::Lambda),
            PluginWorld::Authorizer => {
                bindings::authorizer::AuthorizerPre::new(instance_pre).map(Pre::Authorizer)
            }
            PluginWorld::WasiHttp => ProxyPre::new(instance_pre).map(Pre::WasiHttp),
        }
        .map_err(|e| fail(format!("does not match the {world} world: {e:#}")))?;

        let share = host.reserve(candidate.needs, confinement).map_err(|left| {
            Error::config(
                at.clone(),
                format!(
                    "needs room in the plugin host's pool for {} instances (maxConcurrency) of {} each: {}; the pool has {} left (of {}). Lower maxConcurrency, or give the gateway a host with more max_instances",
                    candidate.concurrency,
                    describe_one(candidate.per_instance),
                    candidate.needs,
                    left,
                    host.capacity(confinement)
                ),
            )
        })?;
        let name: Arc<str> = Arc::from(*name);
        let provisioned = lifecycle.provisioned;
        let idle_limited = lifecycle.idle.is_some();
        let instances = Instances::new(
            lifecycle,
            pre,
            StoreParts {
                engine: host.engine(confinement).clone(),
                plugin: Arc::clone(&name),
                config: Arc::new(definition.config.clone()),
                kv: Arc::clone(&self.kv),
                memory_bytes: (memory_mb as usize) << 20,
                running: Arc::clone(host.running()),
            },
            api_id,
        );
        if idle_limited {
            let sweeper: Arc<dyn super::host::Sweep> = instances.clone();
            host.sweep_now_and_then(Arc::downgrade(&sweeper));
        }
        if provisioned > 0 {
            let made = super::host::run_to_completion(instances.provision())
                .map_err(PluginFailure::Trap)
                .and_then(|made| made);
            if let Err(failure) = made {
                return Err(Error::config(
                    at.key("provisioned"),
                    format!("cannot create the provisioned instances: the plugin {failure}"),
                ));
            }
        }
        Ok(Arc::new(LoadedPlugin {
            name,
            world,
            timeout,
            instances,
            origin: Origin {
                definition: (*definition).clone(),
                canonical: canonical.clone(),
                stamp: *stamp,
                api_id: api_id.to_owned(),
                host: host.clone(),
            },
            _share: share,
        }))
    }

    /// Loads one plugin alone (unit tests).
    #[cfg(test)]
    pub(crate) fn load(
        &self,
        name: &str,
        definition: &PluginDefinition,
        base_dir: &Path,
        at: &KeyPath,
    ) -> Result<Arc<LoadedPlugin>, Error> {
        let mut plugins = self.load_all("test", [(name, definition)], base_dir, at)?;
        Ok(plugins.remove(name).expect("the plugin just loaded"))
    }
}

/// Reads the file of plugin `name` and measures what its instances take of a pool.
fn read<'a>(
    name: &'a str,
    definition: &'a PluginDefinition,
    base_dir: &Path,
    at: &KeyPath,
) -> Result<Candidate<'a>, Error> {
    let path = base_dir.join(&definition.path);
    let fail =
        |message: String| Error::config(at.key("path"), format!("{}: {message}", path.display()));
    let bytes = std::fs::read(&path).map_err(|e| fail(format!("cannot read the plugin: {e}")))?;
    if is_core_module(&bytes) {
        return Err(fail("is a core WebAssembly module, not a component (wrap it with `wasm-tools component new`)".into()));
    }
    let stamp = std::fs::metadata(&path)
        .map(|m| (m.len(), m.modified().ok()))
        .unwrap_or((bytes.len() as u64, None));
    let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
    let facts = read_component(&bytes)
        .map_err(|e| fail(format!("is not a valid WebAssembly component: {e}")))?;
    let per_instance = facts.needs.ok_or_else(|| {
            fail("imports a core module or a component, so what its instances take of the instance pool cannot be known".into())
        })?;
    let concurrency = match definition.max_concurrency {
        None => DEFAULT_MAX_CONCURRENCY,
        Some(n) if (1..=MAX_CONCURRENCY).contains(&n) => n,
        Some(_) => {
            return Err(Error::config(
                at.key("maxConcurrency"),
                format!("must be 1-{MAX_CONCURRENCY}"),
            ))
        }
    };
    // The world, and so the lifecycle and the engine, is read from the binary before
    // compiling: the component is compiled for that engine (load_one checks the world).
    let world = definition.world.or_else(|| exported_world(&facts.exports));
    let instances = definition
        .instances
        .unwrap_or_else(|| world.map_or(InstanceLifecycle::Fresh, default_lifecycle));
    Ok(Candidate {
        name,
        definition,
        at: at.clone(),
        path,
        canonical,
        bytes,
        stamp,
        exports: facts.exports,
        instances,
        needs: per_instance.times(u64::from(concurrency)),
        per_instance,
        concurrency,
    })
}

/// "3 core instances, 1 memory and 2 tables".
fn describe_one(needs: PoolNeeds) -> String {
    let count = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{}, {} and {}",
        count(needs.core_instances, "core instance", "core instances"),
        count(needs.memories, "memory", "memories"),
        count(needs.tables, "table", "tables")
    )
}

/// The instance settings of a plugin of `world` whose instances live as `instances` says
/// (its setting, else the world's [`default_lifecycle`]), checked: settings that only a warm
/// instance has are refused on a fresh one, as a setting parsed but not honoured would be.
fn lifecycle(
    definition: &PluginDefinition,
    world: PluginWorld,
    instances: InstanceLifecycle,
    timeout: Duration,
    at: &KeyPath,
) -> Result<Lifecycle, Error> {
    if instances == InstanceLifecycle::Fresh {
        let warm_only = [
            (
                "maxRequestsPerInstance",
                definition.max_requests_per_instance.is_some(),
            ),
            ("idleSeconds", definition.idle_seconds.is_some()),
            ("provisioned", definition.provisioned.is_some()),
        ];
        if let Some((key, _)) = warm_only.iter().find(|(_, set)| *set) {
            return Err(Error::config(
                at.key(key),
                format!(
                    "only applies to warm instances, and this plugin's are fresh ({}); set `instances: warm`",
                    match definition.instances {
                        Some(_) => "`instances: fresh`".to_owned(),
                        None => format!("the default of the {world} world"),
                    }
                ),
            ));
        }
    }
    let max_concurrency = definition
        .max_concurrency
        .unwrap_or(DEFAULT_MAX_CONCURRENCY);
    let max_requests = match definition.max_requests_per_instance {
        Some(0) => {
            return Err(Error::config(
                at.key("maxRequestsPerInstance"),
                "must be at least 1",
            ))
        }
        other => other,
    };
    let idle = match definition.idle_seconds {
        None => None,
        Some(s) if (1..=MAX_IDLE_SECONDS).contains(&s) => Some(Duration::from_secs(s)),
        Some(_) => {
            return Err(Error::config(
                at.key("idleSeconds"),
                format!("must be 1-{MAX_IDLE_SECONDS}"),
            ))
        }
    };
    let provisioned = definition.provisioned.unwrap_or(0);
    if provisioned > max_concurrency {
        return Err(Error::config(
            at.key("provisioned"),
            format!("{provisioned} is more than maxConcurrency ({max_concurrency})"),
        ));
    }
    let max_queued = match definition.max_queued {
        None => DEFAULT_MAX_QUEUED,
        Some(n) if n <= MAX_QUEUED => n,
        Some(_) => {
            return Err(Error::config(
                at.key("maxQueued"),
                format!("must be 0-{MAX_QUEUED}"),
            ))
        }
    };
    let queue_timeout = match definition.queue_timeout_ms {
        None => DEFAULT_QUEUE_TIMEOUT,
        Some(ms) if (1..=MAX_QUEUE_TIMEOUT_MS).contains(&ms) => Duration::from_millis(ms),
        Some(_) => {
            return Err(Error::config(
                at.key("queueTimeoutMs"),
                format!("must be 1-{MAX_QUEUE_TIMEOUT_MS}"),
            ))
        }
    };
    Ok(Lifecycle {
        instances,
        max_requests,
        idle,
        provisioned,
        max_concurrency,
        max_queued,
        queue_timeout,
        timeout,
    })
}

/// The lifecycle a plugin of `world` gets when its definition names none.
///
/// - `lambda` and `authorizer`: warm. They run handlers written for AWS Lambda, which reuses
///   an execution environment from call to call and whose handlers count on it (a JWKS or a
///   client kept in a module-level variable, as the seed's authorizer keeps `_jwks_cache`).
/// - `integration` and `wasi-http`: fresh. Nothing one caller's call leaves in an instance can
///   reach the next caller, which costs a small Rust component a few microseconds from the
///   pool; `wasmtime serve` and Spin give a `wasi:http/proxy` component a new instance per
///   request too, and components written for it may count on that.
pub(crate) fn default_lifecycle(world: PluginWorld) -> InstanceLifecycle {
    match world {
        PluginWorld::Lambda | PluginWorld::Authorizer => InstanceLifecycle::Warm,
        PluginWorld::Integration | PluginWorld::LazyIntegration | PluginWorld::WasiHttp => {
            InstanceLifecycle::Fresh
        }
    }
}

/// A core module starts with the magic and version 1; a component with the magic and a
/// different version/layer word.
fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

fn exported_world(names: &[String]) -> Option<PluginWorld> {
    let mut found = None;
    for name in names {
        if name == "handle" {
            found = Some(PluginWorld::Integration);
        } else if name == "handle-request" {
            found = Some(PluginWorld::LazyIntegration);
        } else if name == "handle-event" {
            found = Some(PluginWorld::Lambda);
        } else if name == "authorize" {
            found = Some(PluginWorld::Authorizer);
        } else if name.starts_with("wasi:http/incoming-handler@") {
            found = Some(PluginWorld::WasiHttp);
        }
    }
    found
}

fn describe_exports(names: &[String]) -> String {
    if names.is_empty() {
        "it exports nothing".into()
    } else {
        format!("it exports: {}", names.join(", "))
    }
}

/// What a plugin was loaded from: a reload that would load it the same way keeps it.
struct Origin {
    definition: PluginDefinition,
    canonical: PathBuf,
    stamp: FileStamp,
    api_id: String,
    host: PluginHost,
}

/// A compiled, linked plugin and its instances.
pub(crate) struct LoadedPlugin {
    name: Arc<str>,
    world: PluginWorld,
    timeout: Duration,
    pub(super) instances: Arc<Instances>,
    origin: Origin,
    /// The plugin's share of its host's pool, given back when the plugin goes.
    _share: PoolShare,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.name)
            .field("world", &self.world)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    /// The plugin's name in the definition.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The world the component implements.
    pub(crate) fn world(&self) -> PluginWorld {
        self.world
    }

    /// Whether loading `candidate` for `api_id` on `host` would give this same plugin.
    fn same_as(&self, candidate: &Candidate<'_>, api_id: &str, host: &PluginHost) -> bool {
        let origin = &self.origin;
        origin.definition == *candidate.definition
            && origin.canonical == candidate.canonical
            && origin.stamp == candidate.stamp
            && origin.api_id == api_id
            && origin.host.same(host)
    }

    /// The time limit of one call: the plugin's own (`timeoutMs`), or `cap` (an integration's
    /// `timeoutMs`) when that is shorter.
    pub(super) fn limit(&self, cap: Option<Duration>) -> Duration {
        cap.map_or(self.timeout, |cap| cap.min(self.timeout))
    }

    /// An instance for a call of `limit` (logged when there is none).
    pub(super) async fn lease(&self, limit: Duration) -> Result<Lease, PluginFailure> {
        self.instances
            .lease(limit)
            .await
            .map_err(|failure| self.logged(failure))
    }

    /// The result of a call that may fail in the host (trap, timeout) or report a plugin error;
    /// ends the lease, handing a warm instance back when the call left it sound.
    fn settle<T>(
        &self,
        lease: Lease,
        outcome: Result<Result<T, String>, wasmtime::Error>,
    ) -> Result<T, PluginFailure> {
        match outcome {
            Ok(Ok(value)) => {
                lease.finish(true);
                Ok(value)
            }
            Ok(Err(message)) => {
                lease.finish(true);
                Err(self.logged(PluginFailure::PluginError(message)))
            }
            Err(error) => Err(self.failed(lease, error)),
        }
    }

    /// Ends `lease` after its call failed in the host (a trap, the time limit, the memory cap:
    /// read from the instance's state): the instance is discarded and the failure logged.
    pub(super) fn failed(&self, mut lease: Lease, error: wasmtime::Error) -> PluginFailure {
        let failure = super::instances::failure(&lease.slot().store, error);
        self.discard(lease, failure)
    }

    /// Ends `lease` discarding its instance, and logs `failure`.
    pub(super) fn discard(&self, lease: Lease, failure: PluginFailure) -> PluginFailure {
        lease.finish(false);
        self.logged(failure)
    }

    pub(super) fn logged(&self, failure: PluginFailure) -> PluginFailure {
        match &failure {
            // Expected under load, and counted: not an error of the plugin.
            PluginFailure::Throttled(_) => {
                tracing::debug!(plugin = %self.name, world = self.world.name(), "plugin call {failure}")
            }
            _ => {
                tracing::error!(plugin = %self.name, world = self.world.name(), "plugin {failure}")
            }
        }
        failure
    }

    fn wrong_world(&self, wanted: &str) -> PluginFailure {
        PluginFailure::Trap(format!("plugin {} is not {wanted}", self.name))
    }

    /// Instantiates the component on a fresh store and drops it (for benchmarks).
    #[cfg(feature = "bench")]
    pub(crate) async fn instantiate_only(&self) -> Result<(), PluginFailure> {
        self.instances
            .instantiate_once(self.timeout)
            .await
            .map_err(|failure| self.logged(failure))
    }

    /// Calls the integration world's `handle` (or the lazy-integration world's
    /// `handle-request`), within the plugin's time limit or `cap` if that is shorter.
    pub(crate) async fn handle(
        &self,
        mut request: CallRequest<'_>,
        cap: Option<Duration>,
    ) -> Result<CallResponse, PluginFailure> {
        if !matches!(
            self.world,
            PluginWorld::Integration | PluginWorld::LazyIntegration
        ) {
            return Err(self.wrong_world("an integration"));
        }
        let mut lease = self.lease(self.limit(cap)).await?;
        let Slot { store, bound, .. } = lease.slot();
        let outcome = match bound {
            Bound::Integration(handle) => {
                let record = bindings::RequestRecord::new(&mut request);
                handle.call(store, &record).await
            }
            Bound::LazyIntegration(instance) => {
                let table = &mut store.data_mut().table;
                let record = bindings::types::Request::from(request);
                let handle = match table.push(IncomingRequest(record)) {
                    Ok(handle) => handle,
                    Err(e) => return Err(self.logged(PluginFailure::Trap(e.to_string()))),
                };
                let rep = handle.rep();
                let outcome = instance.call_handle_request(&mut *store, handle).await;
                // The request is lent (`borrow`): the guest never owns it, so it is still in
                // the table, and the guest cannot hold it past the call: it goes now.
                let _ = store
                    .data_mut()
                    .table
                    .delete(Resource::<IncomingRequest>::new_own(rep));
                outcome
            }
            _ => return Err(self.wrong_world("an integration")),
        };
        self.settle(lease, outcome.map(|r| r.map_err(|e| e.message)))
            .map(CallResponse::from)
    }

    /// Calls the lambda world's `handle-event`: the event JSON in, the function's response
    /// JSON out; within the plugin's time limit or `cap` if shorter.
    pub(crate) async fn handle_event(
        &self,
        event: &str,
        cap: Option<Duration>,
    ) -> Result<String, PluginFailure> {
        if self.world != PluginWorld::Lambda {
            return Err(self.wrong_world("of the lambda world"));
        }
        let mut lease = self.lease(self.limit(cap)).await?;
        let Slot { store, bound, .. } = lease.slot();
        let Bound::Lambda(instance) = bound else {
            return Err(self.wrong_world("of the lambda world"));
        };
        let outcome = instance.call_handle_event(&mut *store, event).await;
        self.settle(lease, outcome.map(|r| r.map_err(|e| e.message)))
    }

    /// Calls the authorizer world's `authorize`.
    pub(crate) async fn authorize(&self, call: AuthCall) -> Result<AuthVerdict, PluginFailure> {
        if self.world != PluginWorld::Authorizer {
            return Err(self.wrong_world("an authorizer"));
        }
        let request = bindings::types::AuthRequest::from(call);
        let mut lease = self.lease(self.timeout).await?;
        let Slot { store, bound, .. } = lease.slot();
        let Bound::Authorizer(instance) = bound else {
            return Err(self.wrong_world("an authorizer"));
        };
        let outcome = instance.call_authorize(&mut *store, &request).await;
        self.settle(lease, outcome.map(Ok)).map(AuthVerdict::from)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Instant;

    use super::*;
    use crate::plugin::{AuthorizerKind, ContextValue};
    use crate::store::MemoryKv;

    /// A runtime on a host of its own, as a gateway without an embedder's host makes.
    fn runtime() -> Arc<PluginRuntime> {
        let host = PluginHost::builder().build().unwrap();
        PluginRuntime::new(Some(host), Arc::new(MemoryKv::new()))
    }

    /// A host with pools for `max_instances` instances and no disk cache, and a runtime on
    /// it: for tests that read the host's pools.
    fn pooled_runtime(max_instances: u32) -> (PluginHost, Arc<PluginRuntime>) {
        let host = PluginHost::builder()
            .max_instances(max_instances)
            .disk_cache(false)
            .build()
            .unwrap();
        let runtime = PluginRuntime::new(Some(host.clone()), Arc::new(MemoryKv::new()));
        (host, runtime)
    }

    fn dist() -> PathBuf {
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist");
        assert!(dist.join("echo.wasm").exists(), "run plugins/build first");
        dist
    }

    /// Plugin `name` defined by `yaml`, loaded alone on a runtime of its own (whose own host
    /// is sized from it).
    fn load(yaml: &str) -> Arc<LoadedPlugin> {
        let definition: PluginDefinition = yaml_serde::from_str(yaml).unwrap();
        PluginRuntime::new(None, Arc::new(MemoryKv::new()))
            .load("p", &definition, &dist(), &KeyPath::root())
            .unwrap()
    }

    fn load_error(yaml: &str) -> String {
        let definition: PluginDefinition = yaml_serde::from_str(yaml).unwrap();
        PluginRuntime::new(None, Arc::new(MemoryKv::new()))
            .load("p", &definition, &dist(), &KeyPath::root().key("plugins"))
            .unwrap_err()
            .to_string()
    }

    /// An echo request whose query string is `query` (`calls=1&panic=1`).
    fn echo_request<'a>(query: &'a str, vars: &'a BTreeMap<String, String>) -> CallRequest<'a> {
        let mut request = empty_request(vars);
        request.raw_query = query;
        request.query_parameters = form_urlencoded_pairs(query).into();
        request
    }

    fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
        query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    /// What `calls=1` made echo count: the calls its instance has served.
    async fn echo_calls(echo: &LoadedPlugin, query: &str) -> Result<u64, PluginFailure> {
        let vars = BTreeMap::new();
        let response = echo.handle(echo_request(query, &vars), None).await?;
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        Ok(body["calls"].as_u64().expect("calls"))
    }

    /// Fresh instances run on the engine that checks bounds in code, warm ones on the engine
    /// with guard pages (`Confinement`); an out-of-bounds load traps on both (an explicit
    /// check there, a caught fault here), and the instance that trapped is replaced.
    #[tokio::test]
    async fn fresh_and_warm_plugins_have_their_own_engines_and_out_of_bounds_loads_trap_on_both() {
        let (host, runtime) = pooled_runtime(8);
        let pooled = |confinement| {
            host.engine(confinement)
                .pooling_allocator_metrics()
                .unwrap()
                .component_instances()
        };
        let vars = BTreeMap::new();
        for (instances, own, other) in [
            ("fresh", Confinement::Checked, Confinement::Guarded),
            ("warm", Confinement::Guarded, Confinement::Checked),
        ] {
            let definition: PluginDefinition = yaml_serde::from_str(&format!(
                "{{ path: hostile_trap.wasm, instances: {instances}, maxConcurrency: 2 }}"
            ))
            .unwrap();
            let plugin = runtime
                .load("p", &definition, &dist(), &KeyPath::root())
                .unwrap();
            let lease = plugin.lease(Duration::from_secs(10)).await.unwrap();
            assert_eq!((pooled(own), pooled(other)), (1, 0), "{instances}");
            drop(lease);
            for _ in 0..2 {
                match plugin.handle(echo_request("mode=oob", &vars), None).await {
                    Err(PluginFailure::Trap(message)) => assert!(
                        message.contains("out of bounds memory access"),
                        "{instances}: {message}"
                    ),
                    other => panic!("{instances}: {other:?}"),
                }
            }
            assert_eq!(plugin.instances.idle(), 0, "{instances}: none kept");
        }
    }

    #[tokio::test]
    async fn a_warm_instance_keeps_its_module_state_and_a_fresh_one_starts_over() {
        let warm = load("{ path: echo.wasm, instances: warm }");
        for expected in 1..=5 {
            assert_eq!(echo_calls(&warm, "calls=1").await, Ok(expected));
        }
        assert_eq!(warm.instances.live(), 1);
        assert_eq!(warm.instances.idle(), 1);

        let fresh = load("{ path: echo.wasm }");
        for _ in 0..3 {
            assert_eq!(echo_calls(&fresh, "calls=1").await, Ok(1));
        }
        assert_eq!(
            fresh.instances.live(),
            0,
            "a fresh instance outlived its call"
        );
    }

    /// What a warm instance keeps and what each call starts afresh: the deadline is the
    /// call's own (an instance idle longer than the time limit still serves), the kv store
    /// answers every call, a call that failed in the plugin leaves the instance serving.
    #[tokio::test]
    async fn each_call_on_a_warm_instance_gets_its_own_deadline_and_the_kv_store() {
        let warm = load("{ path: echo.wasm, instances: warm, timeoutMs: 200 }");
        let vars = BTreeMap::new();
        let kv_of = |response: CallResponse| {
            let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
            (body["kv"].clone(), body["calls"].as_u64())
        };
        let first = warm
            .handle(echo_request("kv=1&calls=1", &vars), None)
            .await
            .unwrap();
        assert_eq!(kv_of(first), (serde_json::json!("rid"), Some(1)));
        // Idle past the 200 ms the first call had: the next call has 200 ms of its own.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let second = warm
            .handle(echo_request("kv=1&calls=1", &vars), None)
            .await
            .unwrap();
        assert_eq!(kv_of(second), (serde_json::json!("rid"), Some(2)));
        assert_eq!(warm.instances.live(), 1);
    }

    #[tokio::test]
    async fn a_warm_instance_that_traps_is_replaced_by_a_new_one() {
        let warm = load("{ path: echo.wasm, instances: warm }");
        assert_eq!(echo_calls(&warm, "calls=1").await, Ok(1));
        assert_eq!(echo_calls(&warm, "calls=1").await, Ok(2));
        let trapped = echo_calls(&warm, "calls=1&panic=1").await;
        assert!(
            matches!(trapped, Err(PluginFailure::Trap(_))),
            "{trapped:?}"
        );
        assert_eq!(warm.instances.live(), 0, "the trapped instance was kept");
        // The next call runs on a new instance: its module state starts over.
        assert_eq!(echo_calls(&warm, "calls=1").await, Ok(1));
        // A plugin error is the plugin's answer, not a broken instance: it is kept.
        assert!(matches!(
            echo_calls(&warm, "fail=1").await,
            Err(PluginFailure::PluginError(_))
        ));
        assert_eq!(echo_calls(&warm, "calls=1").await, Ok(3));
    }

    /// The epoch thread parks while no plugin code runs on its host; the next call wakes it,
    /// so a call after a long idle time still times out on time (a sleeping ticker would
    /// let it run until its next sweep, a second later).
    #[tokio::test]
    async fn a_call_after_an_idle_spell_wakes_the_epoch_thread_and_times_out_on_time() {
        let vars = BTreeMap::new();
        let looping = load("{ path: hostile_loop.wasm, timeoutMs: 100 }");
        let running = Arc::clone(&looping.instances.parts.running);
        assert_eq!(running.count(), 0, "nothing runs between calls");
        // Longer than the ticker's sweep interval: it has parked.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let started = Instant::now();
        let outcome = looping.handle(empty_request(&vars), None).await;
        assert_eq!(outcome, Err(PluginFailure::Timeout));
        assert!(
            started.elapsed() < Duration::from_millis(600),
            "timed out after {:?}",
            started.elapsed()
        );
        assert_eq!(running.count(), 0, "the call's guard was released");
    }

    #[tokio::test]
    async fn a_warm_instance_that_times_out_or_reaches_its_memory_cap_is_discarded() {
        let vars = BTreeMap::new();
        let looping = load("{ path: hostile_loop.wasm, instances: warm, timeoutMs: 100 }");
        let outcome = looping.handle(empty_request(&vars), None).await;
        assert_eq!(outcome, Err(PluginFailure::Timeout));
        assert_eq!(looping.instances.live(), 0);
        let greedy = load("{ path: hostile_memory.wasm, instances: warm, memoryMb: 16 }");
        let outcome = greedy.handle(empty_request(&vars), None).await;
        assert_eq!(outcome, Err(PluginFailure::MemoryExceeded));
        assert_eq!(greedy.instances.live(), 0);
    }

    /// A wasi:http component that imports nothing of WASI but wasi:io (its body stream)
    /// gets no WASI context: wasi:io reaches the resource table without one, and building one
    /// (its random generators seeded) on every fresh instance was the cost of nothing.
    #[tokio::test]
    async fn a_wasi_http_component_writing_its_body_builds_no_wasi_context() {
        let http = load("{ path: hello_http.wasm, instances: warm }");
        let request = http::Request::get("http://localhost/misbehave/stream")
            .body(bytes::Bytes::new())
            .unwrap();
        let answer = http.serve_http(request, None).await.unwrap();
        assert_eq!(
            answer.body(),
            "one two three",
            "written through wasi:io streams"
        );
        let idle = http.instances.idle_slots();
        let state = idle
            .front()
            .expect("the warm instance is kept")
            .store
            .data();
        assert!(state.http.is_some(), "the call went through wasi:http");
        assert!(state.wasi.is_none(), "a WASI context was built");
    }

    /// A wasi:http component runs in the request's task, beside the collection of its answer:
    /// a body streamed after the head is collected whole, each way the component can fail
    /// gets its failure, and a warm instance is kept only when its call ended cleanly.
    #[tokio::test]
    async fn a_wasi_http_components_answers_and_failures_on_a_warm_instance() {
        let http = load("{ path: hello_http.wasm, instances: warm, timeoutMs: 300 }");
        let get = |path: &str| {
            http::Request::get(format!("http://localhost{path}"))
                .body(bytes::Bytes::new())
                .unwrap()
        };
        let streamed = http
            .serve_http(get("/misbehave/stream"), None)
            .await
            .unwrap();
        assert_eq!(streamed.body(), "one two three");
        assert_eq!((http.instances.live(), http.instances.idle()), (1, 1));

        let outcome = http.serve_http(get("/misbehave/none"), None).await;
        assert!(
            matches!(&outcome, Err(PluginFailure::BadResponse(m)) if m.contains("never set a response")),
            "{outcome:?}"
        );
        let outcome = http.serve_http(get("/misbehave/error"), None).await;
        assert!(
            matches!(&outcome, Err(PluginFailure::PluginError(m)) if m.contains("asked to fail")),
            "{outcome:?}"
        );
        // Both calls ended cleanly: the same instance is still there.
        assert_eq!((http.instances.live(), http.instances.idle()), (1, 1));

        let outcome = http.serve_http(get("/misbehave/trap"), None).await;
        assert!(
            matches!(&outcome, Err(PluginFailure::Trap(_))),
            "{outcome:?}"
        );
        assert_eq!(http.instances.live(), 0, "the trapped instance was kept");

        let started = std::time::Instant::now();
        let outcome = http.serve_http(get("/misbehave/loop"), None).await;
        assert_eq!(outcome.unwrap_err(), PluginFailure::Timeout);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(http.instances.live(), 0, "the timed-out instance was kept");

        let answer = http.serve_http(get("/hi"), None).await.unwrap();
        assert_eq!(answer.body(), "hello from wasi:http GET /hi");
        assert_eq!((http.instances.live(), http.instances.idle()), (1, 1));
    }

    #[tokio::test]
    async fn max_requests_per_instance_recycles_a_warm_instance() {
        let warm = load("{ path: echo.wasm, instances: warm, maxRequestsPerInstance: 2 }");
        let mut seen = Vec::new();
        for _ in 0..5 {
            seen.push(echo_calls(&warm, "calls=1").await.unwrap());
        }
        assert_eq!(seen, [1, 2, 1, 2, 1]);
    }

    #[tokio::test]
    async fn idle_instances_go_after_idle_seconds_but_never_below_provisioned() {
        let warm = load(
            "{ path: echo.wasm, instances: warm, idleSeconds: 60, provisioned: 1, maxConcurrency: 4 }",
        );
        assert_eq!(warm.instances.live(), 1, "the provisioned instance");
        // Two calls at once: the provisioned instance and a second one.
        let vars = BTreeMap::new();
        let (a, b) = tokio::join!(
            warm.handle(echo_request("spin=20000000", &vars), None),
            warm.handle(echo_request("spin=20000000", &vars), None)
        );
        a.unwrap();
        b.unwrap();
        let live = warm.instances.live();
        assert!((1..=2).contains(&live), "{live}");
        let now = Instant::now();
        use super::super::host::Sweep;
        warm.instances.sweep(now);
        assert_eq!(warm.instances.live(), live, "swept before idleSeconds");
        warm.instances.sweep(now + Duration::from_secs(61));
        assert_eq!(
            warm.instances.live(),
            1,
            "kept more than provisioned, or less"
        );
        assert_eq!(warm.instances.idle(), 1);
    }

    /// The epoch thread sweeps idle instances by itself, about once a second, also while it is
    /// parked because no plugin code runs.
    #[tokio::test]
    async fn the_epoch_thread_sweeps_idle_instances_while_parked() {
        let warm = load("{ path: echo.wasm, instances: warm, idleSeconds: 1 }");
        let vars = BTreeMap::new();
        warm.handle(echo_request("calls=1", &vars), None)
            .await
            .unwrap();
        assert_eq!(warm.instances.live(), 1, "the warm instance is kept");
        assert_eq!(warm.instances.parts.running.count(), 0);
        // Idle for a second, then swept within the next sweep (a second apart).
        let deadline = Instant::now() + Duration::from_secs(5);
        while warm.instances.live() > 0 {
            assert!(
                Instant::now() < deadline,
                "the idle instance was never swept"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A fresh instance's memory and tables are free in wasmtime's pool again as soon as its
    /// call ends, not parked in a decommit queue until a batch fills: a pool sized exactly to
    /// `maxConcurrency` never runs dry between two calls (see `decommit_batch_size`).
    #[tokio::test]
    async fn a_fresh_instances_pool_slots_are_free_when_its_call_ends() {
        let (host, runtime) = pooled_runtime(4);
        let definition: PluginDefinition =
            yaml_serde::from_str("{ path: echo.wasm, maxConcurrency: 1 }").unwrap();
        let echo = runtime
            .load("p", &definition, &dist(), &KeyPath::root())
            .unwrap();
        let pool = host
            .engine(Confinement::Checked)
            .pooling_allocator_metrics()
            .unwrap();
        for call in 1..=3 {
            assert_eq!(echo_calls(&echo, "calls=1").await, Ok(1), "call {call}");
            assert_eq!(
                pool.component_instances(),
                0,
                "call {call}: instance dropped"
            );
            // echo's one memory and its two tables (its main module's and wit-component's
            // shim's), each reused call after call.
            assert_eq!(
                (pool.unused_warm_memories(), pool.unused_warm_tables()),
                (1, 2),
                "call {call}: the slots it used are free"
            );
        }
    }

    #[tokio::test]
    async fn provisioned_instances_exist_at_load() {
        let host = PluginHost::builder().max_instances(16).build().unwrap();
        let runtime = PluginRuntime::new(Some(host.clone()), Arc::new(MemoryKv::new()));
        let definition: PluginDefinition = yaml_serde::from_str(
            "{ path: echo.wasm, instances: warm, provisioned: 3, maxConcurrency: 4 }",
        )
        .unwrap();
        let echo = runtime
            .load("p", &definition, &dist(), &KeyPath::root())
            .unwrap();
        assert_eq!(echo.instances.live(), 3);
        assert_eq!(echo.instances.idle(), 3);
        let pool = host
            .engine(Confinement::Guarded)
            .pooling_allocator_metrics()
            .unwrap();
        assert_eq!(
            pool.component_instances(),
            3,
            "instances in wasmtime's pool"
        );
        // The first call runs on a provisioned instance: nothing new is made.
        assert_eq!(echo_calls(&echo, "calls=1").await, Ok(1));
        assert_eq!(pool.component_instances(), 3);
        drop(echo);
        assert_eq!(pool.component_instances(), 0, "dropped with the plugin");
    }

    #[tokio::test]
    async fn calls_over_max_concurrency_wait_in_the_queue_then_are_throttled() {
        // One slot, one place in the queue, a 200 ms wait at most: while a call spins
        // through its 2 s, a second waits and is refused, and a third is refused at once.
        let slow = load(
            "{ path: hostile_loop.wasm, timeoutMs: 2000, maxConcurrency: 1, maxQueued: 1, queueTimeoutMs: 200 }",
        );
        let vars = BTreeMap::new();
        let running = slow.handle(empty_request(&vars), None);
        let queued = async {
            tokio::task::yield_now().await;
            slow.handle(empty_request(&vars), None).await
        };
        let refused = async {
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            slow.handle(empty_request(&vars), None).await
        };
        let (running, queued, refused) = tokio::join!(running, queued, refused);
        assert_eq!(running, Err(PluginFailure::Timeout));
        let Err(PluginFailure::Throttled(waited)) = queued else {
            panic!("{queued:?}")
        };
        assert!(waited.contains("waited 200 ms"), "{waited}");
        let Err(PluginFailure::Throttled(full)) = refused else {
            panic!("{refused:?}")
        };
        assert!(full.contains("1 waiting (maxQueued)"), "{full}");
        // The slot free again, a call runs.
        assert_eq!(
            slow.handle(empty_request(&vars), Some(Duration::from_millis(50)))
                .await,
            Err(PluginFailure::Timeout)
        );
    }

    #[tokio::test]
    async fn a_queued_call_runs_when_a_slot_frees() {
        let warm =
            load("{ path: echo.wasm, instances: warm, maxConcurrency: 1, queueTimeoutMs: 20000 }");
        let vars = BTreeMap::new();
        let calls = (0..6).map(|_| warm.handle(echo_request("calls=1&spin=2000000", &vars), None));
        let answers = futures_join_all(calls).await;
        let mut counted: Vec<u64> = answers
            .into_iter()
            .map(|a| {
                let body: serde_json::Value = serde_json::from_slice(&a.unwrap().body).unwrap();
                body["calls"].as_u64().unwrap()
            })
            .collect();
        counted.sort_unstable();
        // One instance served them all, one after the other.
        assert_eq!(counted, [1, 2, 3, 4, 5, 6]);
        assert_eq!(warm.instances.live(), 1);
    }

    /// Polls `futures` together on this task until all are done, in order.
    async fn futures_join_all<F: std::future::Future>(
        futures: impl Iterator<Item = F>,
    ) -> Vec<F::Output> {
        let mut pinned: Vec<_> = futures.map(|f| Some(Box::pin(f))).collect();
        let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (slot, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
                if let Some(future) = slot {
                    match future.as_mut().poll(cx) {
                        std::task::Poll::Ready(value) => {
                            *output = Some(value);
                            *slot = None;
                        }
                        std::task::Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
        outputs.into_iter().map(|o| o.expect("done")).collect()
    }

    #[test]
    fn settings_only_a_warm_instance_has_are_refused_on_a_fresh_one() {
        for (yaml, key) in [
            (
                "{ path: echo.wasm, maxRequestsPerInstance: 5 }",
                "maxRequestsPerInstance",
            ),
            (
                "{ path: echo.wasm, instances: fresh, idleSeconds: 5 }",
                "idleSeconds",
            ),
            ("{ path: echo.wasm, provisioned: 1 }", "provisioned"),
        ] {
            let error = load_error(yaml);
            assert!(
                error.starts_with(&format!("plugins.p.{key}: only applies to warm instances")),
                "{error}"
            );
        }
        for (yaml, expected) in [
            (
                "{ path: echo.wasm, maxConcurrency: 0 }",
                "plugins.p.maxConcurrency: must be 1-1000",
            ),
            (
                "{ path: echo.wasm, instances: warm, maxConcurrency: 2, provisioned: 3 }",
                "plugins.p.provisioned: 3 is more than maxConcurrency (2)",
            ),
            (
                "{ path: echo.wasm, instances: warm, maxRequestsPerInstance: 0 }",
                "plugins.p.maxRequestsPerInstance: must be at least 1",
            ),
            (
                "{ path: echo.wasm, instances: warm, idleSeconds: 0 }",
                "plugins.p.idleSeconds: must be 1-86400",
            ),
            (
                "{ path: echo.wasm, queueTimeoutMs: 0 }",
                "plugins.p.queueTimeoutMs: must be 1-29000",
            ),
            (
                "{ path: echo.wasm, maxQueued: 100001 }",
                "plugins.p.maxQueued: must be 0-100000",
            ),
        ] {
            let error = load_error(yaml);
            assert!(error.starts_with(expected), "{error}");
        }
    }

    #[test]
    fn the_default_lifecycle_is_warm_for_lambda_worlds_and_fresh_for_the_others() {
        assert_eq!(
            default_lifecycle(PluginWorld::Lambda),
            InstanceLifecycle::Warm
        );
        assert_eq!(
            default_lifecycle(PluginWorld::Authorizer),
            InstanceLifecycle::Warm
        );
        assert_eq!(
            default_lifecycle(PluginWorld::Integration),
            InstanceLifecycle::Fresh
        );
        assert_eq!(
            default_lifecycle(PluginWorld::WasiHttp),
            InstanceLifecycle::Fresh
        );
        // Applied where the definition names none: a lambda plugin takes warm-only settings.
        load("{ path: python_users.wasm, maxRequestsPerInstance: 10, maxConcurrency: 2 }");
    }

    #[test]
    fn a_plugin_whose_share_does_not_fit_the_embedders_pool_is_a_load_error_naming_it() {
        let host = PluginHost::builder().max_instances(10).build().unwrap();
        let runtime = PluginRuntime::new(Some(host), Arc::new(MemoryKv::new()));
        let fits: PluginDefinition =
            yaml_serde::from_str("{ path: echo.wasm, maxConcurrency: 6 }").unwrap();
        let too_many: PluginDefinition =
            yaml_serde::from_str("{ path: echo.wasm, maxConcurrency: 5 }").unwrap();
        let error = runtime
            .load_all(
                "api",
                [("small", &fits), ("big", &too_many)],
                &dist(),
                &KeyPath::root().key("plugins"),
            )
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(
                "plugins.big: needs room in the plugin host's pool for 5 instances (maxConcurrency) of "
            ),
            "{error}"
        );
        assert!(
            error.contains("the pool has 4 component instances"),
            "{error}"
        );
        // Nothing stays reserved by a load that failed: both fit one at a time.
        runtime
            .load_all(
                "api",
                [("big", &too_many)],
                &dist(),
                &KeyPath::root().key("plugins"),
            )
            .unwrap();
    }

    #[test]
    fn a_gateways_own_host_is_sized_from_its_plugins_and_grows_when_a_reload_needs_more() {
        let runtime = PluginRuntime::new(None, Arc::new(MemoryKv::new()));
        let at = KeyPath::root().key("plugins");
        let echo = |n: u32| -> PluginDefinition {
            yaml_serde::from_str(&format!("{{ path: echo.wasm, maxConcurrency: {n} }}")).unwrap()
        };
        let (four, eight) = (echo(4), echo(8));
        let first = runtime
            .load_all("api", [("e", &four)], &dist(), &at)
            .unwrap();
        let one = read_component(&std::fs::read(dist().join("echo.wasm")).unwrap())
            .unwrap()
            .needs
            .unwrap();
        let host = first["e"].origin.host.clone();
        // All on the fresh instances' engine: the other pool has the least wasmtime takes.
        let least = PoolNeeds {
            instances: 1,
            core_instances: 1,
            memories: 1,
            tables: 1,
        };
        assert_eq!(
            (
                host.capacity(Confinement::Checked),
                host.capacity(Confinement::Guarded)
            ),
            (one.times(4 * OWN_HOST_HEADROOM), least)
        );
        // The same plugin again: kept, on the same host.
        let again = runtime
            .load_all("api", [("e", &four)], &dist(), &at)
            .unwrap();
        assert!(Arc::ptr_eq(&first["e"], &again["e"]));
        // A plugin added within the headroom: on the same host, beside the kept one.
        let both = runtime
            .load_all("api", [("e", &four), ("f", &four)], &dist(), &at)
            .unwrap();
        assert!(Arc::ptr_eq(&first["e"], &both["e"]));
        assert!(both["f"].origin.host.same(&host));
        drop(both);
        // More than is left: a larger host, sized for the new definition.
        let grown = runtime
            .load_all("api", [("e", &eight)], &dist(), &at)
            .unwrap();
        let bigger = grown["e"].origin.host.clone();
        assert!(!bigger.same(&host));
        assert_eq!(
            bigger.capacity(Confinement::Checked),
            one.times(8 * OWN_HOST_HEADROOM)
        );
        // A warm plugin added: the host grows a pool on the other engine for it.
        let warm: PluginDefinition =
            yaml_serde::from_str("{ path: echo.wasm, maxConcurrency: 2, instances: warm }")
                .unwrap();
        let mixed = runtime
            .load_all("api", [("e", &eight), ("w", &warm)], &dist(), &at)
            .unwrap();
        let mixed_host = mixed["w"].origin.host.clone();
        assert!(!mixed_host.same(&bigger));
        assert_eq!(
            (
                mixed_host.capacity(Confinement::Checked),
                mixed_host.capacity(Confinement::Guarded)
            ),
            (
                one.times(8 * OWN_HOST_HEADROOM),
                one.times(2 * OWN_HOST_HEADROOM)
            )
        );
    }

    /// What one instance takes of wasmtime's pool, read from the binary, is what the pool
    /// counts when the component is instantiated: for every plugin in plugins/dist.
    #[tokio::test]
    async fn the_needs_read_from_a_binary_are_what_the_pool_counts() {
        let mut checked = 0;
        for entry in std::fs::read_dir(dist()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "wasm") {
                continue;
            }
            let needs = read_component(&std::fs::read(&path).unwrap())
                .unwrap()
                .needs
                .expect("countable");
            let host = PluginHost::builder().max_instances(4).build().unwrap();
            let runtime = PluginRuntime::new(Some(host.clone()), Arc::new(MemoryKv::new()));
            let mut definition = PluginDefinition::new(&path);
            definition.max_concurrency = Some(1);
            let plugin = runtime
                .load("p", &definition, &dist(), &KeyPath::root())
                .unwrap();
            // The engine of the plugin's lifecycle (the world's default).
            let confinement = Confinement::of(plugin.instances.lifecycle().instances);
            let pool = host
                .engine(confinement)
                .pooling_allocator_metrics()
                .unwrap();
            let lease = plugin.lease(Duration::from_secs(10)).await.unwrap();
            let counted = PoolNeeds {
                instances: pool.component_instances(),
                core_instances: pool.core_instances(),
                memories: pool.memories() as u64,
                tables: pool.tables() as u64,
            };
            assert_eq!(counted, needs, "{}", path.display());
            drop(lease);
            assert_eq!(pool.component_instances(), 0);
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} plugins in plugins/dist");
    }

    /// The resource table of a warm instance does not grow from call to call (the guest
    /// drops what each call hands it, and the lent `incoming-request` goes after its call),
    /// for a WASI-heavy Python guest, the lazy-integration guests in JavaScript
    /// (garbage-collected) and Rust, and a wasi:http one.
    #[tokio::test]
    async fn a_warm_instances_resource_table_does_not_grow() {
        let vars = BTreeMap::new();
        let table_size = |plugin: &LoadedPlugin| {
            let mut idle = plugin.instances.idle_slots();
            idle[0].store.data_mut().table.iter_mut().count()
        };
        for file in ["python_hello.wasm", "js_hello.wasm", "lazy_echo.wasm"] {
            let plugin = load(&format!("{{ path: {file}, instances: warm }}"));
            plugin.handle(empty_request(&vars), None).await.unwrap();
            let after_one = table_size(&plugin);
            for _ in 0..20 {
                plugin.handle(empty_request(&vars), None).await.unwrap();
            }
            assert_eq!(table_size(&plugin), after_one, "{file}");
        }

        let http = load("{ path: hello_http.wasm, instances: warm }");
        let request = || {
            http::Request::get("http://localhost/hi")
                .body(bytes::Bytes::new())
                .unwrap()
        };
        http.serve_http(request(), None).await.unwrap();
        // The component runs in the request's task: its instance is back before the answer.
        assert_eq!(http.instances.idle(), 1);
        let after_one = table_size(&http);
        for _ in 0..20 {
            let answer = http.serve_http(request(), None).await.unwrap();
            assert_eq!(answer.status(), 200);
            assert_eq!(http.instances.idle(), 1);
        }
        assert_eq!(table_size(&http), after_one);
        assert_eq!(
            http.instances.live(),
            1,
            "one warm instance served every call"
        );
    }

    fn token_authorizer() -> Arc<LoadedPlugin> {
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist");
        assert!(
            dist.join("token_authorizer.wasm").exists(),
            "run plugins/build first"
        );
        let definition: PluginDefinition = yaml_serde::from_str(
            "{ path: token_authorizer.wasm, config: { issuer: 'https://issuer.example', audience: 'client-1', hs256Secret: s3cret } }",
        )
        .unwrap();
        let runtime = runtime();
        runtime
            .load("auth", &definition, &dist, &KeyPath::root())
            .unwrap()
    }

    fn token(secret: &str, audience: &str, expires_in: i64) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let claims = serde_json::json!({
            "sub": "user-42", "email": "u42@example.com", "custom:role": "admin",
            "iss": "https://issuer.example", "aud": audience, "iat": now, "exp": now + expires_in,
        });
        let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &key,
        )
        .unwrap()
    }

    fn auth_request(token: String) -> AuthCall {
        AuthCall {
            kind: AuthorizerKind::Token,
            token,
            identity_source: Vec::new(),
            method_arn: "arn:aws:execute-api:us-east-1:123456789012:api1/dev/GET/users".into(),
            method: "GET".into(),
            raw_path: "/users".into(),
            route_key: "GET /users".into(),
            stage: "dev".into(),
            request_id: "rid".into(),
            source_ip: "192.0.2.1".into(),
            headers: Vec::new(),
            query_parameters: Vec::new(),
            path_parameters: Vec::new(),
            stage_variables: Vec::new(),
        }
    }

    #[tokio::test]
    async fn the_authorizer_world_works_end_to_end() {
        let plugin = token_authorizer();
        assert_eq!(plugin.world(), PluginWorld::Authorizer);

        let decision = plugin
            .authorize(auth_request(format!(
                "Bearer {}",
                token("s3cret", "client-1", 600)
            )))
            .await
            .unwrap();
        let AuthVerdict::Allow(grant) = decision else {
            panic!("expected allow, got {decision:?}")
        };
        assert_eq!(grant.principal_id, "user-42");
        let context: BTreeMap<_, _> = grant.context.into_iter().collect();
        assert_eq!(
            context.get("userId"),
            Some(&ContextValue::Text("user-42".into()))
        );
        assert_eq!(
            context.get("email"),
            Some(&ContextValue::Text("u42@example.com".into()))
        );
        assert_eq!(
            context.get("role"),
            Some(&ContextValue::Text("admin".into()))
        );
        let policy: serde_json::Value =
            serde_json::from_str(&grant.policy_document.expect("policy")).unwrap();
        let statement = &policy["Statement"][0];
        assert_eq!(statement["Effect"], "Allow");
        assert_eq!(statement["Action"], "execute-api:Invoke");
        assert_eq!(
            statement["Resource"],
            "arn:aws:execute-api:us-east-1:123456789012:api1/dev/*"
        );

        for bad in [
            token("wrong", "client-1", 600),
            token("s3cret", "client-2", 600),
            token("s3cret", "client-1", -600),
            "garbage".into(),
        ] {
            let decision = plugin.authorize(auth_request(bad)).await.unwrap();
            assert!(
                matches!(decision, AuthVerdict::Unauthorized),
                "{decision:?}"
            );
        }
    }

    /// The lazy-integration world reads what the integration world receives whole: lazy_echo
    /// (every part through `incoming-request`'s methods) answers echo's JSON field by field for
    /// a request with every part filled in, and its one-name lookups join a repeated header or
    /// query parameter with `,` (as API Gateway's 2.0 event does), find a header in any case,
    /// and answer none for a name that is absent.
    #[tokio::test]
    async fn a_lazy_integration_reads_the_request_the_integration_world_receives_whole() {
        use std::borrow::Cow;
        let echo = load("{ path: echo.wasm }");
        let lazy = load("{ path: lazy_echo.wasm, instances: warm }");
        assert_eq!(lazy.world(), PluginWorld::LazyIntegration);
        let vars = BTreeMap::from([
            ("B".to_owned(), "2".to_owned()),
            ("T".to_owned(), "t1".to_owned()),
        ]);
        let path_parameters = [("id", Cow::from("42")), ("proxy", Cow::from("a/b c"))];
        let query = "header=X-Multi&header=absent&query=a&query=none&path=id&path=nope\
                     &variable=B&variable=C&a=1&a=2";
        let request = || CallRequest {
            method: "POST",
            raw_path: "/items/42/a/b%20c",
            raw_query: query,
            query_parameters: form_urlencoded_pairs(query).into(),
            headers: [
                ("x-multi", "1"),
                ("host", "h"),
                ("x-multi", "2"),
                ("user-agent", "ua/1"),
            ]
            .map(|(k, v)| (k.into(), v.into()))
            .to_vec(),
            cookies: vec!["c=1".into(), "d=2".into()],
            path_parameters: &path_parameters,
            stage: "dev",
            stage_variables: &vars,
            route_key: "POST /items/{id}/{proxy+}",
            request_id: "rid-1",
            source_ip: "192.0.2.7".into(),
            user_agent: "ua/1".into(),
            request_time_epoch_ms: 1_700_000_000_123,
            authorizer: Some(crate::plugin::AuthorizerContext {
                principal_id: "user-1".into(),
                context: vec![
                    ("n".into(), ContextValue::Number(2.0)),
                    ("f".into(), ContextValue::Number(1.5)),
                    ("s".into(), ContextValue::Text("x".into())),
                    ("b".into(), ContextValue::Boolean(true)),
                ],
            }),
            body: b"{\"k\":1}",
            trace_id: Some("Root=1-5759e988-bd862e3fe1be46a994272793".into()),
        };
        let json = |body: &[u8]| serde_json::from_slice::<serde_json::Value>(body).unwrap();
        let whole = json(&echo.handle(request(), None).await.unwrap().body);
        // Twice on one warm instance: the first call's request is gone from the instance's
        // table, and the second reads its own.
        for _ in 0..2 {
            let mut lazily = json(&lazy.handle(request(), None).await.unwrap().body);
            let lookups = lazily.as_object_mut().unwrap().remove("lookups").unwrap();
            assert_eq!(lazily, whole);
            assert_eq!(
                lookups,
                serde_json::json!({
                    "header": {"X-Multi": "1,2", "absent": null},
                    "query": {"a": "1,2", "none": null},
                    "path": {"id": "42", "nope": null},
                    "variable": {"B": "2", "C": null},
                })
            );
        }
        assert_eq!(whole["headers"]["x-multi"], serde_json::json!(["1", "2"]));
        assert_eq!(whole["authorizer"]["context"]["n"], serde_json::json!(2));
    }

    /// A component built against portico:plugin@0.1.0 (echo as plugins/build made it before
    /// 0.1.1 added `incoming-request`, kept in tests/data) loads and answers on this host: the
    /// linker matches its 0.1.0 imports with the 0.1.1 interfaces (semver-compatible).
    #[tokio::test]
    async fn a_component_built_against_wit_0_1_0_still_runs() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
        let definition: PluginDefinition =
            yaml_serde::from_str("{ path: echo-wit-0.1.0.wasm }").unwrap();
        let echo = runtime()
            .load("old-echo", &definition, &data, &KeyPath::root())
            .unwrap();
        assert_eq!(echo.world(), PluginWorld::Integration);
        let vars = BTreeMap::new();
        let response = echo
            .handle(echo_request("config=k&kv=1", &vars), None)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(body["rawQuery"], "config=k&kv=1");
        assert_eq!(body["kv"], "rid", "the kv import (0.1.0) answers");
        assert_eq!(body["config"], serde_json::Value::Null);
    }

    #[tokio::test]
    async fn an_integration_is_not_called_as_an_authorizer() {
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist");
        let definition: PluginDefinition = yaml_serde::from_str("{ path: echo.wasm }").unwrap();
        let runtime = runtime();
        let echo = runtime
            .load("echo", &definition, &dist, &KeyPath::root())
            .unwrap();
        assert_eq!(echo.world(), PluginWorld::Integration);
        assert!(matches!(
            echo.authorize(auth_request(String::new())).await,
            Err(PluginFailure::Trap(_))
        ));
    }

    #[test]
    fn an_integration_timeout_only_shortens_the_plugins_own() {
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist");
        let definition: PluginDefinition =
            yaml_serde::from_str("{ path: echo.wasm, timeoutMs: 1000 }").unwrap();
        let echo = runtime()
            .load("echo", &definition, &dist, &KeyPath::root())
            .unwrap();
        let ms = Duration::from_millis;
        assert_eq!(echo.limit(None), ms(1000));
        assert_eq!(echo.limit(Some(ms(100))), ms(100));
        assert_eq!(echo.limit(Some(ms(29_000))), ms(1000));
    }

    /// Collects formatted log lines.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn empty_request(stage_variables: &BTreeMap<String, String>) -> CallRequest<'_> {
        CallRequest {
            method: "GET",
            raw_path: "/",
            raw_query: "",
            query_parameters: std::borrow::Cow::Borrowed(&[]),
            headers: Vec::new(),
            cookies: Vec::new(),
            path_parameters: &[],
            stage: "dev",
            stage_variables,
            route_key: "GET /",
            request_id: "rid",
            source_ip: String::new(),
            user_agent: "".into(),
            request_time_epoch_ms: 0,
            authorizer: None,
            body: &[],
            trace_id: None,
        }
    }

    #[test]
    fn a_trap_is_logged_with_the_plugin_name_and_the_trap_message() {
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist");
        let definition: PluginDefinition =
            yaml_serde::from_str("{ path: hostile_trap.wasm }").unwrap();
        let runtime = runtime();
        let trap = runtime
            .load("my-trap", &definition, &dist, &KeyPath::root())
            .unwrap();
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let outcome = tracing::subscriber::with_default(subscriber, || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(trap.handle(empty_request(&BTreeMap::new()), None))
        });
        let Err(PluginFailure::Trap(message)) = outcome else {
            panic!("expected a trap, got {outcome:?}")
        };
        let logged = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(logged.contains("ERROR"), "{logged}");
        assert!(logged.contains("plugin=my-trap"), "{logged}");
        assert!(
            logged.contains("trapped") && logged.contains(message.lines().next().unwrap()),
            "{logged}"
        );
    }
}
