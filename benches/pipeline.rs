//! Group `pipeline`: whole requests through `Gateway::handle`.
//! - `validated_post`: POST /users whose body is checked against the seed's CreateUser model
//!   (JSON Schema draft 4), its payload 2.0 Lambda event serialized as a plugin integration
//!   would get it (`Gateway::handle_with_lambda_event`), answered by a mock; target <= 5 us.
//!
//! pipeline_ic.rs counts the instructions of the same call.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use portico_benches::ValidatedPostBench;

fn pipeline(c: &mut Criterion) {
    let bench = ValidatedPostBench::new();
    let mut group = c.benchmark_group("pipeline");
    group.bench_function("validated_post", |b| {
        b.iter_batched(
            ValidatedPostBench::valid,
            |req| {
                bench
                    .runtime()
                    .block_on(bench.handle_with_lambda_event(req))
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
