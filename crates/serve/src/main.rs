//! `serve`: the drawing page and the JSON API on one address, with the shipped model, a
//! training run's, or PyTorch weights.

use anyhow::Context;
use clap::Parser;
use infer::DigitClassifier;
use infer::cli::{ModelArgs, TtaArgs};
use serve::api::AppState;
use serve::batcher::Batcher;
use std::net::SocketAddr;
use std::process::ExitCode;

/// Serve the network: a page to draw digits on, and an HTTP API to classify images.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    tta: TtaArgs,
    /// Where to listen. Only this machine can connect unless you choose another interface,
    /// e.g. `--addr 0.0.0.0:8080` for every network this machine is on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Largest request body accepted, in megabytes.
    #[arg(long, value_name = "MB", default_value_t = 8)]
    max_body_mb: usize,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let source = cli.model.source();
    let ready = cli.model.backend.init()?;
    let info = source.info().context("cannot load the model")?;
    let classifier = DigitClassifier::load(&source, ready.device)
        .context("cannot load the model")?
        .with_shifted_copies(cli.tta.tta);
    let state = AppState {
        batcher: Batcher::start(classifier),
        model: info,
        body_limit: cli.max_body_mb.saturating_mul(1024 * 1024),
        decoding: tokio::sync::Semaphore::new(
            2 * std::thread::available_parallelism().map_or(2, usize::from),
        ),
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(cli.addr)
            .await
            .with_context(|| format!("{}: cannot listen", cli.addr))?;
        let address = listener.local_addr()?;
        // The first line on stdout is the address, for people and for scripts (port 0 picks
        // a free port).
        println!(
            "serving {} on http://{address}/ ({})",
            source.describe(),
            ready.description
        );
        serve::serve(listener, serve::app(state), shutdown_signal()).await?;
        eprintln!("stopped");
        Ok(())
    })
}

/// Ctrl-C or SIGTERM (what service managers and containers send).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    eprintln!("shutting down: finishing the requests in flight");
}
