//! Who is calling: what the authorize phase established about a request, carried by the
//! request's exchange to the phases after it (the integration's event, the access log, the
//! usage plan's limits).

use std::sync::Arc;

use super::Authorization;

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
