//! [`LazyRequest`]: the request of the `lazy-integration` world, read part by part.

use serde::de::DeserializeOwned;

use crate::request::{cookie_in, AuthorizerContext, Fields, Request};
use crate::wit::integration::portico::plugin::types as wit;
use crate::Error;

/// The request of the `lazy-integration` world ([`lazy_integration!`](crate::lazy_integration)):
/// what [`Request`] carries, asked of the host one part at a time. Each method is a call into
/// the host that copies only its answer into the plugin, so a plugin that reads the path and
/// one header does not receive the rest (what a small plugin's call spends most on with the
/// `integration` world, whose record arrives whole). Methods return owned values; read a part
/// once and keep it rather than asking twice.
///
/// In tests (and anywhere a [`Request`] is at hand), `LazyRequest::from(&request)` reads the
/// same parts from a whole request, with the host's semantics.
pub struct LazyRequest<'a> {
    source: Source<'a>,
}

enum Source<'a> {
    /// The host's `incoming-request`, lent for the call.
    Host(&'a wit::IncomingRequest),
    /// A whole request (tests).
    Whole(&'a Request),
}

impl<'a> From<&'a Request> for LazyRequest<'a> {
    fn from(request: &'a Request) -> Self {
        LazyRequest {
            source: Source::Whole(request),
        }
    }
}

impl<'a> LazyRequest<'a> {
    pub(crate) fn host(request: &'a wit::IncomingRequest) -> Self {
        LazyRequest {
            source: Source::Host(request),
        }
    }

    /// The HTTP method, upper-case (`GET`).
    pub fn method(&self) -> String {
        match self.source {
            Source::Host(r) => r.method(),
            Source::Whole(r) => r.method.clone(),
        }
    }

    /// The path as sent, still percent-encoded, without the stage segment (`/users/42`).
    pub fn raw_path(&self) -> String {
        match self.source {
            Source::Host(r) => r.raw_path(),
            Source::Whole(r) => r.raw_path.clone(),
        }
    }

    /// The query string as sent, without `?` (empty when none).
    pub fn raw_query(&self) -> String {
        match self.source {
            Source::Host(r) => r.raw_query(),
            Source::Whole(r) => r.raw_query.clone(),
        }
    }

    /// The values of query parameter `name`, decoded, joined by `,` in request order (as API
    /// Gateway's 2.0 event joins them); `None` when it is absent.
    pub fn query(&self, name: &str) -> Option<String> {
        match self.source {
            Source::Host(r) => r.query_parameter(name),
            Source::Whole(r) => joined(r.query_all(name)),
        }
    }

    /// Query parameters, decoded, in order; repeated names repeat.
    pub fn query_parameters(&self) -> Fields {
        match self.source {
            Source::Host(r) => r.query_parameters().into(),
            Source::Whole(r) => r.query_parameters.clone(),
        }
    }

    /// The values of header `name` (any case), joined by `,` in request order; `None` when it
    /// is absent. Cookies are in [`cookies`](Self::cookies).
    pub fn header(&self, name: &str) -> Option<String> {
        match self.source {
            Source::Host(r) => r.header(name),
            Source::Whole(r) => joined(
                r.headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v),
            ),
        }
    }

    /// Headers, names lower-case, in order; repeated names repeat.
    pub fn headers(&self) -> Fields {
        match self.source {
            Source::Host(r) => r.headers().into(),
            Source::Whole(r) => r.headers.clone(),
        }
    }

    /// Cookies, each `name=value`.
    pub fn cookies(&self) -> Vec<String> {
        match self.source {
            Source::Host(r) => r.cookies(),
            Source::Whole(r) => r.cookies.clone(),
        }
    }

    /// The path parameter `name` of the matched route, percent-decoded.
    pub fn path_param(&self, name: &str) -> Option<String> {
        match self.source {
            Source::Host(r) => r.path_parameter(name),
            Source::Whole(r) => r.path_param(name).map(str::to_owned),
        }
    }

    /// Path parameters of the matched route, percent-decoded (`{proxy+}` is `proxy`).
    pub fn path_parameters(&self) -> Fields {
        match self.source {
            Source::Host(r) => r.path_parameters().into(),
            Source::Whole(r) => r.path_parameters.clone(),
        }
    }

    /// The stage name (`$default` at the root).
    pub fn stage(&self) -> String {
        match self.source {
            Source::Host(r) => r.stage(),
            Source::Whole(r) => r.stage.clone(),
        }
    }

    /// The stage variable `name`.
    pub fn stage_variable(&self, name: &str) -> Option<String> {
        match self.source {
            Source::Host(r) => r.stage_variable(name),
            Source::Whole(r) => r.stage_variable(name).map(str::to_owned),
        }
    }

    /// The stage's variables.
    pub fn stage_variables(&self) -> Fields {
        match self.source {
            Source::Host(r) => r.stage_variables().into(),
            Source::Whole(r) => r.stage_variables.clone(),
        }
    }

    /// The route key that matched (`GET /users/{userId}`, `$default`).
    pub fn route_key(&self) -> String {
        match self.source {
            Source::Host(r) => r.route_key(),
            Source::Whole(r) => r.route_key.clone(),
        }
    }

    /// The request id (also in the `apigw-requestid` response header).
    pub fn request_id(&self) -> String {
        match self.source {
            Source::Host(r) => r.request_id(),
            Source::Whole(r) => r.request_id.clone(),
        }
    }

    /// The client's IP address (empty when unknown).
    pub fn source_ip(&self) -> String {
        match self.source {
            Source::Host(r) => r.source_ip(),
            Source::Whole(r) => r.source_ip.clone(),
        }
    }

    /// The `user-agent` header (empty when none).
    pub fn user_agent(&self) -> String {
        match self.source {
            Source::Host(r) => r.user_agent(),
            Source::Whole(r) => r.user_agent.clone(),
        }
    }

    /// When the gateway received the request, in milliseconds since the Unix epoch.
    pub fn request_time_epoch_ms(&self) -> u64 {
        match self.source {
            Source::Host(r) => r.request_time_epoch_ms(),
            Source::Whole(r) => r.request_time_epoch_ms,
        }
    }

    /// What the route's authorizer established, when the route has one.
    pub fn authorizer(&self) -> Option<AuthorizerContext> {
        match self.source {
            Source::Host(r) => r.authorizer().map(Into::into),
            Source::Whole(r) => r.authorizer.clone(),
        }
    }

    /// The `X-Amzn-Trace-Id` value of the call, when the stage traces.
    pub fn trace_id(&self) -> Option<String> {
        match self.source {
            Source::Host(r) => r.trace_id(),
            Source::Whole(r) => r.trace_id.clone(),
        }
    }

    /// The body, as received.
    pub fn body(&self) -> Vec<u8> {
        match self.source {
            Source::Host(r) => r.body(),
            Source::Whole(r) => r.body.clone(),
        }
    }

    /// The value of cookie `name` (one call for the cookies).
    pub fn cookie(&self, name: &str) -> Option<String> {
        cookie_in(&self.cookies(), name).map(str::to_owned)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body()).into_owned()
    }

    /// The body parsed as JSON into `T`.
    pub fn body_json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body()).map_err(Error::from)
    }

    /// Every part, as the `integration` world would have handed it over (a call for each).
    pub fn to_request(&self) -> Request {
        Request {
            method: self.method(),
            raw_path: self.raw_path(),
            raw_query: self.raw_query(),
            query_parameters: self.query_parameters(),
            headers: self.headers(),
            cookies: self.cookies(),
            path_parameters: self.path_parameters(),
            stage: self.stage(),
            stage_variables: self.stage_variables(),
            route_key: self.route_key(),
            request_id: self.request_id(),
            source_ip: self.source_ip(),
            user_agent: self.user_agent(),
            request_time_epoch_ms: self.request_time_epoch_ms(),
            authorizer: self.authorizer(),
            trace_id: self.trace_id(),
            body: self.body(),
        }
    }
}

/// The values joined by `,`; `None` when there is none.
fn joined<'v>(mut values: impl Iterator<Item = &'v str>) -> Option<String> {
    let mut joined = values.next()?.to_owned();
    for value in values {
        joined.push(',');
        joined.push_str(value);
    }
    Some(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        let mut request = Request::new("POST", "/items/42");
        request.raw_query = "a=1&a=2&b=3".into();
        request.query_parameters = [("a", "1"), ("a", "2"), ("b", "3")].into_iter().collect();
        request.headers = [("x-multi", "one"), ("accept", "*/*"), ("x-multi", "two")]
            .into_iter()
            .collect();
        request.cookies = vec!["c=1".into(), "theme=dark".into()];
        request.path_parameters = [("id", "42")].into_iter().collect();
        request.stage = "dev".into();
        request.stage_variables = [("TABLE", "t")].into_iter().collect();
        request.authorizer = Some(AuthorizerContext::new("user-1"));
        request.body = b"hi".to_vec();
        request
    }

    #[test]
    fn a_whole_request_reads_as_the_host_answers() {
        let whole = request();
        let lazy = LazyRequest::from(&whole);
        assert_eq!(lazy.method(), "POST");
        assert_eq!(lazy.raw_path(), "/items/42");
        assert_eq!(lazy.query("a").as_deref(), Some("1,2"));
        assert_eq!(lazy.query("nope"), None);
        assert_eq!(lazy.header("X-Multi").as_deref(), Some("one,two"));
        assert_eq!(lazy.header("accept").as_deref(), Some("*/*"));
        assert_eq!(lazy.header("cookie"), None);
        assert_eq!(lazy.path_param("id").as_deref(), Some("42"));
        assert_eq!(lazy.stage_variable("TABLE").as_deref(), Some("t"));
        assert_eq!(lazy.stage_variable("nope"), None);
        assert_eq!(lazy.body(), b"hi");
        assert_eq!(lazy.body_text(), "hi");
        assert!(
            lazy.body_json::<serde_json::Value>().is_err(),
            "`hi` is not JSON"
        );
        assert_eq!(lazy.cookie("theme").as_deref(), Some("dark"));
        assert_eq!(lazy.cookie("nope"), None);
        assert_eq!(
            lazy.authorizer().map(|a| a.principal_id),
            Some("user-1".to_owned())
        );
        assert_eq!(lazy.to_request(), whole);
    }
}
