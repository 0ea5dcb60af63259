//! A REST API's binary media types with a Lambda proxy integration (the seed's python_users
//! plugin: `.../event` answers the event it got, `.../image` a base64 PNG with
//! `isBase64Encoded: true`): a request body of a listed type reaches the function base64
//! encoded, any other as text; a base64 answer is decoded only for a client whose first
//! `Accept` type is listed. HTTP APIs have no binary media types and always decode.
//!
//! Sources: AWS's developer guide, "Working with binary media types for REST APIs"
//! (api-gateway-payload-encodings.md: "API Gateway honors only the first Accept media type");
//! LocalStack's `test_aws_proxy_binary_response` (test_apigateway_lambda.py,
//! `@markers.aws.validated`), whose table each case below follows, and its
//! test_apigateway_s3.snapshot.json `test_apigw_s3_binary_support_request[None]` (bytes that
//! are not UTF-8, of a type not listed, arrive as U+FFFD).

use base64::Engine as _;
use bytes::Bytes;
use portico::{ApiDefinition, Format, Gateway};
use portico_tests::plugins_dist;
use serde_json::Value;

/// The PNG python_users answers (LocalStack's 1x1 image).
const PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mP8/wIAAgkBAyMAlYwAAAAASUVORK5CYII=";

fn api(protocol: &str, binary: &str) -> Result<Gateway, portico::Error> {
    let dist = plugins_dist(&["python_users"]);
    let yaml = format!(
        r#"
name: binary-e2e
protocol: {protocol}
{binary}
plugins:
  py: {{ path: {dist}/python_users.wasm }}
routes:
  POST /files/event: {{ integration: {{ type: plugin, plugin: py }} }}
  GET /files/image: {{ integration: {{ type: plugin, plugin: py }} }}
stages:
  test: {{ variables: {{ TABLE: files }} }}
"#,
        dist = dist.display()
    );
    Gateway::new(&ApiDefinition::from_str_as(&yaml, Format::Yaml)?)
}

fn rest() -> Gateway {
    api("rest", "binaryMediaTypes: [image/png]").expect("the REST API loads")
}

/// The event the function got for a POST of `body` as `content_type`.
async fn event(gateway: &Gateway, content_type: &str, body: Vec<u8>) -> Value {
    let response = gateway
        .handle(
            http::Request::post("/test/files/event")
                .header("content-type", content_type)
                .body(Bytes::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.body());
    serde_json::from_slice(response.body()).expect("the event as JSON")
}

/// The image route's answer for a client sending `accept`.
async fn image(gateway: &Gateway, accept: Option<&str>) -> http::Response<Bytes> {
    let mut request = http::Request::get("/test/files/image");
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = gateway.handle(request.body(Bytes::new()).unwrap()).await;
    assert_eq!(response.status(), 200, "{:?}", response.body());
    response
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rest_api_passes_listed_types_as_base64_and_others_as_text() {
    let gateway = rest();
    let png = base64::engine::general_purpose::STANDARD
        .decode(PNG)
        .unwrap();
    let got = event(&gateway, "image/png", png.clone()).await;
    assert_eq!(got["isBase64Encoded"], true);
    assert_eq!(got["body"], PNG);
    let got = event(&gateway, "text/plain; charset=utf-8", "héllo".into()).await;
    assert_eq!(
        (got["isBase64Encoded"].clone(), got["body"].clone()),
        (false.into(), "héllo".into())
    );
    // Not listed, not UTF-8: text, the bad bytes replaced.
    let got = event(&gateway, "application/octet-stream", vec![0xff, b'A']).await;
    assert_eq!(
        (got["isBase64Encoded"].clone(), got["body"].clone()),
        (false.into(), "\u{fffd}A".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rest_api_decodes_a_base64_answer_only_for_a_binary_first_accept_type() {
    let gateway = rest();
    let png = base64::engine::general_purpose::STANDARD
        .decode(PNG)
        .unwrap();
    for (accept, binary) in [
        (Some("image/png"), true),
        (Some("image/png,image/*,*/*;q=0.8"), true),
        (Some("image/webp,image/png,*/*;q=0.8"), false),
        (Some("*/*"), false),
        (None, false),
    ] {
        let response = image(&gateway, accept).await;
        assert_eq!(response.headers()["content-type"], "image/png");
        let expected: &[u8] = if binary { &png } else { PNG.as_bytes() };
        assert_eq!(response.body().as_ref(), expected, "Accept: {accept:?}");
    }
    // Without binary media types every answer stays base64 text (LocalStack's first row).
    let plain = api("rest", "").expect("loads");
    assert_eq!(image(&plain, Some("image/png")).await.body(), PNG);
}

/// A base64 answer that does not decode, for a client that asked for binary: 500 (LocalStack
/// test_apigateway_lambda.py `test_aws_proxy_binary_response`, validated against AWS:
/// body `"èé+à)("` with `Accept: image/png` is a 500; AWS's guide: "If the conversion fails,
/// it returns a 500 response", api-gateway-payload-encodings-workflow.md). For a text client
/// nothing is converted and the text goes out as it is.
#[tokio::test(flavor = "multi_thread")]
async fn a_rest_api_answers_500_for_a_binary_answer_that_is_not_base64() {
    let gateway = rest();
    let get = |accept: &'static str| {
        let request = http::Request::get("/test/files/image?broken=1")
            .header("accept", accept)
            .body(Bytes::new())
            .unwrap();
        gateway.handle(request)
    };
    let failed = get("image/png").await;
    assert_eq!(failed.status(), 500);
    assert_eq!(failed.body(), r#"{"message": "Internal server error"}"#);
    assert_eq!(
        failed.headers()["x-amzn-errortype"],
        "InternalServerErrorException"
    );
    let text = get("text/plain").await;
    assert_eq!(text.status(), 200);
    assert_eq!(text.body(), "èé+à)(");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_api_always_decodes_and_has_no_binary_media_types() {
    let http = api("http", "").expect("loads");
    let png = base64::engine::general_purpose::STANDARD
        .decode(PNG)
        .unwrap();
    assert_eq!(image(&http, None).await.body().as_ref(), png.as_slice());
    let error = api("http", "binaryMediaTypes: [image/png]")
        .unwrap_err()
        .to_string();
    assert!(error.contains("binaryMediaTypes"), "{error}");
}
