//! Metrics over real HTTP: requests through `portico-serve`, then its admin port's `/metrics`
//! (Prometheus text format) shows the counts, the error classes and the latency histograms.

use std::path::{Path, PathBuf};

use portico::metric;
use portico_serve::Server;
use portico_tests::RunningServer;

/// `api` on a loopback port with an admin port: the server, not serving yet (a test may start
/// capturing its access log first), and `http://ADMIN`.
pub(crate) async fn server_with_admin(api: &Path) -> (Server, String) {
    let server = Server::start(api, "127.0.0.1:0", None)
        .await
        .expect("server starts")
        .with_admin("127.0.0.1:0")
        .await
        .expect("admin port binds");
    let admin = format!("http://{}", server.admin_addr().expect("an admin address"));
    (server, admin)
}

/// The admin port's `/metrics` text (`admin` is `http://ADMIN`).
pub(crate) async fn metrics_text(client: &reqwest::Client, admin: &str) -> String {
    let response = client
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status(), 200);
    response.text().await.expect("metrics text")
}

/// An API of its own (its `apiId` appears in no other test), as the metrics recorder is
/// process-wide.
fn api(dir: &std::path::Path) -> PathBuf {
    let trap = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist/hostile_trap.wasm");
    assert!(
        trap.exists(),
        "{} is missing: run plugins/build",
        trap.display()
    );
    let yaml = format!(
        r#"
name: metrics-e2e
apiId: metricsapi
plugins:
  trap: {{ path: '{}' }}
routes:
  GET /health: {{ integration: {{ type: mock, body: ok }} }}
  GET /trap: {{ integration: {{ type: plugin, plugin: trap }} }}
stages:
  prod: {{}}
"#,
        trap.display()
    );
    let file = dir.join("api.yaml");
    std::fs::write(&file, yaml).unwrap();
    file
}

/// The value of the sample `name{labels}` (labels in the exporter's order), if present.
pub(crate) fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test]
async fn counts_errors_and_latencies_appear_on_the_admin_port() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) = server_with_admin(&api(dir.path())).await;
    let server = RunningServer::run(server);
    let base = server.base.clone();
    let client = reqwest::Client::new();
    let status = |path: &'static str| {
        let request = client.get(format!("{base}{path}"));
        async move { request.send().await.expect("response").status().as_u16() }
    };
    assert_eq!(status("/prod/health").await, 200);
    assert_eq!(status("/prod/health").await, 200);
    assert_eq!(status("/prod/nowhere").await, 404);
    assert_eq!(status("/prod/trap").await, 500);

    let response = client
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    let labels =
        |route: &str| format!(r#"api="metricsapi",stage="prod",route="{route}",canary="false""#);
    assert_eq!(
        sample(&text, metric::COUNT, &labels("GET /health")),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, metric::COUNT, &labels("-")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, metric::ERRORS_4XX, &labels("-")), Some(1.0));
    assert_eq!(
        sample(&text, metric::COUNT, &labels("GET /trap")),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, metric::ERRORS_5XX, &labels("GET /trap")),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, metric::ERRORS_4XX, &labels("GET /health")),
        None
    );
    assert_eq!(
        sample(&text, metric::ERRORS_5XX, &labels("GET /health")),
        None
    );
    // Latencies are histograms in seconds; the integration's only where one ran.
    let count = |name: &str, route: &str| sample(&text, &format!("{name}_count"), &labels(route));
    assert_eq!(count(metric::LATENCY, "GET /health"), Some(2.0), "{text}");
    assert_eq!(count(metric::LATENCY, "-"), Some(1.0));
    assert_eq!(count(metric::INTEGRATION_LATENCY, "GET /health"), Some(2.0));
    assert_eq!(count(metric::INTEGRATION_LATENCY, "GET /trap"), Some(1.0));
    assert_eq!(count(metric::INTEGRATION_LATENCY, "-"), None);
    assert!(text.contains(&format!(
        "{}_bucket{{{},le=\"+Inf\"}} 2",
        metric::LATENCY,
        labels("GET /health")
    )));

    let missing = client.get(format!("{admin}/other")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    server.shutdown().await;
}
