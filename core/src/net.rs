//! What the wire gives, read one way everywhere: the client's address (the `SocketAddr` an
//! embedder puts in the request's extensions, or gives the gateway beside the request, as
//! portico-serve does), and the request's bytes as text.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

/// The client's IP address, when the server put its `SocketAddr` in the extensions.
pub(crate) fn peer_ip(extensions: &http::Extensions) -> Option<IpAddr> {
    extensions.get::<SocketAddr>().map(SocketAddr::ip)
}

/// The client's IP address as text (`$context.identity.sourceIp`), empty when unknown.
pub(crate) fn source_ip(peer: Option<IpAddr>) -> String {
    peer.map(|ip| ip.to_string()).unwrap_or_default()
}

/// Bytes from the request (a header value, a body) as text: borrowed when they are UTF-8, the
/// usual case, checked by `str::from_utf8` (which validates ASCII a word at a time, where
/// `String::from_utf8_lossy` goes byte by byte), else with U+FFFD for the bad bytes.
pub(crate) fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}
