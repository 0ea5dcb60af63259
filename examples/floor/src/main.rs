//! `portico-floor [--listen ADDR]`: the floor of scripts/loadtest. It answers every request with
//! the load test's fixed JSON (examples/loadtest/api.yaml's `GET /mock` answers the same bytes)
//! over the same transport as portico-serve (hyper-util's HTTP/1.1 + HTTP/2 server on a tokio
//! multi-thread runtime, one task per connection) but without a gateway, so the ratio of a
//! portico-serve target to it is what the gateway costs.

use std::convert::Infallible;
use std::process::ExitCode;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// The answer, byte for byte the body of the mock route in examples/loadtest/api.yaml
/// (scripts/loadtest checks that both agree before measuring).
const BODY: &str = r#"{"message":"hello","service":"portico-loadtest"}"#;

const USAGE: &str =
    "usage: portico-floor [--listen ADDR]   (default 127.0.0.1:8090; port 0 picks one)";

async fn answer(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(BODY.as_bytes())));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut listen = "127.0.0.1:8090".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(addr)) => listen = addr,
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::FAILURE;
            }
        }
    }
    let listener = match TcpListener::bind(&listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("portico-floor: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("portico-floor: on http://{addr}"),
        Err(e) => {
            eprintln!("portico-floor: {e}");
            return ExitCode::FAILURE;
        }
    }
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                eprintln!("portico-floor: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let connection = builder
            .serve_connection(TokioIo::new(stream), service_fn(answer))
            .into_owned();
        tokio::spawn(async move {
            // A client that goes away mid-request is not the floor's concern.
            let _ = connection.await;
        });
    }
}
