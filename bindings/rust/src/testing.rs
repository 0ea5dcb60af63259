//! In-memory stand-ins for the host's services, used when a plugin is compiled for the host
//! (`cargo test`) instead of wasm32. State is per thread, so parallel tests do not meet.
//!
//! ```ignore
//! portico_plugin::testing::set_config("issuer", "https://issuer.example");
//! let response = handle(request);
//! assert_eq!(portico_plugin::testing::logs()[0].1, "created user");
//! ```

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use crate::log::Level;

#[derive(Default)]
struct State {
    kv: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    config: HashMap<String, String>,
    logs: Vec<(Level, String)>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::default();
}

fn with<T>(f: impl FnOnce(&mut State) -> T) -> T {
    STATE.with(|s| f(&mut s.borrow_mut()))
}

/// Forgets this thread's store, configuration and log.
pub fn reset() {
    with(|s| *s = State::default());
}

/// Sets a configuration value that `config::get` will return.
pub fn set_config(key: impl Into<String>, value: impl Into<String>) {
    with(|s| s.config.insert(key.into(), value.into()));
}

/// The lines logged so far on this thread.
pub fn logs() -> Vec<(Level, String)> {
    with(|s| s.logs.clone())
}

/// Every entry of `table`, in key order.
pub fn kv_entries(table: &str) -> Vec<(String, Vec<u8>)> {
    with(|s| {
        s.kv.get(table)
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    })
}

pub(crate) mod kv {
    use super::with;
    use crate::kv::KvError;

    /// The host's rule: names are neither empty nor over 1024 bytes.
    fn check(table: &str, key: &str) -> Result<(), KvError> {
        for name in [table, key] {
            if name.is_empty() || name.len() > 1024 {
                return Err(KvError::InvalidName(format!("{} bytes", name.len())));
            }
        }
        Ok(())
    }

    pub fn get(table: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check(table, key)?;
        Ok(with(|s| s.kv.get(table).and_then(|t| t.get(key)).cloned()))
    }

    pub fn put(table: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
        check(table, key)?;
        with(|s| {
            s.kv.entry(table.to_owned())
                .or_default()
                .insert(key.to_owned(), value.to_vec())
        });
        Ok(())
    }

    pub fn delete(table: &str, key: &str) -> Result<bool, KvError> {
        check(table, key)?;
        Ok(with(|s| {
            s.kv.get_mut(table).and_then(|t| t.remove(key)).is_some()
        }))
    }

    pub fn list_prefix(
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, Vec<u8>)>, KvError> {
        check(table, "-")?;
        Ok(with(|s| {
            let Some(t) = s.kv.get(table) else {
                return Vec::new();
            };
            t.range(prefix.to_owned()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .filter(|(k, _)| start_after.is_none_or(|after| k.as_str() > after))
                .take(limit as usize)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }))
    }
}

pub(crate) mod log {
    use super::with;
    use crate::log::Level;

    pub fn log(level: Level, message: &str) {
        eprintln!("[{level:?}] {message}");
        with(|s| s.logs.push((level, message.to_owned())));
    }
}

pub(crate) mod config {
    use super::with;

    pub fn get(key: &str) -> Option<String> {
        with(|s| s.config.get(key).cloned())
    }
}

#[cfg(test)]
mod tests {
    use crate::{config, kv, log};

    #[test]
    fn kv_stand_in_behaves_like_the_store() {
        super::reset();
        kv::put("t", "USER#2", "b").unwrap();
        kv::put("t", "USER#1", "a").unwrap();
        kv::put("t", "OTHER", "c").unwrap();
        assert_eq!(kv::get("t", "USER#1").unwrap(), Some(b"a".to_vec()));
        assert_eq!(kv::get("t", "nope").unwrap(), None);
        let keys = |v: Vec<(String, Vec<u8>)>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(
            keys(kv::list_prefix("t", "USER#", None, 10).unwrap()),
            ["USER#1", "USER#2"]
        );
        assert_eq!(
            keys(kv::list_prefix("t", "USER#", Some("USER#1"), 10).unwrap()),
            ["USER#2"]
        );
        assert_eq!(
            keys(kv::list_prefix("t", "USER#", None, 1).unwrap()),
            ["USER#1"]
        );
        assert!(kv::delete("t", "USER#1").unwrap());
        assert!(!kv::delete("t", "USER#1").unwrap());
        assert!(matches!(kv::get("", "k"), Err(kv::KvError::InvalidName(_))));
        assert!(matches!(
            kv::put("t", &"k".repeat(1025), "v"),
            Err(kv::KvError::InvalidName(_))
        ));
    }

    #[test]
    fn config_and_log_stand_ins() {
        super::reset();
        assert_eq!(config::get("issuer"), None);
        super::set_config("issuer", "me");
        assert_eq!(config::get("issuer").as_deref(), Some("me"));
        log::info(format_args!("hello {}", 1));
        assert_eq!(super::logs(), [(log::Level::Info, "hello 1".to_owned())]);
    }
}
