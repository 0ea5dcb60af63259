//! The error a plugin hands back to the host.

use std::fmt;

/// Why an integration could not answer: the client gets a 5xx (HTTP API 500, REST 502) and the
/// host logs the message.
///
/// Any `std::error::Error` converts into it, so `?` works on JSON, kv and other errors, as with
/// `anyhow`. It deliberately does not implement `std::error::Error` itself (that would
/// conflict with the blanket conversion).
pub struct Error {
    message: String,
}

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The message (for the host's log, never shown to the client).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The message, owned.
    pub fn into_message(self) -> String {
        self.message
    }
}

impl<E: std::error::Error> From<E> for Error {
    /// The error's message followed by its sources' (`a: b: c`).
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self { message }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({:?})", self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_errors_convert_with_their_message() {
        let e: Error = serde_json::from_str::<u8>("x").unwrap_err().into();
        assert!(e.message().starts_with("expected value"), "{e}");
        assert_eq!(Error::new("boom").to_string(), "boom");
    }
}
