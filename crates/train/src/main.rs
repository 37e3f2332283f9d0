use clap::Parser;
use model::BackendKind;
use std::path::PathBuf;
use std::process::ExitCode;

/// Train the MNIST network and write its artifacts.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// The run's TOML recipe.
    #[arg(long, default_value = "configs/default.toml")]
    config: PathBuf,
    /// flex (fast CPU), ndarray (slow CPU, deprecated) or wgpu (GPU); the last two only in a
    /// build with that cargo feature (`--features wgpu`).
    #[arg(long, default_value = "flex")]
    backend: BackendKind,
    /// Override the config's `training.epochs`.
    #[arg(long)]
    epochs: Option<usize>,
    /// Where to write the run [default: artifacts/<config file stem>].
    #[arg(long)]
    artifact_dir: Option<PathBuf>,
    /// Download MNIST from the public mirrors when its files are missing.
    #[arg(long)]
    download: bool,
    /// Continue the run in the artifact directory from its last complete epoch.
    #[arg(long)]
    resume: bool,
    /// Override a config value, e.g. `--set optimizer.learning_rate=0.01` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = train::TrainOptions {
        config_path: cli.config,
        backend: cli.backend,
        epochs: cli.epochs,
        artifact_dir: cli.artifact_dir,
        download: cli.download,
        resume: cli.resume,
        overrides: cli.overrides,
    };
    match train::train(&options) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
