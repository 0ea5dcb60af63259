//! The HTTP client an `http_proxy` integration sends its requests through: a trait the
//! embedder implements (Portico opens no sockets itself; portico-serve supplies one on
//! hyper-util's pooled client).

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;

/// The body of an upstream's response as an [`HttpClient`] hands it over: still streaming
/// in, so that the gateway reads it under its own limits (10 MB, the integration's timeout).
/// A hyper `Incoming` body becomes one with
/// `body.map_err(Into::into).boxed_unsync()` (`http_body_util::BodyExt`).
pub type UpstreamBody = UnsyncBoxBody<Bytes, Box<dyn StdError + Send + Sync>>;

/// What [`HttpClient::send`] returns.
pub type HttpClientFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Response<UpstreamBody>, HttpClientError>> + Send + 'a>>;

/// Sends the requests of `http_proxy` integrations; supplied by the embedder with
/// `GatewayBuilder::http_client` (Portico itself never opens sockets).
///
/// The request's URI is absolute (`http://` or `https://`), its headers are final (`Host`
/// included) and its body is whole. The client answers as soon as the response's head is
/// in; the gateway reads the body itself. It needs no timeout of its own: the gateway stops
/// waiting (and drops the future and the body) after the integration's `timeoutMs`.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Full};
/// use portico::{HttpClient, HttpClientError, HttpClientFuture};
///
/// /// Answers every request with 204 and no body, without any network.
/// struct NoContent;
///
/// impl HttpClient for NoContent {
///     fn send(&self, request: http::Request<Bytes>) -> HttpClientFuture<'_> {
///         Box::pin(async move {
///             if request.uri().host().is_none() {
///                 return Err(HttpClientError::new("no host"));
///             }
///             let body = Full::new(Bytes::new()).map_err(|never| match never {}).boxed_unsync();
///             let mut response = http::Response::new(body);
///             *response.status_mut() = http::StatusCode::NO_CONTENT;
///             Ok(response)
///         })
///     }
/// }
/// ```
pub trait HttpClient: Send + Sync + 'static {
    /// Sends `request` and returns the upstream's response once its head has arrived.
    fn send(&self, request: Request<Bytes>) -> HttpClientFuture<'_>;
}

/// Why an [`HttpClient`] got no response: the connection was refused or broke, the name did
/// not resolve, TLS failed, ... The gateway answers 502 and writes the message (with the
/// messages of its sources) to the access log's `$context.integrationErrorMessage`.
#[derive(Debug)]
#[non_exhaustive]
pub struct HttpClientError {
    cause: Box<dyn StdError + Send + Sync>,
}

impl HttpClientError {
    /// A failure because of `cause`: an HTTP client's or an I/O error, or a message (`&str`
    /// and `String` convert).
    pub fn new(cause: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        HttpClientError {
            cause: cause.into(),
        }
    }
}

/// The cause's message followed by its sources' (`client error (Connect): tcp connect error:
/// Connection refused`): HTTP clients often keep the useful part in a source.
impl fmt::Display for HttpClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.cause)?;
        let mut source = self.cause.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

impl StdError for HttpClientError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("client error (Connect)")
        }
    }

    impl StdError for Outer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn the_message_carries_the_sources() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = HttpClientError::new(Outer(refused));
        assert_eq!(error.to_string(), "client error (Connect): refused");
        assert_eq!(HttpClientError::new("plain").to_string(), "plain");
    }
}
