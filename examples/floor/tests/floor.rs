//! The floor binary over real TCP: it answers the load test's fixed JSON, the same bytes as the
//! mock route of examples/loadtest/api.yaml, and refuses arguments it does not know.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// The floor on a free loopback port, killed when dropped.
struct Floor {
    child: Child,
    addr: String,
}

impl Floor {
    fn start() -> Floor {
        let mut child = Command::new(env!("CARGO_BIN_EXE_portico-floor"))
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("portico-floor starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut banner = String::new();
        BufReader::new(stdout)
            .read_line(&mut banner)
            .expect("a banner line");
        let addr = banner
            .trim()
            .strip_prefix("portico-floor: on http://")
            .unwrap_or_else(|| panic!("unexpected banner {banner:?}"))
            .to_owned();
        Floor { child, addr }
    }

    /// One HTTP/1.1 request, the whole answer as text.
    fn get(&self, path: &str) -> String {
        let mut stream = TcpStream::connect(&self.addr).expect("connects");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: floor\r\nConnection: close\r\n\r\n"
        )
        .expect("writes");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("reads");
        answer
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The mock route's body in examples/loadtest/api.yaml (the load test's ratios compare the two).
fn mock_body() -> String {
    let api = include_str!("../../loadtest/api.yaml");
    let line = api
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("body: '"))
        .expect("api.yaml's mock integration has a body line");
    line.trim_start_matches("body: '")
        .trim_end_matches('\'')
        .to_owned()
}

#[test]
fn answers_the_mock_routes_json_to_any_request() {
    let floor = Floor::start();
    for path in ["/", "/mock", "/anything/else?x=1"] {
        let answer = floor.get(path);
        assert!(
            answer.starts_with("HTTP/1.1 200 OK\r\n"),
            "{path}: {answer}"
        );
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("\r\ncontent-type: application/json\r\n"),
            "{answer}"
        );
        let body = answer.split("\r\n\r\n").nth(1).expect("a body");
        assert_eq!(body, mock_body(), "{path}");
    }
}

#[test]
fn refuses_unknown_arguments_with_its_usage() {
    for args in [&["--port", "1"][..], &["--listen"][..]] {
        let output = Command::new(env!("CARGO_BIN_EXE_portico-floor"))
            .args(args)
            .output()
            .expect("runs");
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("usage: portico-floor"), "{stderr}");
    }
}

#[test]
fn names_an_address_it_cannot_listen_on() {
    let output = Command::new(env!("CARGO_BIN_EXE_portico-floor"))
        .args(["--listen", "not-an-address"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot listen on not-an-address"),
        "{stderr}"
    );
}
