//! The plugin host an embedder owns: the wasmtime engine (its instance pool and compilation
//! cache), the linker that provides the host imports, the epoch ticker that enforces time
//! limits, and every component compiled so far.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings;
use super::imports::HostState;
use super::needs::PoolNeeds;
use crate::config::InstanceLifecycle;
use crate::error::Error;

/// Component instances (calls in flight plus warm instances) by default.
const DEFAULT_MAX_INSTANCES: u32 = 512;
/// Core instances, memories and tables per component instance the pool of an embedder's host
/// has room for: a componentize-py component holds 14 core instances (plugins/dist's
/// python_hello); most components one memory and two tables.
const CORE_INSTANCES_PER_INSTANCE: u64 = 16;
const MEMORIES_PER_INSTANCE: u64 = 2;
const TABLES_PER_INSTANCE: u64 = 8;
/// How often idle warm instances are looked at (`idleSeconds`).
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// The largest memory cap a plugin may ask for, by default and at most.
/// Below 4 GiB on purpose: smaller than the 32-bit index space, so bounds are checked in code
/// (see the engine's configuration).
const MAX_MEMORY_MB: u64 = 1024;
/// Elements of one table, by default: componentize-py's function tables are large.
const DEFAULT_TABLE_ELEMENTS: usize = 200_000;
/// How much of a linear memory stays resident between calls (reset with memset).
const KEEP_RESIDENT_BYTES: usize = 2 << 20;
/// How often running plugins are checked against their deadline and yield, by default: Spin's
/// default epoch tick (`DEFAULT_EPOCH_TICK_INTERVAL`, 10 ms, fermyon/spin crates/core). A 1 ms
/// tick cost the warm plugin rows of `scripts/loadtest` (`js_hello`, `python_hello`, `echo`)
/// 5-10% in side-by-side runs on one core; the fresh rows moved within the noise (README,
/// "Over HTTP"): the ticker's wake-ups and the yields they force, a thousand a second.
const DEFAULT_EPOCH_TICK: Duration = Duration::from_millis(10);
/// The longest tick accepted: time limits are only as precise as the tick.
const MAX_EPOCH_TICK: Duration = Duration::from_secs(1);

/// The WebAssembly runtime that runs a gateway's plugins: the wasmtime engine with its instance
/// pool, on-disk compilation cache and epoch ticker, the linker of the host imports, and every
/// component compiled so far.
///
/// Built by the embedder with [`PluginHost::builder`] and handed to
/// [`GatewayBuilder::plugin_host`](crate::GatewayBuilder::plugin_host); a gateway that is given
/// none makes its own with the defaults the first time its definition has plugins. Cheap to
/// clone (a shared handle): gateways that share one host share its pool and compile each file
/// once between them. The epoch thread stops when the last handle (and the last plugin loaded
/// on it) is dropped.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<HostInner>,
}

struct HostInner {
    /// The engine of fresh instances' plugins.
    checked: Runtime,
    /// The engine of warm instances' plugins.
    guarded: Runtime,
    components: Mutex<HashMap<(PathBuf, Confinement), (FileStamp, CompiledSlot)>>,
    settings: PluginHostBuilder,
    /// The pools' sizes.
    capacity: PerEngine,
    /// What the loaded plugins have reserved of them (their concurrency times their needs).
    reserved: Mutex<PerEngine>,
    /// What the epoch thread sweeps of idle warm instances, about once a second.
    sweepers: Arc<Sweepers>,
    /// The plugin code running now, which the epoch thread ticks for.
    running: Arc<Running>,
    /// Stops the epoch thread when the host goes.
    _ticker: Ticker,
}

/// How a plugin's compiled code is kept inside its linear memory. Each way has an engine (and
/// an instance pool) of its own, and a plugin's instance lifecycle picks one: the two trade
/// instantiation cost against the speed of the code, and a fresh instance pays the first
/// every call while a warm one pays it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Confinement {
    /// Explicit bounds checks in the compiled code and no guard pages: a reused pool slot
    /// keeps its read/write mapping, so an instantiation pays no `mprotect` (and TLB
    /// shootdown) per memory. For fresh instances: `GET /echo` over HTTP (scripts/loadtest's
    /// load, one core) answers 43,900 req/s on fresh instances so, 22,600 with guard pages.
    Checked,
    /// Guard pages and signal-based traps (wasmtime's defaults): loads and stores run without
    /// checks, instantiation pays the `mprotect`s. For warm instances, made rarely:
    /// `js_hello` on warm instances answers 9,700 req/s so, 7,400 with checks; `python_hello`
    /// 19,500 against 18,100.
    Guarded,
}

impl Confinement {
    /// The confinement of a plugin whose instances live as `lifecycle` says.
    pub(super) fn of(lifecycle: InstanceLifecycle) -> Confinement {
        match lifecycle {
            InstanceLifecycle::Fresh => Confinement::Checked,
            InstanceLifecycle::Warm => Confinement::Guarded,
        }
    }
}

/// Pool slots on each engine of a host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct PerEngine {
    pub(super) checked: PoolNeeds,
    pub(super) guarded: PoolNeeds,
}

impl PerEngine {
    /// `needs` on the engine of `confinement`, nothing on the other.
    pub(super) fn on(confinement: Confinement, needs: PoolNeeds) -> PerEngine {
        let mut split = PerEngine::default();
        *split.get_mut(confinement) = needs;
        split
    }

    pub(super) fn get(&self, confinement: Confinement) -> PoolNeeds {
        match confinement {
            Confinement::Checked => self.checked,
            Confinement::Guarded => self.guarded,
        }
    }

    fn get_mut(&mut self, confinement: Confinement) -> &mut PoolNeeds {
        match confinement {
            Confinement::Checked => &mut self.checked,
            Confinement::Guarded => &mut self.guarded,
        }
    }

    pub(super) fn plus(self, other: PerEngine) -> PerEngine {
        PerEngine {
            checked: self.checked.plus(other.checked),
            guarded: self.guarded.plus(other.guarded),
        }
    }

    pub(super) fn times(self, count: u64) -> PerEngine {
        PerEngine {
            checked: self.checked.times(count),
            guarded: self.guarded.times(count),
        }
    }
}

/// An engine and the linker of the host imports for it.
struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
}

/// The plugin code running on a host now (instantiations and calls). The epoch thread ticks
/// only while there is some, so a host whose plugins are idle (a gateway serving mocks, or
/// nothing) is not woken a thousand times a second.
#[derive(Default)]
pub(super) struct Running {
    count: AtomicUsize,
    /// The epoch thread, woken when plugin code starts to run.
    ticker: OnceLock<std::thread::Thread>,
}

impl Running {
    /// Plugin code starts to run on the host: it counts until the guard is dropped.
    pub(super) fn begin(self: &Arc<Self>) -> RunningGuard {
        if self.count.fetch_add(1, Ordering::AcqRel) == 0 {
            if let Some(thread) = self.ticker.get() {
                thread.unpark();
            }
        }
        RunningGuard(Arc::clone(self))
    }

    fn idle(&self) -> bool {
        self.count() == 0
    }

    /// How many instantiations and calls are running.
    pub(super) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}

/// Plugin code running (see [`Running::begin`]).
pub(super) struct RunningGuard(Arc<Running>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Something the epoch thread looks at now and then: a plugin's idle warm instances.
pub(super) trait Sweep: Send + Sync {
    /// Discards what has been idle too long at `now`.
    fn sweep(&self, now: Instant);
}

type Sweepers = Mutex<Vec<Weak<dyn Sweep>>>;

/// A plugin's share of its host's pool, given back when the plugin is dropped.
pub(super) struct PoolShare {
    host: Arc<HostInner>,
    confinement: Confinement,
    needs: PoolNeeds,
}

impl Drop for PoolShare {
    fn drop(&mut self) {
        if let Ok(mut reserved) = self.host.reserved.lock() {
            let engine = reserved.get_mut(self.confinement);
            *engine = engine.minus(self.needs).unwrap_or_default();
        }
    }
}

/// One file's compilation, done once, shared by everyone who waits for it.
type CompiledSlot = Arc<OnceLock<Result<Component, String>>>;

/// What identifies one version of a file: its length and modification time.
pub(super) type FileStamp = (u64, Option<SystemTime>);

/// Settings of a [`PluginHost`]. The defaults suit a server: room for 512 calls in flight,
/// plugins of up to 1 GiB of memory, wasmtime's compilation cache in `$PORTICO_CACHE_DIR` (or
/// wasmtime's default directory), a 10 ms epoch tick.
#[derive(Debug, Clone)]
pub struct PluginHostBuilder {
    max_instances: u32,
    max_memory_mb: u64,
    max_table_elements: usize,
    cache: DiskCache,
    epoch_tick: Duration,
    /// The pools' exact sizes, when a gateway sizes its own host from its plugins' needs;
    /// otherwise each follows `max_instances`.
    pool: Option<PerEngine>,
}

/// Where compiled components are kept between runs.
#[derive(Debug, Clone)]
enum DiskCache {
    /// `$PORTICO_CACHE_DIR` when set, else wasmtime's default directory.
    Default,
    Directory(PathBuf),
    Off,
}

impl Default for PluginHostBuilder {
    fn default() -> Self {
        PluginHostBuilder {
            max_instances: DEFAULT_MAX_INSTANCES,
            max_memory_mb: MAX_MEMORY_MB,
            max_table_elements: DEFAULT_TABLE_ELEMENTS,
            cache: DiskCache::Default,
            epoch_tick: DEFAULT_EPOCH_TICK,
            pool: None,
        }
    }
}

impl PluginHostBuilder {
    /// How many plugin instances may exist at once (default 512) on each of the host's two
    /// pools (one for fresh instances: calls in flight; one for warm instances), with room
    /// for 16 core instances, 2 memories and 8 tables each. Every plugin loaded on the host
    /// reserves its `maxConcurrency` times what one of its instances takes, so a client never
    /// meets a full pool: a plugin whose share does not fit in what is left is a load error
    /// that names it. Pool slots are virtual address space until used.
    pub fn max_instances(mut self, instances: u32) -> Self {
        self.max_instances = instances;
        self
    }

    /// Pools of exactly `size` (a gateway's own host, sized from its plugins).
    pub(super) fn pool(mut self, size: PerEngine) -> Self {
        self.pool = Some(size);
        self
    }

    /// The pools this builder makes (wasmtime wants room for at least one of each).
    fn capacity(&self) -> PerEngine {
        let at_least_one = |n: u64| n.clamp(1, u64::from(u32::MAX));
        let size = self.pool.unwrap_or_else(|| {
            let instances = u64::from(self.max_instances);
            let each = PoolNeeds {
                instances,
                core_instances: instances * CORE_INSTANCES_PER_INSTANCE,
                memories: instances * MEMORIES_PER_INSTANCE,
                tables: instances * TABLES_PER_INSTANCE,
            };
            PerEngine {
                checked: each,
                guarded: each,
            }
        });
        let usable = |size: PoolNeeds| PoolNeeds {
            instances: at_least_one(size.instances),
            core_instances: at_least_one(size.core_instances),
            memories: at_least_one(size.memories),
            tables: at_least_one(size.tables),
        };
        PerEngine {
            checked: usable(size.checked),
            guarded: usable(size.guarded),
        }
    }

    /// The largest `memoryMb` a plugin may ask for (default and at most 1024); each memory
    /// slot of the fresh instances' pool reserves this much address space (the warm
    /// instances' pool reserves 4 GiB and guard pages a slot).
    pub fn max_memory_mb(mut self, megabytes: u64) -> Self {
        self.max_memory_mb = megabytes;
        self
    }

    /// The most elements one table of a component may have (default 200 000, what
    /// componentize-py's guests need); a component with a larger table does not load.
    pub fn max_table_elements(mut self, elements: usize) -> Self {
        self.max_table_elements = elements;
        self
    }

    /// Keeps compiled components in `dir` (relative to the current directory), so that a
    /// restart does not compile them again. By default `$PORTICO_CACHE_DIR`, else wasmtime's
    /// default cache directory.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache = DiskCache::Directory(dir.into());
        self
    }

    /// Whether compiled components are cached on disk at all (default true).
    pub fn disk_cache(mut self, enabled: bool) -> Self {
        self.cache = match (enabled, self.cache) {
            (false, _) => DiskCache::Off,
            (true, DiskCache::Off) => DiskCache::Default,
            (true, kept) => kept,
        };
        self
    }

    /// How often running plugins are checked against their time limit and yield to the
    /// executor (default 10 ms, at most 1 s): time limits are as precise as this tick.
    pub fn epoch_tick(mut self, tick: Duration) -> Self {
        self.epoch_tick = tick;
        self
    }

    /// Creates the engine, its instance pool and the epoch thread.
    pub fn build(self) -> Result<PluginHost, Error> {
        let refuse = |message: String| Err(Error::PluginRuntime(message));
        if self.max_instances == 0 {
            return refuse("max_instances must be at least 1".into());
        }
        if !(1..=MAX_MEMORY_MB).contains(&self.max_memory_mb) {
            return refuse(format!("max_memory_mb must be 1-{MAX_MEMORY_MB}"));
        }
        if self.epoch_tick.is_zero() || self.epoch_tick > MAX_EPOCH_TICK {
            return refuse("epoch_tick must be more than 0 and at most 1 s".into());
        }
        let capacity = self.capacity();
        let runtime = |confinement| -> Result<Runtime, Error> {
            let engine = self
                .engine(capacity.get(confinement), confinement)
                .map_err(Error::PluginRuntime)?;
            let linker = linker(&engine).map_err(Error::PluginRuntime)?;
            Ok(Runtime { engine, linker })
        };
        let checked = runtime(Confinement::Checked)?;
        let guarded = runtime(Confinement::Guarded)?;
        let sweepers = Arc::new(Sweepers::default());
        let running = Arc::new(Running::default());
        let ticker = Ticker::start(
            [&checked.engine, &guarded.engine],
            self.epoch_tick,
            Arc::clone(&sweepers),
            Arc::clone(&running),
        );
        Ok(PluginHost {
            inner: Arc::new(HostInner {
                checked,
                guarded,
                components: Mutex::new(HashMap::new()),
                settings: self,
                capacity,
                reserved: Mutex::new(PerEngine::default()),
                sweepers,
                running,
                _ticker: ticker,
            }),
        })
    }

    /// An engine with the pooling allocator (of `capacity`), epoch interruption and the
    /// compilation cache, confining plugins as `confinement` says.
    fn engine(&self, capacity: PoolNeeds, confinement: Confinement) -> Result<Engine, String> {
        let total = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        let memory_bytes = self.max_memory_mb << 20;
        let mut pool = PoolingAllocationConfig::new();
        // All of this is virtual address space until used. Each running call (or
        // instantiation) takes a stack; there are never more than component instances.
        pool.total_component_instances(total(capacity.instances))
            .total_core_instances(total(capacity.core_instances))
            .total_memories(total(capacity.memories))
            .total_tables(total(capacity.tables))
            .total_stacks(total(capacity.instances))
            .max_memories_per_module(2)
            .max_tables_per_module(8)
            .table_elements(self.max_table_elements)
            .max_core_instance_size(16 << 20)
            .max_component_instance_size(16 << 20)
            .max_memory_size(memory_bytes as usize)
            // Reset the low pages of a reused slot with memset instead of madvise + page
            // faults: most of the per-call cost of a small plugin otherwise (measured in
            // benches/plugin.rs).
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_BYTES / 16)
            .pagemap_scan(wasmtime::Enabled::Auto)
            // Each freed slot goes back to the pool at once. wasmtime queues every reset
            // slot behind a decommit region, a zero-length one too (a one-page table, a
            // memory within keep-resident), and with batches of 16 the slots of the last
            // five fresh instances waited in that queue: a pool sized exactly to
            // `maxConcurrency` then ran dry, each allocation failed once and was retried
            // after a flush, and that failure's error captured a backtrace whenever
            // RUST_BACKTRACE was set (fresh `echo` at `maxConcurrency: 2`: 188,700
            // instructions a call under callgrind, 125,300 with this; at 8: 124,700 and
            // 125,200). A one-region batch of zero length is no system call at all; only a
            // memory larger than keep-resident pays its own `madvise`.
            .decommit_batch_size(1);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            // A pool slot's memory never moves (each engine reserves its whole size), and
            // telling Cranelift so lets it keep the memory's base in a register across calls:
            // warm `echo` 1.04x, a fresh JavaScript plugin 1.035x (README, "Where a plugin
            // call's time goes").
            .memory_may_move(false);
        if confinement == Confinement::Checked {
            // Explicit bounds checks instead of guard pages (see `Confinement::Checked`).
            config
                .signals_based_traps(false)
                .memory_reservation(memory_bytes)
                .memory_guard_size(0)
                .guard_before_linear_memory(false);
        }
        // For profiling plugins: `PORTICO_WASM_PERFMAP=1` writes /tmp/perf-<pid>.map, which
        // lets `perf report` name the plugins' compiled functions (README: "Where a plugin
        // call's time goes").
        if std::env::var_os("PORTICO_WASM_PERFMAP").is_some_and(|v| v == "1") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        match self.compilation_cache() {
            Ok(Some(cache)) => {
                config.cache(Some(cache));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "wasmtime compilation cache unavailable; components compile on every start")
            }
        }
        Engine::new(&config).map_err(|e| format!("cannot create the wasmtime engine: {e:#}"))
    }

    /// wasmtime's on-disk cache in the chosen directory; `None` when it is off.
    fn compilation_cache(&self) -> wasmtime::Result<Option<wasmtime::Cache>> {
        let dir = match &self.cache {
            DiskCache::Off => return Ok(None),
            DiskCache::Directory(dir) => Some(dir.clone()),
            DiskCache::Default => std::env::var_os("PORTICO_CACHE_DIR").map(PathBuf::from),
        };
        let mut cache_config = wasmtime::CacheConfig::new();
        if let Some(dir) = dir {
            let dir = if dir.is_absolute() {
                dir
            } else {
                std::env::current_dir()?.join(dir)
            };
            cache_config.with_directory(dir);
        }
        wasmtime::Cache::new(cache_config).map(Some)
    }
}

/// A linker that provides WASI 0.2, wasi:http and the `portico:plugin` imports.
fn linker(engine: &Engine) -> Result<Linker<HostState>, String> {
    let mut linker = Linker::new(engine);
    let link =
        |r: wasmtime::Result<()>| r.map_err(|e| format!("cannot link host functions: {e:#}"));
    link(wasmtime_wasi::p2::add_to_linker_async(&mut linker))?;
    // wasi:io once more, over the store's resource table alone, in place of wasmtime-wasi's
    // own: that one reaches the table through `WasiView::ctx`, which builds the whole WASI
    // context (its random generators seeded) on first use, so a wasi:http component that
    // imports nothing of WASI but wasi:io (`hello_http` writing its body) paid for one on every
    // fresh instance (about 2,800 instructions of 142,000 a request under callgrind).
    linker.allow_shadowing(true);
    link(wasmtime_wasi_io::add_to_linker_async(&mut linker))?;
    linker.allow_shadowing(false);
    link(wasmtime_wasi_http::p2::add_only_http_to_linker_async(
        &mut linker,
    ))?;
    link(bindings::types::add_to_linker::<_, HasSelf<_>>(
        &mut linker,
        |s| s,
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
    Ok(linker)
}

impl PluginHost {
    /// Settings for a host; `PluginHost::builder().build()` is the default host.
    pub fn builder() -> PluginHostBuilder {
        PluginHostBuilder::default()
    }

    /// The engine of plugins confined as `confinement` says.
    pub(super) fn engine(&self, confinement: Confinement) -> &Engine {
        &self.inner.runtime(confinement).engine
    }

    /// The count of plugin code running on this host, which its epoch thread ticks for.
    pub(super) fn running(&self) -> &Arc<Running> {
        &self.inner.running
    }

    pub(super) fn linker(&self, confinement: Confinement) -> &Linker<HostState> {
        &self.inner.runtime(confinement).linker
    }

    /// The largest memory cap a plugin of this host may ask for, in MiB.
    pub(super) fn max_memory_mb(&self) -> u64 {
        self.inner.settings.max_memory_mb
    }

    /// A host with the default settings whose pools hold exactly `size`: a gateway's own
    /// host, sized from its plugins' needs.
    pub(super) fn sized(size: PerEngine) -> Result<PluginHost, Error> {
        PluginHost::builder().pool(size).build()
    }

    /// Reserves `needs` of the pool of `confinement`'s engine for a plugin, until the returned
    /// share is dropped; when they do not fit, what is left of that pool.
    pub(super) fn reserve(
        &self,
        needs: PoolNeeds,
        confinement: Confinement,
    ) -> Result<PoolShare, PoolNeeds> {
        let mut reserved = self
            .inner
            .reserved
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let left = self.left_with(&reserved, confinement);
        if !left.holds(needs) {
            return Err(left);
        }
        let engine = reserved.get_mut(confinement);
        *engine = engine.plus(needs);
        Ok(PoolShare {
            host: Arc::clone(&self.inner),
            confinement,
            needs,
        })
    }

    /// Whether `needs` would fit in what is left of the pools now.
    pub(super) fn has_room_for(&self, needs: PerEngine) -> bool {
        let reserved = *self
            .inner
            .reserved
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        [Confinement::Checked, Confinement::Guarded]
            .into_iter()
            .all(|c| self.left_with(&reserved, c).holds(needs.get(c)))
    }

    fn left_with(&self, reserved: &PerEngine, confinement: Confinement) -> PoolNeeds {
        self.capacity(confinement)
            .minus(reserved.get(confinement))
            .unwrap_or_default()
    }

    /// The size of the pool of `confinement`'s engine.
    pub(super) fn capacity(&self, confinement: Confinement) -> PoolNeeds {
        self.inner.capacity.get(confinement)
    }

    /// Whether `self` and `other` are handles of the same host.
    pub(super) fn same(&self, other: &PluginHost) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Has the epoch thread sweep `sweeper` about once a second, while it lives.
    pub(super) fn sweep_now_and_then(&self, sweeper: Weak<dyn Sweep>) {
        if let Ok(mut sweepers) = self.inner.sweepers.lock() {
            sweepers.push(sweeper);
        }
    }

    /// The compiled component of `path` for the engine of `confinement`, compiling it only if
    /// this version of the file was never compiled for it on this host. Concurrent callers
    /// wait for one compilation; neither the compilation nor the wait stalls an async
    /// executor (see [`off_the_executor`]).
    pub(super) fn component(
        &self,
        path: &Path,
        bytes: &[u8],
        stamp: FileStamp,
        confinement: Confinement,
    ) -> Result<Component, String> {
        let slot = {
            let mut components = self
                .inner
                .components
                .lock()
                .map_err(|_| "component cache poisoned".to_owned())?;
            let entry = components
                .entry((path.to_path_buf(), confinement))
                .or_insert_with(|| (stamp, Arc::new(OnceLock::new())));
            if entry.0 != stamp {
                *entry = (stamp, Arc::new(OnceLock::new()));
            }
            Arc::clone(&entry.1)
        };
        if let Some(compiled) = slot.get() {
            return compiled.clone();
        }
        off_the_executor(|| {
            slot.get_or_init(|| {
                Component::new(self.engine(confinement), bytes).map_err(|e| {
                    format!("is not a valid WebAssembly component for this plugin host: {e:#}")
                })
            })
            .clone()
        })
    }
}

impl HostInner {
    fn runtime(&self, confinement: Confinement) -> &Runtime {
        match confinement {
            Confinement::Checked => &self.checked,
            Confinement::Guarded => &self.guarded,
        }
    }
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PluginHost")
            .field(&self.inner.settings)
            .finish()
    }
}

/// Runs `work` (compiling a component: up to seconds of CPU) without stalling an async
/// executor. Inside a multi-thread tokio runtime, `block_in_place` first hands the worker's
/// other tasks to the rest of the pool. A current-thread runtime has no other worker to hand
/// them to (and `block_in_place` would panic there), so there, as outside any runtime, the
/// work runs in place: an embedder on such a runtime who cannot wait builds the gateway in
/// `spawn_blocking`.
fn off_the_executor<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Runs `future` to completion from synchronous code (loading a gateway: making provisioned
/// instances), on a thread of its own with a current-thread tokio runtime, so that it works
/// inside or outside any runtime; the caller waits for it as for a compilation (see
/// [`off_the_executor`]).
pub(super) fn run_to_completion<F>(future: F) -> Result<F::Output, String>
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    off_the_executor(|| {
        std::thread::scope(|scope| {
            let runner = std::thread::Builder::new()
                .name("portico-load".into())
                .spawn_scoped(scope, || {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map(|runtime| runtime.block_on(future))
                        .map_err(|e| format!("cannot start a runtime: {e}"))
                })
                .map_err(|e| format!("cannot start a thread: {e}"))?;
            runner
                .join()
                .map_err(|_| "the loading thread panicked".to_owned())?
        })
    })
}

/// The thread that advances the engines' epochs every tick while plugin code runs (parked
/// otherwise, waking about once a second to sweep idle instances), until its host is dropped
/// (or the engine is gone).
struct Ticker {
    stop: Arc<AtomicBool>,
    running: Arc<Running>,
}

impl Ticker {
    fn start(
        engines: [&Engine; 2],
        tick: Duration,
        sweepers: Arc<Sweepers>,
        running: Arc<Running>,
    ) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let weak = engines.map(Engine::weak);
        let watched = Arc::clone(&running);
        let spawned = std::thread::Builder::new()
            .name("portico-epoch".into())
            .spawn(move || {
                let mut swept = Instant::now();
                loop {
                    if watched.idle() {
                        // Woken by the next call (`Running::begin`), or for the sweep. A
                        // call's deadline is counted from the epoch when it starts, so
                        // epochs skipped meanwhile cost it nothing.
                        std::thread::park_timeout(SWEEP_EVERY.saturating_sub(swept.elapsed()));
                    } else {
                        std::thread::sleep(tick);
                    }
                    if stopped.load(Ordering::Relaxed) {
                        break;
                    }
                    for engine in &weak {
                        match engine.upgrade() {
                            Some(engine) => engine.increment_epoch(),
                            None => return,
                        }
                    }
                    if swept.elapsed() >= SWEEP_EVERY {
                        swept = Instant::now();
                        sweep(&sweepers, swept);
                    }
                }
            });
        match spawned {
            Ok(thread) => {
                let _ = running.ticker.set(thread.thread().clone());
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start the epoch thread: plugin time limits will not apply");
            }
        }
        Ticker { stop, running }
    }
}

/// Sweeps every live sweeper (outside the list's lock) and forgets the dead ones.
fn sweep(sweepers: &Sweepers, now: Instant) {
    let live: Vec<Arc<dyn Sweep>> = match sweepers.lock() {
        Ok(mut list) => {
            list.retain(|s| s.strong_count() > 0);
            list.iter().filter_map(Weak::upgrade).collect()
        }
        Err(_) => return,
    };
    for sweeper in live {
        sweeper.sweep(now);
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.running.ticker.get() {
            thread.unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn the_epoch_thread_ends_with_its_host() {
        let host = PluginHost::builder().disk_cache(false).build().unwrap();
        let stop = Arc::clone(&host.inner._ticker.stop);
        let epoch_thread_alive = || Arc::strong_count(&stop) > 2;
        assert!(epoch_thread_alive());
        drop(host);
        let dropped = Instant::now();
        while Arc::strong_count(&stop) > 1 {
            assert!(
                dropped.elapsed() < Duration::from_secs(5),
                "the epoch thread outlived its host"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn settings_out_of_range_are_refused() {
        let refused = |builder: PluginHostBuilder| match builder.build() {
            Err(e) => e.to_string(),
            Ok(_) => panic!("built"),
        };
        assert!(refused(PluginHost::builder().max_instances(0)).contains("max_instances"));
        assert!(refused(PluginHost::builder().max_memory_mb(0)).contains("max_memory_mb"));
        assert!(refused(PluginHost::builder().max_memory_mb(4096)).contains("1-1024"));
        assert!(refused(PluginHost::builder().epoch_tick(Duration::ZERO)).contains("epoch_tick"));
        assert!(
            refused(PluginHost::builder().epoch_tick(Duration::from_secs(2)))
                .contains("epoch_tick")
        );
    }

    #[test]
    fn the_disk_cache_setting_is_kept_or_dropped() {
        let dir = PluginHost::builder().cache_dir("x").disk_cache(true);
        assert!(matches!(dir.cache, DiskCache::Directory(_)));
        let off = PluginHost::builder().cache_dir("x").disk_cache(false);
        assert!(matches!(off.cache, DiskCache::Off));
        assert!(matches!(off.disk_cache(true).cache, DiskCache::Default));
    }

    /// A minimal component (no imports, no exports), compiled with the host's engine.
    fn empty_component() -> Vec<u8> {
        wat::parse_str("(component)").unwrap()
    }

    #[test]
    fn a_file_compiles_once_per_host_and_again_when_it_changes() {
        let host = PluginHost::builder().disk_cache(false).build().unwrap();
        let path = Path::new("/nowhere/empty.wasm");
        let bytes = empty_component();
        let slot = |host: &PluginHost| {
            let components = host.inner.components.lock().unwrap();
            let (stamp, slot) = &components[&(path.to_path_buf(), Confinement::Checked)];
            (*stamp, Arc::as_ptr(slot), slot.get().is_some())
        };
        host.component(path, &bytes, (1, None), Confinement::Checked)
            .unwrap();
        let first = slot(&host);
        assert!(first.2, "compiled");
        // The same version again: the same compilation, not a new one.
        host.component(path, &bytes, (1, None), Confinement::Checked)
            .unwrap();
        assert_eq!(slot(&host), first);
        // A new version of the file replaces it.
        host.component(path, &bytes, (2, None), Confinement::Checked)
            .unwrap();
        let newer = slot(&host);
        assert_eq!(newer.0, (2, None));
        assert_ne!(newer.1, first.1);
        // Another host compiles for its own engine.
        let other = PluginHost::builder().disk_cache(false).build().unwrap();
        assert!(other.inner.components.lock().unwrap().is_empty());
    }

    #[test]
    fn runtimes_sharing_a_host_share_its_compilations() {
        use crate::config::PluginDefinition;
        use crate::error::KeyPath;
        use crate::plugin::PluginRuntime;
        use crate::store::MemoryKv;

        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist");
        let definition: PluginDefinition = yaml_serde::from_str("{ path: echo.wasm }").unwrap();
        let host = PluginHost::builder().build().unwrap();
        let compiled = |host: &PluginHost| {
            let components = host.inner.components.lock().unwrap();
            let slots: Vec<_> = components.values().map(|(_, s)| Arc::as_ptr(s)).collect();
            slots
        };
        // Two gateways (each its own runtime and store) on one host, and a reload of one.
        let first = PluginRuntime::new(Some(host.clone()), Arc::new(MemoryKv::new()));
        let second = PluginRuntime::new(Some(host.clone()), Arc::new(MemoryKv::new()));
        first
            .load("echo", &definition, &dist, &KeyPath::root())
            .unwrap();
        let once = compiled(&host);
        assert_eq!(once.len(), 1);
        second
            .load("echo", &definition, &dist, &KeyPath::root())
            .unwrap();
        first
            .load("echo", &definition, &dist, &KeyPath::root())
            .unwrap();
        assert_eq!(compiled(&host), once, "compiled again");
    }

    #[test]
    fn compiling_inside_a_current_thread_runtime_does_not_panic() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let host = PluginHost::builder().disk_cache(false).build().unwrap();
        let bytes = empty_component();
        runtime.block_on(async {
            assert!(host
                .component(
                    Path::new("/nowhere/a.wasm"),
                    &bytes,
                    (1, None),
                    Confinement::Checked
                )
                .is_ok());
        });
    }

    #[test]
    fn blocking_work_leaves_a_multi_thread_executor_free() {
        use std::sync::atomic::AtomicUsize;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let ticks = Arc::new(AtomicUsize::new(0));
            let counter = tokio::spawn({
                let ticks = Arc::clone(&ticks);
                async move {
                    loop {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        ticks.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            // On the only worker: without block_in_place the counter would stop meanwhile.
            let blocked = tokio::spawn({
                let ticks = Arc::clone(&ticks);
                async move {
                    off_the_executor(|| {
                        let before = ticks.load(Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(300));
                        ticks.load(Ordering::Relaxed) - before
                    })
                }
            });
            let advanced = blocked.await.unwrap();
            counter.abort();
            assert!(
                advanced >= 10,
                "the executor ran {advanced} ticks meanwhile"
            );
        });
    }
}
