//! Serving a standard `wasi:http/proxy` component: the request handed over as an incoming
//! request, the response head and body collected under the call's time limit.

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
        // The component may go on streaming the body after it has sent the head, so it runs
        // in a task of its own, which holds the instance until the call ends: handed back
        // (warm) when it ended cleanly, discarded when it failed or the task was aborted.
        let task = tokio::spawn(async move {
            let Slot { store, bound, .. } = lease.slot();
            let Bound::WasiHttp(proxy) = bound else {
                return Some((
                    wasmtime::Error::msg("not a wasi:http component"),
                    false,
                    false,
                ));
            };
            let result = proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut *store, incoming, outparam)
                .await;
            match result {
                Ok(()) => {
                    lease.finish(true);
                    None
                }
                Err(error) => {
                    let state = lease.slot().store.data();
                    let failed = (error, state.timed_out, state.limiter.exceeded);
                    lease.finish(false);
                    Some(failed)
                }
            }
        });
        let deadline = tokio::time::Instant::now() + limit;
        let head = tokio::time::timeout_at(deadline, receiver).await;
        let response = match head {
            Ok(Ok(Ok(response))) => response,
            Ok(Ok(Err(code))) => {
                return Err(self.logged(PluginFailure::PluginError(format!("{code:?}"))))
            }
            Ok(Err(_)) => return Err(self.task_failure(task).await),
            Err(_) => {
                task.abort();
                return Err(self.logged(PluginFailure::Timeout));
            }
        };
        let (parts, body) = response.into_parts();
        let body =
            tokio::time::timeout_at(deadline, Limited::new(body, MAX_RESPONSE_BYTES).collect())
                .await;
        match body {
            Ok(Ok(collected)) => Ok(http::Response::from_parts(parts, collected.to_bytes())),
            Ok(Err(e)) => {
                task.abort();
                Err(self.logged(PluginFailure::BadResponse(format!("response body: {e}"))))
            }
            Err(_) => {
                task.abort();
                Err(self.logged(PluginFailure::Timeout))
            }
        }
    }

    /// Why the component's task ended without a response.
    async fn task_failure(
        &self,
        task: tokio::task::JoinHandle<Option<(wasmtime::Error, bool, bool)>>,
    ) -> PluginFailure {
        let failure = match task.await {
            Ok(Some((_, true, _))) => PluginFailure::Timeout,
            Ok(Some((_, _, true))) => PluginFailure::MemoryExceeded,
            Ok(Some((error, _, _))) => PluginFailure::Trap(format!("{error:#}")),
            Ok(None) => PluginFailure::BadResponse("the component never set a response".into()),
            Err(e) => PluginFailure::Trap(format!("the component's task failed: {e}")),
        };
        self.logged(failure)
    }
}
