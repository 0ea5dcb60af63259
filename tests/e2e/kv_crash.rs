//! A `put` that returned survives a crash: a child process (this test binary, re-run) writes
//! through the embedded store and aborts without any shutdown; the parent then reopens it.

use std::process::Command;

use portico::{KvStore, RedbKv};

const CHILD_DIR: &str = "PORTICO_KV_CRASH_DIR";

#[test]
fn kv_crash_child() {
    // Only does something when run as the child of `a_put_survives_a_crash`.
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let store = RedbKv::open(std::path::Path::new(&dir).join("kv.redb")).expect("open");
    for i in 0..50 {
        store
            .put(
                "users",
                &format!("user#{i:02}"),
                format!("value {i}").as_bytes(),
            )
            .expect("put");
    }
    std::process::abort();
}

#[test]
fn a_put_survives_a_crash() {
    let dir = tempfile::tempdir().expect("temp dir");
    let status = Command::new(std::env::current_exe().expect("test binary"))
        .args(["kv_crash::kv_crash_child", "--exact", "--test-threads=1"])
        .env(CHILD_DIR, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("child runs");
    assert!(!status.success(), "the child must have aborted");
    let store = RedbKv::open(dir.path().join("kv.redb")).expect("reopen after the crash");
    let entries = store
        .list_prefix("users", "user#", None, 100)
        .expect("list");
    assert_eq!(entries.len(), 50);
    assert_eq!(
        store.get("users", "user#49").expect("get").as_deref(),
        Some(&b"value 49"[..])
    );
}
