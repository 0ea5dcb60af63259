//! What a component may import: a sandboxed WASI (clocks and randomness only), wasi:http
//! without outgoing requests, and `portico:plugin`'s kv, log and config. [`HostState`] is the
//! data of one call's store, which these imports read.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::{self, types, IncomingRequest};
use crate::store::{KvError, KvStore};

/// The data of one instance's `Store`: of one call on a fresh instance, of every call of a
/// warm one. Only the call's deadline and what went wrong in it are per call ([`Self::begin`]);
/// the WASI context and the resource table are the instance's own and outlive a call, as the
/// guest keeps handles into them (a Python guest's stdout stream, say).
pub(crate) struct HostState {
    pub(super) plugin: Arc<str>,
    pub(super) config: Arc<BTreeMap<String, String>>,
    pub(super) kv: Arc<dyn KvStore>,
    pub(super) table: ResourceTable,
    /// Built on first use: components that import no WASI never pay for it.
    pub(super) wasi: Option<WasiCtx>,
    pub(super) http: Option<WasiHttpCtx>,
    pub(super) http_hooks: NoOutgoingHttp,
    pub(super) limiter: MemoryLimiter,
    /// When the current call must end (checked at every epoch tick).
    pub(super) deadline: Instant,
    /// The current call ran past its deadline.
    pub(super) timed_out: bool,
}

impl HostState {
    /// Starts a call, `now`, that may run for `limit`: a new deadline, and no failure yet. (An
    /// instance that timed out or reached its memory cap is never called again, so the flags
    /// are clear already on a warm instance; a fresh one starts clear.)
    pub(super) fn begin(&mut self, now: Instant, limit: Duration) {
        self.deadline = now + limit;
        self.timed_out = false;
        self.limiter.exceeded = false;
    }

    /// Whether the instance may serve another call: the last one neither ran out of time
    /// nor asked for more memory than its cap.
    pub(super) fn unharmed(&self) -> bool {
        !self.timed_out && !self.limiter.exceeded
    }

    /// See [`MemoryLimiter::nearly_full`].
    pub(super) fn nearly_full(&self) -> bool {
        self.limiter.nearly_full()
    }
}

/// The sandbox a plugin gets from WASI: clocks and randomness, nothing else (no files, no
/// environment, no sockets, no stdin; stdout and stderr are discarded).
fn sandboxed_wasi() -> WasiCtx {
    let mut builder = WasiCtx::builder();
    builder
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    builder.build()
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: self.wasi.get_or_insert_with(sandboxed_wasi),
            table: &mut self.table,
        }
    }
}

/// wasi:io's streams and pollables live in the resource table: no WASI context needed.
impl wasmtime_wasi_io::IoView for HostState {
    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: self.http.get_or_insert_with(WasiHttpCtx::new),
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

/// Plugins get no network: a component's outgoing HTTP request is denied.
#[derive(Default)]
pub(super) struct NoOutgoingHttp;

impl wasmtime_wasi_http::WasiHttpHooks for NoOutgoingHttp {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn std::future::Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<
                        dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>>
                            + Send,
                    >,
                )>,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

impl bindings::types::Host for HostState {}

impl HostState {
    /// The request a plugin's `incoming-request` handle names (a trap when it is gone).
    fn request(&self, handle: &Resource<IncomingRequest>) -> wasmtime::Result<&types::Request> {
        Ok(&self.table.get(handle)?.0)
    }
}

/// The values of `name` in `fields` joined by `,` (API Gateway's 2.0 event joins repeated
/// headers and query parameters so); none when there is none. Header names match in any case
/// (`any_case`), query parameter names exactly.
fn joined(fields: &[(String, String)], name: &str, any_case: bool) -> Option<String> {
    let mut values = fields.iter().filter(|(field, _)| {
        if any_case {
            field.eq_ignore_ascii_case(name)
        } else {
            field == name
        }
    });
    let mut joined = values.next()?.1.clone();
    for (_, value) in values {
        joined.push(',');
        joined.push_str(value);
    }
    Some(joined)
}

/// The value of `name` in `fields`, which have one value a name.
fn single(fields: &[(String, String)], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(field, _)| field == name)
        .map(|(_, value)| value.clone())
}

impl bindings::types::HostIncomingRequest for HostState {
    fn method(&mut self, request: Resource<IncomingRequest>) -> wasmtime::Result<String> {
        Ok(self.request(&request)?.method.clone())
    }

    fn raw_path(&mut self, request: Resource<IncomingRequest>) -> wasmtime::Result<String> {
        Ok(self.request(&request)?.raw_path.clone())
    }

    fn raw_query(&mut self, request: Resource<IncomingRequest>) -> wasmtime::Result<String> {
        Ok(self.request(&request)?.raw_query.clone())
    }

    fn query_parameter(
        &mut self,
        request: Resource<IncomingRequest>,
        name: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(joined(
            &self.request(&request)?.query_parameters,
            &name,
            false,
        ))
    }

    fn query_parameters(
        &mut self,
        request: Resource<IncomingRequest>,
    ) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.request(&request)?.query_parameters.clone())
    }

    fn header(
        &mut self,
        request: Resource<IncomingRequest>,
        name: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(joined(&self.request(&request)?.headers, &name, true))
    }

    fn headers(
        &mut self,
        request: Resource<IncomingRequest>,
    ) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.request(&request)?.headers.clone())
    }

    fn cookies(&mut self, request: Resource<IncomingRequest>) -> wasmtime::Result<Vec<String>> {
        Ok(self.request(&request)?.cookies.clone())
    }

    fn path_parameter(
        &mut self,
        request: Resource<IncomingRequest>,
        name: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(single(&self.request(&request)?.path_parameters, &name))
    }

    fn path_parameters(
        &mut self,
        request: Resource<IncomingRequest>,
    ) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.request(&request)?.path_parameters.clone())
    }

    fn stage(&mut self, request: Resource<IncomingRequest>) -> wasmtime::Result<String> {
        Ok(self.request(&request)?.stage.clone())
    }

    fn stage_variable(
        &mut self,
        request: Resource<IncomingRequest>,
        name: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(single(&self.request(&request)?.stage_variables, &name))
    }

    fn stage_variables(
        &mut self,
        request: Resource<IncomingRequest>,
    ) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.request(&request)?.stage_variables.clone())
    }

    fn route_key(&mut self, request: Resource<IncomingRequest>) -> wasmtime::Result<String> {
        Ok(self.request(&request)?.route_key.clone())
    }

    fn request_id(&mut self, request: Resource<IncomingRequest>) -> wasmtime::Result<String> {
        Ok(self.request(&request)?.request_id.clone())
    }

    fn source_ip(&mut self, request: Resource<IncomingRequest>) -> wasmtime::Result<String> {
        Ok(self.request(&request)?.source_ip.clone())
    }

    fn user_agent(&mut self, request: Resource<IncomingRequest>) -> wasmtime::Result<String> {
        Ok(self.request(&request)?.user_agent.clone())
    }

    fn request_time_epoch_ms(
        &mut self,
        request: Resource<IncomingRequest>,
    ) -> wasmtime::Result<u64> {
        Ok(self.request(&request)?.request_time_epoch_ms)
    }

    fn authorizer(
        &mut self,
        request: Resource<IncomingRequest>,
    ) -> wasmtime::Result<Option<types::AuthorizerContext>> {
        Ok(self.request(&request)?.authorizer.clone())
    }

    fn trace_id(&mut self, request: Resource<IncomingRequest>) -> wasmtime::Result<Option<String>> {
        Ok(self.request(&request)?.trace_id.clone())
    }

    fn body(&mut self, request: Resource<IncomingRequest>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.request(&request)?.body.clone())
    }

    fn drop(&mut self, request: Resource<IncomingRequest>) -> wasmtime::Result<()> {
        self.table.delete(request)?;
        Ok(())
    }
}

impl bindings::log::Host for HostState {
    fn log(&mut self, level: bindings::log::Level, message: String) -> wasmtime::Result<()> {
        use bindings::log::Level;
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(target: "portico::plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "portico::plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "portico::plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "portico::plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "portico::plugin", plugin, "{message}"),
        }
        Ok(())
    }
}

impl bindings::config::Host for HostState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.config.get(&key).cloned())
    }
}

fn kv_error(error: KvError) -> bindings::kv::KvError {
    match error {
        KvError::InvalidName(m) => bindings::kv::KvError::InvalidName(m),
        KvError::Storage(m) => bindings::kv::KvError::Storage(m),
    }
}

/// Runs a store call off the async executor when there is a tokio runtime to do it.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, KvError> + Send + 'static,
) -> Result<T, bindings::kv::KvError> {
    let result = match tokio::runtime::Handle::try_current() {
        Ok(handle) => match handle.spawn_blocking(work).await {
            Ok(result) => result,
            Err(e) => Err(KvError::Storage(format!("store task failed: {e}"))),
        },
        Err(_) => work(),
    };
    result.map_err(kv_error)
}

/// The most entries one `list-prefix` call returns, whatever the plugin asks.
const MAX_LIST: u32 = 1000;

impl bindings::kv::Host for HostState {
    async fn get(
        &mut self,
        table: String,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, bindings::kv::KvError>> {
        let kv = Arc::clone(&self.kv);
        Ok(blocking(move || kv.get(&table, &key)).await)
    }

    async fn put(
        &mut self,
        table: String,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), bindings::kv::KvError>> {
        let kv = Arc::clone(&self.kv);
        Ok(blocking(move || kv.put(&table, &key, &value)).await)
    }

    async fn delete(
        &mut self,
        table: String,
        key: String,
    ) -> wasmtime::Result<Result<bool, bindings::kv::KvError>> {
        let kv = Arc::clone(&self.kv);
        Ok(blocking(move || kv.delete(&table, &key)).await)
    }

    async fn list_prefix(
        &mut self,
        table: String,
        prefix: String,
        start_after: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Result<Vec<(String, Vec<u8>)>, bindings::kv::KvError>> {
        let kv = Arc::clone(&self.kv);
        let limit = limit.min(MAX_LIST) as usize;
        Ok(blocking(move || kv.list_prefix(&table, &prefix, start_after.as_deref(), limit)).await)
    }
}

/// The memory cap of one instance; remembers whether it refused anything so that the trap
/// that follows is reported as what it is.
pub(super) struct MemoryLimiter {
    pub(super) max_bytes: usize,
    pub(super) exceeded: bool,
    /// The size of the instance's largest memory, in bytes.
    pub(super) largest: usize,
    /// `largest` once the instance was made (see [`MemoryLimiter::instantiated`]).
    pub(super) at_start: usize,
}

impl MemoryLimiter {
    /// A limiter of memories up to `max_bytes`.
    pub(super) fn new(max_bytes: usize) -> Self {
        MemoryLimiter {
            max_bytes,
            exceeded: false,
            largest: 0,
            at_start: 0,
        }
    }

    /// Notes the memory the instance was made with.
    pub(super) fn instantiated(&mut self) {
        self.at_start = self.largest;
    }

    /// Whether a memory of the instance has grown, since the instance was made, past nine
    /// tenths of the cap. A linear memory never shrinks, so a warm instance whose plugin keeps
    /// some of what each call allocates (a leak, in the plugin or in its language's bindings)
    /// would go on until a call fails at the cap; past this mark it is retired after a call
    /// that ended well instead. One made that full and no fuller is left alone: it may never
    /// grow.
    pub(super) fn nearly_full(&self) -> bool {
        self.largest > self.at_start && self.largest > self.max_bytes / 10 * 9
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.exceeded = true;
            return Ok(false);
        }
        self.largest = self.largest.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter as _;

    const MB: usize = 1 << 20;

    #[test]
    fn an_instance_is_nearly_full_when_it_grew_past_nine_tenths_of_its_cap() {
        let grow = |limiter: &mut MemoryLimiter, to: usize| {
            let from = limiter.largest;
            assert!(limiter.memory_growing(from, to * MB, None).unwrap());
        };
        // Made small, grown past 90 of 100 MB by its calls: nearly full.
        let mut leaking = MemoryLimiter::new(100 * MB);
        grow(&mut leaking, 10);
        leaking.instantiated();
        grow(&mut leaking, 89);
        assert!(!leaking.nearly_full());
        grow(&mut leaking, 91);
        assert!(leaking.nearly_full());
        // Made at 95 of 100 MB and no fuller: left alone; once it grows, nearly full.
        let mut big = MemoryLimiter::new(100 * MB);
        grow(&mut big, 95);
        big.instantiated();
        assert!(!big.nearly_full());
        grow(&mut big, 96);
        assert!(big.nearly_full());
        // Past the cap: refused, and not counted as the memory's size.
        assert!(!big.memory_growing(96 * MB, 101 * MB, None).unwrap());
        assert!(big.exceeded);
        assert_eq!(big.largest, 96 * MB);
    }
}
