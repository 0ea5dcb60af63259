//! Bodies that stream in: `Gateway` as a `tower::Service` over a channel body just under and
//! just over API Gateway's 10 MB limit, and over a body that fails mid-stream; then the same
//! limit over real HTTP, through `portico-serve` (hyper's body) and mounted in axum
//! (`nest_service`). Every refusal is a gateway response with a request id, one access log
//! line and a count in the metrics.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use portico::{metric, Gateway, MAX_BODY_BYTES};
use portico_tests::{read_http_answer, Captured, RunningServer};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::metrics::sample;

const CHUNK: usize = 1024 * 1024;

/// An API of its own, `apiId` included, as the metrics recorder is process-wide: `POST /echo`
/// answers with what the echo plugin saw (`bodyLength`), the `prod` stage logs JSON lines.
fn api(dir: &Path, api_id: &str) -> PathBuf {
    let echo = portico_tests::plugins_dist(&["echo"]).join("echo.wasm");
    let yaml = format!(
        r#"
name: streaming-e2e
apiId: {api_id}
plugins:
  echo: {{ path: '{}' }}
routes:
  POST /echo: {{ integration: {{ type: plugin, plugin: echo }} }}
stages:
  prod:
    accessLog:
      format: '{{"requestId":"$context.requestId","status":"$context.status","stage":"$context.stage","routeKey":"$context.routeKey","responseType":"$context.error.responseType"}}'
"#,
        echo.display()
    );
    let file = dir.join("api.yaml");
    std::fs::write(&file, yaml).unwrap();
    file
}

fn gateway(dir: &Path, api_id: &str) -> Gateway {
    Gateway::from_file(api(dir, api_id)).expect("API loads")
}

/// A body fed through a channel, as a server's body is fed by the connection.
struct ChannelBody(mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|chunk| chunk.map(Frame::data)))
    }
}

/// A body of `sizes` chunks sent one at a time, then an error if `fail`; the task answers how
/// many chunks the reader took before it hung up.
fn streamed(sizes: Vec<usize>, fail: bool) -> (ChannelBody, JoinHandle<usize>) {
    let (sender, receiver) = mpsc::channel(1);
    let task = tokio::spawn(async move {
        for (sent, size) in sizes.into_iter().enumerate() {
            if sender
                .send(Ok(Bytes::from(vec![b'x'; size])))
                .await
                .is_err()
            {
                return sent;
            }
            tokio::task::yield_now().await;
        }
        if fail {
            let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
            let _ = sender.send(Err(reset)).await;
        }
        usize::MAX
    });
    (ChannelBody(receiver), task)
}

fn post(uri: &str, body: ChannelBody) -> http::Request<ChannelBody> {
    http::Request::post(uri).body(body).unwrap()
}

/// The service's answer: status, request id header, body.
async fn call(gateway: Gateway, request: http::Request<ChannelBody>) -> (u16, String, String) {
    let response = gateway
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let status = response.status().as_u16();
    let request_id = response.headers()["apigw-requestid"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        request_id,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

fn labels(api_id: &str) -> String {
    format!(r#"api="{api_id}",stage="prod",route="-",canary="false""#)
}

/// The one access log line captured, after checking it is the only one.
fn only_line(captured: &Captured) -> Value {
    let mut lines = captured.lines();
    assert_eq!(lines.len(), 1, "{}", captured.text());
    lines.remove(0)
}

#[tokio::test]
async fn a_streamed_body_of_exactly_ten_megabytes_reaches_the_integration_whole() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = gateway(dir.path(), "streamunder");
    let (body, sender) = streamed(vec![CHUNK; MAX_BODY_BYTES / CHUNK], false);
    let (status, _, answer) = call(gateway, post("/prod/echo", body)).await;
    assert_eq!(status, 200, "{}", &answer[..answer.len().min(300)]);
    let echo: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(echo["bodyLength"], MAX_BODY_BYTES);
    assert_eq!(sender.await.unwrap(), usize::MAX, "every chunk was taken");
}

#[tokio::test]
async fn a_streamed_body_over_ten_megabytes_is_413_logged_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = gateway(dir.path(), "streamover");
    let metrics = portico_serve::metrics_handle();
    let (captured, _guard) = Captured::start();
    // 10 MB and one byte, then 53 MB more that must never be read.
    let mut sizes = vec![CHUNK; MAX_BODY_BYTES / CHUNK];
    sizes.push(1);
    sizes.extend([CHUNK; 53]);
    let (body, sender) = streamed(sizes, false);
    let (status, request_id, answer) = call(gateway, post("/prod/echo", body)).await;
    assert_eq!(
        (status, answer.as_str()),
        (413, r#"{"message":"Request Entity Too Large"}"#)
    );
    assert_eq!(request_id.len(), 16);
    let taken = sender.await.unwrap();
    assert!(
        taken <= MAX_BODY_BYTES / CHUNK + 2,
        "read on: {taken} chunks"
    );

    let line = only_line(&captured);
    assert_eq!(line["requestId"], request_id.as_str());
    assert_eq!(line["status"], "413");
    assert_eq!(line["stage"], "prod");
    assert_eq!(line["routeKey"], "-");
    assert_eq!(line["responseType"], "REQUEST_TOO_LARGE");
    let text = metrics.render();
    let labels = labels("streamover");
    assert_eq!(sample(&text, metric::COUNT, &labels), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, metric::ERRORS_4XX, &labels),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn a_body_failing_mid_stream_is_400_through_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = gateway(dir.path(), "streamfail");
    let metrics = portico_serve::metrics_handle();
    let (captured, _guard) = Captured::start();
    let (body, _) = streamed(vec![CHUNK, CHUNK], true);
    let (status, request_id, answer) = call(gateway, post("/prod/echo", body)).await;
    assert_eq!(
        (status, answer.as_str()),
        (400, r#"{"message":"Bad Request"}"#)
    );
    assert_eq!(request_id.len(), 16);

    let line = only_line(&captured);
    assert_eq!(line["requestId"], request_id.as_str());
    assert_eq!(line["status"], "400");
    assert_eq!(line["stage"], "prod");
    let text = metrics.render();
    let labels = labels("streamfail");
    assert_eq!(
        sample(&text, metric::ERRORS_4XX, &labels),
        Some(1.0),
        "{text}"
    );
}

/// Sends `head` and then 1 MiB chunks (chunked transfer coding) until the server stops
/// reading or 64 are sent, then an unparsable chunk when `garble`; returns the answer's text.
async fn upload_chunked(address: &str, path: &str, chunks: usize, garble: bool) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head =
        format!("POST {path} HTTP/1.1\r\nhost: {address}\r\ntransfer-encoding: chunked\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let frame = [
        format!("{CHUNK:x}\r\n").into_bytes(),
        vec![b'x'; CHUNK],
        b"\r\n".to_vec(),
    ]
    .concat();
    for _ in 0..chunks {
        if stream.write_all(&frame).await.is_err() {
            break; // the server answered and closed
        }
    }
    if garble {
        let _ = stream.write_all(b"not-hex\r\n").await;
    }
    read_http_answer(&mut stream).await
}

/// The `apigw-requestid` of a raw HTTP/1.1 answer.
fn request_id_of(answer: &str) -> &str {
    answer
        .lines()
        .find_map(|line| line.strip_prefix("apigw-requestid: "))
        .unwrap_or_else(|| panic!("no request id: {answer}"))
        .trim()
}

#[tokio::test]
async fn portico_serve_refuses_uploads_over_ten_megabytes_through_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let (captured, _guard) = Captured::start();
    let server = RunningServer::start(&api(dir.path(), "streamserve")).await;
    let address = server.address().to_owned();
    let url = format!("http://{address}/prod/echo");

    let response = reqwest::Client::new()
        .post(&url)
        .body(vec![b'x'; MAX_BODY_BYTES + 1])
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 413);
    let declared_id = response.headers()["apigw-requestid"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"message":"Request Entity Too Large"}"#
    );

    // No declared length: refused while it streams in.
    let answer = upload_chunked(&address, "/prod/echo", 64, false).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let streamed_id = request_id_of(&answer).to_owned();

    // A body whose framing breaks mid-stream: the gateway's 400.
    let answer = upload_chunked(&address, "/prod/echo", 1, true).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.ends_with(r#"{"message":"Bad Request"}"#), "{answer}");
    let garbled_id = request_id_of(&answer).to_owned();

    server.shutdown().await;
    let lines = captured.lines();
    let logged: Vec<(&str, &str)> = lines
        .iter()
        .map(|line| {
            (
                line["requestId"].as_str().unwrap(),
                line["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        logged,
        [
            (declared_id.as_str(), "413"),
            (streamed_id.as_str(), "413"),
            (garbled_id.as_str(), "400")
        ]
    );
}

#[tokio::test]
async fn mounted_in_axum_the_gateway_reads_the_body_itself() {
    let dir = tempfile::tempdir().unwrap();
    let app = axum::Router::new().nest_service("/api", gateway(dir.path(), "streamaxum"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    let client = reqwest::Client::new();
    let url = format!("http://{address}/api/prod/echo");

    let response = client.post(&url).body("hello").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let echo: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    // axum strips `/api`: the gateway sees `/prod/echo`, stage `prod`, path `/echo`.
    assert_eq!(
        (&echo["stage"], &echo["rawPath"], &echo["body"]),
        (
            &Value::from("prod"),
            &Value::from("/echo"),
            &Value::from("hello")
        )
    );

    let response = client
        .post(&url)
        .body(vec![b'x'; MAX_BODY_BYTES + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(response.headers()["apigw-requestid"].len(), 16);
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"message":"Request Entity Too Large"}"#
    );
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
