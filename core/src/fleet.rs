//! The Redis a fleet of gateways shares: one lazily opened, self-healing connection per store
//! that asks for it (the rate store, the plugins' kv store, the custom authorizers' result
//! cache, the stages' response caches), and the time a request may spend waiting for it.
//!
//! A leaf: it knows the `rateStore` settings and nothing of the phases. Loading never connects
//! (a gateway starts while Redis is away); the first call connects, and every call is bounded
//! by `timeoutMs`, so Redis being slow or gone costs a request at most that long and comes back
//! as [`Unavailable`], never as a hang.
//!
//! One server is reached through the `redis` crate's `ConnectionManager`, which reconnects by
//! itself after the server went away; a Redis Cluster (`cluster: true`, or several `url`s, the
//! seed nodes) through `redis::cluster_async`, which follows the cluster's slot map. The keys
//! every store writes carry a hash tag (`{...}`), so what one script touches lives on one slot.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use crate::config::{OneOrMany, RedisDefinition};
use crate::error::{Error, KeyPath};

/// Redis did not answer (in time), or answered an error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Unavailable(pub(crate) String);

/// How often each user of the Redis (a stage's response cache, an authorizer's result cache,
/// an API's rate store) may warn that it did not answer.
const WARNING_PERIOD: Duration = Duration::from_secs(10);

/// How long a connection attempt may take before the reconnecting manager tries again.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The manager's reconnection attempts after a loss, 10 ms apart at first and at most 1 s
/// apart: a Redis that comes back is found again within a second.
const RECONNECT_ATTEMPTS: usize = 8;
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(10);
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);

/// Where the server is: one Redis, or the seed nodes of a Redis Cluster.
enum Target {
    Single(redis::Client),
    Cluster(Box<ClusterClient>),
}

/// A connection to one Redis server (reconnecting) or to a cluster.
#[derive(Clone)]
pub(crate) enum Connection {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// The time one request may still spend waiting for Redis: its first call starts the clock
/// (`timeoutMs`), every later call of the same request waits only for what is left.
#[derive(Debug, Default)]
pub(crate) struct Budget(OnceLock<Instant>);

impl Budget {
    /// The moment this request stops waiting for Redis, `timeout` after its first call.
    pub(crate) fn deadline(&self, timeout: Duration) -> Instant {
        *self.0.get_or_init(|| Instant::now() + timeout)
    }
}

/// A lazily opened connection to the Redis of `rateStore` (or `--redis`).
pub(crate) struct RedisLink {
    target: Target,
    timeout: Duration,
    connection: tokio::sync::OnceCell<Connection>,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisLink {
    /// The server `settings` name, not connected yet; a `url` that does not parse is a load
    /// error at `at.url`.
    pub(crate) fn open(settings: &RedisDefinition, at: &KeyPath) -> Result<Self, Error> {
        let urls: Vec<&str> = match &settings.url {
            OneOrMany::One(url) => vec![url.as_str()],
            OneOrMany::Many(urls) => urls.iter().map(String::as_str).collect(),
        };
        let bad_url = |e: redis::RedisError| {
            Error::config(
                at.key("url"),
                format!("not a Redis URL (redis://HOST:PORT/DB): {e}"),
            )
        };
        if urls.is_empty() {
            return Err(Error::config(at.key("url"), "at least one Redis URL"));
        }
        if !(1..=60_000).contains(&settings.timeout_ms) {
            return Err(Error::config(
                at.key("timeoutMs"),
                "milliseconds a request may wait for Redis: 1 to 60000",
            ));
        }
        let target = if settings.cluster || urls.len() > 1 {
            // The cluster's own clients retry and follow MOVED answers; each of their
            // attempts is still cut short by the request's budget.
            let client = ClusterClient::builder(urls)
                .connection_timeout(CONNECT_TIMEOUT)
                .retries(2)
                .build()
                .map_err(bad_url)?;
            Target::Cluster(Box::new(client))
        } else {
            Target::Single(redis::Client::open(urls[0]).map_err(bad_url)?)
        };
        Ok(RedisLink {
            target,
            timeout: Duration::from_millis(settings.timeout_ms),
            connection: tokio::sync::OnceCell::new(),
        })
    }

    /// `timeoutMs`.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The connection, made on first use (inside the runtime that serves the requests)
    /// without waiting for anything: the single-server manager connects on its first command
    /// and again after every loss, and the cluster connection connects and reads the slot map
    /// in a task of its own. A request that gives up waiting (its budget ran out) so never
    /// throws away a connection attempt half made.
    async fn connection(&self) -> RedisResult<Connection> {
        let connection = self
            .connection
            .get_or_try_init(|| async {
                match &self.target {
                    Target::Single(client) => {
                        let config = ConnectionManagerConfig::new()
                            .set_connection_timeout(Some(CONNECT_TIMEOUT))
                            .set_response_timeout(None)
                            .set_number_of_retries(RECONNECT_ATTEMPTS)
                            .set_min_delay(RECONNECT_MIN_DELAY)
                            .set_max_delay(RECONNECT_MAX_DELAY);
                        ConnectionManager::new_lazy_with_config(client.clone(), config)
                            .map(Connection::Single)
                    }
                    Target::Cluster(client) => Ok(Connection::Cluster(
                        client.get_pending_async_connection_with_config(ClusterConfig::new()),
                    )),
                }
            })
            .await?;
        Ok(connection.clone())
    }

    /// Runs `call` on the connection, giving up when `budget` runs out (`timeoutMs` after the
    /// request's first Redis call).
    pub(crate) async fn run<T, F, Fut>(&self, budget: &Budget, call: F) -> Result<T, Unavailable>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let deadline = budget.deadline(self.timeout);
        self.run_until(deadline, call).await
    }

    /// Runs `call` on the connection within `timeout` of now (calls that belong to no
    /// request, like the plugins' kv store's).
    pub(crate) async fn run_within<T, F, Fut>(
        &self,
        timeout: Duration,
        call: F,
    ) -> Result<T, Unavailable>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        self.run_until(Instant::now() + timeout, call).await
    }

    /// Runs `call` on the connection, giving up at `deadline` (a request's, read from its
    /// [`Budget`] before the request's other waits began).
    pub(crate) async fn run_until<T, F, Fut>(
        &self,
        deadline: Instant,
        call: F,
    ) -> Result<T, Unavailable>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let answered = tokio::time::timeout_at(deadline.into(), async {
            let connection = self.connection().await?;
            call(connection).await
        })
        .await;
        match answered {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(Unavailable(format!("Redis: {e}"))),
            Err(_) => Err(Unavailable(format!(
                "Redis did not answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }
}

/// One kind of warning, written at most once per [`WARNING_PERIOD`]: a Redis that is down (each
/// user of it has its own), or a plugin whose warm instances keep filling their memory, would
/// otherwise write a line for every request. Each warning written carries how many were left
/// unwritten since the one before.
pub(crate) struct WarningGate {
    limiter: DefaultDirectRateLimiter,
    quiet: AtomicU64,
}

impl WarningGate {
    pub(crate) fn new() -> Self {
        Self::every(WARNING_PERIOD)
    }

    fn every(period: Duration) -> Self {
        let quota =
            Quota::with_period(period).unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN));
        WarningGate {
            limiter: RateLimiter::direct(quota),
            quiet: AtomicU64::new(0),
        }
    }

    /// Has `write` write the warning, given how many were left unwritten since the last one,
    /// when one may be written now; counts this one as unwritten otherwise.
    pub(crate) fn warn(&self, write: impl FnOnce(u64)) {
        if self.limiter.check().is_ok() {
            write(self.quiet.swap(0, Ordering::Relaxed));
        } else {
            self.quiet.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gated_warnings_are_one_a_period_and_count_those_left_unwritten() {
        let warnings = WarningGate::every(Duration::from_millis(200));
        let mut written = Vec::new();
        for _ in 0..5 {
            warnings.warn(|unwritten| written.push(unwritten));
        }
        assert_eq!(written, [0]);
        std::thread::sleep(Duration::from_millis(250));
        warnings.warn(|unwritten| written.push(unwritten));
        assert_eq!(written, [0, 4]);
    }

    #[test]
    fn urls_are_checked_at_load_without_connecting() {
        let at = KeyPath::root().key("rateStore");
        // Nothing listens there: loading does not care.
        assert!(RedisLink::open(&RedisDefinition::new("redis://127.0.0.1:1"), &at).is_ok());
        let error = RedisLink::open(&RedisDefinition::new("http://nope"), &at).unwrap_err();
        assert!(error.to_string().contains("rateStore.url"), "{error}");
        let mut cluster = RedisDefinition::new("redis://127.0.0.1:1");
        cluster.cluster = true;
        assert!(matches!(
            RedisLink::open(&cluster, &at).map(|l| l.target),
            Ok(Target::Cluster(_))
        ));
    }

    #[tokio::test]
    async fn a_request_waits_for_redis_once_at_most() {
        // A port that accepts nothing: every call fails or times out, and the second call of
        // the same request has no time left.
        let mut settings = RedisDefinition::new("redis://10.255.255.1:6379");
        settings.timeout_ms = 100;
        let link = RedisLink::open(&settings, &KeyPath::root()).unwrap();
        let budget = Budget::default();
        let started = Instant::now();
        let ping = |mut c: Connection| async move {
            redis::cmd("PING").query_async::<String>(&mut c).await
        };
        assert!(link.run(&budget, ping).await.is_err());
        assert!(link.run(&budget, ping).await.is_err());
        assert!(
            started.elapsed() < Duration::from_millis(400),
            "{:?}",
            started.elapsed()
        );
    }
}
