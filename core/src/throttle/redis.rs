//! The Redis rate store: buckets and quota counters shared by every gateway pointed at one
//! Redis (or one Redis Cluster).
//!
//! - **Buckets** are GCRA (the same algorithm as the in-memory store's `governor`) in one Lua
//!   script per take, atomic on the server: the key holds the bucket's theoretical arrival
//!   time (TAT) in microseconds of **Redis's clock** (`TIME`), so the gateways' own clocks
//!   play no part. A take at `now` with emission interval `T = 1/rate` and size `burst`
//!   admits when `max(tat, now) + T - burst*T <= now`, and then stores the new TAT with a
//!   `PX` expiry at the moment the bucket is full again: an idle bucket vanishes, and a
//!   missing key is a full bucket. Over any window `t` a bucket admits at most
//!   `burst + rate*t`.
//! - **Quotas and usage**: one script counts a request in the key's quota for the period
//!   (`INCR`, `EXPIREAT` at the period's end, refused without counting once at the limit) and
//!   in its day's usage (`INCR`, kept about 100 days for GetUsage), so a refused request
//!   counts nowhere.
//! - **Keys**: `portico:bucket:{NAME}` (NAME = `api/stage`, `api/stage/ROUTE`,
//!   `api/plan/PLAN[/stage/ROUTE]/KEY`), `portico:quota:{api/PLAN/KEY}:PERIOD-START`,
//!   `portico:usage:{api/PLAN/KEY}:DAY`. The braces are Redis Cluster's hash tag: a bucket,
//!   and a key's quota and usage counters, each live on one slot.
//!
//! `redis::Script` runs a script by its SHA1 and loads it again when the server answers
//! `NOSCRIPT` (after a `SCRIPT FLUSH` or a restart).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ::time::Date;

use super::{Limit, Taken};
use crate::config::RedisDefinition;
use crate::error::{Error, KeyPath};
pub(crate) use crate::fleet::Unavailable;
use crate::fleet::{Budget, RedisLink};

/// How long a day's usage counter is kept (AWS's GetUsage reads up to 90 days back).
const USAGE_KEPT_DAYS: i64 = 100;
/// The emission interval of a bucket that never refills (rate 0): ten years.
const NEVER_US: u64 = 10 * 365 * 86_400 * 1_000_000;

/// GCRA on Redis's clock. KEYS[1]: the bucket. ARGV[1]: emission interval (µs, >= 1);
/// ARGV[2]: burst. Answers `{admitted (1|0), remaining, retry after (µs)}`.
static TAKE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.replicate_commands then redis.replicate_commands() end
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if allow_at > now then
  return {0, 0, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
return {1, math.floor((now - allow_at) / interval), 0}
",
    )
});

/// One request of an API key. KEYS[1]: the quota counter of the period; KEYS[2]: the day's
/// usage counter. ARGV[1]: the quota's limit, or -1 without a quota; ARGV[2]: the period's
/// end (Unix seconds); ARGV[3]: when the day's counter goes (Unix seconds). Answers the
/// period's count after this request (0 without a quota), or -1 when the quota was used up
/// (nothing is counted then).
static COUNT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local limit = tonumber(ARGV[1])
local used = 0
if limit >= 0 then
  used = tonumber(redis.call('GET', KEYS[1]) or '0')
  if used >= limit then return -1 end
  used = redis.call('INCR', KEYS[1])
  redis.call('EXPIREAT', KEYS[1], ARGV[2])
end
redis.call('INCR', KEYS[2])
redis.call('EXPIREAT', KEYS[2], ARGV[3])
return used
",
    )
});

/// Buckets and counters in Redis.
pub(crate) struct RedisStore {
    link: Arc<RedisLink>,
}

impl RedisStore {
    /// A store on the server `settings` name (checked at `at`); connects on first use.
    pub(crate) fn open(settings: &RedisDefinition, at: &KeyPath) -> Result<Self, Error> {
        Ok(RedisStore {
            link: Arc::new(RedisLink::open(settings, at)?),
        })
    }

    /// The connection, for the other stores that share this Redis.
    pub(crate) fn link(&self) -> &Arc<RedisLink> {
        &self.link
    }

    /// The Redis key of the bucket called `name`.
    pub(crate) fn bucket_key(name: &str) -> String {
        format!("portico:bucket:{{{name}}}")
    }

    /// The Redis key of `key_id`'s bucket among the per-key buckets called `name`.
    pub(crate) fn keyed_bucket_key(name: &str, key_id: &str) -> String {
        format!("portico:bucket:{{{name}/{key_id}}}")
    }

    /// One token from the bucket at `key`, waiting at most what is left of `budget`.
    pub(crate) async fn take(
        &self,
        key: &str,
        limit: Limit,
        budget: &Budget,
    ) -> Result<Taken, Unavailable> {
        let interval = emission_interval_us(limit.rate());
        let (admitted, remaining, retry_us): (i64, i64, i64) = self
            .link
            .run(budget, |mut c| async move {
                TAKE.key(key)
                    .arg(interval)
                    .arg(limit.burst())
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(if admitted == 1 {
            Taken::admitted(u32::try_from(remaining.max(0)).unwrap_or(u32::MAX))
        } else {
            Taken::refused(Duration::from_micros(
                u64::try_from(retry_us).unwrap_or_default(),
            ))
        })
    }

    /// Counts one request of `key_id` in `plan` on `day` (and, with a quota of `limit` over
    /// the period `[start, end)`, only while under it): the period's count after it, `Some(0)`
    /// without a quota, `None` when the quota was already used up.
    pub(crate) async fn count(
        &self,
        api_id: &str,
        plan: &str,
        key_id: &str,
        day: Date,
        quota: Option<((Date, Date), u64)>,
        budget: &Budget,
    ) -> Result<Option<u64>, Unavailable> {
        let owner = owner(api_id, plan, key_id);
        let (quota_key, limit, period_end) = match quota {
            Some(((start, end), limit)) => (
                quota_key(&owner, start),
                i64::try_from(limit).unwrap_or(i64::MAX),
                unix_seconds(end),
            ),
            // No quota: the script touches KEYS[1] not at all, but it names one on the same
            // slot.
            None => (quota_key(&owner, day), -1, 0),
        };
        let usage_key = usage_key(&owner, day);
        let forget_at = unix_seconds(day.saturating_add(::time::Duration::days(USAGE_KEPT_DAYS)));
        let used: i64 = self
            .link
            .run(budget, |mut c| async move {
                COUNT
                    .key(&quota_key)
                    .key(&usage_key)
                    .arg(limit)
                    .arg(period_end)
                    .arg(forget_at)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(u64::try_from(used).ok())
    }

    /// Requests of `key_id` in `plan` on each of `days`.
    pub(crate) async fn usage(
        &self,
        api_id: &str,
        plan: &str,
        key_id: &str,
        days: &[Date],
    ) -> Result<Vec<u64>, Unavailable> {
        if days.is_empty() {
            return Ok(Vec::new());
        }
        let owner = owner(api_id, plan, key_id);
        let keys: Vec<String> = days.iter().map(|day| usage_key(&owner, *day)).collect();
        let counts: Vec<Option<u64>> = self
            .link
            .run(&Budget::default(), |mut c| async move {
                redis::cmd("MGET").arg(&keys).query_async(&mut c).await
            })
            .await?;
        Ok(counts.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// Forgets what `key_id` used of its quota in the period starting `period`.
    pub(crate) async fn reset_quota(
        &self,
        api_id: &str,
        plan: &str,
        key_id: &str,
        period: Option<Date>,
    ) -> Result<(), Unavailable> {
        let Some(start) = period else {
            return Ok(());
        };
        let key = quota_key(&owner(api_id, plan, key_id), start);
        self.link
            .run(&Budget::default(), |mut c| async move {
                redis::cmd("DEL").arg(&key).query_async::<i64>(&mut c).await
            })
            .await?;
        Ok(())
    }
}

/// The hash tag of one key's counters in one plan.
fn owner(api_id: &str, plan: &str, key_id: &str) -> String {
    format!("{{{api_id}/{plan}/{key_id}}}")
}

fn quota_key(owner: &str, period_start: Date) -> String {
    format!("portico:quota:{owner}:{period_start}")
}

fn usage_key(owner: &str, day: Date) -> String {
    format!("portico:usage:{owner}:{day}")
}

/// Midnight UTC at the start of `day`, in Unix seconds.
fn unix_seconds(day: Date) -> u64 {
    crate::time::midnight(day)
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Microseconds between two tokens at `rate` per second, rounded up (a bucket never admits
/// more than its rate; at most a microsecond's worth less); rate 0 never refills.
fn emission_interval_us(rate: f64) -> u64 {
    if rate > 0.0 {
        let interval = (1_000_000.0 / rate).ceil();
        if interval >= NEVER_US as f64 {
            NEVER_US
        } else {
            (interval as u64).max(1)
        }
    } else {
        NEVER_US
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::time::macros::date;

    #[test]
    fn intervals_round_up_and_zero_never_refills() {
        assert_eq!(emission_interval_us(1.0), 1_000_000);
        assert_eq!(emission_interval_us(3.0), 333_334);
        assert_eq!(emission_interval_us(0.5), 2_000_000);
        assert_eq!(emission_interval_us(5_000_000.0), 1);
        assert_eq!(emission_interval_us(0.0), NEVER_US);
        assert_eq!(emission_interval_us(1e-12), NEVER_US);
    }

    #[test]
    fn a_keys_counters_share_one_hash_tag() {
        let owner = owner("api1", "free", "k}1");
        let quota = quota_key(&owner, date!(2026 - 11 - 29));
        let usage = usage_key(&owner, date!(2026 - 11 - 30));
        assert_eq!(quota, "portico:quota:{api1/free/k}1}:2026-11-29");
        let tag = |key: &str| {
            let open = key.find('{').unwrap();
            let close = open + key[open..].find('}').unwrap();
            key[open + 1..close].to_owned()
        };
        assert_eq!(tag(&quota), tag(&usage));
        assert_eq!(unix_seconds(date!(2023 - 11 - 14)), 1_699_920_000);
    }
}
