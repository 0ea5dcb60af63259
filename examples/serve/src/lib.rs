//! `portico-serve` as a library: load an API definition, bind, serve over HTTP/1.1 and HTTP/2
//! with hyper, stop gracefully. The binary in `main.rs` is a thin shell over [`Server`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use portico::{Gateway, DEFAULT_STAGE, MAX_BODY_BYTES};
use tokio::net::TcpListener;

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
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Definition(e) => write!(f, "cannot load the API definition: {e}"),
            StartError::Listen { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A bound server, ready to serve one gateway.
pub struct Server {
    gateway: Gateway,
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl Server {
    /// Loads `api` and binds `listen` (`127.0.0.1:8080`; port 0 picks a free port). Plugin
    /// key-value data lives in `data_dir/kv.redb` when given, else in memory.
    pub async fn start(
        api: &Path,
        listen: &str,
        data_dir: Option<&Path>,
    ) -> Result<Server, StartError> {
        let mut builder = Gateway::file_builder(api).map_err(StartError::Definition)?;
        if let Some(dir) = data_dir {
            builder = builder.data_dir(dir);
        }
        let gateway = builder.build().map_err(StartError::Definition)?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: listen.to_owned(),
                source,
            })?;
        Ok(Self::with_listener(gateway, listener))
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
        }
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL of each stage (`$default` at `/`, others at `/{stage}/`).
    pub fn stage_urls(&self) -> Vec<(String, String)> {
        let base = format!("http://{}", self.local_addr);
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
        let builder = auto::Builder::new(TokioExecutor::new());
        let graceful = GracefulShutdown::new();
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
            let gateway = self.gateway.clone();
            let service = service_fn(move |request| answer(gateway.clone(), request, peer));
            let connection = builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
            });
        }
        drop(self.listener);
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the drain timeout; closing them");
        }
        Ok(())
    }
}

/// Reads the body (refusing more than API Gateway's 10 MB while it streams in) and hands the
/// request to the gateway.
async fn answer(
    gateway: Gateway,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (mut parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Ok(gateway.payload_too_large().map(Full::new));
    }
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Ok(gateway.payload_too_large().map(Full::new));
        }
        Err(e) => {
            tracing::debug!(error = %e, %peer, "request body could not be read");
            let mut response = Response::new(Full::new(Bytes::from_static(
                br#"{"message":"Bad Request"}"#,
            )));
            *response.status_mut() = http::StatusCode::BAD_REQUEST;
            return Ok(response);
        }
    };
    parts.extensions.insert(peer);
    let response = gateway.handle(Request::from_parts(parts, body)).await;
    Ok(response.map(Full::new))
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
