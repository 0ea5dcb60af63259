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
//! A server hands over requests whose body is still streaming in (any `http_body::Body`) to
//! [`Gateway::handle_body`], or mounts the gateway as a `tower::Service` (default `tower`
//! feature): the body is read under API Gateway's [`MAX_BODY_BYTES`] limit.
//!
//! The pipeline: stage, cors, route, authorize, validate, integrate, respond, log (access log
//! lines on the `tracing` target [`ACCESS_LOG_TARGET`], metrics through the `metrics` facade,
//! named in [`metric`]). Token buckets and usage-plan quotas (the throttle phase) run around
//! authorize: see [`GatewayBuilder::rate_store`] and [`Gateway::usage`].
//! An OpenAPI 3.0 document with API Gateway's extensions is imported into a definition by
//! [`ApiDefinition::from_openapi`] (module [`openapi`]).
//! Integrations may be WebAssembly components
//! (the `portico:plugin` worlds in bindings/wit, or standard `wasi:http/proxy` components); they
//! run on wasmtime and need a tokio runtime. `http_proxy` integrations pass requests to HTTP
//! backends through the embedder's [`HttpClient`] ([`GatewayBuilder::http_client`]).

#![warn(missing_docs)]

mod authorize;
mod cache;
pub mod config;
mod cors;
mod deployment;
mod domain;
mod error;
mod exchange;
mod fleet;
mod gateway;
mod integrate;
mod net;
mod observe;
pub mod openapi;
mod plugin;
mod release;
mod respond;
mod route;
mod service;
mod stage;
mod store;
mod template;
mod throttle;
mod time;
mod trace;
mod validate;

pub use authorize::jwt::{JwksFetchError, JwksFetcher};
pub use config::{ApiDefinition, DuplicateKey, Format, GatewayDefinition, Protocol};
pub use deployment::DeploymentId;
pub use error::{Error, KeyPath};
pub use gateway::{Gateway, GatewayBuilder, MAX_BODY_BYTES};
pub use integrate::http_proxy::{HttpClient, HttpClientError, HttpClientFuture, UpstreamBody};
pub use observe::{metric, ACCESS_LOG_TARGET};
pub use openapi::{ImportWarning, OpenApiImport, OpenApiOptions};
pub use plugin::{PluginHost, PluginHostBuilder};
pub use release::DeploymentInfo;
/// The router alone, for the routing benchmark (the `bench` cargo feature); not part of the API.
#[cfg(feature = "bench")]
#[doc(hidden)]
pub use route::Router;
pub use stage::DEFAULT_STAGE;
pub use store::{KvError, KvStore, MemoryKv, RedbKv, RedisKv};
/// The in-memory rate store's buckets, for the throttle benchmark (the `bench` cargo feature).
#[cfg(feature = "bench")]
#[doc(hidden)]
pub use throttle::RateProbe;
pub use throttle::{Usage, UsageError};
pub use time::Clock;
pub use trace::TARGET as TRACE_TARGET;

/// The crate's modules form no import cycle (ARCHITECTURE.md's invariant), read from the
/// `crate::` and `super::` paths of each source file (test modules left out). A child module's
/// use of its parent counts, a parent's use of its children does not: so a cycle through a
/// parent (`exchange -> authorize::caller -> authorize -> exchange`) is caught.
#[cfg(test)]
mod module_layers {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// Module path (`authorize::jwt`) of each source file, with its code before `#[cfg(test)]`.
    fn modules() -> BTreeMap<String, String> {
        fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, String>) {
            for entry in std::fs::read_dir(dir).expect("src dir") {
                let path = entry.expect("entry").path();
                let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
                if path.is_dir() {
                    let mut inner = prefix.to_vec();
                    inner.push(stem);
                    walk(&path, &inner, out);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let mut name = prefix.to_vec();
                if !matches!(stem.as_str(), "mod" | "lib") {
                    name.push(stem);
                }
                let text = std::fs::read_to_string(&path).expect("source");
                let code = text.split("#[cfg(test)]").next().unwrap_or("");
                let code: String = code
                    .lines()
                    .map(|l| l.split("//").next().unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join("\n");
                out.insert(name.join("::"), code);
            }
        }
        let mut out = BTreeMap::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &[],
            &mut out,
        );
        out
    }

    /// The longest module of `modules` that `path` (`a::b::Item`) names.
    fn module_of(path: &[&str], modules: &BTreeMap<String, String>) -> Option<String> {
        (1..=path.len())
            .rev()
            .map(|n| path[..n].join("::"))
            .find(|name| modules.contains_key(name))
    }

    fn edges(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
        let ident = |s: &str| -> Vec<String> {
            s.split("::")
                .map(|part| {
                    part.chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .take_while(|part| !part.is_empty())
                .collect()
        };
        let mut graph = BTreeMap::new();
        for (name, code) in modules {
            let own: Vec<&str> = name.split("::").filter(|s| !s.is_empty()).collect();
            let mut targets = BTreeSet::new();
            for (keyword, base) in [
                ("crate::", Vec::new()),
                ("super::", own[..own.len().saturating_sub(1)].to_vec()),
            ] {
                for (i, _) in code.match_indices(keyword) {
                    if keyword == "super::" && own.len() < 2 {
                        continue; // `super` of a top-level file is the crate root
                    }
                    let rest = ident(&code[i + keyword.len()..]);
                    let mut path: Vec<&str> = base.clone();
                    path.extend(rest.iter().map(String::as_str));
                    if let Some(target) = module_of(&path, modules) {
                        // A parent using its own children is not a dependency edge.
                        let descendant = target.starts_with(&format!("{name}::"))
                            || (name.is_empty() && !target.is_empty());
                        if target != *name && !target.is_empty() && !descendant {
                            targets.insert(target);
                        }
                    }
                }
            }
            graph.insert(name.clone(), targets);
        }
        graph
    }

    #[test]
    fn modules_have_no_import_cycles() {
        let modules = modules();
        let graph = edges(&modules);
        // Depth-first search for a back edge; report the cycle it closes.
        fn visit(
            node: &str,
            graph: &BTreeMap<String, BTreeSet<String>>,
            stack: &mut Vec<String>,
            done: &mut BTreeSet<String>,
        ) -> Option<Vec<String>> {
            if let Some(at) = stack.iter().position(|n| n == node) {
                let mut cycle = stack[at..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            if done.contains(node) {
                return None;
            }
            stack.push(node.to_owned());
            for next in graph.get(node).into_iter().flatten() {
                if let Some(cycle) = visit(next, graph, stack, done) {
                    return Some(cycle);
                }
            }
            stack.pop();
            done.insert(node.to_owned());
            None
        }
        let mut done = BTreeSet::new();
        for node in graph.keys() {
            if let Some(cycle) = visit(node, &graph, &mut Vec::new(), &mut done) {
                panic!("module import cycle: {}", cycle.join(" -> "));
            }
        }
        // The checker sees the edges it should: the gateway strings the phases together.
        assert!(graph["gateway"].contains("exchange"), "{graph:?}");
        assert!(graph["validate"].contains("exchange"), "{graph:?}");
    }
}
