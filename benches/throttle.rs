//! Group `throttle`: one token from the in-memory store's hot bucket (`memory_hot`, target <=
//! 100 ns), one from a different key's bucket each time among 10,000 (`memory_10k_keys`), and a
//! whole `Gateway::handle` answered by a mock without (`gateway_mock`) and with
//! (`gateway_mock_throttled`) a stage throttle, in one run so their ratio means something
//! (target: within 10%); and the same request with its bucket in a local Redis
//! (`gateway_mock_redis`, a redis-server the bench starts: the round trip to Redis on top of
//! `gateway_mock_throttled`). throttle_ic.rs counts the instructions of the in-memory calls.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use portico_benches::{throttle_probe, MockBench};
use portico_tests::RedisServer;

fn throttle(c: &mut Criterion) {
    let probe = throttle_probe();
    let mut group = c.benchmark_group("throttle");
    group.bench_function("memory_hot", |b| b.iter(|| black_box(probe.take())));
    let mut next = 0usize;
    group.bench_function("memory_10k_keys", |b| {
        b.iter(|| {
            next = next.wrapping_add(7919);
            black_box(probe.take_key(next))
        })
    });
    let mock = MockBench::new();
    let throttled = MockBench::throttled();
    group.bench_function("gateway_mock", |b| {
        b.iter_batched(
            MockBench::request,
            |r| mock.handle(r),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("gateway_mock_throttled", |b| {
        b.iter_batched(
            MockBench::request,
            |r| throttled.handle(r),
            BatchSize::SmallInput,
        )
    });
    let redis = RedisServer::start();
    let in_redis = MockBench::throttled_in_redis(&redis.url());
    group.bench_function("gateway_mock_redis", |b| {
        b.iter_batched(
            MockBench::request,
            |r| in_redis.handle(r),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, throttle);
criterion_main!(benches);
