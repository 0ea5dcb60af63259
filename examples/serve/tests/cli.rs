//! The `portico-serve` binary itself (also what makes `cargo test --workspace` build it for
//! the fleet tests in tests/e2e, which run two of them on one Redis).

use std::path::PathBuf;
use std::process::Command;

fn users_api() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../users-api/api.yaml")
}

#[test]
fn redis_is_an_option_and_a_bad_url_is_a_start_error_naming_the_key() {
    let help = Command::new(env!("CARGO_BIN_EXE_portico-serve"))
        .arg("--help")
        .output()
        .expect("portico-serve runs");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--redis <URL>"), "{help}");

    let output = Command::new(env!("CARGO_BIN_EXE_portico-serve"))
        .arg("--api")
        .arg(users_api())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--redis",
            "http://127.0.0.1:6379",
        ])
        .output()
        .expect("portico-serve runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("rateStore.url"), "{stderr}");
}
