//! The log phase: each stage's access log line (`accessLog.format`, its `$context.*` variables
//! compiled once per stage) and the request metrics, both recorded once the response is known.
//!
//! The other phases only fill in a [`Record`] (the stage reached, the route matched, what the
//! authorizer and the integration said); nothing here reaches into them.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HOST, USER_AGENT};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, Uri, Version};
use metrics::{Key, Label, Metadata};

use crate::authorize::caller::{AcceptedKey, Authorization};
use crate::error::{Error, KeyPath};
use crate::respond::{GatewayError, RequestIds, ResponseType};
use crate::template::{ContextNames, Escaping, Output, Template};
use crate::time::{clf_time, epoch_millis, wall_clock};
use crate::trace::TraceId;

/// The `tracing` target of access log lines: one `info` event per request whose stage has an
/// `accessLog`, the rendered line as its message.
pub const ACCESS_LOG_TARGET: &str = "portico::access_log";

/// Metric names (labels `api`, `stage`, `route`), after API Gateway's CloudWatch metrics.
pub mod metric {
    /// Counter: requests answered (CloudWatch `Count`).
    pub const COUNT: &str = "portico_requests_total";
    /// Counter: answers with a 4xx status (CloudWatch `4XXError`).
    pub const ERRORS_4XX: &str = "portico_4xx_errors_total";
    /// Counter: answers with a 5xx status (CloudWatch `5XXError`).
    pub const ERRORS_5XX: &str = "portico_5xx_errors_total";
    /// Histogram: seconds from receiving the request to the response (CloudWatch `Latency`).
    pub const LATENCY: &str = "portico_latency_seconds";
    /// Histogram: seconds the integration took, for requests that reached it (CloudWatch
    /// `IntegrationLatency`).
    pub const INTEGRATION_LATENCY: &str = "portico_integration_latency_seconds";
    /// Counter: requests refused by a token bucket (429 THROTTLED).
    pub const THROTTLED: &str = "portico_throttled_total";
    /// Counter: requests refused by a usage plan's quota (429 QUOTA_EXCEEDED).
    pub const QUOTA_EXCEEDED: &str = "portico_quota_exceeded_total";
    /// Counter: requests answered from the stage's response cache (CloudWatch
    /// `CacheHitCount`).
    pub const CACHE_HITS: &str = "portico_cache_hits_total";
    /// Counter: requests of a cached route that went to the integration (CloudWatch
    /// `CacheMissCount`).
    pub const CACHE_MISSES: &str = "portico_cache_misses_total";
    /// Gauge: a plugin's instances alive (labels `api`, `plugin`): warm ones, idle or in a
    /// call; fresh ones in a call.
    pub const PLUGIN_INSTANCES: &str = crate::plugin::metric::INSTANCES;
    /// Counter: instances a plugin created (cold starts), provisioned ones included.
    pub const PLUGIN_COLD_STARTS: &str = crate::plugin::metric::COLD_STARTS;
    /// Counter: calls refused by a plugin's `maxConcurrency` (its queue full, or the wait too
    /// long).
    pub const PLUGIN_THROTTLED: &str = crate::plugin::metric::THROTTLED;
    /// Counter: warm instances retired because their memory grew past nine tenths of the
    /// plugin's `memoryMb` (a plugin that keeps some of each call's memory).
    pub const PLUGIN_MEMORY_RETIREMENTS: &str = crate::plugin::metric::MEMORY_RETIREMENTS;
}

/// What AWS writes for a variable that has no value.
const MISSING: &str = "-";

/// The `$context.*` variables an access log format may use.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Var {
    AccountId,
    ApiId,
    AuthorizerError,
    AuthorizerPrincipalId,
    CacheHit,
    DeploymentId,
    DomainName,
    ErrorMessage,
    ErrorMessageString,
    ErrorResponseType,
    ExtendedRequestId,
    HttpMethod,
    IsCanaryRequest,
    IntegrationError,
    IntegrationLatency,
    IntegrationStatus,
    ApiKey,
    ApiKeyId,
    Path,
    Protocol,
    RequestId,
    RequestTime,
    RequestTimeEpoch,
    ResponseLatency,
    ResponseLength,
    RouteKey,
    SourceIp,
    Stage,
    Status,
    Throttled,
    UsagePlanId,
    UserAgent,
    /// `$context.xrayTraceId`: the trace id in X-Ray's spelling (traced stages).
    XrayTraceId,
    /// `$context.traceId`: the same trace id in W3C's spelling.
    TraceId,
    /// `$context.authorizer.claims.NAME`: a JWT claim.
    Claim(String),
    /// `$context.authorizer.KEY`: a custom authorizer's context value.
    AuthorizerContext(String),
}

/// Variable names (after `$context.`), AWS's spellings; several AWS names mean one value here.
const VARIABLES: &[(&str, Var)] = &[
    ("accountId", Var::AccountId),
    ("apiId", Var::ApiId),
    ("authorizer.error", Var::AuthorizerError),
    ("authorizer.principalId", Var::AuthorizerPrincipalId),
    // Not AWS's (it has only the CacheHitCount metric): `true` for an answer from the response
    // cache, `false` for a cached route's integration call, `-` when no cache was consulted.
    ("cacheHit", Var::CacheHit),
    ("deploymentId", Var::DeploymentId),
    ("domainName", Var::DomainName),
    ("error.message", Var::ErrorMessage),
    ("error.messageString", Var::ErrorMessageString),
    ("error.responseType", Var::ErrorResponseType),
    ("extendedRequestId", Var::ExtendedRequestId),
    ("httpMethod", Var::HttpMethod),
    ("isCanaryRequest", Var::IsCanaryRequest),
    ("integration.error", Var::IntegrationError),
    ("integration.integrationStatus", Var::IntegrationStatus),
    ("integration.latency", Var::IntegrationLatency),
    ("integration.status", Var::IntegrationStatus),
    ("integrationErrorMessage", Var::IntegrationError),
    ("integrationLatency", Var::IntegrationLatency),
    ("integrationStatus", Var::IntegrationStatus),
    ("identity.apiKey", Var::ApiKey),
    ("identity.apiKeyId", Var::ApiKeyId),
    ("identity.sourceIp", Var::SourceIp),
    ("identity.userAgent", Var::UserAgent),
    ("path", Var::Path),
    ("protocol", Var::Protocol),
    ("requestId", Var::RequestId),
    ("requestTime", Var::RequestTime),
    ("requestTimeEpoch", Var::RequestTimeEpoch),
    ("responseLatency", Var::ResponseLatency),
    ("responseLength", Var::ResponseLength),
    ("routeKey", Var::RouteKey),
    ("stage", Var::Stage),
    ("status", Var::Status),
    // Not AWS's: whether a token bucket or a quota refused the request (`true`/`false`).
    ("throttled", Var::Throttled),
    // Not AWS's: the trace id as OpenTelemetry backends (Jaeger, Tempo) show it, 32 hex digits.
    ("traceId", Var::TraceId),
    ("usagePlanId", Var::UsagePlanId),
    ("xrayTraceId", Var::XrayTraceId),
];

impl Var {
    /// The variable `$context.NAME` names: one of [`VARIABLES`], a claim or a context value.
    fn from_name(name: &str) -> Option<Self> {
        if let Some((_, var)) = VARIABLES.iter().find(|(known, _)| *known == name) {
            return Some(var.clone());
        }
        let key = name.strip_prefix("authorizer.")?;
        match key.strip_prefix("claims.") {
            Some(claim) if !claim.is_empty() => Some(Var::Claim(claim.to_owned())),
            _ if !key.is_empty() && !key.contains('.') => {
                Some(Var::AuthorizerContext(key.to_owned()))
            }
            _ => None,
        }
    }

    /// Every name a format may use, for the error that names an unknown one.
    fn supported() -> String {
        VARIABLES
            .iter()
            .map(|(name, _)| format!("$context.{name}"))
            .chain([
                "$context.authorizer.claims.NAME".to_owned(),
                "$context.authorizer.KEY".to_owned(),
            ])
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A compiled `accessLog.format`.
#[derive(Debug, Clone)]
pub(crate) struct AccessLog {
    template: Template<Var>,
}

impl AccessLog {
    /// Compiles `format` (found at `at`): every `$context.NAME` must be a variable we know. A
    /// format that is a JSON object gets its values escaped as JSON string content, so that a
    /// quote or a newline in a user agent cannot break the line; any other, control characters.
    pub(crate) fn compile(format: &str, at: &KeyPath) -> Result<Self, Error> {
        let names = ContextNames::Whole {
            supported: Var::supported,
        };
        let escaping = if format.trim_start().starts_with('{') {
            Escaping::Json
        } else {
            Escaping::ControlChars
        };
        let template = Template::parse(format, names, at, Var::from_name)?;
        Ok(AccessLog {
            template: template.with_escaping(escaping),
        })
    }

    fn render(&self, facts: &Facts<'_, '_>) -> String {
        self.template.render(|var, out| facts.write(var, out))
    }
}

/// The log phase's settings for one stage, compiled once.
#[derive(Debug, Clone)]
pub(crate) struct StageLog {
    stage: String,
    deployment_id: String,
    /// Whether this is the stage's canary (`$context.isCanaryRequest`, the `canary` label).
    canary: bool,
    account_id: String,
    access_log: Option<AccessLog>,
    /// Metrics of requests that matched no route (a route's own are in its compiled route:
    /// the record is handed them when the route matches, with no lookup).
    unrouted: RouteMetrics,
}

impl StageLog {
    /// The stage's access log (`accessLog.format` at `at`) and the metrics of its unrouted
    /// requests.
    pub(crate) fn compile(
        api_id: &str,
        account_id: &str,
        stage: &str,
        deployment_id: &str,
        canary: bool,
        format: Option<&str>,
        at: &KeyPath,
    ) -> Result<Self, Error> {
        let access_log = match format {
            Some(format) => Some(AccessLog::compile(format, at)?),
            None => None,
        };
        Ok(StageLog {
            stage: stage.to_owned(),
            deployment_id: deployment_id.to_owned(),
            canary,
            account_id: account_id.to_owned(),
            access_log,
            unrouted: RouteMetrics::new(api_id, stage, MISSING, canary),
        })
    }
}

/// Where the metrics go: the recorder sees `portico::observe` at level INFO, as with the
/// `metrics` macros.
const METRIC_METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// One route's metric keys (labels `api`, `stage`, `route`, `canary`), built once: a request hands the
/// recorder borrowed keys, with no label copied.
#[derive(Debug, Clone)]
pub(crate) struct RouteMetrics {
    count: Key,
    errors_4xx: Key,
    errors_5xx: Key,
    latency: Key,
    integration_latency: Key,
    throttled: Key,
    quota_exceeded: Key,
    cache_hits: Key,
    cache_misses: Key,
}

impl RouteMetrics {
    /// The keys of route `route` of stage `stage` of API `api`, served by the stage's canary
    /// or not.
    pub(crate) fn new(api: &str, stage: &str, route: &str, canary: bool) -> Self {
        let labels = vec![
            Label::new("api", api.to_owned()),
            Label::new("stage", stage.to_owned()),
            Label::new("route", route.to_owned()),
            Label::from_static_parts("canary", if canary { "true" } else { "false" }),
        ];
        let key = |name: &'static str| Key::from_parts(name, labels.clone());
        RouteMetrics {
            count: key(metric::COUNT),
            errors_4xx: key(metric::ERRORS_4XX),
            errors_5xx: key(metric::ERRORS_5XX),
            latency: key(metric::LATENCY),
            integration_latency: key(metric::INTEGRATION_LATENCY),
            throttled: key(metric::THROTTLED),
            quota_exceeded: key(metric::QUOTA_EXCEEDED),
            cache_hits: key(metric::CACHE_HITS),
            cache_misses: key(metric::CACHE_MISSES),
        }
    }

    /// Counts one answer with `status`, taking `latency`, of which the integration took
    /// `integration_latency` (if reached); `refusal` is the gateway response that answered,
    /// `cache_hit` whether the response cache answered (when it was consulted).
    fn record(
        &self,
        status: StatusCode,
        latency: Duration,
        integration_latency: Option<Duration>,
        refusal: Option<ResponseType>,
        cache_hit: Option<bool>,
    ) {
        metrics::with_recorder(|recorder| {
            let counter = |key: &Key| recorder.register_counter(key, &METRIC_METADATA);
            let histogram = |key: &Key| recorder.register_histogram(key, &METRIC_METADATA);
            counter(&self.count).increment(1);
            match refusal {
                Some(ResponseType::Throttled) => counter(&self.throttled).increment(1),
                Some(ResponseType::QuotaExceeded) => counter(&self.quota_exceeded).increment(1),
                _ => {}
            }
            match cache_hit {
                Some(true) => counter(&self.cache_hits).increment(1),
                Some(false) => counter(&self.cache_misses).increment(1),
                None => {}
            }
            if status.is_client_error() {
                counter(&self.errors_4xx).increment(1);
            } else if status.is_server_error() {
                counter(&self.errors_5xx).increment(1);
            }
            histogram(&self.latency).record(latency.as_secs_f64());
            if let Some(integration_latency) = integration_latency {
                histogram(&self.integration_latency).record(integration_latency.as_secs_f64());
            }
        })
    }
}

/// Whether an access log line may be written for a request to an API: some stage has an
/// `accessLog` and someone listens to [`ACCESS_LOG_TARGET`]. When not, a [`Record`] skips
/// copying the request's facts, so requests that are only counted stay cheap.
pub(crate) fn access_log_wanted(some_stage_logs: bool) -> bool {
    some_stage_logs && tracing::enabled!(target: ACCESS_LOG_TARGET, tracing::Level::INFO)
}

/// What the phases learn about one request, for the log phase: each fact written once, by the
/// phase that learns it (through the exchange's `&mut`; the first write stands), and read by
/// the log phase.
pub(crate) struct Record<'a> {
    started: Instant,
    head: RequestHead<'a>,
    /// Whether an access log line may be written (see [`access_log_wanted`]); when not, the
    /// facts only the log prints (principal, error messages) are not kept.
    logged: bool,
    stage: Option<&'a StageLog>,
    route_key: Option<&'a str>,
    route_metrics: Option<&'a RouteMetrics>,
    authorization: Option<Authorization>,
    authorizer_error: Option<String>,
    /// The API key the caller was admitted with (logged requests only).
    api_key: Option<AcceptedKey>,
    /// The gateway response that answered, if one did (every request: metrics count some).
    refusal: Option<ResponseType>,
    /// The integration's latency and the status it answered (none when it failed).
    integration: Option<(Duration, Option<u16>)>,
    integration_error: Option<String>,
    error: Option<GatewayError>,
    /// Whether the response cache answered (`Some(false)`: it was consulted and missed).
    cache_hit: Option<bool>,
    /// The trace the request belongs to (traced stages only).
    trace_id: Option<TraceId>,
}

/// The request as the log sees it: borrowed from the request the gateway holds, never copied.
pub(crate) struct RequestHead<'a> {
    method: &'a Method,
    uri: &'a Uri,
    version: Version,
    headers: &'a HeaderMap,
    peer: Option<std::net::IpAddr>,
}

impl<'a> RequestHead<'a> {
    /// The head of the request `parts` from the client at `peer`.
    pub(crate) fn new(parts: &'a Parts, peer: Option<std::net::IpAddr>) -> Self {
        RequestHead {
            method: &parts.method,
            uri: &parts.uri,
            version: parts.version,
            headers: &parts.headers,
            peer,
        }
    }
}

impl<'a> From<&'a Parts> for RequestHead<'a> {
    fn from(parts: &'a Parts) -> Self {
        RequestHead::new(parts, crate::net::peer_ip(&parts.extensions))
    }
}

impl<'a, B> From<&'a Request<B>> for RequestHead<'a> {
    fn from(request: &'a Request<B>) -> Self {
        RequestHead {
            method: request.method(),
            uri: request.uri(),
            version: request.version(),
            headers: request.headers(),
            peer: crate::net::peer_ip(request.extensions()),
        }
    }
}

impl<'a> Record<'a> {
    /// Starts the record of a request; `logged` says whether an access log line may be
    /// written for it ([`access_log_wanted`]).
    pub(crate) fn new(head: impl Into<RequestHead<'a>>, logged: bool) -> Self {
        Record {
            started: Instant::now(),
            head: head.into(),
            logged,
            stage: None,
            route_key: None,
            route_metrics: None,
            authorization: None,
            authorizer_error: None,
            api_key: None,
            refusal: None,
            integration: None,
            integration_error: None,
            error: None,
            cache_hit: None,
            trace_id: None,
        }
    }

    /// A record for the same request with its head `parts` (a parameter mapping's), received
    /// at the same time from the same client, that logs nothing: the request's own record
    /// stays the one the log phase reads.
    pub(crate) fn for_request<'b>(&self, parts: &'b Parts) -> Record<'b> {
        Record {
            started: self.started,
            ..Record::new(RequestHead::new(parts, self.head.peer), false)
        }
    }

    /// The client's IP address, when known.
    pub(crate) fn peer(&self) -> Option<std::net::IpAddr> {
        self.head.peer
    }

    /// When the request arrived: the monotonic instant the record started at, read once.
    pub(crate) fn received(&self) -> Instant {
        self.started
    }

    /// The stage phase chose this stage.
    pub(crate) fn reached_stage(&mut self, stage: &'a StageLog) {
        self.stage.get_or_insert(stage);
    }

    /// The route phase matched this route.
    pub(crate) fn matched_route(&mut self, route_key: &'a str, metrics: &'a RouteMetrics) {
        self.route_key.get_or_insert(route_key);
        self.route_metrics.get_or_insert(metrics);
    }

    /// The authorizer let the request through with `authorization`.
    pub(crate) fn authorized(&mut self, authorization: &Authorization) {
        if !self.logged {
            return;
        }
        self.authorization
            .get_or_insert_with(|| authorization.clone());
    }

    /// The authorize phase admitted the caller's API key.
    pub(crate) fn accepted_key(&mut self, key: &AcceptedKey) {
        if !self.logged {
            return;
        }
        self.api_key.get_or_insert_with(|| key.clone());
    }

    /// The authorize phase refused the request.
    pub(crate) fn authorizer_refused(&mut self, error: &GatewayError) {
        if !self.logged {
            return;
        }
        let message = error.detail.as_deref().unwrap_or(&error.message);
        self.authorizer_error
            .get_or_insert_with(|| message.to_owned());
    }

    /// The integration ran for `latency` and answered `outcome`.
    pub(crate) fn integrated(
        &mut self,
        latency: Duration,
        outcome: Result<&Response<Bytes>, &GatewayError>,
    ) {
        let status = outcome.as_ref().ok().map(|r| r.status().as_u16());
        self.integration.get_or_insert((latency, status));
        if let (Err(error), true) = (outcome, self.logged) {
            let message = error.detail.as_deref().unwrap_or(&error.message);
            self.integration_error
                .get_or_insert_with(|| message.to_owned());
        }
    }

    /// The request belongs to trace `trace_id` (its stage traces).
    pub(crate) fn traced(&mut self, trace_id: TraceId) {
        self.trace_id.get_or_insert(trace_id);
    }

    /// The cache phase answered from the cache (`hit`) or let the integration answer.
    pub(crate) fn cached(&mut self, hit: bool) {
        self.cache_hit.get_or_insert(hit);
    }

    /// The request is answered by a gateway response for `error`.
    pub(crate) fn failed(&mut self, error: &GatewayError) {
        self.refusal.get_or_insert(error.response_type);
        if !self.logged {
            return;
        }
        self.error.get_or_insert_with(|| error.clone());
    }

    /// The log phase: metrics for every request, and the stage's access log line when it has
    /// one (and someone listens to [`ACCESS_LOG_TARGET`]).
    pub(crate) fn finish(&self, api_id: &str, ids: &RequestIds, response: &Response<Bytes>) {
        let latency = self.started.elapsed();
        let status = response.status();
        let stage = self.stage;
        let integration_latency = self.integration.map(|(latency, _)| latency);
        let refusal = self.refusal;
        match stage {
            Some(stage) => self.route_metrics.unwrap_or(&stage.unrouted).record(
                status,
                latency,
                integration_latency,
                refusal,
                self.cache_hit,
            ),
            // A host no domain serves: there is no API to count it under.
            None if api_id.is_empty() => {}
            // Rare (no stage serves the path): the keys are built for this one request.
            None => RouteMetrics::new(api_id, MISSING, MISSING, false).record(
                status,
                latency,
                integration_latency,
                refusal,
                None,
            ),
        }
        let Some(access_log) = stage.and_then(|s| s.access_log.as_ref()) else {
            return;
        };
        // `logged` asked whether anyone listens to the target when the request came in.
        if !self.logged {
            return;
        }
        let facts = Facts {
            record: self,
            stage,
            api_id,
            request_id: ids.id(),
            extended_request_id: ids.extended(),
            status: status.as_u16(),
            response_length: response.body().len(),
            latency,
        };
        let line = access_log.render(&facts);
        tracing::info!(target: ACCESS_LOG_TARGET, "{line}");
    }
}

/// Everything a variable may print: the record plus the response.
struct Facts<'r, 'a> {
    record: &'r Record<'a>,
    stage: Option<&'a StageLog>,
    api_id: &'r str,
    request_id: &'r str,
    extended_request_id: &'r str,
    status: u16,
    response_length: usize,
    latency: Duration,
}

impl Facts<'_, '_> {
    /// A value the authorizer established (a claim, a context value), `-` when there is none.
    fn write_authorizer(&self, value: impl Fn(&Authorization) -> Option<String>, out: &mut Output) {
        match self.record.authorization.as_ref().and_then(value) {
            Some(value) if !value.is_empty() => out.text(&value),
            _ => out.raw(MISSING),
        }
    }

    /// Writes `var`'s value, `-` when it has none.
    fn write(&self, var: &Var, out: &mut Output) {
        let record = self.record;
        let head = &record.head;
        let text = |out: &mut Output, value: Option<&str>| match value {
            Some(value) if !value.is_empty() => out.text(value),
            _ => out.raw(MISSING),
        };
        let header = |name: HeaderName| {
            head.headers
                .get(name)
                .map(|v| crate::net::text(v.as_bytes()))
        };
        let number = |out: &mut Output, value: Option<&dyn std::fmt::Display>| match value {
            // Writing to a String cannot fail.
            Some(value) => {
                let _ = write!(out, "{value}");
            }
            None => out.raw(MISSING),
        };
        let integration = record.integration;
        match var {
            Var::AccountId => text(out, self.stage.map(|s| s.account_id.as_str())),
            Var::ApiId => text(out, Some(self.api_id)),
            Var::AuthorizerError => text(out, record.authorizer_error.as_deref()),
            Var::AuthorizerPrincipalId => text(
                out,
                record
                    .authorization
                    .as_ref()
                    .map(Authorization::principal_id),
            ),
            Var::CacheHit => match record.cache_hit {
                Some(hit) => out.raw(if hit { "true" } else { "false" }),
                None => out.raw(MISSING),
            },
            Var::DomainName => text(out, header(HOST).as_deref()),
            Var::ErrorMessage => text(out, record.error.as_ref().map(|e| e.message.as_str())),
            // Already a JSON string, quotes included: written as is.
            Var::ErrorMessageString => match record.error.as_ref() {
                Some(error) => out.raw(&serde_json::to_string(&error.message).unwrap_or_default()),
                // Quoted too, so that a JSON format stays JSON.
                None => out.raw("\"-\""),
            },
            Var::ErrorResponseType => {
                text(out, record.error.as_ref().map(|e| e.response_type.name()))
            }
            Var::HttpMethod => text(out, Some(head.method.as_str())),
            Var::IntegrationError => text(out, record.integration_error.as_deref()),
            Var::IntegrationLatency => number(
                out,
                integration
                    .map(|(latency, _)| latency.as_millis())
                    .as_ref()
                    .map(|v| v as &dyn std::fmt::Display),
            ),
            Var::IntegrationStatus => number(
                out,
                integration
                    .and_then(|(_, status)| status)
                    .as_ref()
                    .map(|v| v as &dyn std::fmt::Display),
            ),
            Var::Path => text(out, Some(head.uri.path())),
            Var::Protocol => {
                let _ = write!(out, "{:?}", head.version);
            }
            Var::RequestId => text(out, Some(self.request_id)),
            Var::ExtendedRequestId => text(out, Some(self.extended_request_id)),
            Var::RequestTime => out.raw(&clf_time(wall_clock(record.started))),
            Var::RequestTimeEpoch => number(out, Some(&epoch_millis(wall_clock(record.started)))),
            Var::ResponseLatency => number(out, Some(&self.latency.as_millis())),
            Var::ResponseLength => number(out, Some(&self.response_length)),
            Var::RouteKey => text(out, record.route_key),
            Var::SourceIp => number(out, head.peer.as_ref().map(|v| v as &dyn std::fmt::Display)),
            Var::Stage => text(out, self.stage.map(|s| s.stage.as_str())),
            Var::DeploymentId => text(out, self.stage.map(|s| s.deployment_id.as_str())),
            Var::IsCanaryRequest => match self.stage {
                Some(stage) => out.raw(if stage.canary { "true" } else { "false" }),
                None => out.raw(MISSING),
            },
            Var::Status => number(out, Some(&self.status)),
            Var::ApiKey => text(out, record.api_key.as_ref().map(|k| &*k.value)),
            Var::ApiKeyId => text(out, record.api_key.as_ref().map(|k| &*k.id)),
            Var::UsagePlanId => text(
                out,
                record
                    .api_key
                    .as_ref()
                    .and_then(|k| k.usage_plan.as_deref()),
            ),
            Var::Throttled => {
                let throttled = matches!(
                    record.refusal.as_ref(),
                    Some(ResponseType::Throttled | ResponseType::QuotaExceeded)
                );
                out.raw(if throttled { "true" } else { "false" })
            }
            Var::UserAgent => text(out, header(USER_AGENT).as_deref()),
            Var::XrayTraceId => text(out, record.trace_id.map(|t| t.xray()).as_deref()),
            Var::TraceId => text(out, record.trace_id.map(|t| t.w3c()).as_deref()),
            Var::Claim(name) => self.write_authorizer(|a| a.claim(name), out),
            Var::AuthorizerContext(key) => self.write_authorizer(|a| a.context_value(key), out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::respond::GatewayError;
    use crate::template::Segment;

    fn at() -> KeyPath {
        KeyPath::root()
            .key("stages")
            .key("prod")
            .key("accessLog")
            .key("format")
    }

    fn stage(format: &str) -> StageLog {
        StageLog::compile(
            "api-1",
            "123456789012",
            "prod",
            "abc123",
            false,
            Some(format),
            &at(),
        )
        .unwrap()
    }

    fn render<'a>(stage: &'a StageLog, record: &Record<'a>, response: &Response<Bytes>) -> String {
        let facts = Facts {
            record,
            stage: Some(stage),
            api_id: "api-1",
            request_id: "rid-1",
            extended_request_id: "rid-1",
            status: response.status().as_u16(),
            response_length: response.body().len(),
            latency: Duration::from_millis(12),
        };
        stage.access_log.as_ref().unwrap().render(&facts)
    }

    /// Whether the format's values are escaped as JSON string content.
    fn json(log: &AccessLog) -> bool {
        log.template.escaping() == Escaping::Json
    }

    #[test]
    fn compiles_into_literals_and_variables() {
        let log = AccessLog::compile("$context.requestId \"$context.status\".", &at()).unwrap();
        assert_eq!(
            log.template.segments(),
            vec![
                Segment::Var(Var::RequestId),
                Segment::Literal(" \"".into()),
                Segment::Var(Var::Status),
                Segment::Literal("\".".into()),
            ]
        );
        assert!(!json(&log));
        assert!(json(&AccessLog::compile(" {\"a\":1}", &at()).unwrap()));
        let log = AccessLog::compile("no variables", &at()).unwrap();
        assert_eq!(
            log.template.segments(),
            vec![Segment::Literal("no variables".into())]
        );
    }

    #[test]
    fn unknown_variables_are_load_errors_naming_the_key() {
        let err = AccessLog::compile("{\"x\":\"$context.nope\"}", &at()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("stages.prod.accessLog.format"), "{text}");
        assert!(text.contains("$context.nope"), "{text}");
        assert!(AccessLog::compile("$context.statusCode", &at()).is_err());
    }

    #[test]
    fn renders_request_facts_and_dashes_for_missing_values() {
        let stage = stage(
            "$context.requestId $context.extendedRequestId $context.httpMethod $context.path \
             $context.routeKey $context.protocol $context.status $context.responseLength \
             $context.responseLatency $context.integrationLatency $context.integrationStatus \
             $context.integrationErrorMessage $context.authorizer.principalId \
             $context.authorizer.error $context.identity.sourceIp $context.stage $context.apiId",
        );
        let mut request = Request::get("/prod/pets?x=1").body(()).unwrap();
        request
            .extensions_mut()
            .insert(std::net::SocketAddr::from(([10, 0, 0, 7], 5555)));
        let mut record = Record::new(&request, true);
        record.reached_stage(&stage);
        let response = Response::new(Bytes::from_static(b"hello"));
        assert_eq!(
            render(&stage, &record, &response),
            "rid-1 rid-1 GET /prod/pets - HTTP/1.1 200 5 12 - - - - - 10.0.0.7 prod api-1"
        );
        let metrics = RouteMetrics::new("api-1", "prod", "GET /pets", false);
        record.matched_route("GET /pets", &metrics);
        record.authorized(&grant("user-1"));
        record.integrated(Duration::from_millis(3), Ok(&response));
        assert_eq!(
            render(&stage, &record, &response),
            "rid-1 rid-1 GET /prod/pets GET /pets HTTP/1.1 200 5 12 3 200 - user-1 - 10.0.0.7 prod api-1"
        );
    }

    /// A custom authorizer's grant to `principal_id`, with a context of each value type.
    fn grant(principal_id: &str) -> Authorization {
        use crate::plugin::ContextValue;
        Authorization::Custom(std::sync::Arc::new(crate::authorize::CustomGrant {
            principal_id: principal_id.to_owned(),
            context: vec![
                (
                    "tier".to_owned(),
                    ContextValue::Text("gold \"1\"".to_owned()),
                ),
                ("quota".to_owned(), ContextValue::Number(100.0)),
                ("admin".to_owned(), ContextValue::Boolean(false)),
            ],
            usage_identifier_key: None,
            policy: None,
        }))
    }

    #[test]
    fn authorizer_context_values_and_claims_are_variables() {
        let stage = stage(
            r#"{"tier":"$context.authorizer.tier","quota":$context.authorizer.quota,"admin":$context.authorizer.admin,"none":"$context.authorizer.none","claim":"$context.authorizer.claims.email"}"#,
        );
        let request = Request::get("/").body(()).unwrap();
        let mut record = Record::new(&request, true);
        let line = render(&stage, &record, &Response::new(Bytes::new()));
        assert!(line.contains(r#""tier":"-""#), "{line}");
        record.authorized(&grant("user-1"));
        let line = render(&stage, &record, &Response::new(Bytes::new()));
        let parsed: serde_json::Value = serde_json::from_str(&line).expect(&line);
        assert_eq!(
            parsed,
            serde_json::json!({"tier": "gold \"1\"", "quota": 100, "admin": false, "none": "-", "claim": "-"})
        );
        // A sentence-ending dot is not part of a name: `$context.authorizer.` is `authorizer`.
        for bad in ["$context.authorizer.", "$context.authorizer.a.b"] {
            assert!(AccessLog::compile(bad, &at()).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_fill_their_variables() {
        let stage = stage(
            "$context.authorizer.error|$context.integrationErrorMessage|$context.integrationStatus|\
             $context.error.message|$context.error.messageString|$context.error.responseType",
        );
        let request = Request::get("/").body(()).unwrap();
        let mut record = Record::new(&request, true);
        let refused = GatewayError::unauthorized();
        record.authorizer_refused(&refused);
        record.failed(&refused);
        let failure = GatewayError::from(&crate::plugin::PluginFailure::Trap(
            "error while executing at wasm backtrace:\n    0: 0x96e - f\n    1: 0x36a7 - handle: wasm trap: unreachable".into(),
        ));
        record.integrated(Duration::from_millis(1), Err(&failure));
        let response = Response::new(Bytes::new());
        assert_eq!(
            render(&stage, &record, &response),
            "Unauthorized|trapped: error while executing at wasm backtrace: 1: 0x36a7 - handle: wasm trap: unreachable|-|Unauthorized|\"Unauthorized\"|UNAUTHORIZED"
        );
    }

    #[test]
    fn json_formats_escape_values() {
        let stage = stage(r#"{"ua":"$context.identity.userAgent","host":"$context.domainName"}"#);
        let request = Request::get("/")
            .header(USER_AGENT, "evil\" \\agent")
            .body(())
            .unwrap();
        let record = Record::new(&request, true);
        let line = render(&stage, &record, &Response::new(Bytes::new()));
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["ua"], "evil\" \\agent");
        assert_eq!(parsed["host"], "-");
        let mut plain = String::new();
        Escaping::ControlChars.write("a\"b\nc", &mut plain);
        assert_eq!(plain, "a\"b\\nc");
    }

    #[test]
    fn records_skip_log_only_facts_when_no_line_will_be_written() {
        let request = Request::get("/").body(()).unwrap();
        let mut record = Record::new(&request, false);
        record.authorized(&grant("user-1"));
        record.failed(&GatewayError::unauthorized());
        assert!(record.authorization.as_ref().is_none());
        assert!(record.error.as_ref().is_none());
        let mut logged = Record::new(&request, true);
        logged.authorized(&grant("user-1"));
        assert_eq!(
            logged
                .authorization
                .as_ref()
                .map(Authorization::principal_id),
            Some("user-1")
        );
    }
}
