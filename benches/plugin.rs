//! Group `plugin`: one whole `Gateway::handle` answered by the `echo` plugin on a fresh instance
//! (`echo`) and on a warm one (`echo_warm`), and the same request answered by a mock (`mock`),
//! in one run; plus instantiating the echo component alone (`instantiate`). Targets (issue 12):
//! `echo` minus `mock` at most 10 us, `echo_warm` minus `mock` at most 5 us.
//!
//! Needs plugins/dist/echo.wasm (`plugins/build`).

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::Request;
use portico_benches::{definition, gateway, instantiate_plugin, runtime};

/// portico-serve's allocator (README, "Which allocator"): the plugin calls' figures are those of
/// the server. On glibc's malloc `echo` takes ~0.7 us more.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn plugin(c: &mut Criterion) {
    let definition = definition(
        r#"
name: bench
plugins:
  echo: { path: echo.wasm, instances: fresh }
  echo-warm: { path: echo.wasm, instances: warm }
routes:
  GET /echo/{id}: { integration: { type: plugin, plugin: echo } }
  GET /warm/{id}: { integration: { type: plugin, plugin: echo-warm } }
  GET /mock/{id}:
    integration: { type: mock, headers: { content-type: application/json }, body: '{"id":"42"}' }
stages:
  dev: { variables: { TABLE: dev-Users } }
"#,
    );
    let gateway = gateway(definition, &["echo"]);
    let runtime = runtime();
    let request = |path: &'static str| {
        move || {
            Request::get(path)
                .header("user-agent", "bench")
                .header("accept", "application/json")
                .body(Bytes::new())
                .expect("request")
        }
    };
    assert_eq!(
        runtime
            .block_on(gateway.handle(request("/dev/echo/42")()))
            .status(),
        200
    );
    assert_eq!(
        runtime
            .block_on(gateway.handle(request("/dev/warm/42")()))
            .status(),
        200
    );
    assert_eq!(
        runtime
            .block_on(gateway.handle(request("/dev/mock/42")()))
            .status(),
        200
    );

    let mut group = c.benchmark_group("plugin");
    group.bench_function("echo", |b| {
        b.iter_batched(
            request("/dev/echo/42"),
            |req| runtime.block_on(gateway.handle(req)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("echo_warm", |b| {
        b.iter_batched(
            request("/dev/warm/42"),
            |req| runtime.block_on(gateway.handle(req)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("mock", |b| {
        b.iter_batched(
            request("/dev/mock/42"),
            |req| runtime.block_on(gateway.handle(req)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("instantiate", |b| {
        b.iter(|| assert!(runtime.block_on(instantiate_plugin(&gateway, "echo"))))
    });
    group.finish();
}

criterion_group!(benches, plugin);
criterion_main!(benches);
