//! The per-request context: one [`Exchange`] is created when a request arrives and handed, by
//! `&mut`, to each phase in turn (see gateway.rs for the order). Each phase reads what earlier
//! phases established here (the stage, the route match, the caller) and writes its own facts;
//! none reaches into another phase's module. The log phase's [`Record`] travels inside it.
//!
//! This module sits below every phase: it knows the request, the API's identity and the
//! authorize phase's [`Caller`], never a phase's compiled configuration.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::Instant;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::request::Parts;

use crate::authorize::caller::Caller;
use crate::config::ApiIdentity;
use crate::fleet::Budget;
use crate::observe::Record;
use crate::respond::{GatewayResponses, RequestValues};
use crate::trace::RequestTrace;

/// What a phase says: go on to the next phase (`Ok`), or answer now with this gateway response.
pub(crate) type Flow = Result<(), crate::respond::GatewayError>;

/// What a phase that may have to wait says: its [`Flow`] now (the common case: everything it
/// needs is in memory), or after a wait (Redis, a plugin, a key set fetched). The wait is boxed
/// and the answer matched before any await, so that the request's future stays the size of
/// the in-memory path's: the futures the phases await are moved into it, through every layer
/// up to the server's connection, so a kilobyte more costs every request.
///
/// The integrate phase says the same of its answer (`Step<'f, Response<Bytes>>`): a mock's
/// now, every other integration's after its call.
pub(crate) enum Step<'f, T = ()> {
    Now(Result<T, crate::respond::GatewayError>),
    Wait(Pin<Box<dyn Future<Output = Result<T, crate::respond::GatewayError>> + Send + 'f>>),
}

impl<'f, T: 'f> Step<'f, T> {
    /// The step's outcome, awaited if it has to wait.
    pub(crate) async fn outcome(self) -> Result<T, crate::respond::GatewayError> {
        match self {
            Step::Now(outcome) => outcome,
            Step::Wait(wait) => wait.await,
        }
    }
}

/// Stage variables before a stage is known.
static NO_VARIABLES: BTreeMap<String, String> = BTreeMap::new();

/// A token bucket's state for the RateLimit headers (`RateLimit-Policy: "POLICY";q=QUOTA;
/// w=WINDOW`, `RateLimit: "POLICY";r=REMAINING;t=RESET`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimitNote {
    /// `stage` or `plan`.
    pub(crate) policy: &'static str,
    /// The bucket's size.
    pub(crate) quota: u32,
    /// Seconds the bucket takes to refill from empty.
    pub(crate) window: u64,
    /// Tokens left.
    pub(crate) remaining: u32,
    /// Seconds until a token is back (0 when the request was admitted).
    pub(crate) reset: u64,
}

/// One request on its way through the phases.
pub(crate) struct Exchange<'a> {
    /// The request line and headers.
    pub(crate) parts: &'a Parts,
    /// The whole request body.
    pub(crate) body: Bytes,
    /// `$context.requestId`: the answer's `apigw-requestid` (REST: `x-amzn-RequestId`).
    pub(crate) request_id: &'a str,
    /// `$context.extendedRequestId` (REST: `x-amz-apigw-id`; HTTP APIs: the request id).
    pub(crate) extended_request_id: &'a str,
    /// The API's `apiId`, region and account id.
    pub(crate) api: &'a ApiIdentity,
    /// REST API semantics (`protocol: rest`).
    pub(crate) rest: bool,
    /// The stage (set by the stage phase; empty before).
    pub(crate) stage: &'a str,
    /// The deployment the stage runs (set by the stage phase; empty before).
    pub(crate) deployment_id: &'a str,
    /// The stage's variables.
    pub(crate) stage_variables: &'a BTreeMap<String, String>,
    /// The gateway responses a refusal is rendered with: the stage's once it is known.
    pub(crate) responses: &'a GatewayResponses,
    /// The raw path without the stage segment (the whole path before the stage phase).
    pub(crate) path: &'a str,
    /// The matched route key (set by the route phase; empty before).
    pub(crate) route_key: &'a str,
    /// The route's path parameters, percent-decoded: names borrowed from the router, values
    /// from the path (copied only when decoding changed them).
    pub(crate) path_params: Vec<(&'a str, Cow<'a, str>)>,
    /// Who is calling (set by the authorize phase).
    pub(crate) caller: Caller,
    /// What the log phase records.
    pub(crate) record: Record<'a>,
    /// The tightest bucket the throttle phase took from, when the stage sends RateLimit
    /// headers: they go on the answer, whichever it is.
    pub(crate) rate_limit: Option<RateLimitNote>,
    /// What is left of the time this request may wait for Redis (`rateStore.timeoutMs`,
    /// started by its first Redis call).
    pub(crate) redis_budget: Budget,
    /// The request's trace, when its stage traces (`tracingEnabled`).
    pub(crate) trace: Option<&'a RequestTrace>,
    /// The query string's parameters, decoded: parsed on first use, once.
    query: OnceLock<Vec<(String, String)>>,
}

/// The query string's parameters of `parts`, decoded: parsed into `cell` on first use, once.
pub(crate) fn query_of<'c>(
    parts: &Parts,
    cell: &'c OnceLock<Vec<(String, String)>>,
) -> &'c [(String, String)] {
    cell.get_or_init(|| {
        parts
            .uri
            .query()
            .map(|query| {
                form_urlencoded::parse(query.as_bytes())
                    .map(|(name, value)| (name.into_owned(), value.into_owned()))
                    .collect()
            })
            .unwrap_or_default()
    })
}

impl<'a> Exchange<'a> {
    /// A request that has just arrived, before any phase ran.
    pub(crate) fn new(
        parts: &'a Parts,
        body: Bytes,
        ids: &'a crate::respond::RequestIds,
        api: &'a ApiIdentity,
        rest: bool,
        responses: &'a GatewayResponses,
        record: Record<'a>,
    ) -> Self {
        let (request_id, extended_request_id) = ids.texts();
        Exchange {
            parts,
            body,
            request_id,
            extended_request_id,
            api,
            rest,
            stage: "",
            deployment_id: "",
            stage_variables: &NO_VARIABLES,
            responses,
            path: parts.uri.path(),
            route_key: "",
            path_params: Vec::new(),
            caller: Caller::default(),
            record,
            rate_limit: None,
            redis_budget: Budget::default(),
            trace: None,
            query: OnceLock::new(),
        }
    }

    /// The query string's parameters in order, names and values percent- and `+`-decoded;
    /// parsed once per request, whichever phase asks first.
    pub(crate) fn query(&self) -> &[(String, String)] {
        query_of(self.parts, &self.query)
    }

    /// Where the query's parameters are kept once parsed (for [`query_of`]), so that a phase
    /// that may not need them can take them lazily.
    pub(crate) fn query_cell(&self) -> &OnceLock<Vec<(String, String)>> {
        &self.query
    }

    /// The same request with its request line and headers replaced by `parts`: what an
    /// integration with parameter mapping is sent. The stage, route, caller, ids and body are
    /// this request's; the query string is `parts`'s, parsed if asked for.
    pub(crate) fn with_request<'b>(&'b self, parts: &'b Parts) -> Exchange<'b> {
        Exchange {
            parts,
            body: self.body.clone(),
            request_id: self.request_id,
            extended_request_id: self.extended_request_id,
            api: self.api,
            rest: self.rest,
            stage: self.stage,
            deployment_id: self.deployment_id,
            stage_variables: self.stage_variables,
            responses: self.responses,
            path: self.path,
            route_key: self.route_key,
            path_params: self
                .path_params
                .iter()
                .map(|(name, value)| (*name, Cow::Borrowed(&**value)))
                .collect(),
            caller: self.caller.clone(),
            record: self.record.for_request(parts),
            rate_limit: None,
            redis_budget: Budget::default(),
            trace: self.trace,
            query: OnceLock::new(),
        }
    }

    /// The client's IP address, when the server gave it.
    pub(crate) fn peer(&self) -> Option<IpAddr> {
        self.record.peer()
    }

    /// When the gateway received the request (monotonic).
    pub(crate) fn received(&self) -> Instant {
        self.record.received()
    }

    /// When the gateway received the request, in Unix epoch milliseconds (AWS's
    /// `requestTimeEpoch`): the wall clock is read only when an integration asks.
    pub(crate) fn received_epoch_ms(&self) -> u64 {
        crate::time::epoch_millis(crate::time::wall_clock(self.received()))
    }
}

/// What a gateway response's headers read of the request being refused.
impl RequestValues for Exchange<'_> {
    fn header(&self, name: &HeaderName) -> Option<&HeaderValue> {
        self.parts.headers.get_all(name).iter().next_back()
    }

    fn path_parameter(&self, name: &str) -> Option<&str> {
        self.path_params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| &**value)
    }

    fn query_parameter(&self, name: &str) -> Option<&str> {
        self.query()
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
    }
}

#[cfg(test)]
impl<'a> Exchange<'a> {
    /// An exchange for `parts` in an API with the default identity, for phase unit tests.
    pub(crate) fn for_test(parts: &'a Parts) -> Self {
        static IDENTITY: OnceLock<ApiIdentity> = OnceLock::new();
        static RESPONSES: OnceLock<GatewayResponses> = OnceLock::new();
        let api = IDENTITY.get_or_init(|| {
            crate::config::ApiDefinition::new("t")
                .identity()
                .expect("the default identity")
        });
        let responses = RESPONSES.get_or_init(GatewayResponses::default);
        static IDS: OnceLock<crate::respond::RequestIds> = OnceLock::new();
        Exchange::new(
            parts,
            Bytes::new(),
            IDS.get_or_init(|| crate::respond::RequestIds::new(false)),
            api,
            false,
            responses,
            Record::new(parts, false),
        )
    }
}
