//! The plugin's own settings: the `config` map of its entry under `plugins` in the API
//! definition. Read-only.

/// The value of `key`, if the plugin's configuration has it.
pub fn get(key: &str) -> Option<String> {
    imp::get(key)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    pub use crate::wit::integration::portico::plugin::config::get;
}

#[cfg(not(target_arch = "wasm32"))]
use crate::testing::config as imp;
