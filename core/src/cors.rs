//! CORS with HTTP API semantics: with `cors` configured, the gateway answers preflight requests
//! itself (no route, authorizer or integration runs) and puts its own CORS headers on every
//! other answer, replacing any an integration sent.

use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
    VARY,
};
use http::{HeaderMap, Method, Response, StatusCode};

use crate::config::CorsDefinition;
use crate::error::{Error, KeyPath};

/// The methods `allowMethods` may name (those of route keys), besides `*`.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];
/// AWS's range for `maxAge` (-1 disables caching).
const MAX_AGE_RANGE: std::ops::RangeInclusive<i64> = -1..=86_400;

/// The compiled `cors` section.
#[derive(Debug)]
pub(crate) struct Cors {
    origins: Vec<AllowedOrigin>,
    methods: Allowed,
    headers: Allowed,
    expose_headers: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
    credentials: bool,
    /// Whether answers depend on `Origin` (anything but a lone `*`), so caches must vary on it.
    vary_on_origin: bool,
}

/// One entry of `allowOrigins`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AllowedOrigin {
    /// `*`: every origin.
    Any,
    /// `https://*`: every origin of a scheme (the prefix, `https://`, in lower case).
    Scheme(String),
    /// An exact origin, in lower case.
    Exact(String),
}

/// `allowMethods` or `allowHeaders`: `*`, or names (upper-case methods, lower-case headers).
#[derive(Debug, Default)]
struct Allowed {
    any: bool,
    names: Vec<String>,
    /// The configured list as a header value, when it is not empty.
    value: Option<HeaderValue>,
}

impl Allowed {
    fn allows(&self, name: &str) -> bool {
        self.any || self.names.iter().any(|n| n == name)
    }
}

impl Cors {
    /// Checks and compiles the `cors` section (at `at`).
    pub(crate) fn compile(def: &CorsDefinition, at: &KeyPath) -> Result<Self, Error> {
        let mut origins = Vec::new();
        for (i, origin) in def.allow_origins.iter().enumerate() {
            origins.push(
                parse_origin(origin)
                    .map_err(|m| Error::config(at.key("allowOrigins").index(i), m))?,
            );
        }
        if def.allow_credentials && origins.contains(&AllowedOrigin::Any) {
            return Err(Error::config(
                at.key("allowCredentials"),
                "credentials cannot be allowed for every origin (\"*\" in allowOrigins): browsers refuse that answer; list the origins",
            ));
        }
        let methods = allowed(&def.allow_methods, &at.key("allowMethods"), |m| {
            let upper = m.to_ascii_uppercase();
            if METHODS.contains(&upper.as_str()) {
                Ok(upper)
            } else {
                Err(format!(
                    "unknown method \"{m}\": expected one of {}, or *",
                    METHODS.join(", ")
                ))
            }
        })?;
        let headers = allowed(&def.allow_headers, &at.key("allowHeaders"), header_name)?;
        let expose = allowed(&def.expose_headers, &at.key("exposeHeaders"), header_name)?;
        let max_age = match def.max_age {
            None => None,
            Some(age) if MAX_AGE_RANGE.contains(&age) => Some(HeaderValue::from(age)),
            Some(age) => {
                return Err(Error::config(
                    at.key("maxAge"),
                    format!("{age} is out of range: expected -1 to 86400 seconds"),
                ))
            }
        };
        let vary_on_origin = origins.iter().any(|o| *o != AllowedOrigin::Any);
        Ok(Cors {
            origins,
            methods,
            headers,
            expose_headers: expose.value,
            max_age,
            credentials: def.allow_credentials,
            vary_on_origin,
        })
    }

    /// The answer to a CORS preflight (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`), or `None` for any other request.
    ///
    /// Like API Gateway, a preflight is answered 204 either way; the CORS headers are there
    /// only when the origin, the method and every requested header are allowed, so the browser
    /// refuses the actual request otherwise.
    pub(crate) fn preflight(
        &self,
        method: &Method,
        headers: &HeaderMap,
    ) -> Option<Response<Bytes>> {
        if method != Method::OPTIONS {
            return None;
        }
        let origin = headers.get(ORIGIN)?;
        let requested_method = headers.get(ACCESS_CONTROL_REQUEST_METHOD)?;
        let mut response = Response::new(Bytes::new());
        *response.status_mut() = StatusCode::NO_CONTENT;
        if self.vary_on_origin {
            response
                .headers_mut()
                .append(VARY, HeaderValue::from_static("origin"));
        }
        let Some(allow_origin) = self.allow_origin(origin) else {
            return Some(response);
        };
        let requested_method = requested_method
            .to_str()
            .unwrap_or_default()
            .trim()
            .to_ascii_uppercase();
        if !self.methods.allows(&requested_method) {
            return Some(response);
        }
        let requested_headers: Vec<String> = headers
            .get_all(ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .flat_map(|v| v.to_str().unwrap_or_default().split(','))
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        if !requested_headers.iter().all(|h| self.headers.allows(h)) {
            return Some(response);
        }
        let out = response.headers_mut();
        out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
        if self.credentials {
            out.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        // With credentials browsers read `*` as a literal name, so a wildcard then answers
        // with what was asked for.
        let methods = match (&self.methods.value, self.methods.any && self.credentials) {
            (_, true) => HeaderValue::from_str(&requested_method).ok(),
            (value, false) => value.clone(),
        };
        if let Some(methods) = methods {
            out.insert(ACCESS_CONTROL_ALLOW_METHODS, methods);
        }
        let allow_headers = match (&self.headers.value, self.headers.any && self.credentials) {
            (_, true) if !requested_headers.is_empty() => {
                HeaderValue::from_str(&requested_headers.join(",")).ok()
            }
            (_, true) => None,
            (value, false) => value.clone(),
        };
        if let Some(allow_headers) = allow_headers {
            out.insert(ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
        }
        if let Some(max_age) = &self.max_age {
            out.insert(ACCESS_CONTROL_MAX_AGE, max_age.clone());
        }
        Some(response)
    }

    /// Puts the configured CORS headers on an actual (non-preflight) answer, integration or
    /// gateway response alike, after removing any CORS headers the integration sent.
    pub(crate) fn decorate(&self, origin: Option<&HeaderValue>, response: &mut Response<Bytes>) {
        let out = response.headers_mut();
        for name in [
            ACCESS_CONTROL_ALLOW_ORIGIN,
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            ACCESS_CONTROL_EXPOSE_HEADERS,
            ACCESS_CONTROL_ALLOW_METHODS,
            ACCESS_CONTROL_ALLOW_HEADERS,
            ACCESS_CONTROL_MAX_AGE,
        ] {
            out.remove(name);
        }
        if self.vary_on_origin {
            out.append(VARY, HeaderValue::from_static("origin"));
        }
        let Some(allow_origin) = origin.and_then(|o| self.allow_origin(o)) else {
            return;
        };
        out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
        if self.credentials {
            out.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(expose) = &self.expose_headers {
            out.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
    }

    /// The `Access-Control-Allow-Origin` for `origin`: `*` when every origin is allowed
    /// (credentials never are then), else the origin itself; `None` if it is not allowed.
    fn allow_origin(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        let text = origin.to_str().ok()?.trim().to_ascii_lowercase();
        let mut echo = false;
        for allowed in &self.origins {
            match allowed {
                AllowedOrigin::Any => return Some(HeaderValue::from_static("*")),
                AllowedOrigin::Scheme(prefix) => {
                    echo |= text.len() > prefix.len() && text.starts_with(prefix.as_str())
                }
                AllowedOrigin::Exact(exact) => echo |= *exact == text,
            }
        }
        echo.then(|| origin.clone())
    }
}

/// `*`, `https://*` (any origin of a scheme) or an exact `scheme://host[:port]`.
fn parse_origin(origin: &str) -> Result<AllowedOrigin, String> {
    if origin == "*" {
        return Ok(AllowedOrigin::Any);
    }
    let lower = origin.to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://").ok_or_else(|| {
        format!("bad origin \"{origin}\": expected scheme://host[:port], * or https://*")
    })?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err(format!("bad origin \"{origin}\": bad scheme"));
    }
    if rest == "*" {
        return Ok(AllowedOrigin::Scheme(format!("{scheme}://")));
    }
    if rest.contains('*') {
        return Err(format!(
            "bad origin \"{origin}\": a wildcard may only be the whole origin (*) or follow the scheme (https://*)"
        ));
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) {
        return Err(format!(
            "bad origin \"{origin}\": an origin is scheme://host[:port], with no path or trailing slash"
        ));
    }
    Ok(AllowedOrigin::Exact(lower))
}

fn header_name(name: &str) -> Result<String, String> {
    HeaderName::from_bytes(name.as_bytes())
        .map(|h| h.as_str().to_owned())
        .map_err(|_| format!("bad header name \"{name}\""))
}

/// Compiles a list that may hold `*`; each other name goes through `check`.
fn allowed(
    list: &[String],
    at: &KeyPath,
    check: impl Fn(&str) -> Result<String, String>,
) -> Result<Allowed, Error> {
    let mut result = Allowed::default();
    for (i, name) in list.iter().enumerate() {
        if name == "*" {
            result.any = true;
        } else {
            let name = check(name.trim()).map_err(|m| Error::config(at.index(i), m))?;
            result.names.push(name);
        }
    }
    if !list.is_empty() {
        let joined: Vec<&str> = list.iter().map(|s| s.trim()).collect();
        result.value = Some(
            HeaderValue::from_str(&joined.join(","))
                .map_err(|_| Error::config(at.clone(), "not a valid header value"))?,
        );
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(def: CorsDefinition) -> Result<Cors, Error> {
        Cors::compile(&def, &KeyPath::root().key("cors"))
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn origins_match_exactly_or_by_scheme() {
        let c = cors(CorsDefinition {
            allow_origins: strings(&["https://Example.com", "http://*"]),
            ..Default::default()
        })
        .unwrap();
        let allow = |o: &str| c.allow_origin(&HeaderValue::from_str(o).unwrap());
        assert_eq!(allow("https://example.com").unwrap(), "https://example.com");
        assert!(allow("https://example.com:8443").is_none());
        assert!(allow("https://evil.example.com").is_none());
        assert_eq!(
            allow("http://anything.test").unwrap(),
            "http://anything.test"
        );
        assert!(allow("http://").is_none());
        let any = cors(CorsDefinition {
            allow_origins: strings(&["*"]),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            any.allow_origin(&HeaderValue::from_static("null")).unwrap(),
            "*"
        );
        assert!(!any.vary_on_origin);
    }

    #[test]
    fn bad_settings_name_their_key() {
        let cases = [
            (
                CorsDefinition {
                    allow_origins: strings(&["*"]),
                    allow_credentials: true,
                    ..Default::default()
                },
                "cors.allowCredentials",
            ),
            (
                CorsDefinition {
                    allow_origins: strings(&["https://*.example.com"]),
                    ..Default::default()
                },
                "cors.allowOrigins[0]",
            ),
            (
                CorsDefinition {
                    allow_origins: strings(&["https://a.com", "https://example.com/"]),
                    ..Default::default()
                },
                "cors.allowOrigins[1]",
            ),
            (
                CorsDefinition {
                    allow_methods: strings(&["GET", "FETCH"]),
                    ..Default::default()
                },
                "cors.allowMethods[1]",
            ),
            (
                CorsDefinition {
                    allow_headers: strings(&["bad header"]),
                    ..Default::default()
                },
                "cors.allowHeaders[0]",
            ),
            (
                CorsDefinition {
                    max_age: Some(-2),
                    ..Default::default()
                },
                "cors.maxAge",
            ),
            (
                CorsDefinition {
                    max_age: Some(86_401),
                    ..Default::default()
                },
                "cors.maxAge",
            ),
        ];
        for (def, key) in cases {
            let err = cors(def).unwrap_err().to_string();
            assert!(err.starts_with(key), "{key}: {err}");
        }
        cors(CorsDefinition {
            allow_methods: strings(&["get", "*"]),
            max_age: Some(-1),
            ..Default::default()
        })
        .unwrap();
    }

    #[test]
    fn wildcards_with_credentials_answer_what_was_asked() {
        let c = cors(CorsDefinition {
            allow_origins: strings(&["https://a.test"]),
            allow_methods: strings(&["*"]),
            allow_headers: strings(&["*"]),
            allow_credentials: true,
            ..Default::default()
        })
        .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, HeaderValue::from_static("https://a.test"));
        headers.insert(
            ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("patch"),
        );
        headers.insert(
            ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("X-A, x-b"),
        );
        let r = c.preflight(&Method::OPTIONS, &headers).unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(r.headers()[ACCESS_CONTROL_ALLOW_METHODS], "PATCH");
        assert_eq!(r.headers()[ACCESS_CONTROL_ALLOW_HEADERS], "x-a,x-b");
        assert_eq!(r.headers()[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert!(c.preflight(&Method::GET, &headers).is_none());
    }
}
