//! What the benches beside this file share (see `Cargo.toml` for the targets). The criterion
//! benches time the hot paths (wall time); the `*_ic` benches count their instructions under
//! valgrind (gungraun), which the shared, noisy machines cannot disturb. Both kinds build their
//! set-ups and make their measured calls through this file, so they measure the same thing:
//! - [`GithubRoutes`]: 130 route lookups through Portico's router and a bare `matchit::Router`;
//! - [`MockBench`]: a whole `Gateway::handle` answered by a mock;
//! - [`PluginBench`]: the same answered by the `echo` plugin, on fresh and on warm instances;
//! - [`AuthorizeBench`]: the request path up to the authorize phase, JWT and custom authorizers;
//! - [`ValidatedPostBench`]: a POST validated against a model, its Lambda event built;
//! - [`throttle_probe`]: the in-memory rate store's token buckets alone.
//!
//! `Gateway`'s benchmark-only hooks are called from here alone ([`authorize_only`] and the
//! functions after it), so moving them behind a cargo feature changes one file.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use portico::{ApiDefinition, Format, Gateway, PluginHost, RateProbe, Router};
use portico_tests::{add_create_user_model, unix_now, JwtKeys};
use serde_json::json;
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

/// `Gateway::authorize_only`: the phases up to authorize, an empty 200 when the request would
/// reach its integration.
pub fn authorize_only(
    gateway: &Gateway,
    request: Request<Bytes>,
) -> impl Future<Output = Response<Bytes>> + '_ {
    gateway.authorize_only(request)
}

/// `Gateway::handle_with_lambda_event`: `handle`, plus the payload 2.0 Lambda event a plugin
/// integration would get.
pub fn handle_with_lambda_event(
    gateway: &Gateway,
    request: Request<Bytes>,
) -> impl Future<Output = Response<Bytes>> + '_ {
    gateway.handle_with_lambda_event(request)
}

/// `Gateway::clear_authorizer_caches`: the next requests pay for a full check.
pub fn clear_authorizer_caches(gateway: &Gateway) {
    gateway.clear_authorizer_caches();
}

/// `Gateway::instantiate_plugin`: instantiates plugin `name` and drops it; false if it failed.
fn instantiate_plugin<'g>(gateway: &'g Gateway, name: &'g str) -> impl Future<Output = bool> + 'g {
    gateway.instantiate_plugin(name)
}

const GITHUB_ROUTES: &str = include_str!("data/github-api-routes.txt");
const GITHUB_LOOKUPS: &str = include_str!("data/github-api-lookups.txt");

/// The lines of a data file that are neither blank nor comments.
fn data_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
}

/// The GitHub API route set (130 route keys, data/github-api-routes.txt) in Portico's router
/// and in a bare `matchit::Router` holding the same paths, with one lookup per route
/// (data/github-api-lookups.txt).
pub struct GithubRoutes {
    /// (method, path, expected route key) of every lookup.
    lookups: Vec<(Method, &'static str, &'static str)>,
    portico: Router<usize>,
    matchit: matchit::Router<usize>,
}

impl GithubRoutes {
    /// Both routers, after checking that each finds every lookup's expected route key.
    pub fn new() -> Self {
        let lookups: Vec<_> = data_lines(GITHUB_LOOKUPS)
            .map(|line| {
                let mut fields = line.split('\t');
                let request = fields.next().expect("request field");
                let expected = fields.next().expect("expected route key field");
                let (method, path) = request.split_once(' ').expect("METHOD /path");
                (
                    Method::from_bytes(method.as_bytes()).expect("method"),
                    path,
                    expected,
                )
            })
            .collect();
        let mut portico = Router::new();
        let mut bare = matchit::Router::new();
        for (i, key) in data_lines(GITHUB_ROUTES).enumerate() {
            portico.insert(key, i).expect("route key");
            let (_, path) = key.split_once(' ').expect("METHOD /path");
            bare.insert(path, i).expect("matchit route");
        }
        // Both routers must agree with the expected route keys before anything is measured.
        for (method, path, expected) in &lookups {
            let found = portico.at(method, path).expect("portico match");
            assert_eq!(found.route_key(), *expected, "{method} {path}");
            let key_index = *bare.at(path).expect("matchit match").value;
            assert_eq!(data_lines(GITHUB_ROUTES).nth(key_index), Some(*expected));
        }
        GithubRoutes {
            lookups,
            portico,
            matchit: bare,
        }
    }

    /// Every lookup through Portico's router (method and path).
    pub fn portico_lookups(&self) {
        for (method, path, _) in &self.lookups {
            let found = self.portico.at(black_box(method), black_box(path));
            black_box(found.map(|m| *m.value));
        }
    }

    /// Every lookup's path through the bare `matchit::Router`.
    pub fn matchit_lookups(&self) {
        for (_, path, _) in &self.lookups {
            let found = self.matchit.at(black_box(path));
            black_box(found.map(|m| *m.value).ok());
        }
    }
}

impl Default for GithubRoutes {
    fn default() -> Self {
        Self::new()
    }
}

/// A gateway whose one route is answered by a mock integration, its body templated from a
/// stage variable.
pub struct MockBench {
    gateway: Gateway,
    runtime: Runtime,
    /// Whether requests wait for Redis: they run inside the runtime from their first poll.
    on_runtime: bool,
}

/// [`MockBench`]'s API; `{stage}` is the `dev` stage's settings after its variables.
const MOCK_API: &str = r#"
name: bench
routes:
  GET /users/{userId}:
    integration: { type: mock, headers: { content-type: application/json }, body: '{"table":"${stageVariables.TABLE}"}' }
stages:
  dev: { variables: { TABLE: dev-Users }{stage} }
"#;

impl MockBench {
    /// The gateway and its runtime, after one request answered 200.
    pub fn new() -> Self {
        Self::with_stage(&MOCK_API.replace("{stage}", ""))
    }

    /// The same API with a stage throttle no request reaches the limit of: the whole request
    /// path plus one in-memory token bucket.
    pub fn throttled() -> Self {
        Self::with_stage(&MOCK_API.replace(
            "{stage}",
            ", throttle: { rateLimit: 1000000000, burstLimit: 1000000000 }",
        ))
    }

    /// [`MockBench::throttled`] with its bucket in the Redis at `url`: each request's round
    /// trip to Redis (one GCRA script) on top of the whole request path.
    pub fn throttled_in_redis(url: &str) -> Self {
        let yaml = MOCK_API.replace(
            "{stage}",
            ", throttle: { rateLimit: 1000000000, burstLimit: 1000000000 }",
        );
        Self::with_stage(&format!(
            "{yaml}rateStore: {{ type: redis, url: '{url}', failOpen: false, timeoutMs: 1000 }}\n"
        ))
    }

    fn with_stage(yaml: &str) -> Self {
        let definition = definition(yaml);
        let bench = MockBench {
            gateway: gateway(definition, &[]),
            runtime: runtime(),
            on_runtime: yaml.contains("type: redis"),
        };
        assert_eq!(bench.handle(Self::request()).status(), 200);
        bench
    }

    /// GET /dev/users/42.
    pub fn request() -> Request<Bytes> {
        Request::get("/dev/users/42")
            .body(Bytes::new())
            .expect("request")
    }

    /// The measured call: `Gateway::handle`, run with [`run`] (on the runtime when it waits for
    /// Redis).
    pub fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        if self.on_runtime {
            return self.runtime.block_on(self.gateway.handle(request));
        }
        run(&self.runtime, self.gateway.handle(request))
    }
}

impl Default for MockBench {
    fn default() -> Self {
        Self::new()
    }
}

/// A gateway whose routes are answered by the `echo` plugin on a fresh instance each call
/// (GET /dev/echo/42), by `echo` on a warm instance (GET /dev/warm/42) and by a mock (GET
/// /dev/mock/42), each request with two headers (`user-agent`, `accept`). Needs
/// plugins/dist/echo.wasm (`plugins/build`).
///
/// Each plugin has `maxConcurrency: 2`: the instance pools are sized from it, and valgrind
/// cannot reserve the address space of pools of the default size (a call takes one slot
/// whatever the pool's size).
pub struct PluginBench {
    gateway: Gateway,
    runtime: Runtime,
}

/// [`PluginBench`]'s path answered by `echo` on a fresh instance.
pub const ECHO_FRESH: &str = "/dev/echo/42";
/// [`PluginBench`]'s path answered by `echo` on a warm instance.
pub const ECHO_WARM: &str = "/dev/warm/42";
/// [`PluginBench`]'s path answered by a mock.
pub const ECHO_MOCK: &str = "/dev/mock/42";

const PLUGIN_API: &str = r#"
name: bench
plugins:
  echo: { path: echo.wasm, instances: fresh, maxConcurrency: 2 }
  echo-warm: { path: echo.wasm, instances: warm, maxConcurrency: 2 }
routes:
  GET /echo/{id}: { integration: { type: plugin, plugin: echo } }
  GET /warm/{id}: { integration: { type: plugin, plugin: echo-warm } }
  GET /mock/{id}:
    integration: { type: mock, headers: { content-type: application/json }, body: '{"id":"42"}' }
stages:
  dev: { variables: { TABLE: dev-Users } }
"#;

impl PluginBench {
    /// The gateway and its runtime, after each path answered 200 once (so the warm instance
    /// exists and the fresh instances' pool slot has been used).
    pub fn new() -> Self {
        // The epoch tick at 1 s instead of the default 10 ms: under valgrind a warm call lasts
        // long enough for the default tick to land in about half of the counted calls, and a
        // call that meets a tick yields to the runtime once (about 2,400 instructions more), so
        // `plugin_ic`'s counts flipped between two values. Natively a 5 us call meets a 10 ms
        // tick about once in 2,000. The host's pools sized for the two plugins' 2 + 2 slots.
        let host = PluginHost::builder()
            .max_instances(4)
            .epoch_tick(Duration::from_secs(1))
            .build()
            .expect("plugin host");
        let gateway = Gateway::builder(definition(PLUGIN_API))
            .base_dir(portico_tests::plugins_dist(&["echo"]))
            .plugin_host(host)
            .build()
            .expect("gateway");
        let bench = PluginBench {
            gateway,
            runtime: runtime(),
        };
        for path in [ECHO_FRESH, ECHO_WARM, ECHO_MOCK] {
            assert_eq!(bench.handle(Self::request(path)).status(), 200, "{path}");
        }
        bench
    }

    /// GET `path` with the two headers.
    pub fn request(path: &'static str) -> Request<Bytes> {
        Request::get(path)
            .header("user-agent", "bench")
            .header("accept", "application/json")
            .body(Bytes::new())
            .expect("request")
    }

    /// The measured call: `Gateway::handle` on the runtime (an instantiation may wait).
    pub fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        self.runtime.block_on(self.gateway.handle(request))
    }

    /// Instantiates the fresh plugin's component and drops the instance; false if it failed.
    pub fn instantiate(&self) -> bool {
        self.runtime
            .block_on(instantiate_plugin(&self.gateway, "echo"))
    }
}

impl Default for PluginBench {
    fn default() -> Self {
        Self::new()
    }
}

/// A gateway with a JWT authorizer (fresh RS256 and ES256 keys; the route wants scope
/// `users.read`) on GET /users/{id} and a custom authorizer (the `policy_authorizer` plugin) on
/// GET /reports/{id}, with a token of each algorithm whose claims are the size Cognito issues.
pub struct AuthorizeBench {
    gateway: Gateway,
    runtime: Runtime,
    rs256: String,
    es256: String,
}

impl AuthorizeBench {
    /// The gateway, its runtime and tokens, after every request was checked once (which also
    /// fills the authorizer caches). Needs plugins/dist/policy_authorizer.wasm.
    pub fn new() -> Self {
        Self::build(true)
    }

    /// The same without the custom authorizer and its plugin (GET /reports/{id} is open), for
    /// valgrind: it cannot reserve the terabyte of address space of wasmtime's instance pool.
    /// The JWT requests take the same path through the same route table.
    pub fn jwt_only() -> Self {
        Self::build(false)
    }

    fn build(custom: bool) -> Self {
        let keys = JwtKeys::generate();
        let (plugins, custom_authorizer, reports_authorizer) = if custom {
            (
                "plugins:\n  policy: { path: policy_authorizer.wasm }",
                "  custom:\n    type: request\n    plugin: policy\n    \
                 identitySource: [$request.header.Authorization]",
                ", authorizer: custom",
            )
        } else {
            ("", "", "")
        };
        let definition = definition(&format!(
            r#"
name: bench
{plugins}
authorizers:
  jwt:
    type: jwt
    issuer: https://issuer.example
    audience: [bench-client]
    jwks: {{ keys: {jwks} }}
{custom_authorizer}
routes:
  GET /users/{{id}}:
    integration: {{ type: mock }}
    authorizer: jwt
    authorizationScopes: [users.read]
  GET /reports/{{id}}: {{ integration: {{ type: mock }}{reports_authorizer} }}
stages:
  dev: {{}}
"#,
            jwks = keys.jwks()["keys"]
        ));
        // Claims of the size Cognito issues: the cache key is the whole token.
        let claims = json!({
            "iss": "https://issuer.example", "aud": "bench-client", "sub": "8f2c6d1e-user",
            "client_id": "bench-client", "token_use": "access", "auth_time": unix_now(),
            "iat": unix_now(), "exp": unix_now() + 3600, "jti": "0b5a1a43-7d1e-4a5e-9b1f-5a3c",
            "scope": "openid profile users.read users.write", "username": "alice",
        });
        let plugin_files: &[&str] = if custom { &["policy_authorizer"] } else { &[] };
        let bench = AuthorizeBench {
            gateway: gateway(definition, plugin_files),
            runtime: runtime(),
            rs256: format!("Bearer {}", keys.rs256(&claims)),
            es256: format!("Bearer {}", keys.es256(&claims)),
        };
        for request in [bench.jwt_rs256(), bench.jwt_es256()] {
            assert_eq!(bench.authorize(request).status(), 200);
        }
        if custom {
            assert_eq!(bench.authorize(bench.custom()).status(), 200);
            // A policy that allows only GET /other/*: the cached decision is re-evaluated.
            let refused = Self::request("/dev/reports/7", "allow-only=GET/other/*");
            assert_eq!(bench.authorize(refused).status(), 403);
        }
        bench
    }

    /// GET `path` with `authorization`.
    fn request(path: &str, authorization: &str) -> Request<Bytes> {
        Request::get(path)
            .header("authorization", authorization)
            .header("user-agent", "bench")
            .body(Bytes::new())
            .expect("request")
    }

    /// GET /dev/users/42 with the RS256 token.
    pub fn jwt_rs256(&self) -> Request<Bytes> {
        Self::request("/dev/users/42", &self.rs256)
    }

    /// GET /dev/users/42 with the ES256 token.
    pub fn jwt_es256(&self) -> Request<Bytes> {
        Self::request("/dev/users/42", &self.es256)
    }

    /// GET /dev/reports/7 with a policy that allows GET /reports/*.
    pub fn custom(&self) -> Request<Bytes> {
        Self::request("/dev/reports/7", "allow-only=GET/reports/*")
    }

    /// The measured call: [`authorize_only`], run with [`run`].
    pub fn authorize(&self, request: Request<Bytes>) -> Response<Bytes> {
        run(&self.runtime, authorize_only(&self.gateway, request))
    }

    /// Forgets the authorizers' cached results (outside the measured call).
    pub fn clear_caches(&self) {
        clear_authorizer_caches(&self.gateway);
    }
}

impl Default for AuthorizeBench {
    fn default() -> Self {
        Self::new()
    }
}

/// A gateway whose POST /users checks its body against the seed's CreateUser model (JSON Schema
/// draft 4, portico-tests' `CREATE_USER_MODEL`) and is answered by a mock.
pub struct ValidatedPostBench {
    gateway: Gateway,
    runtime: Runtime,
}

impl ValidatedPostBench {
    /// The gateway and its runtime, after a valid body was answered 201 and an invalid one 400.
    pub fn new() -> Self {
        let mut definition = definition(
            r#"
name: bench
routes:
  POST /users:
    integration: { type: mock, statusCode: 201, body: '{"ok":true}' }
    requestModel: CreateUser
stages:
  dev: {}
"#,
        );
        add_create_user_model(&mut definition);
        let bench = ValidatedPostBench {
            gateway: gateway(definition, &[]),
            runtime: runtime(),
        };
        let invalid = Self::request(Bytes::from_static(br#"{"email":"nope","name":""}"#));
        let handle = |request| bench.runtime.block_on(bench.gateway.handle(request));
        assert_eq!(handle(Self::valid()).status(), 201);
        assert_eq!(handle(invalid).status(), 400);
        bench
    }

    fn request(body: Bytes) -> Request<Bytes> {
        Request::post("/dev/users")
            .header("content-type", "application/json")
            .header("user-agent", "bench")
            .body(body)
            .expect("request")
    }

    /// POST /dev/users with a body the model accepts.
    pub fn valid() -> Request<Bytes> {
        Self::request(Bytes::from_static(
            br#"{"email":"alice@example.com","name":"Alice Example","age":34,"role":"editor"}"#,
        ))
    }

    /// The measured call: [`handle_with_lambda_event`]'s future, for the caller to run.
    pub fn handle_with_lambda_event(
        &self,
        request: Request<Bytes>,
    ) -> impl Future<Output = Response<Bytes>> + '_ {
        handle_with_lambda_event(&self.gateway, request)
    }

    /// The runtime the gateway's futures may wait on.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }
}

impl Default for ValidatedPostBench {
    fn default() -> Self {
        Self::new()
    }
}

/// The in-memory rate store's buckets for the `throttle` benches: a shared bucket and 10,000
/// per-key buckets, limits no request reaches (every take is admitted, the common case), each
/// key's bucket already made.
pub fn throttle_probe() -> RateProbe {
    let probe = RateProbe::memory(1e9, 1_000_000_000, 10_000);
    for i in 0..10_000 {
        assert!(probe.take_key(i));
    }
    assert!(probe.take());
    probe
}
