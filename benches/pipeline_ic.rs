//! Instruction counts (gungraun, under valgrind) of whole requests, the same calls as the
//! criterion benches:
//! - `gateway_mock`: routing.rs's `routing/gateway_mock`, a `Gateway::handle` answered by a mock;
//! - `jwt_cached`: authorize.rs's `authorize/jwt_cached`, the path up to the authorize phase with
//!   a JWT already in the cache (on `AuthorizeBench::jwt_only`: the same route table, without
//!   the plugin valgrind cannot host);
//! - `validated_post`: pipeline.rs's `pipeline/validated_post`, a POST validated against the
//!   CreateUser model with its payload 2.0 Lambda event built.
//!
//! Only the measured call is counted: the set-up builds the gateway (and, for `jwt_cached`,
//! warms the cache) and the request, and the response is dropped after the count. The gateway's
//! future is polled once in place (`run`), as in the criterion benches. Run with scripts/bench-ic.

use bytes::Bytes;
use gungraun::{library_benchmark, library_benchmark_group, main};
use http::{Request, Response};
use portico_benches::{run, AuthorizeBench, MockBench, ValidatedPostBench};

/// `bench`, leaked so that dropping the gateway is not counted.
fn leak<T>(bench: T) -> &'static T {
    Box::leak(Box::new(bench))
}

fn mock() -> (&'static MockBench, Request<Bytes>) {
    (leak(MockBench::new()), MockBench::request())
}

fn jwt() -> (&'static AuthorizeBench, Request<Bytes>) {
    let bench = leak(AuthorizeBench::jwt_only());
    (bench, bench.jwt_rs256())
}

fn create_user() -> (&'static ValidatedPostBench, Request<Bytes>) {
    let bench = leak(ValidatedPostBench::new());
    // The set-up checked `handle`; what the Lambda event initialises on first use is not counted.
    let warm = run(
        bench.runtime(),
        bench.handle_with_lambda_event(ValidatedPostBench::valid()),
    );
    assert_eq!(warm.status(), 201);
    (bench, ValidatedPostBench::valid())
}

#[library_benchmark]
#[bench::get_user(setup = mock)]
fn gateway_mock((bench, request): (&'static MockBench, Request<Bytes>)) -> Response<Bytes> {
    bench.handle(request)
}

#[library_benchmark]
#[bench::rs256(setup = jwt)]
fn jwt_cached((bench, request): (&'static AuthorizeBench, Request<Bytes>)) -> Response<Bytes> {
    bench.authorize(request)
}

#[library_benchmark]
#[bench::create_user(setup = create_user)]
fn validated_post(
    (bench, request): (&'static ValidatedPostBench, Request<Bytes>),
) -> Response<Bytes> {
    run(bench.runtime(), bench.handle_with_lambda_event(request))
}

library_benchmark_group!(
    name = pipeline,
    benchmarks = [gateway_mock, jwt_cached, validated_post]
);

main!(library_benchmark_groups = pipeline);
