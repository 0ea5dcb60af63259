//! What a custom authorizer is asked, and what it answers.

use crate::{ContextValue, Fields};

/// Which kind of custom authorizer is asking, as in API Gateway.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthKind {
    /// TOKEN: one identity source header, its value in `token`.
    #[default]
    Token,
    /// REQUEST: several identity sources; headers, query and path parameters are filled in.
    Request,
}

/// API Gateway's authorizer event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthRequest {
    /// TOKEN or REQUEST.
    pub kind: AuthKind,
    /// TOKEN: the identity source header's value (`Bearer eyJ...`); empty for REQUEST.
    pub token: String,
    /// The identity source values, in the configured order.
    pub identity_source: Vec<String>,
    /// `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}/{resource-path}`.
    pub method_arn: String,
    /// The HTTP method.
    pub method: String,
    /// The raw path, without the stage segment.
    pub raw_path: String,
    /// The route key that matched.
    pub route_key: String,
    /// The stage name.
    pub stage: String,
    /// The request id.
    pub request_id: String,
    /// The client's IP address.
    pub source_ip: String,
    /// REQUEST: headers, in order, repeated names repeated: a REST API's named as the client
    /// sent them (when the host knows the spelling), an HTTP API's lower-case; empty for
    /// TOKEN. [`Fields::get_ignore_case`] reads either.
    pub headers: Fields,
    /// REQUEST: query parameters; empty for TOKEN.
    pub query_parameters: Fields,
    /// REQUEST: path parameters; empty for TOKEN.
    pub path_parameters: Fields,
    /// The stage's variables.
    pub stage_variables: Fields,
}

impl AuthRequest {
    /// A TOKEN request carrying `token` (for tests; the host fills in everything).
    pub fn with_token(token: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            ..Self::default()
        }
    }

    /// The token without its `Bearer ` prefix (the prefix is optional), or `None` when empty.
    /// For REQUEST authorizers it falls back to the `authorization` header.
    pub fn bearer_token(&self) -> Option<&str> {
        let raw = match self.kind {
            AuthKind::Token => self.token.as_str(),
            AuthKind::Request => self.headers.get_ignore_case("authorization").unwrap_or(""),
        };
        let token = raw.strip_prefix("Bearer ").unwrap_or(raw).trim();
        (!token.is_empty()).then_some(token)
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get_ignore_case(name)
    }

    /// The stage variable `name`.
    pub fn stage_variable(&self, name: &str) -> Option<&str> {
        self.stage_variables.get(name)
    }
}

/// Who the caller is, and what the integration should know about them.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Grant {
    /// The principal id (`user-123`).
    pub principal_id: String,
    /// Context entries handed to the integration (`requestContext.authorizer`).
    pub context: Vec<(String, ContextValue)>,
    /// An IAM policy document (JSON) that decides per method ARN; `None` allows the request.
    pub policy_document: Option<String>,
    /// The API key to meter against usage plans.
    pub usage_identifier_key: Option<String>,
}

impl Grant {
    /// A grant for this principal, with no context and no policy.
    pub fn new(principal_id: impl Into<String>) -> Self {
        Self {
            principal_id: principal_id.into(),
            ..Self::default()
        }
    }

    /// Adds a context entry.
    pub fn context(mut self, key: impl Into<String>, value: impl Into<ContextValue>) -> Self {
        self.context.push((key.into(), value.into()));
        self
    }

    /// Sets the IAM policy document (JSON text).
    pub fn policy_document(mut self, policy: impl Into<String>) -> Self {
        self.policy_document = Some(policy.into());
        self
    }

    /// Sets the API key to meter against usage plans.
    pub fn usage_identifier_key(mut self, key: impl Into<String>) -> Self {
        self.usage_identifier_key = Some(key.into());
        self
    }
}

/// An authorizer's decision.
#[derive(Clone, Debug, PartialEq)]
pub enum AuthDecision {
    /// The request may proceed (subject to the policy document, when there is one).
    Allow(Grant),
    /// The caller is known and refused: 403.
    Deny(Grant),
    /// The caller is not authenticated: 401.
    Unauthorized,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_strips_the_optional_prefix() {
        assert_eq!(
            AuthRequest::with_token("Bearer abc").bearer_token(),
            Some("abc")
        );
        assert_eq!(AuthRequest::with_token("abc").bearer_token(), Some("abc"));
        assert_eq!(AuthRequest::with_token("Bearer ").bearer_token(), None);
        assert_eq!(AuthRequest::with_token("").bearer_token(), None);
        let mut r = AuthRequest {
            kind: AuthKind::Request,
            ..AuthRequest::default()
        };
        r.headers.append("authorization", "Bearer xyz");
        assert_eq!(r.bearer_token(), Some("xyz"));
    }

    #[test]
    fn grant_builder_collects_context() {
        let g = Grant::new("u1")
            .context("role", "admin")
            .context("level", 3)
            .context("ok", true);
        assert_eq!(g.principal_id, "u1");
        assert_eq!(
            g.context,
            [
                ("role".to_owned(), ContextValue::Text("admin".into())),
                ("level".to_owned(), ContextValue::Number(3.0)),
                ("ok".to_owned(), ContextValue::Boolean(true)),
            ]
        );
    }
}
