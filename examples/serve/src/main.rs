//! `portico-serve --api FILE --listen ADDR`: serve every stage of an API definition.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use portico_serve::{shutdown_signal, Server};

/// Serve a Portico API definition (YAML or JSON) over HTTP.
#[derive(Parser)]
#[command(name = "portico-serve", version)]
struct Args {
    /// The API definition file.
    #[arg(long, value_name = "FILE")]
    api: PathBuf,
    /// The address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Keep the plugins' key-value data in DIR/kv.redb (durable); in memory when omitted.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let server = match Server::start(&args.api, &args.listen, args.data_dir.as_deref()).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("portico-serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "portico-serve: {} on http://{}",
        args.api.display(),
        server.local_addr()
    );
    for (stage, url) in server.stage_urls() {
        println!("  stage {stage:<12} {url}");
    }
    match server.serve(shutdown_signal()).await {
        Ok(()) => {
            println!("portico-serve: stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("portico-serve: {e}");
            ExitCode::FAILURE
        }
    }
}
