//! `--otlp-endpoint URL` and `--trace-sample RATIO`: the spans of traced stages (the core's
//! `tracing` target [`portico::TRACE_TARGET`]) exported as OpenTelemetry traces over OTLP/HTTP
//! (protobuf), to an OpenTelemetry collector, Jaeger or Tempo.
//!
//! `tracing-opentelemetry`'s layer turns the spans into OpenTelemetry spans of the SDK's
//! tracer provider: X-Ray trace ids (`XrayIdGenerator`: the first 32 bits are the epoch
//! seconds, so X-Ray accepts them too), the sampling of [`Sampling`], a batch span processor
//! (its own thread; the standard `OTEL_BSP_*` variables tune it) and `opentelemetry-otlp`'s
//! HTTP exporter, whose client is [`OtlpClient`]: portico-serve's own [`UpstreamClient`]
//! (hyper, rustls on ring), so that exporting adds no HTTP stack and no OpenSSL.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_aws::trace::XrayIdGenerator;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{
    Sampler, SamplingDecision, SamplingResult, SdkTracerProvider, ShouldSample,
};
use opentelemetry_sdk::Resource;
use portico::HttpClient as _;

use crate::UpstreamClient;

/// The OTLP/HTTP path of traces, appended to an endpoint that does not end with it (as the
/// OpenTelemetry SDKs do with `OTEL_EXPORTER_OTLP_ENDPOINT`).
const TRACES_PATH: &str = "/v1/traces";

/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest answer a collector may give (the SDK's own clients' limit).
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// `--trace-sample`: a ratio from 0 to 1.
pub fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err(format!(
            "{text:?} is not a ratio from 0.0 to 1.0 (the share of new traces recorded)"
        )),
    }
}

/// The collector's traces URL for `--otlp-endpoint URL`: `URL/v1/traces` unless `URL`
/// already ends with it; an error names what is wrong with `URL`.
pub fn traces_url(endpoint: &str) -> Result<String, String> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|e| format!("--otlp-endpoint {endpoint:?}: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(format!(
            "--otlp-endpoint {endpoint:?}: give the collector's http:// or https:// URL (OTLP/HTTP, e.g. http://127.0.0.1:4318)"
        ));
    }
    let base = endpoint.trim_end_matches('/');
    Ok(if base.ends_with(TRACES_PATH) {
        base.to_owned()
    } else {
        format!("{base}{TRACES_PATH}")
    })
}

/// The OpenTelemetry pipeline of `--otlp-endpoint`: its tracer provider, to build the
/// `tracing` layer from and to flush at exit.
pub struct OtlpExport {
    provider: SdkTracerProvider,
}

impl OtlpExport {
    /// Exports to `traces_url` (see [`traces_url`]), recording `sample` of the traces that
    /// start here. Needs a tokio runtime (the exporter's requests run on it).
    pub fn start(traces_url: &str, sample: f64) -> Result<Self, String> {
        let client = OtlpClient {
            client: UpstreamClient::new().map_err(|e| format!("the OTLP client's TLS: {e}"))?,
            runtime: tokio::runtime::Handle::try_current()
                .map_err(|_| "the OTLP exporter runs on a tokio runtime".to_owned())?,
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(traces_url)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| format!("the OTLP exporter: {e}"))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampling::new(sample))
            .with_id_generator(XrayIdGenerator::default())
            .with_resource(Resource::builder().with_service_name("portico").build())
            .build();
        Ok(OtlpExport { provider })
    }

    /// The `tracing` layer that makes the gateway's spans this pipeline's.
    pub fn layer<S>(&self) -> impl tracing_subscriber::Layer<S>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        use tracing_subscriber::Layer as _;
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("portico"))
            // Only the request's spans: the diagnostic log's events are not trace data.
            .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                meta.target() == portico::TRACE_TARGET
            }))
    }

    /// Exports what is still batched, and stops the pipeline.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("portico-serve: flushing the traces at exit failed: {e}");
        }
    }
}

/// Which traces are recorded: a caller's decision is kept (`Sampled=1`/`Sampled=0`, W3C's
/// sampled flag), as X-Ray and API Gateway keep it; a trace that starts here, or comes with
/// no decision (`Sampled=?`, or no `Sampled`), is recorded with probability `ratio`.
/// (OpenTelemetry's `ParentBased` sampler would drop an undecided X-Ray trace as unsampled.)
#[derive(Debug, Clone)]
struct Sampling {
    ratio: Sampler,
}

/// opentelemetry-aws's flag for an X-Ray header with no decision (`Sampled=?` or none).
const DEFERRED: u8 = 0x02;

impl Sampling {
    fn new(ratio: f64) -> Self {
        Sampling {
            ratio: Sampler::TraceIdRatioBased(ratio),
        }
    }
}

impl ShouldSample for Sampling {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        if let Some(parent) = parent_context.filter(|cx| cx.has_active_span()) {
            let parent = parent.span();
            let parent = parent.span_context();
            if parent.is_valid() && parent.trace_flags().to_u8() & DEFERRED == 0 {
                return SamplingResult {
                    decision: if parent.is_sampled() {
                        SamplingDecision::RecordAndSample
                    } else {
                        SamplingDecision::Drop
                    },
                    attributes: Vec::new(),
                    trace_state: parent.trace_state().clone(),
                };
            }
        }
        self.ratio
            .should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

/// The exporter's HTTP client: [`UpstreamClient`], its requests run on the server's tokio
/// runtime (the batch processor exports from its own thread, outside any runtime).
#[derive(Debug)]
struct OtlpClient {
    client: UpstreamClient,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, opentelemetry_http::HttpError> {
        let exchange = post(self.client.clone(), request);
        // The timer is made inside the task: this thread has no runtime to make it on.
        let answer = self
            .runtime
            .spawn(async move { tokio::time::timeout(EXPORT_TIMEOUT, exchange).await });
        match answer.await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err("the collector did not answer in time".into()),
            Err(e) => Err(e.into()),
        }
    }
}

/// `request` sent, the collector's whole answer read (at most [`MAX_ANSWER_BYTES`]).
async fn post(
    client: UpstreamClient,
    request: http::Request<Bytes>,
) -> Result<http::Response<Bytes>, opentelemetry_http::HttpError> {
    let response = match client.send(request).await {
        Ok(response) => response,
        Err(e) => return Err(Box::new(e)),
    };
    let (parts, mut body) = response.into_parts();
    // Read frame by frame rather than through `Limited`, whose error conversion rustc cannot
    // prove `Send` for every lifetime inside a spawned future.
    let mut whole = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            whole.extend_from_slice(&data);
            if whole.len() > MAX_ANSWER_BYTES {
                return Err("the collector's answer is over 4 MiB".into());
            }
        }
    }
    let body = Bytes::from(whole);
    Ok(http::Response::from_parts(parts, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_from_zero_to_one() {
        assert_eq!(parse_ratio("0"), Ok(0.0));
        assert_eq!(parse_ratio("0.25"), Ok(0.25));
        assert_eq!(parse_ratio("1"), Ok(1.0));
        let mut accepted = Vec::new();
        for bad in ["-0.1", "1.5", "NaN", "half", "", "inf"] {
            if parse_ratio(bad).is_ok() {
                accepted.push(bad);
            }
        }
        assert!(accepted.is_empty(), "accepted {accepted:?}");
    }

    #[test]
    fn the_traces_path_is_appended_once() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318").as_deref(),
            Ok("http://127.0.0.1:4318/v1/traces")
        );
        assert_eq!(
            traces_url("https://collector.example/").as_deref(),
            Ok("https://collector.example/v1/traces")
        );
        assert_eq!(
            traces_url("http://tempo:4318/v1/traces").as_deref(),
            Ok("http://tempo:4318/v1/traces")
        );
        assert!(traces_url("127.0.0.1:4318").is_err());
        assert!(traces_url("grpc://collector:4317").is_err());
    }
}
