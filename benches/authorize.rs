//! Group `authorize`: the request path up to and including the authorize phase (stage, route,
//! authorizer; `Gateway::authorize_only`), for
//! - `jwt_cached`: a JWT seen before (a cache lookup plus the route's scope check); target
//!   <= 1 us;
//! - `jwt_rs256_uncached` / `jwt_es256_uncached`: a JWT verified from scratch (caches cleared
//!   before each timed call, outside the timing);
//! - `custom_cached`: a custom authorizer's cached decision, its IAM policy evaluated against the
//!   request's method ARN.
//!
//! Needs plugins/dist/policy_authorizer.wasm (`plugins/build`).

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::{Request, Response};
use portico_benches::{definition, gateway, run, runtime};
use portico_tests::{unix_now, JwtKeys};
use serde_json::json;

fn authorize(c: &mut Criterion) {
    let keys = JwtKeys::generate();
    let definition = definition(&format!(
        r#"
name: bench
plugins:
  policy: {{ path: policy_authorizer.wasm }}
authorizers:
  jwt:
    type: jwt
    issuer: https://issuer.example
    audience: [bench-client]
    jwks: {{ keys: {} }}
  custom:
    type: request
    plugin: policy
    identitySource: [$request.header.Authorization]
routes:
  GET /users/{{id}}:
    integration: {{ type: mock }}
    authorizer: jwt
    authorizationScopes: [users.read]
  GET /reports/{{id}}: {{ integration: {{ type: mock }}, authorizer: custom }}
stages:
  dev: {{}}
"#,
        keys.jwks()["keys"]
    ));
    let gateway = gateway(definition, &["policy_authorizer"]);
    let runtime = runtime();

    // Claims of the size Cognito issues: the cache key is the whole token.
    let claims = json!({
        "iss": "https://issuer.example", "aud": "bench-client", "sub": "8f2c6d1e-user",
        "client_id": "bench-client", "token_use": "access", "auth_time": unix_now(),
        "iat": unix_now(), "exp": unix_now() + 3600, "jti": "0b5a1a43-7d1e-4a5e-9b1f-5a3c",
        "scope": "openid profile users.read users.write", "username": "alice",
    });
    let rs256 = format!("Bearer {}", keys.rs256(&claims));
    let es256 = format!("Bearer {}", keys.es256(&claims));
    let request = |path: &'static str, authorization: String| {
        move || {
            Request::get(path)
                .header("authorization", authorization.as_str())
                .header("user-agent", "bench")
                .body(Bytes::new())
                .expect("request")
        }
    };
    let jwt_rs256 = request("/dev/users/42", rs256);
    let jwt_es256 = request("/dev/users/42", es256);
    let custom = request("/dev/reports/7", "allow-only=GET/reports/*".to_owned());
    let status = |response: Response<Bytes>| response.status().as_u16();
    for make in [&jwt_rs256, &jwt_es256, &custom] {
        assert_eq!(status(run(&runtime, gateway.authorize_only(make()))), 200);
    }
    // A policy that allows only GET /reports/*: the cached decision is re-evaluated.
    let refused = request("/dev/reports/7", "allow-only=GET/other/*".to_owned());
    assert_eq!(
        status(run(&runtime, gateway.authorize_only(refused()))),
        403
    );

    let mut group = c.benchmark_group("authorize");
    group.bench_function("jwt_cached", |b| {
        b.iter_batched(
            &jwt_rs256,
            |req| run(&runtime, gateway.authorize_only(req)),
            BatchSize::SmallInput,
        )
    });
    let uncached = |make: &dyn Fn() -> Request<Bytes>, iterations: u64| {
        let mut total = Duration::ZERO;
        for _ in 0..iterations {
            gateway.clear_authorizer_caches();
            let req = make();
            let start = Instant::now();
            let response = run(&runtime, gateway.authorize_only(req));
            total += start.elapsed();
            assert_eq!(response.status(), 200);
        }
        total
    };
    group.bench_function("jwt_rs256_uncached", |b| {
        b.iter_custom(|iterations| uncached(&jwt_rs256, iterations))
    });
    group.bench_function("jwt_es256_uncached", |b| {
        b.iter_custom(|iterations| uncached(&jwt_es256, iterations))
    });
    group.bench_function("custom_cached", |b| {
        b.iter_batched(
            &custom,
            |req| run(&runtime, gateway.authorize_only(req)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, authorize);
criterion_main!(benches);
