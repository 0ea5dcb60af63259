//! Group `plugin`: one whole `Gateway::handle` answered by the `echo` plugin (`echo`) and the
//! same request answered by a mock (`mock`), in one run; plus instantiating the echo component
//! alone (`instantiate`). Target: `echo` minus `mock` at most 15 us.
//!
//! Needs plugins/dist/echo.wasm (`plugins/build`).

use std::path::PathBuf;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::Request;
use portico::{ApiDefinition, Format, Gateway};

fn plugin(c: &mut Criterion) {
    let dist = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist");
    assert!(dist.join("echo.wasm").exists(), "run plugins/build first");
    let definition = ApiDefinition::from_str_as(
        r#"
name: bench
plugins:
  echo: { path: echo.wasm }
routes:
  GET /echo/{id}: { integration: { type: plugin, plugin: echo } }
  GET /mock/{id}:
    integration: { type: mock, headers: { content-type: application/json }, body: '{"id":"42"}' }
stages:
  dev: { variables: { TABLE: dev-Users } }
"#,
        Format::Yaml,
    )
    .expect("definition");
    let gateway = Gateway::builder(definition)
        .base_dir(&dist)
        .build()
        .expect("gateway");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
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
    group.bench_function("mock", |b| {
        b.iter_batched(
            request("/dev/mock/42"),
            |req| runtime.block_on(gateway.handle(req)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("instantiate", |b| {
        b.iter(|| assert!(runtime.block_on(gateway.instantiate_plugin("echo"))))
    });
    group.finish();
}

criterion_group!(benches, plugin);
criterion_main!(benches);
