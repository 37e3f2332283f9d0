//! `cargo xtask eval`: score a training run, or PyTorch weights, on the test set.

use crate::{absolute, arg, run_binary};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The training run to evaluate.
    #[arg(long, default_value = "artifacts/default", conflicts_with = "weights")]
    artifact_dir: PathBuf,
    /// A PyTorch state_dict of the tutorial's model instead (.pt, .pth or .safetensors).
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// flex (fast CPU, default), ndarray (slow CPU, deprecated) or wgpu (GPU); the binary is
    /// built with the cargo feature the backend needs.
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Write every test image's label and predicted digit to this CSV file.
    #[arg(long, value_name = "FILE")]
    predictions: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let path = |p: &PathBuf| arg(&absolute(p));
    let mut command = Vec::new();
    match &args.weights {
        Some(weights) => command.extend(["--weights".into(), path(weights)]),
        None => command.extend(["--artifact-dir".into(), path(&args.artifact_dir)]),
    }
    if let Some(predictions) = &args.predictions {
        command.extend(["--predictions".into(), path(predictions)]);
    }
    command.extend(["--backend".into(), args.backend.clone()]);
    run_binary("infer", "eval", &args.backend, command)
}
