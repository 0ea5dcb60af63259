//! Hot reload: portico-serve reloads its API file (or its gateway file and the API files it
//! names) on SIGHUP and, unless told not to, when a file changes, with [`Gateway::reload`]
//! ([`Gateway::deploy_gateway_file`]): a new deployment compiled off the request path, swapped in atomically
//! (requests in flight finish on the version they started on), and a definition that does not
//! load leaves the running one serving. Plugins whose file and settings did not change are kept
//! as they are (the core's `PluginRuntime` keeps them, warm instances included).
//!
//! The watch is on the file's *directory*, not the file: an editor that writes a temporary file
//! and renames it over the original, or Kubernetes swapping a ConfigMap volume's `..data`
//! symlink, replaces the inode a watch on the file would be stuck to. Bursts of events (a
//! truncate then a write, a rename's two halves) are folded into one by a debouncer, and a
//! change that leaves the file's bytes as they were reloads nothing (SIGHUP always reloads: a
//! plugin's `.wasm` may have changed under an unchanged API file).
//!
//! Each attempt shows in the diagnostic log (stderr) and, on the admin port's `/metrics`, in
//! the metrics named after Prometheus's own (`prometheus_config_last_reload_successful`,
//! `prometheus_config_last_reload_success_timestamp_seconds`): see [`RELOADS_TOTAL`],
//! [`LAST_RELOAD_SUCCESSFUL`] and [`LAST_RELOAD_SUCCESS_TIMESTAMP`].

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use notify_debouncer_full::notify::event::{AccessKind, AccessMode};
use notify_debouncer_full::notify::{self, EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};
use portico::{ApiDefinition, Gateway, GatewayDefinition};
use tokio::sync::mpsc;

/// Counter of reload attempts that read the file, by `result` (`ok` or `error`).
pub const RELOADS_TOTAL: &str = "portico_config_reloads_total";
/// Gauge: 1 when the last reload (or the load at start) succeeded, 0 when it failed.
pub const LAST_RELOAD_SUCCESSFUL: &str = "portico_config_last_reload_successful";
/// Gauge: when the definition serving now was loaded (Unix seconds).
pub const LAST_RELOAD_SUCCESS_TIMESTAMP: &str =
    "portico_config_last_reload_success_timestamp_seconds";

/// How long the directory must stay quiet before a burst of events counts as one change.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Whether portico-serve watches its API file for changes (`--no-watch` turns it off; SIGHUP
/// reloads either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Watch {
    /// Reload when the file changes.
    On,
    /// Reload on SIGHUP only.
    Off,
}

/// Why hot reload could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum HotReloadError {
    /// The directory of the API file cannot be watched (inotify's watch limit, a missing
    /// directory).
    Watch {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: notify::Error,
    },
    /// SIGHUP cannot be caught.
    Signal(std::io::Error),
}

impl std::fmt::Display for HotReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HotReloadError::Watch { dir, source } => write!(
                f,
                "cannot watch {} for changes of the API file: {source} \
                 (--no-watch turns watching off; SIGHUP still reloads)",
                dir.display()
            ),
            HotReloadError::Signal(e) => write!(f, "cannot catch SIGHUP: {e}"),
        }
    }
}

impl std::error::Error for HotReloadError {}

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// The watched directory saw the file (or a ConfigMap's `..data`) change.
    Changed,
    /// SIGHUP: reload even when the file's bytes are the same.
    Signal,
}

/// Reloads a gateway from its API file while it lives; dropping it stops reloading.
pub struct HotReload {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Kept for its thread: dropping it stops the watch.
    watcher: Option<Debouncer<RecommendedWatcher, RecommendedCache>>,
}

impl std::fmt::Debug for HotReload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotReload")
            .field("watching", &self.watcher.is_some())
            .finish()
    }
}

impl Drop for HotReload {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// What is reloaded: one API's definition file, or a gateway file (`--gateway`).
#[derive(Debug, Clone)]
enum Source {
    Api(PathBuf),
    Gateway(PathBuf),
}

impl Source {
    fn file(&self) -> &Path {
        match self {
            Source::Api(file) | Source::Gateway(file) => file,
        }
    }

    /// The files whose change reloads: the file itself, a gateway file's APIs' files, and
    /// the definition files stages' canaries run (as the files name them now).
    fn files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.file().to_path_buf()];
        if let Source::Gateway(file) = self {
            let dir = file.parent().unwrap_or(Path::new(""));
            if let Ok(gateway) = GatewayDefinition::from_file(file) {
                for (_, api) in gateway.apis.iter() {
                    let named = [&api.file, &api.openapi, &api.functions];
                    files.extend(named.into_iter().flatten().map(|f| dir.join(f)));
                }
            }
        }
        let canaries: Vec<PathBuf> = files.iter().flat_map(|f| canary_files(f)).collect();
        files.extend(canaries);
        files
    }

    /// Deploys what the files say now.
    fn deploy(&self, gateway: &Gateway) -> Result<(), portico::Error> {
        match self {
            Source::Api(file) => ApiDefinition::from_file(file)
                .and_then(|definition| gateway.reload(&definition).map_err(|e| e.in_file(file))),
            Source::Gateway(file) => gateway.deploy_gateway_file(file).map(|_| ()),
        }
    }
}

/// The definition files the canaries of API file `file` run (`stages.X.canary.deployment`
/// naming a file); none when `file` is not an API definition that reads.
fn canary_files(file: &Path) -> Vec<PathBuf> {
    let dir = file.parent().unwrap_or(Path::new(""));
    let Ok(definition) = ApiDefinition::from_file(file) else {
        return Vec::new();
    };
    definition
        .stages
        .iter()
        .filter_map(|(_, stage)| stage.canary.as_ref()?.deployment_file())
        .map(|canary| dir.join(canary))
        .collect()
}

impl HotReload {
    /// Reloads `gateway` from `file` (the file it was loaded from: relative paths in it keep
    /// starting from the directory the gateway was given) on SIGHUP (unix) and, with
    /// [`Watch::On`], when the file changes. Sets the reload gauges for the definition loaded
    /// at start. Must be called inside a tokio runtime.
    pub fn start(gateway: Gateway, file: &Path, watch: Watch) -> Result<HotReload, HotReloadError> {
        Self::start_source(gateway, Source::Api(file.to_path_buf()), watch)
    }

    /// [`HotReload::start`] for a gateway built from a gateway file
    /// ([`Gateway::gateway_file_builder`]): a change of the gateway file or of an API file it
    /// names redeploys them all at once ([`Gateway::deploy_gateway_file`]).
    pub fn start_gateway_file(
        gateway: Gateway,
        file: &Path,
        watch: Watch,
    ) -> Result<HotReload, HotReloadError> {
        Self::start_source(gateway, Source::Gateway(file.to_path_buf()), watch)
    }

    fn start_source(
        gateway: Gateway,
        source: Source,
        watch: Watch,
    ) -> Result<HotReload, HotReloadError> {
        describe_metrics();
        metrics::gauge!(LAST_RELOAD_SUCCESSFUL).set(1.0);
        metrics::gauge!(LAST_RELOAD_SUCCESS_TIMESTAMP).set(unix_now());
        let (tx, rx) = mpsc::unbounded_channel();
        let watcher = match watch {
            Watch::On => Some(watch_directories(&source.files(), tx.clone())?),
            Watch::Off => None,
        };
        let mut tasks = Vec::new();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut hangup = signal(SignalKind::hangup()).map_err(HotReloadError::Signal)?;
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                while hangup.recv().await.is_some() {
                    if tx.send(Trigger::Signal).is_err() {
                        break;
                    }
                }
            }));
        }
        drop(tx);
        tasks.push(tokio::spawn(reload_loop(gateway, source, rx)));
        Ok(HotReload { tasks, watcher })
    }
}

/// Watches the directories of `files`, sending [`Trigger::Changed`] after each quiet burst of
/// events that may have changed one of the files. Accesses are not changes: a reload opens
/// and reads the file, and inotify reports that (`IN_OPEN`, `IN_CLOSE_NOWRITE`); counted as
/// a change, every reload would set off the next, forever.
fn watch_directories(
    files: &[PathBuf],
    tx: mpsc::UnboundedSender<Trigger>,
) -> Result<Debouncer<RecommendedWatcher, RecommendedCache>, HotReloadError> {
    let dir_of = |file: &Path| match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let names: Vec<OsString> = files
        .iter()
        .map(|file| file.file_name().unwrap_or_default().to_owned())
        .collect();
    let failed = |dir: &Path, source| HotReloadError::Watch {
        dir: dir.to_path_buf(),
        source,
    };
    let first = files.first().map(|f| dir_of(f)).unwrap_or_default();
    let handler = move |result: DebounceEventResult| match result {
        Ok(events) => {
            let concerned = events.iter().any(|debounced| {
                may_change(&debounced.event.kind)
                    && debounced
                        .event
                        .paths
                        .iter()
                        .any(|path| names.iter().any(|name| concerns(path, name)))
            });
            if concerned {
                let _ = tx.send(Trigger::Changed);
            }
        }
        Err(errors) => {
            for e in errors {
                tracing::warn!(error = %e, "watching the API file's directory failed");
            }
        }
    };
    let mut debouncer = new_debouncer(DEBOUNCE, None, handler).map_err(|e| failed(&first, e))?;
    let mut watched: Vec<PathBuf> = Vec::new();
    for dir in files.iter().map(|f| dir_of(f)) {
        if watched.contains(&dir) {
            continue;
        }
        debouncer
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|e| failed(&dir, e))?;
        watched.push(dir);
    }
    Ok(debouncer)
}

/// Whether an event of this kind may have changed a file: anything but an access, save a
/// close after writing (`IN_CLOSE_WRITE`).
fn may_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(access) => access == &AccessKind::Close(AccessMode::Write),
        _ => true,
    }
}

/// Whether an event on `path` may have changed the API file `name`: the file itself (written
/// in place, or renamed over), or a name starting with `..`, as Kubernetes's atomic writer of
/// ConfigMap and Secret volumes names its timestamped directories and the `..data` symlink it
/// swaps (the file is a symlink through `..data`). Other files in the directory (an access log
/// written beside the definition) do not count.
fn concerns(path: &Path, name: &OsStr) -> bool {
    path.file_name()
        .is_some_and(|changed| changed == name || changed.as_encoded_bytes().starts_with(b".."))
}

/// Reloads on each trigger, one reload at a time; triggers that arrive during a reload are
/// folded into the next one.
async fn reload_loop(gateway: Gateway, source: Source, mut rx: mpsc::UnboundedReceiver<Trigger>) {
    let file = source.file().to_path_buf();
    // The bytes of the last attempt (loaded or refused): an event that leaves them unchanged
    // reloads nothing, so a broken file is reported once, not at every unrelated event. None
    // at first: the file may have changed between the load at start and the watch.
    let mut last: Option<Vec<u8>> = None;
    while let Some(trigger) = rx.recv().await {
        let mut force = trigger == Trigger::Signal;
        while let Ok(more) = rx.try_recv() {
            force |= more == Trigger::Signal;
        }
        let (reloaded, from, previous) = (gateway.clone(), source.clone(), last.take());
        let attempt =
            tokio::task::spawn_blocking(move || reload(&reloaded, &from, force, previous)).await;
        let outcome = match attempt {
            Ok((outcome, bytes)) => {
                last = bytes;
                outcome
            }
            Err(e) => Outcome::Failed(format!(
                "{}: the reload stopped unexpectedly: {e}",
                file.display()
            )),
        };
        report(&gateway, &file, outcome);
    }
}

/// How a reload went.
#[derive(Debug)]
enum Outcome {
    /// The file's bytes are those of the last attempt: nothing to do.
    Unchanged,
    /// The new definition serves.
    Reloaded,
    /// The old definition keeps serving; why (naming the file and the key path).
    Failed(String),
}

/// Reads, parses and compiles `source` into `gateway` (blocking: compiling plugins takes up
/// to seconds); returns the outcome and the bytes read, if any.
fn reload(
    gateway: &Gateway,
    source: &Source,
    force: bool,
    previous: Option<Vec<u8>>,
) -> (Outcome, Option<Vec<u8>>) {
    let mut bytes = Vec::new();
    for file in source.files() {
        match std::fs::read(&file) {
            Ok(read) => {
                bytes.extend_from_slice(&read);
                // Between files: two files' bytes cannot pass for others'.
                bytes.extend_from_slice(file.as_os_str().as_encoded_bytes());
            }
            Err(e) => {
                return (
                    Outcome::Failed(format!("cannot read {}: {e}", file.display())),
                    previous,
                )
            }
        }
    }
    if !force && previous.as_deref() == Some(bytes.as_slice()) {
        return (Outcome::Unchanged, Some(bytes));
    }
    // Deploying reads the files again, to parse them as load does (format by extension,
    // errors naming the file); had one changed in between, the next event reloads once more.
    let loaded = source.deploy(gateway);
    let outcome = match loaded {
        Ok(()) => Outcome::Reloaded,
        Err(e) => Outcome::Failed(e.to_string()),
    };
    (outcome, Some(bytes))
}

/// Tells the diagnostic log and the metrics how a reload went.
fn report(gateway: &Gateway, file: &Path, outcome: Outcome) {
    match outcome {
        Outcome::Unchanged => {
            tracing::debug!(file = %file.display(), "the API file's bytes did not change; nothing reloaded");
        }
        Outcome::Reloaded => {
            metrics::counter!(RELOADS_TOTAL, "result" => "ok").increment(1);
            metrics::gauge!(LAST_RELOAD_SUCCESSFUL).set(1.0);
            metrics::gauge!(LAST_RELOAD_SUCCESS_TIMESTAMP).set(unix_now());
            tracing::info!(
                file = %file.display(),
                apis = ?gateway.api_names(),
                stages = ?gateway.stage_names(),
                "reloaded the API definition"
            );
        }
        Outcome::Failed(error) => {
            metrics::counter!(RELOADS_TOTAL, "result" => "error").increment(1);
            metrics::gauge!(LAST_RELOAD_SUCCESSFUL).set(0.0);
            tracing::error!("reload failed, the previous definition keeps serving: {error}");
        }
    }
}

/// HELP lines, and both counters at 0 so that a dashboard sees them before the first reload.
fn describe_metrics() {
    metrics::describe_counter!(
        RELOADS_TOTAL,
        "Reloads of the API definition, by result (ok, error)."
    );
    metrics::describe_gauge!(
        LAST_RELOAD_SUCCESSFUL,
        "Whether the last reload of the API definition succeeded (1) or failed (0)."
    );
    metrics::describe_gauge!(
        LAST_RELOAD_SUCCESS_TIMESTAMP,
        metrics::Unit::Seconds,
        "When the API definition serving now was loaded (Unix time)."
    );
    metrics::counter!(RELOADS_TOTAL, "result" => "ok").increment(0);
    metrics::counter!(RELOADS_TOTAL, "result" => "error").increment(0);
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_the_file_is_not_a_change() {
        use notify::event::{CreateKind, DataChange, ModifyKind, RemoveKind, RenameMode};
        let reads = [
            AccessKind::Open(AccessMode::Any),
            AccessKind::Read,
            AccessKind::Close(AccessMode::Read),
            AccessKind::Any,
        ];
        for access in reads {
            assert!(!may_change(&EventKind::Access(access)), "{access:?}");
        }
        let changes = [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Create(CreateKind::File),
            EventKind::Remove(RemoveKind::File),
            EventKind::Any,
        ];
        for kind in changes {
            assert!(may_change(&kind), "{kind:?}");
        }
    }

    #[test]
    fn events_that_concern_the_file() {
        let name = OsStr::new("api.yaml");
        let concerned = [
            "/etc/portico/api.yaml",
            "api.yaml",
            "/etc/portico/..data",
            "/etc/portico/..data_tmp",
            "/etc/portico/..2026_11_30_14_00_00.123456789",
        ];
        for path in concerned {
            assert!(concerns(Path::new(path), name), "{path}");
        }
        let unconcerned = [
            "/etc/portico/access.log",
            "/etc/portico/.api.yaml.swp",
            "/etc/portico/api.yaml~",
            "/etc/portico/other.yaml",
            "/",
        ];
        for path in unconcerned {
            assert!(!concerns(Path::new(path), name), "{path}");
        }
    }
}
