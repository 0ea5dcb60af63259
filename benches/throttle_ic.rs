//! Instruction counts (gungraun, under valgrind) of throttle.rs's calls: one token from the hot
//! in-memory bucket, one from key 4,242's bucket among 10,000, and `Gateway::handle` answered by
//! a mock with a stage throttle (compare with pipeline_ic.rs's `gateway_mock`, the same request
//! without one: scripts/bench-ic prints the ratio), and the same with the bucket in a local
//! redis-server (this process's instructions only). Run with scripts/bench-ic.

use bytes::Bytes;
use gungraun::{library_benchmark, library_benchmark_group, main};
use http::{Request, Response};
use portico::RateProbe;
use portico_benches::{throttle_probe, MockBench};
use portico_tests::RedisServer;

fn probe() -> &'static RateProbe {
    Box::leak(Box::new(throttle_probe()))
}

fn throttled_in_redis() -> (&'static MockBench, Request<Bytes>) {
    // The server lives as long as the bench process: leaked, never dropped (nor killed) early.
    let redis: &'static RedisServer = Box::leak(Box::new(RedisServer::start()));
    let bench = Box::leak(Box::new(MockBench::throttled_in_redis(&redis.url())));
    (bench, MockBench::request())
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

// This process's side of a request whose bucket is in Redis: building the script call, the
// socket calls, reading the reply, the runtime's wake-ups. Redis's own work and the time on the
// wire are not counted (see throttle.rs's `gateway_mock_redis` for the wall time).
#[library_benchmark]
#[bench::get_user(setup = throttled_in_redis)]
fn gateway_mock_redis((bench, request): (&'static MockBench, Request<Bytes>)) -> Response<Bytes> {
    bench.handle(request)
}

library_benchmark_group!(
    name = throttle,
    benchmarks = [
        memory_hot,
        memory_10k_keys,
        gateway_mock_throttled,
        gateway_mock_redis
    ]
);

main!(library_benchmark_groups = throttle);
