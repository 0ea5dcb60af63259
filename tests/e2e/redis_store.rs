//! The Redis rate store through the public API, against a real `redis-server` of the test's
//! own: a bucket hammered from 8 tasks stays within `burst + rate*t`, a reload (and a second
//! gateway) finds buckets and quotas where they were, `SCRIPT FLUSH` costs nothing, usage is
//! read back from Redis, and the configuration mistakes are load errors naming their key.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portico::config::RedisDefinition;
use portico::{ApiDefinition, Format, Gateway, KvError, KvStore, RedisKv};
use portico_tests::{get_with_key as status, hammer, RedisServer};

const KEY: &str = "k-0123456789abcdef0123";

/// An API whose `prod` stage has a bucket of `rate`/`burst`, whose `keyed` stage has a usage
/// plan with a quota of 5 a day, on the Redis at `url`.
fn api(url: &str, rate: f64, burst: u32) -> ApiDefinition {
    let text = format!(
        r#"
name: redis-api
apiId: redisapi01
routes:
  GET /ping: {{ integration: {{ type: mock, statusCode: 200, body: pong }} }}
  GET /keyed: {{ integration: {{ type: mock, statusCode: 200, body: keyed }}, apiKeyRequired: true }}
stages:
  prod: {{ throttle: {{ rateLimit: {rate}, burstLimit: {burst} }} }}
  keyed: {{}}
usagePlans:
  free: {{ stages: [keyed], quota: {{ limit: 5, period: DAY }} }}
apiKeys:
  - {{ name: customer, value: "{KEY}", usagePlans: [free] }}
rateStore: {{ type: redis, url: "{url}", timeoutMs: 2000, failOpen: false }}
"#
    );
    ApiDefinition::from_str_as(&text, Format::Yaml).expect("the test API parses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_bucket_hammered_by_8_tasks_admits_burst_plus_rate_times_t() {
    let redis = RedisServer::start();
    let (rate, burst) = (200.0, 100u32);
    let gateway = Gateway::new(&api(&redis.url(), rate, burst)).expect("loads");
    let hammered = gateway.clone();
    let counted = hammer(8, Duration::from_secs(2), move |_| {
        let gateway = hammered.clone();
        async move { status(&gateway, "/prod/ping", None).await.0 }
    })
    .await;
    let t = counted.seconds;
    let admitted = counted.admitted as f64;
    let limit = f64::from(burst) + rate * t;
    println!(
        "redis bucket: {admitted} admitted, {} throttled in {t:.3} s; limit {limit:.1}; ratio {:.4}",
        counted.throttled,
        admitted / limit
    );
    assert_eq!(counted.other, 0, "every answer is 200 or 429");
    assert!(
        counted.throttled > 0,
        "the bucket was hammered past its limit"
    );
    assert!(
        admitted <= limit + 1.0,
        "{admitted} admitted, limit {limit:.1}"
    );
    assert!(
        admitted >= 0.95 * limit,
        "{admitted} admitted, limit {limit:.1}"
    );
}

#[tokio::test]
async fn a_reload_and_a_second_gateway_keep_buckets_and_quotas() {
    let redis = RedisServer::start();
    // A bucket of 3 that refills once an hour: what was taken stays taken.
    let definition = api(&redis.url(), 1.0 / 3600.0, 3);
    let gateway = Gateway::new(&definition).expect("loads");
    for _ in 0..2 {
        assert_eq!(status(&gateway, "/prod/ping", None).await.0, 200);
    }
    for _ in 0..3 {
        assert_eq!(status(&gateway, "/keyed/keyed", Some(KEY)).await.0, 200);
    }
    gateway.reload(&definition).expect("reloads");
    assert_eq!(status(&gateway, "/prod/ping", None).await.0, 200);
    assert_eq!(
        status(&gateway, "/prod/ping", None).await,
        (429, r#"{"message":"Too Many Requests"}"#.to_owned())
    );
    for _ in 0..2 {
        assert_eq!(status(&gateway, "/keyed/keyed", Some(KEY)).await.0, 200);
    }
    // A gateway that starts now (another process, or a restarted one) sees the same.
    let second = Gateway::new(&definition).expect("loads");
    assert_eq!(status(&second, "/prod/ping", None).await.0, 429);
    assert_eq!(
        status(&second, "/keyed/keyed", Some(KEY)).await,
        (429, r#"{"message":"Limit Exceeded"}"#.to_owned())
    );
    // Usage is read from Redis: 5 requests today, none left; a refused one counted nowhere.
    let today = portico_tests_today();
    let usage = second
        .usage("free", None, &today, &today)
        .await
        .expect("usage");
    let counts: Vec<Vec<u64>> = usage.items.values().next().expect("one key").clone();
    assert_eq!(counts, vec![vec![5, 0]]);
    // A reset gives the quota back, on every gateway.
    let key_id = usage.items.keys().next().expect("one key").clone();
    second.reset_quota("free", &key_id).await.expect("resets");
    assert_eq!(status(&gateway, "/keyed/keyed", Some(KEY)).await.0, 200);
}

#[tokio::test]
async fn script_flush_and_a_redis_restart_do_not_break_the_next_request() {
    let mut redis = RedisServer::start();
    let gateway = Gateway::new(&api(&redis.url(), 1.0 / 3600.0, 2)).expect("loads");
    assert_eq!(status(&gateway, "/prod/ping", None).await.0, 200);
    let flushed: String = redis.command(&["SCRIPT", "FLUSH"]);
    assert_eq!(flushed, "OK");
    // The script is loaded again, and the bucket is where it was.
    assert_eq!(status(&gateway, "/prod/ping", None).await.0, 200);
    assert_eq!(status(&gateway, "/prod/ping", None).await.0, 429);
    // A restarted Redis is empty: the gateway reconnects by itself and starts over.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut answers = Vec::new();
    loop {
        let (code, _) = status(&gateway, "/prod/ping", None).await;
        answers.push(code);
        if code == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after the restart: {answers:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status(&gateway, "/prod/ping", None).await.0, 200);
    assert_eq!(status(&gateway, "/prod/ping", None).await.0, 429);
}

#[test]
fn redis_settings_are_checked_at_load_and_named_by_key() {
    let cases: [(&str, &str); 5] = [
        (
            "rateStore: { type: redis, url: 'http://127.0.0.1:6379' }",
            "rateStore.url",
        ),
        (
            "rateStore: { type: redis, url: 'redis://127.0.0.1:6379', timeoutMs: 0 }",
            "rateStore.timeoutMs",
        ),
        ("kvStore: { type: redis }", "kvStore.type"),
        ("authorizerCache: { type: redis }", "authorizerCache.type"),
        ("kvStore: { type: redis, url: 'redis://x' }", "kvStore"),
    ];
    let mut failures = Vec::new();
    for (setting, key_path) in cases {
        let text = format!(
            "name: t\nroutes:\n  GET /a: {{ integration: {{ type: mock }} }}\nstages:\n  prod: {{}}\n{setting}\n"
        );
        let loaded = ApiDefinition::from_str_as(&text, Format::Yaml)
            .map_err(|e| e.to_string())
            .and_then(|definition| Gateway::new(&definition).map_err(|e| e.to_string()));
        match loaded {
            Ok(_) => failures.push(format!("{setting}: loaded")),
            Err(message) if !message.contains(key_path) => {
                failures.push(format!("{setting}: {message} (expected {key_path})"))
            }
            Err(_) => {}
        }
    }
    // Loading never connects: a Redis that is not there is no load error.
    let text = "name: t\nroutes:\n  GET /a: { integration: { type: mock } }\nstages:\n  prod: {}\n\
                rateStore: { type: redis, url: 'redis://127.0.0.1:1' }\nkvStore: { type: redis }\n\
                authorizerCache: { type: redis }\n";
    let definition = ApiDefinition::from_str_as(text, Format::Yaml).expect("parses");
    if let Err(e) = Gateway::new(&definition) {
        failures.push(format!("an absent Redis is a load error: {e}"));
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Today's date (UTC), `YYYY-MM-DD`.
fn portico_tests_today() -> String {
    time::OffsetDateTime::now_utc().date().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_kv_store_keeps_the_kv_contract() {
    let redis = RedisServer::start();
    let store: Arc<dyn KvStore> =
        Arc::new(RedisKv::open(&RedisDefinition::new(redis.url())).expect("a Redis URL"));
    // The plugin host calls the store on tokio's blocking threads; so does this test.
    let checked = tokio::task::spawn_blocking(move || {
        let mut failures = Vec::new();
        let mut check = |what: &str, ok: bool| {
            if !ok {
                failures.push(what.to_owned());
            }
        };
        check("absent", store.get("t", "a").unwrap().is_none());
        store.put("t", "user#2", b"two").unwrap();
        store.put("t", "user#1", b"one").unwrap();
        store.put("t", "other", b"x").unwrap();
        store.put("t2", "user#3", b"elsewhere").unwrap();
        store.put("t", "user#\u{e9}", b"\xff\x00binary").unwrap();
        check(
            "get",
            store.get("t", "user#1").unwrap().as_deref() == Some(&b"one"[..]),
        );
        let keys = |listed: Vec<(String, Vec<u8>)>| -> Vec<String> {
            listed.into_iter().map(|(k, _)| k).collect()
        };
        check(
            "prefix, in key order",
            keys(store.list_prefix("t", "user#", None, 10).unwrap())
                == ["user#1", "user#2", "user#\u{e9}"],
        );
        check(
            "after",
            keys(store.list_prefix("t", "user#", Some("user#1"), 10).unwrap())
                == ["user#2", "user#\u{e9}"],
        );
        check(
            "limit",
            keys(store.list_prefix("t", "", None, 2).unwrap()) == ["other", "user#1"],
        );
        check(
            "binary values",
            store.get("t", "user#\u{e9}").unwrap().as_deref() == Some(&b"\xff\x00binary"[..]),
        );
        check("delete", store.delete("t", "user#1").unwrap());
        check("delete again", !store.delete("t", "user#1").unwrap());
        check("deleted", store.get("t", "user#1").unwrap().is_none());
        check(
            "deleted from listings",
            keys(store.list_prefix("t", "user#", None, 10).unwrap()) == ["user#2", "user#\u{e9}"],
        );
        check(
            "bad names",
            matches!(store.put("", "k", b""), Err(KvError::InvalidName(_)))
                && matches!(store.get("t\0x", "k"), Err(KvError::InvalidName(_))),
        );
        failures
    })
    .await
    .expect("the blocking task");
    assert!(checked.is_empty(), "{checked:#?}");

    // Outside any runtime, and with Redis gone, a call is an error, never a hang or a panic.
    let store = RedisKv::open(&RedisDefinition::new(redis.url())).expect("a Redis URL");
    let outside = std::thread::spawn(move || store.get("t", "user#2"))
        .join()
        .expect("no panic");
    assert!(matches!(outside, Err(KvError::Storage(_))), "{outside:?}");
    let gone = RedisKv::open(&RedisDefinition::new("redis://127.0.0.1:1")).expect("a URL");
    let started = Instant::now();
    let answer = tokio::task::spawn_blocking(move || gone.put("t", "k", b"v"))
        .await
        .expect("no panic");
    assert!(matches!(answer, Err(KvError::Storage(_))), "{answer:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_cluster_setting_takes_the_cluster_client() {
    // A single redis-server is no cluster: the cluster client cannot read a slot map from
    // it, which is Redis being unavailable (503 with failOpen: false), not a hang.
    let redis = RedisServer::start();
    let text = format!(
        "name: t\nroutes:\n  GET /a: {{ integration: {{ type: mock }} }}\nstages:\n  \
         prod: {{ throttle: {{ rateLimit: 10, burstLimit: 10 }} }}\n\
         rateStore: {{ type: redis, url: ['{url}', '{url}'], timeoutMs: 500, failOpen: false }}\n",
        url = redis.url()
    );
    let gateway = Gateway::new(&ApiDefinition::from_str_as(&text, Format::Yaml).expect("parses"))
        .expect("loads");
    let started = Instant::now();
    assert_eq!(
        status(&gateway, "/prod/a", None).await,
        (503, r#"{"message":"Service Unavailable"}"#.to_owned())
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
}
