//! The host's key-value store: durable, shared by every plugin of the gateway, split into named
//! tables (a plugin usually takes its table name from a stage variable).

use std::fmt;

use serde::{de::DeserializeOwned, Serialize};

use crate::Error;

/// Why a store operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvError {
    /// The table or key is not acceptable (empty, or over 1024 bytes).
    InvalidName(String),
    /// The store itself failed (disk, connection).
    Storage(String),
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::InvalidName(m) => write!(f, "invalid table or key name: {m}"),
            KvError::Storage(m) => write!(f, "key-value store failed: {m}"),
        }
    }
}

impl std::error::Error for KvError {}

/// The value of `key` in `table`, if any.
pub fn get(table: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
    imp::get(table, key)
}

/// The value of `key` in `table` parsed as JSON, if any.
pub fn get_json<T: DeserializeOwned>(table: &str, key: &str) -> Result<Option<T>, Error> {
    match get(table, key)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        None => Ok(None),
    }
}

/// Sets `key` in `table`; durable once it returns.
pub fn put(table: &str, key: &str, value: impl AsRef<[u8]>) -> Result<(), KvError> {
    imp::put(table, key, value.as_ref())
}

/// Sets `key` in `table` to `value` as JSON.
pub fn put_json<T: Serialize + ?Sized>(table: &str, key: &str, value: &T) -> Result<(), Error> {
    put(table, key, serde_json::to_vec(value)?)?;
    Ok(())
}

/// Removes `key` from `table`; whether it was there.
pub fn delete(table: &str, key: &str) -> Result<bool, KvError> {
    imp::delete(table, key)
}

/// Up to `limit` entries of `table` whose keys start with `prefix`, in key order, starting
/// after `start_after` when given (pass the last key of a page to get the next).
pub fn list_prefix(
    table: &str,
    prefix: &str,
    start_after: Option<&str>,
    limit: u32,
) -> Result<Vec<(String, Vec<u8>)>, KvError> {
    imp::list_prefix(table, prefix, start_after, limit)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::KvError;
    use crate::wit::integration::portico::plugin::kv as host;

    fn convert(e: host::KvError) -> KvError {
        match e {
            host::KvError::InvalidName(m) => KvError::InvalidName(m),
            host::KvError::Storage(m) => KvError::Storage(m),
        }
    }

    pub fn get(table: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        host::get(table, key).map_err(convert)
    }

    pub fn put(table: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
        host::put(table, key, value).map_err(convert)
    }

    pub fn delete(table: &str, key: &str) -> Result<bool, KvError> {
        host::delete(table, key).map_err(convert)
    }

    pub fn list_prefix(
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, Vec<u8>)>, KvError> {
        host::list_prefix(table, prefix, start_after, limit).map_err(convert)
    }
}

#[cfg(not(target_arch = "wasm32"))]
use crate::testing::kv as imp;
