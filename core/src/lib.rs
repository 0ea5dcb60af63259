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
//!
//! # Embedding
//!
//! The package is `portico-gateway` on crates.io; its library is `portico`:
//!
//! ```toml
//! [dependencies]
//! portico-gateway = "0.1"
//! ```
//!
//! Every example below is compiled and run as a doc test.
//!
//! ## A gateway from a file
//!
//! [`Gateway::from_file`] reads a YAML or JSON definition (by its extension); relative paths
//! in it (plugins, JWKS files) are relative to the file. [`Gateway::file_builder`] gives a
//! [`GatewayBuilder`] for the same file, to supply stores and clients before it is built.
//!
//! ```
//! use bytes::Bytes;
//! use portico::Gateway;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("portico-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let file = dir.join("api.yaml");
//! std::fs::write(
//!     &file,
//!     "name: health\n\
//!      routes:\n  GET /health: { integration: { type: mock, body: '{\"status\":\"ok\"}' } }\n\
//!      stages:\n  prod: {}\n",
//! )?;
//!
//! let gateway = Gateway::from_file(&file)?;
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! let request = http::Request::get("/prod/health").body(Bytes::new())?;
//! let response = runtime.block_on(gateway.handle(request));
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.body(), r#"{"status":"ok"}"#);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! A file that does not load is an [`Error`] naming the offending key's path
//! (`api.yaml: routes."GET /health".integration.type: unknown variant ...`).
//!
//! ## A gateway from typed configuration
//!
//! The definition types in [`config`] are the file's own, so a program can build a definition
//! in code (or edit one it read) and deploy it with [`Gateway::new`] or [`Gateway::builder`]:
//!
//! ```
//! use bytes::Bytes;
//! use portico::config::{
//!     ApiDefinition, IntegrationDefinition, IntegrationRef, RouteDefinition, StageDefinition,
//! };
//! use portico::Gateway;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut api = ApiDefinition::new("orders");
//! let mock = IntegrationDefinition::mock(200, r#"{"table":"${stageVariables.TABLE}"}"#);
//! api.routes.insert("GET /orders", RouteDefinition::new(IntegrationRef::Inline(Box::new(mock))))?;
//! let mut prod = StageDefinition::default();
//! prod.variables.insert("TABLE", "prod-Orders".to_owned())?;
//! api.stages.insert("prod", prod)?;
//!
//! let gateway = Gateway::builder(api).build()?;
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! let request = http::Request::get("/prod/orders").body(Bytes::new())?;
//! let response = runtime.block_on(gateway.handle(request));
//! assert_eq!(response.body(), r#"{"table":"prod-Orders"}"#);
//! # Ok(())
//! # }
//! ```
//!
//! ## Embedded in axum
//!
//! With the default `tower` feature a [`Gateway`] is a `tower::Service` over any
//! `http_body::Body`, so axum mounts it as it is; it reads the body itself, under
//! [`MAX_BODY_BYTES`], and sees the path with the mount point stripped. A server would hand
//! `app` to `axum::serve`; here one request goes through it in process:
//!
//! ```
//! use axum::body::Body;
//! use axum::routing::get;
//! use axum::Router;
//! use portico::{ApiDefinition, Format, Gateway};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let yaml = "name: hello\n\
//!             routes: { GET /hello: { integration: { type: mock, body: hi } } }\n\
//!             stages: { $default: {} }";
//! let gateway = Gateway::new(&ApiDefinition::from_str_as(yaml, Format::Yaml)?)?;
//! let app = Router::new()
//!     .route("/", get(|| async { "the app's own page" }))
//!     .nest_service("/api", gateway);
//!
//! let response = app.oneshot(http::Request::get("/api/hello").body(Body::empty())?).await?;
//! assert_eq!(response.status(), 200);
//! let body = axum::body::to_bytes(response.into_body(), 1024).await?;
//! assert_eq!(body, "hi");
//! # Ok(())
//! # }
//! ```
//!
//! ## Supplying a `KvStore`
//!
//! Plugins keep data through the host's `kv` import, which a [`KvStore`] serves: in memory by
//! default, [`RedbKv`] on disk ([`GatewayBuilder::data_dir`]), [`RedisKv`] for a fleet, or
//! the embedder's own, given to [`GatewayBuilder::kv_store`] and kept across reloads:
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::{Arc, Mutex};
//!
//! use portico::{ApiDefinition, Gateway, KvError, KvStore};
//!
//! type Entries = BTreeMap<(String, String), Vec<u8>>;
//!
//! /// One ordered map behind a lock; a real one would talk to the embedder's database.
//! #[derive(Default)]
//! struct MapKv(Mutex<Entries>);
//!
//! impl MapKv {
//!     fn map(&self) -> Result<std::sync::MutexGuard<'_, Entries>, KvError> {
//!         self.0.lock().map_err(|_| KvError::Storage("poisoned".into()))
//!     }
//! }
//!
//! impl KvStore for MapKv {
//!     fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
//!         Ok(self.map()?.get(&(table.into(), key.into())).cloned())
//!     }
//!     fn put(&self, table: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
//!         self.map()?.insert((table.into(), key.into()), value.to_vec());
//!         Ok(())
//!     }
//!     fn delete(&self, table: &str, key: &str) -> Result<bool, KvError> {
//!         Ok(self.map()?.remove(&(table.into(), key.into())).is_some())
//!     }
//!     fn list_prefix(
//!         &self,
//!         table: &str,
//!         prefix: &str,
//!         start_after: Option<&str>,
//!         limit: usize,
//!     ) -> Result<Vec<(String, Vec<u8>)>, KvError> {
//!         let map = self.map()?;
//!         let after = |k: &str| start_after.is_none_or(|start| k > start);
//!         let entries = map
//!             .iter()
//!             .filter(|((t, k), _)| t == table && k.starts_with(prefix) && after(k));
//!         Ok(entries.take(limit).map(|((_, k), v)| (k.clone(), v.clone())).collect())
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut api = ApiDefinition::new("users");
//! api.stages.insert("$default", Default::default())?;
//! let store = Arc::new(MapKv::default());
//! let gateway = Gateway::builder(api).kv_store(store.clone()).build()?;
//! assert_eq!(gateway.stage_names(), ["$default"]);
//! store.put("users", "u-1", b"{\"name\":\"Alice\"}")?;
//! assert_eq!(store.list_prefix("users", "u-", None, 10)?.len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! ## Supplying a `JwksFetcher`
//!
//! A JWT authorizer whose `jwks` names a `url` gets its key set through the embedder's
//! [`JwksFetcher`] (Portico opens no sockets): fetched when first needed, refreshed on a
//! token with an unknown `kid`, at most once a minute. This one serves a fixed HS256 key set:
//!
//! ```
//! use std::future::Future;
//! use std::pin::Pin;
//! use std::sync::Arc;
//!
//! use bytes::Bytes;
//! use portico::{ApiDefinition, Format, Gateway, JwksFetchError, JwksFetcher};
//!
//! struct Fixed;
//!
//! impl JwksFetcher for Fixed {
//!     fn fetch<'a>(
//!         &'a self,
//!         url: &'a str,
//!     ) -> Pin<Box<dyn Future<Output = Result<String, JwksFetchError>> + Send + 'a>> {
//!         Box::pin(async move {
//!             if url != "https://idp.example/jwks.json" {
//!                 return Err(JwksFetchError::new(format!("unknown URL {url}")));
//!             }
//!             // `k`: base64url of "a-shared-secret-of-32-bytes-long".
//!             Ok(r#"{"keys":[{"kty":"oct","kid":"k1","alg":"HS256",
//!                 "k":"YS1zaGFyZWQtc2VjcmV0LW9mLTMyLWJ5dGVzLWxvbmc"}]}"#
//!                 .to_owned())
//!         })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let yaml = r#"
//! name: me
//! authorizers:
//!   idp:
//!     type: jwt
//!     issuer: https://idp.example
//!     audience: [app]
//!     jwks: { url: https://idp.example/jwks.json }
//! routes:
//!   GET /me: { integration: { type: mock, body: me }, authorizer: idp }
//! stages: { $default: {} }
//! "#;
//! let gateway = Gateway::builder(ApiDefinition::from_str_as(yaml, Format::Yaml)?)
//!     .jwks_fetcher(Arc::new(Fixed))
//!     .build()?;
//!
//! let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
//! header.kid = Some("k1".into());
//! let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() + 600;
//! let claims =
//!     serde_json::json!({"iss": "https://idp.example", "aud": "app", "sub": "u-1", "exp": exp});
//! let key = jsonwebtoken::EncodingKey::from_secret(b"a-shared-secret-of-32-bytes-long");
//! let token = jsonwebtoken::encode(&header, &claims, &key)?;
//!
//! let request = http::Request::get("/me")
//!     .header("authorization", format!("Bearer {token}"))
//!     .body(Bytes::new())?;
//! assert_eq!(gateway.handle(request).await.status(), 200);
//! let anonymous = http::Request::get("/me").body(Bytes::new())?;
//! assert_eq!(gateway.handle(anonymous).await.status(), 401);
//! # Ok(())
//! # }
//! ```
//!
//! ## Supplying an `HttpClient`
//!
//! `http_proxy` integrations reach their backends through the embedder's [`HttpClient`]
//! (portico-serve's is hyper-util's pooled client, on rustls). The gateway hands it a request
//! with an absolute URI and final headers, and reads the response body itself, under its
//! limits. This one answers from memory:
//!
//! ```
//! use std::sync::Arc;
//!
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Full};
//! use portico::{ApiDefinition, Format, Gateway, HttpClient, HttpClientError, HttpClientFuture};
//!
//! struct Backend;
//!
//! impl HttpClient for Backend {
//!     fn send(&self, request: http::Request<Bytes>) -> HttpClientFuture<'_> {
//!         Box::pin(async move {
//!             if request.uri() != "http://orders.internal/orders/42" {
//!                 return Err(HttpClientError::new(format!("no route to {}", request.uri())));
//!             }
//!             let body = Full::new(Bytes::from_static(br#"{"id":"42"}"#));
//!             let response = http::Response::builder()
//!                 .header("content-type", "application/json")
//!                 .body(body.map_err(|never| match never {}).boxed_unsync())
//!                 .map_err(HttpClientError::new)?;
//!             Ok(response)
//!         })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let yaml = r#"
//! name: orders
//! routes:
//!   GET /orders/{id}:
//!     integration: { type: http_proxy, uri: "http://orders.internal/orders/{id}" }
//! stages: { $default: {} }
//! "#;
//! let gateway = Gateway::builder(ApiDefinition::from_str_as(yaml, Format::Yaml)?)
//!     .http_client(Arc::new(Backend))
//!     .build()?;
//! let response = gateway.handle(http::Request::get("/orders/42").body(Bytes::new())?).await;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.body(), r#"{"id":"42"}"#);
//! # Ok(())
//! # }
//! ```

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
mod header_case;
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
pub use header_case::HeaderCase;
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
