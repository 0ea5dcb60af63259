//! Loaded components and their limits: [`PluginRuntime`] loads a plugin of the definition on
//! its host (compiled, checked against its world, linked), and [`LoadedPlugin`] runs it, on a
//! fresh instance per call, under a time limit and a memory cap.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, ResourceTable};
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::bindings;
use super::call::{AuthCall, AuthVerdict, CallRequest, CallResponse, PluginFailure};
use super::host::PluginHost;
use super::imports::{HostState, MemoryLimiter, NoOutgoingHttp};
use crate::config::{PluginDefinition, PluginWorld};
use crate::error::{Error, KeyPath};
use crate::store::KvStore;

/// Default time limits, as in API Gateway (29 s for integrations, 10 s for authorizers).
const INTEGRATION_TIMEOUT: Duration = Duration::from_millis(29_000);
const AUTHORIZER_TIMEOUT: Duration = Duration::from_millis(10_000);
/// Default memory cap of one instance.
const DEFAULT_MEMORY_MB: u64 = 128;

/// What every plugin of a gateway shares: the plugin host and the gateway's key-value store.
/// Lives as long as the gateway, across reloads.
pub(crate) struct PluginRuntime {
    host: PluginHost,
    kv: Arc<dyn KvStore>,
}

impl PluginRuntime {
    /// A runtime for a gateway whose plugins run on `host` and use `kv`.
    pub(crate) fn new(host: PluginHost, kv: Arc<dyn KvStore>) -> Arc<Self> {
        Arc::new(PluginRuntime { host, kv })
    }

    /// Compiles and links the component of plugin `name` (found at `at` in the definition).
    pub(crate) fn load(
        self: &Arc<Self>,
        name: &str,
        definition: &PluginDefinition,
        base_dir: &Path,
        at: &KeyPath,
    ) -> Result<Arc<LoadedPlugin>, Error> {
        let path = base_dir.join(&definition.path);
        let fail = |message: String| {
            Error::config(at.key("path"), format!("{}: {message}", path.display()))
        };
        let bytes =
            std::fs::read(&path).map_err(|e| fail(format!("cannot read the plugin: {e}")))?;
        if is_core_module(&bytes) {
            return Err(fail("is a core WebAssembly module, not a component (wrap it with `wasm-tools component new`)".into()));
        }
        let stamp = std::fs::metadata(&path)
            .map(|m| (m.len(), m.modified().ok()))
            .unwrap_or((bytes.len() as u64, None));
        let host = &self.host;
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let component = host.component(&canonical, &bytes, stamp).map_err(fail)?;
        let exported = exported_world(host.engine(), &component);
        let world = match (definition.world, exported) {
            (Some(declared), found) => {
                if found != Some(declared) {
                    return Err(fail(format!(
                        "does not export the {declared} world ({})",
                        describe_exports(host.engine(), &component)
                    )));
                }
                declared
            }
            (None, Some(found)) => found,
            (None, None) => {
                return Err(fail(format!(
                    "exports none of the integration world (`handle`), the lambda world (`handle-event`), the authorizer world (`authorize`) or wasi:http/incoming-handler ({})",
                    describe_exports(host.engine(), &component)
                )))
            }
        };
        let instance_pre = host.linker().instantiate_pre(&component).map_err(|e| {
            fail(format!(
                "imports something the host does not provide: {e:#}"
            ))
        })?;
        let pre = match world {
            PluginWorld::Integration => {
                bindings::integration::IntegrationPre::new(instance_pre).map(Pre::Integration)
            }
            PluginWorld::Lambda => bindings::lambda::LambdaPre::new(instance_pre).map(Pre::Lambda),
            PluginWorld::Authorizer => {
                bindings::authorizer::AuthorizerPre::new(instance_pre).map(Pre::Authorizer)
            }
            PluginWorld::WasiHttp => ProxyPre::new(instance_pre).map(Pre::WasiHttp),
        }
        .map_err(|e| fail(format!("does not match the {world} world: {e:#}")))?;

        let default_timeout = if world == PluginWorld::Authorizer {
            AUTHORIZER_TIMEOUT
        } else {
            INTEGRATION_TIMEOUT
        };
        let timeout = match definition.timeout_ms {
            Some(0) => return Err(Error::config(at.key("timeoutMs"), "must be at least 1")),
            Some(ms) => Duration::from_millis(ms),
            None => default_timeout,
        };
        let memory_mb = definition.memory_mb.unwrap_or(DEFAULT_MEMORY_MB);
        let max_memory_mb = host.max_memory_mb();
        if memory_mb == 0 || memory_mb > max_memory_mb {
            return Err(Error::config(
                at.key("memoryMb"),
                format!("must be 1-{max_memory_mb}"),
            ));
        }
        Ok(Arc::new(LoadedPlugin {
            name: name.into(),
            world,
            timeout,
            memory_bytes: (memory_mb as usize) << 20,
            config: Arc::new(definition.config.clone()),
            runtime: Arc::clone(self),
            pre,
        }))
    }
}

/// A core module starts with the magic and version 1; a component with the magic and a
/// different version/layer word.
fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

fn exported_world(engine: &Engine, component: &Component) -> Option<PluginWorld> {
    let ty = component.component_type();
    let mut found = None;
    for (name, _) in ty.exports(engine) {
        if name == "handle" {
            found = Some(PluginWorld::Integration);
        } else if name == "handle-event" {
            found = Some(PluginWorld::Lambda);
        } else if name == "authorize" {
            found = Some(PluginWorld::Authorizer);
        } else if name.starts_with("wasi:http/incoming-handler@") {
            found = Some(PluginWorld::WasiHttp);
        }
    }
    found
}

fn describe_exports(engine: &Engine, component: &Component) -> String {
    let names: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(n, _)| n.to_owned())
        .collect();
    if names.is_empty() {
        "it exports nothing".into()
    } else {
        format!("it exports: {}", names.join(", "))
    }
}

/// A component linked for its world, ready to be instantiated.
pub(super) enum Pre {
    Integration(bindings::integration::IntegrationPre<HostState>),
    Lambda(bindings::lambda::LambdaPre<HostState>),
    Authorizer(bindings::authorizer::AuthorizerPre<HostState>),
    WasiHttp(ProxyPre<HostState>),
}

/// A compiled, linked plugin, ready to be instantiated per call.
pub(crate) struct LoadedPlugin {
    name: Arc<str>,
    world: PluginWorld,
    timeout: Duration,
    memory_bytes: usize,
    config: Arc<BTreeMap<String, String>>,
    runtime: Arc<PluginRuntime>,
    pub(super) pre: Pre,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.name)
            .field("world", &self.world)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    /// The plugin's name in the definition.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The world the component implements.
    pub(crate) fn world(&self) -> PluginWorld {
        self.world
    }

    /// The time limit of one call: the plugin's own (`timeoutMs`), or `cap` (an integration's
    /// `timeoutMs`) when that is shorter.
    pub(super) fn limit(&self, cap: Option<Duration>) -> Duration {
        cap.map_or(self.timeout, |cap| cap.min(self.timeout))
    }

    /// A store for one call that ends it `limit` from now.
    pub(super) fn new_store(&self, limit: Duration) -> Store<HostState> {
        let state = HostState {
            plugin: Arc::clone(&self.name),
            config: Arc::clone(&self.config),
            kv: Arc::clone(&self.runtime.kv),
            table: ResourceTable::new(),
            wasi: None,
            http: None,
            http_hooks: NoOutgoingHttp,
            limiter: MemoryLimiter {
                max_bytes: self.memory_bytes,
                exceeded: false,
            },
            timed_out: false,
        };
        let mut store = Store::new(self.runtime.host.engine(), state);
        store.limiter(|state| &mut state.limiter);
        let deadline = Instant::now() + limit;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut context| {
            if Instant::now() >= deadline {
                context.data_mut().timed_out = true;
                Err(wasmtime::Error::msg("time limit reached"))
            } else {
                // Give the executor back every tick: a busy plugin never starves others.
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    fn failure(&self, store: &Store<HostState>, error: wasmtime::Error) -> PluginFailure {
        let state = store.data();
        let failure = if state.timed_out {
            PluginFailure::Timeout
        } else if state.limiter.exceeded {
            PluginFailure::MemoryExceeded
        } else {
            PluginFailure::Trap(format!("{error:#}"))
        };
        self.log_failure(&failure);
        failure
    }

    /// The result of a call that may fail in the host (trap, timeout) or report a plugin error.
    fn settle<T>(
        &self,
        store: &Store<HostState>,
        outcome: Result<Result<T, String>, wasmtime::Error>,
    ) -> Result<T, PluginFailure> {
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => {
                let failure = PluginFailure::PluginError(message);
                self.log_failure(&failure);
                Err(failure)
            }
            Err(error) => Err(self.failure(store, error)),
        }
    }

    pub(super) fn log_failure(&self, failure: &PluginFailure) {
        tracing::error!(plugin = %self.name, world = self.world.name(), "plugin {failure}");
    }

    /// Instantiates the component on a fresh store and drops it (for benchmarks).
    pub(crate) async fn instantiate_only(&self) -> Result<(), PluginFailure> {
        let mut store = self.new_store(self.timeout);
        let result = match &self.pre {
            Pre::Integration(pre) => pre.instantiate_async(&mut store).await.map(drop),
            Pre::Lambda(pre) => pre.instantiate_async(&mut store).await.map(drop),
            Pre::Authorizer(pre) => pre.instantiate_async(&mut store).await.map(drop),
            Pre::WasiHttp(pre) => pre.instantiate_async(&mut store).await.map(drop),
        };
        result.map_err(|error| self.failure(&store, error))
    }

    /// Calls the integration world's `handle` on a fresh instance, within the plugin's time
    /// limit or `cap` if that is shorter.
    pub(crate) async fn handle(
        &self,
        request: CallRequest<'_>,
        cap: Option<Duration>,
    ) -> Result<CallResponse, PluginFailure> {
        let Pre::Integration(pre) = &self.pre else {
            return Err(PluginFailure::Trap(format!(
                "plugin {} is not an integration",
                self.name
            )));
        };
        let request = bindings::types::Request::from(request);
        let mut store = self.new_store(self.limit(cap));
        let outcome = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_handle(&mut store, &request).await
        }
        .await;
        self.settle(&store, outcome.map(|r| r.map_err(|e| e.message)))
            .map(CallResponse::from)
    }

    /// Calls the lambda world's `handle-event` on a fresh instance: the event JSON in, the
    /// function's response JSON out; within the plugin's time limit or `cap` if shorter.
    pub(crate) async fn handle_event(
        &self,
        event: &str,
        cap: Option<Duration>,
    ) -> Result<String, PluginFailure> {
        let Pre::Lambda(pre) = &self.pre else {
            return Err(PluginFailure::Trap(format!(
                "plugin {} is not of the lambda world",
                self.name
            )));
        };
        let mut store = self.new_store(self.limit(cap));
        let outcome = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_handle_event(&mut store, event).await
        }
        .await;
        self.settle(&store, outcome.map(|r| r.map_err(|e| e.message)))
    }

    /// Calls the authorizer world's `authorize` on a fresh instance.
    pub(crate) async fn authorize(&self, call: AuthCall) -> Result<AuthVerdict, PluginFailure> {
        let Pre::Authorizer(pre) = &self.pre else {
            return Err(PluginFailure::Trap(format!(
                "plugin {} is not an authorizer",
                self.name
            )));
        };
        let request = bindings::types::AuthRequest::from(call);
        let mut store = self.new_store(self.timeout);
        let outcome = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_authorize(&mut store, &request).await
        }
        .await;
        outcome
            .map(AuthVerdict::from)
            .map_err(|error| self.failure(&store, error))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::plugin::{AuthorizerKind, ContextValue};
    use crate::store::MemoryKv;

    /// A runtime on a host of its own, as a gateway without an embedder's host makes.
    fn runtime() -> Arc<PluginRuntime> {
        let host = PluginHost::builder().build().unwrap();
        PluginRuntime::new(host, Arc::new(MemoryKv::new()))
    }

    fn token_authorizer() -> Arc<LoadedPlugin> {
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist");
        assert!(
            dist.join("token_authorizer.wasm").exists(),
            "run plugins/build first"
        );
        let definition: PluginDefinition = serde_yaml::from_str(
            "{ path: token_authorizer.wasm, config: { issuer: 'https://issuer.example', audience: 'client-1', hs256Secret: s3cret } }",
        )
        .unwrap();
        let runtime = runtime();
        runtime
            .load("auth", &definition, &dist, &KeyPath::root())
            .unwrap()
    }

    fn token(secret: &str, audience: &str, expires_in: i64) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let claims = serde_json::json!({
            "sub": "user-42", "email": "u42@example.com", "custom:role": "admin",
            "iss": "https://issuer.example", "aud": audience, "iat": now, "exp": now + expires_in,
        });
        let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &key,
        )
        .unwrap()
    }

    fn auth_request(token: String) -> AuthCall {
        AuthCall {
            kind: AuthorizerKind::Token,
            token,
            identity_source: Vec::new(),
            method_arn: "arn:aws:execute-api:us-east-1:123456789012:api1/dev/GET/users".into(),
            method: "GET".into(),
            raw_path: "/users".into(),
            route_key: "GET /users".into(),
            stage: "dev".into(),
            request_id: "rid".into(),
            source_ip: "192.0.2.1".into(),
            headers: Vec::new(),
            query_parameters: Vec::new(),
            path_parameters: Vec::new(),
            stage_variables: Vec::new(),
        }
    }

    #[tokio::test]
    async fn the_authorizer_world_works_end_to_end() {
        let plugin = token_authorizer();
        assert_eq!(plugin.world(), PluginWorld::Authorizer);

        let decision = plugin
            .authorize(auth_request(format!(
                "Bearer {}",
                token("s3cret", "client-1", 600)
            )))
            .await
            .unwrap();
        let AuthVerdict::Allow(grant) = decision else {
            panic!("expected allow, got {decision:?}")
        };
        assert_eq!(grant.principal_id, "user-42");
        let context: BTreeMap<_, _> = grant.context.into_iter().collect();
        assert_eq!(
            context.get("userId"),
            Some(&ContextValue::Text("user-42".into()))
        );
        assert_eq!(
            context.get("email"),
            Some(&ContextValue::Text("u42@example.com".into()))
        );
        assert_eq!(
            context.get("role"),
            Some(&ContextValue::Text("admin".into()))
        );
        let policy: serde_json::Value =
            serde_json::from_str(&grant.policy_document.expect("policy")).unwrap();
        let statement = &policy["Statement"][0];
        assert_eq!(statement["Effect"], "Allow");
        assert_eq!(statement["Action"], "execute-api:Invoke");
        assert_eq!(
            statement["Resource"],
            "arn:aws:execute-api:us-east-1:123456789012:api1/dev/*"
        );

        for bad in [
            token("wrong", "client-1", 600),
            token("s3cret", "client-2", 600),
            token("s3cret", "client-1", -600),
            "garbage".into(),
        ] {
            let decision = plugin.authorize(auth_request(bad)).await.unwrap();
            assert!(
                matches!(decision, AuthVerdict::Unauthorized),
                "{decision:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_integration_is_not_called_as_an_authorizer() {
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist");
        let definition: PluginDefinition = serde_yaml::from_str("{ path: echo.wasm }").unwrap();
        let runtime = runtime();
        let echo = runtime
            .load("echo", &definition, &dist, &KeyPath::root())
            .unwrap();
        assert_eq!(echo.world(), PluginWorld::Integration);
        assert!(matches!(
            echo.authorize(auth_request(String::new())).await,
            Err(PluginFailure::Trap(_))
        ));
    }

    #[test]
    fn an_integration_timeout_only_shortens_the_plugins_own() {
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist");
        let definition: PluginDefinition =
            serde_yaml::from_str("{ path: echo.wasm, timeoutMs: 1000 }").unwrap();
        let echo = runtime()
            .load("echo", &definition, &dist, &KeyPath::root())
            .unwrap();
        let ms = Duration::from_millis;
        assert_eq!(echo.limit(None), ms(1000));
        assert_eq!(echo.limit(Some(ms(100))), ms(100));
        assert_eq!(echo.limit(Some(ms(29_000))), ms(1000));
    }

    /// Collects formatted log lines.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn empty_request(stage_variables: &BTreeMap<String, String>) -> CallRequest<'_> {
        CallRequest {
            method: "GET",
            raw_path: "/",
            raw_query: "",
            query_parameters: Vec::new(),
            headers: Vec::new(),
            cookies: Vec::new(),
            path_parameters: &[],
            stage: "dev",
            stage_variables,
            route_key: "GET /",
            request_id: "rid",
            source_ip: String::new(),
            user_agent: String::new(),
            request_time_epoch_ms: 0,
            authorizer: None,
            body: &[],
        }
    }

    #[test]
    fn a_trap_is_logged_with_the_plugin_name_and_the_trap_message() {
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist");
        let definition: PluginDefinition =
            serde_yaml::from_str("{ path: hostile_trap.wasm }").unwrap();
        let runtime = runtime();
        let trap = runtime
            .load("my-trap", &definition, &dist, &KeyPath::root())
            .unwrap();
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let outcome = tracing::subscriber::with_default(subscriber, || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(trap.handle(empty_request(&BTreeMap::new()), None))
        });
        let Err(PluginFailure::Trap(message)) = outcome else {
            panic!("expected a trap, got {outcome:?}")
        };
        let logged = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(logged.contains("ERROR"), "{logged}");
        assert!(logged.contains("plugin=my-trap"), "{logged}");
        assert!(
            logged.contains("trapped") && logged.contains(message.lines().next().unwrap()),
            "{logged}"
        );
    }
}
