//! A plugin's instances and its concurrency: how a call gets an instance to run on.
//!
//! - **Admission** (Lambda's reserved concurrency): at most `maxConcurrency` calls hold an
//!   instance at once. A call over it waits in a bounded queue (`maxQueued`) for at most
//!   `queueTimeoutMs` (the wait counts against its own time limit), then is refused as API
//!   Gateway answers a throttled Lambda ([`PluginFailure::Throttled`]).
//! - **Lifecycle**: `fresh` instantiates for every call and drops the instance after it;
//!   `warm` keeps an instance that served a call cleanly for the next one (module-level state
//!   persists, as in a warm Lambda execution environment). A warm instance serves one call at
//!   a time; one that trapped, timed out, reached its memory cap or was abandoned mid-call (its
//!   caller gone) is discarded, as is one that served `maxRequestsPerInstance` calls or stayed
//!   idle `idleSeconds`. `provisioned` instances are created at load and kept however idle
//!   (Lambda's provisioned concurrency); one discarded is replaced in the background.
//!
//! Instances never outnumber `maxConcurrency`: a call instantiates only while it holds a slot
//! and no idle instance is left, and each slot holds at most one instance. That is what the
//! plugin reserves of its host's pool, so a full pool is never what a client meets.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metrics::{Key, Label, Metadata};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{InstancePre, ResourceTable};
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};

use super::bindings;
use super::call::PluginFailure;
use super::host::{Running, RunningGuard, Sweep};
use super::imports::{HostState, MemoryLimiter, NoOutgoingHttp};
use crate::config::InstanceLifecycle;
use crate::fleet::WarningGate;
use crate::store::KvStore;

/// The names of the plugin metrics (re-exported in `crate::metric`).
pub(crate) mod metric {
    /// Gauge: instances alive, per plugin (`api`, `plugin`): warm ones idle or busy, fresh
    /// ones in a call.
    pub(crate) const INSTANCES: &str = "portico_plugin_instances";
    /// Counter: instances created (cold starts), per plugin.
    pub(crate) const COLD_STARTS: &str = "portico_plugin_cold_starts_total";
    /// Counter: calls refused by the plugin's `maxConcurrency` (queue full or waited too long).
    pub(crate) const THROTTLED: &str = "portico_plugin_throttled_total";
    /// Counter: warm instances retired because their memory grew past nine tenths of the cap.
    pub(crate) const MEMORY_RETIREMENTS: &str = "portico_plugin_memory_retirements_total";
}

/// Where the plugin metrics go: the recorder sees `portico::plugin` at level INFO.
const METRIC_METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// Adds one to the plugin counter `key`.
fn count(key: &Key) {
    metrics::with_recorder(|recorder| {
        recorder
            .register_counter(key, &METRIC_METADATA)
            .increment(1)
    });
}

/// How a plugin's instances live and how many calls it runs at once (checked at load).
#[derive(Debug, Clone)]
pub(super) struct Lifecycle {
    pub(super) instances: InstanceLifecycle,
    /// `warm`: calls an instance serves before it is replaced.
    pub(super) max_requests: Option<u64>,
    /// `warm`: how long an instance may stay idle.
    pub(super) idle: Option<Duration>,
    /// `warm`: instances created at load and kept however idle.
    pub(super) provisioned: u32,
    pub(super) max_concurrency: u32,
    pub(super) max_queued: u32,
    pub(super) queue_timeout: Duration,
    /// The plugin's own time limit, for instances made outside a call (provisioned ones).
    pub(super) timeout: Duration,
}

/// What a new instance's store is made of.
pub(super) struct StoreParts {
    pub(super) engine: Engine,
    pub(super) plugin: Arc<str>,
    pub(super) config: Arc<BTreeMap<String, String>>,
    pub(super) kv: Arc<dyn KvStore>,
    pub(super) memory_bytes: usize,
    /// The host's count of running plugin code, which its epoch thread ticks for.
    pub(super) running: Arc<Running>,
}

/// A component linked for its world, ready to be instantiated.
pub(super) enum Pre {
    Integration(InstancePre<HostState>, bindings::HandleExport),
    LazyIntegration(bindings::lazy_integration::LazyIntegrationPre<HostState>),
    Lambda(bindings::lambda::LambdaPre<HostState>),
    Authorizer(bindings::authorizer::AuthorizerPre<HostState>),
    WasiHttp(ProxyPre<HostState>),
}

/// An instance of one of the worlds, bound to its store.
pub(super) enum Bound {
    Integration(bindings::HandleFunc),
    LazyIntegration(bindings::lazy_integration::LazyIntegration),
    Lambda(bindings::lambda::Lambda),
    Authorizer(bindings::authorizer::Authorizer),
    WasiHttp(Proxy),
}

/// One instance and its store.
pub(super) struct Slot {
    pub(super) store: Store<HostState>,
    pub(super) bound: Bound,
    /// Calls started on it.
    served: u64,
    /// When it last went idle.
    idle_since: Instant,
    /// Counts it among the plugin's live instances while it exists.
    _alive: Alive,
}

/// A plugin's instances: the admission gate, the idle warm instances, the counts.
pub(super) struct Instances {
    lifecycle: Lifecycle,
    pre: Pre,
    pub(super) parts: StoreParts,
    slots: Arc<Semaphore>,
    /// Calls waiting for a slot.
    queued: AtomicU64,
    /// Idle warm instances, the most recently used last (taken first).
    idle: Mutex<VecDeque<Slot>>,
    live: Arc<LiveCount>,
    throttled: Key,
    cold_starts: Key,
    /// Warnings that warm instances were retired nearly full (see `HostState::nearly_full`),
    /// and their count.
    full_instances: WarningGate,
    memory_retirements: Key,
}

impl Instances {
    /// The instances of a plugin linked as `pre`, living as `lifecycle` says; `api` labels
    /// its metrics.
    pub(super) fn new(
        lifecycle: Lifecycle,
        pre: Pre,
        parts: StoreParts,
        api: &str,
    ) -> Arc<Instances> {
        let labels = vec![
            Label::new("api", api.to_owned()),
            Label::new("plugin", parts.plugin.to_string()),
        ];
        let key = |name: &'static str| Key::from_parts(name, labels.clone());
        Arc::new(Instances {
            slots: Arc::new(Semaphore::new(lifecycle.max_concurrency as usize)),
            queued: AtomicU64::new(0),
            idle: Mutex::new(VecDeque::new()),
            live: Arc::new(LiveCount {
                count: AtomicU64::new(0),
                gauge: key(metric::INSTANCES),
            }),
            throttled: key(metric::THROTTLED),
            cold_starts: key(metric::COLD_STARTS),
            full_instances: WarningGate::new(),
            memory_retirements: key(metric::MEMORY_RETIREMENTS),
            lifecycle,
            pre,
            parts,
        })
    }

    /// How its instances live.
    #[cfg(test)]
    pub(super) fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    fn warm(&self) -> bool {
        self.lifecycle.instances == InstanceLifecycle::Warm
    }

    /// Instances alive now (idle or in a call).
    #[cfg(test)]
    pub(super) fn live(&self) -> u64 {
        self.live.count.load(Ordering::Acquire)
    }

    /// Idle warm instances now.
    #[cfg(test)]
    pub(super) fn idle(&self) -> usize {
        self.idle.lock().map(|idle| idle.len()).unwrap_or(0)
    }

    /// The idle warm instances themselves.
    #[cfg(test)]
    pub(super) fn idle_slots(&self) -> std::sync::MutexGuard<'_, VecDeque<Slot>> {
        self.idle.lock().expect("idle instances")
    }

    /// An instance for a call that may run for `limit`: a slot first (waiting in the queue if
    /// need be), then an idle warm instance or a new one. The call's clock starts here: time
    /// spent in the queue counts against its limit, as API Gateway's integration timeout
    /// covers the whole integration.
    pub(super) async fn lease(self: &Arc<Self>, limit: Duration) -> Result<Lease, PluginFailure> {
        let (permit, waited) = self.admit(limit).await?;
        let running = self.parts.running.begin();
        let limit = limit.saturating_sub(waited);
        let now = Instant::now();
        let mut slot = match self.take_idle(now) {
            Some(mut slot) => {
                slot.store.data_mut().begin(now, limit);
                slot.store.set_epoch_deadline(1);
                slot
            }
            // A new instance's call starts with its instantiation.
            None => self.instantiate(now, limit).await?,
        };
        slot.served += 1;
        Ok(Lease {
            instances: Arc::clone(self),
            slot: Some(slot),
            permit: Some(permit),
            _running: running,
        })
    }

    /// A slot among `maxConcurrency`, waiting in the queue when none is free; and how long
    /// the call waited.
    async fn admit(
        &self,
        limit: Duration,
    ) -> Result<(OwnedSemaphorePermit, Duration), PluginFailure> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok((permit, Duration::ZERO));
        }
        // Boxed: the wait's future (a timer and a semaphore waiter) stays out of every call's.
        Box::pin(self.wait_in_queue(limit)).await
    }

    /// Waits in the queue for a slot (see [`Self::admit`]).
    async fn wait_in_queue(
        &self,
        limit: Duration,
    ) -> Result<(OwnedSemaphorePermit, Duration), PluginFailure> {
        let queued_at = Instant::now();
        let waiting = self.queued.fetch_add(1, Ordering::AcqRel);
        let _leaves = Decrement(&self.queued);
        if waiting >= u64::from(self.lifecycle.max_queued) {
            return Err(self.throttled(format!(
                "{} calls running (maxConcurrency) and {} waiting (maxQueued)",
                self.lifecycle.max_concurrency, self.lifecycle.max_queued
            )));
        }
        let patience = self.lifecycle.queue_timeout.min(limit);
        match tokio::time::timeout(patience, Arc::clone(&self.slots).acquire_owned()).await {
            Ok(Ok(permit)) => Ok((permit, queued_at.elapsed())),
            _ => Err(self.throttled(format!(
                "waited {} ms for one of {} calls (maxConcurrency) to end",
                patience.as_millis(),
                self.lifecycle.max_concurrency
            ))),
        }
    }

    fn throttled(&self, why: String) -> PluginFailure {
        count(&self.throttled);
        PluginFailure::Throttled(why)
    }

    /// The most recently used idle instance, discarding any idle too long by `now` on the way.
    fn take_idle(&self, now: Instant) -> Option<Slot> {
        if !self.warm() {
            return None;
        }
        let mut expired = Vec::new();
        let slot = {
            let mut idle = self.idle.lock().ok()?;
            loop {
                let slot = idle.pop_back()?;
                if self.may_expire(&slot, now, expired.len()) {
                    expired.push(slot);
                } else {
                    break Some(slot);
                }
            }
        };
        drop(expired);
        slot
    }

    /// Whether an idle instance has stayed idle as long as `idleSeconds` allows, and may go
    /// without leaving fewer than `provisioned` instances (`leaving` are going already).
    fn may_expire(&self, slot: &Slot, now: Instant, leaving: usize) -> bool {
        let Some(idle) = self.lifecycle.idle else {
            return false;
        };
        let live = self.live.count.load(Ordering::Acquire);
        now.saturating_duration_since(slot.idle_since) >= idle
            && live.saturating_sub(leaving as u64) > u64::from(self.lifecycle.provisioned)
    }

    /// A new instance on a new store, within `limit` from `now` (the clock read that starts
    /// the call: one read a call, not one for the lease and another here).
    async fn instantiate(&self, now: Instant, limit: Duration) -> Result<Slot, PluginFailure> {
        let _running = self.parts.running.begin();
        let alive = Alive::new(&self.live);
        count(&self.cold_starts);
        let mut store = self.new_store(now);
        store.data_mut().begin(now, limit);
        store.set_epoch_deadline(1);
        let bound = match &self.pre {
            Pre::Integration(pre, handle) => pre
                .instantiate_async(&mut store)
                .await
                .and_then(|instance| handle.bind(&mut store, &instance))
                .map(Bound::Integration),
            Pre::LazyIntegration(pre) => pre
                .instantiate_async(&mut store)
                .await
                .map(Bound::LazyIntegration),
            Pre::Lambda(pre) => pre.instantiate_async(&mut store).await.map(Bound::Lambda),
            Pre::Authorizer(pre) => pre
                .instantiate_async(&mut store)
                .await
                .map(Bound::Authorizer),
            Pre::WasiHttp(pre) => pre.instantiate_async(&mut store).await.map(Bound::WasiHttp),
        };
        store.data_mut().limiter.instantiated();
        match bound {
            Ok(bound) => Ok(Slot {
                store,
                bound,
                served: 0,
                idle_since: now,
                _alive: alive,
            }),
            Err(error) => Err(failure(&store, error)),
        }
    }

    /// A store for one instance, made at `now`: its deadline is set by each call
    /// ([`HostState::begin`]).
    fn new_store(&self, now: Instant) -> Store<HostState> {
        let parts = &self.parts;
        let state = HostState {
            plugin: Arc::clone(&parts.plugin),
            config: Arc::clone(&parts.config),
            kv: Arc::clone(&parts.kv),
            table: ResourceTable::new(),
            wasi: None,
            http: None,
            http_hooks: NoOutgoingHttp,
            limiter: MemoryLimiter::new(parts.memory_bytes),
            deadline: now,
            timed_out: false,
        };
        let mut store = Store::new(&parts.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_callback(|mut context| {
            if Instant::now() >= context.data().deadline {
                context.data_mut().timed_out = true;
                Err(wasmtime::Error::msg("time limit reached"))
            } else {
                // Give the executor back every tick: a busy plugin never starves others.
                // Through tokio's `yield_now` (wasmtime's advice for tokio), which lets the
                // runtime poll its I/O and timers before the call resumes: a plain `Yield`
                // wakes the call at once, and a runtime whose only ready task is a busy plugin
                // looks at its sockets only every 61 polls (61 ticks: 610 ms at 10 ms).
                Ok(UpdateDeadline::YieldCustom(
                    1,
                    Box::pin(tokio::task::yield_now()),
                ))
            }
        });
        store
    }

    /// Creates the `provisioned` instances (at load), each within the plugin's time limit.
    pub(super) async fn provision(&self) -> Result<(), PluginFailure> {
        for _ in 0..self.lifecycle.provisioned {
            let slot = self
                .instantiate(Instant::now(), self.lifecycle.timeout)
                .await?;
            self.put_idle(slot);
        }
        Ok(())
    }

    /// Instantiates the component once, on a slot of its own, and drops the instance (for
    /// benchmarks).
    #[cfg(feature = "bench")]
    pub(super) async fn instantiate_once(&self, limit: Duration) -> Result<(), PluginFailure> {
        let _slot = self.admit(limit).await?;
        self.instantiate(Instant::now(), limit).await.map(drop)
    }

    fn put_idle(&self, mut slot: Slot) {
        if self.lifecycle.idle.is_some() {
            slot.idle_since = Instant::now();
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push_back(slot);
        }
    }

    /// Drops an instance that may not serve again; when that leaves fewer than `provisioned`,
    /// a replacement is made in the background on the slot the call held (or a free one).
    fn discard(self: &Arc<Self>, slot: Slot, permit: Option<OwnedSemaphorePermit>) {
        drop(slot);
        if !self.warm()
            || self.live.count.load(Ordering::Acquire) >= u64::from(self.lifecycle.provisioned)
        {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(permit) = permit.or_else(|| Arc::clone(&self.slots).try_acquire_owned().ok())
        else {
            return;
        };
        let instances = Arc::clone(self);
        runtime.spawn(async move {
            if instances.live.count.load(Ordering::Acquire)
                < u64::from(instances.lifecycle.provisioned)
            {
                match instances
                    .instantiate(Instant::now(), instances.lifecycle.timeout)
                    .await
                {
                    Ok(slot) => instances.put_idle(slot),
                    Err(failure) => tracing::error!(
                        plugin = %instances.parts.plugin,
                        "cannot replace a provisioned instance: {failure}"
                    ),
                }
            }
            drop(permit);
        });
    }
}

impl Sweep for Instances {
    fn sweep(&self, now: Instant) {
        let expired: Vec<Slot> = match self.idle.lock() {
            Ok(mut idle) => {
                let mut expired = Vec::new();
                while idle
                    .front()
                    .is_some_and(|slot| self.may_expire(slot, now, expired.len()))
                {
                    expired.extend(idle.pop_front());
                }
                expired
            }
            Err(_) => return,
        };
        drop(expired);
    }
}

/// A call's hold on an instance and on its slot. [`Lease::finish`] hands a warm instance back
/// for the next call; dropped otherwise (a failure, a cancelled call), it discards the instance.
pub(super) struct Lease {
    instances: Arc<Instances>,
    slot: Option<Slot>,
    /// Released after the instance is back or gone, so instances never outnumber slots.
    permit: Option<OwnedSemaphorePermit>,
    /// The call counts as running plugin code (the epoch thread ticks) while the lease lasts.
    _running: RunningGuard,
}

impl Lease {
    /// The instance and its store.
    pub(super) fn slot(&mut self) -> &mut Slot {
        // Present until `finish` or drop take it.
        self.slot
            .as_mut()
            .expect("a lease holds its slot until it ends")
    }

    /// Ends the call: a warm instance whose call ended cleanly (`clean`: no trap), within its
    /// time and memory, not nearly full (`HostState::nearly_full`) and under
    /// `maxRequestsPerInstance` waits for the next call.
    pub(super) fn finish(mut self, clean: bool) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let instances = Arc::clone(&self.instances);
        let lifecycle = &instances.lifecycle;
        let state = slot.store.data();
        let healthy = clean && instances.warm() && state.unharmed();
        let full = healthy && state.nearly_full();
        if full {
            count(&instances.memory_retirements);
            let (used, cap) = (state.limiter.largest >> 20, state.limiter.max_bytes >> 20);
            instances.full_instances.warn(|unwritten| {
                tracing::warn!(
                    plugin = %instances.parts.plugin,
                    unwritten,
                    "a warm instance is retired at {used} MB of its {cap} MB memory cap: its memory grows from call to call (a leak?) and would fail a call at the cap; the next call gets a new instance (raise memoryMb or set maxRequestsPerInstance to have fewer of these)"
                )
            });
        }
        let reusable =
            healthy && !full && lifecycle.max_requests.is_none_or(|max| slot.served < max);
        if reusable {
            instances.put_idle(slot);
        } else {
            instances.discard(slot, self.permit.take());
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.instances.discard(slot, self.permit.take());
        }
    }
}

/// A plugin's live instances, and the gauge that shows them.
struct LiveCount {
    count: AtomicU64,
    gauge: Key,
}

impl LiveCount {
    fn show(&self, count: u64) {
        metrics::with_recorder(|recorder| {
            recorder
                .register_gauge(&self.gauge, &METRIC_METADATA)
                .set(count as f64)
        });
    }
}

/// One live instance, counted from creation to drop (however it ends).
struct Alive(Arc<LiveCount>);

impl Alive {
    fn new(live: &Arc<LiveCount>) -> Alive {
        let count = live.count.fetch_add(1, Ordering::AcqRel) + 1;
        live.show(count);
        Alive(Arc::clone(live))
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        let count = self.0.count.fetch_sub(1, Ordering::AcqRel) - 1;
        self.0.show(count);
    }
}

/// Takes one back from a counter when dropped.
struct Decrement<'a>(&'a AtomicU64);

impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a call on `store` failed in the host: past its deadline, over its memory cap, or a trap.
pub(super) fn failure(store: &Store<HostState>, error: wasmtime::Error) -> PluginFailure {
    let state = store.data();
    if state.timed_out {
        PluginFailure::Timeout
    } else if state.limiter.exceeded {
        PluginFailure::MemoryExceeded
    } else {
        PluginFailure::Trap(format!("{error:#}"))
    }
}
