//! What the criterion benches beside this file share (see `Cargo.toml` for the targets): their
//! runtime, the `run` helper that keeps an executor out of the timings, and gateways built from
//! YAML with plugins/dist as their plugin folder.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use portico::{ApiDefinition, Format, Gateway};
use tokio::runtime::Runtime;

/// A current-thread runtime with every driver, for the requests that do wait.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs `future` to completion: polled once in place (the cached, fixed-key and mock paths never
/// wait), on the runtime only if it does wait, so the bench times the gateway, not an executor.
pub fn run<F: Future>(runtime: &Runtime, future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => runtime.block_on(future),
    }
}

/// The API definition written in `yaml`.
pub fn definition(yaml: &str) -> ApiDefinition {
    ApiDefinition::from_str_as(yaml, Format::Yaml).expect("definition")
}

/// The gateway of `definition`, whose plugin paths are relative to plugins/dist; each of
/// `plugins` (`{name}.wasm`) must be there.
pub fn gateway(definition: ApiDefinition, plugins: &[&str]) -> Gateway {
    Gateway::builder(definition)
        .base_dir(portico_tests::plugins_dist(plugins))
        .build()
        .expect("gateway")
}
