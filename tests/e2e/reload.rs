//! Hot reload through the `portico-serve` binary over real HTTP: redeploys under load (file
//! edits picked up by the directory watch, and by SIGHUP with the watch off) drop no request
//! and every answer names one version; a broken file changes nothing but is reported on stderr
//! and in `/metrics`; a Kubernetes ConfigMap's `..data` symlink swap is seen; a reload's own
//! reads of the file do not set off another; an unchanged plugin is kept across reloads and a
//! changed one is loaded anew.
//!
//! API Gateway's model, which a reload follows: "A stage is a named reference to a deployment,
//! which is a snapshot of the API" (AWS API Gateway developer guide, "Setting up a stage for a
//! REST API", set-up-stages.md); redeploying points the stage at a new snapshot, and a caller
//! sees one snapshot or the other, never a mix.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portico_tests::{plugins_dist, ServeProcess};
use serde_json::Value;

/// How long a reload may take to show (a generous bound, polled, never slept through).
const DEADLINE: Duration = Duration::from_secs(20);

/// Version `v` of the API: its mock answer names `v` three ways (a header, a literal in the
/// body and a stage variable rendered into the body), so an answer that mixed two
/// deployments would show it.
fn api(v: u32) -> String {
    format!(
        r#"name: reload-e2e
protocol: http
routes:
  GET /version:
    integration:
      type: mock
      headers: {{ x-version: "{v}" }}
      body: '{{"version":"{v}","stageVariable":"${{stageVariables.version}}"}}'
stages:
  prod: {{ variables: {{ version: "{v}" }} }}
"#
    )
}

/// A file that parses but does not compile: an integration naming a plugin that is not there.
const BROKEN: &str = r#"name: reload-e2e
protocol: http
routes:
  GET /version:
    integration: { type: plugin, plugin: nope }
stages:
  prod: {}
"#;

/// The key path the broken file's error names.
const BROKEN_KEY_PATH: &str = r#"routes."GET /version".integration.plugin: unknown plugin "nope""#;

/// How a redeploy reaches the file.
#[derive(Clone, Copy, Debug)]
enum Edit {
    /// An editor's save: write a temporary file beside it, rename it over the API file.
    Rename,
    /// Truncate and write the API file itself.
    InPlace,
}

fn write(file: &Path, text: &str, edit: Edit) {
    match edit {
        Edit::Rename => {
            let temp = file.with_file_name(".api.yaml.swp");
            std::fs::write(&temp, text).expect("write the temporary file");
            std::fs::rename(&temp, file).expect("rename it over the API file");
        }
        Edit::InPlace => std::fs::write(file, text).expect("write the API file"),
    }
}

/// `kill -HUP pid`.
fn hangup(process: &ServeProcess) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &process.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -HUP failed: {status}");
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// The version an answer names, or why it is not a good answer.
async fn version(client: &reqwest::Client, url: &str) -> Result<u32, String> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = response.status();
    let header = response
        .headers()
        .get("x-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.map_err(|e| format!("no body: {e}"))?;
    if status != 200 {
        return Err(format!("{status}: {body}"));
    }
    let json: Value = serde_json::from_str(&body).map_err(|e| format!("{body}: {e}"))?;
    let named = [
        header.as_deref(),
        json["version"].as_str(),
        json["stageVariable"].as_str(),
    ];
    match named {
        [Some(a), Some(b), Some(c)] if a == b && b == c => {
            a.parse().map_err(|e| format!("version {a:?}: {e}"))
        }
        _ => Err(format!(
            "an answer naming {named:?} (header {header:?}, body {body})"
        )),
    }
}

/// Polls `url` until it answers version `v`.
async fn wait_for_version(client: &reqwest::Client, url: &str, v: u32) {
    let start = Instant::now();
    loop {
        let got = version(client, url).await;
        if got == Ok(v) {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "version {v} did not show within {DEADLINE:?}; last answer: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of one series (`name` or `name{labels}`) in `/metrics`.
async fn metric(client: &reqwest::Client, admin: &str, series: &str) -> Option<f64> {
    let text = client
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// Polls `/metrics` until `series` satisfies `ok`.
async fn wait_for_metric(
    client: &reqwest::Client,
    admin: &str,
    series: &str,
    ok: impl Fn(f64) -> bool,
) -> f64 {
    let start = Instant::now();
    loop {
        let value = metric(client, admin, series).await;
        if let Some(value) = value.filter(|v| ok(*v)) {
            return value;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{series} is {value:?} after {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const ERRORS: &str = r#"portico_config_reloads_total{result="error"}"#;
const OKS: &str = r#"portico_config_reloads_total{result="ok"}"#;
const LAST_OK: &str = "portico_config_last_reload_successful";

async fn start(file: PathBuf, args: &'static [&'static str]) -> ServeProcess {
    tokio::task::spawn_blocking(move || {
        let mut all = vec!["--admin-listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        ServeProcess::start(&file, &all)
    })
    .await
    .expect("start portico-serve")
}

/// 4 client loops request the API through portico-serve while it is redeployed 20 times by
/// `redeploy`, a broken file after the 10th: no request fails, each answer names exactly one
/// version, no loop ever sees a version older than one it saw before, and the broken file
/// changes nothing but the error counter, the success gauge and stderr.
async fn redeploys_under_load(no_watch: bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("api.yaml");
    std::fs::write(&file, api(0)).expect("write the API file");
    let args: &'static [&'static str] = if no_watch { &["--no-watch"] } else { &[] };
    let process = start(file.clone(), args).await;
    let admin = process.admin().expect("an admin port").to_owned();
    let url = format!("{}/prod/version", process.base());
    let client = client();
    wait_for_version(&client, &url, 0).await;
    assert_eq!(metric(&client, &admin, LAST_OK).await, Some(1.0));

    let stop = Arc::new(AtomicBool::new(false));
    let loops: Vec<_> = (0..4)
        .map(|_| {
            let (client, url, stop) = (client.clone(), url.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let (mut answers, mut seen, mut failures) = (0u64, 0u32, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    answers += 1;
                    match version(&client, &url).await {
                        Ok(v) if v >= seen => seen = v,
                        Ok(v) => failures.push(format!("version {v} after version {seen}")),
                        Err(e) => failures.push(e),
                    }
                    // Continuous, yet leaving the shared machine's cores to the server and
                    // the redeploys: ~1,000 requests a second per loop.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                (answers, failures)
            })
        })
        .collect();

    let redeploy = |v: u32, text: &str| {
        let edit = if v.is_multiple_of(2) {
            Edit::InPlace
        } else {
            Edit::Rename
        };
        write(&file, text, edit);
        if no_watch {
            hangup(&process);
        }
    };
    for v in 1..=20 {
        redeploy(v, &api(v));
        wait_for_version(&client, &url, v).await;
        if v == 10 {
            let errors = metric(&client, &admin, ERRORS).await.unwrap_or(0.0);
            write(&file, BROKEN, Edit::Rename);
            if no_watch {
                hangup(&process);
            }
            wait_for_metric(&client, &admin, ERRORS, |n| n > errors).await;
            assert_eq!(metric(&client, &admin, LAST_OK).await, Some(0.0));
            assert_eq!(
                version(&client, &url).await,
                Ok(10),
                "the broken file changed nothing"
            );
            let log = process.log();
            let reported = log.lines().any(|line| {
                line.contains("reload failed")
                    && line.contains(&file.display().to_string())
                    && line.contains(BROKEN_KEY_PATH)
            });
            assert!(
                reported,
                "stderr names the file and {BROKEN_KEY_PATH}:\n{log}"
            );
        }
    }
    assert_eq!(metric(&client, &admin, LAST_OK).await, Some(1.0));
    let oks = metric(&client, &admin, OKS).await.unwrap_or(0.0);
    assert!(oks >= 20.0, "{oks} successful reloads for 20 redeploys");
    let loaded_at = metric(
        &client,
        &admin,
        "portico_config_last_reload_success_timestamp_seconds",
    )
    .await
    .expect("the timestamp gauge");
    assert!(loaded_at > 1.7e9, "a Unix time: {loaded_at}");

    stop.store(true, Ordering::Relaxed);
    let (mut answers, mut failures) = (0, Vec::new());
    for task in loops {
        let (n, mut failed) = task.await.expect("a client loop");
        answers += n;
        failures.append(&mut failed);
    }
    println!("redeploys under load (no_watch: {no_watch}): {answers} answers, {oks} reloads");
    assert!(
        failures.is_empty(),
        "{} bad answers: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert!(
        answers >= 80,
        "the loops kept requesting: {answers} answers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_edits_redeploy_without_dropping_a_request() {
    redeploys_under_load(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sighup_redeploys_without_dropping_a_request() {
    redeploys_under_load(true).await;
}

/// A reload opens and reads the API file, and inotify reports the open: were that counted as
/// a change, each reload would set off the next, forever (portico-serve did, rereading its file
/// about ten times a second once the first edit had come). After an edit has been picked up, an
/// idle portico-serve reads nothing: no bytes from any file or socket (`rchar` in
/// `/proc/PID/io`) while nobody writes the file or calls it.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_does_not_set_off_another() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("api.yaml");
    std::fs::write(&file, api(1)).expect("write the API file");
    let process = start(file.clone(), &[]).await;
    let admin = process.admin().expect("an admin port").to_owned();
    let url = format!("{}/prod/version", process.base());
    let client = client();
    wait_for_version(&client, &url, 1).await;
    write(&file, &api(2), Edit::InPlace);
    wait_for_version(&client, &url, 2).await;
    wait_for_metric(&client, &admin, OKS, |v| v == 1.0).await;
    // The reload's own events (its reads of the file) come within a debounce period (200 ms).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let read_bytes = || {
        let io =
            std::fs::read_to_string(format!("/proc/{}/io", process.pid())).expect("/proc/PID/io");
        io.lines()
            .find_map(|line| line.strip_prefix("rchar: "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .expect("rchar")
    };
    let before = read_bytes();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = read_bytes();
    assert_eq!(
        after - before,
        0,
        "an idle portico-serve read {} bytes in 1.5 s; stderr:\n{}",
        after - before,
        process.log()
    );
    // Still one reload, and a later edit is still seen.
    assert_eq!(metric(&client, &admin, OKS).await, Some(1.0));
    write(&file, &api(3), Edit::Rename);
    wait_for_version(&client, &url, 3).await;
}

/// Kubernetes mounts a ConfigMap as `api.yaml -> ..data/api.yaml`, `..data -> ..TIMESTAMP/`,
/// and updates it by writing a new `..TIMESTAMP/` and renaming a `..data_tmp` symlink over
/// `..data` (its atomic writer): the API file's own inode never changes.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_symlink_swap_redeploys() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let deploy = |v: u32| {
        let version_dir = format!("..2026_11_30_14_00_0{v}.000000001");
        std::fs::create_dir(root.join(&version_dir)).expect("a version directory");
        std::fs::write(root.join(&version_dir).join("api.yaml"), api(v)).expect("api.yaml");
        symlink(&version_dir, root.join("..data_tmp")).expect("..data_tmp");
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).expect("swap ..data");
    };
    deploy(1);
    symlink("..data/api.yaml", root.join("api.yaml")).expect("api.yaml symlink");
    let process = start(root.join("api.yaml"), &[]).await;
    let url = format!("{}/prod/version", process.base());
    let client = client();
    wait_for_version(&client, &url, 1).await;
    for v in 2..=4 {
        deploy(v);
        wait_for_version(&client, &url, v).await;
    }
}

/// The echo plugin, warm with one instance, counts the calls its instance served: a reload
/// that leaves the plugin's file and settings alone keeps the instance (the count goes on); a
/// new file (SIGHUP reloads even though the API file's bytes are the same) loads it anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_plugin_is_kept_and_a_changed_one_reloaded() {
    let dist = plugins_dist(&["echo"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let wasm = dir.path().join("echo.wasm");
    std::fs::copy(dist.join("echo.wasm"), &wasm).expect("copy echo.wasm");
    let file = dir.path().join("api.yaml");
    let with_echo = |v: u32| {
        api(v).replace(
            "routes:\n",
            "plugins:\n  echo: { path: echo.wasm, instances: warm, maxConcurrency: 1 }\n\
             routes:\n  GET /echo: { integration: { type: plugin, plugin: echo } }\n",
        )
    };
    std::fs::write(&file, with_echo(0)).expect("write the API file");
    let process = start(file.clone(), &["--no-watch"]).await;
    let client = client();
    let base = process.base().to_owned();
    let calls = || {
        let (client, url) = (client.clone(), format!("{base}/prod/echo?calls=1"));
        async move {
            let response = client.get(&url).send().await.expect("an answer");
            assert_eq!(response.status(), 200);
            let text = response.text().await.expect("a body");
            let body: Value = serde_json::from_str(&text).expect("JSON");
            body["calls"].as_u64().expect("calls")
        }
    };
    assert_eq!(calls().await, 1);
    assert_eq!(calls().await, 2);

    write(&file, &with_echo(1), Edit::Rename);
    hangup(&process);
    wait_for_version(&client, &format!("{base}/prod/version"), 1).await;
    assert_eq!(
        calls().await,
        3,
        "the plugin (and its warm instance) was kept"
    );

    // The same bytes, a new file: its stamp (size, modification time) changes.
    let bytes = std::fs::read(&wasm).expect("read echo.wasm");
    std::fs::remove_file(&wasm).expect("remove echo.wasm");
    std::fs::write(&wasm, bytes).expect("write echo.wasm");
    let log_before = process.log().matches("reloaded the API definition").count();
    hangup(&process);
    let start = Instant::now();
    while process.log().matches("reloaded the API definition").count() == log_before {
        assert!(
            start.elapsed() < DEADLINE,
            "no reload after SIGHUP:\n{}",
            process.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(calls().await, 1, "a changed plugin file is loaded anew");
}
