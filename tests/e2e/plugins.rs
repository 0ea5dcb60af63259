//! The real plugins of plugins/dist through the gateway: echo, users (with a restart on the
//! durable store), Python, JavaScript, a wasi:http component, the hostile ones, and load errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use portico::{ApiDefinition, Format, Gateway};
use portico_tests::e2e_api_file;
use serde_json::{json, Value};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn api_file() -> PathBuf {
    e2e_api_file(
        "plugins-api.yaml",
        &[
            "echo",
            "lazy_echo",
            "users",
            "python_hello",
            "js_hello",
            "hello_http",
            "hostile_loop",
            "hostile_memory",
            "hostile_trap",
            "token_authorizer",
        ],
    )
}

/// One gateway (in-memory store) shared by the tests that need no store of their own.
fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| Gateway::from_file(api_file()).expect("plugins API loads"))
}

fn request(method: &str, uri: &str, body: &str) -> http::Request<Bytes> {
    let mut request = http::Request::builder()
        .method(method)
        .uri(uri)
        .body(Bytes::from(body.to_owned()))
        .expect("request");
    request
        .extensions_mut()
        .insert(SocketAddr::from(([192, 0, 2, 7], 40_000)));
    request
}

/// Sends `request`; the status, headers and body (JSON, or the text as a JSON string).
pub(crate) async fn call(
    gateway: &Gateway,
    request: http::Request<Bytes>,
) -> (u16, http::HeaderMap, Value) {
    let response = gateway.handle(request).await;
    let status = response.status().as_u16();
    let body = response.body().clone();
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    (status, response.headers().clone(), value)
}

/// A POST of `uri` with every part a plugin can see filled in: a repeated header, cookies, a
/// user agent and a body.
fn full_request(uri: &str) -> http::Request<Bytes> {
    let mut req = request("POST", uri, "hello body");
    let headers = req.headers_mut();
    headers.append("x-multi", "one".parse().unwrap());
    headers.append("x-multi", "two".parse().unwrap());
    headers.insert("cookie", "session=abc; theme=dark".parse().unwrap());
    headers.insert("user-agent", "portico-test/1".parse().unwrap());
    req
}

#[tokio::test]
async fn echo_sees_the_whole_request() {
    let req = full_request("/dev/echo/a%20b/c?x=1&x=2&y=%C3%A9&plus=a+b");
    let (status, headers, body) = call(gateway(), req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body["method"], "POST");
    assert_eq!(body["rawPath"], "/echo/a%20b/c");
    assert_eq!(body["rawQuery"], "x=1&x=2&y=%C3%A9&plus=a+b");
    assert_eq!(body["queryParameters"]["x"], json!(["1", "2"]));
    assert_eq!(body["queryParameters"]["y"], json!(["é"]));
    assert_eq!(body["queryParameters"]["plus"], json!(["a b"]));
    assert_eq!(body["headers"]["x-multi"], json!(["one", "two"]));
    assert!(
        body["headers"].get("cookie").is_none(),
        "cookies are not headers: {body}"
    );
    assert_eq!(body["cookies"], json!(["session=abc", "theme=dark"]));
    assert_eq!(body["pathParameters"], json!({"proxy": "a b/c"}));
    assert_eq!(body["stage"], "dev");
    assert_eq!(body["stageVariables"], json!({"TABLE": "dev-Users"}));
    assert_eq!(body["routeKey"], "ANY /echo/{proxy+}");
    assert_eq!(
        body["requestId"],
        headers["apigw-requestid"].to_str().unwrap()
    );
    assert_eq!(body["sourceIp"], "192.0.2.7");
    assert_eq!(body["userAgent"], "portico-test/1");
    assert_eq!(body["authorizer"], Value::Null);
    assert_eq!(body["body"], "hello body");
    assert_eq!(body["bodyLength"], 10);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let seen = body["requestTimeEpochMs"].as_u64().expect("request time");
    assert!(
        seen <= now_ms && now_ms - seen < 60_000,
        "{seen} vs {now_ms}"
    );
}

/// Header bytes that are not UTF-8 (HTTP allows obs-text, 0x80-0xFF) reach a plugin with U+FFFD
/// in their place, as the WIT's strings must be UTF-8: in a header, in a cookie of the
/// `cookie` header and in the user agent. The UTF-8 ones around them arrive as sent.
#[tokio::test]
async fn header_bytes_that_are_not_utf8_reach_echo_as_replacement_characters() {
    let mut req = request("GET", "/dev/echo/x", "");
    let headers = req.headers_mut();
    let latin1 = |bytes: &[u8]| http::HeaderValue::from_bytes(bytes).unwrap();
    headers.insert("x-latin1", latin1(b"caf\xe9"));
    headers.insert("x-utf8", latin1("caf\u{e9}".as_bytes()));
    headers.insert("cookie", latin1(b"a=1; b=\xff; c=3"));
    headers.insert("user-agent", latin1(b"agent\xfe/1"));
    let (status, _, body) = call(gateway(), req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["headers"]["x-latin1"], json!(["caf\u{fffd}"]));
    assert_eq!(body["headers"]["x-utf8"], json!(["caf\u{e9}"]));
    assert_eq!(body["cookies"], json!(["a=1", "b=\u{fffd}", "c=3"]));
    assert_eq!(body["userAgent"], "agent\u{fffd}/1");
    assert_eq!(body["headers"]["user-agent"], json!(["agent\u{fffd}/1"]));
}

/// The lazy-integration world over a real request: lazy_echo, reading the request part by
/// part, sees what echo receives whole (the same request, but for its path and route), and
/// its one-name methods join a repeated header or query parameter with `,` as API Gateway's
/// 2.0 event does.
#[tokio::test]
async fn a_lazy_integration_sees_what_echo_sees() {
    let send = |path: &str| {
        let query =
            "x=1&x=2&y=%C3%A9&header=X-Multi&header=cookie&query=x&path=proxy&variable=TABLE";
        call(
            gateway(),
            full_request(&format!("/dev/{path}/a%20b/c?{query}")),
        )
    };
    let (status, _, mut whole) = send("echo").await;
    assert_eq!(status, 200, "{whole}");
    let (status, headers, mut lazily) = send("lazy").await;
    assert_eq!(status, 200, "{lazily}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        lazily["requestId"],
        headers["apigw-requestid"].to_str().unwrap()
    );
    assert_eq!(lazily["rawPath"], "/lazy/a%20b/c");
    assert_eq!(lazily["routeKey"], "ANY /lazy/{proxy+}");
    let lookups = lazily.as_object_mut().unwrap().remove("lookups").unwrap();
    assert_eq!(
        lookups,
        json!({
            "header": {"X-Multi": "one,two", "cookie": null},
            "query": {"x": "1,2"},
            "path": {"proxy": "a b/c"},
            "variable": {"TABLE": "dev-Users"},
        })
    );
    for body in [&mut whole, &mut lazily] {
        let fields = body.as_object_mut().unwrap();
        for differs in ["rawPath", "routeKey", "requestId", "requestTimeEpochMs"] {
            fields.remove(differs).expect(differs);
        }
    }
    assert_eq!(lazily, whole);
    assert_eq!(whole["cookies"], json!(["session=abc", "theme=dark"]));
}

#[tokio::test]
async fn echo_path_parameters_are_decoded_once() {
    let (status, _, body) =
        call(gateway(), request("GET", "/prod/echo/items/a%2Fb%2541", "")).await;
    assert_eq!(status, 200);
    assert_eq!(body["routeKey"], "GET /echo/items/{id}");
    assert_eq!(body["pathParameters"], json!({"id": "a/b%41"}));
    assert_eq!(body["stageVariables"], json!({"TABLE": "prod-Users"}));
}

/// A plugin answering more header lines than the gateway takes (10,000) is a failed
/// integration, an HTTP API's 500 (http-api-troubleshooting-lambda.md), not a panic; the
/// gateway goes on serving, and 10,000 lines pass (echo's `content-type` is one of them).
#[tokio::test]
async fn a_plugin_answer_with_too_many_headers_is_a_failed_integration() {
    let (status, headers, body) =
        call(gateway(), request("GET", "/dev/echo?headers=9999", "")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-echo-9998"], "9998");
    assert!(headers.contains_key("apigw-requestid"));
    let (status, headers, body) =
        call(gateway(), request("GET", "/dev/echo?headers=10000", "")).await;
    assert_eq!(
        (status, body),
        (500, json!({"message": "Internal Server Error"}))
    );
    assert!(!headers.contains_key("x-echo-0"));
    assert_eq!(
        call(gateway(), request("GET", "/dev/echo", "")).await.0,
        200
    );
}

#[tokio::test]
async fn echo_uses_the_host_imports() {
    let (status, _, body) = call(gateway(), request("GET", "/dev/echo?status=418", "")).await;
    assert_eq!(status, 418, "{body}");
    let (status, _, body) = call(
        gateway(),
        request("GET", "/dev/echo?kv=1&config=greeting&log=1", ""),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["kv"].is_string() && !body["kv"].as_str().unwrap().is_empty(),
        "{body}"
    );
    assert_eq!(body["config"], "hello-from-config");
    let (_, _, body) = call(gateway(), request("GET", "/dev/echo?config=absent", "")).await;
    assert_eq!(body["config"], Value::Null);
}

fn is_uuid_v4(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && text.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
        && groups[2].starts_with('4')
}

#[tokio::test]
async fn users_flow_survives_a_restart_on_the_embedded_store() {
    let data = tempfile::tempdir().expect("temp dir");
    let build = || {
        Gateway::file_builder(api_file())
            .expect("definition")
            .data_dir(data.path())
            .build()
            .expect("gateway")
    };
    let user_id = {
        let gw = build();
        let (status, headers, created) = call(
            &gw,
            request(
                "POST",
                "/dev/users",
                r#"{"name":"Alice","email":"alice@example.com"}"#,
            ),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(headers["content-type"], "application/json");
        let user = &created["user"];
        let id = user["userId"].as_str().expect("userId").to_owned();
        assert!(is_uuid_v4(&id), "{id}");
        assert_eq!(user["name"], "Alice");
        assert_eq!(user["email"], "alice@example.com");
        assert_eq!(user["PK"], format!("USER#{id}"));
        assert_eq!(user["SK"], "PROFILE");
        assert!(
            user["createdAt"]
                .as_str()
                .is_some_and(|t| t.len() >= 19 && t.contains('T')),
            "{user}"
        );

        let (status, _, got) = call(&gw, request("GET", &format!("/dev/users/{id}"), "")).await;
        assert_eq!(status, 200);
        assert_eq!(got["user"], *user);

        let (status, _, listed) = call(&gw, request("GET", "/dev/users?limit=10", "")).await;
        assert_eq!(status, 200);
        assert_eq!(listed["count"], 1);
        assert_eq!(listed["users"][0]["userId"], id.as_str());

        // Each stage has its own table.
        let (_, _, other) = call(&gw, request("GET", "/prod/users", "")).await;
        assert_eq!(other["count"], 0, "{other}");

        let (status, _, missing) = call(&gw, request("GET", "/dev/users/no-such-user", "")).await;
        assert_eq!((status, missing), (404, json!({"error": "User not found"})));

        let (status, _, bad) = call(&gw, request("POST", "/dev/users", r#"{"name":"Bob"}"#)).await;
        assert_eq!(
            (status, bad),
            (400, json!({"error": "Missing field: 'email'"}))
        );
        let (status, _, bad) = call(&gw, request("POST", "/dev/users", "not json")).await;
        assert_eq!(status, 400, "{bad}");
        id
    };
    // A new gateway on the same data directory: the user is still there.
    let gw = build();
    let (status, _, got) = call(&gw, request("GET", &format!("/dev/users/{user_id}"), "")).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["user"]["name"], "Alice");
    for i in 0..3 {
        let body = format!(r#"{{"name":"u{i}","email":"u{i}@example.com"}}"#);
        assert_eq!(call(&gw, request("POST", "/dev/users", &body)).await.0, 201);
    }
    let (_, _, listed) = call(&gw, request("GET", "/dev/users?limit=2", "")).await;
    assert_eq!(listed["count"], 2, "limit applies: {listed}");
}

#[tokio::test]
async fn python_and_javascript_plugins_answer() {
    let (status, _, body) = call(gateway(), request("GET", "/dev/hello/python", "")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"message": "hello from python", "path": "/hello/python", "stage": "dev", "calls": 1})
    );
    let (status, _, body) = call(gateway(), request("GET", "/prod/hello/js", "")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"message": "hello from javascript", "path": "/hello/js", "stage": "prod", "calls": 1})
    );
}

#[tokio::test]
async fn a_standard_wasi_http_component_serves_unchanged() {
    let mut req = request("GET", "/dev/files/docs/readme.txt?download=1", "");
    req.headers_mut().insert("x-echo", "ping".parse().unwrap());
    let (status, headers, body) = call(gateway(), req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        "hello from wasi:http GET /files/docs/readme.txt?download=1"
    );
    assert_eq!(headers["x-echo"], "ping");
    assert!(headers.contains_key("apigw-requestid"));
    let (status, _, body) = call(gateway(), request("DELETE", "/prod/files/x", "")).await;
    assert_eq!(
        (status, body),
        (200, json!("hello from wasi:http DELETE /files/x"))
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_endless_loop_times_out_while_other_requests_go_on() {
    // One executor thread: the loop must yield for the echo requests to be answered at all.
    let shared = gateway(); // compile the plugins before the clock starts
    let started = Instant::now();
    let looping =
        tokio::spawn(async move { call(shared, request("GET", "/dev/hostile/loop", "")).await });
    let mut answered = 0;
    while !looping.is_finished() && started.elapsed() < Duration::from_secs(5) {
        let sent = Instant::now();
        let (status, _, _) = call(shared, request("GET", "/dev/echo", "")).await;
        assert_eq!(status, 200);
        assert!(
            sent.elapsed() < Duration::from_millis(500),
            "echo took {:?} beside the loop",
            sent.elapsed()
        );
        answered += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _, body) = looping.await.expect("loop task");
    let elapsed = started.elapsed();
    assert_eq!(
        (status, body),
        (504, json!({"message": "Endpoint request timed out"}))
    );
    assert!(
        elapsed >= Duration::from_millis(1000) && elapsed < Duration::from_millis(2000),
        "{elapsed:?}"
    );
    assert!(
        answered >= 5,
        "only {answered} requests answered beside the loop"
    );
}

#[tokio::test]
async fn a_trap_and_a_memory_bomb_answer_500() {
    for path in ["/dev/hostile/trap", "/dev/hostile/memory"] {
        let (status, headers, body) = call(gateway(), request("GET", path, "")).await;
        // An HTTP API's failed Lambda integration (http-api-troubleshooting-lambda.md).
        assert_eq!(
            (status, body),
            (500, json!({"message": "Internal Server Error"})),
            "{path}"
        );
        assert!(headers.contains_key("apigw-requestid"));
    }
    // The host is fine afterwards.
    assert_eq!(
        call(gateway(), request("GET", "/dev/echo", "")).await.0,
        200
    );
}

fn write_temp(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

fn load(dir: &Path, plugin: &str, extra: &str) -> Result<Gateway, portico::Error> {
    let yaml = format!("name: t\nplugins:\n  p: {{ {plugin} }}\n{extra}stages:\n  dev: {{}}\n");
    let definition = ApiDefinition::from_str_as(&yaml, Format::Yaml).expect("definition parses");
    Gateway::builder(definition).base_dir(dir).build()
}

#[test]
fn plugin_load_errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dist = repo().join("plugins/dist");

    let err = load(dir.path(), "path: missing.wasm", "")
        .expect_err("missing file")
        .to_string();
    assert!(
        err.contains("plugins.p.path")
            && err.contains("missing.wasm")
            && err.contains("cannot read"),
        "{err}"
    );

    let core = wat::parse_str("(module (func (export \"handle\")))").expect("wat");
    write_temp(dir.path(), "core.wasm", &core);
    let err = load(dir.path(), "path: core.wasm", "")
        .expect_err("core module")
        .to_string();
    assert!(
        err.contains("core.wasm") && err.contains("core WebAssembly module, not a component"),
        "{err}"
    );

    // A `handle` that takes a string, not the request record: refused at load, before any
    // call could lower a record into it (the gateway calls `handle` unchecked afterwards).
    let wrong_handle = wat::parse_str(
        r#"(component
            (core module $m
                (memory (export "memory") 1)
                (func (export "realloc") (param i32 i32 i32 i32) (result i32) unreachable)
                (func (export "handle") (param i32 i32) (result i32) unreachable))
            (core instance $i (instantiate $m))
            (func (export "handle") (param "request" string) (result string)
                (canon lift (core func $i "handle") (memory (core memory $i "memory"))
                    (realloc (core func $i "realloc")))))"#,
    )
    .expect("wat");
    write_temp(dir.path(), "wrong_handle.wasm", &wrong_handle);
    let err = load(
        dir.path(),
        "path: wrong_handle.wasm, world: integration",
        "",
    )
    .expect_err("a handle of another type")
    .to_string();
    assert!(
        err.contains("wrong_handle.wasm")
            && err.contains("does not match the integration world")
            && err.contains("type-checking export func `handle`"),
        "{err}"
    );

    write_temp(dir.path(), "garbage.wasm", b"definitely not wasm");
    let err = load(dir.path(), "path: garbage.wasm", "")
        .expect_err("garbage")
        .to_string();
    assert!(
        err.contains("garbage.wasm") && err.contains("not a valid WebAssembly component"),
        "{err}"
    );

    let echo = dist.join("echo.wasm");
    let err = load(
        dir.path(),
        &format!("path: {}, world: authorizer", echo.display()),
        "",
    )
    .expect_err("wrong world")
    .to_string();
    assert!(
        err.contains("echo.wasm") && err.contains("does not export the authorizer world"),
        "{err}"
    );

    let auth = dist.join("token_authorizer.wasm");
    let route = "routes:\n  GET /x: { integration: { type: plugin, plugin: p } }\n";
    let err = load(dir.path(), &format!("path: {}", auth.display()), route)
        .expect_err("authorizer as integration")
        .to_string();
    assert!(
        err.contains("routes.\"GET /x\".integration.plugin") && err.contains("authorizer world"),
        "{err}"
    );

    let err = load(
        dir.path(),
        &format!("path: {}, memoryMb: 0", echo.display()),
        "",
    )
    .expect_err("memory")
    .to_string();
    assert!(err.contains("plugins.p.memoryMb"), "{err}");
    assert!(load(dir.path(), &format!("path: {}", echo.display()), route).is_ok());
}

/// A definition whose plugins `forever` (hostile_loop, the default 29 s limit) and `second`
/// (hostile_loop, `timeoutMs: 1000`) are behind `routes` (YAML lines under `routes:`).
fn looping_api(integrations: &str, routes: &str) -> Result<Gateway, portico::Error> {
    let file = repo().join("plugins/dist/hostile_loop.wasm");
    let integrations = if integrations.is_empty() {
        String::new()
    } else {
        format!("integrations:\n{integrations}")
    };
    let yaml = format!(
        "name: t\nplugins:\n  forever: {{ path: '{file}' }}\n  second: {{ path: '{file}', timeoutMs: 1000 }}\n\
         {integrations}routes:\n{routes}stages:\n  $default: {{}}\n",
        file = file.display()
    );
    let definition = ApiDefinition::from_str_as(&yaml, Format::Yaml).expect("definition parses");
    Gateway::new(&definition)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integration_timeout_caps_the_plugins_own() {
    api_file(); // plugins/dist is there
    let gateway = looping_api(
        "  capped: { type: plugin, plugin: forever, timeoutMs: 300 }\n",
        "  GET /inline: { integration: { type: plugin, plugin: forever, timeoutMs: 200 } }\n\
         \x20 GET /named: { integration: capped }\n\
         \x20 GET /longer: { integration: { type: plugin, plugin: second, timeoutMs: 5000 } }\n",
    )
    .expect("loads");
    let timed = |path: &'static str| {
        let gateway = gateway.clone();
        async move {
            let started = Instant::now();
            let (status, _, body) = call(&gateway, request("GET", path, "")).await;
            (status, body, started.elapsed())
        }
    };
    let (inline, named, longer) = tokio::join!(
        tokio::spawn(timed("/inline")),
        tokio::spawn(timed("/named")),
        tokio::spawn(timed("/longer")),
    );
    let timed_out = json!({"message": "Endpoint request timed out"});
    for (path, answer, shortest, longest) in [
        // The plugin's own limit is 29 s: the integration's is the shorter.
        ("/inline", inline, 200, 5_000),
        ("/named", named, 300, 5_000),
        // The plugin's own 1 s is shorter than the integration's 5 s.
        ("/longer", longer, 1_000, 4_000),
    ] {
        let (status, body, elapsed) = answer.expect("call task");
        assert_eq!((status, &body), (504, &timed_out), "{path}");
        assert!(
            elapsed >= Duration::from_millis(shortest) && elapsed < Duration::from_millis(longest),
            "{path} answered after {elapsed:?}"
        );
    }
}

#[test]
fn plugin_settings_out_of_range_name_their_key_path() {
    api_file(); // plugins/dist is there
    let error = |integrations: &str, routes: &str| match looping_api(integrations, routes) {
        Ok(_) => panic!("loaded:\n{integrations}{routes}"),
        Err(e) => e.to_string(),
    };
    for bad in [0, 49, 29_001] {
        let err = error(
            "",
            &format!("  GET /x: {{ integration: {{ type: plugin, plugin: forever, timeoutMs: {bad} }} }}\n"),
        );
        assert!(
            err.starts_with(r#"routes."GET /x".integration.timeoutMs: "#)
                && err.contains("between 50 and 29000 milliseconds"),
            "{err}"
        );
    }
    let err = error(
        "  capped: { type: plugin, plugin: forever, timeoutMs: 30000 }\n",
        "  GET /x: { integration: capped }\n",
    );
    assert!(
        err.starts_with("integrations.capped.timeoutMs: ") && err.contains("30000"),
        "{err}"
    );

    // The world is one of five, refused by the parser.
    let yaml = "name: t\nplugins:\n  p: { path: echo.wasm, world: lamda }\nstages:\n  dev: {}\n";
    let err = ApiDefinition::from_str_as(yaml, Format::Yaml)
        .expect_err("unknown world")
        .to_string();
    assert!(
        err.starts_with("plugins.p.world: unknown variant `lamda`, expected one of `integration`, `lazy-integration`, `lambda`, `authorizer`, `wasi-http`"),
        "{err}"
    );
}
