//! Tracing a stage (`tracingEnabled: true`): the trace a request belongs to, read from its
//! headers or started here, the spans of its phases, and the headers that pass it on.
//!
//! What API Gateway does, followed here ("Trace user requests to REST APIs using X-Ray",
//! apigateway-xray.md, and "Amazon API Gateway active tracing support for AWS X-Ray",
//! xray-services-apigateway.md):
//! - "API Gateway adds a trace header to incoming HTTP requests that don't already have one"
//!   (`X-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793`): a traced stage continues
//!   the caller's trace, or starts one whose id is an X-Ray trace id (its first 32 bits the
//!   epoch seconds).
//! - "If you call an API Gateway API from a service that's already being traced, API Gateway
//!   passes the trace through, even if X-Ray tracing isn't enabled on the API": an untraced
//!   stage forwards the caller's headers as it forwards every header, and costs nothing more.
//! - The sampling decision travels with the trace (`Sampled=0`, flags `00`): an unsampled
//!   trace is still passed on, so that the services behind keep its id.
//!
//! Both header families are read and written: AWS's `X-Amzn-Trace-Id` (opentelemetry-aws's
//! propagator) and W3C Trace Context's `traceparent`/`tracestate` (opentelemetry's). Which
//! incoming one wins: an X-Ray header with a `Parent`, else a `traceparent`, else an X-Ray
//! header with only a `Root` (a load balancer's). A malformed header is ignored, never an
//! error: the request is then traced as if it had none.
//!
//! Spans go through `tracing` on the target [`TARGET`]; with the `otel` cargo feature and
//! `tracing-opentelemetry`'s layer installed by the embedder they are OpenTelemetry spans
//! of the request's trace, and the ids passed on are theirs. Without a layer, ids are made
//! here (X-Ray's generator) and the trace is passed on unsampled, as nobody records it.
//! Without the `otel` feature no stage may trace (a load error in `deployment`), and this
//! module's [`RequestTrace`] cannot exist.

use http::header::HeaderName;
use tracing::Span;

/// The `tracing` target of the request's spans (`request`, one per phase, `plugin`,
/// `http_proxy`): an embedder's OpenTelemetry layer listens to it.
pub const TARGET: &str = "portico::trace";

/// The span of phase `$name` (a string literal) under the request's span, when the request
/// is traced; `None` when not: nothing is built or dropped then (see [`within`]).
macro_rules! phase_span {
    ($trace:expr, $name:literal) => {
        match $trace {
            Some(trace) => Some(tracing::info_span!(
                target: $crate::trace::TARGET,
                parent: trace.span(),
                $name
            )),
            None => None,
        }
    };
}
pub(crate) use phase_span;

/// Enters `span` while the guard lives (a traced request's phase, its synchronous part);
/// `None` for an untraced request, which pays one branch. Scope the guard to code without an
/// `.await`: a future that waits carries its span with `Instrument` instead.
#[inline]
pub(crate) fn enter(span: &Option<Span>) -> Option<tracing::span::Entered<'_>> {
    span.as_ref().map(Span::enter)
}

/// A span for a call the current phase makes (`plugin`, `http_proxy`), a child of the
/// current span; none when no span is current (an untraced stage), so that an untraced
/// request never starts a trace of its own.
macro_rules! call_span {
    ($name:literal, $($fields:tt)*) => {
        if tracing::Span::current().is_none() {
            tracing::Span::none()
        } else {
            tracing::info_span!(target: $crate::trace::TARGET, $name, $($fields)*)
        }
    };
}
pub(crate) use call_span;

/// AWS's trace header.
pub(crate) const X_AMZN_TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");
/// W3C Trace Context's headers.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Whether `name` is a trace header (`X-Amzn-Trace-Id`, `traceparent`, `tracestate`): on a
/// traced request, the caller's are replaced by the gateway's.
pub(crate) fn is_trace_header(name: &HeaderName) -> bool {
    *name == X_AMZN_TRACE_ID || *name == TRACEPARENT || *name == TRACESTATE
}

/// A request's trace id, 16 bytes (W3C's `trace-id`; X-Ray's `1-EPOCH-RANDOM` spelled
/// otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TraceId(pub(crate) [u8; 16]);

impl TraceId {
    /// X-Ray's spelling: `1-` the first 4 bytes `-` the other 12, in lower-case hex
    /// (`$context.xrayTraceId`).
    pub(crate) fn xray(&self) -> String {
        let hex = self.w3c();
        format!("1-{}-{}", &hex[..8], &hex[8..])
    }

    /// W3C's spelling: 32 lower-case hex digits (`$context.traceId`).
    pub(crate) fn w3c(&self) -> String {
        use std::fmt::Write;
        let mut out = String::with_capacity(32);
        for byte in self.0 {
            // Writing to a String cannot fail.
            let _ = write!(out, "{byte:02x}");
        }
        out
    }
}

/// The trace of one request on a traced stage.
#[cfg(feature = "otel")]
pub(crate) struct RequestTrace {
    /// The request's span: every phase's span is its child.
    span: Span,
    /// The request span's context as passed on: its trace id, its span id (the parent of
    /// whatever the gateway calls), the sampling decision, the trace state.
    context: opentelemetry::trace::SpanContext,
}

/// Without the `otel` feature no stage traces: there is no request trace to hold (the field,
/// private, is what makes one impossible to build).
#[cfg(not(feature = "otel"))]
pub(crate) struct RequestTrace {
    never: std::convert::Infallible,
}

/// What a call passes on: the trace context of the span that makes it.
#[cfg(feature = "otel")]
pub(crate) struct PassedOn(opentelemetry::trace::SpanContext);

/// Without the `otel` feature nothing is passed on (see [`RequestTrace`]).
#[cfg(not(feature = "otel"))]
pub(crate) struct PassedOn {
    never: std::convert::Infallible,
}

#[cfg(not(feature = "otel"))]
impl RequestTrace {
    pub(crate) fn span(&self) -> &Span {
        match self.never {}
    }
    pub(crate) fn trace_id(&self) -> TraceId {
        match self.never {}
    }
    pub(crate) fn passed_on(&self) -> PassedOn {
        match self.never {}
    }
    pub(crate) fn finish(&self, _response: &mut http::Response<bytes::Bytes>) {
        match self.never {}
    }
}

#[cfg(not(feature = "otel"))]
impl PassedOn {
    pub(crate) fn xray(&self) -> String {
        match self.never {}
    }
    pub(crate) fn headers(&self) -> http::HeaderMap {
        match self.never {}
    }
    pub(crate) fn replace_headers(&self, _headers: &mut http::HeaderMap) {
        match self.never {}
    }
}

#[cfg(feature = "otel")]
mod otel {
    use bytes::Bytes;
    use http::header::{HeaderName, HeaderValue};
    use http::request::Parts;
    use http::{HeaderMap, Response};
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};
    use opentelemetry::Context;
    use opentelemetry_aws::trace::{XrayIdGenerator, XrayPropagator};
    use opentelemetry_http::{HeaderExtractor, HeaderInjector};
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use opentelemetry_sdk::trace::IdGenerator;
    use tracing::field::Empty;
    use tracing::Span;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use super::{PassedOn, RequestTrace, TraceId, TARGET};

    use super::{TRACEPARENT, TRACESTATE, X_AMZN_TRACE_ID};

    /// W3C Trace Context Level 2's answer header: the trace and the gateway's span, for a
    /// client that speaks W3C rather than X-Ray.
    const TRACERESPONSE: HeaderName = HeaderName::from_static("traceresponse");

    /// The trace the request's headers carry, if any (malformed headers are none).
    pub(super) fn incoming(headers: &HeaderMap) -> Option<SpanContext> {
        let carrier = HeaderExtractor(headers);
        let xray = XrayPropagator::new()
            .extract(&carrier)
            .span()
            .span_context()
            .clone();
        if xray.is_valid() {
            return Some(xray);
        }
        let w3c = TraceContextPropagator::new()
            .extract(&carrier)
            .span()
            .span_context()
            .clone();
        if w3c.is_valid() {
            return Some(w3c);
        }
        // A `Root` with no `Parent` (what a load balancer adds): the trace goes on from a
        // parent id made here, so that its id is kept.
        (xray.trace_id() != opentelemetry::trace::TraceId::INVALID).then(|| {
            SpanContext::new(
                xray.trace_id(),
                XrayIdGenerator::default().new_span_id(),
                xray.trace_flags(),
                true,
                xray.trace_state().clone(),
            )
        })
    }

    impl RequestTrace {
        /// Starts the trace of a request to `stage` of API `api_id` with request id
        /// `request_id`: its span, the caller's trace continued or a new one.
        pub(crate) fn start(parts: &Parts, api_id: &str, stage: &str, request_id: &str) -> Self {
            let span = tracing::info_span!(
                target: TARGET,
                "request",
                otel.kind = "server",
                otel.status_code = Empty,
                http.request.method = parts.method.as_str(),
                url.path = parts.uri.path(),
                http.route = Empty,
                http.response.status_code = Empty,
                api.id = api_id,
                stage = stage,
                request.id = request_id,
            );
            let incoming = incoming(&parts.headers);
            if let Some(parent) = &incoming {
                // An error only says no OpenTelemetry layer listens: the ids are then made
                // below.
                let _ = span.set_parent(Context::new().with_remote_span_context(parent.clone()));
            }
            let recorded = span.context().span().span_context().clone();
            let context = if recorded.is_valid() {
                recorded
            } else {
                // Nobody records this span: the caller's trace goes on under an id made here,
                // with the caller's decision, or a new trace starts, unsampled.
                let ids = XrayIdGenerator::default();
                match incoming {
                    Some(parent) => SpanContext::new(
                        parent.trace_id(),
                        ids.new_span_id(),
                        parent.trace_flags(),
                        false,
                        parent.trace_state().clone(),
                    ),
                    None => SpanContext::new(
                        ids.new_trace_id(),
                        ids.new_span_id(),
                        TraceFlags::default(),
                        false,
                        TraceState::default(),
                    ),
                }
            };
            RequestTrace { span, context }
        }

        /// The request's span.
        pub(crate) fn span(&self) -> &Span {
            &self.span
        }

        /// The request's trace id.
        pub(crate) fn trace_id(&self) -> TraceId {
            TraceId(self.context.trace_id().to_bytes())
        }

        /// What a call made now passes on: the current span's context (the `plugin` or
        /// `http_proxy` span around the call) when it is recorded, else the request's.
        pub(crate) fn passed_on(&self) -> PassedOn {
            let current = Span::current().context().span().span_context().clone();
            if current.is_valid() && current.trace_id() == self.context.trace_id() {
                PassedOn(current)
            } else {
                PassedOn(self.context.clone())
            }
        }

        /// The respond phase's part: the answer carries the trace back (`X-Amzn-Trace-Id`,
        /// as API Gateway's answers do, and W3C's `traceresponse`), and the request's span
        /// its status.
        pub(crate) fn finish(&self, response: &mut Response<Bytes>) {
            let status = response.status();
            self.span
                .record("http.response.status_code", status.as_u16());
            if status.is_server_error() {
                self.span.record("otel.status_code", "error");
            }
            let headers = response.headers_mut();
            let passed = PassedOn(self.context.clone());
            if let Some(value) = passed.xray_header() {
                headers.insert(X_AMZN_TRACE_ID, value);
            }
            let mut w3c = HeaderMap::new();
            TraceContextPropagator::new()
                .inject_context(&passed.as_context(), &mut HeaderInjector(&mut w3c));
            if let Some(value) = w3c.remove(TRACEPARENT) {
                headers.insert(TRACERESPONSE, value);
            }
        }
    }

    impl PassedOn {
        fn as_context(&self) -> Context {
            Context::new().with_remote_span_context(self.0.clone())
        }

        fn xray_header(&self) -> Option<HeaderValue> {
            HeaderValue::from_str(&self.xray()).ok()
        }

        /// The `X-Amzn-Trace-Id` value (`Root=1-…;Parent=…;Sampled=0|1`).
        pub(crate) fn xray(&self) -> String {
            opentelemetry_aws::trace::xray_propagator::span_context_to_string(&self.0)
                .unwrap_or_default()
        }

        /// This call's trace headers: `X-Amzn-Trace-Id`, `traceparent` and (when there is a
        /// trace state) `tracestate`.
        pub(crate) fn headers(&self) -> HeaderMap {
            let mut headers = HeaderMap::new();
            self.replace_headers(&mut headers);
            headers
        }

        /// `headers` with the trace headers the caller sent replaced by this call's: both
        /// `X-Amzn-Trace-Id` and `traceparent`/`tracestate`.
        pub(crate) fn replace_headers(&self, headers: &mut HeaderMap) {
            headers.remove(X_AMZN_TRACE_ID);
            headers.remove(TRACEPARENT);
            headers.remove(TRACESTATE);
            if let Some(value) = self.xray_header() {
                headers.insert(X_AMZN_TRACE_ID, value);
            }
            TraceContextPropagator::new()
                .inject_context(&self.as_context(), &mut HeaderInjector(headers));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_spelled_as_xray_and_w3c_spell_them() {
        let id = TraceId([
            0x58, 0x40, 0x65, 0x20, 0xa0, 0x06, 0x64, 0x91, 0x27, 0xe3, 0x71, 0x90, 0x3a, 0x2d,
            0xe9, 0x79,
        ]);
        assert_eq!(id.xray(), "1-58406520-a006649127e371903a2de979");
        assert_eq!(id.w3c(), "58406520a006649127e371903a2de979");
    }

    #[cfg(feature = "otel")]
    mod headers {
        use http::HeaderMap;

        use super::super::otel::incoming;

        fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
            pairs
                .iter()
                .map(|(name, value)| {
                    (
                        http::header::HeaderName::from_static(name),
                        value.parse().unwrap(),
                    )
                })
                .collect()
        }

        fn trace_of(pairs: &[(&'static str, &str)]) -> Option<(String, String, bool)> {
            incoming(&headers(pairs)).map(|c| {
                (
                    c.trace_id().to_string(),
                    c.span_id().to_string(),
                    c.is_sampled(),
                )
            })
        }

        #[test]
        fn both_header_families_are_read() {
            assert_eq!(
                trace_of(&[(
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                )]),
                Some((
                    "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                    "00f067aa0ba902b7".into(),
                    true
                ))
            );
            assert_eq!(
                trace_of(&[(
                    "x-amzn-trace-id",
                    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"
                )]),
                Some((
                    "5759e988bd862e3fe1be46a994272793".into(),
                    "53995c3f42cd8ad8".into(),
                    false
                ))
            );
        }

        #[test]
        fn an_xray_parent_wins_then_traceparent_then_a_bare_root() {
            let xray = (
                "x-amzn-trace-id",
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            );
            let w3c = (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            );
            let root = (
                "x-amzn-trace-id",
                "Root=1-5759e988-bd862e3fe1be46a994272793",
            );
            fn trace(pairs: &[(&'static str, &str)]) -> Option<String> {
                trace_of(pairs).map(|(trace, _, _)| trace)
            }
            assert_eq!(
                trace(&[xray, w3c]).as_deref(),
                Some("5759e988bd862e3fe1be46a994272793")
            );
            assert_eq!(
                trace(&[root, w3c]).as_deref(),
                Some("4bf92f3577b34da6a3ce929d0e0e4736")
            );
            // A load balancer's root alone: the trace id is kept.
            assert_eq!(
                trace(&[root]).as_deref(),
                Some("5759e988bd862e3fe1be46a994272793")
            );
        }

        #[test]
        fn malformed_headers_are_ignored() {
            let malformed: &[&[(&'static str, &str)]] = &[
                &[("traceparent", "00-xyz-00f067aa0ba902b7-01")],
                &[(
                    "traceparent",
                    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                )],
                &[(
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                )],
                &[("traceparent", "garbage")],
                &[("x-amzn-trace-id", "Root=2-zz;Parent=1")],
                &[("x-amzn-trace-id", "Root=1-5759e988")],
                &[("x-amzn-trace-id", "nonsense")],
                &[("x-amzn-trace-id", "")],
            ];
            let mut failures = Vec::new();
            for pairs in malformed {
                if let Some(found) = trace_of(pairs) {
                    failures.push(format!("{pairs:?} read as {found:?}"));
                }
            }
            assert!(failures.is_empty(), "{failures:#?}");
        }
    }
}
