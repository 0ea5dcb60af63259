//! `portico-serve` as a library: load an API definition, bind, serve over HTTP/1.1 and HTTP/2
//! with hyper (or over HTTPS, [`Server::with_tls`]), stop gracefully; optionally serve the
//! metrics on an admin port ([`Server::with_admin`]) and write access log lines
//! ([`AccessLogLayer`]). `http_proxy`
//! integrations reach their backends through [`UpstreamClient`]; [`HotReload`] reloads the API
//! file on SIGHUP and when it changes. The binary in `main.rs` is a
//! thin shell over [`Server`].

mod header_case;
mod otel;
mod reload;
mod tls;
mod upstream;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
pub use otel::{parse_ratio, traces_url, OtlpExport};
use portico::config::{RateStoreDefinition, RedisDefinition};
use portico::{
    ApiDefinition, Gateway, GatewayBuilder, ImportWarning, OpenApiOptions, UsageError,
    ACCESS_LOG_TARGET, DEFAULT_STAGE,
};
pub use reload::{
    HotReload, HotReloadError, Watch, LAST_RELOAD_SUCCESSFUL, LAST_RELOAD_SUCCESS_TIMESTAMP,
    RELOADS_TOTAL,
};
use tokio::net::TcpListener;
use tracing_subscriber::fmt::MakeWriter;
pub use upstream::UpstreamClient;

/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    /// The API definition did not load (the message names the file and key path).
    Definition(portico::Error),
    /// The listen address could not be bound.
    Listen {
        /// The address asked for.
        addr: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The HTTP client of `http_proxy` integrations could not be set up (its TLS settings).
    HttpClient(rustls::Error),
    /// The listener's certificate chain or private key (`--tls-cert`, `--tls-key`) could not
    /// be read or used.
    Tls {
        /// The file at fault.
        file: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Definition(e) => write!(f, "cannot load the API definition: {e}"),
            StartError::Listen { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            StartError::HttpClient(e) => {
                write!(
                    f,
                    "cannot set up the HTTP client of http_proxy integrations: {e}"
                )
            }
            StartError::Tls { file, reason } => {
                write!(f, "cannot use the TLS file {}: {reason}", file.display())
            }
        }
    }
}

impl std::error::Error for StartError {}

/// A bound server, ready to serve one gateway.
pub struct Server {
    gateway: Gateway,
    listener: TcpListener,
    local_addr: SocketAddr,
    /// The admin port (`/metrics`), when asked for.
    admin: Option<(TcpListener, SocketAddr)>,
    /// HTTPS on the listener, when asked for (the admin port stays plain HTTP).
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// The builder with portico-serve's `--data-dir` and `--redis`.
fn configure(
    builder: GatewayBuilder,
    data_dir: Option<&Path>,
    redis: Option<&str>,
) -> Result<GatewayBuilder, StartError> {
    let client = UpstreamClient::new().map_err(StartError::HttpClient)?;
    let mut builder = builder.http_client(Arc::new(client));
    if let Some(dir) = data_dir {
        builder = builder.data_dir(dir);
    }
    if let Some(url) = redis {
        builder = builder.rate_store(RateStoreDefinition::Redis(RedisDefinition::new(url)));
    }
    Ok(builder)
}

/// Binds `listen`, naming the address if it cannot be bound.
async fn bind(listen: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: listen.to_owned(),
            source,
        })
}

impl Server {
    /// Loads `api` and binds `listen` (`127.0.0.1:8080`; port 0 picks a free port). Plugin
    /// key-value data lives in `data_dir/kv.redb` when given, else in memory.
    pub async fn start(
        api: &Path,
        listen: &str,
        data_dir: Option<&Path>,
    ) -> Result<Server, StartError> {
        Self::start_with_redis(api, listen, data_dir, None).await
    }

    /// [`Server::start`], with buckets and quotas in the Redis at `redis` (`redis://HOST:PORT`)
    /// whatever the definition's `rateStore` says; `kvStore: {type: redis}` and
    /// `authorizerCache: {type: redis}` use it too (portico-serve's `--redis`).
    pub async fn start_with_redis(
        api: &Path,
        listen: &str,
        data_dir: Option<&Path>,
        redis: Option<&str>,
    ) -> Result<Server, StartError> {
        Self::start_built(Gateway::file_builder(api), listen, data_dir, redis).await
    }

    /// [`Server::start_with_redis`] for a gateway file (`portico-serve --gateway`): several
    /// APIs, and the custom domains that map hosts and base paths onto their stages.
    pub async fn start_gateway_file(
        file: &Path,
        listen: &str,
        data_dir: Option<&Path>,
        redis: Option<&str>,
    ) -> Result<Server, StartError> {
        Self::start_built(Gateway::gateway_file_builder(file), listen, data_dir, redis).await
    }

    /// Builds what `builder` read, with the settings the flags give, and binds `listen`.
    async fn start_built(
        builder: Result<portico::GatewayBuilder, portico::Error>,
        listen: &str,
        data_dir: Option<&Path>,
        redis: Option<&str>,
    ) -> Result<Server, StartError> {
        let builder = builder.map_err(StartError::Definition)?;
        let gateway = configure(builder, data_dir, redis)?
            .build()
            .map_err(StartError::Definition)?;
        let listener = bind(listen).await?;
        Ok(Self::with_listener(gateway, listener))
    }

    /// [`Server::start_with_redis`] for an OpenAPI 3.0 document (`portico-serve --openapi`):
    /// imported with `options` (stage, functions file, ...), its relative paths starting from
    /// the document's directory. Returns the import's warnings beside the server; a load error
    /// names the document's key path.
    pub async fn start_openapi(
        openapi: &Path,
        options: &OpenApiOptions,
        listen: &str,
        data_dir: Option<&Path>,
        redis: Option<&str>,
    ) -> Result<(Server, Vec<ImportWarning>), StartError> {
        let import =
            ApiDefinition::from_openapi_file(openapi, options).map_err(StartError::Definition)?;
        let base_dir = match openapi.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let builder = Gateway::builder(import.definition.clone()).base_dir(base_dir);
        let gateway = configure(builder, data_dir, redis)?
            .build()
            .map_err(|e| StartError::Definition(import.explain(e)))?;
        let listener = bind(listen).await?;
        Ok((Self::with_listener(gateway, listener), import.warnings))
    }

    /// Serves an already built gateway on an already bound listener.
    pub fn with_listener(gateway: Gateway, listener: TcpListener) -> Server {
        let local_addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        Server {
            gateway,
            listener,
            local_addr,
            admin: None,
            tls: None,
        }
    }

    /// Also serves the gateway's metrics, in Prometheus text format, at `GET /metrics` on
    /// `listen` (installing the process's metrics recorder, see [`metrics_handle`]).
    pub async fn with_admin(mut self, listen: &str) -> Result<Server, StartError> {
        let listener = bind(listen).await?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: listen.to_owned(),
            source,
        })?;
        metrics_handle();
        self.admin = Some((listener, addr));
        Ok(self)
    }

    /// Serves HTTPS instead of HTTP on the listener (HTTP/2 or HTTP/1.1, as the client's ALPN
    /// asks), with the certificate chain in `cert` and its private key in `key` (PEM files); an
    /// error names the file that cannot be read or used. A client whose handshake fails is
    /// dropped (logged at debug); the others are served as ever.
    pub fn with_tls(mut self, cert: &Path, key: &Path) -> Result<Server, StartError> {
        self.tls = Some(tls::acceptor(cert, key)?);
        Ok(self)
    }

    /// The admin address actually bound, when there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(_, addr)| *addr)
    }

    /// The gateway served (a handle: reloading it, see [`HotReload`], changes what is served).
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://ADDR`, or `https://ADDR` with [`Server::with_tls`].
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// The URL of each stage (`$default` at `/`, others at `/{stage}/`).
    pub fn stage_urls(&self) -> Vec<(String, String)> {
        let base = self.base_url();
        self.gateway
            .stage_names()
            .into_iter()
            .map(|stage| {
                let url = if stage == DEFAULT_STAGE {
                    format!("{base}/")
                } else {
                    format!("{base}/{stage}/")
                };
                (stage, url)
            })
            .collect()
    }

    /// Serves until `shutdown` completes, then stops accepting and lets in-flight requests
    /// finish (up to 30 s).
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
        let graceful = GracefulShutdown::new();
        // Tells handshakes under way that the server stops: a client that has sent no request
        // yet is dropped rather than waited for.
        let (stopping, stop_seen) = tokio::sync::watch::channel(());
        let admin = self.admin.map(|(listener, _)| {
            tokio::spawn(serve_admin(
                listener,
                metrics_handle(),
                self.gateway.clone(),
            ))
        });
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Running out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // Watched from now on, so that a shutdown also waits for a task still in its TLS
            // handshake (which `stopping` cuts short).
            let watcher = graceful.watcher();
            let (gateway, builder) = (self.gateway.clone(), builder.clone());
            let tls = self
                .tls
                .clone()
                .map(|acceptor| (acceptor, stop_seen.clone()));
            tokio::spawn(async move {
                match tls {
                    None => serve_connection(&builder, stream, gateway, peer, watcher).await,
                    // On the connection's task: a slow or failed handshake stalls no one else.
                    Some((acceptor, stopping)) => {
                        if let Some(stream) =
                            tls::handshake(&acceptor, stream, peer, stopping).await
                        {
                            serve_connection(&builder, stream, gateway, peer, watcher).await;
                        }
                    }
                }
            });
        }
        drop(self.listener);
        stopping.send_replace(());
        if let Some(admin) = admin {
            admin.abort();
        }
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the drain timeout; closing them");
        }
        Ok(())
    }
}

/// Serves the requests of one connection (plain or TLS) until it closes or, once a shutdown
/// began, its requests in flight are answered.
async fn serve_connection<S>(
    builder: &auto::Builder<TokioExecutor>,
    stream: S,
    gateway: Gateway,
    peer: SocketAddr,
    watcher: Watcher,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // Each HTTP/1.1 request's header names as sent, for REST APIs' Lambda events and
    // authorizers; followed only on connections opened while a REST API is served (a reload
    // that turns an HTTP API into a REST API reaches connections opened after it).
    let heads = header_case::Heads::default();
    let sniffing = gateway.serves_rest();
    let stream = header_case::Sniffer::new(stream, heads.clone(), sniffing);
    let service = service_fn(move |mut request: Request<Incoming>| {
        if sniffing {
            if let Some(case) = heads.take() {
                request.extensions_mut().insert(case);
            }
        }
        answer(gateway.clone(), request, peer)
    });
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(connection.into_owned()).await {
        tracing::debug!(error = %e, %peer, "connection ended with an error");
    }
}

/// Hands the request, its body still streaming in, to the gateway, which reads it (refusing
/// more than API Gateway's 10 MB, answering an unreadable body 400) and answers.
///
/// Not an `async fn`, whose future would hold the request twice (argument and local): hyper
/// moves this future into the connection's state, so its size is paid on every request.
#[allow(clippy::manual_async_fn)]
fn answer(
    gateway: Gateway,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> impl Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static {
    async move { Ok(gateway.handle_body_from(request, peer).await.map(Full::new)) }
}

/// AWS's GetUsage (`GET /usageplans/{plan}/usage?keyId=..&startDate=..&endDate=..`): 200 with
/// the usage, 400 (`BadRequestException`) for missing or bad dates, 404 (`NotFoundException`)
/// for an unknown plan or key, 503 when the rate store does not answer; errors as AWS's
/// `{"message": ...}`.
async fn usage_answer(
    gateway: &Gateway,
    plan: &str,
    query: Option<&str>,
) -> (http::StatusCode, String) {
    let plan = percent_decode(plan);
    let (mut key_id, mut start, mut end) = (None, None, None);
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "keyId" => key_id = Some(value.into_owned()),
            "startDate" => start = Some(value.into_owned()),
            "endDate" => end = Some(value.into_owned()),
            _ => {}
        }
    }
    let message = |status, message: String| {
        (
            status,
            serde_json::json!({ "message": message }).to_string(),
        )
    };
    let (Some(start), Some(end)) = (start, end) else {
        return message(
            http::StatusCode::BAD_REQUEST,
            "startDate and endDate are required (YYYY-MM-DD)".to_owned(),
        );
    };
    match gateway.usage(&plan, key_id.as_deref(), &start, &end).await {
        Ok(usage) => (
            http::StatusCode::OK,
            serde_json::to_string(&usage).unwrap_or_default(),
        ),
        Err(e @ (UsageError::UnknownPlan(_) | UsageError::UnknownKey { .. })) => {
            message(http::StatusCode::NOT_FOUND, e.to_string())
        }
        Err(e @ UsageError::BadDates(_)) => message(http::StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => message(http::StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

/// The bounds (seconds) of the latency histograms' buckets: 1 ms to 30 s (API Gateway's
/// integration timeout is 29 s).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The handle of the process's Prometheus recorder, installed on first call as the `metrics`
/// facade's global recorder (latencies as histograms). Should another recorder be installed
/// already, the handle renders nothing.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder is already installed; /metrics stays empty");
            }
            handle
        })
        .clone()
}

/// The admin port: `GET /metrics`, `GET /usageplans/{plan}/usage` and the deployment
/// endpoints (see [`release_answer`]). Runs until aborted.
async fn serve_admin(listener: TcpListener, handle: PrometheusHandle, gateway: Gateway) {
    let upkeep = handle.clone();
    let _upkeep = AbortOnDrop(tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    }));
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let handle = handle.clone();
        let gateway = gateway.clone();
        let service = service_fn(move |request: Request<Incoming>| {
            let (handle, gateway) = (handle.clone(), gateway.clone());
            async move { Ok::<_, Infallible>(admin_answer(&request, &handle, &gateway).await) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "admin connection ended with an error");
            }
        });
    }
}

async fn admin_answer<B>(
    request: &Request<B>,
    handle: &PrometheusHandle,
    gateway: &Gateway,
) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    let plan = path
        .strip_prefix("/usageplans/")
        .and_then(|rest| rest.strip_suffix("/usage"))
        .filter(|plan| !plan.is_empty() && !plan.contains('/'));
    if let Some(rest) = path.strip_prefix("/apis/") {
        let (status, body) =
            release_answer(gateway, request.method(), rest, request.uri().query()).await;
        return admin_response(status, "application/json", body);
    }
    let (status, content_type, body) = match (request.method(), path, plan) {
        (&http::Method::GET, "/metrics", _) => (
            http::StatusCode::OK,
            "text/plain; version=0.0.4",
            handle.render(),
        ),
        (&http::Method::GET, _, Some(plan)) => {
            let (status, body) = usage_answer(gateway, plan, request.uri().query()).await;
            (status, "application/json", body)
        }
        _ => (
            http::StatusCode::NOT_FOUND,
            "text/plain",
            "not found: the admin port serves GET /metrics, GET /usageplans/{plan}/usage and /apis/{api}/...\n"
                .to_owned(),
        ),
    };
    admin_response(status, content_type, body)
}

fn admin_response(
    status: http::StatusCode,
    content_type: &'static str,
    body: String,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

/// The deployment endpoints of the admin port, under `/apis/{api}/` (`rest` is what follows
/// `/apis/`):
/// - `GET /apis/{api}/deployments`: the kept deployments, oldest first (`id`, `createdDate`,
///   `stages`, `canaryStages`);
/// - `POST /apis/{api}/stages/{stage}/rollback?deploymentId=ID`: the stage runs a kept
///   deployment again;
/// - `POST /apis/{api}/stages/{stage}/canary/promote`: the canary becomes the stage's
///   deployment (AWS's promotion: overrides merged into the stage variables);
/// - `DELETE /apis/{api}/stages/{stage}/canary`: the stage drops its canary;
/// - `DELETE /apis/{api}/stages/{stage}/cache/data`: the stage's response cache forgets every
///   answer (AWS's FlushStageCache: 202 with an empty body).
///
/// Answers are JSON: 200 with the result (the flush: 202, empty), 404 `{"message"}` for an unknown API, stage,
/// deployment or canary, 400 for a compile error, 405 for another method, 503 when a cache on
/// the fleet's Redis could not be flushed.
async fn release_answer(
    gateway: &Gateway,
    method: &http::Method,
    rest: &str,
    query: Option<&str>,
) -> (http::StatusCode, String) {
    use http::{Method, StatusCode};
    let segments: Vec<String> = rest
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let message = |status: StatusCode, text: String| {
        (status, serde_json::json!({ "message": text }).to_string())
    };
    let failed = |e: portico::Error| match e {
        portico::Error::Release(text) => message(StatusCode::NOT_FOUND, text),
        portico::Error::Unavailable(text) => message(StatusCode::SERVICE_UNAVAILABLE, text),
        other => message(StatusCode::BAD_REQUEST, other.to_string()),
    };
    let done = |what: serde_json::Value| (StatusCode::OK, what.to_string());
    match (method, segments.as_slice()) {
        (&Method::GET, [api, "deployments"]) => match gateway.deployments(api) {
            Ok(kept) => {
                let items: Vec<serde_json::Value> = kept
                    .iter()
                    .map(|d| {
                        let created = d
                            .created
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |t| t.as_secs());
                        serde_json::json!({
                            "id": d.id.as_str(),
                            "createdDate": created,
                            "stages": d.stages,
                            "canaryStages": d.canary_stages,
                        })
                    })
                    .collect();
                done(serde_json::json!({ "items": items }))
            }
            Err(e) => failed(e),
        },
        (&Method::POST, [api, "stages", stage, "rollback"]) => {
            let id = query.and_then(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .find(|(name, _)| name == "deploymentId")
                    .map(|(_, value)| value.into_owned())
            });
            let Some(id) = id else {
                return message(
                    StatusCode::BAD_REQUEST,
                    "give the deployment to roll back to: ?deploymentId=ID".into(),
                );
            };
            let id: portico::DeploymentId = match id.parse() {
                Ok(id) => id,
                Err(e) => return message(StatusCode::BAD_REQUEST, e.to_string()),
            };
            match gateway.rollback(stage, &id) {
                Ok(()) => done(
                    serde_json::json!({ "api": api, "stage": stage, "deploymentId": id.as_str() }),
                ),
                Err(e) => failed(e),
            }
        }
        (&Method::POST, [api, "stages", stage, "canary", "promote"]) => {
            match gateway.promote_canary(api, stage) {
                Ok(()) => done(serde_json::json!({ "api": api, "stage": stage, "promoted": true })),
                Err(e) => failed(e),
            }
        }
        (&Method::DELETE, [api, "stages", stage, "canary"]) => {
            match gateway.remove_canary(api, stage) {
                Ok(()) => done(serde_json::json!({ "api": api, "stage": stage, "canary": null })),
                Err(e) => failed(e),
            }
        }
        (&Method::DELETE, [api, "stages", stage, "cache", "data"]) => {
            match gateway.flush_stage_cache(api, stage).await {
                // FlushStageCache: "the service sends back an HTTP 202 response with an empty
                // HTTP body" (API Gateway's API reference).
                Ok(()) => (StatusCode::ACCEPTED, String::new()),
                Err(e) => failed(e),
            }
        }
        (_, [_, "deployments"])
        | (_, [_, "stages", _, "cache", "data"])
        | (_, [_, "stages", _, "rollback"])
        | (_, [_, "stages", _, "canary", "promote"])
        | (_, [_, "stages", _, "canary"]) => message(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not an operation of /apis/{rest}"),
        ),
        _ => message(
            StatusCode::NOT_FOUND,
            format!("no admin endpoint /apis/{rest}"),
        ),
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A `tracing` layer that writes each access log line (events of [`ACCESS_LOG_TARGET`]) as its
/// bare message, one per line, to `writer`: JSON lines when the stages' formats are JSON.
/// Events of other targets are ignored, so combine it with a filter only for speed.
pub struct AccessLogLayer<W> {
    writer: W,
}

impl<W> AccessLogLayer<W>
where
    W: for<'w> MakeWriter<'w> + 'static,
{
    /// Writes to `writer` (`std::io::stdout`, a `Mutex<File>`, ...).
    pub fn new(writer: W) -> Self {
        AccessLogLayer { writer }
    }
}

impl<S, W> tracing_subscriber::Layer<S> for AccessLogLayer<W>
where
    S: tracing::Subscriber,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if event.metadata().target() != ACCESS_LOG_TARGET {
            return;
        }
        let mut message = MessageVisitor(String::new());
        event.record(&mut message);
        let mut line = message.0;
        line.push('\n');
        let mut writer = self.writer.make_writer();
        if let Err(e) = std::io::Write::write_all(&mut writer, line.as_bytes()) {
            eprintln!("portico-serve: cannot write the access log: {e}");
        }
    }
}

/// Takes an event's message.
struct MessageVisitor(String);

impl tracing::field::Visit for MessageVisitor {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            use std::fmt::Write as _;
            let _ = write!(self.0, "{value:?}");
        }
    }
}
