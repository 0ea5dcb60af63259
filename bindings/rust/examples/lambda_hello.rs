//! An AWS Lambda handler for HTTP APIs, unchanged but for two lines, as a Portico integration.
//!
//! ```text
//! RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 cargo build --release --target wasm32-unknown-unknown \
//!     -Zbuild-std=std,panic_abort -Zbuild-std-features= --features lambda --example lambda_hello
//! wasm-tools component new target/wasm32-unknown-unknown/release/examples/lambda_hello.wasm \
//!     -o lambda_hello.wasm
//! ```

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::HeaderValue;
// Was: use lambda_runtime::{Error, LambdaEvent};
use portico_plugin::lambda::{Error, LambdaEvent};

async fn function_handler(
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> Result<ApiGatewayV2httpResponse, Error> {
    let name = event
        .payload
        .query_string_parameters
        .first("name")
        .unwrap_or("world")
        .to_owned();
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = 200;
    response
        .headers
        .insert("content-type", HeaderValue::from_static("text/plain"));
    response.body = Some(Body::Text(format!(
        "hello {name} from {}",
        event.payload.raw_path.unwrap_or_default()
    )));
    Ok(response)
}

// Was: #[tokio::main] async fn main() -> Result<(), Error> { run(service_fn(function_handler)).await }
portico_plugin::lambda_v2!(function_handler);
