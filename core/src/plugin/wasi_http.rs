//! Serving a standard `wasi:http/proxy` component: the request handed over as an incoming
//! request, the response head and body collected under the call's time limit.

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::WasiHttpView;

use super::call::PluginFailure;
use super::instances::{Bound, Slot};
use super::loaded::LoadedPlugin;
use crate::config::PluginWorld;

/// API Gateway's response payload limit, applied to what a wasi:http component streams back.
const MAX_RESPONSE_BYTES: usize = 10 * 1024 * 1024;

impl LoadedPlugin {
    /// Hands an HTTP request to a `wasi:http/proxy` component and collects its response, within
    /// the plugin's time limit or `cap` if that is shorter.
    pub(crate) async fn serve_http(
        &self,
        request: http::Request<Bytes>,
        cap: Option<Duration>,
    ) -> Result<http::Response<Bytes>, PluginFailure> {
        if self.world() != PluginWorld::WasiHttp {
            return Err(PluginFailure::Trap(format!(
                "plugin {} is not a wasi:http component",
                self.name()
            )));
        }
        let limit = self.limit(cap);
        let mut lease = self.lease(limit).await?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let request = request.map(|body| {
            Full::new(body).map_err(
                |never: std::convert::Infallible| -> wasmtime_wasi_http::Error { match never {} },
            )
        });
        let resources = {
            let mut http = lease.slot().store.data_mut().http();
            http.new_incoming_request(Scheme::Http, request)
                .and_then(|req| Ok((req, http.new_response_outparam(sender)?)))
        };
        let (incoming, outparam) = resources.map_err(|e| PluginFailure::Trap(format!("{e:#}")))?;
        let deadline = tokio::time::Instant::now() + limit;
        // The component runs in this task, beside the collection of what it answers (it may
        // go on streaming the body after it has sent the head): no task of its own to spawn
        // and to wake across. The instance goes back (warm) when the call ended cleanly; it is
        // discarded when the call failed or ran out of time.
        let outcome = {
            let call = async {
                let Slot { store, bound, .. } = lease.slot();
                let Bound::WasiHttp(proxy) = bound else {
                    return Err(wasmtime::Error::msg("not a wasi:http component"));
                };
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut *store, incoming, outparam)
                    .await
            };
            let answer = async {
                let response = match receiver.await {
                    Ok(Ok(response)) => response,
                    Ok(Err(code)) => return Err(Unanswered::Code(code)),
                    Err(_) => return Err(Unanswered::NoHead),
                };
                let (parts, body) = response.into_parts();
                match Limited::new(body, MAX_RESPONSE_BYTES).collect().await {
                    Ok(collected) => Ok(http::Response::from_parts(parts, collected.to_bytes())),
                    Err(e) => Err(Unanswered::Body(e.to_string())),
                }
            };
            let mut call = std::pin::pin!(call);
            let mut answer = std::pin::pin!(answer);
            let mut call_ended = false;
            // Until the answer is collected or the call fails; then the call's end, if the
            // component is still running (all within the time limit).
            let raced = tokio::time::timeout_at(
                deadline,
                std::future::poll_fn(|cx| {
                    if !call_ended {
                        if let Poll::Ready(result) = call.as_mut().poll(cx) {
                            result?;
                            call_ended = true;
                        }
                    }
                    answer.as_mut().poll(cx).map(Ok)
                }),
            )
            .await;
            match raced {
                Ok(Ok(answered)) if !call_ended => {
                    match tokio::time::timeout_at(deadline, call.as_mut()).await {
                        Ok(Ok(())) => Ended::Answered(answered),
                        Ok(Err(error)) => Ended::Failed(error),
                        Err(_) => Ended::TimedOut,
                    }
                }
                Ok(Ok(answered)) => Ended::Answered(answered),
                Ok(Err(error)) => Ended::Failed(error),
                Err(_) => Ended::TimedOut,
            }
        };
        match outcome {
            Ended::Answered(answered) => {
                lease.finish(true);
                answered.map_err(|unanswered| self.logged(unanswered.failure()))
            }
            Ended::Failed(error) => Err(self.failed(lease, error)),
            Ended::TimedOut => Err(self.discard(lease, PluginFailure::Timeout)),
        }
    }
}

/// How a wasi:http call ended: its call returned (and what it answered), or it failed in the
/// host, or it ran out of time.
enum Ended {
    Answered(Result<http::Response<Bytes>, Unanswered>),
    Failed(wasmtime::Error),
    TimedOut,
}

/// Why a wasi:http component's answer could not be collected.
enum Unanswered {
    /// It set an error code instead of a response.
    Code(wasmtime_wasi_http::p2::bindings::http::types::ErrorCode),
    /// It never set a response.
    NoHead,
    /// Its response body failed or was too large.
    Body(String),
}

impl Unanswered {
    fn failure(self) -> PluginFailure {
        match self {
            Unanswered::Code(code) => PluginFailure::PluginError(format!("{code:?}")),
            Unanswered::NoHead => {
                PluginFailure::BadResponse("the component never set a response".into())
            }
            Unanswered::Body(e) => PluginFailure::BadResponse(format!("response body: {e}")),
        }
    }
}
