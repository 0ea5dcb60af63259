//! Access logs end to end: the lines a stage's `accessLog.format` produces for a success and for
//! a refusal from each phase (no route, authorizer, API key, body limit, a trapping plugin),
//! captured through `portico-serve`'s `AccessLogLayer`, in-process and over real HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::Bytes;
use portico::{ApiDefinition, Format, Gateway, MAX_BODY_BYTES};
use portico_tests::{e2e_api_file, Captured, RunningServer, ServeProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn api_file() -> PathBuf {
    e2e_api_file(
        "access-log-api.yaml",
        &["policy_authorizer", "echo", "hostile_trap"],
    )
}

fn request(method: &str, uri: &str) -> http::request::Builder {
    http::Request::builder()
        .method(method)
        .uri(uri)
        .extension(SocketAddr::from(([192, 0, 2, 10], 40000)))
}

#[tokio::test]
async fn each_phase_refusal_is_one_line_with_its_facts() {
    let gateway = Gateway::from_file(api_file()).expect("API loads");
    let (captured, _guard) = Captured::start();
    let send = |r: http::Request<Bytes>| {
        let gateway = gateway.clone();
        async move { gateway.handle(r).await.status().as_u16() }
    };
    let empty = Bytes::new;
    assert_eq!(
        send(request("GET", "/prod/nowhere").body(empty()).unwrap()).await,
        404
    );
    assert_eq!(
        send(request("GET", "/prod/private").body(empty()).unwrap()).await,
        401
    );
    assert_eq!(
        send(
            request("GET", "/prod/private")
                .header("authorization", "allow;sub=ann")
                .body(empty())
                .unwrap()
        )
        .await,
        200
    );
    assert_eq!(
        send(request("GET", "/prod/keyed").body(empty()).unwrap()).await,
        403
    );
    let too_big = Bytes::from(vec![b'x'; MAX_BODY_BYTES + 1]);
    assert_eq!(
        send(request("POST", "/prod/upload").body(too_big).unwrap()).await,
        413
    );
    // An HTTP API's failed Lambda integration: 500 (http-api-troubleshooting-lambda.md).
    assert_eq!(
        send(request("GET", "/prod/trap").body(empty()).unwrap()).await,
        500
    );
    // Validation: the body does not satisfy the model.
    assert_eq!(
        send(
            request("POST", "/prod/items")
                .body(Bytes::from_static(b"{}"))
                .unwrap()
        )
        .await,
        400
    );
    // A stage without accessLog writes nothing.
    assert_eq!(
        send(request("GET", "/quiet/health").body(empty()).unwrap()).await,
        200
    );
    let lines = captured.lines();
    assert_eq!(lines.len(), 7, "{}", captured.text());
    for line in &lines {
        assert_eq!(line["stage"], "prod");
        assert_eq!(line["apiId"], "logapi");
        assert_eq!(line["accountId"], "111122223333");
        assert_eq!(line["ip"], "192.0.2.10");
        assert_eq!(line["userAgent"], "-");
        assert_eq!(line["requestId"], line["extendedRequestId"]);
    }
    let field = |i: usize, name: &str| lines[i][name].as_str().unwrap_or_default().to_owned();

    // No route: the route key is missing, the gateway response's type is there.
    assert_eq!(field(0, "status"), "404");
    assert_eq!(field(0, "routeKey"), "-");
    assert_eq!(field(0, "path"), "/prod/nowhere");
    assert_eq!(field(0, "responseType"), "RESOURCE_NOT_FOUND");
    assert_eq!(lines[0]["errorMessage"], "Not Found");
    assert_eq!(field(0, "integrationLatency"), "-");

    // Authorizer: 401 without calling the plugin.
    assert_eq!(field(1, "status"), "401");
    assert_eq!(field(1, "routeKey"), "GET /private");
    assert_eq!(field(1, "authorizerError"), "Unauthorized");
    assert_eq!(field(1, "principalId"), "-");
    assert_eq!(field(1, "responseType"), "UNAUTHORIZED");
    assert_eq!(field(1, "integrationStatus"), "-");

    // Authorized: the principal, the integration's status and latency; no error.
    assert_eq!(field(2, "status"), "200");
    assert_eq!(field(2, "principalId"), "ann");
    assert_eq!(field(2, "authorizerError"), "-");
    assert_eq!(field(2, "integrationStatus"), "200");
    assert!(field(2, "integrationLatency").parse::<u64>().is_ok());
    assert_eq!(field(2, "responseType"), "-");
    assert_eq!(lines[2]["errorMessage"], "-");
    // The custom authorizer's context: text, a number, a key it did not return; no claims.
    assert_eq!(field(2, "ctxSub"), "ann");
    assert!(field(2, "ctxCalls").parse::<u64>().unwrap() >= 1);
    assert_eq!(field(2, "ctxKind"), "request");
    assert_eq!(field(2, "ctxAbsent"), "-");
    assert_eq!(field(2, "claim"), "-");
    for i in [0, 1, 3, 4, 5, 6] {
        assert_eq!(field(i, "ctxSub"), "-", "line {i}");
    }

    // API key.
    assert_eq!(field(3, "status"), "403");
    assert_eq!(field(3, "responseType"), "INVALID_API_KEY");
    assert_eq!(field(3, "routeKey"), "GET /keyed");

    // Body limit: refused before routing.
    assert_eq!(field(4, "status"), "413");
    assert_eq!(field(4, "httpMethod"), "POST");
    assert_eq!(field(4, "routeKey"), "-");
    assert_eq!(field(4, "responseType"), "REQUEST_TOO_LARGE");

    // A trapping plugin: 500 (an HTTP API), with what went wrong for the operator only.
    assert_eq!(field(5, "status"), "500");
    assert_eq!(field(5, "routeKey"), "GET /trap");
    assert_eq!(field(5, "integrationStatus"), "-");
    assert!(field(5, "integrationLatency").parse::<u64>().is_ok());
    let error = field(5, "integrationErrorMessage");
    assert!(error.starts_with("trapped: "), "{error}");
    assert_eq!(lines[5]["errorMessage"], "Internal Server Error");
    assert_eq!(field(5, "responseType"), "INTEGRATION_FAILURE");

    // Validation: 400 before the integration.
    assert_eq!(field(6, "status"), "400");
    assert_eq!(field(6, "routeKey"), "POST /items");
    assert_eq!(field(6, "responseType"), "BAD_REQUEST_BODY");
    assert_eq!(lines[6]["errorMessage"], "Invalid request body");
    assert_eq!(field(6, "integrationStatus"), "-");
}

#[tokio::test]
async fn rest_apis_log_their_403_for_no_route() {
    let yaml = r#"
name: rest-log
protocol: rest
routes:
  GET /pets: { integration: { type: mock } }
stages:
  v1: { accessLog: { format: '$context.status $context.error.responseType $context.routeKey $context.path' } }
"#;
    let gateway = Gateway::new(&ApiDefinition::from_str_as(yaml, Format::Yaml).unwrap()).unwrap();
    let (captured, _guard) = Captured::start();
    let empty = || Bytes::new();
    let r = gateway
        .handle(http::Request::get("/v1/cats").body(empty()).unwrap())
        .await;
    assert_eq!(r.status(), 403);
    let r = gateway
        .handle(http::Request::get("/v1/pets").body(empty()).unwrap())
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        captured.text(),
        "403 MISSING_AUTHENTICATION_TOKEN - /v1/cats\n200 - GET /pets /v1/pets\n"
    );
}

#[tokio::test]
async fn jwt_claims_are_logged_by_name() {
    let keys = portico_tests::JwtKeys::generate();
    let yaml = format!(
        r#"
name: jwt-log
authorizers:
  jwt:
    type: jwt
    identitySource: $request.header.Authorization
    issuer: https://issuer.example
    audience: [client-1]
    jwks: {{ keys: {keys} }}
routes:
  GET /me: {{ integration: {{ type: mock }}, authorizer: jwt }}
stages:
  $default:
    accessLog:
      format: '$context.authorizer.claims.email|$context.authorizer.claims.groups|$context.authorizer.claims.nope|$context.authorizer.principalId|$context.authorizer.sub'
"#,
        keys = keys.jwks()["keys"]
    );
    let gateway = Gateway::new(&ApiDefinition::from_str_as(&yaml, Format::Yaml).unwrap()).unwrap();
    let now = portico_tests::unix_now();
    let token = keys.rs256(&serde_json::json!({
        "iss": "https://issuer.example", "aud": "client-1", "sub": "user-7",
        "email": "u7@example.com", "groups": ["admins", "ops"], "exp": now + 600,
    }));
    let (captured, _guard) = Captured::start();
    let response = gateway
        .handle(
            http::Request::get("/me")
                .header("authorization", format!("Bearer {token}"))
                .body(Bytes::new())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), 200);
    // Lists as API Gateway writes them; a JWT has no custom context (`sub` is a claim).
    assert_eq!(captured.text(), "u7@example.com|[admins ops]|-|user-7|-\n");
}

#[tokio::test]
async fn an_unknown_variable_is_a_load_error_naming_the_key() {
    let yaml = r#"
name: bad-log
routes:
  GET /pets: { integration: { type: mock } }
stages:
  prod: { accessLog: { format: '{"id":"$context.requestId","x":"$context.requestIdd"}' } }
"#;
    let err = Gateway::new(&ApiDefinition::from_str_as(yaml, Format::Yaml).unwrap()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("stages.prod.accessLog.format"), "{text}");
    assert!(text.contains("$context.requestIdd"), "{text}");
}

#[tokio::test]
async fn lines_over_real_http_carry_the_connection_facts() {
    let (captured, _guard) = Captured::start();
    let server = RunningServer::start(&api_file()).await;
    let address = server.address().to_owned();
    let client = reqwest::Client::new();
    let response = client
        .get(format!("http://{address}/prod/health"))
        .header("user-agent", r#"curl/8 "quoted" \ agent"#)
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["apigw-requestid"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.text().await.unwrap();

    // A declared body over the limit is refused before it is read, and still logged.
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /prod/upload HTTP/1.1\r\nhost: {address}\r\ncontent-length: {}\r\n\r\n",
        MAX_BODY_BYTES as u64 * 2
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut received = vec![0u8; 4096];
    let n = stream.read(&mut received).await.unwrap();
    let answer = String::from_utf8_lossy(&received[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    drop(stream);

    server.shutdown().await;
    let lines = captured.lines();
    assert_eq!(lines.len(), 2, "{}", captured.text());
    let ok = &lines[0];
    assert_eq!(ok["requestId"], request_id.as_str());
    assert_eq!(ok["ip"], "127.0.0.1");
    assert_eq!(ok["userAgent"], r#"curl/8 "quoted" \ agent"#);
    assert_eq!(ok["protocol"], "HTTP/1.1");
    assert_eq!(ok["domainName"], address.to_string().as_str());
    assert_eq!(ok["routeKey"], "GET /health");
    assert_eq!(ok["status"], "200");
    assert_eq!(ok["responseLength"], body.len().to_string().as_str());
    assert!(ok["responseLatency"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .is_ok());
    let epoch: u64 = ok["requestTimeEpoch"].as_str().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(now.abs_diff(epoch) < 60_000, "{epoch} vs {now}");
    // dd/MMM/yyyy:HH:mm:ss +0000
    let time = ok["requestTime"].as_str().unwrap();
    assert_eq!(time.len(), 26, "{time}");
    assert_eq!((&time[2..3], &time[6..7], &time[11..12]), ("/", "/", ":"));
    assert!(time.ends_with(" +0000"), "{time}");
    let refused = &lines[1];
    assert_eq!(refused["status"], "413");
    assert_eq!(refused["stage"], "prod");
    assert_eq!(refused["ip"], "127.0.0.1");
    assert_eq!(refused["responseType"], "REQUEST_TOO_LARGE");
}

/// portico-serve writes its access log from a thread of its own (the request threads hand
/// their lines over): nothing is lost on the way. Every one of 3,000 answers, sent 32 at a
/// time, has its line in the file once a SIGTERM stopped the server right after the last
/// answer (the writer's buffer is flushed on the way out), each line with its request's id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_in_the_access_log_after_a_graceful_stop() {
    let dir = tempfile::tempdir().expect("temp dir");
    let api = dir.path().join("api.yaml");
    std::fs::write(
        &api,
        "name: logged\nprotocol: http\nroutes:\n  GET /hi: { integration: { type: mock, statusCode: 200, body: hi } }\nstages:\n  $default: { accessLog: { format: '$context.requestId $context.status' } }\n",
    )
    .expect("write the API");
    let log = dir.path().join("access.log");
    let mut process = ServeProcess::start_logged(api, log.clone()).await;
    let url = format!("{}/hi", process.base());
    let client = reqwest::Client::new();
    let mut ids = std::collections::BTreeSet::new();
    while ids.len() < 3_000 {
        let mut batch = tokio::task::JoinSet::new();
        for _ in 0..32 {
            let request = client.get(&url).send();
            batch.spawn(async move {
                let answer = request.await.expect("an answer");
                assert_eq!(answer.status().as_u16(), 200);
                answer.headers()["apigw-requestid"]
                    .to_str()
                    .unwrap()
                    .to_owned()
            });
        }
        while let Some(id) = batch.join_next().await {
            ids.insert(id.expect("a request task"));
        }
    }
    let status = tokio::task::spawn_blocking(move || process.terminate())
        .await
        .expect("terminate");
    assert!(status.success(), "{status}");
    let text = std::fs::read_to_string(&log).expect("the access log");
    let logged: std::collections::BTreeSet<String> = text
        .lines()
        .map(|line| {
            assert!(line.ends_with(" 200"), "{line}");
            line.trim_end_matches(" 200").to_owned()
        })
        .collect();
    assert_eq!(text.lines().count(), ids.len(), "one line an answer");
    assert_eq!(logged, ids);
}
