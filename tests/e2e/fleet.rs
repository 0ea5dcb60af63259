//! A fleet: two `portico-serve` processes on one real `redis-server`, over real HTTP. They
//! enforce one bucket and one quota between them, share the plugins' kv store and the custom
//! authorizer's result cache; when Redis goes away they fail open (logging AWS's message) or
//! answer 503 as configured, never waiting past `timeoutMs`, and they find Redis again when it
//! comes back, without a restart.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use portico_tests::{hammer, plugins_dist, RedisServer, ServeProcess};
use serde_json::{json, Value};

const KEY: &str = "k-fleet-0123456789abcdef";

/// The fleet's API file in `dir`: a throttled stage (`rate`/`burst`), a usage plan with a
/// quota of 10 a day, the users plugin, a cached custom authorizer in front of the echo
/// plugin, all shared through Redis; `rate_store` is the file's `rateStore` line (or nothing,
/// for `--redis`).
fn fleet_api(dir: &Path, rate: f64, burst: u32, rate_store: &str) -> PathBuf {
    let dist = plugins_dist(&["users", "echo", "policy_authorizer"]);
    let dist = dist.display();
    let text = format!(
        r#"
name: fleet-api
apiId: fleetapi01
plugins:
  users: {{ path: "{dist}/users.wasm" }}
  echo: {{ path: "{dist}/echo.wasm" }}
  policy: {{ path: "{dist}/policy_authorizer.wasm" }}
authorizers:
  cached:
    type: request
    plugin: policy
    identitySource: [$request.header.Authorization]
    resultTtlSeconds: 300
routes:
  GET /ping: {{ integration: {{ type: mock, statusCode: 200, body: pong }} }}
  GET /keyed: {{ integration: {{ type: mock, statusCode: 200, body: keyed }}, apiKeyRequired: true }}
  POST /users: {{ integration: {{ type: plugin, plugin: users }} }}
  GET /users/{{userId}}: {{ integration: {{ type: plugin, plugin: users }} }}
  GET /whoami: {{ integration: {{ type: plugin, plugin: echo }}, authorizer: cached }}
stages:
  prod:
    variables: {{ TABLE: fleet-Users }}
    throttle: {{ rateLimit: {rate}, burstLimit: {burst} }}
  plan:
    variables: {{ TABLE: fleet-Users }}
usagePlans:
  free: {{ stages: [plan], quota: {{ limit: 10, period: DAY }} }}
apiKeys:
  - {{ name: customer, value: "{KEY}", usagePlans: [free] }}
kvStore: {{ type: redis }}
authorizerCache: {{ type: redis }}
{rate_store}
"#
    );
    let file = dir.join("fleet-api.yaml");
    std::fs::write(&file, text).expect("writes the API file");
    file
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

async fn get(client: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_hammered_together_admit_within_the_shared_limit() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let (rate, burst) = (100.0, 50u32);
    let rate_store = format!(
        "rateStore: {{ type: redis, url: \"{}\", timeoutMs: 2000, failOpen: false }}",
        redis.url()
    );
    let api = fleet_api(dir.path(), rate, burst, &rate_store);
    let gateways = [
        ServeProcess::start(&api, &[]),
        ServeProcess::start(&api, &[]),
    ];
    let urls: Vec<String> = gateways
        .iter()
        .map(|g| format!("{}/prod/ping", g.base()))
        .collect();
    let shared = client();
    let counted = hammer(8, Duration::from_secs(2), move |task| {
        let (url, client) = (urls[task % 2].clone(), shared.clone());
        async move { get(&client, &url, &[]).await.0 }
    })
    .await;
    let t = counted.seconds;
    let admitted = counted.admitted as f64;
    let limit = f64::from(burst) + rate * t;
    let ratio = admitted / limit;
    println!(
        "fleet (2 gateways, 1 Redis): {admitted} admitted, {} throttled in {t:.3} s; \
         limit burst + rate*t = {limit:.1}; over-admit ratio {ratio:.4}",
        counted.throttled
    );
    assert_eq!(counted.other, 0, "every answer is 200 or 429");
    assert!(counted.throttled > 0, "hammered past the limit");
    assert!(
        admitted <= limit + 1.0,
        "{admitted} admitted, limit {limit:.1}"
    );
    assert!(ratio >= 0.9, "{admitted} admitted, limit {limit:.1}");
}

#[tokio::test]
async fn two_gateways_share_the_quota_the_kv_store_and_the_authorizer_cache() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    // No rateStore in the file: --redis names the server, for the buckets, quotas, kv and
    // authorizer cache alike.
    let api = fleet_api(dir.path(), 1000.0, 1000, "");
    let url = redis.url();
    let (a, b) = (
        ServeProcess::start(&api, &["--redis", &url]),
        ServeProcess::start(&api, &["--redis", &url]),
    );
    let client = client();

    // The quota: 10 a day for the key, whichever gateway counts them.
    let mut answers = Vec::new();
    for i in 0..12 {
        let gateway = if i % 2 == 0 { &a } else { &b };
        let url = format!("{}/plan/keyed", gateway.base());
        answers.push(get(&client, &url, &[("x-api-key", KEY)]).await);
    }
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses[..10], [200; 10], "{answers:?}");
    assert_eq!(
        answers[10..],
        [
            (429, r#"{"message":"Limit Exceeded"}"#.to_owned()),
            (429, r#"{"message":"Limit Exceeded"}"#.to_owned())
        ]
    );

    // The kv store: a user created through one gateway is read through the other.
    let created = client
        .post(format!("{}/prod/users", a.base()))
        .body(json!({"name": "Fleet", "email": "fleet@example.com"}).to_string())
        .send()
        .await
        .expect("an answer");
    assert_eq!(created.status().as_u16(), 201);
    let created: Value = serde_json::from_str(&created.text().await.expect("body")).expect("JSON");
    let id = created["user"]["userId"].as_str().expect("userId");
    let (status, body) = get(&client, &format!("{}/prod/users/{id}", b.base()), &[]).await;
    assert_eq!(status, 200, "{body}");
    let read: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(read["user"], created["user"]);

    // The authorizer cache: the plugin decides once for both gateways. It counts its calls
    // in the (shared) kv store and shows the count in the grant's context.
    let token = [("authorization", "Bearer allow;sub=fleet-user")];
    let mut calls = Vec::new();
    for gateway in [&a, &b, &a, &b] {
        let (status, body) = get(&client, &format!("{}/prod/whoami", gateway.base()), &token).await;
        assert_eq!(status, 200, "{body}");
        let body: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(body["authorizer"]["principalId"], "fleet-user");
        calls.push(body["authorizer"]["context"]["calls"].clone());
    }
    assert_eq!(calls, [json!(1), json!(1), json!(1), json!(1)]);
    let total: Option<String> =
        redis.command(&["HGET", "portico:kv:{authorizer-calls}:values", "total"]);
    assert_eq!(
        total.as_deref(),
        Some("1"),
        "the plugin ran once for the fleet"
    );
}

#[tokio::test]
async fn redis_going_away_fails_open_or_closed_within_the_timeout_and_comes_back() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let rate_store = format!(
        "rateStore: {{ type: redis, url: \"{}\", timeoutMs: 100, failOpen: false }}",
        redis.url()
    );
    // A bucket of 5 that does not refill during the test.
    let api = fleet_api(dir.path(), 1.0 / 3600.0, 5, &rate_store);
    // --redis: fail open after 50 ms (AWS's behaviour); the file: 503 after 100 ms.
    let url = redis.url();
    let open = ServeProcess::start(&api, &["--redis", &url]);
    let closed = ServeProcess::start(&api, &[]);
    let client = client();
    for gateway in [&open, &closed] {
        let (status, _) = get(&client, &format!("{}/prod/ping", gateway.base()), &[]).await;
        assert_eq!(status, 200);
    }

    redis.stop();
    // Slack for HTTP on loopback and a busy machine, not for Redis.
    const SLACK: Duration = Duration::from_millis(250);
    let mut failures = Vec::new();
    for (gateway, timeout, expected) in [
        (&open, 50, (200, "pong".to_owned())),
        (
            &closed,
            100,
            (503, r#"{"message":"Service Unavailable"}"#.to_owned()),
        ),
    ] {
        let mut longest = Duration::ZERO;
        for _ in 0..10 {
            let started = Instant::now();
            let answer = get(&client, &format!("{}/prod/ping", gateway.base()), &[]).await;
            let took = started.elapsed();
            longest = longest.max(took);
            if answer != expected {
                failures.push(format!(
                    "{}: {answer:?}, expected {expected:?}",
                    gateway.base()
                ));
            }
            if took > Duration::from_millis(timeout) + SLACK {
                failures.push(format!(
                    "{}: waited {took:?} with timeoutMs {timeout}",
                    gateway.base()
                ));
            }
        }
        println!("Redis away, timeoutMs {timeout}: the longest request took {longest:?}");
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // Each gateway warns (the fail-open one with AWS's message), but not once for each of its
    // ten requests: at most once in ten seconds.
    for (gateway, message) in [
        (&open, "Usage Plan check failed due to an internal error"),
        (&closed, "rate store unavailable: answering 503"),
    ] {
        let log = gateway.log();
        let warnings = log.matches(message).count();
        assert!(
            (1..3).contains(&warnings),
            "{warnings} warnings `{message}`: {log}"
        );
    }

    // The authorizer's shared cache is away too: each request asks the plugin (whose own kv
    // store is on the same Redis, so its answer does not matter here), and the gateway warns
    // that the cache did not answer, but not once per request.
    let token = [("authorization", "Bearer allow;sub=outage")];
    for _ in 0..5 {
        get(&client, &format!("{}/prod/whoami", open.base()), &token).await;
    }
    let log = open.log();
    let warnings = log.matches("authorizer cache unavailable").count();
    assert!((1..3).contains(&warnings), "{warnings} warnings: {log}");

    // Redis is back (empty) on the same port: both gateways find it without a restart.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        let (status, _) = get(&client, &format!("{}/prod/ping", closed.base()), &[]).await;
        seen.push(status);
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The bucket (5, one taken by the request above) is enforced again, across both: the
    // fail-open gateway lets requests through uncounted until it has found Redis again, then
    // counts them, until the bucket is empty for both.
    let mut seen = Vec::new();
    loop {
        let (status, _) = get(&client, &format!("{}/prod/ping", open.base()), &[]).await;
        seen.push(status);
        if status == 429 {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _) = get(&client, &format!("{}/prod/ping", closed.base()), &[]).await;
    assert_eq!(status, 429, "one bucket for both again");
}
