//! The key-value store behind the plugins' `kv` import.
//!
//! [`KvStore`] is the trait an embedder implements to bring its own backend. Two come with the
//! crate: [`MemoryKv`] (the default when no data directory is configured) and [`RedbKv`], an
//! embedded, durable store on redb: a `put` that returned survives a crash. A third,
//! [`RedisKv`], is what `kvStore: {type: redis}` asks for: one store for a fleet of gateways.

mod redis;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::RwLock;

use redb::TableDefinition;

pub use self::redis::RedisKv;

/// The longest table name or key accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The table name or key is not acceptable (empty, over 1024 bytes, or holding a NUL).
    #[error("invalid name: {0}")]
    InvalidName(String),
    /// The backend failed.
    #[error("storage error: {0}")]
    Storage(String),
}

/// A key-value store split into named tables. Implementations must be safe to share between
/// threads; calls may block (the host runs them off the async executor).
pub trait KvStore: Send + Sync + 'static {
    /// The value of `key` in `table`, if any.
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// Sets `key` in `table`; durable (for a durable backend) once it returns.
    fn put(&self, table: &str, key: &str, value: &[u8]) -> Result<(), KvError>;
    /// Removes `key` from `table`; whether it was there.
    fn delete(&self, table: &str, key: &str) -> Result<bool, KvError>;
    /// Up to `limit` entries whose keys start with `prefix`, in key order, after `start_after`.
    fn list_prefix(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, KvError>;
}

/// Checks a table name or key: 1-1024 bytes, no NUL (the NUL separates table and key).
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), KvError> {
    if name.is_empty() {
        return Err(KvError::InvalidName(format!("empty {what}")));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(KvError::InvalidName(format!(
            "{what} longer than {MAX_NAME_BYTES} bytes"
        )));
    }
    if name.contains('\0') {
        return Err(KvError::InvalidName(format!("{what} contains NUL")));
    }
    Ok(())
}

/// Checks the table name and key of one entry.
pub(crate) fn check_entry(table: &str, key: &str) -> Result<(), KvError> {
    check_name("table", table)?;
    check_name("key", key)
}

/// `table\0key`: one ordered key space for every table.
fn composite(table: &str, key: &str) -> String {
    let mut k = String::with_capacity(table.len() + 1 + key.len());
    k.push_str(table);
    k.push('\0');
    k.push_str(key);
    k
}

/// The range of composite keys for `prefix` in `table`, starting after `start_after`.
fn prefix_range(table: &str, prefix: &str, start_after: Option<&str>) -> (Bound<String>, String) {
    let start = match start_after {
        Some(after) if after >= prefix => Bound::Excluded(composite(table, after)),
        _ => Bound::Included(composite(table, prefix)),
    };
    (start, composite(table, prefix))
}

pub(crate) fn check_list(table: &str, prefix: &str) -> Result<(), KvError> {
    check_name("table", table)?;
    if prefix.len() > MAX_NAME_BYTES || prefix.contains('\0') {
        return Err(KvError::InvalidName("bad prefix".into()));
    }
    Ok(())
}

/// An in-memory store: fast, shared by every plugin of the process, gone on restart.
#[derive(Debug, Default)]
pub struct MemoryKv {
    entries: RwLock<BTreeMap<String, Vec<u8>>>,
}

impl MemoryKv {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned<T>(_: T) -> KvError {
    KvError::Storage("lock poisoned".into())
}

impl KvStore for MemoryKv {
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_entry(table, key)?;
        Ok(self
            .entries
            .read()
            .map_err(poisoned)?
            .get(&composite(table, key))
            .cloned())
    }

    fn put(&self, table: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
        check_entry(table, key)?;
        self.entries
            .write()
            .map_err(poisoned)?
            .insert(composite(table, key), value.to_vec());
        Ok(())
    }

    fn delete(&self, table: &str, key: &str) -> Result<bool, KvError> {
        check_entry(table, key)?;
        Ok(self
            .entries
            .write()
            .map_err(poisoned)?
            .remove(&composite(table, key))
            .is_some())
    }

    fn list_prefix(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, KvError> {
        check_list(table, prefix)?;
        let (start, full_prefix) = prefix_range(table, prefix, start_after);
        let entries = self.entries.read().map_err(poisoned)?;
        Ok(entries
            .range((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&full_prefix))
            .take(limit)
            .map(|(k, v)| (k[table.len() + 1..].to_owned(), v.clone()))
            .collect())
    }
}

const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("portico_kv");

/// A durable embedded store in one redb file.
pub struct RedbKv {
    db: redb::Database,
}

impl std::fmt::Debug for RedbKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbKv").finish_non_exhaustive()
    }
}

fn storage<E: std::fmt::Display>(e: E) -> KvError {
    KvError::Storage(e.to_string())
}

impl RedbKv {
    /// Opens (or creates) the store file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, KvError> {
        let path = path.as_ref();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| KvError::Storage(format!("{}: {e}", dir.display())))?;
        }
        let db = redb::Database::create(path)
            .map_err(|e| KvError::Storage(format!("{}: {e}", path.display())))?;
        // Create the table up front so that readers never meet a missing table.
        let txn = db.begin_write().map_err(storage)?;
        txn.open_table(ENTRIES).map_err(storage)?;
        txn.commit().map_err(storage)?;
        Ok(RedbKv { db })
    }
}

impl KvStore for RedbKv {
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_entry(table, key)?;
        let txn = self.db.begin_read().map_err(storage)?;
        let entries = txn.open_table(ENTRIES).map_err(storage)?;
        let value = entries
            .get(composite(table, key).as_str())
            .map_err(storage)?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    fn put(&self, table: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
        check_entry(table, key)?;
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut entries = txn.open_table(ENTRIES).map_err(storage)?;
            entries
                .insert(composite(table, key).as_str(), value)
                .map_err(storage)?;
        }
        // redb's default durability: the commit is on disk when this returns.
        txn.commit().map_err(storage)
    }

    fn delete(&self, table: &str, key: &str) -> Result<bool, KvError> {
        check_entry(table, key)?;
        let txn = self.db.begin_write().map_err(storage)?;
        let existed = {
            let mut entries = txn.open_table(ENTRIES).map_err(storage)?;
            let removed = entries
                .remove(composite(table, key).as_str())
                .map_err(storage)?;
            removed.is_some()
        };
        txn.commit().map_err(storage)?;
        Ok(existed)
    }

    fn list_prefix(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, KvError> {
        check_list(table, prefix)?;
        let (start, full_prefix) = prefix_range(table, prefix, start_after);
        let txn = self.db.begin_read().map_err(storage)?;
        let entries = txn.open_table(ENTRIES).map_err(storage)?;
        let start = match &start {
            Bound::Included(s) => Bound::Included(s.as_str()),
            Bound::Excluded(s) => Bound::Excluded(s.as_str()),
            Bound::Unbounded => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for item in entries
            .range::<&str>((start, Bound::Unbounded))
            .map_err(storage)?
        {
            let (k, v) = item.map_err(storage)?;
            let k = k.value();
            if !k.starts_with(&full_prefix) || out.len() >= limit {
                break;
            }
            out.push((k[table.len() + 1..].to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(store: &dyn KvStore) {
        assert_eq!(store.get("t", "a").unwrap(), None);
        store.put("t", "user#2", b"two").unwrap();
        store.put("t", "user#1", b"one").unwrap();
        store.put("t", "other", b"x").unwrap();
        store.put("t2", "user#3", b"elsewhere").unwrap();
        assert_eq!(
            store.get("t", "user#1").unwrap().as_deref(),
            Some(&b"one"[..])
        );
        let listed = store.list_prefix("t", "user#", None, 10).unwrap();
        let keys: Vec<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["user#1", "user#2"]);
        let page = store.list_prefix("t", "user#", Some("user#1"), 10).unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].0, "user#2");
        assert_eq!(store.list_prefix("t", "", None, 2).unwrap().len(), 2);
        assert!(store.delete("t", "user#1").unwrap());
        assert!(!store.delete("t", "user#1").unwrap());
        assert_eq!(store.get("t", "user#1").unwrap(), None);
        assert!(matches!(
            store.put("", "k", b""),
            Err(KvError::InvalidName(_))
        ));
        assert!(matches!(
            store.get("t", &"k".repeat(2000)),
            Err(KvError::InvalidName(_))
        ));
        assert!(matches!(
            store.get("t\0x", "k"),
            Err(KvError::InvalidName(_))
        ));
    }

    #[test]
    fn memory_store_behaves() {
        exercise(&MemoryKv::new());
    }

    #[test]
    fn redb_store_behaves_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/kv.redb");
        {
            let store = RedbKv::open(&path).unwrap();
            exercise(&store);
            store.put("t", "kept", b"yes").unwrap();
        }
        let store = RedbKv::open(&path).unwrap();
        assert_eq!(
            store.get("t", "kept").unwrap().as_deref(),
            Some(&b"yes"[..])
        );
        assert_eq!(
            store.get("t", "user#2").unwrap().as_deref(),
            Some(&b"two"[..])
        );
    }
}
