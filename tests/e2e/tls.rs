//! HTTPS through `portico-serve --tls-cert FILE --tls-key FILE`: a self-signed certificate for
//! `localhost` made at test time, HTTP/2 and HTTP/1.1 by ALPN, the admin port still plain
//! HTTP, clients that fail their handshake (plain HTTP, an untrusted certificate, none at all)
//! leaving the server serving, and unusable certificate or key files refused at start with the
//! file named.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use portico_serve::Server;
use portico_tests::{exit_within, portico_serve_binary, RunningServer, ServeProcess};
use tokio::io::AsyncReadExt;

const BODY: &str = r#"{"hello":"over tls"}"#;

/// A self-signed certificate for `localhost` and its key, as PEM files in `dir`.
struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
    cert_pem: String,
}

impl CertFiles {
    fn generate(dir: &Path, name: &str) -> CertFiles {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a self-signed certificate");
        let cert_pem = made.cert.pem();
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, &cert_pem).expect("write the certificate");
        std::fs::write(&key, made.signing_key.serialize_pem()).expect("write the key");
        CertFiles {
            cert,
            key,
            cert_pem,
        }
    }
}

/// An API of one mock route, `GET /prod/hello`.
fn api(dir: &Path) -> PathBuf {
    let file = dir.join("api.yaml");
    let yaml = format!(
        "name: tls-e2e\nroutes:\n  GET /hello: {{ integration: {{ type: mock, body: '{BODY}' }} }}\nstages:\n  prod: {{}}\n"
    );
    std::fs::write(&file, yaml).expect("write the API");
    file
}

/// The socket address of `https://127.0.0.1:PORT`.
fn address(base: &str) -> SocketAddr {
    base.trim_start_matches("https://")
        .parse()
        .unwrap_or_else(|e| panic!("{base} is not https://ADDR: {e}"))
}

/// A client trusting only `cert_pem`, sending `localhost` to `addr` (the name the certificate
/// is for, so that the client checks it).
fn https_client(cert_pem: &str, addr: SocketAddr, http1_only: bool) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("a PEM certificate");
    let builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(root)
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(10));
    let builder = if http1_only {
        builder.http1_only()
    } else {
        builder
    };
    builder.build().expect("an HTTPS client")
}

/// `GET https://localhost:PORT/prod/hello`: its status, HTTP version and body.
async fn hello(client: &reqwest::Client, addr: SocketAddr) -> (u16, http::Version, String) {
    let url = format!("https://localhost:{}/prod/hello", addr.port());
    let response = client.get(url).send().await.expect("an HTTPS answer");
    let (status, version) = (response.status().as_u16(), response.version());
    (status, version, response.text().await.expect("a body"))
}

#[tokio::test]
async fn serves_https_with_http2_or_http11_by_alpn_and_survives_bad_handshakes() {
    let dir = tempfile::tempdir().unwrap();
    let files = CertFiles::generate(dir.path(), "localhost");
    let api = api(dir.path());
    let (cert, key) = (files.cert.to_str().unwrap(), files.key.to_str().unwrap());
    let process = ServeProcess::start(
        &api,
        &[
            "--tls-cert",
            cert,
            "--tls-key",
            key,
            "--admin-listen",
            "127.0.0.1:0",
        ],
    );
    assert!(
        process.base().starts_with("https://"),
        "the banner should name an https URL: {}",
        process.base()
    );
    let addr = address(process.base());

    // ALPN: h2 when the client offers it (reqwest offers h2 and http/1.1), else HTTP/1.1.
    let h2 = https_client(&files.cert_pem, addr, false);
    assert_eq!(
        hello(&h2, addr).await,
        (200, http::Version::HTTP_2, BODY.to_owned())
    );
    let h1 = https_client(&files.cert_pem, addr, true);
    assert_eq!(
        hello(&h1, addr).await,
        (200, http::Version::HTTP_11, BODY.to_owned())
    );

    // Plain HTTP to the TLS port is no TLS handshake: the client gets no HTTP answer.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let refused = plain.get(format!("http://{addr}/prod/hello")).send().await;
    assert!(
        refused.is_err(),
        "plain HTTP to the TLS port answered: {refused:?}"
    );
    // A client that does not trust the certificate aborts its handshake.
    let other = CertFiles::generate(dir.path(), "other");
    let untrusting = https_client(&other.cert_pem, addr, false);
    let url = format!("https://localhost:{}/prod/hello", addr.port());
    let untrusted = untrusting.get(&url).send().await;
    assert!(
        untrusted.is_err(),
        "a client trusting another certificate got an answer: {untrusted:?}"
    );

    // The server goes on answering, on new connections too.
    let fresh = https_client(&files.cert_pem, addr, false);
    assert_eq!(
        hello(&fresh, addr).await,
        (200, http::Version::HTTP_2, BODY.to_owned())
    );
    assert_eq!(
        hello(&h1, addr).await,
        (200, http::Version::HTTP_11, BODY.to_owned())
    );

    // The admin port stays plain HTTP.
    let admin = process.admin().expect("an admin port");
    assert!(admin.starts_with("http://"), "{admin}");
    let metrics = plain
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .expect("the admin port answers plain HTTP");
    assert_eq!(metrics.status(), 200);
    let log = process.log();
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test]
async fn a_stalled_handshake_delays_neither_other_clients_nor_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let files = CertFiles::generate(dir.path(), "localhost");
    let server = Server::start(&api(dir.path()), "127.0.0.1:0", None)
        .await
        .expect("server starts")
        .with_tls(&files.cert, &files.key)
        .expect("the certificate and key load");
    let server = RunningServer::run(server);
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let addr = address(&server.base);

    // A client that connects and never says a word.
    let mut stalled = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let client = https_client(&files.cert_pem, addr, false);
    assert_eq!(
        hello(&client, addr).await,
        (200, http::Version::HTTP_2, BODY.to_owned())
    );

    // The shutdown drops the silent client rather than wait out its handshake timeout (10 s).
    let started = Instant::now();
    server.shutdown().await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "the shutdown waited {took:?} for a stalled handshake"
    );
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), stalled.read(&mut buf))
        .await
        .expect("the stalled connection is closed");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the stalled connection got {read:?}"
    );
}

/// Runs `portico-serve ARGS`, expected to refuse to start: its exit code and stderr, or why
/// not (it kept running, or it could not be run).
fn refused_start(args: &[&str]) -> Result<(Option<i32>, String), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let stderr = dir.path().join("stderr.log");
    let mut child = Command::new(portico_serve_binary())
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("cannot run portico-serve: {e}"))?;
    let status = match exit_within(&mut child, Duration::from_secs(30)) {
        Ok(Some(status)) => status,
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err("still running after 30 s: it started".to_owned());
        }
        Err(e) => return Err(format!("cannot wait for portico-serve: {e}")),
    };
    let text = std::fs::read_to_string(&stderr).map_err(|e| e.to_string())?;
    Ok((status.code(), text))
}

/// A start that must fail: the TLS flags given, the exit code, what stderr must say.
struct Refusal {
    what: &'static str,
    cert: Option<String>,
    key: Option<String>,
    exit: i32,
    says: Vec<String>,
}

#[test]
fn unusable_tls_files_are_startup_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let files = CertFiles::generate(dir.path(), "localhost");
    let other = CertFiles::generate(dir.path(), "other");
    let api = api(dir.path());
    let garbage = dir.path().join("garbage.key");
    std::fs::write(&garbage, "this is not a key\n").unwrap();
    let truncated = dir.path().join("truncated.key");
    let key_pem = std::fs::read_to_string(&files.key).unwrap();
    std::fs::write(&truncated, &key_pem[..key_pem.len() / 2]).unwrap();
    let missing = dir.path().join("missing.key");
    let text = |path: &Path| path.to_str().unwrap().to_owned();
    let (api, cert, key) = (text(&api), text(&files.cert), text(&files.key));

    let case = |what, cert: Option<&str>, key: Option<&str>, exit, says: &[&str]| Refusal {
        what,
        cert: cert.map(str::to_owned),
        key: key.map(str::to_owned),
        exit,
        says: says.iter().map(|text| (*text).to_owned()).collect(),
    };
    let (garbage, truncated, missing) = (text(&garbage), text(&truncated), text(&missing));
    let other_key = text(&other.key);
    let cases = [
        case(
            "a key file with no key in it",
            Some(&cert),
            Some(&garbage),
            1,
            &[&garbage, "no private key"],
        ),
        case(
            "a key file cut short",
            Some(&cert),
            Some(&truncated),
            1,
            &[&truncated, "not valid PEM"],
        ),
        case(
            "a missing key file",
            Some(&cert),
            Some(&missing),
            1,
            &[&missing, "cannot read it"],
        ),
        case(
            "the key of another certificate",
            Some(&cert),
            Some(&other_key),
            1,
            &[&other_key, "does not match", &cert],
        ),
        case(
            "a certificate file with no certificate in it",
            Some(&key),
            Some(&key),
            1,
            &[&key, "no certificate"],
        ),
        case(
            "--tls-cert without --tls-key",
            Some(&cert),
            None,
            2,
            &["--tls-key"],
        ),
        case(
            "--tls-key without --tls-cert",
            None,
            Some(&key),
            2,
            &["--tls-cert"],
        ),
    ];
    let mut failures = Vec::new();
    for case in &cases {
        let what = case.what;
        let mut args = vec!["--api", api.as_str()];
        if let Some(cert) = &case.cert {
            args.extend(["--tls-cert", cert.as_str()]);
        }
        if let Some(key) = &case.key {
            args.extend(["--tls-key", key.as_str()]);
        }
        match refused_start(&args) {
            Err(e) => failures.push(format!("{what}: {e}")),
            Ok((exit, stderr)) => {
                if exit != Some(case.exit) {
                    failures.push(format!(
                        "{what}: exit {exit:?}, not {}: {stderr}",
                        case.exit
                    ));
                }
                if stderr.contains("panicked") {
                    failures.push(format!("{what}: a panic: {stderr}"));
                }
                for needle in &case.says {
                    if !stderr.contains(needle.as_str()) {
                        failures.push(format!("{what}: stderr does not say {needle:?}: {stderr}"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
