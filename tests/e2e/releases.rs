//! Deployments and canary releases through the `portico-serve` binary over real HTTP: a
//! stage's canary takes its share of 10,000 requests, shows in the access log
//! (`$context.isCanaryRequest`, `$context.deploymentId`) and in the metrics (`canary` label),
//! and is removed, promoted and rolled back through the admin port's endpoints.
//!
//! AWS's model: "In a canary release deployment, total API traffic is separated at random
//! into a production release and a canary release with a pre-configured ratio"; promoting
//! "updates the stage's deploymentId to the canary's and copies the canary's stage variable
//! overrides into the stage variables" (AWS API Gateway developer guide,
//! canary-release.md and canary-release-cli.md, "Promote a canary release").

use std::time::Duration;

use portico_tests::ServeProcess;
use serde_json::Value;

/// The API: `GET /version` answers the `version` stage variable; prod's canary sends 10% of
/// requests to the same deployment with `version: canary`.
const API: &str = r#"name: canary-e2e
apiId: canaryapi
protocol: http
routes:
  GET /version:
    integration:
      type: mock
      body: '${stageVariables.version}'
stages:
  prod:
    variables: { version: stable }
    accessLog:
      format: '{"deploymentId":"$context.deploymentId","canary":"$context.isCanaryRequest","status":"$context.status"}'
    canary:
      percentTraffic: 10
      stageVariableOverrides: { version: canary }
"#;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// `count` requests from 16 client loops: how many answered `stable` and how many `canary`
/// (any other answer fails the test).
async fn versions(client: &reqwest::Client, url: &str, count: usize) -> (usize, usize) {
    let loops = 16;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..loops {
        let (client, url) = (client.clone(), url.to_owned());
        let share = count / loops + usize::from(i < count % loops);
        tasks.spawn(async move {
            let mut answers = Vec::with_capacity(share);
            for _ in 0..share {
                let response = client.get(&url).send().await.expect("an answer");
                assert_eq!(response.status(), 200);
                answers.push(response.text().await.expect("a body"));
            }
            answers
        });
    }
    let mut answers = Vec::with_capacity(count);
    while let Some(done) = tasks.join_next().await {
        answers.extend(done.expect("a client loop"));
    }
    let stable = answers.iter().filter(|a| *a == "stable").count();
    let canary = answers.iter().filter(|a| *a == "canary").count();
    assert_eq!(stable + canary, count, "other answers: {answers:?}");
    (stable, canary)
}

/// The sum of `metric`'s series whose labels include `label`.
async fn metric_sum(client: &reqwest::Client, admin: &str, metric: &str, label: &str) -> f64 {
    crate::metrics::metrics_text(client, admin)
        .await
        .lines()
        .filter(|line| line.starts_with(&format!("{metric}{{")) && line.contains(label))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

async fn admin_call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
) -> (u16, Value) {
    let response = client
        .request(method, url)
        .send()
        .await
        .expect("admin answer");
    let status = response.status().as_u16();
    let body = response.text().await.expect("admin body");
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{body}: {e}"));
    (status, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_takes_its_share_and_is_removed_promoted_and_rolled_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("api.yaml");
    std::fs::write(&file, API).expect("write the API");
    let log = dir.path().join("access.log");
    let process = ServeProcess::start_logged(file.clone(), log.clone()).await;
    let admin = process.admin().expect("an admin port").to_owned();
    let url = format!("{}/prod/version", process.base());
    let client = client();

    // 10% of 10,000 requests, each drawn independently: 1,000 expected, a standard
    // deviation of 30; 8.5-11.5% is five of them either way.
    let (_, canary) = versions(&client, &url, 10_000).await;
    assert!(
        (850..=1150).contains(&canary),
        "{canary} of 10,000 requests went to a 10% canary"
    );
    let counted = metric_sum(
        &client,
        &admin,
        "portico_requests_total",
        r#"canary="true""#,
    )
    .await;
    assert_eq!(
        counted as usize, canary,
        "the canary label counts the canary's answers"
    );
    let lines: Vec<Value> = portico_tests::settled_read(&log)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 10_000);
    let logged_canary = lines.iter().filter(|l| l["canary"] == "true").count();
    assert_eq!(logged_canary, canary, "$context.isCanaryRequest");
    assert!(lines
        .iter()
        .all(|l| l["canary"] == "true" || l["canary"] == "false"));
    let first_id = lines[0]["deploymentId"].as_str().expect("an id").to_owned();
    assert!(
        first_id.len() == 6 && first_id.bytes().all(|b| b.is_ascii_alphanumeric()),
        "$context.deploymentId: {first_id}"
    );
    // The canary runs the stage's own deployment (no `deployment` given).
    assert!(lines.iter().all(|l| l["deploymentId"] == first_id.as_str()));

    // The kept deployments and which stage runs each.
    let (status, listed) = admin_call(
        &client,
        reqwest::Method::GET,
        format!("{admin}/apis/canaryapi/deployments"),
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["items"][0]["id"], first_id.as_str());
    assert_eq!(listed["items"][0]["stages"], serde_json::json!(["prod"]));
    assert_eq!(
        listed["items"][0]["canaryStages"],
        serde_json::json!(["prod"])
    );

    // Remove: every request is the stage's.
    let (status, body) = admin_call(
        &client,
        reqwest::Method::DELETE,
        format!("{admin}/apis/canaryapi/stages/prod/canary"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(versions(&client, &url, 300).await, (300, 0));
    let (status, body) = admin_call(
        &client,
        reqwest::Method::DELETE,
        format!("{admin}/apis/canaryapi/stages/prod/canary"),
    )
    .await;
    assert_eq!((status, body["message"].is_string()), (404, true), "{body}");

    // SIGHUP redeploys the file: a new deployment, its canary back.
    let status = std::process::Command::new("kill")
        .args(["-HUP", &process.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let second_id = loop {
        let (_, listed) = admin_call(
            &client,
            reqwest::Method::GET,
            format!("{admin}/apis/canaryapi/deployments"),
        )
        .await;
        if let Some(items) = listed["items"].as_array().filter(|items| items.len() == 2) {
            break items[1]["id"].as_str().expect("an id").to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no redeploy: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_ne!(second_id, first_id);
    let (_, canary) = versions(&client, &url, 1_000).await;
    assert!(canary > 0, "the redeployed canary serves");

    // Promote: the overrides become the stage's variables, the canary is gone.
    let (status, body) = admin_call(
        &client,
        reqwest::Method::POST,
        format!("{admin}/apis/canaryapi/stages/prod/canary/promote"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(versions(&client, &url, 300).await, (0, 300));

    // Roll back to the first deployment, at once: its variables again.
    let (status, body) = admin_call(
        &client,
        reqwest::Method::POST,
        format!("{admin}/apis/canaryapi/stages/prod/rollback?deploymentId={first_id}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (stable, canary) = versions(&client, &url, 1_000).await;
    // A rollback changes what the stage runs, not its canary (the promotion removed it).
    assert_eq!((stable, canary), (1_000, 0));
    let (status, body) = admin_call(
        &client,
        reqwest::Method::POST,
        format!("{admin}/apis/canaryapi/stages/prod/rollback?deploymentId=zzzzzz"),
    )
    .await;
    assert_eq!(status, 404, "{body}");
}

/// A canary that runs another definition file is redeployed when that file changes, as the
/// API file is (hot reload watches both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_file_edit_redeploys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let canary = |body: &str| {
        format!(
            "name: canary-file\nroutes:\n  GET /version:\n    integration: {{ type: mock, body: '{body}' }}\nstages:\n  prod: {{}}\n"
        )
    };
    std::fs::write(dir.path().join("canary.yaml"), canary("c1")).expect("write");
    let file = dir.path().join("api.yaml");
    std::fs::write(
        &file,
        "name: canary-file\nroutes:\n  GET /version:\n    integration: { type: mock, body: stable }\nstages:\n  prod:\n    canary: { percentTraffic: 100, deployment: canary.yaml }\n",
    )
    .expect("write");
    let process = tokio::task::spawn_blocking(move || ServeProcess::start(&file, &[]))
        .await
        .expect("start portico-serve");
    let url = format!("{}/prod/version", process.base());
    let client = client();
    let body = |client: reqwest::Client, url: String| async move {
        client
            .get(url)
            .send()
            .await
            .expect("answer")
            .text()
            .await
            .expect("body")
    };
    assert_eq!(body(client.clone(), url.clone()).await, "c1");
    std::fs::write(dir.path().join("canary.yaml"), canary("c2")).expect("rewrite");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while body(client.clone(), url.clone()).await != "c2" {
        assert!(
            std::time::Instant::now() < deadline,
            "the canary file's edit was not deployed: {}",
            process.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
