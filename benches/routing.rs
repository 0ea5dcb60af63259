//! Group `routing`: the GitHub API route set (130 route keys) looked up through Portico's router
//! (`portico`) and through a bare `matchit::Router` holding the same routes (`matchit`), in one
//! run so their ratio is meaningful (target: `portico` <= 1.3x `matchit`); plus `gateway_mock`,
//! one whole `Gateway::handle` answered by a mock integration. routing_ic.rs and pipeline_ic.rs
//! count the instructions of the same calls.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use portico_benches::{GithubRoutes, MockBench};

fn routing(c: &mut Criterion) {
    let routes = GithubRoutes::new();
    let mut group = c.benchmark_group("routing");
    group.bench_function("portico", |b| b.iter(|| routes.portico_lookups()));
    group.bench_function("matchit", |b| b.iter(|| routes.matchit_lookups()));

    let mock = MockBench::new();
    group.bench_function("gateway_mock", |b| {
        b.iter_batched(
            MockBench::request,
            |req| mock.handle(req),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, routing);
criterion_main!(benches);
