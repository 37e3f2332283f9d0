//! `cargo xtask export`: a training run's weights as a PyTorch-loadable safetensors file.

use crate::{absolute, cargo};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The training run to export.
    #[arg(long, default_value = "artifacts/default")]
    artifact_dir: PathBuf,
    /// The safetensors file to write (tutorial names: 0.weight, 0.bias, 3.…, 7.…).
    #[arg(long, value_name = "FILE.safetensors")]
    to: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut command: Vec<String> = [
        "run",
        "--quiet",
        "--package",
        "infer",
        "--bin",
        "export",
        "--",
    ]
    .map(String::from)
    .into();
    command.extend([
        "--artifact-dir".into(),
        absolute(&args.artifact_dir).to_string_lossy().into_owned(),
        "--to".into(),
        absolute(&args.to).to_string_lossy().into_owned(),
    ]);
    cargo(&command)
}
