//! The client's address: the one place that reads it from a request (the `SocketAddr` an
//! embedder puts in the request's extensions, or gives the gateway beside the request, as
//! portico-serve does).

use std::net::{IpAddr, SocketAddr};

/// The client's IP address, when the server put its `SocketAddr` in the extensions.
pub(crate) fn peer_ip(extensions: &http::Extensions) -> Option<IpAddr> {
    extensions.get::<SocketAddr>().map(SocketAddr::ip)
}

/// The client's IP address as text (`$context.identity.sourceIp`), empty when unknown.
pub(crate) fn source_ip(peer: Option<IpAddr>) -> String {
    peer.map(|ip| ip.to_string()).unwrap_or_default()
}
