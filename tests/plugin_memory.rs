//! Host memory stays bounded while plugins run: 1000 sequential echo calls, and repeated memory
//! bombs capped at 32 MiB each. A test binary of its own so that no other test's allocations
//! blur the resident-set measurements.

use std::path::PathBuf;

use portico::Gateway;
use portico_tests::get_status;

/// Resident set size of this process, in bytes (Linux).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

const MIB: usize = 1 << 20;

#[tokio::test]
async fn plugin_calls_do_not_grow_host_memory() {
    let api = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("e2e/plugins-api.yaml");
    let gateway = Gateway::from_file(&api).expect("plugins API loads (run plugins/build first)");

    for _ in 0..100 {
        assert_eq!(get_status(&gateway, "/dev/echo").await, 200);
    }
    let before = rss();
    for _ in 0..1000 {
        assert_eq!(get_status(&gateway, "/dev/echo").await, 200);
    }
    let grown = rss().saturating_sub(before);
    println!("1000 echo calls: resident set grew by {} KiB", grown / 1024);
    assert!(
        grown < 8 * MIB,
        "1000 echo calls grew the host by {} KiB",
        grown / 1024
    );

    for _ in 0..3 {
        assert_eq!(get_status(&gateway, "/dev/hostile/memory").await, 500);
    }
    let before = rss();
    for _ in 0..20 {
        assert_eq!(get_status(&gateway, "/dev/hostile/memory").await, 500);
    }
    let grown = rss().saturating_sub(before);
    println!(
        "20 memory bombs (32 MiB cap): resident set grew by {} KiB",
        grown / 1024
    );
    // Each bomb reaches its 32 MiB cap; were their memories kept, 20 would be 640 MiB.
    assert!(
        grown < 40 * MIB,
        "20 memory bombs grew the host by {} KiB",
        grown / 1024
    );
    assert_eq!(get_status(&gateway, "/dev/echo").await, 200);
}
