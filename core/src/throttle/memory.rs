//! The in-process rate store: token buckets on `governor` (GCRA, exact: over any window a
//! bucket admits at most `burst + rate * t`), keyed buckets sharded by `dashmap`, and quota
//! and usage counters. It outlives reloads: a bucket is found again by its name and limit.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::time::Date;
use dashmap::DashMap;
use governor::clock::Clock as GovernorClock;
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use super::{Limit, Taken};
use crate::time::Clock;

/// governor's view of the gateway's [`Clock`]: monotonic time since the clock was made.
#[derive(Clone, Debug)]
pub(crate) struct Ticks(Clock);

impl GovernorClock for Ticks {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

type Direct = RateLimiter<NotKeyed, InMemoryState, Ticks, StateInformationMiddleware>;
type Keyed = RateLimiter<Arc<str>, DashMapStateStore<Arc<str>>, Ticks, StateInformationMiddleware>;

/// Buckets by name and limit, as compiled APIs hold them.
type Registry<B> = Mutex<HashMap<(String, Limit), Arc<B>>>;

/// The bucket of `registry` called `name` with `limit`, made by `make` when there is none; the
/// buckets no compiled API holds any more are dropped on the way.
fn found_or_made<B>(
    registry: &Registry<B>,
    name: &str,
    limit: Limit,
    make: impl FnOnce() -> B,
) -> Arc<B> {
    let mut buckets = registry.lock().unwrap_or_else(|e| e.into_inner());
    buckets.retain(|_, bucket| Arc::strong_count(bucket) > 1);
    let bucket = buckets
        .entry((name.to_owned(), limit))
        .or_insert_with(|| Arc::new(make()));
    Arc::clone(bucket)
}

/// One bucket shared by every request it applies to (API, stage, route).
pub(crate) struct DirectBucket {
    limiter: Option<Direct>,
    ticks: Ticks,
    limit: Limit,
}

/// One bucket per API key (usage plans).
pub(crate) struct KeyedBucket {
    limiter: Option<Keyed>,
    ticks: Ticks,
    limit: Limit,
}

/// governor's quota for `limit`, or `None` for a bucket that admits nothing (rate and burst
/// 0, as AWS lets a stage be switched off).
fn quota(limit: Limit) -> Option<Quota> {
    let burst = NonZeroU32::new(limit.burst())?;
    // A zero rate never refills: one period longer than any process lives.
    let period = if limit.rate() > 0.0 {
        Duration::from_secs_f64(1.0 / limit.rate()).max(Duration::from_nanos(1))
    } else {
        Duration::from_secs(u64::from(u32::MAX))
    };
    Some(Quota::with_period(period)?.allow_burst(burst))
}

impl DirectBucket {
    pub(crate) fn limit(&self) -> Limit {
        self.limit
    }

    pub(crate) fn take(&self) -> Taken {
        let Some(limiter) = &self.limiter else {
            return Taken::refused(Duration::MAX);
        };
        match limiter.check() {
            Ok(state) => Taken::admitted(state.remaining_burst_capacity()),
            Err(not_until) => Taken::refused(not_until.wait_time_from(self.ticks.now())),
        }
    }
}

impl KeyedBucket {
    pub(crate) fn limit(&self) -> Limit {
        self.limit
    }

    pub(crate) fn take(&self, key: &Arc<str>) -> Taken {
        let Some(limiter) = &self.limiter else {
            return Taken::refused(Duration::MAX);
        };
        match limiter.check_key(key) {
            Ok(state) => Taken::admitted(state.remaining_burst_capacity()),
            Err(not_until) => Taken::refused(not_until.wait_time_from(self.ticks.now())),
        }
    }
}

/// Quota and usage counters of one key in one plan.
#[derive(Default)]
struct KeyCounters {
    /// The current period's first day and its count.
    period: Option<(Date, u64)>,
    /// Requests by day (what AWS's GetUsage reads).
    days: HashMap<Date, u64>,
}

/// The in-process store.
pub(crate) struct MemoryStore {
    ticks: Ticks,
    direct: Registry<DirectBucket>,
    keyed: Registry<KeyedBucket>,
    /// By (plan, key id).
    counters: DashMap<(Arc<str>, Arc<str>), KeyCounters>,
}

impl MemoryStore {
    pub(crate) fn new(clock: Clock) -> Self {
        MemoryStore {
            ticks: Ticks(clock),
            direct: Mutex::default(),
            keyed: Mutex::default(),
            counters: DashMap::new(),
        }
    }

    /// The bucket called `name` with `limit`: the same one across reloads while neither
    /// changes (a changed limit starts a fresh bucket).
    pub(crate) fn bucket(&self, name: &str, limit: Limit) -> Arc<DirectBucket> {
        found_or_made(&self.direct, name, limit, || DirectBucket {
            limiter: quota(limit).map(|q| {
                RateLimiter::direct_with_clock(q, self.ticks.clone())
                    .with_middleware::<StateInformationMiddleware>()
            }),
            ticks: self.ticks.clone(),
            limit,
        })
    }

    /// The per-key buckets called `name` with `limit` (see [`Self::bucket`]).
    pub(crate) fn keyed_bucket(&self, name: &str, limit: Limit) -> Arc<KeyedBucket> {
        found_or_made(&self.keyed, name, limit, || KeyedBucket {
            limiter: quota(limit).map(|q| {
                RateLimiter::dashmap_with_clock(q, self.ticks.clone())
                    .with_middleware::<StateInformationMiddleware>()
            }),
            ticks: self.ticks.clone(),
            limit,
        })
    }

    /// Counts one request of `key` in `plan` on `day`; with a quota (`limit` over the period
    /// starting `period`), only while under it. The count after this request, or `None` when
    /// the quota was already used up (nothing is counted then).
    pub(crate) fn count(
        &self,
        plan: &Arc<str>,
        key: &Arc<str>,
        day: Date,
        quota: Option<(Date, u64)>,
    ) -> Option<u64> {
        let mut counters = self
            .counters
            .entry((Arc::clone(plan), Arc::clone(key)))
            .or_default();
        let mut used = 0;
        if let Some((period, limit)) = quota {
            used = match counters.period {
                Some((start, used)) if start == period => used,
                _ => 0,
            };
            if used >= limit {
                return None;
            }
            used += 1;
            counters.period = Some((period, used));
        }
        *counters.days.entry(day).or_default() += 1;
        Some(used)
    }

    /// Requests of `key` in `plan` on each of `days`.
    pub(crate) fn usage(&self, plan: &str, key: &str, days: &[Date]) -> Vec<u64> {
        let counters = self.counters.get(&(Arc::from(plan), Arc::from(key)));
        days.iter()
            .map(|day| {
                counters
                    .as_ref()
                    .and_then(|c| c.days.get(day).copied())
                    .unwrap_or(0)
            })
            .collect()
    }

    /// Forgets what `key` used of its quota in the current period (its usage by day stays).
    pub(crate) fn reset_quota(&self, plan: &str, key: &str) {
        if let Some(mut counters) = self.counters.get_mut(&(Arc::from(plan), Arc::from(key))) {
            counters.period = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn limit(rate: f64, burst: u32) -> Limit {
        Limit::new(rate, burst)
    }

    #[test]
    fn a_bucket_admits_its_burst_then_its_rate() {
        let clock = Clock::manual(SystemTime::UNIX_EPOCH);
        let store = MemoryStore::new(clock.clone());
        let bucket = store.bucket("api/prod", limit(2.0, 3));
        let admitted = (0..10).filter(|_| bucket.take().admitted).count();
        assert_eq!(admitted, 3);
        clock.advance(Duration::from_millis(500));
        assert!(bucket.take().admitted);
        assert!(!bucket.take().admitted);
        clock.advance(Duration::from_secs(10));
        let admitted = (0..10).filter(|_| bucket.take().admitted).count();
        assert_eq!(admitted, 3, "refills to the burst, never beyond");
    }

    #[test]
    fn fractional_and_zero_rates() {
        let clock = Clock::manual(SystemTime::UNIX_EPOCH);
        let store = MemoryStore::new(clock.clone());
        let half = store.bucket("half", limit(0.5, 1));
        assert!(half.take().admitted);
        clock.advance(Duration::from_millis(1900));
        assert!(!half.take().admitted);
        clock.advance(Duration::from_millis(100));
        assert!(half.take().admitted);
        let closed = store.bucket("closed", limit(0.0, 0));
        assert!(!closed.take().admitted);
        let once = store.bucket("once", limit(0.0, 2));
        clock.advance(Duration::from_secs(3600));
        assert_eq!((0..5).filter(|_| once.take().admitted).count(), 2);
        clock.advance(Duration::from_secs(3600));
        assert!(!once.take().admitted);
    }

    #[test]
    fn buckets_are_found_again_by_name_and_limit() {
        let store = MemoryStore::new(Clock::manual(SystemTime::UNIX_EPOCH));
        let first = store.bucket("api/prod", limit(1.0, 1));
        assert!(first.take().admitted);
        // A reload compiles the same bucket again: same state.
        let again = store.bucket("api/prod", limit(1.0, 1));
        assert!(Arc::ptr_eq(&first, &again));
        assert!(!again.take().admitted);
        // A new limit is a new bucket.
        let changed = store.bucket("api/prod", limit(1.0, 2));
        assert!(changed.take().admitted);
    }

    #[test]
    fn keyed_buckets_keep_keys_apart() {
        let store = MemoryStore::new(Clock::manual(SystemTime::UNIX_EPOCH));
        let plan = store.keyed_bucket("free", limit(1.0, 2));
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        assert_eq!((0..5).filter(|_| plan.take(&a).admitted).count(), 2);
        assert_eq!((0..5).filter(|_| plan.take(&b).admitted).count(), 2);
    }

    #[test]
    fn quotas_count_per_period_and_usage_per_day() {
        let store = MemoryStore::new(Clock::manual(SystemTime::UNIX_EPOCH));
        let (plan, key): (Arc<str>, Arc<str>) = ("free".into(), "k1".into());
        let d1 = Date::from_calendar_date(2026, ::time::Month::November, 29).unwrap();
        let d2 = d1.next_day().unwrap();
        let quota = Some((d1, 2));
        assert_eq!(store.count(&plan, &key, d1, quota), Some(1));
        assert_eq!(store.count(&plan, &key, d1, quota), Some(2));
        assert_eq!(store.count(&plan, &key, d1, quota), None);
        // A new period starts from zero.
        assert_eq!(store.count(&plan, &key, d2, Some((d2, 2))), Some(1));
        assert_eq!(store.usage("free", "k1", &[d1, d2]), vec![2, 1]);
        store.reset_quota("free", "k1");
        assert_eq!(store.count(&plan, &key, d2, Some((d2, 2))), Some(1));
        assert_eq!(store.usage("free", "k1", &[d2]), vec![2]);
        assert_eq!(store.usage("free", "nobody", &[d2]), vec![0]);
    }
}
