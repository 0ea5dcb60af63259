//! The answer of an integration.

use serde::Serialize;

use crate::{Error, Fields};

/// An integration's HTTP answer.
///
/// `Response::new(201).header("location", "/users/1").body("created")`, or
/// `Response::json(200, &value)?`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// The status code (100-599).
    pub status: u16,
    /// Headers, in order; a name may repeat.
    pub headers: Fields,
    /// Cookies to set, each a `set-cookie` value.
    pub cookies: Vec<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Default for Response {
    fn default() -> Self {
        Self::new(200)
    }
}

impl Response {
    /// An empty answer with this status.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Fields::new(),
            cookies: Vec::new(),
            body: Vec::new(),
        }
    }

    /// An empty 200.
    pub fn ok() -> Self {
        Self::new(200)
    }

    /// `value` as a JSON body, with `content-type: application/json`.
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Result<Self, Error> {
        Ok(Self::new(status)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(value)?))
    }

    /// `text` as the body, with `content-type: text/plain; charset=utf-8`.
    pub fn text(status: u16, text: impl Into<String>) -> Self {
        Self::new(status)
            .header("content-type", "text/plain; charset=utf-8")
            .body(text.into())
    }

    /// Adds a header (a name may repeat).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Adds a `set-cookie` value (`id=1; Path=/; HttpOnly`).
    pub fn cookie(mut self, cookie: impl Into<String>) -> Self {
        self.cookies.push(cookie.into());
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// Header values that are not UTF-8 are replaced lossily: the WIT carries strings.
impl<B: Into<Vec<u8>>> From<http::Response<B>> for Response {
    fn from(response: http::Response<B>) -> Self {
        let (parts, body) = response.into_parts();
        let headers = parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        Self {
            status: parts.status.as_u16(),
            headers,
            cookies: Vec::new(),
            body: body.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_sets_content_type_and_body() {
        let r = Response::json(201, &serde_json::json!({"a": 1})).unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.headers.get("content-type"), Some("application/json"));
        assert_eq!(r.body, br#"{"a":1}"#);
    }

    #[test]
    fn builder_adds_headers_cookies_and_body() {
        let r = Response::new(302)
            .header("location", "/x")
            .cookie("a=1")
            .body("moved");
        assert_eq!(r.headers.get("location"), Some("/x"));
        assert_eq!(r.cookies, ["a=1"]);
        assert_eq!(r.body, b"moved");
        assert_eq!(
            Response::text(200, "hi").headers.get("content-type"),
            Some("text/plain; charset=utf-8")
        );
    }

    #[test]
    fn http_responses_convert() {
        let http = http::Response::builder()
            .status(404)
            .header("x-a", "1")
            .header("x-a", "2")
            .body("gone")
            .unwrap();
        let r = Response::from(http);
        assert_eq!(r.status, 404);
        assert_eq!(r.headers.get_all("x-a").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(r.body, b"gone");
    }
}
