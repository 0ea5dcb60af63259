//! The smallest embedding: an axum app that mounts a Portico gateway under `/api`.
//! Run: `cargo run --release -p portico-embed`, then `curl localhost:3000/api/dev/health`.
use std::sync::Arc;

use axum::{routing::get, Router};
use portico::Gateway;
use portico_serve::UpstreamClient;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let api = std::env::var("PORTICO_API").unwrap_or("examples/users-api/api.yaml".into());
    // portico-serve's pooled hyper client sends the requests of `http_proxy` integrations.
    let gateway = Gateway::file_builder(api)?
        .http_client(Arc::new(UpstreamClient::new()?))
        .build()?;
    // The gateway is a tower::Service over axum's streaming body: it reads the body itself,
    // under API Gateway's 10 MB limit, and sees paths with `/api` stripped.
    let app = Router::new()
        .route("/", get(|| async { "hello from axum" }))
        .nest_service("/api", gateway);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
