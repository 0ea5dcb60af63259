//! Instruction counts (gungraun, under valgrind) of throttle.rs's calls: one token from the hot
//! in-memory bucket, one from key 4,242's bucket among 10,000, and `Gateway::handle` answered by
//! a mock with a stage throttle (compare with pipeline_ic.rs's `gateway_mock`, the same request
//! without one: scripts/bench-ic prints the ratio). Run with scripts/bench-ic.

use bytes::Bytes;
use gungraun::{library_benchmark, library_benchmark_group, main};
use http::{Request, Response};
use portico::RateProbe;
use portico_benches::{throttle_probe, MockBench};

fn probe() -> &'static RateProbe {
    Box::leak(Box::new(throttle_probe()))
}

fn throttled() -> (&'static MockBench, Request<Bytes>) {
    (
        Box::leak(Box::new(MockBench::throttled())),
        MockBench::request(),
    )
}

#[library_benchmark]
#[bench::hot(setup = probe)]
fn memory_hot(probe: &'static RateProbe) -> bool {
    probe.take()
}

#[library_benchmark]
#[bench::one_of_10k(setup = probe)]
fn memory_10k_keys(probe: &'static RateProbe) -> bool {
    probe.take_key(4_242)
}

#[library_benchmark]
#[bench::get_user(setup = throttled)]
fn gateway_mock_throttled(
    (bench, request): (&'static MockBench, Request<Bytes>),
) -> Response<Bytes> {
    bench.handle(request)
}

library_benchmark_group!(
    name = throttle,
    benchmarks = [memory_hot, memory_10k_keys, gateway_mock_throttled]
);

main!(library_benchmark_groups = throttle);
