//! The client's address: the one place that reads it from a request (the `SocketAddr` an
//! embedder or portico-serve puts in the request's extensions).

use std::net::{IpAddr, SocketAddr};

/// The client's IP address, when the server put its `SocketAddr` in the extensions.
pub(crate) fn peer_ip(extensions: &http::Extensions) -> Option<IpAddr> {
    extensions.get::<SocketAddr>().map(SocketAddr::ip)
}

/// The client's IP address as text (`$context.identity.sourceIp`), empty when unknown.
pub(crate) fn source_ip(parts: &http::request::Parts) -> String {
    peer_ip(&parts.extensions)
        .map(|ip| ip.to_string())
        .unwrap_or_default()
}
