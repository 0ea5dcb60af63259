//! Plugin instances end to end: warm instances keep their module state (Rust, Python and
//! JavaScript guests), a reload keeps an unchanged plugin's instances, provisioned instances
//! exist at load, and `maxConcurrency` queues calls, then answers what API Gateway answers for
//! a throttled Lambda, over real HTTP through portico-serve with many concurrent requests.

use std::path::Path;

use bytes::Bytes;
use portico::{metric, ApiDefinition, Format, Gateway};
use portico_tests::{plugins_dist, RunningServer};
use serde_json::Value;

use crate::metrics::{metrics_text, sample, server_with_admin};

/// A gateway over `plugins` (YAML lines under `plugins:`), each behind `GET /<name>`.
fn gateway(plugins: &[(&str, &str)]) -> Gateway {
    Gateway::new(&definition(plugins)).unwrap_or_else(|e| panic!("loads: {e}"))
}

fn definition(plugins: &[(&str, &str)]) -> ApiDefinition {
    let dist = plugins_dist(&["echo", "python_hello", "js_hello"]);
    let mut yaml = String::from("name: instances\nplugins:\n");
    for (name, settings) in plugins {
        let settings = settings.replace("DIST", &dist.display().to_string());
        yaml.push_str(&format!("  {name}: {settings}\n"));
    }
    yaml.push_str("routes:\n");
    for (name, _) in plugins {
        yaml.push_str(&format!(
            "  GET /{name}: {{ integration: {{ type: plugin, plugin: {name} }} }}\n"
        ));
    }
    yaml.push_str("stages:\n  $default: {}\n");
    ApiDefinition::from_str_as(&yaml, Format::Yaml).expect("parses")
}

/// The `calls` the plugin behind `path` reports: the calls its instance has served.
async fn calls(gateway: &Gateway, path: &str) -> u64 {
    let response = gateway
        .handle(http::Request::get(path).body(Bytes::new()).unwrap())
        .await;
    assert_eq!(response.status(), 200, "{path}: {:?}", response.body());
    let body: Value = serde_json::from_slice(response.body()).expect("JSON");
    body["calls"]
        .as_u64()
        .unwrap_or_else(|| panic!("{path}: {body}"))
}

#[tokio::test]
async fn warm_instances_keep_module_state_in_every_language_and_fresh_ones_start_over() {
    let gateway = gateway(&[
        ("rust", "{ path: 'DIST/echo.wasm', instances: warm }"),
        (
            "python",
            "{ path: 'DIST/python_hello.wasm', instances: warm }",
        ),
        ("js", "{ path: 'DIST/js_hello.wasm', instances: warm }"),
        ("rust-fresh", "{ path: 'DIST/echo.wasm' }"),
        (
            "python-fresh",
            "{ path: 'DIST/python_hello.wasm', instances: fresh }",
        ),
        ("js-fresh", "{ path: 'DIST/js_hello.wasm' }"),
    ]);
    for round in 1..=3 {
        assert_eq!(calls(&gateway, "/rust?calls=1").await, round);
        assert_eq!(calls(&gateway, "/python").await, round);
        assert_eq!(calls(&gateway, "/js").await, round);
        assert_eq!(calls(&gateway, "/rust-fresh?calls=1").await, 1);
        assert_eq!(calls(&gateway, "/python-fresh").await, 1);
        assert_eq!(calls(&gateway, "/js-fresh").await, 1);
    }
}

#[tokio::test]
async fn a_trapped_warm_instance_is_replaced_and_the_call_answers_500() {
    let gateway = gateway(&[("rust", "{ path: 'DIST/echo.wasm', instances: warm }")]);
    assert_eq!(calls(&gateway, "/rust?calls=1").await, 1);
    assert_eq!(calls(&gateway, "/rust?calls=1").await, 2);
    let trapped = gateway
        .handle(
            http::Request::get("/rust?panic=1")
                .body(Bytes::new())
                .unwrap(),
        )
        .await;
    // An HTTP API's failed integration: 500 (http-api-troubleshooting-lambda.md).
    assert_eq!(trapped.status(), 500);
    assert_eq!(
        calls(&gateway, "/rust?calls=1").await,
        1,
        "the trapped instance served again"
    );
}

/// A warm instance whose memory grows from call to call (echo's `keep=256` keeps 256 KiB a
/// call, as a leaking plugin does: componentize-js 0.23's bindings keep about 800 bytes a call,
/// bytecodealliance/ComponentizeJS#350) is retired once past nine tenths of its memory cap,
/// after a call that answered, with a warning: every call answers 200 and the next instance
/// starts over. Without that, the call that reaches the cap would fail: a 4 MB cap is reached
/// within 16 such calls.
#[tokio::test]
async fn a_warm_instance_that_keeps_filling_its_memory_is_retired_before_a_call_fails() {
    use tracing_subscriber::prelude::*;
    let log = portico_tests::Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(move || writer.clone()),
    );
    let _guard = tracing::subscriber::set_default(subscriber);
    let gateway = gateway(&[(
        "rust",
        "{ path: 'DIST/echo.wasm', instances: warm, memoryMb: 4 }",
    )]);
    let mut counts = Vec::new();
    for _ in 0..32 {
        counts.push(calls(&gateway, "/rust?calls=1&keep=256").await);
    }
    let restarts = counts.windows(2).filter(|w| w[1] < w[0]).count();
    assert!(restarts >= 2, "never retired: {counts:?}");
    // Each instance served several calls before it was retired: it was warm until then.
    assert!(counts.iter().max() > Some(&4), "{counts:?}");
    assert!(
        log.text().contains("a warm instance is retired at"),
        "no warning: {}",
        log.text()
    );
    // The calls that do not keep memory go on on one instance.
    let first = calls(&gateway, "/rust?calls=1").await;
    assert_eq!(calls(&gateway, "/rust?calls=1").await, first + 1);
}

#[tokio::test]
async fn a_reload_keeps_an_unchanged_plugins_warm_instances_and_restarts_a_changed_one() {
    let plugins = [("rust", "{ path: 'DIST/echo.wasm', instances: warm }")];
    let gateway = gateway(&plugins);
    assert_eq!(calls(&gateway, "/rust?calls=1").await, 1);
    assert_eq!(calls(&gateway, "/rust?calls=1").await, 2);
    // The same plugin: an API redeploy leaves a Lambda's environments alone.
    gateway.reload(&definition(&plugins)).expect("reloads");
    assert_eq!(calls(&gateway, "/rust?calls=1").await, 3);
    // Changed settings: a new plugin, new instances.
    let changed = [(
        "rust",
        "{ path: 'DIST/echo.wasm', instances: warm, maxConcurrency: 8 }",
    )];
    gateway.reload(&definition(&changed)).expect("reloads");
    assert_eq!(calls(&gateway, "/rust?calls=1").await, 1);
}

/// An API of its own for the HTTP test (its `apiId` appears in no other test: the metrics
/// recorder is process-wide).
fn throttle_api(dir: &Path) -> std::path::PathBuf {
    let dist = plugins_dist(&["echo", "hostile_loop"]);
    let yaml = format!(
        r#"
name: instances-e2e
apiId: instancesapi
plugins:
  # One call at a time, two more may wait 300 ms; each call spins until its 1.5 s run out.
  slow: {{ path: '{dist}/hostile_loop.wasm', timeoutMs: 1500, maxConcurrency: 1, maxQueued: 2, queueTimeoutMs: 300 }}
  # One warm instance, one call at a time, everyone else waits their turn.
  count: {{ path: '{dist}/echo.wasm', instances: warm, maxConcurrency: 1, queueTimeoutMs: 20000 }}
  # Two instances made at load.
  ready: {{ path: '{dist}/echo.wasm', instances: warm, provisioned: 2, maxConcurrency: 4 }}
routes:
  GET /slow: {{ integration: {{ type: plugin, plugin: slow }} }}
  GET /count: {{ integration: {{ type: plugin, plugin: count }} }}
  GET /ready: {{ integration: {{ type: plugin, plugin: ready }} }}
stages:
  $default: {{}}
"#,
        dist = dist.display()
    );
    let file = dir.join("api.yaml");
    std::fs::write(&file, yaml).unwrap();
    file
}

/// Over real HTTP: a warm instance retired nearly full (echo's `keep=256` on a 4 MB cap, see
/// `a_warm_instance_that_keeps_filling_its_memory_is_retired_before_a_call_fails`) shows on
/// `/metrics`: every retirement in `portico_plugin_memory_retirements_total`, and a cold
/// start for each instance that replaced one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_instances_retired_nearly_full_are_counted_over_http() {
    let file = portico_tests::e2e_api_file("instances-full.yaml", &["echo"]);
    portico_serve::metrics_handle();
    let (server, admin) = server_with_admin(&file).await;
    let server = RunningServer::run(server);
    let client = reqwest::Client::new();
    // The last call keeps nothing: whichever instance served before, one serves it.
    for keep in [256; 32].into_iter().chain([0]) {
        let response = client
            .get(format!("{}/full?keep={keep}", server.base))
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), 200);
    }
    let text = metrics_text(&client, &admin).await;
    let labels = r#"api="instancesfull",plugin="full""#;
    let retired = sample(&text, metric::PLUGIN_MEMORY_RETIREMENTS, labels).unwrap_or(0.0);
    let cold = sample(&text, metric::PLUGIN_COLD_STARTS, labels).unwrap_or(0.0);
    assert!(retired >= 2.0, "{text}");
    assert_eq!(cold, retired + 1.0, "{text}");
}

/// Over real HTTP, many requests at once: over `maxConcurrency` a call waits in the queue
/// and is served when a slot frees; past the queue's room or patience it gets API Gateway's
/// answer for a throttled Lambda: 500 `{"message":"Internal Server Error"}` on an HTTP API
/// ("If the Lambda API rejects the invocation request, API Gateway returns a 500 error
/// code", AWS Lambda Developer Guide, services-apigateway-errors; the HTTP API's spelling of
/// the body is in the API Gateway Developer Guide, http-api-troubleshooting-lambda; see
/// integrate's `a_throttled_plugin_call_answers_500_as_a_throttled_lambda`). Never a 502 of an
/// exhausted instance pool. Provisioned instances are there before the first request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limits_queue_then_answer_as_a_throttled_lambda_over_http() {
    let dir = tempfile::tempdir().unwrap();
    // The recorder before the gateway loads, as portico-serve installs it.
    portico_serve::metrics_handle();
    let (server, admin) = server_with_admin(&throttle_api(dir.path())).await;
    let server = RunningServer::run(server);
    let base = server.base.clone();
    let client = reqwest::Client::new();
    let metrics = || metrics_text(&client, &admin);
    let labels = |plugin: &str| format!(r#"api="instancesapi",plugin="{plugin}""#);

    // Provisioned: two instances at load, before any request.
    let text = metrics().await;
    assert_eq!(
        sample(&text, metric::PLUGIN_INSTANCES, &labels("ready")),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, metric::PLUGIN_COLD_STARTS, &labels("ready")),
        Some(2.0)
    );
    let ready = client
        .get(format!("{base}/ready?calls=1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ready: Value = serde_json::from_str(&ready).expect("JSON");
    assert_eq!(ready["calls"], 1);
    let text = metrics().await;
    assert_eq!(
        sample(&text, metric::PLUGIN_COLD_STARTS, &labels("ready")),
        Some(2.0),
        "the first call made an instance: {text}"
    );

    // A provisioned instance that traps is discarded and replaced in the background, as
    // Lambda keeps its provisioned concurrency: two instances again, one more cold start.
    let trapped = client
        .get(format!("{base}/ready?panic=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(trapped.status(), 500);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = metrics().await;
        let instances = sample(&text, metric::PLUGIN_INSTANCES, &labels("ready"));
        let cold = sample(&text, metric::PLUGIN_COLD_STARTS, &labels("ready"));
        if instances == Some(2.0) && cold == Some(3.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no replacement within 30 s: instances {instances:?}, cold starts {cold:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let ready: Value = serde_json::from_str(
        &client
            .get(format!("{base}/ready?calls=1"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .expect("JSON");
    // A fresh (replacement or untouched provisioned) instance counts 1, the one kept from the
    // first call 2.
    assert!(matches!(ready["calls"].as_u64(), Some(1 | 2)), "{ready}");
    let text = metrics().await;
    assert_eq!(
        sample(&text, metric::PLUGIN_COLD_STARTS, &labels("ready")),
        Some(3.0),
        "the call after the trap was served by a kept or replaced instance: {text}"
    );

    // Queued, then served in turn: sixteen slow calls at once on one warm instance.
    let answers = concurrently(&client, &format!("{base}/count?calls=1&spin=3000000"), 16).await;
    let mut counted: Vec<u64> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{body}");
            let body: Value = serde_json::from_str(body).unwrap();
            body["calls"].as_u64().unwrap()
        })
        .collect();
    counted.sort_unstable();
    assert_eq!(
        counted,
        (1..=16).collect::<Vec<_>>(),
        "one instance, one call at a time"
    );

    // Throttled: one call runs for 1.5 s, two wait 300 ms, the rest are refused at once.
    let answers = concurrently(&client, &format!("{base}/slow"), 24).await;
    let timed_out = answers.iter().filter(|(status, _)| *status == 504).count();
    let throttled: Vec<&String> = answers
        .iter()
        .filter(|(status, _)| *status == 500)
        .map(|(_, body)| body)
        .collect();
    assert!(timed_out >= 1, "{answers:?}");
    assert!(throttled.len() >= 12, "{answers:?}");
    assert_eq!(timed_out + throttled.len(), answers.len(), "{answers:?}");
    for body in &throttled {
        assert_eq!(body.as_str(), r#"{"message":"Internal Server Error"}"#);
    }
    let text = metrics().await;
    assert_eq!(
        sample(&text, metric::PLUGIN_THROTTLED, &labels("slow")),
        Some(throttled.len() as f64),
        "{text}"
    );
    assert_eq!(
        sample(&text, metric::PLUGIN_THROTTLED, &labels("count")),
        None
    );
    assert_eq!(
        sample(&text, metric::PLUGIN_INSTANCES, &labels("count")),
        Some(1.0)
    );
    server.shutdown().await;
}

/// `count` GET requests to `url` at once, each on a task of its own: (status, body) each.
async fn concurrently(client: &reqwest::Client, url: &str, count: usize) -> Vec<(u16, String)> {
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let request = client.get(url);
            tokio::spawn(async move {
                let response = request.send().await.expect("response");
                let status = response.status().as_u16();
                (status, response.text().await.expect("body"))
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("request task"));
    }
    answers
}
