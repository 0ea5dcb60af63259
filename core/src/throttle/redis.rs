//! The Redis rate store: buckets and quota counters shared by every gateway pointed at one
//! Redis. (Being built: until it lands, `rateStore: {type: redis}` is refused at load.)

use std::time::Duration;

use ::time::Date;

use super::{Limit, Taken};
use crate::config::RedisDefinition;
use crate::error::{Error, KeyPath};
use crate::time::Clock;

/// Redis did not answer (in time).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Unavailable(pub(crate) String);

/// Buckets and counters in Redis.
#[allow(dead_code)] // Not constructed until the Redis store lands.
pub(crate) struct RedisStore {
    timeout: Duration,
}

impl RedisStore {
    /// A store on the server `settings` name; connects on first use.
    pub(crate) fn open(
        _settings: &RedisDefinition,
        _clock: Clock,
        at: &KeyPath,
    ) -> Result<Self, Error> {
        Err(Error::not_supported(at.clone(), "the redis rate store"))
    }

    /// The Redis key of the bucket called `name`.
    pub(crate) fn bucket_key(name: &str) -> String {
        format!("portico:bucket:{{{name}}}")
    }

    /// The Redis key of `key_id`'s bucket among the per-key buckets called `name`.
    pub(crate) fn keyed_bucket_key(name: &str, key_id: &str) -> String {
        format!("portico:bucket:{{{name}/{key_id}}}")
    }

    /// One token from the bucket at `key`.
    pub(crate) async fn take(&self, _key: &str, _limit: Limit) -> Result<Taken, Unavailable> {
        Err(Unavailable("the redis rate store is not built yet".into()))
    }

    /// Counts one request of `key_id` in `plan` on `day` (and, with a quota of `limit` over
    /// the period `[start, end)`, only while under it): the period's count after it, `Some(0)`
    /// without a quota, `None` when the quota was already used up.
    pub(crate) async fn count(
        &self,
        _api_id: &str,
        _plan: &str,
        _key_id: &str,
        _day: Date,
        _quota: Option<((Date, Date), u64)>,
    ) -> Result<Option<u64>, Unavailable> {
        Err(Unavailable("the redis rate store is not built yet".into()))
    }

    /// Requests of `key_id` in `plan` on each of `days`.
    pub(crate) async fn usage(
        &self,
        _api_id: &str,
        _plan: &str,
        _key_id: &str,
        _days: &[Date],
    ) -> Result<Vec<u64>, Unavailable> {
        Err(Unavailable("the redis rate store is not built yet".into()))
    }

    /// Forgets what `key_id` used of its quota in the period starting `period`.
    pub(crate) async fn reset_quota(
        &self,
        _api_id: &str,
        _plan: &str,
        _key_id: &str,
        _period: Option<Date>,
    ) -> Result<(), Unavailable> {
        Err(Unavailable("the redis rate store is not built yet".into()))
    }
}
