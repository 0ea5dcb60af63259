//! Group `authorize`: the request path up to and including the authorize phase (stage, route,
//! authorizer; `Gateway::authorize_only`), for
//! - `jwt_cached`: a JWT seen before (a cache lookup plus the route's scope check); target
//!   <= 1 us (pipeline_ic.rs counts its instructions);
//! - `jwt_rs256_uncached` / `jwt_es256_uncached`: a JWT verified from scratch (caches cleared
//!   before each timed call, outside the timing);
//! - `custom_cached`: a custom authorizer's cached decision, its IAM policy evaluated against the
//!   request's method ARN.
//!
//! Needs plugins/dist/policy_authorizer.wasm (`plugins/build`).

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::Request;
use portico_benches::AuthorizeBench;

fn authorize(c: &mut Criterion) {
    let bench = AuthorizeBench::new();
    let mut group = c.benchmark_group("authorize");
    group.bench_function("jwt_cached", |b| {
        b.iter_batched(
            || bench.jwt_rs256(),
            |req| bench.authorize(req),
            BatchSize::SmallInput,
        )
    });
    let uncached = |make: &dyn Fn() -> Request<Bytes>, iterations: u64| {
        let mut total = Duration::ZERO;
        for _ in 0..iterations {
            bench.clear_caches();
            let req = make();
            let start = Instant::now();
            let response = bench.authorize(req);
            total += start.elapsed();
            assert_eq!(response.status(), 200);
        }
        total
    };
    group.bench_function("jwt_rs256_uncached", |b| {
        b.iter_custom(|iterations| uncached(&|| bench.jwt_rs256(), iterations))
    });
    group.bench_function("jwt_es256_uncached", |b| {
        b.iter_custom(|iterations| uncached(&|| bench.jwt_es256(), iterations))
    });
    group.bench_function("custom_cached", |b| {
        b.iter_batched(
            || bench.custom(),
            |req| bench.authorize(req),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, authorize);
criterion_main!(benches);
