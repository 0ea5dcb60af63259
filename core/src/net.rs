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
    match peer {
        // An IPv4 address octet by octet with itoa: `Ipv4Addr`'s `Display` runs the formatting
        // machinery for each octet (about 1,100 instructions a request under callgrind, for
        // every plugin call, Lambda event and authorizer context that carries the address).
        Some(IpAddr::V4(ip)) => {
            let mut text = String::with_capacity(15);
            let mut digits = itoa::Buffer::new();
            for (i, octet) in ip.octets().into_iter().enumerate() {
                if i > 0 {
                    text.push('.');
                }
                text.push_str(digits.format(octet));
            }
            text
        }
        Some(ip) => ip.to_string(),
        None => String::new(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_ips_read_as_std_writes_them() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "192.0.2.7",
            "10.200.30.255",
            "255.255.255.255",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:192.0.2.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(source_ip(Some(ip)), ip.to_string());
        }
        assert_eq!(source_ip(None), "");
    }
}
