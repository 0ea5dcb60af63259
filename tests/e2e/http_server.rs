//! Real HTTP through `portico-serve` on a loopback port: the users API on both stages, its
//! request validation, CORS, access log and metrics, unknown routes and stages, the 10 MB limit
//! (declared and streamed), start-up errors and shutdown.

use std::path::PathBuf;
use std::time::Duration;

use portico::metric;
use portico_serve::{Server, StartError};
use portico_tests::{read_http_answer, Captured, RunningServer};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::metrics::{metrics_text, sample, server_with_admin};

const LIMIT: usize = portico::MAX_BODY_BYTES;

fn users_api() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/users-api/api.yaml")
}

async fn send(request: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, String) {
    let response = request.send().await.expect("response");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("body"))
}

fn json_body(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A token from `scripts/demo-token`, as the README tells users to mint one.
fn demo_token(sub: &str) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/demo-token");
    let output = std::process::Command::new(script)
        .arg(sub)
        .output()
        .expect("scripts/demo-token runs");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn the_demo_protects_whoami_with_the_token_authorizer() {
    let server = RunningServer::start(&users_api()).await;
    let client = reqwest::Client::new();
    let url = format!("{}/dev/whoami", server.base);
    let (status, _, body) = send(client.get(&url)).await;
    assert_eq!(
        (status, body.as_str()),
        (401, r#"{"message":"Unauthorized"}"#)
    );
    let (status, _, _) = send(client.get(&url).bearer_auth("not.a.token")).await;
    assert_eq!(status, 401);
    let token = demo_token("user-77");
    let (status, _, body) = send(client.get(&url).bearer_auth(&token)).await;
    assert_eq!(status, 200, "{body}");
    let body = json_body(&body);
    assert_eq!(body["authorizer"]["principalId"], "user-77");
    assert_eq!(body["authorizer"]["context"]["userId"], "user-77");
    assert_eq!(body["authorizer"]["context"]["role"], "admin");
    // A token signed with another secret is refused.
    let (head, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{head}.{}", "A".repeat(43));
    let (status, _, _) = send(client.get(&url).bearer_auth(forged)).await;
    assert_eq!(status, 401);
    server.shutdown().await;
}

#[tokio::test]
async fn users_api_answers_on_both_stages() {
    let server = RunningServer::start(&users_api()).await;
    let client = reqwest::Client::new();
    for (stage, table, level) in [
        ("dev", "dev-Users", "DEBUG"),
        ("prod", "prod-Users", "WARN"),
    ] {
        let base = format!("{}/{stage}", server.base);

        let (status, headers, body) = send(client.get(format!("{base}/health"))).await;
        assert_eq!(status, 200);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["apigw-requestid"].len(), 16);
        assert_eq!(
            json_body(&body),
            json!({"status": "ok", "table": table, "logLevel": level})
        );

        let (status, _, body) = send(client.get(format!("{base}/users?limit=5"))).await;
        assert_eq!(status, 200);
        assert_eq!(
            json_body(&body),
            json!({"users": [], "count": 0}),
            "{stage} starts empty"
        );

        let email = format!("{stage}@example.com");
        let (status, headers, body) = send(
            client
                .post(format!("{base}/users"))
                .body(json!({"name": stage, "email": email}).to_string()),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(headers["content-type"], "application/json");
        let user = json_body(&body)["user"].clone();
        let id = user["userId"].as_str().expect("userId").to_owned();

        let (status, _, body) = send(client.get(format!("{base}/users/{id}"))).await;
        assert_eq!(status, 200);
        assert_eq!(json_body(&body)["user"], user);

        let (status, _, body) = send(client.get(format!("{base}/users"))).await;
        assert_eq!(status, 200);
        assert_eq!(json_body(&body)["count"], 1, "each stage has its own table");

        let (status, _, body) = send(client.get(format!("{base}/users/u-1"))).await;
        assert_eq!(status, 404);
        assert_eq!(json_body(&body), json!({"error": "User not found"}));

        // A body without a name is refused by the gateway's CreateUser model.
        let (status, _, body) = send(
            client
                .post(format!("{base}/users"))
                .body(r#"{"email":"x@example.com"}"#),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(json_body(&body), json!({"message": "Invalid request body"}));

        // Trailing slash is ignored; a query string never takes part in routing.
        let (status, _, _) = send(client.get(format!("{base}/health/?x=/users"))).await;
        assert_eq!(status, 200);
    }
    server.shutdown().await;
}

/// Bodies the demo's CreateUser model refuses, one broken rule each.
const INVALID_USERS: &[&str] = &[
    r#"{"email":"ann@example.com"}"#,
    r#"{"name":"Ann"}"#,
    r#"{"name":"Ann","email":"not-an-email"}"#,
    r#"{"name":"","email":"ann@example.com"}"#,
    r#"{"name":7,"email":"ann@example.com"}"#,
    r#"{"name":"Ann","email":"ann@example.com","age":151}"#,
    r#"{"name":"Ann","email":"ann@example.com","age":"30"}"#,
    r#"{"name":"Ann","email":"ann@example.com","role":"owner"}"#,
    r#"[{"name":"Ann","email":"ann@example.com"}]"#,
    "not json",
    "",
];

#[tokio::test]
async fn invalid_user_bodies_are_refused_over_http_and_nothing_is_stored() {
    let server = RunningServer::start(&users_api()).await;
    let client = reqwest::Client::new();
    for path in ["/dev/users", "/dev/py/users"] {
        for body in INVALID_USERS {
            let (status, headers, answer) = send(
                client
                    .post(format!("{}{path}", server.base))
                    .header("content-type", "application/json")
                    .body(*body),
            )
            .await;
            assert_eq!(
                (status, answer.as_str()),
                (400, r#"{"message":"Invalid request body"}"#),
                "POST {path} {body}"
            );
            assert_eq!(headers["content-type"], "application/json");
            assert!(headers.contains_key("apigw-requestid"));
        }
    }
    // Neither plugin ran: the table both of them serve is still empty.
    let (status, _, body) = send(client.get(format!("{}/dev/users", server.base))).await;
    assert_eq!(status, 200);
    assert_eq!(json_body(&body), json!({"users": [], "count": 0}));

    // Bodies the model accepts, its optional members included, reach the plugins.
    for (path, body) in [
        (
            "/dev/users",
            r#"{"name":"Ann","email":"ann@example.com","age":30,"role":"editor"}"#,
        ),
        (
            "/dev/py/users",
            r#"{"name":"Bob","email":"bob@example.com"}"#,
        ),
    ] {
        let (status, _, answer) =
            send(client.post(format!("{}{path}", server.base)).body(body)).await;
        assert_eq!(status, 201, "POST {path}: {answer}");
    }
    let (status, _, body) = send(client.get(format!("{}/dev/users", server.base))).await;
    assert_eq!(status, 200);
    let body = json_body(&body);
    let mut names: Vec<&str> = body["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|user| user["name"].as_str().expect("name"))
        .collect();
    names.sort_unstable();
    assert_eq!((names, &body["count"]), (vec!["Ann", "Bob"], &json!(2)));
    server.shutdown().await;
}

/// The origin the demo's `cors` section allows: a web front end in development.
const FRONT_END: &str = "http://localhost:3000";

/// The `access-control-*` headers of an answer, sorted by name.
fn cors_headers(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("access-control-"))
        .map(|(name, value)| {
            let value = value.to_str().expect("a text value");
            (name.as_str().to_owned(), value.to_owned())
        })
        .collect();
    found.sort();
    found
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

#[tokio::test]
async fn the_local_front_end_passes_preflights_and_reads_answers() {
    let server = RunningServer::start(&users_api()).await;
    let client = reqwest::Client::new();
    let url = format!("{}/dev/users", server.base);

    let (status, headers, body) = send(
        client
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", FRONT_END)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "Content-Type, Authorization",
            ),
    )
    .await;
    assert_eq!(status, 204);
    assert!(body.is_empty(), "{body}");
    assert_eq!(
        cors_headers(&headers),
        pairs(&[
            ("access-control-allow-headers", "authorization,content-type"),
            ("access-control-allow-methods", "GET,POST,PUT,DELETE"),
            ("access-control-allow-origin", FRONT_END),
            ("access-control-max-age", "600"),
        ])
    );
    assert_eq!(headers["vary"], "origin");

    // The actual requests: the front end may read the answer and its request id.
    let readable = pairs(&[
        ("access-control-allow-origin", FRONT_END),
        ("access-control-expose-headers", "apigw-requestid"),
    ]);
    let (status, headers, body) = send(client.get(&url).header("origin", FRONT_END)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_body(&body), json!({"users": [], "count": 0}));
    assert_eq!(cors_headers(&headers), readable);
    assert_eq!(headers["vary"], "origin");
    // The gateway's own answers too, so the front end can show a validation error.
    let (status, headers, body) = send(
        client
            .post(&url)
            .header("origin", FRONT_END)
            .header("content-type", "application/json")
            .body(r#"{"name":"Ann"}"#),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (400, r#"{"message":"Invalid request body"}"#)
    );
    assert_eq!(cors_headers(&headers), readable);
    server.shutdown().await;
}

#[tokio::test]
async fn other_origins_get_no_cors_headers_from_the_demo() {
    let server = RunningServer::start(&users_api()).await;
    let client = reqwest::Client::new();
    let url = format!("{}/dev/users", server.base);
    for origin in [
        "http://evil.example",
        "http://localhost:3001",
        "https://localhost:3000",
        "http://localhost:3000.evil.example",
    ] {
        let (status, headers, _) = send(
            client
                .request(reqwest::Method::OPTIONS, &url)
                .header("origin", origin)
                .header("access-control-request-method", "GET"),
        )
        .await;
        assert_eq!(status, 204, "{origin}");
        assert_eq!(cors_headers(&headers), pairs(&[]), "{origin}");
        assert_eq!(headers["vary"], "origin");

        let (status, headers, _) = send(client.get(&url).header("origin", origin)).await;
        assert_eq!(status, 200, "{origin}");
        assert_eq!(cors_headers(&headers), pairs(&[]), "{origin}");
    }
    server.shutdown().await;
}

/// From the admin port's `/metrics`: prod's `GET /hello/python` requests, their latency and
/// integration latency samples, then prod's requests that matched no route and their 4xx errors.
/// The recorder is process-wide and other tests serve the demo too, so the caller compares
/// counts before and after. Only `demo_requests_are_access_logged_and_counted_on_the_admin_port`
/// sends these requests.
async fn demo_counts(client: &reqwest::Client, admin: &str) -> [f64; 5] {
    let hello = r#"api="users-api",stage="prod",route="GET /hello/python",canary="false""#;
    let no_route = r#"api="users-api",stage="prod",route="-",canary="false""#;
    let text = metrics_text(client, admin).await;
    let value = |name: &str, labels: &str| sample(&text, name, labels).unwrap_or(0.0);
    [
        value(metric::COUNT, hello),
        value(&format!("{}_count", metric::LATENCY), hello),
        value(&format!("{}_count", metric::INTEGRATION_LATENCY), hello),
        value(metric::COUNT, no_route),
        value(metric::ERRORS_4XX, no_route),
    ]
}

#[tokio::test]
async fn demo_requests_are_access_logged_and_counted_on_the_admin_port() {
    let (server, admin) = server_with_admin(&users_api()).await;
    let (captured, _guard) = Captured::start();
    let server = RunningServer::run(server);
    let client = reqwest::Client::new();
    let before = demo_counts(&client, &admin).await;

    let (status, headers, body) =
        send(client.get(format!("{}/prod/hello/python", server.base))).await;
    assert_eq!(status, 200, "{body}");
    let hello_id = headers["apigw-requestid"].to_str().unwrap().to_owned();
    let (status, headers, _) = send(client.get(format!("{}/prod/nope", server.base))).await;
    assert_eq!(status, 404);
    let missing_id = headers["apigw-requestid"].to_str().unwrap().to_owned();

    let after = demo_counts(&client, &admin).await;
    let delta: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    assert_eq!(delta, [1.0, 1.0, 1.0, 1.0, 1.0], "{before:?} -> {after:?}");

    let lines = captured.lines();
    assert_eq!(lines.len(), 2, "{}", captured.text());
    let ok = &lines[0];
    assert_eq!(ok["requestId"], hello_id.as_str());
    assert_eq!(ok["ip"], "127.0.0.1");
    assert_eq!(ok["httpMethod"], "GET");
    assert_eq!(ok["path"], "/prod/hello/python");
    assert_eq!(ok["routeKey"], "GET /hello/python");
    assert_eq!(ok["stage"], "prod");
    assert_eq!(ok["status"], "200");
    assert_eq!(ok["responseLength"], body.len().to_string().as_str());
    for latency in ["responseLatency", "integrationLatency"] {
        let value = ok[latency].as_str().expect(latency);
        assert!(value.parse::<u64>().is_ok(), "{latency}: {value}");
    }
    assert_eq!(
        (&ok["principalId"], &ok["errorType"]),
        (&json!("-"), &json!("-"))
    );
    assert!(ok["requestTime"]
        .as_str()
        .expect("requestTime")
        .ends_with(" +0000"));
    let missing = &lines[1];
    assert_eq!(missing["requestId"], missing_id.as_str());
    assert_eq!(missing["routeKey"], "-");
    assert_eq!(missing["status"], "404");
    assert_eq!(missing["integrationLatency"], "-");
    assert_eq!(missing["errorType"], "RESOURCE_NOT_FOUND");
    server.shutdown().await;
}

/// README's demo key (`examples/users-api/api.yaml`, usage plan `free` on prod: 10 requests a
/// second in bursts of 5, 30 a day).
const DEMO_KEY: &str = "portico-demo-key-0123456789";

#[tokio::test]
async fn the_demo_key_is_throttled_after_its_burst_and_refused_after_its_quota() {
    let (server, admin) = server_with_admin(&users_api()).await;
    let (captured, _guard) = Captured::start();
    let server = RunningServer::run(server);
    let client = reqwest::Client::new();
    let reports = format!("{}/prod/reports", server.base);
    let metrics = |text: &str, name: &str| {
        let labels = r#"api="users-api",stage="prod",route="GET /reports",canary="false""#;
        sample(text, name, labels).unwrap_or(0.0)
    };
    let before = metrics_text(&client, &admin).await;

    // No key: 403, as AWS answers a route that requires one.
    let (status, _, _) = send(client.get(&reports)).await;
    assert_eq!(status, 403);
    // The burst of 5 passes, then 429 until the bucket refills (10 a second).
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let (status, headers, body) =
            send(client.get(&reports).header("x-api-key", DEMO_KEY)).await;
        if status == 429 {
            assert_eq!(body, r#"{"message":"Too Many Requests"}"#);
        } else {
            assert_eq!(status, 200, "{body}");
            // The stage sends the IETF RateLimit headers.
            assert!(headers.contains_key("ratelimit-policy"), "{headers:?}");
        }
        statuses.push(status);
    }
    assert_eq!(&statuses[..5], &[200; 5], "{statuses:?}");
    assert!(statuses[5..].contains(&429), "{statuses:?}");
    let admitted_so_far = statuses.iter().filter(|s| **s == 200).count();

    // Paced under the rate, the key meets its quota of 30 a day.
    let mut admitted = admitted_so_far;
    let mut refusal = None;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(110)).await;
        let (status, _, body) = send(client.get(&reports).header("x-api-key", DEMO_KEY)).await;
        match status {
            200 => admitted += 1,
            429 if body.contains("Limit Exceeded") => {
                refusal = Some(body);
                break;
            }
            429 => {}
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(refusal.as_deref(), Some(r#"{"message":"Limit Exceeded"}"#));
    assert_eq!(admitted, 30);

    // The admin port reads the key's usage in AWS's GetUsage shape.
    let response = client
        .get(&reports)
        .header("x-api-key", DEMO_KEY)
        .send()
        .await
        .unwrap();
    let today = iso_date(response.headers()["date"].to_str().unwrap());
    let (status, _, body) = send(client.get(format!(
        "{admin}/usageplans/free/usage?keyId=demokey001&startDate=2025-01-01&endDate=2026-12-31"
    )))
    .await;
    assert_eq!(status, 400, "two years are too long: {body}");
    let usage = client
        .get(format!(
            "{admin}/usageplans/free/usage?startDate={today}&endDate={today}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(usage.status(), 200);
    let usage = json_body(&usage.text().await.unwrap());
    assert_eq!(
        usage,
        json!({"usagePlanId": "free", "startDate": today, "endDate": today,
               "items": {"demokey001": [[30, 0]]}})
    );
    let (status, _, body) = send(client.get(format!(
        "{admin}/usageplans/gold/usage?startDate=2020-01-01&endDate=2020-01-01"
    )))
    .await;
    assert_eq!(
        (status, body.contains("unknown usage plan")),
        (404, true),
        "{body}"
    );

    let after = metrics_text(&client, &admin).await;
    let throttled = metrics(&after, metric::THROTTLED) - metrics(&before, metric::THROTTLED);
    let refused =
        metrics(&after, metric::QUOTA_EXCEEDED) - metrics(&before, metric::QUOTA_EXCEEDED);
    assert!(
        throttled >= 1.0,
        "portico_throttled_total rose by {throttled}"
    );
    assert_eq!(
        refused, 2.0,
        "the Limit Exceeded answer and the one after it"
    );

    // The access log names the key, its plan and whether the request was throttled.
    let lines = captured.lines();
    let reports_lines: Vec<&Value> = lines
        .iter()
        .filter(|l| l["routeKey"] == "GET /reports")
        .collect();
    let first = reports_lines[1];
    assert_eq!(
        (
            &first["apiKeyId"],
            &first["usagePlanId"],
            &first["throttled"],
            &first["status"]
        ),
        (
            &json!("demokey001"),
            &json!("free"),
            &json!("false"),
            &json!("200")
        )
    );
    let refused_line = reports_lines.last().unwrap();
    assert_eq!(
        (&refused_line["throttled"], &refused_line["errorType"]),
        (&json!("true"), &json!("QUOTA_EXCEEDED"))
    );
    assert_eq!(reports_lines[0]["apiKeyId"], "-");
    server.shutdown().await;
}

/// `2026-11-30` from an HTTP date (`Mon, 30 Nov 2026 10:40:00 GMT`, RFC 9110's IMF-fixdate).
fn iso_date(http_date: &str) -> String {
    let parts: Vec<&str> = http_date.split_whitespace().collect();
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = months.iter().position(|m| *m == parts[2]).expect("a month") + 1;
    format!("{}-{month:02}-{}", parts[3], parts[1])
}

#[tokio::test]
async fn plugins_in_three_languages_answer_over_http() {
    let server = RunningServer::start(&users_api()).await;
    let client = reqwest::Client::new();
    // The demo's Python and JavaScript plugins are warm: one instance serves call after call,
    // its module state (the calls it counts) kept between them.
    for calls in 1..=2 {
        let (status, _, body) = send(client.get(format!("{}/dev/hello/python", server.base))).await;
        assert_eq!(status, 200);
        assert_eq!(json_body(&body)["message"], "hello from python");
        assert_eq!(json_body(&body)["calls"], calls);
        let (status, _, body) = send(client.get(format!("{}/dev/hello/js", server.base))).await;
        assert_eq!(status, 200);
        assert_eq!(json_body(&body)["message"], "hello from javascript");
        assert_eq!(json_body(&body)["calls"], calls);
    }
    let (status, _, body) = send(client.put(format!("{}/prod/files/a/b.txt", server.base))).await;
    assert_eq!(status, 200);
    assert_eq!(body, "hello from wasi:http PUT /files/a/b.txt");
    server.shutdown().await;
}

#[tokio::test]
async fn request_ids_differ_per_request() {
    let server = RunningServer::start(&users_api()).await;
    let client = reqwest::Client::new();
    let (_, first, _) = send(client.get(format!("{}/dev/health", server.base))).await;
    let (_, second, _) = send(client.get(format!("{}/dev/nope", server.base))).await;
    assert_ne!(first["apigw-requestid"], second["apigw-requestid"]);
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_routes_stages_and_methods_are_not_found() {
    let server = RunningServer::start(&users_api()).await;
    let client = reqwest::Client::new();
    let not_found = json!({"message": "Not Found"});
    for (method, path) in [
        ("GET", "/dev/nope"),
        ("DELETE", "/dev/users"),     // the path exists, the method does not
        ("GET", "/staging/health"),   // no such stage, and no $default stage
        ("GET", "/health"),           // no stage in the path, and no $default stage
        ("GET", "/"),                 // likewise
        ("GET", "/dev/users/a/b"),    // {userId} is one segment
        ("GET", "/dev/users/%2e%2e"), // an encoded dot segment never routes
        ("GET", "/dev//health"),      // an empty segment never routes
        ("OPTIONS", "/dev/health"),   // OPTIONS only matches OPTIONS or ANY routes
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let (status, headers, body) =
            send(client.request(method.clone(), format!("{}{path}", server.base))).await;
        assert_eq!(status, 404, "{method} {path}");
        assert_eq!(json_body(&body), not_found, "{method} {path}");
        assert!(headers.contains_key("apigw-requestid"), "{method} {path}");
    }
    // HEAD is a method of its own, as in API Gateway: no HEAD or ANY route, no match.
    let (status, headers, body) = send(client.head(format!("{}/dev/health", server.base))).await;
    assert_eq!(status, 404);
    assert!(body.is_empty());
    assert!(headers.contains_key("apigw-requestid"));
    server.shutdown().await;
}

#[tokio::test]
async fn bodies_over_ten_megabytes_are_refused() {
    let server = RunningServer::start(&users_api()).await;
    let client = reqwest::Client::new();
    let url = format!("{}/dev/users", server.base);

    let (status, _, body) = send(client.post(&url).body(vec![b'x'; LIMIT])).await;
    assert_eq!(
        status, 400,
        "exactly 10 MB is read and reaches the validate phase, which finds no JSON in it"
    );
    assert_eq!(json_body(&body), json!({"message": "Invalid request body"}));

    let (status, headers, body) = send(client.post(&url).body(vec![b'x'; LIMIT + 1])).await;
    assert_eq!(status, 413);
    assert_eq!(
        json_body(&body),
        json!({"message": "Request Entity Too Large"})
    );
    assert!(headers.contains_key("apigw-requestid"));
    server.shutdown().await;
}

#[tokio::test]
async fn declared_oversized_body_is_refused_before_it_is_read() {
    let server = RunningServer::start(&users_api()).await;
    let address = server.address().to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let head = format!(
        "POST /dev/users HTTP/1.1\r\nhost: {address}\r\ncontent-length: {}\r\n\r\n",
        LIMIT as u64 * 100
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    // Not one byte of the declared gigabyte is sent: the answer must come anyway.
    let response = read_http_answer(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(
        response.contains(r#"{"message":"Request Entity Too Large"}"#),
        "{response}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn streamed_oversized_body_is_refused_while_streaming() {
    let server = RunningServer::start(&users_api()).await;
    let address = server.address().to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let head = format!(
        "POST /dev/users HTTP/1.1\r\nhost: {address}\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    // Chunks of 1 MiB with no declared length; the server must stop reading past 10 MB and
    // answer 413 while we still have more to send.
    let chunk = vec![b'x'; 1024 * 1024];
    let mut sent = 0usize;
    for _ in 0..64 {
        let frame = [
            format!("{:x}\r\n", chunk.len()).into_bytes(),
            chunk.clone(),
            b"\r\n".to_vec(),
        ]
        .concat();
        if stream.write_all(&frame).await.is_err() {
            break; // the server answered and closed: exactly what we want
        }
        sent += chunk.len();
    }
    assert!(
        sent < 64 * chunk.len() || sent > LIMIT,
        "wrote {sent} bytes"
    );
    let response = read_http_answer(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    server.shutdown().await;
}

#[tokio::test]
async fn start_up_errors_are_clear() {
    let dir = std::env::temp_dir().join(format!("portico-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "name: x\nroutes:\n  GET /a:\n    integration: {type: mock, statusCod: 200}\nstages: {dev: {}}\n")
        .expect("write");
    let message = match Server::start(&bad, "127.0.0.1:0", None).await {
        Err(e @ StartError::Definition(_)) => e.to_string(),
        other => panic!(
            "expected a definition error, got {:?}",
            other.map(|s| s.local_addr())
        ),
    };
    assert!(message.contains("bad.yaml"), "{message}");
    assert!(
        message.contains("routes.\"GET /a\".integration"),
        "{message}"
    );
    assert!(message.contains("statusCod"), "{message}");

    let missing = dir.join("missing.yaml");
    let message = Server::start(&missing, "127.0.0.1:0", None)
        .await
        .err()
        .expect("error")
        .to_string();
    assert!(message.contains("missing.yaml"), "{message}");

    let holder = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let taken = holder.local_addr().expect("addr").to_string();
    let message = match Server::start(&users_api(), &taken, None).await {
        Err(e @ StartError::Listen { .. }) => e.to_string(),
        other => panic!(
            "expected a listen error, got {:?}",
            other.map(|s| s.local_addr())
        ),
    };
    assert!(
        message.contains(&format!("cannot listen on {taken}")),
        "{message}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn stage_urls_name_every_stage() {
    let server = Server::start(&users_api(), "127.0.0.1:0", None)
        .await
        .expect("server starts");
    let base = format!("http://{}", server.local_addr());
    let urls = server.stage_urls();
    assert_eq!(
        urls,
        vec![
            ("dev".to_owned(), format!("{base}/dev/")),
            ("prod".to_owned(), format!("{base}/prod/"))
        ]
    );
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let mut server = RunningServer::start(&users_api()).await;
    let client = reqwest::Client::new();
    // A slow upload keeps a request in flight while shutdown begins.
    let address = server.address().to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let body = r#"{"name":"a","email":"a@example.com"}"#;
    let head = format!(
        "POST /prod/users HTTP/1.1\r\nhost: {address}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&body.as_bytes()[..4]).await.expect("part");
    let (status, _, _) = send(client.get(format!("{}/prod/health", server.base))).await;
    assert_eq!(status, 200);

    let base = server.base.clone();
    server.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream.write_all(&body.as_bytes()[4..]).await.expect("rest");
    let response = read_http_answer(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    server.shutdown().await;
    // New connections are refused once it has stopped.
    assert!(client
        .get(format!("{base}/prod/health"))
        .send()
        .await
        .is_err());
}
