//! API Gateway's header rules for HTTP proxy integrations, both ways. They differ between the
//! two kinds of API (the API's `protocol`):
//!
//! - **Both**: hop-by-hop headers (RFC 9110 §7.6.1: `Connection` and every header it names,
//!   `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`, and the
//!   proxy's own `Proxy-Authenticate`/`Proxy-Authorization`) are dropped both ways; `Host` is
//!   the upstream's; `Content-Length` and `Expect` are the client's framing of a body the
//!   gateway has already read, so the upstream request gets its own. Several `Cookie` lines
//!   (HTTP/2 clients split them) become one, as HTTP/1.1 wants (RFC 9113 §8.2.3).
//! - **REST APIs** (`HTTP_PROXY`): the client's address is appended to `X-Forwarded-For`,
//!   `X-Amzn-Apigateway-Api-Id` names the API, and `Content-MD5`, `Max-Forwards`, `Server`,
//!   `Via` and `WWW-Authenticate` are dropped from the request; in the response the upstream's
//!   `Connection`, `Content-Length`, `Date` and `Server` are renamed `x-amzn-Remapped-*` and
//!   its `Via` dropped. Recorded against AWS in LocalStack's snapshot
//!   `test_apigateway_header_remapping_http[HTTP_PROXY]`
//!   (tests/aws/services/apigateway/test_apigateway_integrations.snapshot.json, recorded
//!   2024-12-11: what the upstream received, and the `x-amzn-Remapped-*` headers the client
//!   got) and `test_http_integration_with_lambda[HTTP_PROXY]`
//!   (test_apigateway_http.snapshot.json: `x-forwarded-for` at the upstream).
//! - **HTTP APIs** (`http_proxy`): "HTTP APIs translate incoming `X-Forwarded-*` headers into
//!   a standard `Forwarded` header and will append the egress IP, Host, and protocol" (API
//!   Gateway Developer Guide, "Amazon API Gateway important notes", for HTTP APIs): the
//!   client's `X-Forwarded-For`/`-Host`/`-Proto`/`-Port` become `Forwarded` elements
//!   (RFC 7239) and one for this hop (`for=CLIENT;host=HOST;proto=http`) is appended. Response
//!   headers pass on but for the hop-by-hop ones.
//!
//! The client's own `X-Forwarded-For` is passed on, never trusted: the gateway's idea of the
//! client (`$context.identity.sourceIp`) is the connection's address, and the entry it appends
//! is that address.

use std::net::IpAddr;

use http::header::{
    HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, COOKIE, DATE, EXPECT, FORWARDED, HOST,
    PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, SERVER, TE, TRAILER, TRANSFER_ENCODING, UPGRADE, VIA,
};
use http::request::Parts;
use http::HeaderMap;

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const API_ID: HeaderName = HeaderName::from_static("x-amzn-apigateway-api-id");

/// Hop-by-hop headers: never passed on, either way.
const HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
];

/// What a REST API drops from the request besides the hop-by-hop headers (LocalStack's
/// recorded snapshot, see the module's documentation).
const REST_REQUEST_DROPPED: [HeaderName; 5] = [
    HeaderName::from_static("content-md5"),
    HeaderName::from_static("max-forwards"),
    SERVER,
    VIA,
    http::header::WWW_AUTHENTICATE,
];

/// The upstream response headers a REST API renames `x-amzn-Remapped-NAME`.
const REST_REMAPPED: [(HeaderName, HeaderName); 4] = [
    (
        CONNECTION,
        HeaderName::from_static("x-amzn-remapped-connection"),
    ),
    (
        CONTENT_LENGTH,
        HeaderName::from_static("x-amzn-remapped-content-length"),
    ),
    (DATE, HeaderName::from_static("x-amzn-remapped-date")),
    (SERVER, HeaderName::from_static("x-amzn-remapped-server")),
];

/// What the upstream request needs to know beyond the client's request.
pub(super) struct Hop<'a> {
    /// The upstream's `Host`.
    pub(super) upstream: &'a str,
    /// REST API semantics.
    pub(super) rest: bool,
    /// The API's id, for REST's `X-Amzn-Apigateway-Api-Id`.
    pub(super) api_id: &'a HeaderValue,
    /// The client's address, from its connection (never from its headers).
    pub(super) client: Option<std::net::IpAddr>,
}

/// The headers the upstream gets for the client's request `parts`.
pub(super) fn to_upstream(parts: &Parts, hop: &Hop<'_>) -> HeaderMap {
    let incoming = &parts.headers;
    let named = connection_named(incoming);
    let mut headers = HeaderMap::with_capacity(incoming.len() + 3);
    let mut cookies: Vec<&[u8]> = Vec::new();
    for (name, value) in incoming {
        let dropped = HOP_BY_HOP.contains(name)
            || named.contains(name)
            || [HOST, CONTENT_LENGTH, EXPECT].contains(name)
            || (hop.rest && REST_REQUEST_DROPPED.contains(name))
            || (!hop.rest && is_x_forwarded(name));
        if dropped {
            continue;
        }
        if name == COOKIE {
            cookies.push(value.as_bytes());
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    if !cookies.is_empty() {
        if let Ok(value) = HeaderValue::from_bytes(&cookies.join(&b"; "[..])) {
            headers.insert(COOKIE, value);
        }
    }
    if let Ok(host) = HeaderValue::from_str(hop.upstream) {
        headers.insert(HOST, host);
    }
    let client = hop.client;
    if hop.rest {
        if let Some(value) = appended_x_forwarded_for(incoming, client) {
            headers.insert(X_FORWARDED_FOR, value);
        }
        headers.insert(API_ID, hop.api_id.clone());
    } else if let Some(value) = forwarded(parts, client) {
        headers.insert(FORWARDED, value);
    }
    headers
}

/// The headers the client gets for the upstream's `upstream` headers; `head` when the
/// client's request was a `HEAD` (whose answer keeps the upstream's `Content-Length`, as
/// there is no body to count).
pub(super) fn to_client(upstream: HeaderMap, rest: bool, head: bool) -> HeaderMap {
    let named = connection_named(&upstream);
    let mut headers = HeaderMap::with_capacity(upstream.len());
    let mut current: Option<HeaderName> = None;
    for (name, value) in upstream {
        // `HeaderMap`'s owned iterator names a header once, before the first of its values.
        let name = match name {
            Some(name) => {
                current = Some(name.clone());
                name
            }
            None => match &current {
                Some(name) => name.clone(),
                None => continue,
            },
        };
        if rest {
            if let Some((_, remapped)) = REST_REMAPPED.iter().find(|(from, _)| *from == name) {
                headers.append(remapped.clone(), value);
                continue;
            }
            if name == VIA {
                continue;
            }
        } else if name == CONTENT_LENGTH && !head {
            // The gateway's answer counts its own body.
            continue;
        }
        if HOP_BY_HOP.contains(&name) || named.contains(&name) {
            continue;
        }
        headers.append(name, value);
    }
    headers
}

/// The headers a `Connection` header names (hop-by-hop too, RFC 9110 §7.6.1).
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect()
}

fn is_x_forwarded(name: &HeaderName) -> bool {
    [
        &X_FORWARDED_FOR,
        &X_FORWARDED_HOST,
        &X_FORWARDED_PROTO,
        &X_FORWARDED_PORT,
    ]
    .contains(&name)
}

/// The client's `X-Forwarded-For` (its lines joined) with `client` appended; `None` when
/// there is nothing to send.
fn appended_x_forwarded_for(incoming: &HeaderMap, client: Option<IpAddr>) -> Option<HeaderValue> {
    let mut value: Vec<u8> = Vec::new();
    for line in incoming.get_all(X_FORWARDED_FOR) {
        let line = line.as_bytes().trim_ascii();
        if line.is_empty() {
            continue;
        }
        if !value.is_empty() {
            value.extend_from_slice(b", ");
        }
        value.extend_from_slice(line);
    }
    if let Some(client) = client {
        if !value.is_empty() {
            value.extend_from_slice(b", ");
        }
        value.extend_from_slice(client.to_string().as_bytes());
    }
    if value.is_empty() {
        return None;
    }
    HeaderValue::from_bytes(&value).ok()
}

/// HTTP APIs' `Forwarded`: the client's own `Forwarded` elements, then its `X-Forwarded-For`
/// addresses as `for=` elements (the first also with the `X-Forwarded-Host`/`-Proto` it
/// sent), then this hop: `for=CLIENT;host=HOST;proto=SCHEME`.
fn forwarded(parts: &Parts, client: Option<IpAddr>) -> Option<HeaderValue> {
    let incoming = &parts.headers;
    let mut elements: Vec<String> = incoming
        .get_all(FORWARDED)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
        .collect();
    let first_text = |name: &HeaderName| {
        incoming
            .get(name)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(',').next())
            .map(str::trim)
            .filter(|value| !value.is_empty())
    };
    let forwarded_for = incoming
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty());
    for (i, entry) in forwarded_for.enumerate() {
        let mut element = format!("for={}", node(entry));
        if i == 0 {
            if let Some(host) = first_text(&X_FORWARDED_HOST) {
                element.push_str(&format!(";host={}", token_or_quoted(host)));
            }
            if let Some(proto) = first_text(&X_FORWARDED_PROTO) {
                element.push_str(&format!(";proto={}", token_or_quoted(proto)));
            }
        }
        elements.push(element);
    }
    let client = client.map_or_else(|| "unknown".to_owned(), |ip| node(&ip.to_string()));
    let mut own = format!("for={client}");
    let host = incoming
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    if let Some(host) = host {
        own.push_str(&format!(";host={}", token_or_quoted(host)));
    }
    // The scheme the client used, when the request says it (HTTP/2's `:scheme`); a plain
    // HTTP/1.1 request line does not, and Portico's own listener is plain HTTP.
    own.push_str(&format!(
        ";proto={}",
        parts.uri.scheme_str().unwrap_or("http")
    ));
    elements.push(own);
    HeaderValue::from_str(&elements.join(", ")).ok()
}

/// An RFC 7239 node: an IPv6 address bracketed and quoted, anything else a token or quoted.
fn node(address: &str) -> String {
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("\"[{v6}]\""),
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => token_or_quoted(address),
    }
}

/// `text` as an RFC 7230 token when it is one, else as a quoted-string.
fn token_or_quoted(text: &str) -> String {
    let is_tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if !text.is_empty() && text.chars().all(is_tchar) {
        return text.to_owned();
    }
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn parts(headers: &[(&str, &str)], peer: Option<&str>) -> Parts {
        let mut request = http::Request::post("/orders/7").body(()).unwrap();
        for (name, value) in headers {
            request.headers_mut().append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        if let Some(peer) = peer {
            request
                .extensions_mut()
                .insert(peer.parse::<SocketAddr>().unwrap());
        }
        request.into_parts().0
    }

    fn upstream(parts: &Parts, rest: bool) -> HeaderMap {
        let api_id = HeaderValue::from_static("api-1");
        to_upstream(
            parts,
            &Hop {
                upstream: "backend:8080",
                rest,
                api_id: &api_id,
                client: crate::net::peer_ip(&parts.extensions),
            },
        )
    }

    fn names(headers: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        names
    }

    const CLIENT: &[(&str, &str)] = &[
        ("host", "api.example.com"),
        ("accept", "application/json"),
        ("authorization", "Bearer t"),
        ("connection", "keep-alive, x-hop"),
        ("x-hop", "1"),
        ("keep-alive", "timeout=5"),
        ("te", "trailers"),
        ("upgrade", "h2c"),
        ("transfer-encoding", "chunked"),
        ("content-length", "2"),
        ("expect", "100-continue"),
        ("content-md5", "x"),
        ("max-forwards", "2"),
        ("server", "s"),
        ("via", "1.1 p"),
        ("www-authenticate", "Basic"),
        ("proxy-authorization", "Basic x"),
        ("cookie", "a=1"),
        ("cookie", "b=2"),
        ("user-agent", "curl/8"),
        ("x-forwarded-for", "203.0.113.9, 198.51.100.2"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "shop.example.com"),
    ];

    #[test]
    fn rest_appends_x_forwarded_for_and_drops_what_aws_drops() {
        let headers = upstream(&parts(CLIENT, Some("192.0.2.7:5555")), true);
        assert_eq!(
            names(&headers),
            [
                "accept",
                "authorization",
                "cookie",
                "host",
                "user-agent",
                "x-amzn-apigateway-api-id",
                "x-forwarded-for",
                "x-forwarded-host",
                "x-forwarded-proto",
            ]
        );
        assert_eq!(headers[HOST], "backend:8080");
        assert_eq!(
            headers[X_FORWARDED_FOR],
            "203.0.113.9, 198.51.100.2, 192.0.2.7"
        );
        assert_eq!(headers[COOKIE], "a=1; b=2");
        assert_eq!(headers[API_ID], "api-1");
        // No client address known: the client's list passes on as it is.
        let headers = upstream(&parts(&[("x-forwarded-for", "203.0.113.9")], None), true);
        assert_eq!(headers[X_FORWARDED_FOR], "203.0.113.9");
        let headers = upstream(&parts(&[], Some("[2001:db8::1]:443")), true);
        assert_eq!(headers[X_FORWARDED_FOR], "2001:db8::1");
    }

    #[test]
    fn http_apis_translate_x_forwarded_into_forwarded() {
        let headers = upstream(&parts(CLIENT, Some("192.0.2.7:5555")), false);
        assert_eq!(
            names(&headers),
            [
                "accept",
                "authorization",
                "content-md5",
                "cookie",
                "forwarded",
                "host",
                "max-forwards",
                "server",
                "user-agent",
                "via",
                "www-authenticate",
            ]
        );
        assert_eq!(
            headers[FORWARDED],
            "for=203.0.113.9;host=shop.example.com;proto=https, for=198.51.100.2, for=192.0.2.7;host=api.example.com;proto=http"
        );
        let headers = upstream(
            &parts(
                &[("forwarded", "for=198.51.100.1"), ("host", "h:8080")],
                Some("[2001:db8::1]:443"),
            ),
            false,
        );
        assert_eq!(
            headers[FORWARDED],
            "for=198.51.100.1, for=\"[2001:db8::1]\";host=\"h:8080\";proto=http"
        );
        let headers = upstream(&parts(&[("x-forwarded-for", "bad\"one")], None), false);
        assert_eq!(
            headers[FORWARDED],
            "for=\"bad\\\"one\", for=unknown;proto=http"
        );
    }

    #[test]
    fn responses_lose_hop_by_hop_headers_and_rest_remaps_some() {
        let mut upstream = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("content-length", "10"),
            ("content-type", "application/json"),
            ("date", "Mon, 30 Nov 2026 10:00:00 GMT"),
            ("server", "gunicorn"),
            ("via", "1.1 cache"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
        ] {
            upstream.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let rest = to_client(upstream.clone(), true, false);
        assert_eq!(
            names(&rest),
            [
                "content-type",
                "set-cookie",
                "x-amzn-remapped-connection",
                "x-amzn-remapped-content-length",
                "x-amzn-remapped-date",
                "x-amzn-remapped-server",
            ]
        );
        assert_eq!(rest["x-amzn-remapped-server"], "gunicorn");
        assert_eq!(rest.get_all("set-cookie").iter().count(), 2);
        let http = to_client(upstream.clone(), false, false);
        assert_eq!(
            names(&http),
            ["content-type", "date", "server", "set-cookie", "via"]
        );
        assert_eq!(http.get_all("set-cookie").iter().count(), 2);
        let head = to_client(upstream, false, true);
        assert_eq!(head[CONTENT_LENGTH], "10");
    }
}
