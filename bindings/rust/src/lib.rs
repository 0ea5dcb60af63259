//! Guest SDK for Portico plugins.
//!
//! A plugin is a WebAssembly component that targets one of the worlds of the WIT package
//! `portico:plugin` (`bindings/wit`). With this crate a plugin is one plain function and one
//! macro; the generated bindings stay hidden.
//!
//! An integration (what a Lambda proxy integration is to API Gateway):
//!
//! ```ignore
//! use portico_plugin::{Error, Request, Response};
//!
//! fn handle(request: Request) -> Result<Response, Error> {
//!     let id = request.path_param("userId").unwrap_or("anonymous");
//!     Response::json(200, &serde_json::json!({ "hello": id }))
//! }
//!
//! portico_plugin::integration!(handle);
//! ```
//!
//! An authorizer (a Lambda TOKEN/REQUEST authorizer):
//!
//! ```ignore
//! use portico_plugin::{AuthDecision, AuthRequest, Grant};
//!
//! fn authorize(request: AuthRequest) -> AuthDecision {
//!     match request.bearer_token() {
//!         Some("let-me-in") => AuthDecision::Allow(Grant::new("user-1").context("role", "admin")),
//!         _ => AuthDecision::Unauthorized,
//!     }
//! }
//!
//! portico_plugin::authorizer!(authorize);
//! ```
//!
//! The host's services are plain functions: [`kv`], [`log`], [`config`]. Compiled for the
//! host instead of wasm32 (`cargo test`), they are backed by in-memory stand-ins that
//! [`testing`] can prepare and inspect, so handlers can be unit-tested like any Rust function.
//!
//! With the `lambda` feature, [`lambda_v2!`] and [`lambda_v1!`] export an existing AWS Lambda
//! handler written against `aws_lambda_events`' API Gateway types.

mod auth;
pub mod config;
mod error;
#[doc(hidden)]
pub mod export;
pub mod kv;
#[cfg(feature = "lambda")]
pub mod lambda;
mod lazy;
pub mod log;
mod request;
mod response;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod time;
mod wit;

pub use auth::{AuthDecision, AuthKind, AuthRequest, Grant};
pub use error::Error;
pub use export::{IntoAuthDecision, IntoResponseResult};
pub use lazy::LazyRequest;
pub use request::{AuthorizerContext, ContextValue, Fields, Request};
pub use response::Response;

/// Re-exported so plugins can use `serde_json::json!` without naming the dependency.
pub use serde_json;

/// Re-exported for the macros; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::wit::{authorizer, integration, lazy_integration};
}

/// Exports `handler` as the `integration` world's `handle`.
///
/// `handler` is any `fn(Request) -> R` where `R` is a [`Response`], an `http::Response`, or a
/// `Result` of either with an error that converts into [`Error`] (any `std::error::Error` does).
/// An `Err` becomes the client's 5xx (an HTTP API's 500, a REST API's 502) and a line in the
/// host's log; a panic is logged, then the instance traps (the same answer).
#[macro_export]
macro_rules! integration {
    ($handler:expr) => {
        const _: () = {
            struct PorticoIntegration;

            impl $crate::__private::integration::Guest for PorticoIntegration {
                fn handle(
                    request: $crate::__private::integration::Request,
                ) -> ::core::result::Result<
                    $crate::__private::integration::Response,
                    $crate::__private::integration::PluginError,
                > {
                    $crate::export::run_integration($handler, request)
                }
            }

            $crate::__private::integration::__export_integration!(
                PorticoIntegration with_types_in $crate::__private::integration
            );
        };
    };
}

/// Exports `handler` as the `lazy-integration` world's `handle-request`.
///
/// `handler` is any `fn(LazyRequest) -> R`, `R` as for [`integration!`]. The handler reads
/// the parts of the request it needs from the host ([`LazyRequest`]) instead of receiving all
/// of them: cheaper for a plugin that reads a few parts of requests with many headers.
#[macro_export]
macro_rules! lazy_integration {
    ($handler:expr) => {
        const _: () = {
            struct PorticoLazyIntegration;

            impl $crate::__private::lazy_integration::Guest for PorticoLazyIntegration {
                fn handle_request(
                    request: &$crate::__private::lazy_integration::IncomingRequest,
                ) -> ::core::result::Result<
                    $crate::__private::lazy_integration::Response,
                    $crate::__private::lazy_integration::PluginError,
                > {
                    $crate::export::run_lazy_integration($handler, request)
                }
            }

            $crate::__private::lazy_integration::__export_lazy_integration!(
                PorticoLazyIntegration with_types_in $crate::__private::lazy_integration
            );
        };
    };
}

/// Exports `handler` as the `authorizer` world's `authorize`.
///
/// `handler` is any `fn(AuthRequest) -> D` where `D` is an [`AuthDecision`] or a
/// `Result<AuthDecision, E>`: an `Err` is logged and answers `Unauthorized`, as a Lambda
/// authorizer that raises does.
#[macro_export]
macro_rules! authorizer {
    ($handler:expr) => {
        const _: () = {
            struct PorticoAuthorizer;

            impl $crate::__private::authorizer::Guest for PorticoAuthorizer {
                fn authorize(
                    request: $crate::__private::authorizer::AuthRequest,
                ) -> $crate::__private::authorizer::AuthDecision {
                    $crate::export::run_authorizer($handler, request)
                }
            }

            $crate::__private::authorizer::__export_authorizer!(
                PorticoAuthorizer with_types_in $crate::__private::authorizer
            );
        };
    };
}
