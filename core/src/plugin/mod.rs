//! The plugin host: WebAssembly components as integrations and authorizers, on wasmtime.
//!
//! Each component is compiled once per [`PluginHost`] (with wasmtime's on-disk cache, so a
//! restart does not recompile), linked once (`InstancePre`), and instantiated fresh for every
//! call on the host's pooling allocator. Every call runs under a time limit (epoch
//! interruption, yielding to the executor every tick so a busy plugin never blocks other
//! requests) and a memory cap (a `ResourceLimiter`).
//!
//! Nothing wasmtime-specific, and no WIT-generated type, leaves this module: the rest of the
//! crate sees [`LoadedPlugin`], [`PluginFailure`] and the plain types of [`call`]. This module
//! imports nothing from the phases (authorize, integrate, respond); they import from it.
//!
//! - `host`: the embedder's [`PluginHost`] (engine, linker, pool sizes, compilation cache,
//!   epoch tick) and its per-file cache of compiled components.
//! - `loaded`: a compiled, linked component and its limits ([`LoadedPlugin`]), the calls of
//!   each `portico:plugin` world.
//! - `wasi_http`: serving a `wasi:http/proxy` component.
//! - `imports`: what a component may import: the sandboxed WASI, wasi:http without network,
//!   and `portico:plugin`'s kv, log and config.
//! - `bindings`: the WIT bindings and their conversions to and from [`call`]'s types.

mod bindings;
mod call;
mod host;
mod imports;
mod loaded;
mod wasi_http;

pub(crate) use call::{
    AuthCall, AuthVerdict, AuthorizerContext, AuthorizerKind, CallRequest, CallResponse,
    ContextValue, PluginFailure,
};
pub use host::{PluginHost, PluginHostBuilder};
pub(crate) use loaded::{LoadedPlugin, PluginRuntime};
