//! Portico: Amazon API Gateway's request path as an embeddable library.
//!
//! `http::Request<Bytes>` in, `http::Response<Bytes>` out; no sockets inside. Load an API
//! definition (YAML or JSON, API Gateway's vocabulary), then call [`Gateway::handle`]:
//!
//! ```
//! # tokio_test_block(async {
//! use bytes::Bytes;
//! use portico::{ApiDefinition, Format, Gateway};
//!
//! let yaml = r#"
//! name: hello
//! routes:
//!   GET /hello/{name}:
//!     integration: { type: mock, body: '{"stage":"${stageVariables.WHO}"}' }
//! stages:
//!   $default: { variables: { WHO: world } }
//! "#;
//! let gateway = Gateway::new(&ApiDefinition::from_str_as(yaml, Format::Yaml)?)?;
//! let response = gateway.handle(http::Request::get("/hello/you").body(Bytes::new())?).await;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.body(), r#"{"stage":"world"}"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # });
//! # fn tokio_test_block<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```
//!
//! The pipeline: stage, cors, route, authorize, validate, integrate, respond, log (access log
//! lines on the `tracing` target [`ACCESS_LOG_TARGET`], metrics through the `metrics` facade,
//! named in [`metric`]); later phases (throttle) slot in between validate and integrate.
//! Integrations may be WebAssembly components
//! (the `portico:plugin` worlds in bindings/wit, or standard `wasi:http/proxy` components); they
//! run on wasmtime and need a tokio runtime.

#![warn(missing_docs)]

mod authorize;
pub mod config;
mod cors;
mod deployment;
mod error;
mod gateway;
mod integrate;
mod observe;
mod plugin;
mod respond;
pub mod route;
mod stage;
mod store;
mod validate;

pub use authorize::jwt::{JwksFetchError, JwksFetcher};
pub use config::{ApiDefinition, Format, Protocol};
pub use error::{Error, KeyPath};
pub use gateway::{Gateway, GatewayBuilder, MAX_BODY_BYTES};
pub use observe::{metric, ACCESS_LOG_TARGET};
pub use route::{RouteMatch, Router};
pub use stage::DEFAULT_STAGE;
pub use store::{KvError, KvStore, MemoryKv, RedbKv};
