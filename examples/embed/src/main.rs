//! The smallest embedding: an axum app that mounts a Portico gateway under `/api`.
//! Run: `cargo run --release -p portico-embed`, then `curl localhost:3000/api/dev/health`.
use axum::extract::{Request, State};
use axum::{response::Response, routing::get, Router};
use portico::{Gateway, MAX_BODY_BYTES};

async fn forward(State(gateway): State<Gateway>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => gateway
            .handle(http::Request::from_parts(parts, body))
            .await
            .map(Into::into),
        Err(_) => gateway.payload_too_large().map(Into::into),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let api = std::env::var("PORTICO_API").unwrap_or("examples/users-api/api.yaml".into());
    let gateway = Gateway::from_file(api)?;
    let app = Router::new()
        .route("/", get(|| async { "hello from axum" }))
        .nest("/api", Router::new().fallback(forward).with_state(gateway));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
