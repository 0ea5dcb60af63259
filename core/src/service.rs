//! The transport edge: a request whose body is still streaming in (any [`http_body::Body`])
//! becomes the `Request<Bytes>` the pipeline takes, with API Gateway's 10 MB limit enforced
//! while it is read; with the `tower` feature, `Gateway` is a `tower::Service` over such
//! requests. A body refused here is answered by the gateway like every other refusal: a
//! gateway response with a request id, an access log line and the metrics.

use std::error::Error as StdError;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http::request::Parts;
use http::{header, Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::gateway::{Gateway, MAX_BODY_BYTES};
use crate::respond::GatewayError;

impl Gateway {
    /// Reads `request`'s body as it streams in, then answers as [`Gateway::handle`] does. A
    /// body over [`MAX_BODY_BYTES`], declared (`Content-Length`, the body's size hint) or
    /// streamed, is read no further and answered 413 `{"message":"Request Entity Too Large"}`;
    /// a body that fails to read (an aborted upload) is answered 400 `{"message":"Bad
    /// Request"}`. Both are rendered with the stage's gateway responses, logged and counted.
    /// A `std::net::SocketAddr` in the request's extensions is taken as the client's address.
    pub fn handle_body<B>(
        &self,
        request: Request<B>,
    ) -> impl Future<Output = Response<Bytes>> + use<'_, B>
    where
        B: Body,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let peer = crate::net::peer_ip(request.extensions());
        self.read_and_answer(request, peer)
    }

    /// [`Gateway::handle_body`] for a request from the client at `client` (a server knows it
    /// from its connection; giving it here spares the request's extensions a map).
    pub fn handle_body_from<B>(
        &self,
        request: Request<B>,
        client: SocketAddr,
    ) -> impl Future<Output = Response<Bytes>> + use<'_, B>
    where
        B: Body,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        self.read_and_answer(request, Some(client.ip()))
    }

    /// Not an `async fn`: its future would hold the request twice (argument and local). One
    /// wait on the gateway's answer, after the body is read, so that nothing read is kept
    /// beside it. The declared length is looked at only for a body that is still to come: an
    /// ended one (a GET's) has nothing to refuse.
    fn read_and_answer<B>(
        &self,
        request: Request<B>,
        peer: Option<IpAddr>,
    ) -> impl Future<Output = Response<Bytes>> + use<'_, B>
    where
        B: Body,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let (parts, body) = request.into_parts();
        async move {
            // A request without a body (most GETs) has nothing to read.
            let body = if body.is_end_stream() {
                Bytes::new()
            } else {
                // Refused before a byte is read, as API Gateway refuses on the declared length.
                if declared_length(&parts).max(body.size_hint().lower()) > MAX_BODY_BYTES as u64 {
                    return self.refuse_unread(&parts, peer, GatewayError::too_large());
                }
                match Limited::new(body, MAX_BODY_BYTES).collect().await {
                    Ok(collected) => collected.to_bytes(),
                    Err(error) if error.is::<LengthLimitError>() => {
                        return self.refuse_unread(&parts, peer, GatewayError::too_large())
                    }
                    Err(error) => {
                        tracing::debug!(%error, "request body could not be read");
                        return self.refuse_unread(&parts, peer, GatewayError::unreadable_body());
                    }
                }
            };
            // Boxed: the answer's future (1.3 KB: the request's `Exchange` and the phases'
            // state) would otherwise make this one as large, and the layers above move it
            // whole (`IntoFuture`, hyper's in-flight slot, the server's own future): boxed,
            // they move 0.45 KB, 12,727 -> 12,400 instructions a mock request under callgrind
            // (README, "Where a mock answer's time goes").
            Box::pin(self.answer(&parts, body, peer)).await
        }
    }
}

/// The `Content-Length` the client declared, 0 when none (or not a number: the body's own
/// framing decides then).
fn declared_length(parts: &Parts) -> u64 {
    parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

#[cfg(feature = "tower")]
mod tower_service {
    use std::convert::Infallible;
    use std::error::Error as StdError;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use http::{Request, Response};
    use http_body::Body;
    use http_body_util::Full;

    use crate::gateway::Gateway;

    /// `Gateway` as a `tower::Service` over any request body (hyper's `Incoming`, axum's
    /// `Body`, ...): always ready, never fails; each call is [`Gateway::handle_body`]. The
    /// response body is a `Full<Bytes>`, so servers and routers take the response as it is.
    impl<B> tower::Service<Request<B>> for Gateway
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        type Response = Response<Full<Bytes>>;
        type Error = Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: Request<B>) -> Self::Future {
            let gateway = self.clone();
            Box::pin(async move { Ok(gateway.handle_body(request).await.map(Full::new)) })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use http_body::{Frame, SizeHint};

    use super::*;
    use crate::config::{ApiDefinition, Format};

    const API: &str = r#"
name: t
routes:
  POST /echo:
    integration: {type: mock, body: 'ok'}
stages:
  dev: {}
"#;

    fn gateway() -> Gateway {
        Gateway::new(&ApiDefinition::from_str_as(API, Format::Yaml).unwrap()).unwrap()
    }

    /// A body that yields its chunks, then fails if told to, and claims `hint` bytes.
    struct Chunks {
        chunks: VecDeque<Bytes>,
        fail: bool,
        hint: u64,
    }

    impl Body for Chunks {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            Poll::Ready(match self.chunks.pop_front() {
                Some(chunk) => Some(Ok(Frame::data(chunk))),
                None if self.fail => {
                    self.fail = false;
                    Some(Err(std::io::Error::other("connection reset")))
                }
                None => None,
            })
        }

        fn size_hint(&self) -> SizeHint {
            let mut hint = SizeHint::new();
            hint.set_lower(self.hint);
            hint
        }
    }

    fn post(body: Chunks) -> Request<Chunks> {
        Request::post("/dev/echo").body(body).unwrap()
    }

    fn chunks(sizes: &[usize]) -> Chunks {
        Chunks {
            chunks: sizes.iter().map(|&n| Bytes::from(vec![b'a'; n])).collect(),
            fail: false,
            hint: 0,
        }
    }

    #[tokio::test]
    async fn a_body_up_to_the_limit_is_read_whole() {
        let r = gateway()
            .handle_body(post(chunks(&[MAX_BODY_BYTES / 2, MAX_BODY_BYTES / 2])))
            .await;
        assert_eq!(
            (r.status().as_u16(), r.body().as_ref()),
            (200, b"ok".as_ref())
        );
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_413() {
        let r = gateway()
            .handle_body(post(chunks(&[MAX_BODY_BYTES, 1])))
            .await;
        assert_eq!(r.status(), 413);
        assert_eq!(r.body(), r#"{"message":"Request Entity Too Large"}"#);
        assert_eq!(r.headers()["apigw-requestid"].len(), 16);
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_413_unread() {
        let too_long = (MAX_BODY_BYTES + 1).to_string();
        let request = Request::post("/dev/echo")
            .header("content-length", too_long)
            .body(chunks(&[1]))
            .unwrap();
        assert_eq!(gateway().handle_body(request).await.status(), 413);
        let hinted = Chunks {
            hint: MAX_BODY_BYTES as u64 + 1,
            ..chunks(&[1])
        };
        assert_eq!(gateway().handle_body(post(hinted)).await.status(), 413);
    }

    #[tokio::test]
    async fn a_body_that_fails_to_read_is_400() {
        let failing = Chunks {
            fail: true,
            ..chunks(&[10])
        };
        let r = gateway().handle_body(post(failing)).await;
        assert_eq!(r.status(), 400);
        assert_eq!(r.body(), r#"{"message":"Bad Request"}"#);
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.headers()["apigw-requestid"].len(), 16);
    }

    #[cfg(feature = "tower")]
    #[tokio::test]
    async fn the_service_answers_with_a_full_body() {
        use tower::ServiceExt;

        let r = gateway()
            .oneshot(post(chunks(&[3, 4])))
            .await
            .unwrap_or_else(|never| match never {});
        assert_eq!(r.status(), 200);
        let body = r.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "ok");
    }
}
