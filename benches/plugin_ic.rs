//! Instruction counts (gungraun, under valgrind) of plugin.rs's calls: a whole `Gateway::handle`
//! answered by the `echo` plugin on a fresh instance (`echo`: instantiation, the call and the
//! instance's teardown), on a warm one (`echo_warm`), and by a mock (`mock`), so that issue 12's
//! in-process targets (`echo` - `mock` <= 10 us, `echo_warm` - `mock` <= 5 us, wall times that
//! move with the machine's speed) have a count beside them that does not: scripts/bench-ic
//! prints each plugin call's count less the mock's.
//!
//! The set-up ([`PluginBench::new`]) has already served each path once; only the measured call
//! is counted, the response dropped after it. Needs plugins/dist/echo.wasm (`plugins/build`).
//! Run with scripts/bench-ic.

use bytes::Bytes;
use gungraun::{library_benchmark, library_benchmark_group, main};
use http::{Request, Response};
use portico_benches::{PluginBench, ECHO_FRESH, ECHO_MOCK, ECHO_WARM};

/// portico-serve's allocator, as in plugin.rs.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The bench (leaked, so that dropping the gateway is not counted) and a request for `path`.
fn setup(path: &'static str) -> (&'static PluginBench, Request<Bytes>) {
    (
        Box::leak(Box::new(PluginBench::new())),
        PluginBench::request(path),
    )
}

#[library_benchmark]
#[bench::fresh(args = (ECHO_FRESH), setup = setup)]
fn echo((bench, request): (&'static PluginBench, Request<Bytes>)) -> Response<Bytes> {
    bench.handle(request)
}

#[library_benchmark]
#[bench::warm(args = (ECHO_WARM), setup = setup)]
fn echo_warm((bench, request): (&'static PluginBench, Request<Bytes>)) -> Response<Bytes> {
    bench.handle(request)
}

#[library_benchmark]
#[bench::get(args = (ECHO_MOCK), setup = setup)]
fn mock((bench, request): (&'static PluginBench, Request<Bytes>)) -> Response<Bytes> {
    bench.handle(request)
}

library_benchmark_group!(name = plugin, benchmarks = [echo, echo_warm, mock]);

main!(library_benchmark_groups = plugin);
