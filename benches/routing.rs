//! Group `routing`: the GitHub API route set (130 route keys) looked up through Portico's router
//! (`portico`) and through a bare `matchit::Router` holding the same routes (`matchit`), in one
//! run so their ratio is meaningful (target: `portico` <= 1.3x `matchit`); plus `gateway_mock`,
//! one whole `Gateway::handle` answered by a mock integration.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::{Method, Request};
use portico::Router;
use portico_benches::{definition, gateway, run, runtime};

const ROUTES: &str = include_str!("data/github-api-routes.txt");
const LOOKUPS: &str = include_str!("data/github-api-lookups.txt");

fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
}

/// (method, path, expected route key) of every lookup.
fn lookups() -> Vec<(Method, &'static str, &'static str)> {
    lines(LOOKUPS)
        .map(|line| {
            let mut fields = line.split('\t');
            let request = fields.next().expect("request field");
            let expected = fields.next().expect("expected route key field");
            let (method, path) = request.split_once(' ').expect("METHOD /path");
            (
                Method::from_bytes(method.as_bytes()).expect("method"),
                path,
                expected,
            )
        })
        .collect()
}

fn routing(c: &mut Criterion) {
    let lookups = lookups();
    let mut portico = Router::new();
    let mut bare = matchit::Router::new();
    for (i, key) in lines(ROUTES).enumerate() {
        portico.insert(key, i).expect("route key");
        let (_, path) = key.split_once(' ').expect("METHOD /path");
        bare.insert(path, i).expect("matchit route");
    }
    // Both routers must agree with the expected route keys before anything is timed.
    for (method, path, expected) in &lookups {
        let found = portico.at(method, path).expect("portico match");
        assert_eq!(found.route_key(), *expected, "{method} {path}");
        let key_index = *bare.at(path).expect("matchit match").value;
        assert_eq!(lines(ROUTES).nth(key_index), Some(*expected));
    }

    let mut group = c.benchmark_group("routing");
    group.bench_function("portico", |b| {
        b.iter(|| {
            for (method, path, _) in &lookups {
                let found = portico.at(black_box(method), black_box(path));
                black_box(found.map(|m| *m.value));
            }
        })
    });
    group.bench_function("matchit", |b| {
        b.iter(|| {
            for (_, path, _) in &lookups {
                let found = bare.at(black_box(path));
                black_box(found.map(|m| *m.value).ok());
            }
        })
    });

    let definition = definition(
        r#"
name: bench
routes:
  GET /users/{userId}:
    integration: { type: mock, headers: { content-type: application/json }, body: '{"table":"${stageVariables.TABLE}"}' }
stages:
  dev: { variables: { TABLE: dev-Users } }
"#,
    );
    let gateway = gateway(definition, &[]);
    let runtime = runtime();
    let request = || {
        Request::get("/dev/users/42")
            .body(Bytes::new())
            .expect("request")
    };
    assert_eq!(run(&runtime, gateway.handle(request())).status(), 200);
    group.bench_function("gateway_mock", |b| {
        b.iter_batched(
            request,
            |req| run(&runtime, gateway.handle(req)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, routing);
criterion_main!(benches);
