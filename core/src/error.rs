//! The crate's one error type, and the key paths that locate a configuration error.

use std::fmt;
use std::path::{Path, PathBuf};

/// Everything that can go wrong while loading or compiling an API definition.
///
/// Request-path failures never surface as `Error`: they become AWS gateway responses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The definition file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The definition is malformed or inconsistent; `key_path` says where.
    #[error("{}{key_path}: {message}", file.as_ref().map(|f| format!("{}: ", f.display())).unwrap_or_default())]
    Config {
        /// The definition file, when it came from one.
        file: Option<PathBuf>,
        /// Where in the definition (`routes."POST /users".requestModel`).
        key_path: KeyPath,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The key-value store could not be opened.
    #[error("cannot open the key-value store: {0}")]
    Store(#[from] crate::store::KvError),
    /// The WebAssembly runtime could not be set up.
    #[error("cannot start the plugin runtime: {0}")]
    PluginRuntime(String),
    /// A deployment operation (rollback, canary promotion or removal) names a stage,
    /// deployment or canary the gateway does not have.
    #[error("{0}")]
    Release(String),
    /// The fleet's Redis did not answer an operation that needs it (a stage cache flush with
    /// `responseCache: {type: redis}`); nothing was changed.
    #[error("{0}")]
    Unavailable(String),
    /// The definition asks for a feature this version does not implement yet.
    #[error("{}{key_path}: {feature} is not supported yet", file.as_ref().map(|f| format!("{}: ", f.display())).unwrap_or_default())]
    NotSupported {
        /// The definition file, when it came from one.
        file: Option<PathBuf>,
        /// Where in the definition.
        key_path: KeyPath,
        /// What is missing.
        feature: String,
    },
}

impl Error {
    pub(crate) fn config(key_path: KeyPath, message: impl Into<String>) -> Self {
        Error::Config {
            file: None,
            key_path,
            message: message.into(),
        }
    }

    pub(crate) fn not_supported(key_path: KeyPath, feature: impl Into<String>) -> Self {
        Error::NotSupported {
            file: None,
            key_path,
            feature: feature.into(),
        }
    }

    /// The key path of a configuration error, if it is one.
    pub fn key_path(&self) -> Option<&KeyPath> {
        match self {
            Error::Config { key_path, .. } | Error::NotSupported { key_path, .. } => Some(key_path),
            Error::Io { .. }
            | Error::Store(_)
            | Error::PluginRuntime(_)
            | Error::Release(_)
            | Error::Unavailable(_) => None,
        }
    }

    /// Attaches the file the definition came from (to a configuration error; other errors
    /// are returned as they are): what [`crate::Gateway::reload`]'s caller does with a
    /// definition it read from a file, so that the error names the file as a load's does.
    pub fn in_file(mut self, path: &Path) -> Self {
        if let Error::Config { file, .. } | Error::NotSupported { file, .. } = &mut self {
            *file = Some(path.to_path_buf());
        }
        self
    }
}

/// A path into the definition, printed the way the user wrote it:
/// `routes."POST /users".integration.statusCode`, `apiKeys[0].value`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(String);

impl KeyPath {
    /// The top of the definition.
    pub(crate) fn root() -> Self {
        KeyPath(String::new())
    }

    /// The path of `key` under this one; keys that are not plain words are quoted.
    pub(crate) fn key(&self, key: &str) -> Self {
        let plain = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$'));
        let mut path = self.0.clone();
        if !path.is_empty() {
            path.push('.');
        }
        if plain {
            path.push_str(key);
        } else {
            path.push('"');
            path.push_str(&key.replace('\\', "\\\\").replace('"', "\\\""));
            path.push('"');
        }
        KeyPath(path)
    }

    /// The path of item `index` of the list at this path.
    pub(crate) fn index(&self, index: usize) -> Self {
        KeyPath(format!("{}[{index}]", self.0))
    }

    /// This path followed by `rest`, the tail of another path as printed (`.integration.uri`,
    /// `[0]`): how the OpenAPI import moves a native key path onto the document's.
    pub(crate) fn join_printed(&self, rest: &str) -> Self {
        let rest = if self.0.is_empty() {
            rest.strip_prefix('.').unwrap_or(rest)
        } else {
            rest
        };
        KeyPath(format!("{}{rest}", self.0))
    }

    /// The path as text (empty at the root).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("(top level)")
        } else {
            f.write_str(&self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_quote_what_is_not_a_word() {
        let p = KeyPath::root()
            .key("routes")
            .key("POST /users")
            .key("requestModel");
        assert_eq!(p.to_string(), "routes.\"POST /users\".requestModel");
        assert_eq!(
            KeyPath::root()
                .key("apiKeys")
                .index(2)
                .key("value")
                .to_string(),
            "apiKeys[2].value"
        );
        assert_eq!(
            KeyPath::root().key("stages").key("$default").to_string(),
            "stages.$default"
        );
        assert_eq!(KeyPath::root().to_string(), "(top level)");
    }
}
