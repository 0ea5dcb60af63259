//! Group `pipeline`: whole requests through `Gateway::handle`.
//! - `validated_post`: POST /users whose body is checked against the seed's CreateUser model
//!   (JSON Schema draft 4), its payload 2.0 Lambda event serialized as a plugin integration
//!   would get it (`Gateway::handle_with_lambda_event`), answered by a mock; target <= 5 us.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::Request;
use portico_benches::{definition, gateway, runtime};
use portico_tests::add_create_user_model;

/// The bench's API; its CreateUser model (portico-tests' `CREATE_USER_MODEL`) is added on load.
const API: &str = r#"
name: bench
routes:
  POST /users:
    integration: { type: mock, statusCode: 201, body: '{"ok":true}' }
    requestModel: CreateUser
stages:
  dev: {}
"#;

fn pipeline(c: &mut Criterion) {
    let mut definition = definition(API);
    add_create_user_model(&mut definition);
    let gateway = gateway(definition, &[]);
    let runtime = runtime();
    let body = Bytes::from_static(
        br#"{"email":"alice@example.com","name":"Alice Example","age":34,"role":"editor"}"#,
    );
    let request = |body: Bytes| {
        move || {
            Request::post("/dev/users")
                .header("content-type", "application/json")
                .header("user-agent", "bench")
                .body(body.clone())
                .expect("request")
        }
    };
    let valid = request(body);
    let invalid = request(Bytes::from_static(br#"{"email":"nope","name":""}"#));
    assert_eq!(runtime.block_on(gateway.handle(valid())).status(), 201);
    assert_eq!(runtime.block_on(gateway.handle(invalid())).status(), 400);

    let mut group = c.benchmark_group("pipeline");
    group.bench_function("validated_post", |b| {
        b.iter_batched(
            &valid,
            |req| runtime.block_on(gateway.handle_with_lambda_event(req)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
