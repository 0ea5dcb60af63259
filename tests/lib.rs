//! End-to-end tests live in `e2e/`. This library holds what they share with each other and with
//! the benches: JWT signing keys generated on the spot (never copied from anywhere) and their
//! public JWKs, the plugins/dist and e2e API file lookups, a gateway over an API that calls the
//! echo plugin, the status of a plain GET, and the seed guide's CreateUser model. With the
//! `serve` feature (on by default; the benches leave it out): a running `portico-serve`, the
//! access log lines it writes, and a raw HTTP answer read off a socket.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http::HeaderMap;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portico::{ApiDefinition, Gateway, KvStore, MemoryKv};
use rand::rngs::OsRng;
use serde_json::{json, Value};

/// A freshly generated RS256 key (2048 bits) and ES256 key, with their public JWKs.
pub struct JwtKeys {
    rsa: EncodingKey,
    ec: EncodingKey,
    /// The RSA public key as a JWK with `kid: rsa`.
    pub rsa_jwk: Value,
    /// The P-256 public key as a JWK with `kid: ec`.
    pub ec_jwk: Value,
}

impl JwtKeys {
    /// New keys from the OS's random source. RSA generation takes a fraction of a second.
    pub fn generate() -> Self {
        use rsa::pkcs1::EncodeRsaPrivateKey as _;
        use rsa::traits::PublicKeyParts as _;
        let rsa = rsa::RsaPrivateKey::new(&mut OsRng, 2048).expect("RSA key");
        let public = rsa.to_public_key();
        let rsa_jwk = json!({
            "kty": "RSA", "kid": "rsa", "alg": "RS256",
            "n": b64(&public.n().to_bytes_be()), "e": b64(&public.e().to_bytes_be()),
        });
        let rsa_der = rsa.to_pkcs1_der().expect("PKCS#1");
        let ec = p256::ecdsa::SigningKey::random(&mut OsRng);
        let point = ec.verifying_key().to_encoded_point(false);
        let ec_jwk = json!({
            "kty": "EC", "crv": "P-256", "kid": "ec",
            "x": b64(point.x().expect("x")), "y": b64(point.y().expect("y")),
        });
        let ec_der = p256::pkcs8::EncodePrivateKey::to_pkcs8_der(&ec).expect("PKCS#8");
        JwtKeys {
            rsa: EncodingKey::from_rsa_der(rsa_der.as_bytes()),
            ec: EncodingKey::from_ec_der(ec_der.as_bytes()),
            rsa_jwk,
            ec_jwk,
        }
    }

    /// `{"keys": [rsa, ec]}`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.rsa_jwk, self.ec_jwk] })
    }

    /// `claims` signed RS256 under `kid: rsa`.
    pub fn rs256(&self, claims: &Value) -> String {
        sign(Algorithm::RS256, "rsa", &self.rsa, claims)
    }

    /// `claims` signed with the RSA key (RS256) under another `kid`.
    pub fn rs256_with_kid(&self, kid: &str, claims: &Value) -> String {
        sign(Algorithm::RS256, kid, &self.rsa, claims)
    }

    /// `claims` signed ES256 under `kid: ec`.
    pub fn es256(&self, claims: &Value) -> String {
        sign(Algorithm::ES256, "ec", &self.ec, claims)
    }
}

/// `claims` signed with `key` under a header naming `alg` and `kid`.
pub fn sign(alg: Algorithm, kid: &str, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).expect("signs")
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// Unpadded base64url, as JWKs and JWTs write bytes.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// plugins/dist, after checking that it holds `{name}.wasm` for each of `plugins`.
pub fn plugins_dist(plugins: &[&str]) -> PathBuf {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist");
    for name in plugins {
        let file = dist.join(format!("{name}.wasm"));
        assert!(
            file.exists(),
            "{} is missing: run plugins/build (scripts/test does)",
            file.display()
        );
    }
    dist
}

/// e2e/`name`, an API file of the end-to-end tests, after checking that plugins/dist holds the
/// `plugins` it loads.
pub fn e2e_api_file(name: &str, plugins: &[&str]) -> PathBuf {
    plugins_dist(plugins);
    Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e").join(name)
}

/// A gateway over an e2e API file whose routes call the echo plugin, with a key-value store of
/// its own: with `?kv=1` the plugin leaves a mark there, so a test can count its calls.
pub struct EchoApi {
    gateway: Gateway,
    kv: Arc<MemoryKv>,
}

impl EchoApi {
    /// e2e/`name`, changed by `edit`.
    pub fn load(name: &str, edit: impl FnOnce(&mut ApiDefinition)) -> Self {
        let file = e2e_api_file(name, &["echo"]);
        let mut definition = ApiDefinition::from_file(&file).expect("parses");
        edit(&mut definition);
        let kv = Arc::new(MemoryKv::new());
        let gateway = Gateway::builder(definition)
            .base_dir(file.parent().expect("e2e/"))
            .kv_store(kv.clone())
            .build()
            .unwrap_or_else(|e| panic!("{name} loads: {e}"));
        EchoApi { gateway, kv }
    }

    /// The answer to `method uri` with `headers` and `body`.
    pub async fn send(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Answer {
        let mut request = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body.into()).expect("request");
        let response = self.gateway.handle(request).await;
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: String::from_utf8_lossy(response.body()).into_owned(),
        }
    }

    /// How many calls of the echo plugin with `?kv=1` left their mark.
    pub fn echo_calls(&self) -> usize {
        self.kv
            .list_prefix("echo", "", None, 1000)
            .expect("store")
            .len()
    }
}

/// The status of `GET path` from a client at 192.0.2.7.
pub async fn get_status(gateway: &Gateway, path: &str) -> u16 {
    let mut request = http::Request::get(path)
        .body(Bytes::new())
        .expect("request");
    request
        .extensions_mut()
        .insert(std::net::SocketAddr::from(([192, 0, 2, 7], 40_000)));
    gateway.handle(request).await.status().as_u16()
}

/// Status and body of `GET path`, with API key `key` (`x-api-key`) when given.
pub async fn get_with_key(gateway: &Gateway, path: &str, key: Option<&str>) -> (u16, String) {
    let mut request = http::Request::get(path);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let response = gateway
        .handle(request.body(Bytes::new()).expect("request"))
        .await;
    (
        response.status().as_u16(),
        String::from_utf8_lossy(response.body()).into_owned(),
    )
}

/// What a test looks at in an answer.
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body as text (invalid UTF-8 replaced).
    pub body: String,
}

impl Answer {
    /// The value of header `name`, if the answer has one.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("a header of text"))
    }

    /// Whether the answer carries no CORS header (`access-control-*`).
    pub fn has_no_cors_headers(&self) -> bool {
        self.headers
            .keys()
            .all(|name| !name.as_str().starts_with("access-control-"))
    }
}

/// The seed guide's `CreateUser` request model (JSON Schema draft 4), in YAML: what the
/// validation tests and the pipeline bench check request bodies against.
pub const CREATE_USER_MODEL: &str = r#"
type: object
required: [email, name]
properties:
  email: { type: string, pattern: "^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}$" }
  name:  { type: string, minLength: 1, maxLength: 100 }
  age:   { type: integer, minimum: 0, maximum: 150 }
  role:  { type: string, enum: [admin, editor, viewer] }
"#;

/// Adds [`CREATE_USER_MODEL`] to `definition` as its model `CreateUser`.
pub fn add_create_user_model(definition: &mut ApiDefinition) {
    let model = yaml_serde::from_str(CREATE_USER_MODEL).expect("CreateUser is YAML");
    definition
        .models
        .insert("CreateUser", model)
        .expect("no other CreateUser model");
}

#[cfg(feature = "serve")]
pub use serve::{hammer, http1_server, read_http_answer, Captured, Hammered, RunningServer};

/// Fixtures around `portico-serve` (the `serve` feature).
#[cfg(feature = "serve")]
mod serve {
    use std::path::Path;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use portico_serve::{AccessLogLayer, Server};
    use serde_json::Value;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;
    use tracing_subscriber::prelude::*;

    /// A loopback HTTP/1.1 server (a test's upstream) answering each request with `answer`;
    /// its address, and the task to abort to stop it.
    pub async fn http1_server<F, Fut, B>(answer: F) -> (std::net::SocketAddr, JoinHandle<()>)
    where
        F: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<hyper::Response<B>, std::convert::Infallible>>
            + Send
            + 'static,
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let answer = answer.clone();
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(
                            hyper_util::rt::TokioIo::new(stream),
                            hyper::service::service_fn(answer),
                        )
                        .await;
                });
            }
        });
        (addr, accept)
    }

    /// The answers [`hammer`] counted.
    #[derive(Debug, Clone, Copy)]
    pub struct Hammered {
        /// 200s.
        pub admitted: u64,
        /// 429s.
        pub throttled: u64,
        /// Anything else.
        pub other: u64,
        /// Seconds from the first request to the last answer.
        pub seconds: f64,
    }

    /// `tasks` tokio tasks each send request after request (`send(task)` gives one request's
    /// status) for `run`, and the statuses are counted: how the bucket tests hammer a limit.
    pub async fn hammer<F, Fut>(tasks: usize, run: Duration, send: F) -> Hammered
    where
        F: Fn(usize) -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = u16> + Send,
    {
        use std::sync::atomic::{AtomicU64, Ordering};
        let counts: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
        let started = std::time::Instant::now();
        let until = started + run;
        let handles: Vec<_> = (0..tasks)
            .map(|task| {
                let (send, counts) = (send.clone(), Arc::clone(&counts));
                tokio::spawn(async move {
                    while std::time::Instant::now() < until {
                        let slot = match send(task).await {
                            200 => 0,
                            429 => 1,
                            _ => 2,
                        };
                        counts[slot].fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.await.expect("a hammering task");
        }
        let count = |slot: usize| counts[slot].load(Ordering::Relaxed);
        Hammered {
            admitted: count(0),
            throttled: count(1),
            other: count(2),
            seconds: started.elapsed().as_secs_f64(),
        }
    }

    /// A `portico-serve` server running on a task, and the means to stop it.
    pub struct RunningServer {
        /// `http://127.0.0.1:PORT` (`https://` when served with TLS).
        pub base: String,
        stop: Option<oneshot::Sender<()>>,
        task: JoinHandle<std::io::Result<()>>,
    }

    impl RunningServer {
        /// The API file `api` served on a loopback port chosen by the system.
        pub async fn start(api: &Path) -> RunningServer {
            let server = Server::start(api, "127.0.0.1:0", None)
                .await
                .expect("server starts");
            Self::run(server)
        }

        /// `server` serving on a task until [`RunningServer::shutdown`].
        pub fn run(server: Server) -> RunningServer {
            let base = server.base_url();
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(server.serve(async move {
                let _ = stopped.await;
            }));
            RunningServer {
                base,
                stop: Some(stop),
                task,
            }
        }

        /// `127.0.0.1:PORT`, for a raw connection.
        pub fn address(&self) -> &str {
            self.base
                .trim_start_matches("http://")
                .trim_start_matches("https://")
        }

        /// Tells the server to stop: it refuses new connections and lets requests in flight
        /// finish.
        pub fn stop(&mut self) {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
        }

        /// Stops the server; it must finish cleanly within 10 s.
        pub async fn shutdown(mut self) {
            self.stop();
            let finished = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
            assert!(
                matches!(finished, Ok(Ok(Ok(())))),
                "server did not stop cleanly: {finished:?}"
            );
        }
    }

    /// Reads an HTTP/1.1 answer until its JSON body closes, the peer closes, or 5 s pass;
    /// returns what arrived as text.
    pub async fn read_http_answer(stream: &mut TcpStream) -> String {
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(n)) => {
                    received.extend_from_slice(&buffer[..n]);
                    if received.windows(4).any(|w| w == b"\r\n\r\n") && received.ends_with(b"}") {
                        break;
                    }
                }
            }
        }
        String::from_utf8_lossy(&received).into_owned()
    }

    /// Lines a tracing layer writes: portico-serve's `AccessLogLayer` with [`Captured::start`]
    /// (as the server writes them), or any other layer given a clone as its writer.
    #[derive(Clone, Default)]
    pub struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        /// Captures this thread's access log lines until the guard drops (on a current-thread
        /// runtime, spawned server tasks are covered too).
        pub fn start() -> (Captured, tracing::subscriber::DefaultGuard) {
            let captured = Captured::default();
            let writer = captured.clone();
            let subscriber =
                tracing_subscriber::registry().with(AccessLogLayer::new(move || writer.clone()));
            let guard = tracing::subscriber::set_default(subscriber);
            (captured, guard)
        }

        /// Everything written so far.
        pub fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }

        /// Every line, each of which must be one JSON object.
        pub fn lines(&self) -> Vec<Value> {
            self.text()
                .lines()
                .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
                .collect()
        }
    }
}

/// A `redis-server` of the test's own (Debian's package) on a free loopback port, without
/// persistence, killed when dropped. A test that needs Redis fails, loudly, when the server
/// is not installed or does not start: it never skips.
pub struct RedisServer {
    port: u16,
    child: Option<std::process::Child>,
}

impl RedisServer {
    /// Starts one and waits until it answers PING.
    pub fn start() -> Self {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut server = RedisServer { port, child: None };
            match server.spawn() {
                Ok(()) => return server,
                Err(why) => last = why,
            }
        }
        panic!("redis-server did not start: {last}");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL: no goodbye to its clients) and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        let mut last = String::new();
        // The port may linger for a moment after the kill.
        for _ in 0..50 {
            match self.spawn() {
                Ok(()) => return,
                Err(why) => last = why,
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "redis-server did not start again on port {}: {last}",
            self.port
        );
    }

    /// A plain (blocking) connection, for what a test does behind the gateways' backs.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|client| {
                client.get_connection_with_timeout(std::time::Duration::from_secs(5))
            })
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.url()))
    }

    /// Runs one command (`["SCRIPT", "FLUSH"]`) and returns its answer.
    pub fn command<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let (name, rest) = args.split_first().expect("a command");
        let mut command = redis::cmd(name);
        for arg in rest {
            command.arg(*arg);
        }
        command
            .query(&mut self.connection())
            .unwrap_or_else(|e| panic!("redis {args:?}: {e}"))
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir", &std::env::temp_dir().to_string_lossy()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    panic!(
                        "redis-server is not installed: the Redis tests need Debian's redis-server \
                         (apt-get install redis-server; scripts/test installs it)"
                    )
                }
                format!("cannot run redis-server: {e}")
            })?;
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let pong = redis::Client::open(self.url()).and_then(|client| {
                let mut connection =
                    client.get_connection_with_timeout(std::time::Duration::from_millis(200))?;
                redis::cmd("PING").query::<String>(&mut connection)
            });
            if matches!(pong.as_deref(), Ok("PONG")) {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                return Err(format!("it exited ({status}) on port {}", self.port));
            }
            if std::time::Instant::now() > deadline {
                self.stop();
                return Err(format!(
                    "no PONG within 10 s on port {}: {pong:?}",
                    self.port
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port nothing listens on (a moment ago).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// A `portico-serve` process (the binary `cargo test --release --workspace` builds beside the
/// test binaries) serving an API file on a free loopback port; killed when dropped. Its
/// diagnostic log (stderr) goes to a file the test can read.
pub struct ServeProcess {
    child: std::process::Child,
    base: String,
    /// `http://ADDR` of the admin port, when started with `--admin-listen`.
    admin: Option<String>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// From async tests (the process starts on a blocking thread).
#[cfg(feature = "serve")]
impl ServeProcess {
    /// `portico-serve --api API` with its admin port and its access log written to `log`.
    pub async fn start_logged(api: PathBuf, log: PathBuf) -> ServeProcess {
        tokio::task::spawn_blocking(move || {
            let log = log.to_str().expect("utf-8 path");
            ServeProcess::start(
                &api,
                &["--admin-listen", "127.0.0.1:0", "--access-log", log],
            )
        })
        .await
        .expect("start portico-serve")
    }
}

impl ServeProcess {
    /// `portico-serve --api API --listen 127.0.0.1:0 ARGS...`, once it printed where it
    /// listens.
    pub fn start(api: &Path, args: &[&str]) -> Self {
        let mut all = vec![std::ffi::OsStr::new("--api"), api.as_os_str()];
        all.extend(args.iter().map(std::ffi::OsStr::new));
        Self::start_with(&all)
    }

    /// `portico-serve ARGS... --listen 127.0.0.1:0` (ARGS name the API: `--api FILE` or
    /// `--openapi FILE ...`), once it printed where it listens.
    pub fn start_with(args: &[&std::ffi::OsStr]) -> Self {
        use std::io::BufRead as _;
        let binary = portico_serve_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("stderr.log");
        let mut child = std::process::Command::new(&binary)
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let mut admin = None;
        let base = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.strip_prefix("portico-serve: metrics on http://") {
                        let addr = rest.trim().trim_end_matches("/metrics");
                        admin = Some(format!("http://{addr}"));
                    }
                    // `http://ADDR`, or `https://ADDR` with --tls-cert and --tls-key.
                    if let Some((_, url)) = line.rsplit_once(" on ") {
                        if line.starts_with("portico-serve:") && !line.contains("/metrics") {
                            break url.trim().to_owned();
                        }
                    }
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "portico-serve did not start: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        };
        // Keep reading its stdout, so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        ServeProcess {
            child,
            base,
            admin,
            log,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT` (`https://` when started with --tls-cert and --tls-key).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `http://ADDR` of its admin port (`/metrics`), when started with `--admin-listen`.
    pub fn admin(&self) -> Option<&str> {
        self.admin.as_deref()
    }

    /// Its process id (to send it signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends it SIGTERM (a graceful stop) and waits, at most 20 s, for it to exit; its exit
    /// status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        assert!(sigterm(&self.child), "kill -TERM failed");
        exit_within(&mut self.child, std::time::Duration::from_secs(20))
            .expect("wait for portico-serve")
            .unwrap_or_else(|| {
                panic!(
                    "portico-serve still runs 20 s after SIGTERM: {}",
                    self.log()
                )
            })
    }

    /// What it wrote to stderr so far (once the file stopped growing: see [`settled_read`]).
    pub fn log(&self) -> String {
        settled_read(&self.log)
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `child` SIGTERM (a graceful stop); whether `kill` could.
pub fn sigterm(child: &std::process::Child) -> bool {
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .is_ok_and(|status| status.success())
}

/// `child`'s exit status once it has exited, looked at every 20 ms for at most `limit`; `None`
/// when it still runs then.
pub fn exit_within(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if std::time::Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The text of `file` once it stopped growing: read until two reads 50 ms apart agree (for at
/// most 10 s). portico-serve writes its logs (stderr, the access log) from a thread of its
/// own, a moment after the request that logged has been answered, so a test that reads a log
/// right after its answers would race the writer.
pub fn settled_read(file: &Path) -> String {
    let read = || std::fs::read_to_string(file).unwrap_or_default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut last = read();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let now = read();
        if now == last || std::time::Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// target/release/portico-serve, beside the directory of the running test binary.
pub fn portico_serve_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/PROFILE/deps");
    let binary = dir.join(format!("portico-serve{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: `cargo test --release --workspace` builds it (scripts/test runs that)",
        binary.display()
    );
    binary
}
