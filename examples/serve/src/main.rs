//! `portico-serve --api FILE --listen ADDR [--tls-cert FILE --tls-key FILE] [--data-dir DIR]
//! [--access-log PATH|-] [--admin-listen ADDR] [--redis URL] [--no-watch]`: serve every stage
//! of an API definition (over HTTPS with the TLS flags), reloading it on SIGHUP and when the
//! file changes; or `portico-serve --openapi FILE
//! [--functions FILE] [--stage NAME] [--fail-on-warnings] ...`: import an OpenAPI 3.0 document
//! as API Gateway does and serve it on one stage; or `portico-serve --gateway FILE`: several
//! APIs behind custom domains and API mappings. `--otlp-endpoint URL [--trace-sample RATIO]`
//! exports the traced stages' spans (`tracingEnabled`) over OTLP/HTTP.

use std::os::fd::AsFd as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use portico::config::Protocol;
use portico::openapi::{BasePathMode, FunctionsFile};
use portico::{OpenApiOptions, ACCESS_LOG_TARGET, TRACE_TARGET};
use portico_serve::{shutdown_signal, AccessLogLayer, HotReload, OtlpExport, Server, Watch};
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::prelude::*;

/// jemalloc: plugin calls allocate and free kilobyte-sized stores and futures, which glibc's
/// malloc serves slowly (README, "Which allocator").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Serve a Portico API definition (YAML or JSON) over HTTP.
#[derive(Parser)]
#[command(name = "portico-serve", version)]
struct Args {
    /// The API definition file.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present_any = ["openapi", "gateway"],
        conflicts_with_all = ["openapi", "gateway"]
    )]
    api: Option<PathBuf>,
    /// A gateway file: several APIs (`apis: {NAME: {file: F} | {openapi: F}}`) and the custom
    /// domains mapping hosts and base paths onto their stages (`domains`).
    #[arg(long, value_name = "FILE", conflicts_with = "openapi")]
    gateway: Option<PathBuf>,
    /// An OpenAPI 3.0 document with API Gateway's extensions, imported and served instead of
    /// a definition file.
    #[arg(long, value_name = "FILE")]
    openapi: Option<PathBuf>,
    /// With --openapi: the functions file (plugins for the document's Lambda functions, JWT
    /// keys, stage variables, API keys).
    #[arg(long, value_name = "FILE", requires = "openapi")]
    functions: Option<PathBuf>,
    /// With --openapi: the stage to serve the API on (default `$default`, served at /).
    #[arg(long, value_name = "NAME", requires = "openapi")]
    stage: Option<String>,
    /// With --openapi: refuse to start when the import gives warnings (AWS's failonwarnings).
    #[arg(long, requires = "openapi")]
    fail_on_warnings: bool,
    /// With --openapi: REST API or HTTP API semantics.
    #[arg(
        long,
        value_name = "http|rest",
        default_value = "http",
        requires = "openapi"
    )]
    protocol: ProtocolArg,
    /// With --openapi: how the servers' base path is applied (AWS's basepath import
    /// parameter).
    #[arg(
        long,
        value_name = "ignore|prepend|split",
        default_value = "ignore",
        requires = "openapi"
    )]
    basepath: BasePathArg,
    /// The address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Serve HTTPS (HTTP/2 or HTTP/1.1 by ALPN) on --listen with the certificate chain in FILE
    /// (PEM, the server's certificate first); the admin port stays plain HTTP.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert's certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Keep the plugins' key-value data in DIR/kv.redb (durable); in memory when omitted.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Append the stages' access log lines (their `accessLog.format`) to PATH, or to stdout
    /// with `-`.
    #[arg(long, value_name = "PATH|-")]
    access_log: Option<String>,
    /// Serve the metrics at http://ADDR/metrics (Prometheus text format).
    #[arg(long, value_name = "ADDR")]
    admin_listen: Option<String>,
    /// Keep buckets and quotas in the Redis at URL (redis://HOST:PORT), shared with every
    /// gateway pointed at it, whatever the definition's rateStore says; kvStore and
    /// authorizerCache of type redis use it too.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Do not reload the API file when it changes (SIGHUP still reloads it). An --openapi
    /// document is read once, at start.
    #[arg(long, conflicts_with = "openapi")]
    no_watch: bool,
    /// Export the spans of traced stages (`tracingEnabled: true`) to the OpenTelemetry
    /// collector, Jaeger or Tempo at URL, over OTLP/HTTP (protobuf; `/v1/traces` is appended
    /// unless URL ends with it). Without it nothing is exported, and traced stages still pass
    /// trace headers on.
    #[arg(long, value_name = "URL", value_parser = portico_serve::traces_url)]
    otlp_endpoint: Option<String>,
    /// The share of new traces recorded and exported, 0.0 to 1.0 (default 1: every trace, as
    /// OpenTelemetry's SDKs do; a collector can sample further). A caller's own decision
    /// (`Sampled=1`, a sampled `traceparent`) is kept, as X-Ray keeps it.
    #[arg(
        long,
        value_name = "RATIO",
        default_value = "1.0",
        value_parser = portico_serve::parse_ratio,
        requires = "otlp_endpoint"
    )]
    trace_sample: f64,
}

/// `--protocol`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum ProtocolArg {
    Http,
    Rest,
}

/// `--basepath`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum BasePathArg {
    Ignore,
    Prepend,
    Split,
}

/// The import options the flags ask for.
fn openapi_options(args: &Args) -> Result<OpenApiOptions, portico::Error> {
    let mut options = OpenApiOptions::new()
        .protocol(match args.protocol {
            ProtocolArg::Http => Protocol::Http,
            ProtocolArg::Rest => Protocol::Rest,
        })
        .base_path(match args.basepath {
            BasePathArg::Ignore => BasePathMode::Ignore,
            BasePathArg::Prepend => BasePathMode::Prepend,
            BasePathArg::Split => BasePathMode::Split,
        })
        .fail_on_warnings(args.fail_on_warnings);
    if let Some(stage) = &args.stage {
        options = options.stage(stage);
    }
    if let Some(file) = &args.functions {
        options = options.functions(FunctionsFile::from_file(file)?);
    }
    Ok(options)
}

/// A log writer on a thread of its own (tracing-appender's): a request thread hands its line
/// over and goes on, and the thread writes the lines through a 64 KiB buffer, flushed whenever
/// no line is waiting, so a busy server writes many lines a system call and an idle one at
/// once. Nothing is dropped: when 128,000 lines wait (`lossy(false)`), a request waits for
/// room. The guard flushes what is left when `main` returns.
fn off_thread(
    writer: impl std::io::Write + Send + 'static,
    name: &str,
) -> (NonBlocking, WorkerGuard) {
    NonBlockingBuilder::default()
        .lossy(false)
        .thread_name(name)
        .finish(std::io::BufWriter::with_capacity(64 << 10, writer))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let access_log = match args.access_log.as_deref() {
        None => None,
        // Straight to fd 1 (a duplicate): `Stdout` would write each line as it ends.
        Some("-") => match std::io::stdout().as_fd().try_clone_to_owned() {
            Ok(fd) => Some(off_thread(std::fs::File::from(fd), "access-log")),
            Err(e) => {
                eprintln!("portico-serve: cannot write the access log to stdout: {e}");
                return ExitCode::FAILURE;
            }
        },
        Some(path) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(file) => Some(off_thread(file, "access-log")),
            Err(e) => {
                eprintln!("portico-serve: cannot open the access log {path}: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let (access_log, _access_log_flushed) = access_log.unzip();
    let (stderr, _stderr_flushed) = off_thread(std::io::stderr(), "diagnostic-log");
    let to_stdout = args.access_log.as_deref() == Some("-");
    // The diagnostic log never repeats the access log lines.
    let diagnostics = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive(
            format!("{ACCESS_LOG_TARGET}=off")
                .parse()
                .expect("a valid directive"),
        )
        // Nor the spans of traced requests: they are trace data, for --otlp-endpoint.
        .add_directive(
            format!("{TRACE_TARGET}=off")
                .parse()
                .expect("a valid directive"),
        );
    // The exporter needs the runtime, and the subscriber is global: built here, first.
    let export = match &args.otlp_endpoint {
        None => None,
        Some(url) => match OtlpExport::start(url, args.trace_sample) {
            Ok(export) => Some(export),
            Err(e) => {
                eprintln!("portico-serve: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(stderr)
                .with_filter(diagnostics),
        )
        .with(export.as_ref().map(OtlpExport::layer))
        .with(access_log.map(|writer| {
            AccessLogLayer::new(writer)
                .with_filter(filter_fn(|meta| meta.target() == ACCESS_LOG_TARGET))
        }))
        .init();
    if args.admin_listen.is_some() {
        // The recorder first, so that what the gateway shows while it loads (its plugins'
        // provisioned instances) reaches /metrics.
        portico_serve::metrics_handle();
    }
    let started = match (&args.gateway, &args.api, &args.openapi) {
        (Some(file), _, _) => Server::start_gateway_file(
            file,
            &args.listen,
            args.data_dir.as_deref(),
            args.redis.as_deref(),
        )
        .await
        .map(|server| (server, Vec::new())),
        (None, Some(api), _) => Server::start_with_redis(
            api,
            &args.listen,
            args.data_dir.as_deref(),
            args.redis.as_deref(),
        )
        .await
        .map(|server| (server, Vec::new())),
        (None, None, Some(openapi)) => match openapi_options(&args) {
            Ok(options) => {
                Server::start_openapi(
                    openapi,
                    &options,
                    &args.listen,
                    args.data_dir.as_deref(),
                    args.redis.as_deref(),
                )
                .await
            }
            Err(e) => {
                eprintln!("portico-serve: {e}");
                return ExitCode::FAILURE;
            }
        },
        (None, None, None) => {
            eprintln!("portico-serve: give --api FILE, --gateway FILE or --openapi FILE");
            return ExitCode::FAILURE;
        }
    };
    let (server, warnings) = match started {
        Ok(started) => started,
        Err(e) => {
            eprintln!("portico-serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    // API Gateway returns an import's warnings with the API it created: they go to stderr.
    for warning in &warnings {
        eprintln!("portico-serve: warning: {warning}");
    }
    let source = args
        .api
        .as_ref()
        .or(args.gateway.as_ref())
        .or(args.openapi.as_ref())
        .cloned()
        .unwrap_or_default();
    let server = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => match server.with_tls(cert, key) {
            Ok(server) => server,
            Err(e) => {
                eprintln!("portico-serve: {e}");
                return ExitCode::FAILURE;
            }
        },
        // clap asks for both flags or neither.
        _ => server,
    };
    let server = match &args.admin_listen {
        None => server,
        Some(admin) => match server.with_admin(admin).await {
            Ok(server) => server,
            Err(e) => {
                eprintln!("portico-serve: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    // Before the banner: whoever waits for it may send SIGHUP at once.
    // Hot reload is of an API definition file (--api); an imported OpenAPI document is read
    // once, at start.
    let watch = if args.no_watch { Watch::Off } else { Watch::On };
    let reload = match (&args.api, &args.gateway) {
        (Some(api), _) => Some(HotReload::start(server.gateway().clone(), api, watch)),
        (None, Some(file)) => Some(HotReload::start_gateway_file(
            server.gateway().clone(),
            file,
            watch,
        )),
        (None, None) => None,
    };
    let _reload = match reload.transpose() {
        Ok(reload) => reload,
        Err(e) => {
            eprintln!("portico-serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    // With the access log on stdout, stdout carries nothing else.
    let banner = |line: String| {
        if to_stdout {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    if let Some(admin) = server.admin_addr() {
        banner(format!("portico-serve: metrics on http://{admin}/metrics"));
    }
    banner(format!(
        "portico-serve: {} on {}",
        source.display(),
        server.base_url()
    ));
    if args.gateway.is_some() {
        for api in server.gateway().api_names() {
            banner(format!("  api {api}"));
        }
    } else {
        for (stage, url) in server.stage_urls() {
            banner(format!("  stage {stage:<12} {url}"));
        }
    }
    let served = server.serve(shutdown_signal()).await;
    if let Some(export) = export {
        // The batch processor's thread waits on requests that run on this runtime: not from
        // one of its workers.
        let _ = tokio::task::spawn_blocking(move || export.shutdown()).await;
    }
    match served {
        Ok(()) => {
            banner("portico-serve: stopped".to_owned());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("portico-serve: {e}");
            ExitCode::FAILURE
        }
    }
}
