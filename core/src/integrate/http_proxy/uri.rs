//! An `http_proxy` integration's `uri`, compiled once per stage and route: the stage
//! variables put in at load, each `{name}` tied to the route's path segment it stands for,
//! and the result checked to be an absolute `http`/`https` URL. Per request the route's raw
//! (still percent-encoded) path segments fill the placeholders, and the client's query string
//! is passed on. On the `$default` route the request's whole path (without the stage) follows
//! the URL's path: "When the `$default` route receives a request, API Gateway sends the full
//! request path to the integration" (API Gateway Developer Guide, "Working with routes for
//! HTTP APIs", http-api-develop-routes.md).

use std::collections::BTreeMap;

use http::uri::{Authority, Scheme};
use http::Uri;

use crate::error::{Error, KeyPath};
use crate::template::{Segment, Template};

/// A `{name}` of the `uri`, resolved against the route key at load.
#[derive(Debug, Clone)]
pub(super) struct Placeholder {
    name: String,
    /// The route path's segment the name stands for (0 is the first after `/`), and whether
    /// it is the greedy `{name+}` (the rest of the path); `None` when the route has no such
    /// variable (a load error once parsing is done).
    segment: Option<(usize, bool)>,
}

/// A compiled `uri`.
#[derive(Debug, Clone)]
pub(super) struct UriTemplate {
    template: Template<Placeholder>,
    /// Whether the rendered URL already has a query, so that the client's is joined with `&`.
    has_query: bool,
    /// The `$default` route's: the request's path is appended to the URL's.
    full_path: bool,
    /// The upstream's `Host`: the URL's authority, the same for every request.
    authority: Authority,
    /// The URL's scheme, for a path a parameter mapping overwrites.
    scheme: Scheme,
}

impl UriTemplate {
    /// Compiles `uri` (found at `at`) for a route with key `route_key` in stage `stage`,
    /// whose variables are `variables`.
    pub(super) fn compile(
        uri: &str,
        variables: &BTreeMap<String, String>,
        route_key: &str,
        stage: &str,
        at: &KeyPath,
    ) -> Result<Self, Error> {
        let route_variables = path_variables(route_key);
        let template = Template::parse_uri(uri, variables, at, |name| Placeholder {
            name: name.to_owned(),
            segment: route_variables
                .iter()
                .find(|(n, _, _)| *n == name)
                .map(|&(_, segment, greedy)| (segment, greedy)),
        })?;
        // Say which stage's variables made the URL, when some did.
        let in_stage = if uri.contains("${stageVariables.") {
            format!(" (in stage \"{stage}\")")
        } else {
            String::new()
        };
        let mut before = String::new();
        for segment in template.segments() {
            match segment {
                Segment::Literal(text) => before.push_str(text),
                Segment::Var(Placeholder { name, segment, .. }) => {
                    if segment.is_none() {
                        return Err(Error::config(
                            at.clone(),
                            format!(
                                "\"{{{name}}}\" is not a path variable of route \"{route_key}\""
                            ),
                        ));
                    }
                    if !in_path(&before) {
                        return Err(Error::config(
                            at.clone(),
                            format!("\"{{{name}}}\" may only stand in the URL's path{in_stage}: the route's path parameters never choose the host or the query"),
                        ));
                    }
                }
            }
        }
        // What the URL is with every placeholder filled: its shape does not depend on them.
        let sample = template.render(|_, out| out.raw("x"));
        let bad = |why: &str| Error::config(at.clone(), format!("\"{sample}\"{in_stage} {why}"));
        if sample.contains('#') {
            return Err(bad("has a fragment (#): the backend's URL cannot"));
        }
        let parsed: Uri = sample
            .parse()
            .map_err(|_| bad("is not an absolute http or https URL"))?;
        let scheme_ok =
            parsed.scheme() == Some(&Scheme::HTTP) || parsed.scheme() == Some(&Scheme::HTTPS);
        let authority = match parsed.authority() {
            Some(authority) if scheme_ok && !authority.host().is_empty() => authority.clone(),
            _ => {
                return Err(bad(
                    "is not an absolute http or https URL (http://HOST/PATH)",
                ))
            }
        };
        if authority.as_str().contains('@') {
            return Err(bad("has credentials (user@): they are not supported"));
        }
        Ok(UriTemplate {
            scheme: parsed.scheme().cloned().unwrap_or(Scheme::HTTP),
            has_query: parsed.query().is_some(),
            full_path: route_key == "$default",
            template,
            authority,
        })
    }

    /// The upstream's `Host`.
    pub(super) fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The URL for a request to `path` (the raw path the route matched, without the stage)
    /// with the raw query string `query`; `overwrite`, a parameter mapping's
    /// `overwrite:path`, is the URL's path instead of the `uri`'s (its scheme, host and own
    /// query kept).
    pub(super) fn render(
        &self,
        path: &str,
        query: Option<&str>,
        overwrite: Option<&str>,
    ) -> Result<Uri, http::uri::InvalidUri> {
        let segments = PathSegments::of(path);
        let mut url = self.template.render(|placeholder, out| {
            if let Some((segment, greedy)) = placeholder.segment {
                out.raw(segments.get(segment, greedy));
            }
        });
        if let Some(overwrite) = overwrite {
            let own_query = url.split_once('?').map(|(_, q)| q.to_owned());
            let mut whole = format!("{}://{}", self.scheme, self.authority);
            whole.push_str(&encode_path(overwrite));
            if let Some(own_query) = own_query {
                whole.push('?');
                whole.push_str(&own_query);
            }
            url = whole;
        } else if self.full_path {
            // `$default` has no path variables: the URL is the same for every request.
            let (base, own_query) = match url.split_once('?') {
                Some((base, query)) => (base, Some(query)),
                None => (url.as_str(), None),
            };
            let mut whole = base.trim_end_matches('/').to_owned();
            whole.push_str(path);
            if let Some(own_query) = own_query {
                whole.push('?');
                whole.push_str(own_query);
            }
            url = whole;
        }
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            url.push(if self.has_query { '&' } else { '?' });
            url.push_str(query);
        }
        url.parse()
    }
}

/// A mapped path as a URL's path: characters a path may not hold (a space, `?`, `#`, `%` not
/// starting an escape...) percent-encoded, the rest (and `/`) as they are.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let bytes = path.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let escape_start = b == b'%'
            && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
        let keep = b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b) || escape_start;
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether a placeholder after `before` (the URL's text up to it) stands in the URL's path:
/// past `scheme://authority/` and before any `?`.
fn in_path(before: &str) -> bool {
    let Some(scheme_end) = before.find("://") else {
        return false;
    };
    before[scheme_end + 3..].contains('/') && !before.contains('?')
}

/// The path variables of `route_key` (`GET /orders/{id}/{proxy+}`): name, segment index and
/// whether greedy. `$default` has none.
fn path_variables(route_key: &str) -> Vec<(&str, usize, bool)> {
    let Some((_, path)) = route_key.split_once(' ') else {
        return Vec::new();
    };
    path.trim_start_matches('/')
        .split('/')
        .enumerate()
        .filter_map(|(i, segment)| {
            let inner = segment.strip_prefix('{')?.strip_suffix('}')?;
            Some(match inner.strip_suffix('+') {
                Some(name) => (name, i, true),
                None => (inner, i, false),
            })
        })
        .collect()
}

/// A request path's segments as the router saw them: one trailing slash ignored.
struct PathSegments<'p> {
    path: &'p str,
    /// Byte offset of each segment's start.
    starts: Vec<usize>,
}

impl<'p> PathSegments<'p> {
    fn of(path: &'p str) -> Self {
        let path = match path.strip_suffix('/') {
            Some(trimmed) if !trimmed.is_empty() && !trimmed.ends_with('/') => trimmed,
            _ => path,
        };
        let starts = path.match_indices('/').map(|(i, _)| i + 1).collect();
        PathSegments { path, starts }
    }

    /// Segment `index`, or when `greedy` everything from it on; empty past the end (the
    /// router matched the route, so that never happens).
    fn get(&self, index: usize, greedy: bool) -> &'p str {
        let Some(&start) = self.starts.get(index) else {
            return "";
        };
        if greedy {
            return &self.path[start..];
        }
        match self.starts.get(index + 1) {
            Some(&next) => &self.path[start..next - 1],
            None => &self.path[start..],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(uri: &str, route_key: &str) -> Result<UriTemplate, String> {
        let variables = BTreeMap::from([
            ("HOST".to_owned(), "orders.internal:8080".to_owned()),
            ("Q".to_owned(), "a?b".to_owned()),
        ]);
        UriTemplate::compile(
            uri,
            &variables,
            route_key,
            "prod",
            &KeyPath::root().key("uri"),
        )
        .map_err(|e| e.to_string())
    }

    fn render(template: &UriTemplate, path: &str, query: Option<&str>) -> String {
        template.render(path, query, None).unwrap().to_string()
    }

    #[test]
    fn path_variables_fill_in_raw_and_the_query_passes_on() {
        let t = compile(
            "http://${stageVariables.HOST}/orders/{proxy}",
            "ANY /shop/{tenant}/{proxy+}",
        )
        .unwrap();
        assert_eq!(t.authority().as_str(), "orders.internal:8080");
        assert_eq!(
            render(&t, "/shop/acme/a/b%2Fc/d", Some("x=1&y=%20")),
            "http://orders.internal:8080/orders/a/b%2Fc/d?x=1&y=%20"
        );
        // One trailing slash is ignored, as the router ignores it.
        assert_eq!(
            render(&t, "/shop/acme/a/", None),
            "http://orders.internal:8080/orders/a"
        );
        let t = compile(
            "https://api.example.com/v1/{tenant}/items-{id}.json?fixed=1",
            "GET /t/{tenant}/{id}",
        )
        .unwrap();
        assert_eq!(
            render(&t, "/t/ac%20me/7", Some("q=2")),
            "https://api.example.com/v1/ac%20me/items-7.json?fixed=1&q=2"
        );
        assert_eq!(
            render(&t, "/t/acme/7", Some("")),
            "https://api.example.com/v1/acme/items-7.json?fixed=1"
        );
        // `$default` sends the whole path on, after the URL's own.
        let t = compile("http://h:9", "$default").unwrap();
        assert_eq!(
            render(&t, "/store/checkout", None),
            "http://h:9/store/checkout"
        );
        assert_eq!(render(&t, "/", None), "http://h:9/");
        let t = compile("http://h/base/?k=1", "$default").unwrap();
        assert_eq!(
            render(&t, "/a/b%2Fc", Some("q=2")),
            "http://h/base/a/b%2Fc?k=1&q=2"
        );
    }

    /// A parameter mapping's `overwrite:path` is the URL's path: the `uri`'s scheme, host and
    /// own query kept, the client's query after it, text a path may not hold escaped.
    #[test]
    fn an_overwritten_path_replaces_the_urls() {
        let t = compile("https://h:8443/base/{id}?k=1", "GET /x/{id}").unwrap();
        let render = |path: &str, query| t.render("/x/7", query, Some(path)).unwrap().to_string();
        assert_eq!(render("/v2/7", Some("q=2")), "https://h:8443/v2/7?k=1&q=2");
        assert_eq!(
            render("/a b/%41/ü", None),
            "https://h:8443/a%20b/%41/%C3%BC?k=1"
        );
        let t = compile("http://h", "$default").unwrap();
        assert_eq!(
            t.render("/store", None, Some("/other"))
                .unwrap()
                .to_string(),
            "http://h/other"
        );
    }

    #[test]
    fn bad_uris_are_load_errors_that_say_why() {
        let cases = [
            (
                "http://h/{id}",
                "GET /x/{key}",
                "\"{id}\" is not a path variable of route \"GET /x/{key}\"",
            ),
            (
                "http://{id}.example.com/",
                "GET /x/{id}",
                "may only stand in the URL's path",
            ),
            (
                "http://h/x?id={id}",
                "GET /x/{id}",
                "may only stand in the URL's path",
            ),
            (
                "http://h/${stageVariables.Q}/{id}",
                "GET /x/{id}",
                "(in stage \"prod\")",
            ),
            (
                "http://${stageVariables.NOPE}/x",
                "GET /x",
                "\"http:///x\" (in stage \"prod\") is not an absolute http or https URL",
            ),
            (
                "ftp://h/x",
                "GET /x",
                "is not an absolute http or https URL",
            ),
            (
                "/relative",
                "GET /x",
                "is not an absolute http or https URL",
            ),
            ("http://h/x#frag", "GET /x", "has a fragment"),
            ("http://user:pw@h/x", "GET /x", "has credentials"),
            (
                "http://h/x y",
                "GET /x",
                "is not an absolute http or https URL",
            ),
        ];
        let mut failures = Vec::new();
        for (uri, route_key, expected) in cases {
            match compile(uri, route_key) {
                Ok(_) => failures.push(format!("{uri}: accepted")),
                Err(e) if !(e.starts_with("uri: ") && e.contains(expected)) => {
                    failures.push(format!("{uri}: {e}"))
                }
                Err(_) => {}
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }
}
