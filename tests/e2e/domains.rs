//! Several APIs behind custom domains and API mappings, through `portico-serve --gateway` over
//! real HTTP: the longest base path wins, the empty mapping catches the rest, the base path is
//! stripped before routing, wildcard domains, each API's own execute-api host with
//! `/{stage}/...` paths, 403 for a path no mapping takes and for an unknown host, and two APIs
//! with their own stages and throttles in one process.
//!
//! The expectations follow AWS's developer guide, "Use API mappings to connect API stages to a
//! custom domain name for REST APIs" (rest-api-mappings.md): "API Gateway strips the incoming
//! base path"; "API Gateway chooses the mapping that has the longest matching path"; "API
//! Gateway uses the empty mapping as a catch-all"; with multi-level mappings,
//! `https://api.example.com/ordersandmore` goes to the `orders` mapping ("the longest matching
//! prefix").

use std::time::Duration;

use portico_tests::ServeProcess;

const USERS: &str = r#"name: users
apiId: users
protocol: http
routes:
  GET /users/{id}:
    integration: { type: mock, body: 'users-${stageVariables.name}' }
stages:
  prod: { variables: { name: prod } }
  dev: { variables: { name: dev } }
"#;

const ORDERS: &str = r#"name: orders
apiId: orders
protocol: http
routes:
  GET /{id}:
    integration: { type: mock, body: 'orders-${stageVariables.name}' }
stages:
  prod:
    variables: { name: prod }
    throttle: { rateLimit: 1, burstLimit: 4 }
"#;

/// The gateway file; `{data}` is tests/data, whose PetStore is imported from OpenAPI.
const GATEWAY: &str = r#"apis:
  users: { file: users-api.yaml }
  orders: { file: orders/orders-api.yaml }
  pets: { openapi: "{data}/petstore.openapi.yaml", functions: "{data}/petstore.functions.yaml" }
domains:
  api.example.com:
    mappings:
      "": { api: users, stage: prod }
      v1: { api: users, stage: dev }
      v1/orders: { api: orders, stage: prod }
  "*.example.org":
    mappings:
      shop: { api: orders, stage: prod }
  pets.example.net:
    mappings:
      "": { api: pets, stage: $default }
"#;

/// The status and body of `GET path` sent with `Host: host`.
async fn get(client: &reqwest::Client, base: &str, host: &str, path: &str) -> (u16, String) {
    let response = client
        .get(format!("{base}{path}"))
        .header("host", host)
        .send()
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mappings_route_by_host_and_longest_base_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("users-api.yaml"), USERS).expect("write");
    std::fs::create_dir(dir.path().join("orders")).expect("mkdir");
    std::fs::write(dir.path().join("orders/orders-api.yaml"), ORDERS).expect("write");
    let gateway = dir.path().join("gateway.yaml");
    portico_tests::plugins_dist(&["echo"]);
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data");
    std::fs::write(&gateway, GATEWAY.replace("{data}", data)).expect("write");
    let process = tokio::task::spawn_blocking(move || {
        ServeProcess::start_with(&[std::ffi::OsStr::new("--gateway"), gateway.as_os_str()])
    })
    .await
    .expect("start portico-serve");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let base = process.base();
    let forbidden = (403, r#"{"message":"Forbidden"}"#.to_owned());
    let ok = |body: &str| (200, body.to_owned());

    // The empty base path catches what no other takes; its path reaches routing whole.
    assert_eq!(
        get(&client, base, "api.example.com", "/users/1").await,
        ok("users-prod")
    );
    // A longer base path wins, and is stripped before routing.
    assert_eq!(
        get(&client, base, "api.example.com", "/v1/users/1").await,
        ok("users-dev")
    );
    assert_eq!(
        get(&client, base, "API.Example.com:8443", "/v1/orders/42").await,
        ok("orders-prod")
    );
    // Multi-level mappings match by prefix: AWS's `/ordersandmore` example.
    assert_eq!(
        get(&client, base, "api.example.com", "/v1/ordersandmore").await,
        ok("orders-prod")
    );
    // A wildcard domain; a path none of its mappings takes is 403, as is an unknown host.
    assert_eq!(
        get(&client, base, "eu.example.org", "/shop/7").await,
        ok("orders-prod")
    );
    assert_eq!(
        get(&client, base, "eu.example.org", "/users/1").await,
        forbidden
    );
    assert_eq!(
        get(&client, base, "example.org", "/shop/7").await,
        forbidden
    );
    assert_eq!(
        get(&client, base, "unknown.test", "/users/1").await,
        forbidden
    );
    // Each API's own host keeps the execute-api `/{stage}/...` paths.
    let users_host = "users.execute-api.us-east-1.amazonaws.com";
    assert_eq!(
        get(&client, base, users_host, "/dev/users/9").await,
        ok("users-dev")
    );
    assert_eq!(
        get(&client, base, users_host, "/prod/users/9").await,
        ok("users-prod")
    );
    assert_eq!(
        get(&client, base, users_host, "/v1/users/9").await,
        (404, r#"{"message":"Not Found"}"#.to_owned())
    );

    // An API imported from OpenAPI, on its `$default` stage (its echo plugin names the route).
    let (status, body) = get(&client, base, "pets.example.net", "/pets/7").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""petId":"7""#), "{body}");

    // Two APIs, separate throttles: orders' prod bucket (burst 4, three taken above) runs
    // dry while users, which has none, keeps answering.
    let mut throttled = 0;
    for _ in 0..10 {
        let (status, _) = get(&client, base, "api.example.com", "/v1/orders/1").await;
        assert!(status == 200 || status == 429, "{status}");
        throttled += usize::from(status == 429);
        assert_eq!(
            get(&client, base, "api.example.com", "/users/1").await,
            ok("users-prod")
        );
    }
    assert!(
        throttled >= 5,
        "{throttled} of 10 requests over orders' burst were throttled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_to_a_missing_stage_is_a_startup_error_naming_its_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("users-api.yaml"), USERS).expect("write");
    let gateway = dir.path().join("gateway.yaml");
    std::fs::write(
        &gateway,
        "apis:\n  users: { file: users-api.yaml }\ndomains:\n  api.example.com:\n    mappings:\n      \"\": { api: users, stage: beta }\n",
    )
    .expect("write");
    let output = std::process::Command::new(portico_tests::portico_serve_binary())
        .args([std::ffi::OsStr::new("--gateway"), gateway.as_os_str()])
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .expect("run portico-serve");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(r#"domains."api.example.com".mappings."".stage"#)
            && stderr.contains("gateway.yaml")
            && stderr.contains("beta"),
        "{stderr}"
    );
}

/// Hot reload of a gateway: an edit of an API file the gateway file names redeploys it, and
/// an edit of the gateway file itself changes the mappings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_file_and_its_api_files_reload() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("users-api.yaml"), USERS).expect("write");
    let gateway = dir.path().join("gateway.yaml");
    let mapped = |base: &str| {
        format!(
            "apis:\n  users: {{ file: users-api.yaml }}\ndomains:\n  api.example.com:\n    mappings:\n      {base}: {{ api: users, stage: prod }}\n"
        )
    };
    std::fs::write(&gateway, mapped("v1")).expect("write");
    let process = tokio::task::spawn_blocking(move || {
        ServeProcess::start_with(&[std::ffi::OsStr::new("--gateway"), gateway.as_os_str()])
    })
    .await
    .expect("start portico-serve");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let base = process.base().to_owned();
    assert_eq!(
        get(&client, &base, "api.example.com", "/v1/users/1").await,
        (200, "users-prod".to_owned())
    );
    let until = |path: &'static str, want: (u16, &'static str)| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            loop {
                let got = get(&client, &base, "api.example.com", path).await;
                if (got.0, got.1.as_str()) == want {
                    return;
                }
                assert!(std::time::Instant::now() < deadline, "{path}: {got:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    std::fs::write(
        dir.path().join("users-api.yaml"),
        USERS.replace(
            "users-${stageVariables.name}",
            "users2-${stageVariables.name}",
        ),
    )
    .expect("rewrite the API file");
    until("/v1/users/1", (200, "users2-prod")).await;
    std::fs::write(dir.path().join("gateway.yaml"), mapped("v2")).expect("rewrite");
    until("/v2/users/1", (200, "users2-prod")).await;
    until("/v1/users/1", (403, r#"{"message":"Forbidden"}"#)).await;
}
