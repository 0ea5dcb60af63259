//! The response cache (REST APIs) end to end: the `portico-serve` binary over real HTTP, in
//! front of an upstream server this file starts (hyper, on loopback) that numbers and counts
//! every call, so that each test proves whether the integration ran. Hits and misses, key
//! parameters, callers kept apart, TTL expiry, `Cache-Control: max-age=0` allowed and refused,
//! the admin port's flush, the size bound, one call for concurrent misses, methods other than
//! GET, canaries, the access log's `$context.cacheHit` and the hit and miss metrics.
//!
//! AWS's behaviour is from its developer guide, api-gateway-caching.md ("Enable API caching to
//! enhance responsiveness"), cited beside each expectation; Portico's own choices are marked.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use portico_tests::{http1_server, JwtKeys, ServeProcess};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

/// A loopback HTTP/1.1 server that numbers every call (`x-call`, and `call` in the JSON body)
/// and counts calls by path and query. `/slow...` answers after 400 ms, `/big/N...` with N
/// bytes, `/status/C` with status C; anything else 200 with `{"call","path","query"}`. The
/// fleet's cache tests (cache_fleet.rs) use it too.
pub(crate) struct Upstream {
    pub(crate) addr: SocketAddr,
    calls: Arc<Mutex<HashMap<String, usize>>>,
    accept: JoinHandle<()>,
}

impl Upstream {
    pub(crate) async fn start() -> Upstream {
        let calls = Arc::new(Mutex::new(HashMap::new()));
        let numbers = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let (addr, accept) = http1_server(move |request| {
            answer(request, Arc::clone(&counted), Arc::clone(&numbers))
        })
        .await;
        Upstream {
            addr,
            calls,
            accept,
        }
    }

    /// How often `path_and_query` (`/items?page=1`) was called.
    pub(crate) fn calls(&self, path_and_query: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .get(path_and_query)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn answer(
    request: Request<Incoming>,
    counted: Arc<Mutex<HashMap<String, usize>>>,
    numbers: Arc<AtomicUsize>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let key = match query.as_str() {
        "" => path.clone(),
        q => format!("{path}?{q}"),
    };
    *counted.lock().unwrap().entry(key).or_default() += 1;
    let call = numbers.fetch_add(1, Ordering::SeqCst) + 1;
    if path.starts_with("/slow") {
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let segment = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.split('/').next())
            .and_then(|n| n.parse::<usize>().ok())
    };
    let (status, body) = if let Some(n) = segment("/big/") {
        (200, Bytes::from(vec![b'a'; n]))
    } else if let Some(code) = segment("/status/") {
        (code as u16, Bytes::from(format!("{{\"call\":{call}}}")))
    } else {
        let body = json!({ "call": call, "path": path, "query": query });
        (200, Bytes::from(body.to_string()))
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response
        .headers_mut()
        .insert("x-call", call.to_string().parse().expect("a number"));
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().expect("a type"));
    Ok(response)
}

const ISSUER: &str = "https://issuer.example/cache";

/// The API: REST, every route an `http_proxy` to the upstream (`HOST`). Stages: `prod` (AWS's
/// defaults: authorization required for `max-age=0`, a warning header otherwise), `strict`
/// (`FAIL_WITH_403`), `open` (no authorization required), `small` (a 1 MB cache), `nocache`,
/// and two stages with a canary taking half the requests, which shares the stage's cache or not.
const API: &str = r#"name: cache-e2e
apiId: cacheapi
protocol: rest
plugins:
  policy: { path: "DIST/policy_authorizer.wasm" }
authorizers:
  policy:
    type: token
    plugin: policy
    identitySource: [$request.header.Authorization]
  jwt:
    type: jwt
    identitySource: $request.header.Authorization
    issuer: ISSUER
    audience: [client-1]
    jwks: { path: jwks.json }
routes:
  GET /items:
    integration: { type: http_proxy, uri: "http://HOST/items" }
    cacheKeyParameters: [method.request.querystring.page]
  GET /items/{id}:
    integration: { type: http_proxy, uri: "http://HOST/items/{id}" }
    cacheKeyParameters: [method.request.path.id]
  GET /tenant:
    integration: { type: http_proxy, uri: "http://HOST/tenant" }
    cacheKeyParameters: [method.request.header.X-Tenant]
  GET /mine:
    integration: { type: http_proxy, uri: "http://HOST/mine" }
    authorizer: jwt
  GET /guarded:
    integration: { type: http_proxy, uri: "http://HOST/guarded" }
    authorizer: policy
  GET /short:
    integration: { type: http_proxy, uri: "http://HOST/short" }
  GET /slow:
    integration: { type: http_proxy, uri: "http://HOST/slow" }
  GET /big/{n}:
    integration: { type: http_proxy, uri: "http://HOST/big/{n}" }
    cacheKeyParameters: [method.request.path.n, method.request.querystring.i]
  GET /status/{code}:
    integration: { type: http_proxy, uri: "http://HOST/status/{code}" }
    cacheKeyParameters: [method.request.path.code]
  POST /search:
    integration: { type: http_proxy, uri: "http://HOST/search" }
  POST /plain:
    integration: { type: http_proxy, uri: "http://HOST/plain" }
stages:
  prod:
    cache: { enabled: true }
    routeSettings:
      GET /short: { caching: { ttlSeconds: 1 } }
      POST /search: { caching: { enabled: true } }
    accessLog:
      format: '{"stage":"$context.stage","route":"$context.routeKey","status":"$context.status","cacheHit":"$context.cacheHit","requestId":"$context.requestId"}'
  strict:
    cache: { enabled: true, unauthorizedCacheControlHeaderStrategy: FAIL_WITH_403 }
  quiet:
    cache: { enabled: true, unauthorizedCacheControlHeaderStrategy: SUCCEED_WITHOUT_RESPONSE_HEADER }
  open:
    cache: { enabled: true, requireAuthorizationForCacheControl: false }
  small:
    cache: { enabled: true, sizeMb: 1 }
  nocache:
    accessLog:
      format: '{"stage":"$context.stage","route":"$context.routeKey","status":"$context.status","cacheHit":"$context.cacheHit","requestId":"$context.requestId"}'
  apart:
    cache: { enabled: true }
    canary: { percentTraffic: 50 }
  shared:
    cache: { enabled: true }
    canary: { percentTraffic: 50, useStageCache: true }
"#;

/// portico-serve over the API, in front of its upstream, with an admin port and an access log.
struct Fixture {
    upstream: Upstream,
    process: ServeProcess,
    client: reqwest::Client,
    keys: JwtKeys,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// What a test looks at in an answer.
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

impl Answer {
    /// The upstream's number for the call that made this answer.
    fn call(&self) -> usize {
        self.headers
            .get("x-call")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no x-call: {} {}", self.status, self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Fixture {
    async fn start() -> Fixture {
        let upstream = Upstream::start().await;
        let keys = JwtKeys::generate();
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("jwks.json"), keys.jwks().to_string()).expect("jwks");
        let api = dir.path().join("api.yaml");
        let text = API
            .replace("HOST", &upstream.addr.to_string())
            .replace("ISSUER", ISSUER)
            .replace(
                "DIST",
                &portico_tests::plugins_dist(&["policy_authorizer"])
                    .display()
                    .to_string(),
            );
        std::fs::write(&api, text).expect("write the API");
        let log = dir.path().join("access.log");
        let process = ServeProcess::start_logged(api.clone(), log.clone()).await;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        Fixture {
            upstream,
            process,
            client,
            keys,
            log,
            _dir: dir,
        }
    }

    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.process.base()));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("an answer");
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.expect("a body"),
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, &[]).await
    }

    /// A token for subject `sub`, valid for an hour.
    fn token(&self, sub: &str) -> String {
        let now = portico_tests::unix_now();
        let claims =
            json!({ "iss": ISSUER, "aud": "client-1", "sub": sub, "iat": now, "exp": now + 3600 });
        format!("Bearer {}", self.keys.rs256(&claims))
    }

    fn admin(&self) -> &str {
        self.process.admin().expect("an admin port")
    }

    /// The access log's lines so far.
    fn log_lines(&self) -> Vec<Value> {
        portico_tests::settled_read(&self.log)
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .collect()
    }

    /// The sum of `metric`'s series whose labels include each of `labels`.
    async fn metric(&self, metric: &str, labels: &[&str]) -> f64 {
        crate::metrics::metrics_text(&self.client, self.admin())
            .await
            .lines()
            .filter(|line| line.starts_with(&format!("{metric}{{")))
            .filter(|line| labels.iter().all(|label| line.contains(label)))
            .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_misses_key_parameters_ttl_and_methods() {
    let f = Fixture::start().await;

    // A miss calls the integration; the same request again is answered from the cache.
    let first = f.get("/prod/items?page=1").await;
    assert_eq!(first.status, 200, "{}", first.body);
    let again = f.get("/prod/items?page=1").await;
    assert_eq!(
        (again.call(), again.body.as_str()),
        (first.call(), first.body.as_str())
    );
    assert_eq!(f.upstream.calls("/items?page=1"), 1);
    // Each answer, cached or not, has its own request id (REST: x-amzn-RequestId).
    let id = |a: &Answer| {
        a.header("x-amzn-RequestId")
            .expect("a request id")
            .to_owned()
    };
    assert_ne!(id(&first), id(&again));

    // api-gateway-caching.md: with `type` in the cache key "the responses from GET
    // /users?type=admin are cached separately from those from GET /users?type=regular".
    let page2 = f.get("/prod/items?page=2").await;
    assert_ne!(page2.call(), first.call());
    assert_eq!(f.upstream.calls("/items?page=2"), 1);
    // ... and a parameter outside the key is ignored: "GET /users?type=admin&department=A"
    // answers "GET /users?type=admin&department=B" from the cache.
    let other = f.get("/prod/items?page=1&sort=desc").await;
    assert_eq!(other.call(), first.call());
    assert_eq!(f.upstream.calls("/items?page=1&sort=desc"), 0);

    // Path and header parameters key answers too.
    let (one, two) = (f.get("/prod/items/1").await, f.get("/prod/items/2").await);
    assert_ne!(one.call(), two.call());
    assert_eq!(f.get("/prod/items/1").await.call(), one.call());
    let tenant = |t: &'static str| {
        let f = &f;
        async move { f.send("GET", "/prod/tenant", &[("x-tenant", t)]).await }
    };
    let (a, b) = (tenant("a").await, tenant("b").await);
    assert_ne!(a.call(), b.call());
    assert_eq!(tenant("a").await.call(), a.call());
    assert_eq!(f.upstream.calls("/tenant"), 2);

    // TTL: a route's own (routeSettings caching.ttlSeconds: 1) runs out.
    let short = f.get("/prod/short").await;
    assert_eq!(f.get("/prod/short").await.call(), short.call());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let expired = f.get("/prod/short").await;
    assert_ne!(expired.call(), short.call());
    assert_eq!(f.upstream.calls("/short"), 2);

    // Portico's choice (AWS documents none): only 2xx answers are kept.
    for _ in 0..2 {
        assert_eq!(f.get("/prod/status/500").await.status, 500);
        assert_eq!(f.get("/prod/status/404").await.status, 404);
    }
    assert_eq!(f.upstream.calls("/status/500"), 2);
    assert_eq!(f.upstream.calls("/status/404"), 2);

    // api-gateway-caching.md: "only GET methods have caching enabled by default ... You can
    // enable caching for other methods by overriding method settings."
    for _ in 0..2 {
        assert_eq!(f.send("POST", "/prod/plain", &[]).await.status, 200);
        assert_eq!(f.send("POST", "/prod/search", &[]).await.status, 200);
    }
    assert_eq!(f.upstream.calls("/plain"), 2);
    assert_eq!(f.upstream.calls("/search"), 1);

    // A stage without a cache calls the integration every time.
    for _ in 0..2 {
        assert_eq!(f.get("/nocache/items?page=1").await.status, 200);
    }
    assert_eq!(f.upstream.calls("/items?page=1"), 3);

    // The access log: $context.cacheHit (Portico's: AWS has only the metrics), `-` where no
    // cache was consulted; each line has its request's own id.
    let lines = f.log_lines();
    let hits = |stage: &str, value: &str| {
        lines
            .iter()
            .filter(|l| l["stage"] == stage && l["cacheHit"] == value)
            .count()
    };
    // prod: hits: page=1 (2), items/1, tenant a, short, search; misses: page=1, page=2,
    // items/1, items/2, tenant a, tenant b, short (2), status (4), search.
    assert_eq!(
        (hits("prod", "true"), hits("prod", "false")),
        (6, 13),
        "{lines:#?}"
    );
    assert_eq!(
        hits("prod", "-"),
        2,
        "POST /plain is not cached: {lines:#?}"
    );
    assert_eq!((hits("nocache", "-"), hits("nocache", "true")), (2, 0));
    let ids: std::collections::HashSet<&str> = lines
        .iter()
        .filter_map(|l| l["requestId"].as_str())
        .collect();
    assert_eq!(ids.len(), lines.len());

    // CloudWatch's CacheHitCount and CacheMissCount, by route.
    let route = r#"route="GET /items""#;
    assert_eq!(
        f.metric("portico_cache_hits_total", &[route, r#"stage="prod""#])
            .await,
        2.0
    );
    assert_eq!(
        f.metric("portico_cache_misses_total", &[route, r#"stage="prod""#])
            .await,
        2.0
    );
    assert_eq!(
        f.metric("portico_cache_hits_total", &[r#"stage="prod""#])
            .await,
        6.0
    );
    assert_eq!(
        f.metric("portico_cache_misses_total", &[r#"stage="prod""#])
            .await,
        13.0
    );
    assert_eq!(
        f.metric("portico_cache_misses_total", &[r#"stage="nocache""#])
            .await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_of_a_route_with_an_authorizer_are_kept_apart() {
    let f = Fixture::start().await;
    let (ann, bob) = (f.token("ann"), f.token("bob"));
    let mine = |token: &str| {
        let token = token.to_owned();
        let f = &f;
        async move {
            f.send("GET", "/prod/mine", &[("authorization", &token)])
                .await
        }
    };
    let first = mine(&ann).await;
    assert_eq!(first.status, 200, "{}", first.body);
    // Portico's rule, stricter than AWS's (which keys only on cacheKeyParameters): a route
    // with an authorizer caches per caller, so bob never gets ann's answer.
    let for_bob = mine(&bob).await;
    assert_ne!(for_bob.call(), first.call());
    assert_eq!(mine(&ann).await.call(), first.call());
    assert_eq!(mine(&bob).await.call(), for_bob.call());
    // Another token of ann's (the same subject) shares her answer.
    let now = portico_tests::unix_now();
    let other_token = format!(
        "Bearer {}",
        f.keys
            .es256(&json!({ "iss": ISSUER, "aud": "client-1", "sub": "ann", "exp": now + 60 }))
    );
    assert_eq!(mine(&other_token).await.call(), first.call());
    assert_eq!(f.upstream.calls("/mine"), 2);
    // The authorizer still runs first: no token, no answer from the cache.
    let refused = f.get("/prod/mine").await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(f.upstream.calls("/mine"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_zero_refreshes_only_for_callers_who_may() {
    let f = Fixture::start().await;
    let fresh = [("cache-control", "max-age=0")];

    // `open` (requireAuthorizationForCacheControl: false): api-gateway-caching.md, "If you
    // don't impose an InvalidateCache policy ..., any client can invalidate the API cache";
    // the answer comes "directly from the integration endpoint instead of the cache ... This
    // replaces the existing cache entry".
    let cached = f.get("/open/items?page=1").await;
    let refreshed = f.send("GET", "/open/items?page=1", &fresh).await;
    assert_ne!(refreshed.call(), cached.call());
    assert_eq!(refreshed.header("warning"), None);
    assert_eq!(f.get("/open/items?page=1").await.call(), refreshed.call());

    // `prod`: authorization required (AWS's recorded default) and this caller has no
    // InvalidateCache permission; SUCCEED_WITH_RESPONSE_HEADER (the recorded default)
    // "process[es] the request and add[s] a warning header in the response". The header's
    // name and text are Portico's choice: AWS documents neither.
    let cached = f.get("/prod/items?page=1").await;
    let warned = f.send("GET", "/prod/items?page=1", &fresh).await;
    assert_eq!((warned.status, warned.call()), (200, cached.call()));
    assert_eq!(
        warned.header("warning"),
        Some("199 - \"Cache-Control: max-age=0 ignored: the caller may not invalidate the cache\"")
    );
    // A JWT carries no IAM policy: its caller may not invalidate either.
    let token = f.token("ann");
    let auth = [
        ("cache-control", "max-age=0"),
        ("authorization", token.as_str()),
    ];
    let mine = f
        .send("GET", "/prod/mine", &[("authorization", token.as_str())])
        .await;
    let again = f.send("GET", "/prod/mine", &auth).await;
    assert_eq!(again.call(), mine.call());
    assert!(again.header("warning").is_some());

    // A custom authorizer whose policy allows `execute-api:InvalidateCache` on the method
    // (api-gateway-caching.md, "Invalidate an API Gateway cache entry": the example policy's
    // `"Action": ["execute-api:InvalidateCache"]` on the method ARN) refreshes the entry; the
    // same caller without that statement is warned. Both scripts grant the principal `user`,
    // so they share one entry (the key holds the principal, not the token).
    let plain = [("authorization", "allow")];
    let cached = f.send("GET", "/prod/guarded", &plain).await;
    assert_eq!(cached.status, 200, "{}", cached.body);
    let refreshed = f
        .send(
            "GET",
            "/prod/guarded",
            &[
                ("authorization", "allow;invalidate"),
                ("cache-control", "max-age=0"),
            ],
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_ne!(refreshed.call(), cached.call());
    assert_eq!(refreshed.header("warning"), None);
    // "This replaces the existing cache entry": the next plain read gets the refreshed answer.
    assert_eq!(
        f.send("GET", "/prod/guarded", &plain).await.call(),
        refreshed.call()
    );
    let refused = f
        .send(
            "GET",
            "/prod/guarded",
            &[("authorization", "allow"), ("cache-control", "max-age=0")],
        )
        .await;
    assert_eq!(refused.call(), refreshed.call());
    assert!(refused.header("warning").is_some());

    // SUCCEED_WITHOUT_RESPONSE_HEADER: ignored, silently.
    let cached = f.get("/quiet/items?page=1").await;
    let quiet = f.send("GET", "/quiet/items?page=1", &fresh).await;
    assert_eq!(
        (quiet.call(), quiet.header("warning")),
        (cached.call(), None)
    );

    // FAIL_WITH_403: "returns a 403 Unauthorized response" (the body's text follows those
    // words: no recording shows it), and the integration is not called.
    let cached = f.get("/strict/items?page=1").await;
    let refused = f.send("GET", "/strict/items?page=1", &fresh).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.body, r#"{"message":"Unauthorized"}"#);
    assert_eq!(
        refused.header("x-amzn-ErrorType"),
        Some("AccessDeniedException")
    );
    assert_eq!(f.get("/strict/items?page=1").await.call(), cached.call());
    // Other Cache-Control directives are no request to invalidate.
    let other = f
        .send(
            "GET",
            "/strict/items?page=1",
            &[("cache-control", "no-cache")],
        )
        .await;
    assert_eq!(other.call(), cached.call());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_port_flushes_a_stage() {
    let f = Fixture::start().await;
    let prod = f.get("/prod/items?page=1").await;
    let open = f.get("/open/items?page=1").await;
    assert_eq!(f.get("/prod/items?page=1").await.call(), prod.call());

    // AWS's FlushStageCache, `DELETE /restapis/{id}/stages/{stage}/cache/data`: "the service
    // sends back an HTTP 202 response with an empty HTTP body".
    let flushed = f
        .client
        .delete(format!(
            "{}/apis/cacheapi/stages/prod/cache/data",
            f.admin()
        ))
        .send()
        .await
        .expect("an admin answer");
    assert_eq!(flushed.status(), 202);
    assert_eq!(flushed.text().await.expect("a body"), "");
    let after = f.get("/prod/items?page=1").await;
    assert_ne!(after.call(), prod.call());
    // Another stage's cache is its own.
    assert_eq!(f.get("/open/items?page=1").await.call(), open.call());

    let unknown = f
        .client
        .delete(format!(
            "{}/apis/cacheapi/stages/nope/cache/data",
            f.admin()
        ))
        .send()
        .await
        .expect("an admin answer");
    assert_eq!(unknown.status(), 404);
    let wrong_method = f
        .client
        .get(format!(
            "{}/apis/cacheapi/stages/prod/cache/data",
            f.admin()
        ))
        .send()
        .await
        .expect("an admin answer");
    assert_eq!(wrong_method.status(), 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_megabyte_cache_keeps_the_latest_answers() {
    let f = Fixture::start().await;
    // 30 answers of 100 KB (3 MB) through a 1 MB cache: the least recently used go.
    for i in 0..30 {
        let answer = f.get(&format!("/small/big/100000?i={i}")).await;
        assert_eq!((answer.status, answer.body.len()), (200, 100_000));
    }
    let last = f.get("/small/big/100000?i=29").await;
    assert_eq!(
        f.upstream.calls("/big/100000?i=29"),
        1,
        "the latest is kept"
    );
    assert_eq!(last.body.len(), 100_000);
    let first = f.get("/small/big/100000?i=0").await;
    assert_eq!(first.status, 200);
    assert_eq!(
        f.upstream.calls("/big/100000?i=0"),
        2,
        "the earliest is gone"
    );

    // api-gateway-caching.md: "The maximum size of a response that can be cached is 1048576
    // bytes."
    for _ in 0..2 {
        assert_eq!(f.get("/prod/big/1048577").await.body.len(), 1_048_577);
        assert_eq!(f.get("/prod/big/1048576").await.body.len(), 1_048_576);
    }
    assert_eq!(f.upstream.calls("/big/1048577"), 2);
    assert_eq!(f.upstream.calls("/big/1048576"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_on_one_key_call_the_integration_once() {
    let f = Arc::new(Fixture::start().await);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let f = Arc::clone(&f);
        tasks.spawn(async move { f.get("/prod/slow").await });
    }
    let mut calls = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.expect("a client task");
        assert_eq!(answer.status, 200, "{}", answer.body);
        calls.push(answer.call());
    }
    // Portico's (AWS documents nothing on it): one integration call, its answer for all.
    assert_eq!(f.upstream.calls("/slow"), 1);
    assert!(calls.iter().all(|c| *c == calls[0]), "{calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_is_cached_apart_unless_it_uses_the_stage_cache() {
    let f = Fixture::start().await;
    // Half the requests go to the canary. `apart` (useStageCache: false, AWS's recorded
    // default, LocalStack test_apigateway_canary.snapshot.json): the stage and the canary each
    // miss once. `shared` (true): one miss in all. 60 requests leave either side unvisited
    // with a chance of 2^-59.
    for _ in 0..60 {
        assert_eq!(f.get("/apart/items?page=apart").await.status, 200);
        assert_eq!(f.get("/shared/items?page=shared").await.status, 200);
    }
    assert_eq!(f.upstream.calls("/items?page=apart"), 2);
    assert_eq!(f.upstream.calls("/items?page=shared"), 1);
    let canary_hits = f
        .metric(
            "portico_cache_hits_total",
            &[r#"stage="shared""#, r#"canary="true""#],
        )
        .await;
    assert!(
        canary_hits > 0.0,
        "the canary answered from the stage's cache"
    );
}
