//! Custom authorizers and API keys end to end, with the real `policy_authorizer` plugin: it
//! decides from a script in the token (`allow;sub=ann`, `deny`, `allow-only=GET/x`, ...) and
//! counts its calls in the gateway's key-value store, so every test can prove whether the
//! plugin ran.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use portico::{ApiDefinition, Format, Gateway, KvStore, MemoryKv};
use portico_tests::e2e_api_file;
use serde_json::Value;

const COUNTER_TABLE: &str = "authorizer-calls";
const POLICY_DENIED: &str = r#"{"message":"User is not authorized to access this resource"}"#;
const UNAUTHORIZED: &str = r#"{"message":"Unauthorized"}"#;
const FORBIDDEN: &str = r#"{"message":"Forbidden"}"#;

fn api_file() -> PathBuf {
    e2e_api_file("auth-api.yaml", &["policy_authorizer", "echo"])
}

/// A gateway of its own (own store, own authorizer caches) and its store, to count calls.
struct Fixture {
    gateway: Gateway,
    kv: Arc<MemoryKv>,
}

impl Fixture {
    fn new() -> Self {
        Self::edited(|_| {})
    }

    /// The auth API with its definition changed by `edit`.
    fn edited(edit: impl FnOnce(&mut ApiDefinition)) -> Self {
        let kv = Arc::new(MemoryKv::new());
        let mut definition = ApiDefinition::from_file(api_file()).expect("auth API parses");
        edit(&mut definition);
        let gateway = Gateway::builder(definition)
            .base_dir(api_file().parent().expect("e2e/"))
            .kv_store(kv.clone())
            .build()
            .expect("auth API loads");
        Fixture { gateway, kv }
    }

    /// How often the plugin was called with `script`.
    fn calls(&self, script: &str) -> u64 {
        self.counter(&format!("by-script/{script}"))
    }

    fn total_calls(&self) -> u64 {
        self.counter("total")
    }

    fn counter(&self, key: &str) -> u64 {
        self.kv
            .get(COUNTER_TABLE, key)
            .expect("store")
            .map(|v| String::from_utf8(v).unwrap().parse().unwrap())
            .unwrap_or(0)
    }

    async fn call(&self, method: &str, uri: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(Bytes::new()).unwrap();
        request
            .extensions_mut()
            .insert(SocketAddr::from(([192, 0, 2, 9], 40_000)));
        let response = self.gateway.handle(request).await;
        let status = response.status().as_u16();
        let body = serde_json::from_slice(response.body())
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(response.body()).into()));
        (status, body)
    }

    /// A request whose `authorization` header is `script`.
    async fn with_script(&self, method: &str, uri: &str, script: &str) -> (u16, Value) {
        self.call(method, uri, &[("authorization", script)]).await
    }
}

fn message(body: &str) -> Value {
    serde_json::from_str(body).unwrap()
}

#[tokio::test]
async fn allow_hands_principal_and_context_to_the_integration() {
    let f = Fixture::new();
    let (status, body) = f
        .with_script("GET", "/dev/iam/reports/7", "allow;sub=ann")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["authorizer"]["principalId"], "ann");
    let context = &body["authorizer"]["context"];
    assert_eq!(context["sub"], "ann");
    assert_eq!(context["kind"], "request");
    assert_eq!(context["calls"], 1.0);
    assert_eq!(
        context["methodArn"],
        "arn:aws:execute-api:ap-northeast-1:111122223333:authapi/dev/GET/iam/reports/7"
    );
    assert_eq!(f.calls("allow;sub=ann"), 1);
}

#[tokio::test]
async fn deny_and_unauthorized_follow_aws() {
    let f = Fixture::new();
    let (status, body) = f.with_script("GET", "/dev/iam/x", "deny").await;
    assert_eq!((status, body), (403, message(POLICY_DENIED)));
    let (status, body) = f.with_script("GET", "/dev/iam/x", "unauthorized").await;
    assert_eq!((status, body), (401, message(UNAUTHORIZED)));
    assert_eq!(f.total_calls(), 2);
}

#[tokio::test]
async fn a_missing_identity_source_is_401_without_calling_the_plugin() {
    let f = Fixture::new();
    let (status, body) = f.call("GET", "/dev/iam/x", &[]).await;
    assert_eq!((status, body), (401, message(UNAUTHORIZED)));
    let (status, _) = f
        .call("GET", "/dev/iam/x", &[("authorization", "  ")])
        .await;
    assert_eq!(status, 401);
    // REQUEST authorizer with two sources: the query string one is missing.
    let (status, _) = f.with_script("GET", "/dev/simple", "no-policy").await;
    assert_eq!(status, 401);
    assert_eq!(f.total_calls(), 0, "the plugin must not run");
    let (status, _) = f
        .with_script("GET", "/dev/simple?tenant=t1", "no-policy")
        .await;
    assert_eq!(status, 200);
    assert_eq!(f.total_calls(), 1);
}

#[tokio::test]
async fn results_are_cached_for_the_ttl_per_identity_and_stage() {
    let f = Fixture::new();
    for _ in 0..10 {
        let (status, body) = f.with_script("GET", "/dev/iam/a", "allow;sub=a").await;
        assert_eq!(status, 200);
        // The grant of the first call, cached: its context still says calls = 1.
        assert_eq!(body["authorizer"]["context"]["calls"], 1.0, "{body}");
    }
    assert_eq!(f.calls("allow;sub=a"), 1);
    // Another identity is another entry, with its own grant.
    let (_, body) = f.with_script("GET", "/dev/iam/a", "allow;sub=b").await;
    assert_eq!(body["authorizer"]["principalId"], "b");
    let (_, body) = f.with_script("GET", "/dev/iam/a", "allow;sub=a").await;
    assert_eq!(body["authorizer"]["principalId"], "a");
    assert_eq!((f.calls("allow;sub=a"), f.calls("allow;sub=b")), (1, 1));
    // Another stage is another cache.
    let (status, body) = f.with_script("GET", "/prod/iam/a", "allow;sub=a").await;
    assert_eq!(status, 200);
    assert_eq!(
        body["authorizer"]["context"]["methodArn"],
        "arn:aws:execute-api:ap-northeast-1:111122223333:authapi/prod/GET/iam/a"
    );
    assert_eq!(f.calls("allow;sub=a"), 2);
    // Denials are cached too.
    for _ in 0..3 {
        assert_eq!(f.with_script("GET", "/dev/iam/a", "deny").await.0, 403);
    }
    assert_eq!(f.calls("deny"), 1);
}

#[tokio::test]
async fn cached_results_expire() {
    let f = Fixture::new();
    for _ in 0..3 {
        assert_eq!(f.with_script("GET", "/dev/short", "allow").await.0, 200);
    }
    assert_eq!(f.calls("allow"), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(f.with_script("GET", "/dev/short", "allow").await.0, 200);
    assert_eq!(f.calls("allow"), 2);
}

#[tokio::test]
async fn no_cache_when_the_ttl_is_zero() {
    let f = Fixture::new();
    for _ in 0..3 {
        let (status, body) = f.with_script("GET", "/dev/token", "Bearer allow").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["authorizer"]["context"]["kind"], "token");
    }
    assert_eq!(f.calls("allow"), 3);
}

#[tokio::test]
async fn token_validation_expression_is_checked_before_the_plugin() {
    let f = Fixture::new();
    let (status, body) = f.with_script("GET", "/dev/token", "allow").await;
    assert_eq!((status, body), (401, message(UNAUTHORIZED)));
    let (status, _) = f
        .with_script("GET", "/dev/token", "Bearer allow trailing")
        .await;
    assert_eq!(status, 401);
    assert_eq!(f.total_calls(), 0);
}

#[tokio::test]
async fn a_cached_policy_is_evaluated_against_each_method_arn() {
    let f = Fixture::new();
    let script = "allow-only=GET/iam/reports/*";
    assert_eq!(
        f.with_script("GET", "/dev/iam/reports/1", script).await.0,
        200
    );
    assert_eq!(
        f.with_script("GET", "/dev/iam/reports/2", script).await.0,
        200
    );
    let (status, body) = f.with_script("DELETE", "/dev/iam/reports/1", script).await;
    assert_eq!((status, body), (403, message(POLICY_DENIED)));
    assert_eq!(f.with_script("GET", "/dev/iam/other", script).await.0, 403);
    assert_eq!(f.calls(script), 1, "one call, its policy re-evaluated");
}

#[tokio::test]
async fn an_explicit_deny_wins_over_an_allow() {
    let f = Fixture::new();
    let script = "explicit-deny=DELETE/*";
    assert_eq!(f.with_script("GET", "/dev/iam/x", script).await.0, 200);
    assert_eq!(f.with_script("POST", "/dev/iam/x", script).await.0, 200);
    let (status, body) = f.with_script("DELETE", "/dev/iam/x", script).await;
    assert_eq!((status, body), (403, message(POLICY_DENIED)));
}

#[tokio::test]
async fn simple_responses_decide_without_a_policy() {
    let f = Fixture::new();
    let uri = "/dev/simple?tenant=t1";
    let (status, body) = f.with_script("GET", uri, "no-policy;sub=sam").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["authorizer"]["principalId"], "sam");
    // isAuthorized false is a plain 403 Forbidden.
    let (status, body) = f.with_script("GET", uri, "deny").await;
    assert_eq!((status, body), (403, message(FORBIDDEN)));
    let (status, _) = f.with_script("GET", uri, "unauthorized").await;
    assert_eq!(status, 401);
    // A policy in a simple response is not evaluated: this one would deny /simple.
    let (status, _) = f.with_script("GET", uri, "allow-only=GET/elsewhere").await;
    assert_eq!(status, 200);
    // The tenant is part of the identity: another tenant is another cache entry.
    f.with_script("GET", "/dev/simple?tenant=t2", "no-policy;sub=sam")
        .await;
    assert_eq!(f.calls("no-policy;sub=sam"), 2);
}

#[tokio::test]
async fn authorizer_failures_are_500() {
    let f = Fixture::new();
    let internal = message(r#"{"message":"Internal Server Error"}"#);
    let (status, body) = f.with_script("GET", "/dev/iam/x", "bad-policy").await;
    assert_eq!((status, body), (500, internal.clone()));
    let (status, body) = f.with_script("GET", "/dev/iam/x", "trap").await;
    assert_eq!((status, body), (500, internal));
    // Failures are not cached: the next call asks again.
    f.with_script("GET", "/dev/iam/x", "trap").await;
    assert_eq!(f.calls("trap"), 2);
}

#[tokio::test]
async fn a_method_arn_over_1600_bytes_is_414() {
    let f = Fixture::new();
    let long = format!("/dev/iam/{}", "a".repeat(1600));
    let (status, _) = f.with_script("GET", &long, "allow").await;
    assert_eq!(status, 414);
    assert_eq!(f.total_calls(), 0);
}

#[tokio::test]
async fn api_keys_missing_unknown_disabled_valid() {
    let f = Fixture::new();
    let forbidden = message(FORBIDDEN);
    let key = |value: &'static str| vec![("x-api-key", value)];
    assert_eq!(
        f.call("GET", "/dev/keyed", &[]).await,
        (403, forbidden.clone())
    );
    let cases: [(&str, &str, u16); 7] = [
        ("/dev/keyed", "k-unknown-0123456789abcd", 403),
        ("/dev/keyed", "k-switched-off-0123456789", 403),
        ("/dev/keyed", "k-everywhere-0123456789a", 403),
        ("/dev/keyed", "k-everywhere-0123456789ab", 200),
        ("/prod/keyed", "k-everywhere-0123456789ab", 200),
        // A key in a usage plan is valid on the plan's stages only.
        ("/dev/keyed", "k-prod-only-0123456789ab", 403),
        ("/prod/keyed", "k-prod-only-0123456789ab", 200),
    ];
    for (uri, value, expected) in cases {
        let (status, body) = f.call("GET", uri, &key(value)).await;
        assert_eq!(status, expected, "{uri} with {value}: {body}");
        if expected == 403 {
            assert_eq!(body, forbidden);
        }
    }
    // Routes without apiKeyRequired ignore keys.
    assert_eq!(f.call("GET", "/dev/open", &key("nonsense")).await.0, 200);
}

#[tokio::test]
async fn the_authorizer_may_supply_the_api_key() {
    let f = Fixture::new();
    let uri = "/dev/keyed/by-authorizer";
    let (status, body) = f
        .with_script("GET", uri, "allow;key=k-everywhere-0123456789ab")
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = f.with_script("GET", uri, "allow;key=k-not-a-key").await;
    assert_eq!(status, 403);
    // Without usageIdentifierKey the header counts.
    let (status, _) = f
        .call(
            "GET",
            uri,
            &[
                ("authorization", "allow"),
                ("x-api-key", "k-everywhere-0123456789ab"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = f.with_script("GET", uri, "allow").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_key_the_authorizer_supplies_meets_its_usage_plans_quota() {
    // AWS: with apiKeySource AUTHORIZER, usageIdentifierKey is the key the usage plan meters.
    let f = Fixture::edited(|definition| {
        let plans =
            "name: x\nusagePlans:\n  basic: { stages: [prod], quota: { limit: 2, period: DAY } }\n";
        definition.usage_plans = ApiDefinition::from_str_as(plans, Format::Yaml)
            .unwrap()
            .usage_plans;
    });
    let uri = "/prod/keyed/by-authorizer";
    let script = "allow;key=k-prod-only-0123456789ab";
    for _ in 0..2 {
        let (status, body) = f.with_script("GET", uri, script).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        f.with_script("GET", uri, script).await,
        (429, message(r#"{"message":"Limit Exceeded"}"#))
    );
}

#[test]
fn bad_authorizer_definitions_name_their_key() {
    let base = std::fs::read_to_string(api_file()).unwrap();
    let cases = [
        (
            "identitySource: $request.header.Authorization\n    identityValidationExpression",
            "identitySource: $request.querystring.t\n    identityValidationExpression",
            "authorizers.token.identitySource",
        ),
        ("resultTtlSeconds: 1", "resultTtlSeconds: 3601", "authorizers.short.resultTtlSeconds"),
        ("responseFormat: simple", "responseFormat: fancy", "authorizers.simple.responseFormat"),
        ("\"Bearer [^ ]+\"", "\"Bearer [\"", "authorizers.token.identityValidationExpression"),
        (
            "GET /open: { integration: echo-fn }",
            "GET /open: { integration: echo-fn, authorizer: iam, authorizationScopes: [a] }",
            "routes.\"GET /open\".authorizationScopes",
        ),
        (
            "GET /open: { integration: echo-fn }",
            "GET /open: { integration: echo-fn, authorizer: nope }",
            "routes.\"GET /open\".authorizer",
        ),
        (
            "identitySource: [$request.header.Authorization]\n    resultTtlSeconds: 1",
            "identitySource: [$request.header.Authorization]\n    resultTtlSeconds: 1\n    issuer: x",
            "authorizers.short.issuer",
        ),
        ("plugin: policy\n    identitySource: [$request.header.Authorization]\n  token", "plugin: echo\n    identitySource: [$request.header.Authorization]\n  token", "authorizers.iam.plugin"),
        ("accountId: \"111122223333\"", "accountId: \"1111:2222\"", "accountId"),
    ];
    for (from, to, key_path) in cases {
        assert!(base.contains(from), "fixture changed: {from}");
        let text = base.replacen(from, to, 1);
        let definition = ApiDefinition::from_str_as(&text, Format::Yaml);
        let error = definition
            .and_then(|d| {
                Gateway::builder(d)
                    .base_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("e2e"))
                    .build()
            })
            .expect_err(to);
        let shown = error.to_string();
        assert!(shown.contains(&format!("{key_path}:")), "{to}: {shown}");
    }
}
