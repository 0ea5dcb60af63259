//! `scripts/fleet` run briefly, as README shows it: Redis, three portico-serve processes on the
//! demo API and haproxy in front. The demo key's usage plan (`free`: bursts of 5 on
//! `GET /prod/reports`) holds across the three (the 429 arrives after the same burst whichever
//! gateway answers), and a user created through one gateway is read through the others (the
//! plugins' kv store on Redis). Stopping the script stops everything it started.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use portico_tests::{exit_within, free_port, portico_serve_binary, sigterm};
use serde_json::Value;

const DEMO_KEY: &str = "portico-demo-key-0123456789";

/// The running script, stopped with SIGTERM (as Ctrl-C would) when dropped.
struct Fleet {
    child: Child,
    port: u16,
    output: mpsc::Receiver<String>,
}

impl Fleet {
    fn start() -> Fleet {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let port = free_port();
        let mut child = Command::new(root.join("scripts/fleet"))
            .args(["--port", &port.to_string(), "--no-build"])
            .env("PORTICO_SERVE", portico_serve_binary())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("scripts/fleet runs");
        let stdout = child.stdout.take().expect("piped");
        let (lines, output) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let fleet = Fleet {
            child,
            port,
            output,
        };
        let deadline = Instant::now() + Duration::from_secs(420);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match fleet.output.recv_timeout(left) {
                Ok(line) if line.starts_with("fleet: ready") => return fleet,
                Ok(_) => continue,
                Err(e) => panic!("scripts/fleet did not get ready: {e}"),
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// SIGTERM, then waits for the script (which stops its processes before it exits).
    fn stop(&mut self) -> std::process::ExitStatus {
        sigterm(&self.child);
        match exit_within(&mut self.child, Duration::from_secs(30)) {
            Ok(Some(status)) => status,
            _ => {
                let _ = self.child.kill();
                panic!("scripts/fleet did not stop on SIGTERM");
            }
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// A client opening a new connection per request, so haproxy's round robin is visible.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

fn gateway_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-portico-gateway")
        .and_then(|v| v.to_str().ok())
        .expect("haproxy names the gateway")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn scripts_fleet_shares_limits_and_data_across_three_gateways() {
    let mut fleet = Fleet::start();
    let client = client();

    // The usage plan's burst of 5, whichever of the three gateways answers: eight quick
    // requests give 200 five times, then 429 (a refill of one token at 10/s may add a 200).
    // Three gateways with a bucket each would have let all eight through.
    let mut statuses = Vec::new();
    let mut gateways = BTreeSet::new();
    for _ in 0..8 {
        let response = client
            .get(fleet.url("/prod/reports"))
            .header("x-api-key", DEMO_KEY)
            .send()
            .await
            .expect("the fleet answers");
        gateways.insert(gateway_of(&response));
        statuses.push(response.status().as_u16());
    }
    assert_eq!(gateways.len(), 3, "round robin over three: {gateways:?}");
    assert_eq!(statuses[..5], [200; 5], "{statuses:?}");
    let passed = statuses.iter().filter(|s| **s == 200).count();
    assert!(passed <= 6, "one bucket between the gateways: {statuses:?}");
    assert!(statuses[5..].contains(&429), "{statuses:?}");

    // A user created through one gateway is read through each of the three.
    let created = client
        .post(fleet.url("/dev/users"))
        .header("content-type", "application/json")
        .body(r#"{"email":"fleet@example.com","name":"Fleet"}"#)
        .send()
        .await
        .expect("the fleet answers");
    assert_eq!(created.status(), 201);
    let created: Value =
        serde_json::from_str(&created.text().await.expect("a body")).expect("JSON");
    let id = created["user"]["userId"]
        .as_str()
        .expect("an id")
        .to_owned();
    let mut readers = BTreeSet::new();
    for _ in 0..3 {
        let read = client
            .get(fleet.url(&format!("/dev/users/{id}")))
            .send()
            .await
            .expect("the fleet answers");
        readers.insert(gateway_of(&read));
        assert_eq!(read.status(), 200);
        let read: Value = serde_json::from_str(&read.text().await.expect("a body")).expect("JSON");
        assert_eq!(read["user"]["email"], "fleet@example.com");
    }
    assert_eq!(readers.len(), 3, "{readers:?}");

    // Stopping the script stops haproxy (and the rest): the port is free again.
    fleet.stop();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", fleet.port)).is_err(),
        "haproxy still listens"
    );
}
