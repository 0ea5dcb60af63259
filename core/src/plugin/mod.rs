//! The plugin host: WebAssembly components as integrations and authorizers, on wasmtime.
//!
//! Each component is compiled once per [`PluginHost`] (with wasmtime's on-disk cache, so a
//! restart does not recompile), linked once (`InstancePre`), and run on instances from the
//! host's pooling allocator: a fresh one for every call, or warm ones reused from call to call,
//! at most `maxConcurrency` at once (each plugin reserves that much of the pool at load). Every
//! call runs under a time limit (epoch interruption, yielding to the executor every tick so a
//! busy plugin never blocks other requests) and a memory cap (a `ResourceLimiter`).
//!
//! Nothing wasmtime-specific, and no WIT-generated type, leaves this module: the rest of the
//! crate sees [`LoadedPlugin`], [`PluginFailure`] and the plain types of [`call`]. This module
//! imports nothing from the phases (authorize, integrate, respond); they import from it.
//!
//! - `host`: the embedder's [`PluginHost`] (engine, linker, pool sizes, compilation cache,
//!   epoch tick) and its per-file cache of compiled components.
//! - `loaded`: a compiled, linked component and its limits ([`LoadedPlugin`]), the calls of
//!   each `portico:plugin` world; [`PluginRuntime`] loads a definition's plugins.
//! - `instances`: a plugin's instances (fresh or warm, provisioned, recycled) and its
//!   concurrency limit with its queue.
//! - `needs`: what an instance takes of the pool, read from the component's binary.
//! - `wasi_http`: serving a `wasi:http/proxy` component.
//! - `imports`: what a component may import: the sandboxed WASI, wasi:http without network,
//!   and `portico:plugin`'s kv, log and config.
//! - `bindings`: the WIT bindings and their conversions to and from [`call`]'s types.

mod bindings;
mod call;
mod host;
mod imports;
mod instances;
mod loaded;
mod needs;
mod wasi_http;

pub(crate) use call::{
    AuthCall, AuthVerdict, AuthorizerContext, AuthorizerKind, CallRequest, CallResponse,
    ContextValue, PluginFailure,
};
pub use host::{PluginHost, PluginHostBuilder};
pub(crate) use instances::metric;
pub(crate) use loaded::{LoadedPlugin, PluginRuntime};
