//! The route phase: API Gateway's HTTP API route keys over matchit.
//!
//! Route keys are `METHOD /path` (`GET`, `POST`, `PUT`, `DELETE`, `PATCH`, `HEAD`, `OPTIONS` or
//! `ANY`), with `{name}` segments and a greedy `{name+}` last segment, or `$default`.
//!
//! Precedence, as API Gateway documents it ("full match", then greedy, then `$default`):
//! 1. a route without a greedy variable beats any route with one;
//! 2. among those, the most specific *path* wins, segment by segment from the left: a literal
//!    segment beats `{param}`, which beats `{proxy+}` (matchit's priority, with backtracking);
//! 3. for the same path, a route with the request's exact method beats `ANY`;
//! 4. `$default` answers only when nothing else matches.
//!
//! `HEAD` and `OPTIONS` are ordinary methods, as in API Gateway: they match `HEAD`/`OPTIONS`
//! routes or `ANY`, never `GET`.
//!
//! Request paths, one defined behaviour each:
//! - matching runs on the raw (still percent-encoded) path, so `%2F` never splits a segment and
//!   `/a%2Fb` is one segment; literal segments compare byte for byte and case-sensitively;
//! - path parameters are percent-decoded exactly once (`%2541` becomes `%41`); a parameter that
//!   does not decode to UTF-8 makes the path unroutable;
//! - one trailing slash is ignored (`/users/` is `/users`); `/` is the root;
//! - a path with an empty segment (`//`), a `.` or `..` segment (also percent-encoded, `%2e%2E`),
//!   or not starting with `/` matches no route but `$default` never sees it either: it is
//!   answered as "no route" (404 / 403), so dot segments can never escape a route.

use std::borrow::Cow;
use std::fmt;

use http::Method;
use percent_encoding::percent_decode_str;

/// Methods with a tree of their own; any other method only matches `ANY`.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];
const ANY_SLOT: usize = METHODS.len();

/// A route key that cannot be added to the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    /// The route key as given.
    pub route_key: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "route key \"{}\": {}", self.route_key, self.message)
    }
}

impl std::error::Error for RouteError {}

/// One segment of a route path. Ordered by specificity: `Literal` < `Param` < `Greedy`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Segment {
    Literal(String),
    Param,
    Greedy,
}

impl Segment {
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 0,
            Segment::Param => 1,
            Segment::Greedy => 2,
        }
    }
}

/// A parsed route key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RouteKey {
    /// `None` for `ANY`.
    method: Option<usize>,
    /// The path in matchit's syntax (`/users/{id}`, `/files/{*proxy}`).
    matchit_path: String,
    /// The path with parameter names erased: two routes of one shape match the same requests.
    shape: Vec<Segment>,
}

impl RouteKey {
    fn parse(route_key: &str) -> Result<RouteKey, String> {
        let (method, path) = route_key
            .split_once(' ')
            .ok_or("expected \"METHOD /path\" or \"$default\"")?;
        let method = if method == "ANY" {
            None
        } else {
            Some(METHODS.iter().position(|m| *m == method).ok_or_else(|| {
                format!(
                    "unknown method \"{method}\": expected one of {}, ANY",
                    METHODS.join(", ")
                )
            })?)
        };
        if !path.starts_with('/') {
            return Err("the path must start with '/'".into());
        }
        let mut matchit_path = String::with_capacity(path.len());
        let mut shape = Vec::new();
        let segments: Vec<&str> = if path == "/" {
            Vec::new()
        } else {
            path[1..].split('/').collect()
        };
        for (i, segment) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            matchit_path.push('/');
            if segment.is_empty() {
                return Err(if last {
                    "the path must not end with '/'"
                } else {
                    "the path has an empty segment"
                }
                .into());
            }
            if let Some(inner) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let (name, greedy) = match inner.strip_suffix('+') {
                    Some(name) => (name, true),
                    None => (inner, false),
                };
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                {
                    return Err(format!(
                        "bad path variable \"{segment}\": names use [A-Za-z0-9._-]"
                    ));
                }
                if greedy && !last {
                    return Err(format!(
                        "greedy path variable \"{segment}\" must be the last segment"
                    ));
                }
                if greedy {
                    matchit_path.push_str(&format!("{{*{name}}}"));
                    shape.push(Segment::Greedy);
                } else {
                    matchit_path.push_str(&format!("{{{name}}}"));
                    shape.push(Segment::Param);
                }
            } else if segment.contains(['{', '}']) {
                return Err(format!("bad segment \"{segment}\": a path variable must be a whole segment, like {{id}}"));
            } else if *segment == "." || *segment == ".." {
                return Err(format!("bad segment \"{segment}\""));
            } else if let Some(c) = segment.chars().find(|c| !is_literal_char(*c)) {
                return Err(format!("character {c:?} is not allowed in a path"));
            } else {
                matchit_path.push_str(segment);
                shape.push(Segment::Literal((*segment).to_owned()));
            }
        }
        if segments.is_empty() {
            matchit_path.push('/');
        }
        Ok(RouteKey {
            method,
            matchit_path,
            shape,
        })
    }

    fn is_greedy(&self) -> bool {
        self.shape.last() == Some(&Segment::Greedy)
    }

    /// Whether matchit cannot hold both routes in one tree: a `{param}` and a `{proxy+}` at the
    /// same position after the same segments.
    fn clashes_with(&self, other: &RouteKey) -> bool {
        let clash = |a: &RouteKey, b: &RouteKey| {
            let n = a.shape.len();
            n > 0
                && b.shape.len() >= n
                && a.shape[n - 1] == Segment::Greedy
                && b.shape[n - 1] == Segment::Param
                && a.shape[..n - 1] == b.shape[..n - 1]
        };
        clash(self, other) || clash(other, self)
    }
}

/// RFC 3986 `pchar` without percent-encodings: what a literal segment may hold.
fn is_literal_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@".contains(c)
}

struct Route<T> {
    route_key: String,
    value: T,
    /// `None` for `$default`.
    key: Option<RouteKey>,
    /// Whether the path ends in `{proxy+}` (kept beside `key` for the hot path).
    greedy: bool,
}

/// The trees of one method slot. Values index `Router::routes`.
#[derive(Default)]
struct Trees {
    /// Routes without a greedy variable: matchit holds any set of them in one tree.
    exact: matchit::Router<usize>,
    /// Routes ending in `{proxy+}`, spread over as few trees as matchit allows.
    greedy: Vec<(matchit::Router<usize>, Vec<usize>)>,
}

/// A router with API Gateway's route-key rules; `T` is what a route carries.
pub struct Router<T> {
    routes: Vec<Route<T>>,
    /// One slot per method of `METHODS` (its routes plus the `ANY` routes it does not shadow),
    /// and one of the `ANY` routes alone for every other method.
    slots: [Trees; METHODS.len() + 1],
    default_route: Option<usize>,
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Router {
            routes: Vec::new(),
            slots: Default::default(),
            default_route: None,
        }
    }
}

/// A matched route: its value, its route key and its (decoded) path parameters.
pub struct RouteMatch<'r, 'p, T> {
    /// The route's value.
    pub value: &'r T,
    route_key: &'r str,
    params: matchit::Params<'r, 'p>,
}

impl<'r, 'p, T> RouteMatch<'r, 'p, T> {
    /// The route key that matched (`GET /users/{id}`, `$default`).
    pub fn route_key(&self) -> &'r str {
        self.route_key
    }

    /// Path parameters in path order, percent-decoded once (`{proxy+}` is named `proxy`).
    pub fn params(&self) -> impl Iterator<Item = (&'r str, Cow<'p, str>)> + '_ {
        // `at` only returns matches whose parameters decode, so the fallback is never taken.
        self.params
            .iter()
            .map(|(name, raw)| (name, decode(raw).unwrap_or(Cow::Borrowed(raw))))
    }

    /// One path parameter, percent-decoded.
    pub fn param(&self, name: &str) -> Option<Cow<'p, str>> {
        self.params().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

fn decode(raw: &str) -> Option<Cow<'_, str>> {
    if raw.contains('%') {
        percent_decode_str(raw).decode_utf8().ok()
    } else {
        Some(Cow::Borrowed(raw))
    }
}

impl<T> Router<T> {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route. Fails on a malformed key or on a duplicate: a route of the same method
    /// and path shape (`GET /a/{id}` and `GET /a/{name}` are duplicates).
    pub fn insert(&mut self, route_key: &str, value: T) -> Result<(), RouteError> {
        let error = |message: String| RouteError {
            route_key: route_key.to_owned(),
            message,
        };
        let index = self.routes.len();
        if route_key == "$default" {
            if self.default_route.is_some() {
                return Err(error("duplicate route key".into()));
            }
            self.default_route = Some(index);
            self.routes.push(Route {
                route_key: route_key.to_owned(),
                value,
                key: None,
                greedy: false,
            });
            return Ok(());
        }
        let key = RouteKey::parse(route_key).map_err(error)?;
        let same_shape = |routes: &[Route<T>], method: Option<usize>| {
            routes.iter().position(|r| {
                r.key
                    .as_ref()
                    .is_some_and(|k| k.method == method && k.shape == key.shape)
            })
        };
        if let Some(other) = same_shape(&self.routes, key.method) {
            let other = &self.routes[other].route_key;
            return Err(error(if other == route_key {
                "duplicate route key".into()
            } else {
                format!("duplicate of route \"{other}\" (only the parameter names differ)")
            }));
        }
        match key.method {
            Some(slot) => {
                // An `ANY` route of the same shape yields this method to the new route.
                if let Some(any) = same_shape(&self.routes, None) {
                    self.unplace(slot, any);
                }
                self.place(slot, &key, index).map_err(error)?;
            }
            None => {
                for slot in 0..=ANY_SLOT {
                    if slot == ANY_SLOT || same_shape(&self.routes, Some(slot)).is_none() {
                        self.place(slot, &key, index).map_err(error)?;
                    }
                }
            }
        }
        self.routes.push(Route {
            route_key: route_key.to_owned(),
            value,
            greedy: key.is_greedy(),
            key: Some(key),
        });
        Ok(())
    }

    fn place(&mut self, slot: usize, key: &RouteKey, index: usize) -> Result<(), String> {
        let routes = &self.routes;
        let trees = &mut self.slots[slot];
        let tree = if key.is_greedy() {
            let fits = |members: &Vec<usize>| {
                members.iter().all(|&m| {
                    routes
                        .get(m)
                        .and_then(|r| r.key.as_ref())
                        .is_none_or(|k| !k.clashes_with(key))
                })
            };
            let position = match trees.greedy.iter().position(|(_, members)| fits(members)) {
                Some(position) => position,
                None => {
                    trees.greedy.push(Default::default());
                    trees.greedy.len() - 1
                }
            };
            let (tree, members) = &mut trees.greedy[position];
            members.push(index);
            tree
        } else {
            &mut trees.exact
        };
        tree.insert(key.matchit_path.as_str(), index)
            .map_err(|e| format!("cannot be routed: {e}"))
    }

    fn unplace(&mut self, slot: usize, index: usize) {
        let Some(key) = self.routes[index].key.as_ref() else {
            return;
        };
        let trees = &mut self.slots[slot];
        if key.is_greedy() {
            for (tree, members) in &mut trees.greedy {
                if let Some(i) = members.iter().position(|&m| m == index) {
                    members.swap_remove(i);
                    tree.remove(key.matchit_path.as_str());
                }
            }
        } else {
            trees.exact.remove(key.matchit_path.as_str());
        }
    }

    /// Finds the route for a request method and raw path (without the query string).
    pub fn at<'r, 'p>(&'r self, method: &Method, path: &'p str) -> Option<RouteMatch<'r, 'p, T>> {
        let path = trim_trailing_slash(path)?;
        // Only a path with a `%`, or a segment starting with `.`, can hold a dot segment or an
        // undecodable parameter.
        let bytes = path.as_bytes();
        let suspicious = memchr::memchr2_iter(b'.', b'%', bytes)
            .any(|i| bytes[i] == b'%' || bytes[i - 1] == b'/');
        let trees = &self.slots[slot_of(method)];
        if let Ok(found) = trees.exact.at(path) {
            return self.matched(*found.value, found.params, suspicious);
        }
        // Several greedy trees only when matchit could not hold them in one: keep the most
        // specific match.
        let mut best: Option<matchit::Match<'r, 'p, &'r usize>> = None;
        for (tree, _) in &trees.greedy {
            if let Ok(candidate) = tree.at(path) {
                let better = best.as_ref().is_none_or(|b| {
                    self.specificity(*candidate.value)
                        .lt(self.specificity(*b.value))
                });
                if better {
                    best = Some(candidate);
                }
            }
        }
        match best {
            Some(found) => self.matched(*found.value, found.params, suspicious),
            None if routable(path) => {
                self.matched(self.default_route?, matchit::Params::new(), false)
            }
            None => None,
        }
    }

    /// The match, unless a parameter holds what a routable path cannot: an empty or dot
    /// segment, or a value that does not percent-decode to UTF-8. Only parameters need a look:
    /// literal segments never match an empty or dot segment (route keys cannot hold one), and
    /// matchit never gives a `{param}` an empty value.
    #[inline]
    fn matched<'r, 'p>(
        &'r self,
        index: usize,
        params: matchit::Params<'r, 'p>,
        suspicious: bool,
    ) -> Option<RouteMatch<'r, 'p, T>> {
        let route = &self.routes[index];
        if suspicious || route.greedy {
            let greedy = route.greedy;
            let last = params.len().wrapping_sub(1);
            for (i, (_, value)) in params.iter().enumerate() {
                let valid = if greedy && i == last {
                    value.split('/').all(is_routable_segment)
                } else {
                    !suspicious || is_routable_segment(value)
                };
                if !valid {
                    return None;
                }
            }
        }
        Some(RouteMatch {
            value: &route.value,
            route_key: &route.route_key,
            params,
        })
    }

    fn specificity(&self, index: usize) -> impl Iterator<Item = u8> + Clone + '_ {
        self.routes[index]
            .key
            .iter()
            .flat_map(|k| k.shape.iter().map(Segment::rank))
    }

    /// The route keys, in insertion order.
    pub fn route_keys(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|r| r.route_key.as_str())
    }
}

/// The path without one trailing slash, or `None` if it does not start with `/`.
fn trim_trailing_slash(path: &str) -> Option<&str> {
    let bytes = path.as_bytes();
    match bytes.len() {
        0 => None,
        _ if bytes[0] != b'/' => None,
        // `/a/` is `/a`, but `//` stays as it is: its empty segment makes it unroutable.
        n if n > 1 && bytes[n - 1] == b'/' && bytes[n - 2] != b'/' => Some(&path[..n - 1]),
        _ => Some(path),
    }
}

/// Whether every segment of a (trimmed) path is routable.
fn routable(path: &str) -> bool {
    path == "/" || path[1..].split('/').all(is_routable_segment)
}

/// A segment is routable unless it is empty, `.` or `..` (also percent-encoded), or does not
/// percent-decode to UTF-8.
fn is_routable_segment(segment: &str) -> bool {
    match segment.as_bytes() {
        [] | [b'.'] | [b'.', b'.'] => false,
        bytes if bytes.contains(&b'%') => match percent_decode_str(segment).decode_utf8() {
            Ok(decoded) => decoded != "." && decoded != "..",
            Err(_) => false,
        },
        _ => true,
    }
}

/// The tree slot of a method: its own for the seven route-key methods, else the `ANY` slot.
fn slot_of(method: &Method) -> usize {
    // `Method` equality on standard methods is an enum comparison, not a string compare.
    const SLOTS: [Method; 7] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
    ];
    SLOTS.iter().position(|m| m == method).unwrap_or(ANY_SLOT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(keys: &[&str]) -> Router<usize> {
        let mut r = Router::new();
        for (i, k) in keys.iter().enumerate() {
            r.insert(k, i).unwrap();
        }
        r
    }

    #[test]
    fn literal_beats_param_beats_greedy() {
        let r = router(&["GET /pets/{id}", "GET /pets/dog", "GET /pets/{proxy+}"]);
        assert_eq!(
            r.at(&Method::GET, "/pets/dog").unwrap().route_key(),
            "GET /pets/dog"
        );
        assert_eq!(
            r.at(&Method::GET, "/pets/cat").unwrap().route_key(),
            "GET /pets/{id}"
        );
        assert_eq!(
            r.at(&Method::GET, "/pets/cat/1").unwrap().route_key(),
            "GET /pets/{proxy+}"
        );
    }

    #[test]
    fn exact_method_beats_any_on_the_same_path() {
        let r = router(&["ANY /pets", "GET /pets"]);
        assert_eq!(
            r.at(&Method::GET, "/pets").unwrap().route_key(),
            "GET /pets"
        );
        assert_eq!(
            r.at(&Method::POST, "/pets").unwrap().route_key(),
            "ANY /pets"
        );
        assert_eq!(
            r.at(&Method::from_bytes(b"PROPFIND").unwrap(), "/pets")
                .unwrap()
                .route_key(),
            "ANY /pets"
        );
    }

    #[test]
    fn duplicates_and_conflicts_are_refused() {
        let mut r = Router::new();
        r.insert("GET /a/{id}", 0).unwrap();
        assert!(r
            .insert("GET /a/{id}", 1)
            .unwrap_err()
            .message
            .contains("duplicate"));
        assert!(r
            .insert("GET /a/{other}", 1)
            .unwrap_err()
            .message
            .contains("GET /a/{id}"));
        assert!(r.insert("ANY /a/{id}", 1).is_ok());
        assert!(r.insert("GET /a/{id}/{proxy+}", 1).is_ok());
        assert!(r.insert("GET /{proxy+}", 1).is_ok());
        assert!(r.insert("GET /{x}/b/{proxy+}", 1).is_ok());
    }

    #[test]
    fn malformed_keys_are_refused() {
        let mut r: Router<()> = Router::new();
        for bad in [
            "GET",
            "get /a",
            "GET a",
            "GET /a/",
            "GET /a//b",
            "GET /{p+}/a",
            "GET /a{id}",
            "GET /{}",
            "GET /a b",
            "FETCH /a",
            "GET /a/../b",
        ] {
            assert!(r.insert(bad, ()).is_err(), "{bad} was accepted");
        }
    }
}
