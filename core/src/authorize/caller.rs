//! Who is calling: what the authorize phase established about a request, carried by the
//! request's exchange to the phases after it (the integration's event, the access log, the
//! usage plan's limits).

use std::sync::Arc;

use crate::plugin::{AuthorizerContext, ContextValue};

use super::custom::CustomGrant;
use super::jwt::VerifiedToken;

/// The authorize phase's result.
#[derive(Debug, Clone, Default)]
pub(crate) struct Caller {
    /// What the route's authorizer established, when it has one.
    pub(crate) authorization: Option<Authorization>,
    /// The API key the route required and the caller presented, when it required one.
    pub(crate) api_key: Option<AcceptedKey>,
}

/// A key the authorize phase accepted: what later phases (the usage plan's limits, the Lambda
/// event, the access log) know of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AcceptedKey {
    /// The key's id (API Gateway's `apiKeyId`).
    pub(crate) id: Arc<str>,
    /// The key itself, as the caller presented it (API Gateway's `identity.apiKey`).
    pub(crate) value: Arc<str>,
    /// The usage plan that admits the key on this stage; `None` for a key in no plan.
    pub(crate) usage_plan: Option<Arc<str>>,
}

/// What the route's authorizer established: handed to the integration.
#[derive(Debug, Clone)]
pub(crate) enum Authorization {
    /// A verified JWT.
    Jwt(Arc<VerifiedToken>),
    /// A custom authorizer's grant.
    Custom(Arc<CustomGrant>),
}

impl Authorization {
    /// The principal id (a JWT's `sub`).
    pub(crate) fn principal_id(&self) -> &str {
        match self {
            Authorization::Jwt(token) => token.principal_id(),
            Authorization::Custom(grant) => &grant.principal_id,
        }
    }

    /// Whether the authorizer's IAM policy allows the caller `execute-api:InvalidateCache` on
    /// `method_arn` (AWS's api-gateway-caching.md: the permission a `Cache-Control: max-age=0`
    /// needs). Only a custom authorizer's policy can: a JWT carries none.
    pub(crate) fn may_invalidate_cache(&self, method_arn: &str) -> bool {
        match self {
            Authorization::Custom(grant) => grant
                .policy
                .as_ref()
                .is_some_and(|policy| policy.allows_cache_invalidation(method_arn)),
            Authorization::Jwt(_) => false,
        }
    }

    /// JWT claim `name` as text (`$context.authorizer.claims.NAME`): see [`claim_text`]. None
    /// for a custom authorizer, or a claim the token does not carry.
    pub(crate) fn claim(&self, name: &str) -> Option<String> {
        match self {
            Authorization::Jwt(token) => token.claims().get(name).map(claim_text),
            Authorization::Custom(_) => None,
        }
    }

    /// A custom authorizer's context value `key` as text (`$context.authorizer.KEY`): see
    /// [`context_text`]. None for a JWT, or a key the authorizer did not return.
    pub(crate) fn context_value(&self, key: &str) -> Option<String> {
        match self {
            Authorization::Custom(grant) => grant
                .context
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| context_text(value)),
            Authorization::Jwt(_) => None,
        }
    }

    /// The authorizer context the integration world's request carries: a custom authorizer's
    /// context as returned; a JWT's claims, strings, numbers and booleans typed, the rest as JSON.
    pub(crate) fn plugin_context(&self) -> AuthorizerContext {
        let context = match self {
            Authorization::Custom(grant) => grant.context.clone(),
            Authorization::Jwt(token) => token
                .claims()
                .iter()
                .map(|(name, value)| {
                    let value = match value {
                        serde_json::Value::String(s) => ContextValue::Text(s.clone()),
                        serde_json::Value::Bool(b) => ContextValue::Boolean(*b),
                        serde_json::Value::Number(n) => match n.as_f64() {
                            Some(f) => ContextValue::Number(f),
                            None => ContextValue::Text(n.to_string()),
                        },
                        other => ContextValue::Text(other.to_string()),
                    };
                    (name.clone(), value)
                })
                .collect(),
        };
        AuthorizerContext {
            principal_id: self.principal_id().to_owned(),
            context,
        }
    }
}

/// A claim as text, as API Gateway writes claims into payload 1.0 events and access logs:
/// strings as they are, lists as `[a b]`, anything else as JSON.
pub(crate) fn claim_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => format!(
            "[{}]",
            items.iter().map(claim_text).collect::<Vec<_>>().join(" ")
        ),
        other => other.to_string(),
    }
}

/// An authorizer context value as text: strings as they are, numbers as JSON writes them
/// (`1`, not `1.0`), booleans as `true`/`false`.
pub(crate) fn context_text(value: &ContextValue) -> String {
    match value {
        ContextValue::Text(s) => s.clone(),
        ContextValue::Boolean(b) => b.to_string(),
        ContextValue::Number(n) => context_number(*n).to_string(),
    }
}

/// A context number as JSON: an integer when it is whole (`1`, not `1.0`), `null` when it is
/// not a JSON number (NaN, infinities).
pub(crate) fn context_number(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_and_context_values_render_as_api_gateway_writes_them() {
        use serde_json::json;
        assert_eq!(claim_text(&json!("alice")), "alice");
        assert_eq!(claim_text(&json!(["read", "write"])), "[read write]");
        assert_eq!(claim_text(&json!(42)), "42");
        assert_eq!(claim_text(&json!({"a": 1})), r#"{"a":1}"#);
        assert_eq!(claim_text(&json!(true)), "true");
        let text = |v| context_text(&v);
        assert_eq!(text(ContextValue::Text("v".into())), "v");
        assert_eq!(text(ContextValue::Number(1.0)), "1");
        assert_eq!(text(ContextValue::Number(-2.5)), "-2.5");
        assert_eq!(text(ContextValue::Number(f64::NAN)), "null");
        assert_eq!(text(ContextValue::Boolean(true)), "true");
        assert_eq!(context_number(3.0), json!(3));
        assert_eq!(context_number(2.5), json!(2.5));
    }
}
