//! The plugin host: WebAssembly components as integrations and authorizers, on wasmtime.
//!
//! Each component is compiled once when a deployment is built (with wasmtime's on-disk cache,
//! so a restart does not recompile), linked once (`InstancePre`), and instantiated fresh for
//! every call on the pooling allocator. Every call runs under a time limit (epoch
//! interruption, yielding to the executor every millisecond so a busy plugin never blocks other
//! requests) and a memory cap (a `ResourceLimiter`). Nothing wasmtime-specific leaves this
//! module: callers see [`LoadedPlugin`] and [`PluginFailure`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::config::PluginDefinition;
use crate::error::{Error, KeyPath};
use crate::store::{KvError, KvStore};

/// Bindings of the `portico:plugin` worlds (bindings/wit). Both worlds share one set of
/// interface modules, so one host implementation serves both.
pub(crate) mod bindings {
    /// The `integration` world (and the shared interfaces).
    pub(crate) mod integration {
        wasmtime::component::bindgen!({
            path: "../bindings/wit",
            world: "integration",
            additional_derives: [PartialEq],
            imports: { "portico:plugin/kv": async | trappable, default: trappable },
            exports: { default: async },
        });
    }

    /// The `authorizer` world.
    pub(crate) mod authorizer {
        wasmtime::component::bindgen!({
            path: "../bindings/wit",
            world: "authorizer",
            imports: { default: trappable },
            exports: { default: async },
            with: {
                "portico:plugin/types": super::integration::portico::plugin::types,
                "portico:plugin/kv": super::integration::portico::plugin::kv,
                "portico:plugin/log": super::integration::portico::plugin::log,
                "portico:plugin/config": super::integration::portico::plugin::config,
            },
        });
    }

    /// The `lambda` world.
    pub(crate) mod lambda {
        wasmtime::component::bindgen!({
            path: "../bindings/wit",
            world: "lambda",
            imports: { default: trappable },
            exports: { default: async },
            with: {
                "portico:plugin/types": super::integration::portico::plugin::types,
                "portico:plugin/kv": super::integration::portico::plugin::kv,
                "portico:plugin/log": super::integration::portico::plugin::log,
                "portico:plugin/config": super::integration::portico::plugin::config,
            },
        });
    }

    pub(crate) use integration::portico::plugin::{config, kv, log, types};
}

use bindings::types;

/// Default time limits, as in API Gateway (29 s for integrations, 10 s for authorizers).
const INTEGRATION_TIMEOUT: Duration = Duration::from_millis(29_000);
const AUTHORIZER_TIMEOUT: Duration = Duration::from_millis(10_000);
/// Default memory cap of one instance.
const DEFAULT_MEMORY_MB: u64 = 128;
/// The largest memory cap a plugin may ask for.
/// Below 4 GiB on purpose: smaller than the 32-bit index space, so bounds are checked in code
/// (see the engine's configuration).
const MAX_MEMORY_MB: u64 = 1024;
/// How much of a linear memory stays resident between calls (reset with memset).
const KEEP_RESIDENT_BYTES: usize = 2 << 20;
/// API Gateway's response payload limit, applied to what a wasi:http component streams back.
const MAX_RESPONSE_BYTES: usize = 10 * 1024 * 1024;

/// Which world a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum World {
    /// `portico:plugin/integration`.
    Integration,
    /// `portico:plugin/lambda` (exports `handle-event`).
    Lambda,
    /// `portico:plugin/authorizer`.
    Authorizer,
    /// `wasi:http/proxy` (exports `wasi:http/incoming-handler`).
    WasiHttp,
}

impl World {
    /// The world's name as the definition writes it (`integration`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            World::Integration => "integration",
            World::Lambda => "lambda",
            World::Authorizer => "authorizer",
            World::WasiHttp => "wasi-http",
        }
    }

    fn from_name(name: &str) -> Option<World> {
        match name {
            "integration" => Some(World::Integration),
            "lambda" => Some(World::Lambda),
            "authorizer" => Some(World::Authorizer),
            "wasi-http" => Some(World::WasiHttp),
            _ => None,
        }
    }
}

/// Why a plugin call produced no answer. Each maps to one gateway response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PluginFailure {
    /// The call ran past its time limit: 504.
    Timeout,
    /// The instance asked for more memory than its cap: 502.
    MemoryExceeded,
    /// The instance trapped (or failed to instantiate): 502.
    Trap(String),
    /// The plugin returned its own error: 502.
    PluginError(String),
    /// The plugin's answer cannot be turned into an HTTP response: 502.
    BadResponse(String),
}

impl std::fmt::Display for PluginFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginFailure::Timeout => f.write_str("timed out"),
            PluginFailure::MemoryExceeded => f.write_str("memory limit exceeded"),
            PluginFailure::Trap(message) => write!(f, "trapped: {message}"),
            PluginFailure::PluginError(message) => write!(f, "returned an error: {message}"),
            PluginFailure::BadResponse(message) => {
                write!(f, "returned a malformed response: {message}")
            }
        }
    }
}

/// The process-wide wasmtime state: one engine (one epoch thread, one instance pool), one
/// linker, and every component compiled so far, so that gateways, reloads and restarts of a
/// gateway in one process never compile the same file twice.
struct Host {
    engine: Engine,
    linker: Linker<HostState>,
    components: Mutex<HashMap<PathBuf, (FileStamp, CompiledSlot)>>,
}

/// One file's compilation, done once, shared by everyone who waits for it.
type CompiledSlot = Arc<OnceLock<Result<Component, String>>>;

/// What identifies one version of a file: its length and modification time.
type FileStamp = (u64, Option<std::time::SystemTime>);

fn host() -> Result<&'static Host, String> {
    static HOST: OnceLock<Result<Host, String>> = OnceLock::new();
    HOST.get_or_init(Host::new).as_ref().map_err(Clone::clone)
}

impl Host {
    /// An engine with the pooling allocator, epoch interruption and the compilation cache, and
    /// a linker that provides WASI 0.2, wasi:http and the `portico:plugin` imports.
    fn new() -> Result<Host, String> {
        let mut pool = PoolingAllocationConfig::new();
        // Room for the larger guests (componentize-py and -js components hold big tables and
        // several core instances); all of this is virtual address space until used.
        pool.total_component_instances(512)
            .total_core_instances(2048)
            .total_memories(1024)
            .total_tables(1024)
            .total_stacks(512)
            .max_memories_per_module(2)
            .max_tables_per_module(8)
            .table_elements(200_000)
            .max_core_instance_size(16 << 20)
            .max_component_instance_size(16 << 20)
            .max_memory_size((MAX_MEMORY_MB as usize) << 20)
            // Reset the low pages of a reused slot with memset instead of madvise + page
            // faults: most of the per-call cost of a small plugin otherwise (measured in
            // benches/plugin.rs).
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_BYTES / 16)
            .pagemap_scan(wasmtime::Enabled::Auto)
            .decommit_batch_size(16);
        let mut config = Config::new();
        config
            // Explicit bounds checks instead of guard pages: a reused pool slot then keeps
            // its read/write mapping, and a call pays no mprotect (and TLB shootdown) per
            // memory growth and per instantiation: about half the cost of a small plugin.
            .signals_based_traps(false)
            .memory_reservation(MAX_MEMORY_MB << 20)
            .memory_guard_size(0)
            .guard_before_linear_memory(false)
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        match compilation_cache() {
            Ok(cache) => {
                config.cache(Some(cache));
            }
            Err(e) => {
                tracing::warn!(error = %e, "wasmtime compilation cache unavailable; components compile on every start")
            }
        }
        let engine = Engine::new(&config)
            .map_err(|e| format!("cannot create the wasmtime engine: {e:#}"))?;
        spawn_epoch_ticker(&engine);

        let mut linker = Linker::new(&engine);
        let link =
            |r: wasmtime::Result<()>| r.map_err(|e| format!("cannot link host functions: {e:#}"));
        link(wasmtime_wasi::p2::add_to_linker_async(&mut linker))?;
        link(wasmtime_wasi_http::p2::add_only_http_to_linker_async(
            &mut linker,
        ))?;
        link(bindings::kv::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |s| s,
        ))?;
        link(bindings::log::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |s| s,
        ))?;
        link(bindings::config::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |s| s,
        ))?;
        Ok(Host {
            engine,
            linker,
            components: Mutex::new(HashMap::new()),
        })
    }

    /// The compiled component of `path`, compiling it only if this version of the file was
    /// never compiled in this process. Concurrent callers wait for one compilation.
    fn component(&self, path: &Path, bytes: &[u8], stamp: FileStamp) -> Result<Component, String> {
        let slot = {
            let mut components = self
                .components
                .lock()
                .map_err(|_| "component cache poisoned".to_owned())?;
            let entry = components
                .entry(path.to_path_buf())
                .or_insert_with(|| (stamp, Arc::new(OnceLock::new())));
            if entry.0 != stamp {
                *entry = (stamp, Arc::new(OnceLock::new()));
            }
            Arc::clone(&entry.1)
        };
        slot.get_or_init(|| {
            Component::new(&self.engine, bytes)
                .map_err(|e| format!("is not a valid WebAssembly component: {e:#}"))
        })
        .clone()
    }
}

/// What every plugin of a gateway shares: the process-wide host and the gateway's key-value
/// store. Lives as long as the gateway, across reloads.
pub(crate) struct PluginRuntime {
    host: &'static Host,
    kv: Arc<dyn KvStore>,
}

impl PluginRuntime {
    /// A runtime for a gateway whose plugins use `kv`.
    pub(crate) fn new(kv: Arc<dyn KvStore>) -> Result<Arc<Self>, String> {
        Ok(Arc::new(PluginRuntime { host: host()?, kv }))
    }

    /// Compiles and links the component of plugin `name` (found at `at` in the definition).
    pub(crate) fn load(
        self: &Arc<Self>,
        name: &str,
        definition: &PluginDefinition,
        base_dir: &Path,
        at: &KeyPath,
    ) -> Result<Arc<LoadedPlugin>, Error> {
        let path = base_dir.join(&definition.path);
        let fail = |message: String| {
            Error::config(at.key("path"), format!("{}: {message}", path.display()))
        };
        let bytes =
            std::fs::read(&path).map_err(|e| fail(format!("cannot read the plugin: {e}")))?;
        if wasmparser_is_core_module(&bytes) {
            return Err(fail("is a core WebAssembly module, not a component (wrap it with `wasm-tools component new`)".into()));
        }
        let stamp = std::fs::metadata(&path)
            .map(|m| (m.len(), m.modified().ok()))
            .unwrap_or((bytes.len() as u64, None));
        let host = self.host;
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let component = host.component(&canonical, &bytes, stamp).map_err(fail)?;
        let exported = exported_world(&host.engine, &component);
        let world = match (&definition.world, exported) {
            (Some(declared), found) => {
                let declared = World::from_name(declared).ok_or_else(|| {
                    Error::config(at.key("world"), format!("unknown world \"{declared}\""))
                })?;
                if found != Some(declared) {
                    return Err(fail(format!(
                        "does not export the {} world ({})",
                        declared.name(),
                        describe_exports(&host.engine, &component)
                    )));
                }
                declared
            }
            (None, Some(found)) => found,
            (None, None) => {
                return Err(fail(format!(
                    "exports none of the integration world (`handle`), the lambda world (`handle-event`), the authorizer world (`authorize`) or wasi:http/incoming-handler ({})",
                    describe_exports(&host.engine, &component)
                )))
            }
        };
        let instance_pre = host.linker.instantiate_pre(&component).map_err(|e| {
            fail(format!(
                "imports something the host does not provide: {e:#}"
            ))
        })?;
        let pre = match world {
            World::Integration => {
                bindings::integration::IntegrationPre::new(instance_pre).map(Pre::Integration)
            }
            World::Lambda => bindings::lambda::LambdaPre::new(instance_pre).map(Pre::Lambda),
            World::Authorizer => {
                bindings::authorizer::AuthorizerPre::new(instance_pre).map(Pre::Authorizer)
            }
            World::WasiHttp => ProxyPre::new(instance_pre).map(Pre::WasiHttp),
        }
        .map_err(|e| fail(format!("does not match the {} world: {e:#}", world.name())))?;

        let default_timeout = if world == World::Authorizer {
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
        if memory_mb == 0 || memory_mb > MAX_MEMORY_MB {
            return Err(Error::config(
                at.key("memoryMb"),
                format!("must be 1-{MAX_MEMORY_MB}"),
            ));
        }
        Ok(Arc::new(LoadedPlugin {
            name: name.into(),
            world,
            timeout,
            memory_bytes: (memory_mb as usize) << 20,
            config: Arc::new(definition.config.clone()),
            runtime: Arc::clone(self),
            pre,
        }))
    }
}

/// Where compiled components are cached: `$PORTICO_CACHE_DIR`, else wasmtime's default.
fn compilation_cache() -> wasmtime::Result<wasmtime::Cache> {
    let mut cache_config = wasmtime::CacheConfig::new();
    if let Some(dir) = std::env::var_os("PORTICO_CACHE_DIR") {
        let dir = std::path::PathBuf::from(dir);
        let dir = if dir.is_absolute() {
            dir
        } else {
            std::env::current_dir()?.join(dir)
        };
        cache_config.with_directory(dir);
    }
    wasmtime::Cache::new(cache_config)
}

/// Advances the engine's epoch every millisecond until the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("portico-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_millis(1));
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the epoch thread: plugin time limits will not apply");
    }
}

/// A core module starts with the magic and version 1; a component with the magic and a
/// different version/layer word.
fn wasmparser_is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

fn exported_world(engine: &Engine, component: &Component) -> Option<World> {
    let ty = component.component_type();
    let mut found = None;
    for (name, _) in ty.exports(engine) {
        if name == "handle" {
            found = Some(World::Integration);
        } else if name == "handle-event" {
            found = Some(World::Lambda);
        } else if name == "authorize" {
            found = Some(World::Authorizer);
        } else if name.starts_with("wasi:http/incoming-handler@") {
            found = Some(World::WasiHttp);
        }
    }
    found
}

fn describe_exports(engine: &Engine, component: &Component) -> String {
    let names: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(n, _)| n.to_owned())
        .collect();
    if names.is_empty() {
        "it exports nothing".into()
    } else {
        format!("it exports: {}", names.join(", "))
    }
}

enum Pre {
    Integration(bindings::integration::IntegrationPre<HostState>),
    Lambda(bindings::lambda::LambdaPre<HostState>),
    Authorizer(bindings::authorizer::AuthorizerPre<HostState>),
    WasiHttp(ProxyPre<HostState>),
}

/// A compiled, linked plugin, ready to be instantiated per call.
pub(crate) struct LoadedPlugin {
    name: Arc<str>,
    world: World,
    timeout: Duration,
    memory_bytes: usize,
    config: Arc<BTreeMap<String, String>>,
    runtime: Arc<PluginRuntime>,
    pre: Pre,
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
    pub(crate) fn world(&self) -> World {
        self.world
    }

    fn new_store(&self) -> Store<HostState> {
        let state = HostState {
            plugin: Arc::clone(&self.name),
            config: Arc::clone(&self.config),
            kv: Arc::clone(&self.runtime.kv),
            table: ResourceTable::new(),
            wasi: None,
            http: None,
            http_hooks: NoOutgoingHttp,
            limiter: MemoryLimiter {
                max_bytes: self.memory_bytes,
                exceeded: false,
            },
            timed_out: false,
        };
        let mut store = Store::new(&self.runtime.host.engine, state);
        store.limiter(|state| &mut state.limiter);
        let deadline = Instant::now() + self.timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut context| {
            if Instant::now() >= deadline {
                context.data_mut().timed_out = true;
                Err(wasmtime::Error::msg("time limit reached"))
            } else {
                // Give the executor back every tick: a busy plugin never starves others.
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    fn failure(&self, store: &Store<HostState>, error: wasmtime::Error) -> PluginFailure {
        let state = store.data();
        let failure = if state.timed_out {
            PluginFailure::Timeout
        } else if state.limiter.exceeded {
            PluginFailure::MemoryExceeded
        } else {
            PluginFailure::Trap(format!("{error:#}"))
        };
        self.log_failure(&failure);
        failure
    }

    /// The result of a call that may fail in the host (trap, timeout) or report a plugin error.
    fn settle<T>(
        &self,
        store: &Store<HostState>,
        outcome: Result<Result<T, String>, wasmtime::Error>,
    ) -> Result<T, PluginFailure> {
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => {
                let failure = PluginFailure::PluginError(message);
                self.log_failure(&failure);
                Err(failure)
            }
            Err(error) => Err(self.failure(store, error)),
        }
    }

    fn log_failure(&self, failure: &PluginFailure) {
        tracing::error!(plugin = %self.name, world = self.world.name(), "plugin {failure}");
    }

    /// Instantiates the component on a fresh store and drops it (for benchmarks).
    pub(crate) async fn instantiate_only(&self) -> Result<(), PluginFailure> {
        let mut store = self.new_store();
        let result = match &self.pre {
            Pre::Integration(pre) => pre.instantiate_async(&mut store).await.map(drop),
            Pre::Lambda(pre) => pre.instantiate_async(&mut store).await.map(drop),
            Pre::Authorizer(pre) => pre.instantiate_async(&mut store).await.map(drop),
            Pre::WasiHttp(pre) => pre.instantiate_async(&mut store).await.map(drop),
        };
        result.map_err(|error| self.failure(&store, error))
    }

    /// Calls the integration world's `handle` on a fresh instance.
    pub(crate) async fn handle(
        &self,
        request: &types::Request,
    ) -> Result<types::Response, PluginFailure> {
        let Pre::Integration(pre) = &self.pre else {
            return Err(PluginFailure::Trap(format!(
                "plugin {} is not an integration",
                self.name
            )));
        };
        let mut store = self.new_store();
        let outcome = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_handle(&mut store, request).await
        }
        .await;
        self.settle(&store, outcome.map(|r| r.map_err(|e| e.message)))
    }

    /// Calls the lambda world's `handle-event` on a fresh instance: the event JSON in, the
    /// function's response JSON out.
    pub(crate) async fn handle_event(&self, event: &str) -> Result<String, PluginFailure> {
        let Pre::Lambda(pre) = &self.pre else {
            return Err(PluginFailure::Trap(format!(
                "plugin {} is not of the lambda world",
                self.name
            )));
        };
        let mut store = self.new_store();
        let outcome = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_handle_event(&mut store, event).await
        }
        .await;
        self.settle(&store, outcome.map(|r| r.map_err(|e| e.message)))
    }

    /// Calls the authorizer world's `authorize` on a fresh instance.
    pub(crate) async fn authorize(
        &self,
        request: &types::AuthRequest,
    ) -> Result<types::AuthDecision, PluginFailure> {
        let Pre::Authorizer(pre) = &self.pre else {
            return Err(PluginFailure::Trap(format!(
                "plugin {} is not an authorizer",
                self.name
            )));
        };
        let mut store = self.new_store();
        let outcome = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_authorize(&mut store, request).await
        }
        .await;
        outcome.map_err(|error| self.failure(&store, error))
    }

    /// Hands an HTTP request to a `wasi:http/proxy` component and collects its response.
    pub(crate) async fn serve_http(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, PluginFailure> {
        let Pre::WasiHttp(pre) = &self.pre else {
            return Err(PluginFailure::Trap(format!(
                "plugin {} is not a wasi:http component",
                self.name
            )));
        };
        let mut store = self.new_store();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let request = request.map(|body| {
            Full::new(body).map_err(
                |never: std::convert::Infallible| -> wasmtime_wasi_http::Error { match never {} },
            )
        });
        let resources = {
            let mut http = store.data_mut().http();
            http.new_incoming_request(Scheme::Http, request)
                .and_then(|req| Ok((req, http.new_response_outparam(sender)?)))
        };
        let (incoming, outparam) = resources.map_err(|e| PluginFailure::Trap(format!("{e:#}")))?;
        let pre = pre.clone();
        // The component may go on streaming the body after it has sent the head, so it runs
        // in a task of its own; the task ends with the store, and so with the instance.
        let task = tokio::spawn(async move {
            let result = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, incoming, outparam)
                    .await
            }
            .await;
            result
                .err()
                .map(|error| (error, store.data().timed_out, store.data().limiter.exceeded))
        });
        let deadline = tokio::time::Instant::now() + self.timeout;
        let head = tokio::time::timeout_at(deadline, receiver).await;
        let response = match head {
            Ok(Ok(Ok(response))) => response,
            Ok(Ok(Err(code))) => {
                return Err(self.logged(PluginFailure::PluginError(format!("{code:?}"))))
            }
            Ok(Err(_)) => return Err(self.task_failure(task).await),
            Err(_) => {
                task.abort();
                return Err(self.logged(PluginFailure::Timeout));
            }
        };
        let (parts, body) = response.into_parts();
        let body =
            tokio::time::timeout_at(deadline, Limited::new(body, MAX_RESPONSE_BYTES).collect())
                .await;
        match body {
            Ok(Ok(collected)) => Ok(http::Response::from_parts(parts, collected.to_bytes())),
            Ok(Err(e)) => {
                task.abort();
                Err(self.logged(PluginFailure::BadResponse(format!("response body: {e}"))))
            }
            Err(_) => {
                task.abort();
                Err(self.logged(PluginFailure::Timeout))
            }
        }
    }

    async fn task_failure(
        &self,
        task: tokio::task::JoinHandle<Option<(wasmtime::Error, bool, bool)>>,
    ) -> PluginFailure {
        let failure = match task.await {
            Ok(Some((_, true, _))) => PluginFailure::Timeout,
            Ok(Some((_, _, true))) => PluginFailure::MemoryExceeded,
            Ok(Some((error, _, _))) => PluginFailure::Trap(format!("{error:#}")),
            Ok(None) => PluginFailure::BadResponse("the component never set a response".into()),
            Err(e) => PluginFailure::Trap(format!("the component's task failed: {e}")),
        };
        self.logged(failure)
    }

    fn logged(&self, failure: PluginFailure) -> PluginFailure {
        self.log_failure(&failure);
        failure
    }
}

/// The memory cap of one instance; remembers whether it refused anything so that the trap
/// that follows is reported as what it is.
struct MemoryLimiter {
    max_bytes: usize,
    exceeded: bool,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// The data of one call's `Store`.
pub(crate) struct HostState {
    plugin: Arc<str>,
    config: Arc<BTreeMap<String, String>>,
    kv: Arc<dyn KvStore>,
    table: ResourceTable,
    /// Built on first use: components that import no WASI never pay for it.
    wasi: Option<WasiCtx>,
    http: Option<WasiHttpCtx>,
    http_hooks: NoOutgoingHttp,
    limiter: MemoryLimiter,
    timed_out: bool,
}

/// The sandbox a plugin gets from WASI: clocks and randomness, nothing else (no files, no
/// environment, no sockets, no stdin; stdout and stderr are discarded).
fn sandboxed_wasi() -> WasiCtx {
    let mut builder = WasiCtx::builder();
    builder
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    builder.build()
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: self.wasi.get_or_insert_with(sandboxed_wasi),
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: self.http.get_or_insert_with(WasiHttpCtx::new),
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

/// Plugins get no network: a component's outgoing HTTP request is denied.
#[derive(Default)]
struct NoOutgoingHttp;

impl wasmtime_wasi_http::WasiHttpHooks for NoOutgoingHttp {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn std::future::Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<
                        dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>>
                            + Send,
                    >,
                )>,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

impl bindings::types::Host for HostState {}

impl bindings::log::Host for HostState {
    fn log(&mut self, level: bindings::log::Level, message: String) -> wasmtime::Result<()> {
        use bindings::log::Level;
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(target: "portico::plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "portico::plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "portico::plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "portico::plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "portico::plugin", plugin, "{message}"),
        }
        Ok(())
    }
}

impl bindings::config::Host for HostState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.config.get(&key).cloned())
    }
}

fn kv_error(error: KvError) -> bindings::kv::KvError {
    match error {
        KvError::InvalidName(m) => bindings::kv::KvError::InvalidName(m),
        KvError::Storage(m) => bindings::kv::KvError::Storage(m),
    }
}

/// Runs a store call off the async executor when there is a tokio runtime to do it.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, KvError> + Send + 'static,
) -> Result<T, bindings::kv::KvError> {
    let result = match tokio::runtime::Handle::try_current() {
        Ok(handle) => match handle.spawn_blocking(work).await {
            Ok(result) => result,
            Err(e) => Err(KvError::Storage(format!("store task failed: {e}"))),
        },
        Err(_) => work(),
    };
    result.map_err(kv_error)
}

/// The most entries one `list-prefix` call returns, whatever the plugin asks.
const MAX_LIST: u32 = 1000;

impl bindings::kv::Host for HostState {
    async fn get(
        &mut self,
        table: String,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, bindings::kv::KvError>> {
        let kv = Arc::clone(&self.kv);
        Ok(blocking(move || kv.get(&table, &key)).await)
    }

    async fn put(
        &mut self,
        table: String,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), bindings::kv::KvError>> {
        let kv = Arc::clone(&self.kv);
        Ok(blocking(move || kv.put(&table, &key, &value)).await)
    }

    async fn delete(
        &mut self,
        table: String,
        key: String,
    ) -> wasmtime::Result<Result<bool, bindings::kv::KvError>> {
        let kv = Arc::clone(&self.kv);
        Ok(blocking(move || kv.delete(&table, &key)).await)
    }

    async fn list_prefix(
        &mut self,
        table: String,
        prefix: String,
        start_after: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Result<Vec<(String, Vec<u8>)>, bindings::kv::KvError>> {
        let kv = Arc::clone(&self.kv);
        let limit = limit.min(MAX_LIST) as usize;
        Ok(blocking(move || kv.list_prefix(&table, &prefix, start_after.as_deref(), limit)).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryKv;

    fn token_authorizer() -> Arc<LoadedPlugin> {
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist");
        assert!(
            dist.join("token_authorizer.wasm").exists(),
            "run plugins/build first"
        );
        let definition: PluginDefinition = serde_yaml::from_str(
            "{ path: token_authorizer.wasm, config: { issuer: 'https://issuer.example', audience: 'client-1', hs256Secret: s3cret } }",
        )
        .unwrap();
        let runtime = PluginRuntime::new(Arc::new(MemoryKv::new())).unwrap();
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

    fn auth_request(token: String) -> types::AuthRequest {
        types::AuthRequest {
            kind: types::AuthorizerKind::Token,
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
        assert_eq!(plugin.world(), World::Authorizer);

        let decision = plugin
            .authorize(&auth_request(format!(
                "Bearer {}",
                token("s3cret", "client-1", 600)
            )))
            .await
            .unwrap();
        let types::AuthDecision::Allow(grant) = decision else {
            panic!("expected allow, got {decision:?}")
        };
        assert_eq!(grant.principal_id, "user-42");
        let context: BTreeMap<_, _> = grant.context.into_iter().collect();
        assert_eq!(
            context.get("userId"),
            Some(&types::ContextValue::Text("user-42".into()))
        );
        assert_eq!(
            context.get("email"),
            Some(&types::ContextValue::Text("u42@example.com".into()))
        );
        assert_eq!(
            context.get("role"),
            Some(&types::ContextValue::Text("admin".into()))
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
            let decision = plugin.authorize(&auth_request(bad)).await.unwrap();
            assert!(
                matches!(decision, types::AuthDecision::Unauthorized),
                "{decision:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_integration_is_not_called_as_an_authorizer() {
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist");
        let definition: PluginDefinition = serde_yaml::from_str("{ path: echo.wasm }").unwrap();
        let runtime = PluginRuntime::new(Arc::new(MemoryKv::new())).unwrap();
        let echo = runtime
            .load("echo", &definition, &dist, &KeyPath::root())
            .unwrap();
        assert_eq!(echo.world(), World::Integration);
        assert!(matches!(
            echo.authorize(&auth_request(String::new())).await,
            Err(PluginFailure::Trap(_))
        ));
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

    fn empty_request() -> types::Request {
        types::Request {
            method: "GET".into(),
            raw_path: "/".into(),
            raw_query: String::new(),
            query_parameters: Vec::new(),
            headers: Vec::new(),
            cookies: Vec::new(),
            path_parameters: Vec::new(),
            stage: "dev".into(),
            stage_variables: Vec::new(),
            route_key: "GET /".into(),
            request_id: "rid".into(),
            source_ip: String::new(),
            user_agent: String::new(),
            request_time_epoch_ms: 0,
            authorizer: None,
            body: Vec::new(),
        }
    }

    #[test]
    fn a_trap_is_logged_with_the_plugin_name_and_the_trap_message() {
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist");
        let definition: PluginDefinition =
            serde_yaml::from_str("{ path: hostile_trap.wasm }").unwrap();
        let runtime = PluginRuntime::new(Arc::new(MemoryKv::new())).unwrap();
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
            runtime.block_on(trap.handle(&empty_request()))
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
