//! The glue behind `integration!`, `lazy_integration!` and `authorizer!`: converts the generated WIT types to the
//! plain ones and back, and turns a handler's outcome into the world's result.

use crate::wit::integration::portico::plugin::types as wit;
use crate::{
    AuthDecision, AuthKind, AuthRequest, AuthorizerContext, ContextValue, Error, Grant,
    LazyRequest, Request, Response,
};

/// What an integration handler may return: a [`Response`], an `http::Response`, or a `Result`
/// of either whose error converts into [`Error`].
pub trait IntoResponseResult {
    /// The outcome as a result.
    fn into_response_result(self) -> Result<Response, Error>;
}

impl IntoResponseResult for Response {
    fn into_response_result(self) -> Result<Response, Error> {
        Ok(self)
    }
}

impl<B: Into<Vec<u8>>> IntoResponseResult for http::Response<B> {
    fn into_response_result(self) -> Result<Response, Error> {
        Ok(self.into())
    }
}

impl<T: Into<Response>, E: Into<Error>> IntoResponseResult for Result<T, E> {
    fn into_response_result(self) -> Result<Response, Error> {
        self.map(Into::into).map_err(Into::into)
    }
}

/// What an authorizer handler may return: an [`AuthDecision`], or a `Result` of one whose
/// error is logged and answers `Unauthorized`.
pub trait IntoAuthDecision {
    /// The outcome as a decision.
    fn into_auth_decision(self) -> AuthDecision;
}

impl IntoAuthDecision for AuthDecision {
    fn into_auth_decision(self) -> AuthDecision {
        self
    }
}

impl<E: Into<Error>> IntoAuthDecision for Result<AuthDecision, E> {
    fn into_auth_decision(self) -> AuthDecision {
        self.unwrap_or_else(|e| {
            crate::log::warn(format_args!("authorization failed: {}", e.into()));
            AuthDecision::Unauthorized
        })
    }
}

/// Runs an integration handler on a WIT request (called by `integration!`).
pub fn run_integration<F, R>(
    handler: F,
    request: wit::Request,
) -> Result<wit::Response, wit::PluginError>
where
    F: FnOnce(Request) -> R,
    R: IntoResponseResult,
{
    install_panic_hook();
    world_result(handler(request.into()))
}

/// Runs a lazy-integration handler on the host's request (called by `lazy_integration!`).
pub fn run_lazy_integration<F, R>(
    handler: F,
    request: &wit::IncomingRequest,
) -> Result<wit::Response, wit::PluginError>
where
    F: FnOnce(LazyRequest<'_>) -> R,
    R: IntoResponseResult,
{
    install_panic_hook();
    world_result(handler(LazyRequest::host(request)))
}

/// A handler's outcome as the integration worlds' result.
fn world_result(outcome: impl IntoResponseResult) -> Result<wit::Response, wit::PluginError> {
    match outcome.into_response_result() {
        Ok(response) => Ok(response.into()),
        Err(error) => Err(wit::PluginError {
            message: error.into_message(),
        }),
    }
}

/// Runs an authorizer handler on a WIT auth request (called by `authorizer!`).
pub fn run_authorizer<F, D>(handler: F, request: wit::AuthRequest) -> wit::AuthDecision
where
    F: FnOnce(AuthRequest) -> D,
    D: IntoAuthDecision,
{
    install_panic_hook();
    handler(request.into()).into_auth_decision().into()
}

/// A panic becomes an error line in the host's log before the instance traps: without it the
/// host would only see `unreachable` (wasm32 has no stderr to print the message to).
fn install_panic_hook() {
    #[cfg(target_arch = "wasm32")]
    std::panic::set_hook(Box::new(|info| {
        crate::log::error(format_args!("plugin panicked: {info}"))
    }));
}

impl From<wit::ContextValue> for ContextValue {
    fn from(v: wit::ContextValue) -> Self {
        match v {
            wit::ContextValue::Text(s) => ContextValue::Text(s),
            wit::ContextValue::Number(n) => ContextValue::Number(n),
            wit::ContextValue::Boolean(b) => ContextValue::Boolean(b),
        }
    }
}

impl From<ContextValue> for wit::ContextValue {
    fn from(v: ContextValue) -> Self {
        match v {
            ContextValue::Text(s) => wit::ContextValue::Text(s),
            ContextValue::Number(n) => wit::ContextValue::Number(n),
            ContextValue::Boolean(b) => wit::ContextValue::Boolean(b),
        }
    }
}

fn convert_context<A: Into<B>, B>(context: Vec<(String, A)>) -> Vec<(String, B)> {
    context.into_iter().map(|(k, v)| (k, v.into())).collect()
}

impl From<wit::Request> for Request {
    fn from(r: wit::Request) -> Self {
        Request {
            method: r.method,
            raw_path: r.raw_path,
            raw_query: r.raw_query,
            query_parameters: r.query_parameters.into(),
            headers: r.headers.into(),
            cookies: r.cookies,
            path_parameters: r.path_parameters.into(),
            stage: r.stage,
            stage_variables: r.stage_variables.into(),
            route_key: r.route_key,
            request_id: r.request_id,
            source_ip: r.source_ip,
            user_agent: r.user_agent,
            request_time_epoch_ms: r.request_time_epoch_ms,
            authorizer: r.authorizer.map(Into::into),
            trace_id: r.trace_id,
            body: r.body,
        }
    }
}

impl From<wit::AuthorizerContext> for AuthorizerContext {
    fn from(a: wit::AuthorizerContext) -> Self {
        AuthorizerContext {
            principal_id: a.principal_id,
            context: convert_context(a.context),
        }
    }
}

impl From<Response> for wit::Response {
    fn from(r: Response) -> Self {
        wit::Response {
            status: r.status,
            headers: r.headers.into_vec(),
            cookies: r.cookies,
            body: r.body,
        }
    }
}

impl From<wit::AuthRequest> for AuthRequest {
    fn from(r: wit::AuthRequest) -> Self {
        AuthRequest {
            kind: match r.kind {
                wit::AuthorizerKind::Token => AuthKind::Token,
                wit::AuthorizerKind::Request => AuthKind::Request,
            },
            token: r.token,
            identity_source: r.identity_source,
            method_arn: r.method_arn,
            method: r.method,
            raw_path: r.raw_path,
            route_key: r.route_key,
            stage: r.stage,
            request_id: r.request_id,
            source_ip: r.source_ip,
            headers: r.headers.into(),
            query_parameters: r.query_parameters.into(),
            path_parameters: r.path_parameters.into(),
            stage_variables: r.stage_variables.into(),
        }
    }
}

impl From<Grant> for wit::Grant {
    fn from(g: Grant) -> Self {
        wit::Grant {
            principal_id: g.principal_id,
            context: convert_context(g.context),
            policy_document: g.policy_document,
            usage_identifier_key: g.usage_identifier_key,
        }
    }
}

impl From<AuthDecision> for wit::AuthDecision {
    fn from(d: AuthDecision) -> Self {
        match d {
            AuthDecision::Allow(g) => wit::AuthDecision::Allow(g.into()),
            AuthDecision::Deny(g) => wit::AuthDecision::Deny(g.into()),
            AuthDecision::Unauthorized => wit::AuthDecision::Unauthorized,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_owned(), b.to_owned())
    }

    fn wit_request() -> wit::Request {
        wit::Request {
            method: "GET".into(),
            raw_path: "/users/7".into(),
            raw_query: "a=1".into(),
            query_parameters: vec![pair("a", "1")],
            headers: vec![pair("x-h", "v")],
            cookies: vec!["c=1".into()],
            path_parameters: vec![pair("userId", "7")],
            stage: "dev".into(),
            stage_variables: vec![pair("TABLE", "t")],
            route_key: "GET /users/{userId}".into(),
            request_id: "rid".into(),
            source_ip: "1.2.3.4".into(),
            user_agent: "ua".into(),
            request_time_epoch_ms: 42,
            authorizer: Some(wit::AuthorizerContext {
                principal_id: "p".into(),
                context: vec![("n".into(), wit::ContextValue::Number(1.0))],
            }),
            trace_id: Some("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0".into()),
            body: b"hi".to_vec(),
        }
    }

    #[test]
    fn integration_round_trip() {
        let out = run_integration(
            |r: Request| {
                assert_eq!(r.path_param("userId"), Some("7"));
                assert_eq!(r.header("X-H"), Some("v"));
                assert_eq!(r.stage_variable("TABLE"), Some("t"));
                assert_eq!(r.cookie("c"), Some("1"));
                assert_eq!(r.request_time_epoch_ms, 42);
                assert_eq!(
                    r.trace_id.as_deref(),
                    Some("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0")
                );
                let auth = r.authorizer.as_ref().unwrap();
                assert_eq!(auth.get("n"), Some(&ContextValue::Number(1.0)));
                Response::json(201, &serde_json::json!({"path": r.raw_path}))
            },
            wit_request(),
        )
        .ok()
        .unwrap();
        assert_eq!(out.status, 201);
        assert_eq!(out.headers, [pair("content-type", "application/json")]);
        assert_eq!(out.body, br#"{"path":"/users/7"}"#);
    }

    #[test]
    fn integration_errors_become_plugin_errors() {
        let out = run_integration(|_| Err::<Response, _>(Error::new("boom")), wit_request());
        assert_eq!(out.err().unwrap().message, "boom");
        let out = run_integration(
            |r: Request| r.body_json::<u32>().map(|_| Response::ok()),
            wit_request(),
        );
        assert!(out.err().unwrap().message.contains("expected"));
    }

    #[test]
    fn handlers_may_return_plain_or_http_responses() {
        assert_eq!(
            run_integration(|_| Response::new(204), wit_request())
                .ok()
                .unwrap()
                .status,
            204
        );
        let out = run_integration(
            |_| http::Response::builder().status(202).body("x").unwrap(),
            wit_request(),
        );
        assert_eq!(out.ok().unwrap().status, 202);
    }

    #[test]
    fn authorizer_errors_become_unauthorized() {
        let request = wit::AuthRequest {
            kind: wit::AuthorizerKind::Token,
            token: "Bearer t".into(),
            identity_source: vec!["Bearer t".into()],
            method_arn: "arn".into(),
            method: "GET".into(),
            raw_path: "/".into(),
            route_key: "GET /".into(),
            stage: "dev".into(),
            request_id: "r".into(),
            source_ip: "".into(),
            headers: vec![],
            query_parameters: vec![],
            path_parameters: vec![],
            stage_variables: vec![],
        };
        let allow = run_authorizer(
            |r: AuthRequest| {
                AuthDecision::Allow(Grant::new(r.bearer_token().unwrap()).context("k", true))
            },
            request.clone(),
        );
        match allow {
            wit::AuthDecision::Allow(g) => {
                assert_eq!(g.principal_id, "t");
                assert!(matches!(g.context[0].1, wit::ContextValue::Boolean(true)));
            }
            _ => panic!("expected allow"),
        }
        let failed = run_authorizer(|_| Err::<AuthDecision, _>(Error::new("bad")), request);
        assert!(matches!(failed, wit::AuthDecision::Unauthorized));
    }
}
