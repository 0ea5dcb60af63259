//! The throttle phase: API Gateway's token buckets and usage-plan quotas.
//!
//! AWS applies its limits in this order (developer guide, "Throttle requests to your REST APIs",
//! section "How throttling limit settings are applied"): per-client per-method limits of a
//! usage plan, per-client limits of a usage plan, the stage's default and per-method limits,
//! then the account's. The server-side half (account = the API's `throttle`, stage, route)
//! needs nothing from the caller, and AWS applies it without invoking the authorizer (AWS's
//! answer on re:Post, "client API throttling in API Gateway": "If the rate limiting is
//! enforced by API setting on the resource/method then the custom authorizer does not need to
//! get invoked"), so [`server`] runs right after the route phase. The per-client half needs the
//! API key, which a custom authorizer may supply (`usageIdentifierKey`), so [`client`] runs
//! after authorize. A route setting replaces the stage's bucket for that route; a plan's
//! per-route setting replaces the plan's bucket for that route; a key's plan buckets and quota
//! are shared by all of the plan's stages ("aggregated across all API stages within a usage
//! plan", AWS's usage-plan page).
//!
//! Over a bucket: 429 `{"message":"Too Many Requests"}` (THROTTLED); over a quota: 429
//! `{"message":"Limit Exceeded"}` (QUOTA_EXCEEDED).

mod memory;
mod quota;
mod redis;
mod usage;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::{ApiDefinition, RateStoreDefinition, ThrottleDefinition};
use crate::error::{Error, KeyPath};
use crate::exchange::{Exchange, Flow, RateLimitNote, Step};
use crate::fleet::{Budget, RedisLink, WarningGate};
use crate::respond::GatewayError;
use crate::time::Clock;

use memory::{DirectBucket, KeyedBucket, MemoryStore};
use quota::QuotaRule;
use redis::{RedisStore, Unavailable};
use usage::PlanKeys;
pub use usage::{Usage, UsageError};

/// A token bucket's settings, checked: `rate` requests per second (may be fractional), at most
/// `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Limit {
    /// `rate`'s bits (so that a limit can key a map).
    rate_bits: u64,
    burst: u32,
}

impl Limit {
    pub(crate) fn new(rate: f64, burst: u32) -> Self {
        Limit {
            rate_bits: rate.to_bits(),
            burst,
        }
    }

    pub(crate) fn rate(self) -> f64 {
        f64::from_bits(self.rate_bits)
    }

    pub(crate) fn burst(self) -> u32 {
        self.burst
    }

    fn compile(throttle: &ThrottleDefinition, at: &KeyPath) -> Result<Self, Error> {
        if !(throttle.rate_limit.is_finite() && throttle.rate_limit >= 0.0) {
            return Err(Error::config(
                at.key("rateLimit"),
                "rateLimit is requests per second: a number, 0 or more",
            ));
        }
        let Ok(burst) = u32::try_from(throttle.burst_limit) else {
            return Err(Error::config(
                at.key("burstLimit"),
                format!("burstLimit is at most {}", u32::MAX),
            ));
        };
        Ok(Limit::new(throttle.rate_limit, burst))
    }
}

/// One bucket's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Taken {
    pub(crate) admitted: bool,
    /// Tokens left after this request (admitted), for the RateLimit header.
    pub(crate) remaining: u32,
    /// When refused: how long until a token is back.
    pub(crate) retry_after: Duration,
}

impl Taken {
    pub(crate) fn admitted(remaining: u32) -> Self {
        Taken {
            admitted: true,
            remaining,
            retry_after: Duration::ZERO,
        }
    }

    pub(crate) fn refused(retry_after: Duration) -> Self {
        Taken {
            admitted: false,
            remaining: 0,
            retry_after,
        }
    }
}

/// Where buckets and counters live; made once per gateway and kept across reloads.
pub(crate) struct RateStore {
    backend: Backend,
    /// What the definition (or the embedder) asked for; a reload asking for another store
    /// gets a new one.
    settings: RateStoreDefinition,
    clock: Clock,
}

#[derive(Clone)]
enum Backend {
    Memory(Arc<MemoryStore>),
    Redis(Arc<RedisStore>),
}

impl RateStore {
    /// The store `settings` describe, reading time from `clock`.
    pub(crate) fn open(settings: &RateStoreDefinition, clock: Clock) -> Result<Self, Error> {
        let backend = match settings {
            RateStoreDefinition::Memory => {
                Backend::Memory(Arc::new(MemoryStore::new(clock.clone())))
            }
            RateStoreDefinition::Redis(redis) => Backend::Redis(Arc::new(RedisStore::open(
                redis,
                &KeyPath::root().key("rateStore"),
            )?)),
        };
        Ok(RateStore {
            backend,
            settings: settings.clone(),
            clock,
        })
    }

    /// Whether this store is the one `settings` describe.
    pub(crate) fn is(&self, settings: &RateStoreDefinition) -> bool {
        &self.settings == settings
    }

    /// What the store was opened with.
    pub(crate) fn settings(&self) -> &RateStoreDefinition {
        &self.settings
    }

    /// The connection to the store's Redis, when it is one: the other stores a fleet shares
    /// (`kvStore`, `authorizerCache`) use it too.
    pub(crate) fn redis(&self) -> Option<&Arc<RedisLink>> {
        match &self.backend {
            Backend::Memory(_) => None,
            Backend::Redis(store) => Some(store.link()),
        }
    }

    fn bucket(&self, name: String, limit: Limit) -> Bucket {
        match &self.backend {
            Backend::Memory(store) => Bucket::Memory(store.bucket(&name, limit)),
            Backend::Redis(store) => Bucket::Redis {
                store: Arc::clone(store),
                key: RedisStore::bucket_key(&name).into(),
                limit,
            },
        }
    }

    fn keyed_bucket(&self, name: String, limit: Limit) -> PlanBucket {
        match &self.backend {
            Backend::Memory(store) => PlanBucket::Memory(store.keyed_bucket(&name, limit)),
            Backend::Redis(store) => PlanBucket::Redis {
                store: Arc::clone(store),
                name: name.into(),
                limit,
            },
        }
    }
}

/// A compiled bucket, bound to its store.
enum Bucket {
    Memory(Arc<DirectBucket>),
    Redis {
        store: Arc<RedisStore>,
        key: Arc<str>,
        limit: Limit,
    },
}

/// A compiled per-key bucket, bound to its store.
enum PlanBucket {
    Memory(Arc<KeyedBucket>),
    Redis {
        store: Arc<RedisStore>,
        name: Arc<str>,
        limit: Limit,
    },
}

impl Bucket {
    async fn take(&self, budget: &Budget) -> Result<Taken, Unavailable> {
        match self {
            Bucket::Memory(bucket) => Ok(bucket.take()),
            Bucket::Redis { store, key, limit } => store.take(key, *limit, budget).await,
        }
    }

    fn limit(&self) -> Limit {
        match self {
            Bucket::Memory(bucket) => bucket.limit(),
            Bucket::Redis { limit, .. } => *limit,
        }
    }
}

impl PlanBucket {
    async fn take(&self, key_id: &Arc<str>, budget: &Budget) -> Result<Taken, Unavailable> {
        match self {
            PlanBucket::Memory(bucket) => Ok(bucket.take(key_id)),
            PlanBucket::Redis { store, name, limit } => {
                store
                    .take(&RedisStore::keyed_bucket_key(name, key_id), *limit, budget)
                    .await
            }
        }
    }

    fn limit(&self) -> Limit {
        match self {
            PlanBucket::Memory(bucket) => bucket.limit(),
            PlanBucket::Redis { limit, .. } => *limit,
        }
    }
}

/// What limits one route of one stage: compiled with the deployment.
pub(crate) struct RouteThrottle {
    /// Every bucket and counter is in memory: the phase answers in place.
    in_memory: bool,
    /// The API's bucket and the stage's (or the route's own) bucket.
    server: Vec<Bucket>,
    /// By usage plan: what a key of that plan draws from on this route.
    plans: HashMap<Arc<str>, PlanLimits>,
    /// `rateLimitHeaders` of the stage.
    headers: bool,
    /// How to behave when the store does not answer.
    fail_open: bool,
    counters: Arc<StoreHandle>,
}

/// A usage plan's limits on one route.
struct PlanLimits {
    bucket: Option<PlanBucket>,
    quota: Option<QuotaRule>,
}

/// What the API's keys used, and how to read it (see `Gateway::usage`).
pub(crate) struct UsageBook {
    counters: Arc<StoreHandle>,
    keys: PlanKeys,
}

impl UsageBook {
    /// AWS's GetUsage: see [`Usage`].
    pub(crate) async fn usage(
        &self,
        plan: &str,
        key_id: Option<&str>,
        start: &str,
        end: &str,
    ) -> Result<Usage, UsageError> {
        self.counters
            .usage(&self.keys, plan, key_id, start, end)
            .await
    }

    /// Forgets what `key_id` used of `plan`'s quota in the current period.
    pub(crate) async fn reset_quota(&self, plan: &str, key_id: &str) -> Result<(), UsageError> {
        self.counters.reset_quota(&self.keys, plan, key_id).await
    }
}

/// The store's counters, for quotas and usage.
pub(crate) struct StoreHandle {
    backend: Backend,
    clock: Clock,
    /// The API's id, part of every Redis key.
    api_id: String,
    /// That the store did not answer, written at most once a period.
    warnings: WarningGate,
}

/// The API's throttle settings, compiled once per definition: the route phase's deployments
/// ask it for each route's [`RouteThrottle`].
pub(crate) struct ApiThrottle<'s> {
    store: &'s RateStore,
    counters: Arc<StoreHandle>,
    api_id: String,
    account: Option<Limit>,
    /// Plan name -> (its per-key limit, its quota, its stages, per-stage per-route limits).
    plans: Vec<CompiledPlan>,
    fail_open: bool,
}

struct CompiledPlan {
    name: Arc<str>,
    throttle: Option<Limit>,
    quota: Option<QuotaRule>,
    stages: Vec<String>,
    /// (stage, route key) -> limit.
    methods: HashMap<(String, String), Limit>,
}

impl<'s> ApiThrottle<'s> {
    /// Checks the definition's limits (key paths in errors) against `store`.
    pub(crate) fn compile(
        def: &ApiDefinition,
        api_id: &str,
        store: &'s RateStore,
    ) -> Result<Self, Error> {
        let root = KeyPath::root();
        let account = match &def.throttle {
            Some(t) => Some(Limit::compile(t, &root.key("throttle"))?),
            None => None,
        };
        let mut plans = Vec::new();
        for (name, plan) in def.usage_plans.iter() {
            let at = root.key("usagePlans").key(name);
            let throttle = match &plan.throttle {
                Some(t) => Some(Limit::compile(t, &at.key("throttle"))?),
                None => None,
            };
            let quota = match &plan.quota {
                Some(q) => Some(QuotaRule::compile(q, &at.key("quota"))?),
                None => None,
            };
            let mut stages = plan.stages.clone();
            let mut methods = HashMap::new();
            for (i, api_stage) in plan.api_stages.iter().enumerate() {
                let at = at.key("apiStages").index(i);
                if def.stages.get(&api_stage.stage).is_none() {
                    return Err(Error::config(
                        at.key("stage"),
                        format!("unknown stage \"{}\"", api_stage.stage),
                    ));
                }
                if !stages.contains(&api_stage.stage) {
                    stages.push(api_stage.stage.clone());
                }
                for (route_key, throttle) in api_stage.throttle.iter() {
                    let at = at.key("throttle").key(route_key);
                    if def.routes.get(route_key).is_none() {
                        return Err(Error::config(at, format!("unknown route \"{route_key}\"")));
                    }
                    let limit = Limit::compile(throttle, &at)?;
                    methods.insert((api_stage.stage.clone(), route_key.to_owned()), limit);
                }
            }
            plans.push(CompiledPlan {
                name: name.into(),
                throttle,
                quota,
                stages,
                methods,
            });
        }
        let counters = Arc::new(StoreHandle {
            backend: store.backend.clone(),
            clock: store.clock.clone(),
            api_id: api_id.to_owned(),
            warnings: WarningGate::new(),
        });
        let fail_open = match &store.settings {
            RateStoreDefinition::Redis(redis) => redis.fail_open,
            RateStoreDefinition::Memory => true,
        };
        Ok(ApiThrottle {
            store,
            counters,
            api_id: api_id.to_owned(),
            account,
            plans,
            fail_open,
        })
    }

    /// What `Gateway::usage` and `Gateway::reset_quota` read: the store's counters and each
    /// plan's quota and keys.
    pub(crate) fn usage(&self, def: &ApiDefinition) -> UsageBook {
        let plans = self
            .plans
            .iter()
            .map(|plan| {
                let keys = def
                    .api_keys
                    .iter()
                    .filter(|k| k.usage_plans.iter().any(|p| **p == *plan.name))
                    .map(crate::authorize::key_id)
                    .collect();
                (plan.name.to_string(), (plan.quota, keys))
            })
            .collect();
        UsageBook {
            counters: Arc::clone(&self.counters),
            keys: PlanKeys { plans },
        }
    }

    /// What limits `route_key` on `stage` (whose settings are checked at `at`).
    pub(crate) fn route(
        &self,
        def: &ApiDefinition,
        stage: &str,
        route_key: &str,
    ) -> Result<RouteThrottle, Error> {
        let at = KeyPath::root().key("stages").key(stage);
        let stage_def = def.stages.get(stage);
        let api = &self.api_id;
        let mut server = Vec::new();
        if let Some(limit) = self.account {
            server.push(self.store.bucket(api.clone(), limit));
        }
        let route_setting = stage_def
            .and_then(|s| s.route_settings.get(route_key))
            .and_then(|r| r.throttle.as_ref());
        if let Some(throttle) = route_setting {
            let at = at.key("routeSettings").key(route_key).key("throttle");
            let limit = Limit::compile(throttle, &at)?;
            server.push(
                self.store
                    .bucket(format!("{api}/{stage}/{route_key}"), limit),
            );
        } else if let Some(throttle) = stage_def.and_then(|s| s.throttle.as_ref()) {
            let limit = Limit::compile(throttle, &at.key("throttle"))?;
            server.push(self.store.bucket(format!("{api}/{stage}"), limit));
        }
        let mut plans = HashMap::new();
        for plan in self
            .plans
            .iter()
            .filter(|p| p.stages.iter().any(|s| s == stage))
        {
            let name = &plan.name;
            let method = plan.methods.get(&(stage.to_owned(), route_key.to_owned()));
            let bucket = match (method, plan.throttle) {
                (Some(limit), _) => Some(
                    self.store
                        .keyed_bucket(format!("{api}/plan/{name}/{stage}/{route_key}"), *limit),
                ),
                (None, Some(limit)) => {
                    Some(self.store.keyed_bucket(format!("{api}/plan/{name}"), limit))
                }
                (None, None) => None,
            };
            plans.insert(
                Arc::clone(name),
                PlanLimits {
                    bucket,
                    quota: plan.quota,
                },
            );
        }
        Ok(RouteThrottle {
            in_memory: matches!(self.store.backend, Backend::Memory(_)),
            server,
            plans,
            headers: stage_def.is_some_and(|s| s.rate_limit_headers),
            fail_open: self.fail_open,
            counters: Arc::clone(&self.counters),
        })
    }
}

/// The server-side half of the phase (account, stage, route), before authorize.
pub(crate) fn server<'f, 'a: 'f>(throttle: &'f RouteThrottle, x: &'f mut Exchange<'a>) -> Step<'f> {
    if throttle.in_memory {
        return Step::Now(throttle.server_now(x));
    }
    Step::Wait(Box::pin(throttle.server_waiting(x)))
}

/// The per-client half (the caller's usage plan: its bucket, then its quota), after
/// authorize.
pub(crate) fn client<'f, 'a: 'f>(throttle: &'f RouteThrottle, x: &'f mut Exchange<'a>) -> Step<'f> {
    let Some(key) = &x.caller.api_key else {
        return Step::Now(Ok(()));
    };
    let Some(plan) = &key.usage_plan else {
        return Step::Now(Ok(()));
    };
    let Some(limits) = throttle.plans.get(plan) else {
        return Step::Now(Ok(()));
    };
    let (plan, key_id) = (Arc::clone(plan), Arc::clone(&key.id));
    if throttle.in_memory {
        return Step::Now(throttle.client_now(x, limits, &plan, &key_id));
    }
    Step::Wait(Box::pin(throttle.client_waiting(x, limits, plan, key_id)))
}

impl RouteThrottle {
    fn server_now(&self, x: &mut Exchange<'_>) -> Flow {
        for bucket in &self.server {
            if let Bucket::Memory(memory) = bucket {
                self.judge(x, "stage", memory.limit(), Ok(memory.take()))?;
            }
        }
        Ok(())
    }

    async fn server_waiting(&self, x: &mut Exchange<'_>) -> Flow {
        for bucket in &self.server {
            let taken = bucket.take(&x.redis_budget).await;
            self.judge(x, "stage", bucket.limit(), taken)?;
        }
        Ok(())
    }

    fn client_now(
        &self,
        x: &mut Exchange<'_>,
        limits: &PlanLimits,
        plan: &Arc<str>,
        key_id: &Arc<str>,
    ) -> Flow {
        if let Some(PlanBucket::Memory(bucket)) = &limits.bucket {
            self.judge(x, "plan", bucket.limit(), Ok(bucket.take(key_id)))?;
        }
        self.judge_quota(self.counters.count_now(plan, key_id, limits.quota))
    }

    async fn client_waiting(
        &self,
        x: &mut Exchange<'_>,
        limits: &PlanLimits,
        plan: Arc<str>,
        key_id: Arc<str>,
    ) -> Flow {
        if let Some(bucket) = &limits.bucket {
            let taken = bucket.take(&key_id, &x.redis_budget).await;
            self.judge(x, "plan", bucket.limit(), taken)?;
        }
        let counted = self
            .counters
            .count(&plan, &key_id, limits.quota, &x.redis_budget)
            .await;
        self.judge_quota(counted)
    }

    /// What one bucket's answer means for the request.
    fn judge(
        &self,
        x: &mut Exchange<'_>,
        name: &'static str,
        limit: Limit,
        taken: Result<Taken, Unavailable>,
    ) -> Flow {
        let taken = match taken {
            Ok(taken) => taken,
            Err(unavailable) => self.unavailable(&unavailable)?,
        };
        if self.headers {
            note_rate_limit(x, name, limit, taken);
        }
        if taken.admitted {
            Ok(())
        } else {
            Err(GatewayError::throttled())
        }
    }

    /// What the quota counter's answer means for the request.
    fn judge_quota(&self, counted: Result<bool, Unavailable>) -> Flow {
        match counted {
            Ok(true) => Ok(()),
            Ok(false) => Err(GatewayError::quota_exceeded()),
            Err(unavailable) => self.unavailable(&unavailable).map(|_| ()),
        }
    }
}

impl RouteThrottle {
    /// The store did not answer: AWS lets the request through ("Usage Plan check failed due
    /// to an internal error", logged); with `failOpen: false`, 503.
    fn unavailable(&self, why: &Unavailable) -> Result<Taken, GatewayError> {
        let warnings = &self.counters.warnings;
        if self.fail_open {
            warnings.warn(|also| {
                tracing::warn!(error = %why, unreported_since = also, "Usage Plan check failed due to an internal error")
            });
            Ok(Taken::admitted(0))
        } else {
            warnings.warn(|also| {
                tracing::warn!(error = %why, unreported_since = also, "rate store unavailable: answering 503 (failOpen: false)")
            });
            Err(GatewayError::service_unavailable())
        }
    }
}

impl StoreHandle {
    /// Counts one request of `key_id` in `plan`; false when its quota is used up.
    /// [`Self::count`] on the in-memory store.
    fn count_now(
        &self,
        plan: &Arc<str>,
        key_id: &Arc<str>,
        quota: Option<QuotaRule>,
    ) -> Result<bool, Unavailable> {
        let now = self.clock.now();
        let day = crate::time::utc_date(now);
        match &self.backend {
            Backend::Memory(store) => {
                let quota = quota.map(|q| (q.period_at(now).0, q.limit));
                Ok(store.count(plan, key_id, day, quota).is_some())
            }
            Backend::Redis(_) => Err(Unavailable("the Redis store is asked in place".into())),
        }
    }

    async fn count(
        &self,
        plan: &Arc<str>,
        key_id: &Arc<str>,
        quota: Option<QuotaRule>,
        budget: &Budget,
    ) -> Result<bool, Unavailable> {
        let Backend::Redis(store) = &self.backend else {
            return self.count_now(plan, key_id, quota);
        };
        let now = self.clock.now();
        let period = quota.map(|q| (q.period_at(now), q.limit));
        store
            .count(
                &self.api_id,
                plan,
                key_id,
                crate::time::utc_date(now),
                period,
                budget,
            )
            .await
            .map(|counted| counted.is_some())
    }
}

/// Notes `taken` for the RateLimit headers when its bucket is the tightest the request met so
/// far (fewest tokens left).
fn note_rate_limit(x: &mut Exchange<'_>, name: &'static str, limit: Limit, taken: Taken) {
    if x.rate_limit
        .is_some_and(|note| note.remaining <= taken.remaining)
    {
        return;
    }
    let window = if limit.rate() > 0.0 {
        (f64::from(limit.burst()) / limit.rate()).ceil().max(1.0) as u64
    } else {
        0
    };
    let reset = if taken.admitted {
        0
    } else {
        taken.retry_after.as_secs_f64().ceil().min(u32::MAX.into()) as u64
    };
    x.rate_limit = Some(RateLimitNote {
        policy: name,
        quota: limit.burst(),
        window,
        remaining: taken.remaining,
        reset,
    });
}

/// The RateLimit headers of the IETF draft (draft-ietf-httpapi-ratelimit-headers-09, sections
/// 3 and 4) for `note`: `RateLimit-Policy: "stage";q=BURST;w=SECONDS` (the bucket's size and the
/// seconds it takes to refill from empty) and `RateLimit: "stage";r=REMAINING;t=SECONDS` (tokens
/// left, seconds until one is back when none are).
pub(crate) fn add_rate_limit_headers(note: &RateLimitNote, headers: &mut HeaderMap) {
    const POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
    const STATE: HeaderName = HeaderName::from_static("ratelimit");
    let name = note.policy;
    let policy = format!("\"{name}\";q={};w={}", note.quota, note.window);
    let state = format!("\"{name}\";r={};t={}", note.remaining, note.reset);
    if let (Ok(policy), Ok(state)) = (
        HeaderValue::from_str(&policy),
        HeaderValue::from_str(&state),
    ) {
        headers.insert(POLICY, policy);
        headers.insert(STATE, state);
    }
}

/// The in-memory store's buckets alone, for the `throttle` benchmarks (the `bench` cargo
/// feature); not part of the API.
#[cfg(feature = "bench")]
#[doc(hidden)]
pub struct RateProbe {
    bucket: Arc<DirectBucket>,
    keyed: Arc<KeyedBucket>,
    keys: Vec<Arc<str>>,
    _store: MemoryStore,
}

#[cfg(feature = "bench")]
impl RateProbe {
    /// A bucket of `rate` per second and `burst`, and per-key buckets of the same limit for
    /// `keys` distinct keys, on the system clock.
    pub fn memory(rate: f64, burst: u32, keys: usize) -> Self {
        let store = MemoryStore::new(Clock::system());
        let limit = Limit::new(rate, burst);
        RateProbe {
            bucket: store.bucket("bench", limit),
            keyed: store.keyed_bucket("bench/plan", limit),
            keys: (0..keys).map(|i| Arc::from(format!("key{i:05}"))).collect(),
            _store: store,
        }
    }

    /// One token from the shared bucket: whether it was admitted.
    pub fn take(&self) -> bool {
        self.bucket.take().admitted
    }

    /// One token from key number `i`'s bucket (modulo the number of keys).
    pub fn take_key(&self, i: usize) -> bool {
        let key = &self.keys[i % self.keys.len()];
        self.keyed.take(key).admitted
    }
}
