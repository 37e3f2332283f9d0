//! `train`: trains the network as a TOML recipe says and writes the run's artifacts. This
//! binary owns the process: the command line, signals and everything printed.

#![deny(unsafe_code)]

use burn::data::dataset::Dataset;
use clap::Parser;
use infer::cli::{BackendArgs, RUN_DIR_FLAG, RUN_DIR_FORMER_FLAG};
use model::BackendKind;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use train::{Hooks, Interrupter, PreparedRun, Resume, SeedHooks, SeedList, SeedRuns, TrainOptions};

/// `println!` that never panics: training goes on, and its model is saved, when only its
/// printing fails (`train | head -1`, a full disk under a redirected log).
macro_rules! say {
    ($($arg:tt)*) => { infer::console::progress(format_args!($($arg)*)) };
}

/// `eprintln!` that never panics.
macro_rules! note {
    ($($arg:tt)*) => { infer::console::note(format_args!($($arg)*)) };
}

/// Train the MNIST network and write its artifacts.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// The run's TOML recipe.
    #[arg(long, default_value = "configs/default.toml")]
    config: PathBuf,
    #[command(flatten)]
    backend: BackendArgs,
    /// Override the config's `training.epochs`.
    #[arg(long)]
    epochs: Option<usize>,
    /// Where to write the run [default: artifacts/<config file stem>].
    #[arg(long = RUN_DIR_FLAG, alias = RUN_DIR_FORMER_FLAG, value_name = "DIR")]
    run_dir: Option<PathBuf>,
    /// Download MNIST from the public mirrors when its files are missing.
    #[arg(long)]
    download: bool,
    /// Continue the run in the run directory from its last complete epoch.
    #[arg(long)]
    resume: bool,
    /// Start over in a run directory that holds an earlier run, replacing its files
    /// (only once the new recipe, data and backend have been checked).
    #[arg(long, conflicts_with = "resume")]
    restart: bool,
    /// Override a config value, e.g. `--set optimizer.learning_rate=0.01` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Train the recipe once per seed into `<run dir>/seed-K/` and summarise the runs
    /// (mean ± standard deviation) in `seeds.csv` and `seeds.json`: `5` for seeds 1 to 5, or a
    /// list such as `3,7,11`. The config's own `seed` is not used.
    #[arg(long, value_name = "N|LIST")]
    seeds: Option<SeedList>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = TrainOptions {
        config_path: cli.config,
        backend: cli.backend.kind,
        epochs: cli.epochs,
        run_dir: cli.run_dir,
        download: cli.download,
        resume: cli.resume,
        restart: cli.restart,
        overrides: cli.overrides,
    };
    let result = match cli.seeds {
        None => run(&options),
        Some(seeds) => run_seeds(&options, seeds),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            note!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &TrainOptions) -> Result<(), train::TrainError> {
    let run = PreparedRun::prepare(options, |url| note!("downloading {url}"))?;
    // Burn's dashboard draws on a terminal; in a pipe or a log, one line per epoch instead.
    let dashboard = std::io::stdout().is_terminal();
    announce(&run, dashboard);
    let interrupter = Interrupter::new();
    signals::stop_on_signal(interrupter.clone());
    let hooks = epoch_lines(&run, interrupter, dashboard);
    let finished = run.train(hooks)?;
    for warning in &finished.warnings {
        note!("warning: {warning}");
    }
    let summary = &finished.summary;
    say!(
        "test accuracy {:.2}% (loss {:.4}) after {} epoch{} in {:.1} s; model saved to {}",
        summary.test_accuracy,
        summary.test_loss,
        summary.epochs,
        plural(summary.epochs),
        summary.train_seconds,
        finished.model_path.display()
    );
    Ok(())
}

/// One line per finished epoch, unless Burn's dashboard draws them.
fn epoch_lines(run: &PreparedRun, interrupter: Interrupter, dashboard: bool) -> Hooks {
    let (total, held_out) = (run.config.training.epochs, run.held_out_name());
    Hooks {
        interrupter,
        on_epoch: Box::new(move |row| {
            if !dashboard {
                say!("{}", row.line(total, held_out));
            }
        }),
        dashboard,
    }
}

/// `--seeds`: the recipe once per seed, each announced and reported like a single run, then
/// the spread over all of them.
fn run_seeds(options: &TrainOptions, seeds: SeedList) -> Result<(), train::TrainError> {
    let order = seeds.seeds().to_vec();
    let runs = SeedRuns::prepare(options, seeds)?;
    let dir = runs.dir().to_path_buf();
    let dashboard = std::io::stdout().is_terminal();
    let interrupter = Interrupter::new();
    signals::stop_on_signal(interrupter.clone());
    let hooks = SeedHooks {
        on_start: Box::new(|seed, run| {
            let place = order.iter().position(|&s| s == seed).map_or(0, |i| i + 1);
            say!("seed {seed} ({place} of {})", order.len());
            announce(run, dashboard);
            epoch_lines(run, interrupter.clone(), dashboard)
        }),
        on_finish: Box::new(|row| {
            say!(
                "seed {}: test accuracy {:.2}% (loss {:.4}) in {:.1} s",
                row.seed,
                row.test_accuracy,
                row.test_loss,
                row.train_seconds
            );
        }),
        on_download: Box::new(|url| note!("downloading {url}")),
    };
    let summary = runs.train(hooks)?;
    let n = summary.seeds.len();
    say!(
        "test accuracy (%) over {n} seed{}: {}",
        plural(n),
        summary.test_accuracy
    );
    if let Some(validation) = &summary.validation_accuracy {
        say!("validation accuracy (%) after the last epoch: {validation}");
    }
    say!(
        "training {:.1} ± {:.1} s per seed; per-seed rows in {}, the summary in {}",
        summary.train_seconds.mean,
        summary.train_seconds.std,
        dir.join("seeds.csv").display(),
        dir.join("seeds.json").display()
    );
    Ok(())
}

/// What is about to happen: where a resumed run picks up, what trains on what, and the
/// wait for wgpu's kernels.
fn announce(run: &PreparedRun, dashboard: bool) {
    let dir = run.run_dir.display();
    match run.resume {
        Resume::AfterEpoch(epoch) => say!("resuming {dir} after epoch {epoch}"),
        Resume::NoCheckpoint => {
            say!("no complete checkpoint in {dir}/checkpoint; starting from the beginning")
        }
        Resume::Fresh => {}
    }
    if !dashboard {
        let data = &run.data;
        let held_out = match &data.final_test {
            Some(test) => format!("{} validation, {} test", data.held_out.len(), test.len()),
            None => format!("{} test", data.held_out.len()),
        };
        let epochs = run.config.training.epochs;
        say!(
            "training {} on {} for {epochs} epoch{} ({} training, {held_out} images)",
            run.config_path.display(),
            run.device.description,
            plural(epochs),
            data.train.len(),
        );
    }
    if run.backend == BackendKind::Wgpu {
        note!(
            "wgpu compiles its kernels during the first steps: a minute or more on a software \
             driver, seconds on a GPU; they are cached for later runs"
        );
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// Ctrl-C and SIGTERM (what service managers and containers send) stop training at the next
/// batch boundary, keeping every finished checkpoint; a second signal quits at once. The one
/// module of this crate with `unsafe`: installing a C signal handler.
#[allow(unsafe_code)]
mod signals {
    use train::Interrupter;

    #[cfg(unix)]
    pub fn stop_on_signal(interrupter: Interrupter) {
        use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
        static RECEIVED: AtomicUsize = AtomicUsize::new(0);
        static LAST: AtomicI32 = AtomicI32::new(0);

        extern "C" fn on_signal(signal: libc::c_int) {
            // Only async-signal-safe work here: atomics, and `_exit` on the second signal.
            LAST.store(signal, Ordering::SeqCst);
            if RECEIVED.fetch_add(1, Ordering::SeqCst) > 0 {
                // SAFETY: `_exit` is async-signal-safe and ends the process without unwinding.
                unsafe { libc::_exit(130) };
            }
        }

        let handler = on_signal as extern "C" fn(libc::c_int);
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: the handler only touches atomics and calls `_exit`.
            unsafe { libc::signal(signal, handler as libc::sighandler_t) };
        }
        std::thread::spawn(move || {
            while RECEIVED.load(Ordering::SeqCst) == 0 {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let name = match LAST.load(Ordering::SeqCst) {
                libc::SIGTERM => "SIGTERM",
                _ => "Ctrl-C",
            };
            note!("stopping at the next batch ({name} again to quit now)");
            interrupter.stop(Some(name));
        });
    }

    #[cfg(not(unix))]
    pub fn stop_on_signal(_interrupter: Interrupter) {}
}
