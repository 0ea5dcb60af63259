//! Throttling and quotas through the public API: which buckets a request draws from (API,
//! stage, route, usage plan, the plan's per-route limits), AWS's 429 bodies, quota periods
//! rolling over at UTC midnight, the week's and the month's first day, usage readouts, and
//! buckets that survive a reload. Time is a manual `Clock` except in the exactness test.
//!
//! Expectations follow AWS's developer guide, "Throttle requests to your REST APIs for better
//! throughput" (the order limits apply in, token-bucket semantics: rate per second, burst =
//! bucket size) and "Usage plans" (per-key limits aggregated across the plan's stages), the
//! gateway-response table (THROTTLED 429 "Too Many Requests", QUOTA_EXCEEDED 429 "Limit
//! Exceeded"), and the API reference's QuotaSettings.offset ("with a time period of WEEK, an
//! offset of 0 starts on Sunday, and an offset of 1 starts on Monday").

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use portico::{ApiDefinition, Clock, Format, Gateway, UsageError};
use portico_tests::{get_with_key as get, hammer};

const THROTTLED: &str = r#"{"message":"Too Many Requests"}"#;
const LIMIT_EXCEEDED: &str = r#"{"message":"Limit Exceeded"}"#;

/// 2026-11-29T12:00:00Z, a Sunday.
fn sunday_noon() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_953_600)
}

fn gateway(yaml: &str, clock: &Clock) -> Gateway {
    let definition = ApiDefinition::from_str_as(yaml, Format::Yaml).expect("parses");
    Gateway::builder(definition)
        .clock(clock.clone())
        .build()
        .unwrap_or_else(|e| panic!("loads: {e}"))
}

/// How many of `n` requests are admitted (200); every other one must be AWS's 429 `refusal`.
async fn admitted(
    gateway: &Gateway,
    path: &str,
    key: Option<&str>,
    n: usize,
    refusal: &str,
) -> usize {
    let mut admitted = 0;
    for _ in 0..n {
        match get(gateway, path, key).await {
            (200, _) => admitted += 1,
            (429, body) => assert_eq!(body, refusal, "{path}"),
            other => panic!("{path}: unexpected answer {other:?}"),
        }
    }
    admitted
}

const KEY_1: &str = "key-one-0123456789abcdef";
const KEY_2: &str = "key-two-0123456789abcdef";

/// Routes `/a`, `/b` (open) and `/k`, `/m` (API key required) on stages prod and beta, two
/// keys in plan `free`; `settings` adds the limits under test.
fn api(settings: &str) -> String {
    format!(
        r#"
name: throttled
apiId: thr0ttled1
protocol: rest
routes:
  GET /a: {{ integration: {{ type: mock, body: a }} }}
  GET /b: {{ integration: {{ type: mock, body: b }} }}
  GET /k: {{ integration: {{ type: mock, body: k }}, apiKeyRequired: true }}
  GET /m: {{ integration: {{ type: mock, body: m }}, apiKeyRequired: true }}
apiKeys:
  - {{ name: one, id: keyone0001, value: {KEY_1}, usagePlans: [free] }}
  - {{ name: two, id: keytwo0002, value: {KEY_2}, usagePlans: [free] }}
{settings}"#
    )
}

#[tokio::test]
async fn a_stage_bucket_admits_its_burst_then_its_rate() {
    let clock = Clock::manual(sunday_noon());
    let gw = gateway(
        &api("stages:\n  prod: { throttle: { rateLimit: 2, burstLimit: 10 } }\n  beta: {}\nusagePlans:\n  free: { stages: [prod] }\n"),
        &clock,
    );
    assert_eq!(admitted(&gw, "/prod/a", None, 15, THROTTLED).await, 10);
    // The stage's bucket covers all its routes; another stage has none.
    assert_eq!(admitted(&gw, "/prod/b", None, 3, THROTTLED).await, 0);
    assert_eq!(admitted(&gw, "/beta/a", None, 30, THROTTLED).await, 30);
    // 2 requests a second come back.
    clock.advance(Duration::from_millis(1500));
    assert_eq!(admitted(&gw, "/prod/a", None, 5, THROTTLED).await, 3);
}

#[tokio::test]
async fn a_route_setting_replaces_the_stage_bucket_for_that_route() {
    let clock = Clock::manual(sunday_noon());
    let gw = gateway(
        &api(r#"stages:
  prod:
    throttle: { rateLimit: 1, burstLimit: 10 }
    routeSettings:
      GET /b: { throttle: { rateLimit: 1, burstLimit: 3 } }
usagePlans:
  free: { stages: [prod] }
"#),
        &clock,
    );
    assert_eq!(admitted(&gw, "/prod/b", None, 6, THROTTLED).await, 3);
    // /b drew from its own bucket only: the stage's is still full.
    assert_eq!(admitted(&gw, "/prod/a", None, 12, THROTTLED).await, 10);
}

#[tokio::test]
async fn the_api_bucket_is_shared_by_every_stage() {
    let clock = Clock::manual(sunday_noon());
    let gw = gateway(
        &api("throttle: { rateLimit: 1, burstLimit: 5 }\nstages:\n  prod: { throttle: { rateLimit: 100, burstLimit: 100 } }\n  beta: {}\nusagePlans:\n  free: { stages: [prod] }\n"),
        &clock,
    );
    let mut total = 0;
    for _ in 0..4 {
        total += admitted(&gw, "/prod/a", None, 1, THROTTLED).await;
        total += admitted(&gw, "/beta/b", None, 1, THROTTLED).await;
    }
    assert_eq!(total, 5, "the account-level bucket bounds both stages");
}

#[tokio::test]
async fn usage_plan_limits_are_per_key_and_per_route_settings_replace_them() {
    let clock = Clock::manual(sunday_noon());
    let gw = gateway(
        &api(r#"stages:
  prod: { throttle: { rateLimit: 1, burstLimit: 100 } }
usagePlans:
  free:
    stages: [prod]
    throttle: { rateLimit: 1, burstLimit: 4 }
    apiStages: [{ stage: prod, throttle: { GET /m: { rateLimit: 1, burstLimit: 2 } } }]
"#),
        &clock,
    );
    assert_eq!(admitted(&gw, "/prod/k", Some(KEY_1), 6, THROTTLED).await, 4);
    // Another key has a bucket of its own.
    assert_eq!(admitted(&gw, "/prod/k", Some(KEY_2), 6, THROTTLED).await, 4);
    // The plan's per-route limit replaces the plan's bucket on GET /m.
    assert_eq!(admitted(&gw, "/prod/m", Some(KEY_1), 4, THROTTLED).await, 2);
    // Requests without the plan (no key needed) only meet the stage's bucket.
    assert_eq!(admitted(&gw, "/prod/a", None, 5, THROTTLED).await, 5);
}

#[tokio::test]
async fn a_keys_plan_bucket_is_shared_across_the_plans_stages() {
    let clock = Clock::manual(sunday_noon());
    let gw = gateway(
        &api("stages:\n  prod: {}\n  beta: {}\nusagePlans:\n  free: { stages: [prod, beta], throttle: { rateLimit: 1, burstLimit: 4 } }\n"),
        &clock,
    );
    let mut total = 0;
    for _ in 0..4 {
        total += admitted(&gw, "/prod/k", Some(KEY_1), 1, THROTTLED).await;
        total += admitted(&gw, "/beta/k", Some(KEY_1), 1, THROTTLED).await;
    }
    assert_eq!(
        total, 4,
        "aggregated across all API stages within a usage plan"
    );
}

#[tokio::test]
async fn stage_limits_apply_before_the_authorize_phase() {
    let clock = Clock::manual(sunday_noon());
    let gw = gateway(
        &api("stages:\n  prod: { throttle: { rateLimit: 1, burstLimit: 1 } }\nusagePlans:\n  free: { stages: [prod] }\n"),
        &clock,
    );
    // The first request takes the token and is refused by the key check; the second never
    // reaches the key check.
    assert_eq!(get(&gw, "/prod/k", Some("wrong")).await.0, 403);
    assert_eq!(
        get(&gw, "/prod/k", Some("wrong")).await,
        (429, THROTTLED.to_owned())
    );
}

#[tokio::test]
async fn quotas_count_per_utc_day_and_roll_over_at_midnight() {
    let clock = Clock::manual(sunday_noon());
    let gw = gateway(
        &api("stages:\n  prod: {}\nusagePlans:\n  free: { stages: [prod], quota: { limit: 3, period: DAY } }\n"),
        &clock,
    );
    assert_eq!(
        admitted(&gw, "/prod/k", Some(KEY_1), 5, LIMIT_EXCEEDED).await,
        3
    );
    // Each key has its own quota.
    assert_eq!(
        admitted(&gw, "/prod/k", Some(KEY_2), 1, LIMIT_EXCEEDED).await,
        1
    );
    // 23:59:59 is still Sunday.
    clock.advance(Duration::from_secs(12 * 3600 - 1));
    assert_eq!(
        admitted(&gw, "/prod/k", Some(KEY_1), 1, LIMIT_EXCEEDED).await,
        0
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        admitted(&gw, "/prod/k", Some(KEY_1), 5, LIMIT_EXCEEDED).await,
        3
    );
}

#[tokio::test]
async fn weekly_quotas_start_on_the_offset_day_and_monthly_on_the_first() {
    // offset 1: weeks start on Monday. Sunday noon is the last day of a week.
    let clock = Clock::manual(sunday_noon());
    let gw = gateway(
        &api("stages:\n  prod: {}\nusagePlans:\n  free: { stages: [prod], quota: { limit: 2, period: WEEK, offset: 1 } }\n"),
        &clock,
    );
    assert_eq!(
        admitted(&gw, "/prod/k", Some(KEY_1), 3, LIMIT_EXCEEDED).await,
        2
    );
    clock.advance(Duration::from_secs(12 * 3600)); // Monday 00:00
    assert_eq!(
        admitted(&gw, "/prod/k", Some(KEY_1), 3, LIMIT_EXCEEDED).await,
        2
    );
    clock.advance(Duration::from_secs(6 * 86_400)); // Sunday: the same week
    assert_eq!(
        admitted(&gw, "/prod/k", Some(KEY_1), 1, LIMIT_EXCEEDED).await,
        0
    );

    // offset 0: Sunday starts the week.
    let clock = Clock::manual(sunday_noon() - Duration::from_secs(86_400)); // Saturday
    let gw = gateway(
        &api("stages:\n  prod: {}\nusagePlans:\n  free: { stages: [prod], quota: { limit: 1, period: WEEK } }\n"),
        &clock,
    );
    assert_eq!(
        admitted(&gw, "/prod/k", Some(KEY_1), 2, LIMIT_EXCEEDED).await,
        1
    );
    clock.advance(Duration::from_secs(86_400)); // Sunday
    assert_eq!(
        admitted(&gw, "/prod/k", Some(KEY_1), 2, LIMIT_EXCEEDED).await,
        1
    );

    // MONTH: 2026-11-30T23:59:00Z, then 2026-12-01.
    let clock = Clock::manual(SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_083_140));
    let gw = gateway(
        &api("stages:\n  prod: {}\nusagePlans:\n  free: { stages: [prod], quota: { limit: 2, period: MONTH } }\n"),
        &clock,
    );
    assert_eq!(
        admitted(&gw, "/prod/k", Some(KEY_1), 3, LIMIT_EXCEEDED).await,
        2
    );
    clock.advance(Duration::from_secs(30));
    assert_eq!(
        admitted(&gw, "/prod/k", Some(KEY_1), 1, LIMIT_EXCEEDED).await,
        0
    );
    clock.advance(Duration::from_secs(30));
    assert_eq!(
        admitted(&gw, "/prod/k", Some(KEY_1), 3, LIMIT_EXCEEDED).await,
        2
    );
}

#[tokio::test]
async fn a_throttled_request_uses_no_quota() {
    let clock = Clock::manual(sunday_noon());
    let gw = gateway(
        &api("stages:\n  prod: {}\nusagePlans:\n  free: { stages: [prod], throttle: { rateLimit: 1, burstLimit: 2 }, quota: { limit: 3, period: DAY } }\n"),
        &clock,
    );
    assert_eq!(admitted(&gw, "/prod/k", Some(KEY_1), 5, THROTTLED).await, 2);
    clock.advance(Duration::from_secs(5));
    assert_eq!(get(&gw, "/prod/k", Some(KEY_1)).await.0, 200);
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        get(&gw, "/prod/k", Some(KEY_1)).await,
        (429, LIMIT_EXCEEDED.to_owned())
    );
}

#[tokio::test]
async fn usage_is_read_per_day_and_a_quota_can_be_reset() {
    let clock = Clock::manual(sunday_noon());
    let gw = gateway(
        &api("stages:\n  prod: {}\nusagePlans:\n  free: { stages: [prod], quota: { limit: 5, period: WEEK, offset: 1 } }\n"),
        &clock,
    );
    assert_eq!(
        admitted(&gw, "/prod/k", Some(KEY_1), 2, LIMIT_EXCEEDED).await,
        2
    );
    clock.advance(Duration::from_secs(86_400)); // Monday: a new week
    assert_eq!(
        admitted(&gw, "/prod/k", Some(KEY_1), 3, LIMIT_EXCEEDED).await,
        3
    );
    assert_eq!(
        admitted(&gw, "/prod/k", Some(KEY_2), 1, LIMIT_EXCEEDED).await,
        1
    );

    // AWS's GetUsage shape: per key, per day, [used, remaining].
    let usage = gw
        .usage("free", None, "2026-11-28", "2026-11-30")
        .await
        .expect("usage");
    let json = serde_json::to_value(&usage).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "usagePlanId": "free",
            "startDate": "2026-11-28",
            "endDate": "2026-11-30",
            "items": {
                "keyone0001": [[0, 5], [2, 3], [3, 2]],
                "keytwo0002": [[0, 5], [0, 5], [1, 4]],
            }
        })
    );
    let one = gw
        .usage("free", Some("keytwo0002"), "2026-11-30", "2026-11-30")
        .await
        .unwrap();
    assert_eq!(one.items.len(), 1);
    assert!(matches!(
        gw.usage("gold", None, "2026-11-30", "2026-11-30").await,
        Err(UsageError::UnknownPlan(_))
    ));
    assert!(matches!(
        gw.usage("free", Some("nobody"), "2026-11-30", "2026-11-30")
            .await,
        Err(UsageError::UnknownKey { .. })
    ));
    assert!(matches!(
        gw.usage("free", None, "2026-11-30", "2026-11-01").await,
        Err(UsageError::BadDates(_))
    ));
    assert!(matches!(
        gw.usage("free", None, "30/11/2026", "2026-11-30").await,
        Err(UsageError::BadDates(_))
    ));

    // Two more this week, then refused; a reset gives the whole quota back.
    assert_eq!(
        admitted(&gw, "/prod/k", Some(KEY_1), 4, LIMIT_EXCEEDED).await,
        2
    );
    gw.reset_quota("free", "keyone0001").await.expect("reset");
    assert_eq!(
        admitted(&gw, "/prod/k", Some(KEY_1), 6, LIMIT_EXCEEDED).await,
        5
    );
    assert!(matches!(
        gw.reset_quota("free", "nobody").await,
        Err(UsageError::UnknownKey { .. })
    ));
}

#[tokio::test]
async fn a_reload_keeps_buckets_and_quotas() {
    let clock = Clock::manual(sunday_noon());
    let text = api("stages:\n  prod: { throttle: { rateLimit: 1, burstLimit: 3 } }\nusagePlans:\n  free: { stages: [prod], quota: { limit: 2, period: DAY } }\n");
    let gw = gateway(&text, &clock);
    assert_eq!(
        admitted(&gw, "/prod/k", Some(KEY_1), 2, LIMIT_EXCEEDED).await,
        2
    );
    assert_eq!(admitted(&gw, "/prod/a", None, 1, THROTTLED).await, 1);
    // The same limits, another route: nobody's bucket or quota starts over.
    let next = text.replace("GET /b:", "GET /c:");
    gw.reload(&ApiDefinition::from_str_as(&next, Format::Yaml).unwrap())
        .expect("reloads");
    assert_eq!(get(&gw, "/prod/c", None).await, (429, THROTTLED.to_owned()));
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        get(&gw, "/prod/k", Some(KEY_1)).await,
        (429, LIMIT_EXCEEDED.to_owned())
    );
}

#[tokio::test]
async fn rate_limit_headers_tell_the_tightest_bucket() {
    let clock = Clock::manual(sunday_noon());
    let gw = gateway(
        &api("stages:\n  prod: { throttle: { rateLimit: 2, burstLimit: 10 }, rateLimitHeaders: true }\n  beta: { throttle: { rateLimit: 2, burstLimit: 10 } }\nusagePlans:\n  free: { stages: [prod], throttle: { rateLimit: 1, burstLimit: 2 } }\n"),
        &clock,
    );
    let header = |r: &http::Response<Bytes>, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let send = |path: &str, key: Option<&str>| {
        let mut request = http::Request::get(path);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        gw.handle(request.body(Bytes::new()).unwrap())
    };
    let r = send("/prod/a", None).await;
    // draft-ietf-httpapi-ratelimit-headers: q = the bucket, w = seconds to refill it.
    assert_eq!(
        header(&r, "ratelimit-policy").as_deref(),
        Some(r#""stage";q=10;w=5"#)
    );
    assert_eq!(
        header(&r, "ratelimit").as_deref(),
        Some(r#""stage";r=9;t=0"#)
    );
    // The key's plan bucket is tighter than the stage's.
    let r = send("/prod/k", Some(KEY_1)).await;
    assert_eq!(
        header(&r, "ratelimit-policy").as_deref(),
        Some(r#""plan";q=2;w=2"#)
    );
    assert_eq!(
        header(&r, "ratelimit").as_deref(),
        Some(r#""plan";r=1;t=0"#)
    );
    let _ = send("/prod/k", Some(KEY_1)).await;
    let r = send("/prod/k", Some(KEY_1)).await;
    assert_eq!(r.status(), 429);
    assert_eq!(
        header(&r, "ratelimit").as_deref(),
        Some(r#""plan";r=0;t=1"#)
    );
    // Off by default.
    let r = send("/beta/a", None).await;
    assert_eq!(header(&r, "ratelimit"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn eight_threads_never_get_more_than_burst_plus_rate_times_t() {
    // The system clock: 8 tasks on 8 threads take from one bucket as fast as they can for 2 s.
    const RATE: f64 = 500.0;
    const BURST: f64 = 50.0;
    let gw = gateway(
        &api("stages:\n  prod: { throttle: { rateLimit: 500, burstLimit: 50 } }\nusagePlans:\n  free: { stages: [prod] }\n"),
        &Clock::system(),
    );
    let counted = hammer(8, Duration::from_secs(2), move |_| {
        let gw = gw.clone();
        async move { get(&gw, "/prod/a", None).await.0 }
    })
    .await;
    let admitted = counted.admitted as f64;
    let bound = BURST + RATE * counted.seconds;
    eprintln!(
        "admitted {admitted} in {:.3} s; bound {bound:.0}",
        counted.seconds
    );
    assert_eq!(counted.other, 0, "every answer is 200 or 429");
    assert!(admitted <= bound + 1.0, "admitted {admitted} > {bound} + 1");
    assert!(
        admitted >= 0.95 * bound,
        "admitted only {admitted} of {bound}"
    );
}
