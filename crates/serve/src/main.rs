//! `serve`: the drawing page and the JSON API on one address, with the shipped model, a
//! training run's, or PyTorch weights.

#![deny(unsafe_code)]

use anyhow::Context;
use clap::Parser;
use infer::cli::{ModelArgs, TtaArgs};
use infer::console::note;
use infer::{DigitClassifier, ModelInfo};
use serve::api::{AppState, RequestLimits};
use serve::metrics::Metrics;
use serve::queue::InferenceQueue;
use serve::reload::Reloader;
use serve::server::{self, ConnectionLimits};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
#[cfg(unix)]
use tokio::signal::unix::{Signal, SignalKind, signal};

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
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = listen_address)]
    addr: SocketAddr,
    /// The model's name in the Open Inference Protocol's paths (`/v2/models/NAME/infer`).
    #[arg(long, default_value = "mnist", value_parser = model_name)]
    name: String,
    #[command(flatten)]
    limits: LimitArgs,
    /// How each request is logged on stderr.
    #[arg(long, value_enum, default_value_t = serve::LogFormat::Text)]
    log_format: serve::LogFormat,
    /// Also serve the on-device site `cargo xtask web --out DIR` built, so the page can read
    /// digits in the browser.
    #[arg(long, value_name = "DIR")]
    site: Option<PathBuf>,
}

/// What the server takes on, each bounded whatever clients do.
#[derive(clap::Args, Debug)]
struct LimitArgs {
    /// Largest request body accepted, in megabytes.
    #[arg(long, value_name = "MB", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024))]
    max_body_mb: u16,
    /// Requests served at once; more are answered 503 at once, with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    max_in_flight: u32,
    /// Connections open at once; more wait in the kernel's queue. The process raises its
    /// open-file limit to its hard limit to hold them.
    #[arg(long, value_name = "N", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_connections: u32,
    /// Seconds a request may take from its headers to its answer, its body included.
    #[arg(long, value_name = "S", default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=3600))]
    request_timeout: u16,
    /// Seconds a connection may take to send a request's headers, or stay idle.
    #[arg(long, value_name = "S", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=3600))]
    header_timeout: u16,
    /// Seconds the requests in flight get to finish after Ctrl-C or SIGTERM.
    #[arg(long, value_name = "S", default_value_t = 8, value_parser = clap::value_parser!(u16).range(0..=3600))]
    drain_timeout: u16,
    /// Memory all concurrent image decodes may hold together, in megabytes.
    #[arg(long, value_name = "MB", default_value_t = 256, value_parser = clap::value_parser!(u16).range(16..=16_384))]
    decode_budget_mb: u16,
}

impl LimitArgs {
    fn requests(&self) -> RequestLimits {
        RequestLimits {
            body_bytes: usize::from(self.max_body_mb) * 1024 * 1024,
            timeout: Duration::from_secs(self.request_timeout.into()),
            max_in_flight: self.max_in_flight as usize,
            decode_budget_bytes: u64::from(self.decode_budget_mb) * 1024 * 1024,
        }
    }

    fn connections(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections as usize,
            header_timeout: Duration::from_secs(self.header_timeout.into()),
            drain: Duration::from_secs(self.drain_timeout.into()),
        }
    }
}

/// `--addr`: an IP address with a port, or `localhost:PORT`. A bare port or a host name is
/// refused with examples, since which interface to open is the user's choice to make.
fn listen_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = text.parse() {
        return Ok(address);
    }
    if let Some(port) = text.strip_prefix("localhost:")
        && let Ok(port) = port.parse::<u16>()
    {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let port = text
        .rsplit(':')
        .next()
        .and_then(|port| port.parse::<u16>().ok())
        .unwrap_or(8080);
    let what = if text.parse::<u16>().is_ok() {
        "a port alone"
    } else {
        "not an IP address with a port"
    };
    Err(format!(
        "{what}; give an address and a port, e.g. 127.0.0.1:{port} (this machine only), \
         0.0.0.0:{port} (every IPv4 interface) or [::]:{port}"
    ))
}

/// `--name`: what can stand in a URL path segment as it is.
fn model_name(text: &str) -> Result<String, String> {
    let fits = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if (1..=64).contains(&text.len()) && text.chars().all(fits) {
        Ok(text.to_string())
    } else {
        Err("1 to 64 letters, digits, '-', '_' or '.'".into())
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            note(format_args!("error: {error:#}"));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    open_files::raise_to_hard_limit();
    let source = cli.model.source();
    let ready = cli.model.backend.kind.init()?;
    let info = source.info().context("cannot load the model")?;
    let reloader = Reloader {
        source: source.clone(),
        device: ready.device.clone(),
        shifted_copies: cli.tta.tta,
    };
    let classifier = DigitClassifier::load(&source, ready.device)
        .context("cannot load the model")?
        .with_shifted_copies(cli.tta.tta);
    // The first forward pass sets up the backend's kernels and buffers: done before the
    // server listens, so the first client does not pay for it and `/readyz` is true.
    classifier
        .classify(&[[0; data::PIXELS]])
        .context("the model cannot classify")?;
    let state = app_state(&cli, classifier, info)?;
    let draining = state.draining.clone();
    let state = Arc::new(state);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(cli.addr)
            .await
            .with_context(|| format!("{}: cannot listen", cli.addr))?;
        let address = listener.local_addr()?;
        // Listened to before the address is announced: a signal sent as soon as the server
        // is known to be up is caught, never left to its default action (ending the process).
        let signals = Signals::new();
        let hangups = Hangups::new();
        // The first line on stdout is the address, for people and for scripts (port 0 picks
        // a free port).
        // Serving goes on if nobody can read it.
        infer::console::progress(format_args!(
            "serving {} on http://{address}/ ({})",
            source.describe(),
            ready.description
        ));
        tokio::spawn(reload_on_hangup(hangups, reloader, state.clone()));
        let app = serve::app(state, cli.log_format);
        let connections = cli.limits.connections();
        let shutdown = async move {
            shutdown_signal(signals).await;
            draining.store(true, std::sync::atomic::Ordering::Relaxed);
        };
        let drained = server::serve(listener, app, &connections, shutdown).await;
        note(stopped(drained.cut, connections.drain));
        Ok(())
    })
}

/// What the handlers share: the classifier behind its queue, the limits, the metrics and the
/// on-device site, as the command line asks.
fn app_state(cli: &Cli, classifier: DigitClassifier, info: ModelInfo) -> anyhow::Result<AppState> {
    let metrics = Arc::new(Metrics::new(&info.label, &info.sha256));
    let limits = cli.limits.requests();
    // Room for every image the admitted requests may bring.
    let capacity = limits.max_in_flight.saturating_mul(serve::oip::MAX_IMAGES);
    let queue = InferenceQueue::start(classifier, capacity, metrics.clone());
    let mut state = AppState::new(queue, info, metrics, limits);
    state.local_only = cli.addr.ip().is_loopback();
    state.model_name = cli.name.clone();
    if let Some(dir) = &cli.site {
        state.site = Some(Arc::new(serve::site::Site::load(dir)?));
    }
    Ok(state)
}

/// The last line: how the server stopped, `cut` connections closed unfinished at the drain
/// deadline.
fn stopped(cut: usize, drain: std::time::Duration) -> String {
    match cut {
        0 => "stopped".to_string(),
        cut => format!(
            "stopped: the drain deadline ({} s) passed with {cut} connections open, closed \
             unfinished",
            drain.as_secs_f64()
        ),
    }
}

/// Loads the model again at each SIGHUP, keeping the old one when that fails.
async fn reload_on_hangup(mut hangups: Hangups, reloader: Reloader, state: Arc<AppState>) {
    while hangups.next().await {
        match reloader.reload(&state).await {
            Ok(info) => note(format_args!(
                "reloaded {} (sha256 {})",
                info.label, info.sha256
            )),
            Err(error) => note(format_args!(
                "reload failed, the model loaded before keeps serving: {error}"
            )),
        }
    }
}

/// The first Ctrl-C or SIGTERM (what service managers and containers send) starts a drain;
/// a second one ends the process at once.
async fn shutdown_signal(mut signals: Signals) {
    signals.next().await;
    note("shutting down: finishing the requests in flight (a second signal quits at once)");
    tokio::spawn(async move {
        signals.next().await;
        note("second signal: quitting now");
        std::process::exit(130);
    });
}

/// Ctrl-C and SIGTERM as one stream, listened to from its creation.
struct Signals {
    #[cfg(unix)]
    interrupt: Option<Signal>,
    #[cfg(unix)]
    terminate: Option<Signal>,
}

impl Signals {
    fn new() -> Self {
        Self {
            #[cfg(unix)]
            interrupt: signal(SignalKind::interrupt()).ok(),
            #[cfg(unix)]
            terminate: signal(SignalKind::terminate()).ok(),
        }
    }

    #[cfg(unix)]
    async fn next(&mut self) {
        tokio::select! {
            _ = received(&mut self.interrupt) => {},
            _ = received(&mut self.terminate) => {},
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// SIGHUP as a stream, listened to from its creation; never, where there is no SIGHUP.
struct Hangups {
    #[cfg(unix)]
    hangup: Option<Signal>,
}

impl Hangups {
    fn new() -> Self {
        Self {
            #[cfg(unix)]
            hangup: signal(SignalKind::hangup()).ok(),
        }
    }

    /// Waits for the next SIGHUP; `false` when none can come.
    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        return received(&mut self.hangup).await;
        #[cfg(not(unix))]
        return false;
    }
}

/// Waits for `signal`; for ever when it could not be listened to. `false` if its stream
/// ended.
#[cfg(unix)]
async fn received(signal: &mut Option<Signal>) -> bool {
    match signal {
        Some(signal) => signal.recv().await.is_some(),
        None => std::future::pending().await,
    }
}

/// Each connection is an open file: the soft limit (often 1,024) would refuse connections long
/// before `--max-connections`, so it is raised to the hard limit the system allows. The one
/// module of this binary with `unsafe`: two calls into the C library.
#[allow(unsafe_code)]
mod open_files {
    #[cfg(unix)]
    pub fn raise_to_hard_limit() {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is a valid rlimit for getrlimit to fill in.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return;
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            // SAFETY: `limit` is a valid rlimit; raising the soft limit to the hard one is
            // always allowed. On failure the old limit stays, which is safe.
            unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
        }
    }

    #[cfg(not(unix))]
    pub fn raise_to_hard_limit() {}
}
