//! The request an integration answers, in plain Rust types.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;

use crate::Error;

/// An ordered list of name/value pairs in which a name may repeat: headers, query parameters,
/// path parameters, stage variables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// An empty list.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// The first value of `name` (names compare exactly).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, comparing names ASCII case-insensitively (for headers).
    pub fn get_ignore_case(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `name` occurs.
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    /// Every pair, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Adds a pair at the end (an existing `name` keeps its values).
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// Replaces every value of `name` with `value`.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        self.0.retain(|(n, _)| *n != name);
        self.0.push((name, value.into()));
    }

    /// How many pairs there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs.
    pub fn into_vec(self) -> Vec<(String, String)> {
        self.0
    }
}

impl From<Vec<(String, String)>> for Fields {
    fn from(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for Fields {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
        )
    }
}

impl IntoIterator for Fields {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// A value of an authorizer context: API Gateway allows strings, numbers and booleans.
#[derive(Clone, Debug, PartialEq)]
pub enum ContextValue {
    /// A string.
    Text(String),
    /// A number.
    Number(f64),
    /// A boolean.
    Boolean(bool),
}

impl ContextValue {
    /// The string, when this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ContextValue::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The value as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ContextValue::Text(s) => serde_json::Value::String(s.clone()),
            ContextValue::Number(n) => serde_json::Number::from_f64(*n)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            ContextValue::Boolean(b) => serde_json::Value::Bool(*b),
        }
    }

    /// A JSON value as a context value: strings, numbers and booleans as themselves, anything
    /// else as its JSON text (API Gateway stringifies such values the same way).
    pub fn from_json(value: &serde_json::Value) -> Self {
        match value {
            serde_json::Value::String(s) => ContextValue::Text(s.clone()),
            serde_json::Value::Bool(b) => ContextValue::Boolean(*b),
            serde_json::Value::Number(n) => match n.as_f64() {
                Some(f) => ContextValue::Number(f),
                None => ContextValue::Text(n.to_string()),
            },
            other => ContextValue::Text(other.to_string()),
        }
    }
}

impl std::fmt::Display for ContextValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContextValue::Text(s) => f.write_str(s),
            ContextValue::Number(n) => write!(f, "{n}"),
            ContextValue::Boolean(b) => write!(f, "{b}"),
        }
    }
}

impl From<&str> for ContextValue {
    fn from(s: &str) -> Self {
        ContextValue::Text(s.to_owned())
    }
}

impl From<String> for ContextValue {
    fn from(s: String) -> Self {
        ContextValue::Text(s)
    }
}

impl From<bool> for ContextValue {
    fn from(b: bool) -> Self {
        ContextValue::Boolean(b)
    }
}

macro_rules! number_context_value {
    ($($t:ty),*) => {$(
        impl From<$t> for ContextValue {
            fn from(n: $t) -> Self {
                ContextValue::Number(n as f64)
            }
        }
    )*};
}
number_context_value!(f64, f32, i64, i32, u64, u32);

/// What the route's authorizer established about the caller.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct AuthorizerContext {
    /// The principal id (empty when the authorizer gave none).
    pub principal_id: String,
    /// The context entries (for a JWT authorizer: the claims), in order.
    pub context: Vec<(String, ContextValue)>,
}

impl AuthorizerContext {
    /// A context with this principal id and no entries.
    pub fn new(principal_id: impl Into<String>) -> Self {
        Self {
            principal_id: principal_id.into(),
            context: Vec::new(),
        }
    }

    /// The entry `key`, if any.
    pub fn get(&self, key: &str) -> Option<&ContextValue> {
        self.context.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// An HTTP request as an API Gateway proxy integration sees it.
///
/// Fields are public so tests can build one from `Request::default()`; the accessors are the
/// handy way to read it.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Request {
    /// The HTTP method, upper-case (`GET`).
    pub method: String,
    /// The path as sent, still percent-encoded, without the stage segment (`/users/42`).
    pub raw_path: String,
    /// The query string as sent, without `?` (empty when none).
    pub raw_query: String,
    /// Query parameters, decoded, in order; repeated names repeat.
    pub query_parameters: Fields,
    /// Headers, names lower-case, in order; cookies are in `cookies`.
    pub headers: Fields,
    /// Cookies, each `name=value`.
    pub cookies: Vec<String>,
    /// Path parameters of the matched route, percent-decoded (`{proxy+}` is `proxy`).
    pub path_parameters: Fields,
    /// The stage name (`$default` at the root).
    pub stage: String,
    /// The stage's variables.
    pub stage_variables: Fields,
    /// The route key that matched (`GET /users/{userId}`, `$default`).
    pub route_key: String,
    /// The request id.
    pub request_id: String,
    /// The client's IP address (empty when unknown).
    pub source_ip: String,
    /// The `user-agent` header (empty when none).
    pub user_agent: String,
    /// When the gateway received the request, in milliseconds since the Unix epoch.
    pub request_time_epoch_ms: u64,
    /// What the route's authorizer established, when the route has one.
    pub authorizer: Option<AuthorizerContext>,
    /// The trace the call belongs to, as an `X-Amzn-Trace-Id` value
    /// (`Root=1-…;Parent=…;Sampled=0|1`), when the stage traces (`tracingEnabled`).
    pub trace_id: Option<String>,
    /// The body, as received.
    pub body: Vec<u8>,
}

/// The value of cookie `name` among `cookies` (each `name=value`).
pub(crate) fn cookie_in<'c>(cookies: &'c [String], name: &str) -> Option<&'c str> {
    cookies.iter().find_map(|c| {
        let (n, v) = c.split_once('=')?;
        (n.trim() == name).then(|| v.trim())
    })
}

impl Request {
    /// A request with this method and raw path (for tests; the host fills in everything).
    pub fn new(method: impl Into<String>, raw_path: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            raw_path: raw_path.into(),
            ..Self::default()
        }
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get_ignore_case(name)
    }

    /// The first value of query parameter `name`.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query_parameters.get(name)
    }

    /// Every value of query parameter `name`, in order.
    pub fn query_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.query_parameters.get_all(name)
    }

    /// The path parameter `name` of the matched route (`userId` for `/users/{userId}`).
    pub fn path_param(&self, name: &str) -> Option<&str> {
        self.path_parameters.get(name)
    }

    /// The stage variable `name`.
    pub fn stage_variable(&self, name: &str) -> Option<&str> {
        self.stage_variables.get(name)
    }

    /// The value of cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        cookie_in(&self.cookies, name)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The body parsed as JSON into `T`.
    pub fn body_json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(Error::from)
    }

    /// When the gateway received the request.
    pub fn request_time(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.request_time_epoch_ms)
    }

    /// The path with the query (`/users?limit=5`), as an HTTP request line carries it.
    pub fn path_and_query(&self) -> String {
        if self.raw_query.is_empty() {
            self.raw_path.clone()
        } else {
            format!("{}?{}", self.raw_path, self.raw_query)
        }
    }

    /// The request as an `http::Request` (cookies back in one `cookie` header), for code written
    /// against the `http` crate.
    pub fn into_http(self) -> Result<http::Request<Vec<u8>>, Error> {
        let mut builder = http::Request::builder()
            .method(self.method.as_str())
            .uri(self.path_and_query());
        for (name, value) in self.headers.iter() {
            builder = builder.header(name, value);
        }
        if !self.cookies.is_empty() {
            builder = builder.header(http::header::COOKIE, self.cookies.join("; "));
        }
        builder.body(self.body).map_err(Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Request {
        let mut r = Request::new("POST", "/users/42");
        r.raw_query = "limit=5&tag=a&tag=b".into();
        r.query_parameters = [("limit", "5"), ("tag", "a"), ("tag", "b")]
            .into_iter()
            .collect();
        r.headers = [("content-type", "application/json"), ("x-a", "1")]
            .into_iter()
            .collect();
        r.cookies = vec!["session=abc".into(), "theme = dark".into()];
        r.path_parameters = [("userId", "42")].into_iter().collect();
        r.stage_variables = [("TABLE", "dev-Users")].into_iter().collect();
        r.body = br#"{"name":"Ann"}"#.to_vec();
        r.request_time_epoch_ms = 1_700_000_000_123;
        r
    }

    #[test]
    fn accessors_read_the_request() {
        let r = sample();
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(r.header("x-missing"), None);
        assert_eq!(r.query("limit"), Some("5"));
        assert_eq!(r.query_all("tag").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(r.path_param("userId"), Some("42"));
        assert_eq!(r.stage_variable("TABLE"), Some("dev-Users"));
        assert_eq!(r.cookie("session"), Some("abc"));
        assert_eq!(r.cookie("theme"), Some("dark"));
        assert_eq!(r.cookie("nope"), None);
        assert_eq!(r.path_and_query(), "/users/42?limit=5&tag=a&tag=b");
        assert_eq!(
            r.request_time()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
            1_700_000_000_123
        );
    }

    #[test]
    fn body_json_parses_or_errs() {
        #[derive(serde::Deserialize)]
        struct Body {
            name: String,
        }
        let r = sample();
        assert_eq!(r.body_json::<Body>().unwrap().name, "Ann");
        let mut bad = sample();
        bad.body = b"not json".to_vec();
        assert!(bad.body_json::<Body>().is_err());
    }

    #[test]
    fn into_http_keeps_method_uri_headers_and_cookies() {
        let http = sample().into_http().unwrap();
        assert_eq!(http.method(), http::Method::POST);
        assert_eq!(http.uri(), "/users/42?limit=5&tag=a&tag=b");
        assert_eq!(http.headers()["x-a"], "1");
        assert_eq!(http.headers()["cookie"], "session=abc; theme = dark");
        assert_eq!(http.body(), br#"{"name":"Ann"}"#);
    }

    #[test]
    fn fields_set_replaces_every_value() {
        let mut f: Fields = [("a", "1"), ("b", "2"), ("a", "3")].into_iter().collect();
        f.set("a", "4");
        assert_eq!(f.iter().collect::<Vec<_>>(), [("b", "2"), ("a", "4")]);
    }

    #[test]
    fn context_values_convert_from_json() {
        use serde_json::json;
        assert_eq!(
            ContextValue::from_json(&json!("x")),
            ContextValue::Text("x".into())
        );
        assert_eq!(
            ContextValue::from_json(&json!(2)),
            ContextValue::Number(2.0)
        );
        assert_eq!(
            ContextValue::from_json(&json!(true)),
            ContextValue::Boolean(true)
        );
        assert_eq!(
            ContextValue::from_json(&json!(["a"])),
            ContextValue::Text(r#"["a"]"#.into())
        );
        assert_eq!(ContextValue::Number(2.5).to_json(), json!(2.5));
    }
}
