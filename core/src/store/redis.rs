//! The plugins' key-value store in Redis: one store for a fleet of gateways.

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use super::{check_entry, check_list, KvError, KvStore};
use crate::config::RedisDefinition;
use crate::error::{Error, KeyPath};
use crate::fleet::{Connection, RedisLink};

/// The plugins' store in Redis (`kvStore: {type: redis}`): every gateway pointed at the same
/// Redis reads what any of them wrote.
///
/// A table is two Redis keys on one slot: a hash of its entries (`portico:kv:{TABLE}:values`)
/// and a sorted set of its keys, all of score 0, that `ZRANGE BYLEX` walks in key order for
/// `list_prefix` (`portico:kv:{TABLE}:keys`). Writes and listings are Lua scripts, so the two
/// never disagree.
///
/// The trait is blocking (the plugin host calls it on tokio's blocking threads): each call
/// runs on the tokio runtime it is called from, waiting at most `rateStore.timeoutMs` (and
/// at least a second: a write is data, not a limit check).
pub struct RedisKv {
    link: Arc<RedisLink>,
    timeout: Duration,
}

impl std::fmt::Debug for RedisKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKv").finish_non_exhaustive()
    }
}

/// The least time a kv call may wait for Redis, whatever `timeoutMs` says.
const REDIS_KV_MIN_TIMEOUT: Duration = Duration::from_secs(1);

/// KEYS: values, keys. ARGV: key, value.
static KV_PUT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) redis.call('ZADD', KEYS[2], 0, ARGV[1]) return 1",
    )
});
/// KEYS: values, keys. ARGV: key. Answers 1 when the key was there.
static KV_DELETE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "redis.call('ZREM', KEYS[2], ARGV[1]) return redis.call('HDEL', KEYS[1], ARGV[1])",
    )
});
/// KEYS: values, keys. ARGV: lowest (lex range), highest, limit. Answers key, value, key, ...
static KV_LIST: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local keys = redis.call('ZRANGEBYLEX', KEYS[2], ARGV[1], ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, key in ipairs(keys) do
  local value = redis.call('HGET', KEYS[1], key)
  if value then
    out[#out + 1] = key
    out[#out + 1] = value
  end
end
return out
",
    )
});

impl RedisKv {
    /// A store on the Redis `settings` name (its `url`, `cluster` and `timeoutMs`), for
    /// [`crate::GatewayBuilder::kv_store`]; it connects on first use. A `url` that does not
    /// parse is an error at `url`.
    pub fn open(settings: &RedisDefinition) -> Result<Self, Error> {
        Ok(Self::new(Arc::new(RedisLink::open(
            settings,
            &KeyPath::root(),
        )?)))
    }

    /// The store on `link`'s Redis.
    pub(crate) fn new(link: Arc<RedisLink>) -> Self {
        let timeout = link.timeout().max(REDIS_KV_MIN_TIMEOUT);
        RedisKv { link, timeout }
    }

    /// The two Redis keys of `table`: its entries and its ordered key set.
    fn table_keys(table: &str) -> (String, String) {
        (
            format!("portico:kv:{{{table}}}:values"),
            format!("portico:kv:{{{table}}}:keys"),
        )
    }

    /// Runs `call` on the tokio runtime of the calling thread and waits for it.
    fn block<T, F, Fut>(&self, call: F) -> Result<T, KvError>
    where
        T: Send + 'static,
        F: FnOnce(Connection) -> Fut + Send + 'static,
        Fut: Future<Output = redis::RedisResult<T>> + Send,
    {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            KvError::Storage("the Redis kv store is called outside a tokio runtime".into())
        })?;
        let (link, timeout) = (Arc::clone(&self.link), self.timeout);
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        handle.spawn(async move {
            let answer = link.run_within(timeout, call).await;
            let _ = sender.send(answer);
        });
        // The task gives up at `timeout` itself; the margin covers its scheduling.
        match receiver.recv_timeout(timeout + Duration::from_millis(500)) {
            Ok(answer) => answer.map_err(|e| KvError::Storage(e.to_string())),
            Err(_) => Err(KvError::Storage(format!(
                "Redis did not answer within {} ms",
                timeout.as_millis()
            ))),
        }
    }
}

impl KvStore for RedisKv {
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_entry(table, key)?;
        let (values, key) = (Self::table_keys(table).0, key.to_owned());
        self.block(move |mut c| async move {
            redis::cmd("HGET")
                .arg(&values)
                .arg(&key)
                .query_async(&mut c)
                .await
        })
    }

    fn put(&self, table: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
        check_entry(table, key)?;
        let ((values, keys), key, value) =
            (Self::table_keys(table), key.to_owned(), value.to_vec());
        self.block(move |mut c| async move {
            KV_PUT
                .key(&values)
                .key(&keys)
                .arg(&key)
                .arg(&value)
                .invoke_async::<i64>(&mut c)
                .await
                .map(|_| ())
        })
    }

    fn delete(&self, table: &str, key: &str) -> Result<bool, KvError> {
        check_entry(table, key)?;
        let ((values, keys), key) = (Self::table_keys(table), key.to_owned());
        self.block(move |mut c| async move {
            KV_DELETE
                .key(&values)
                .key(&keys)
                .arg(&key)
                .invoke_async::<i64>(&mut c)
                .await
                .map(|removed| removed > 0)
        })
    }

    fn list_prefix(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, KvError> {
        check_list(table, prefix)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (values, keys) = Self::table_keys(table);
        // Lexicographic bounds over bytes: after `start_after` (when it is past the prefix's
        // start), up to the prefix followed by 0xFF, a byte no UTF-8 key holds.
        let mut low = match start_after {
            Some(after) if after >= prefix => format!("({after}").into_bytes(),
            _ => format!("[{prefix}").into_bytes(),
        };
        let high = if prefix.is_empty() {
            b"+".to_vec()
        } else {
            let mut high = format!("[{prefix}").into_bytes();
            high.push(0xFF);
            high
        };
        if low == b"[" {
            low = b"-".to_vec();
        }
        let entries: Vec<Vec<u8>> = self.block(move |mut c| async move {
            KV_LIST
                .key(&values)
                .key(&keys)
                .arg(&low)
                .arg(&high)
                .arg(limit)
                .invoke_async(&mut c)
                .await
        })?;
        let mut out = Vec::with_capacity(entries.len() / 2);
        let mut entries = entries.into_iter();
        while let (Some(key), Some(value)) = (entries.next(), entries.next()) {
            let key = String::from_utf8(key)
                .map_err(|_| KvError::Storage("a key in Redis is not UTF-8".into()))?;
            out.push((key, value));
        }
        Ok(out)
    }
}
