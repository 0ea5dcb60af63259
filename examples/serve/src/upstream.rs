//! [`UpstreamClient`]: the HTTP client portico-serve hands its gateway for `http_proxy`
//! integrations: hyper-util's pooled client (keep-alive connections reused per host),
//! HTTP/1.1 and, over TLS when the backend offers it (ALPN), HTTP/2; TLS by rustls on the
//! `ring` provider, checking certificates against the Mozilla roots of `webpki-roots` (built
//! in, so the client needs no system certificate store).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use portico::{HttpClient, HttpClientError, HttpClientFuture};

/// Sends the requests of `http_proxy` integrations over a pool of connections; cheap to
/// share (one per server is enough).
#[derive(Clone)]
pub struct UpstreamClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient").finish_non_exhaustive()
    }
}

impl UpstreamClient {
    /// A client for `http://` and `https://` backends.
    pub fn new() -> Result<Self, rustls::Error> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(UpstreamClient { client })
    }
}

impl HttpClient for UpstreamClient {
    fn send(&self, request: http::Request<Bytes>) -> HttpClientFuture<'_> {
        let response = self.client.request(request.map(Full::new));
        Box::pin(async move {
            let response = response.await.map_err(HttpClientError::new)?;
            Ok(response.map(|body| body.map_err(Into::into).boxed_unsync()))
        })
    }
}
