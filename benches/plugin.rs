//! Group `plugin`: one whole `Gateway::handle` answered by the `echo` plugin on a fresh instance
//! (`echo`) and on a warm one (`echo_warm`), and the same request answered by a mock (`mock`),
//! in one run; plus instantiating the echo component alone (`instantiate`). Targets (issue 12):
//! `echo` minus `mock` at most 10 us, `echo_warm` minus `mock` at most 5 us. plugin_ic.rs counts
//! the same calls' instructions.
//!
//! Needs plugins/dist/echo.wasm (`plugins/build`).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use portico_benches::{PluginBench, ECHO_FRESH, ECHO_MOCK, ECHO_WARM};

/// portico-serve's allocator (README, "Which allocator"): the plugin calls' figures are those of
/// the server. On glibc's malloc `echo` takes ~0.7 us more.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn plugin(c: &mut Criterion) {
    let bench = PluginBench::new();
    let mut group = c.benchmark_group("plugin");
    for (id, path) in [
        ("echo", ECHO_FRESH),
        ("echo_warm", ECHO_WARM),
        ("mock", ECHO_MOCK),
    ] {
        group.bench_function(id, |b| {
            b.iter_batched(
                || PluginBench::request(path),
                |req| bench.handle(req),
                BatchSize::SmallInput,
            )
        });
    }
    group.bench_function("instantiate", |b| b.iter(|| assert!(bench.instantiate())));
    group.finish();
}

criterion_group!(benches, plugin);
criterion_main!(benches);
