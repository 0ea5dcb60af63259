//! The host's log: lines go to the host's `tracing`, tagged with the plugin's name.
//!
//! `portico_plugin::log::info(format_args!("user {id} created"))`.

use std::fmt::Display;

/// Severity, as in `tracing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very verbose.
    Trace,
    /// For debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that was handled.
    Warn,
    /// Something failed.
    Error,
}

/// Writes one line at `level`.
pub fn log(level: Level, message: impl Display) {
    imp::log(level, &message.to_string());
}

/// Writes one line at trace level.
pub fn trace(message: impl Display) {
    log(Level::Trace, message)
}

/// Writes one line at debug level.
pub fn debug(message: impl Display) {
    log(Level::Debug, message)
}

/// Writes one line at info level.
pub fn info(message: impl Display) {
    log(Level::Info, message)
}

/// Writes one line at warn level.
pub fn warn(message: impl Display) {
    log(Level::Warn, message)
}

/// Writes one line at error level.
pub fn error(message: impl Display) {
    log(Level::Error, message)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::Level;
    use crate::wit::integration::portico::plugin::log as host;

    pub fn log(level: Level, message: &str) {
        let level = match level {
            Level::Trace => host::Level::Trace,
            Level::Debug => host::Level::Debug,
            Level::Info => host::Level::Info,
            Level::Warn => host::Level::Warn,
            Level::Error => host::Level::Error,
        };
        host::log(level, message);
    }
}

#[cfg(not(target_arch = "wasm32"))]
use crate::testing::log as imp;
