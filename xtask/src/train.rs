//! `cargo xtask train`: build the trainer and run it.

use crate::{absolute, run_binary};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// flex (fast CPU, default), ndarray (slow CPU, deprecated) or wgpu (GPU); the binary is
    /// built with the cargo feature the backend needs.
    #[arg(long, default_value = "flex")]
    backend: String,
    /// The run's TOML recipe.
    #[arg(long, default_value = "configs/default.toml")]
    config: PathBuf,
    /// Override the config's number of epochs.
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

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut command = vec!["--backend".to_string(), args.backend.clone()];
    command.extend(["--config".into(), path(absolute(&args.config))]);
    if let Some(epochs) = args.epochs {
        command.extend(["--epochs".into(), epochs.to_string()]);
    }
    if let Some(dir) = args.artifact_dir {
        command.extend(["--artifact-dir".into(), path(absolute(&dir))]);
    }
    if args.download {
        command.push("--download".into());
    }
    if args.resume {
        command.push("--resume".into());
    }
    for setting in args.overrides {
        command.extend(["--set".into(), setting]);
    }
    run_binary("train", "train", &args.backend, command)
}

fn path(path: PathBuf) -> String {
    path.to_string_lossy().into_owned()
}
