//! `cargo xtask export`: a training run's weights as a PyTorch-loadable safetensors file.

use crate::{absolute, arg, run_binary};
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
    // Exporting reads and writes files only: the always-built flex backend is enough.
    run_binary(
        "infer",
        "export",
        "flex",
        vec![
            "--artifact-dir".into(),
            arg(&absolute(&args.artifact_dir)),
            "--to".into(),
            arg(&absolute(&args.to)),
        ],
    )
}
