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
//!   does not decode to UTF-8 makes the path unroutable. A REST API's router
//!   ([`Router::rest`]) passes them as sent instead (`test%2Balias@gmail.com` stays encoded),
//!   and its greedy `{proxy+}` may hold an empty segment (`a//b`), as AWS was recorded doing
//!   (LocalStack's test_apigateway_lambda.snapshot.json, `invocation-payload-with-double-slash`
//!   and `invocation-payload-with-path-encoded-email`);
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

impl<T> Route<T> {
    /// Whether a match of this route with `params` in `path` is one: not if a parameter holds
    /// what a routable path cannot (an empty or dot segment, or a value that does not
    /// percent-decode to UTF-8). Only a path with a `%` or a segment starting with `.`, or a
    /// greedy value (several segments), needs a look at the parameters: literal segments never
    /// match a dot segment or a `%` (route keys cannot hold either), and matchit never gives a
    /// `{param}` an empty value.
    #[inline]
    fn admits(&self, params: &matchit::Params<'_, '_>, path: &str, rest: bool) -> bool {
        let suspicious = self.greedy || has_percent_or_dot_segment(path.as_bytes());
        !suspicious || params_routable(params, self.greedy, rest)
    }

    #[inline]
    fn matched<'r, 'p>(&'r self, params: matchit::Params<'r, 'p>) -> RouteMatch<'r, 'p, T> {
        RouteMatch {
            value: &self.value,
            route_key: &self.route_key,
            params,
        }
    }
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
    /// REST API paths: parameters as sent, empty segments inside a greedy parameter.
    rest: bool,
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Router {
            routes: Vec::new(),
            slots: Default::default(),
            default_route: None,
            rest: false,
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
    #[cfg(test)]
    pub fn param(&self, name: &str) -> Option<Cow<'p, str>> {
        self.params().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Path parameters in path order as the request sent them (a REST API's, see
    /// [`Router::rest`]).
    pub fn raw_params(&self) -> impl Iterator<Item = (&'r str, &'p str)> + '_ {
        self.params.iter()
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

    /// An empty router for a REST API's paths: a greedy parameter may hold empty segments
    /// (`/{proxy+}` matches `/a//b` with `a//b`), as AWS was recorded serving them; dot
    /// segments and undecodable parameters stay unroutable. Its matches' parameters are meant
    /// to be read with [`RouteMatch::raw_params`].
    pub fn rest() -> Self {
        Router {
            rest: true,
            ..Self::default()
        }
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
    #[inline]
    pub fn at<'r, 'p>(&'r self, method: &Method, path: &'p str) -> Option<RouteMatch<'r, 'p, T>> {
        let path = trim_trailing_slash(path)?;
        let trees = &self.slots[slot_of(method)];
        // The common case, inline: a route without a greedy variable. Its match is checked
        // where matchit left it and moved out once (matchit's parameters are 112 bytes).
        let exact = trees.exact.at(path);
        let Ok(found) = &exact else {
            return self.greedy_or_default(trees, path);
        };
        let route = &self.routes[*found.value];
        if !route.admits(&found.params, path, self.rest) {
            return None;
        }
        exact.ok().map(|found| route.matched(found.params))
    }

    /// The lookup once no route without a greedy variable matched: the most specific greedy
    /// route, else `$default` (for a routable path).
    #[inline(never)]
    fn greedy_or_default<'r, 'p>(
        &'r self,
        trees: &'r Trees,
        path: &'p str,
    ) -> Option<RouteMatch<'r, 'p, T>> {
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
            Some(found) => {
                let route = &self.routes[*found.value];
                route
                    .admits(&found.params, path, self.rest)
                    .then(|| route.matched(found.params))
            }
            None if routable(path) => {
                Some(self.routes[self.default_route?].matched(Default::default()))
            }
            None => None,
        }
    }

    fn specificity(&self, index: usize) -> impl Iterator<Item = u8> + Clone + '_ {
        self.routes[index]
            .key
            .iter()
            .flat_map(|k| k.shape.iter().map(Segment::rank))
    }
}

/// Whether every parameter value is routable (see [`is_routable_segment`]); the last one, when
/// `greedy`, segment by segment, where `rest` admits empty segments.
#[cold]
fn params_routable(params: &matchit::Params<'_, '_>, greedy: bool, rest: bool) -> bool {
    let last = params.len().wrapping_sub(1);
    params.iter().enumerate().all(|(i, (_, value))| {
        if greedy && i == last {
            value
                .split('/')
                .all(|segment| (rest && segment.is_empty()) || is_routable_segment(segment))
        } else {
            is_routable_segment(value)
        }
    })
}

/// Whether `path` holds a `%` or a segment starting with `.`: only such a path can hold a dot
/// segment or an undecodable parameter. Most of the router's own cost per lookup is this scan,
/// so on x86_64 it reads 16 bytes at a time (SSE2, part of every x86_64 CPU).
#[inline]
fn has_percent_or_dot_segment(path: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        /// Whether `chunk` holds a `%`, or a `/` followed by a `.`.
        #[inline(always)]
        fn chunk_has(chunk: &[u8; 16]) -> bool {
            use std::arch::x86_64::{
                _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
            };
            // SAFETY: SSE2 is enabled on every x86_64 target, and the (unaligned) load reads
            // the 16 bytes of `chunk`, nothing else.
            unsafe {
                let bytes = _mm_loadu_si128(chunk.as_ptr().cast());
                let mask =
                    |byte: u8| _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(byte as i8)));
                (mask(b'%') | ((mask(b'/') << 1) & mask(b'.'))) != 0
            }
        }
        let n = path.len();
        if n < 16 {
            let mut padded = [0u8; 16];
            padded[..n].copy_from_slice(path);
            return chunk_has(&padded);
        }
        // Chunks overlap by one byte, so that no `/.` pair straddles two of them; the last
        // one ends with the path.
        let mut start = 0;
        while start + 16 < n {
            if chunk_has(path[start..start + 16].try_into().unwrap_or(&[0; 16])) {
                return true;
            }
            start += 15;
        }
        chunk_has(path[n - 16..].try_into().unwrap_or(&[0; 16]))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        memchr::memchr2_iter(b'.', b'%', path)
            .any(|i| path[i] == b'%' || (i > 0 && path[i - 1] == b'/'))
    }
}

/// The path without one trailing slash, or `None` if it does not start with `/`.
#[inline]
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
#[inline]
fn slot_of(method: &Method) -> usize {
    // Standard methods are an enum inside `Method`: a jump on its discriminant.
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::DELETE => 3,
        Method::PATCH => 4,
        Method::HEAD => 5,
        Method::OPTIONS => 6,
        _ => ANY_SLOT,
    }
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

    #[test]
    fn each_route_key_method_has_its_own_slot() {
        for (slot, name) in METHODS.iter().enumerate() {
            let method = Method::from_bytes(name.as_bytes()).unwrap();
            assert_eq!(slot_of(&method), slot, "{name}");
        }
        for other in ["TRACE", "CONNECT", "PROPFIND", "get"] {
            let method = Method::from_bytes(other.as_bytes()).unwrap();
            assert_eq!(slot_of(&method), ANY_SLOT, "{other}");
        }
    }

    /// The 16-bytes-at-a-time scan against a byte-by-byte one: a `%` or a `/.` at every
    /// position of paths of every length around the chunk sizes (chunk seams included).
    #[test]
    fn the_path_scan_finds_every_percent_and_dot_segment() {
        fn reference(path: &[u8]) -> bool {
            path.iter()
                .enumerate()
                .any(|(i, &byte)| byte == b'%' || (byte == b'.' && i > 0 && path[i - 1] == b'/'))
        }
        let mut checked = 0;
        for len in 1..=64 {
            let plain: Vec<u8> = (0..len).map(|i| b"/a.b"[i % 4]).collect();
            assert_eq!(has_percent_or_dot_segment(&plain), reference(&plain));
            for at in 0..len {
                for needle in [&b"%"[..], b"/.", b"./", b".."] {
                    let mut path = plain.clone();
                    for (k, &byte) in needle.iter().enumerate() {
                        if at + k < len {
                            path[at + k] = byte;
                        }
                    }
                    let text = String::from_utf8_lossy(&path).into_owned();
                    assert_eq!(
                        has_percent_or_dot_segment(&path),
                        reference(&path),
                        "{text:?}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 8000);
    }

    #[test]
    fn only_parameters_are_checked_for_dot_segments_and_encodings() {
        let r = router(&[
            "GET /a/{x}/b",
            "GET /files/{proxy+}",
            "GET /v1.2/{x}",
            "$default",
        ]);
        let key = |path: &str| r.at(&Method::GET, path).map(|m| m.route_key().to_owned());
        // A literal with a dot, and dots inside a value, are not dot segments.
        assert_eq!(key("/v1.2/x.y").as_deref(), Some("GET /v1.2/{x}"));
        assert_eq!(key("/a/.x/b").as_deref(), Some("GET /a/{x}/b"));
        // Dot segments and undecodable values in a parameter: no route, not even $default.
        for unroutable in [
            "/a/../b",
            "/a/./b",
            "/a/%2e%2E/b",
            "/a/%FF/b",
            "/files/x/../y",
        ] {
            assert_eq!(key(unroutable), None, "{unroutable}");
        }
        // Chunk seams: a dot segment at byte 15 and 16 of a long path.
        assert_eq!(key("/a/0123456789/b").as_deref(), Some("GET /a/{x}/b"));
        assert_eq!(key("/files/0123456/./x"), None);
        assert_eq!(key("/files/01234567/./x"), None);
        assert_eq!(
            key("/files/01234567/%41").as_deref(),
            Some("GET /files/{proxy+}")
        );
    }

    /// A REST API's router: parameters as sent, empty segments inside a greedy parameter
    /// (LocalStack test_apigateway_lambda.snapshot.json, `test_lambda_aws_proxy_integration`:
    /// `invocation-payload-with-double-slash` gives `{"proxy": "proxy-value//double-slash"}`,
    /// `invocation-payload-with-path-encoded-email` keeps `test%2Balias@gmail.com`).
    #[test]
    fn rest_routers_keep_parameters_as_sent() {
        let mut rest = Router::rest();
        let mut http = Router::new();
        for key in ["GET /{proxy+}", "GET /users/{id}"] {
            rest.insert(key, ()).unwrap();
            http.insert(key, ()).unwrap();
        }
        let raw = |r: &Router<()>, path: &str| {
            r.at(&Method::GET, path).map(|m| {
                m.raw_params()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(
            raw(&rest, "/proxy-value//double-slash").unwrap(),
            ["proxy=proxy-value//double-slash"]
        );
        assert!(http
            .at(&Method::GET, "/proxy-value//double-slash")
            .is_none());
        assert_eq!(
            raw(&rest, "/users/test%2Balias@gmail.com").unwrap(),
            ["id=test%2Balias@gmail.com"]
        );
        assert_eq!(
            http.at(&Method::GET, "/users/test%2Balias@gmail.com")
                .unwrap()
                .param("id")
                .as_deref(),
            Some("test+alias@gmail.com")
        );
        // Dot segments stay unroutable on REST too.
        for unroutable in ["/a/../b", "/a//./b", "/users/%2e%2e"] {
            assert!(rest.at(&Method::GET, unroutable).is_none(), "{unroutable}");
        }
    }
}
