//! `cargo xtask eval`: score a training run on the test set.

use crate::{absolute, cargo};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The training run to evaluate.
    #[arg(long, default_value = "artifacts/default")]
    artifact_dir: PathBuf,
    /// flex (fast CPU, default), ndarray (slow CPU, deprecated) or wgpu (GPU).
    #[arg(long, default_value = "flex")]
    backend: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = absolute(&args.artifact_dir).to_string_lossy().into_owned();
    cargo(
        &[
            "run",
            "--quiet",
            "--package",
            "infer",
            "--bin",
            "eval",
            "--",
        ]
        .map(String::from)
        .into_iter()
        .chain([
            "--artifact-dir".into(),
            dir,
            "--backend".into(),
            args.backend,
        ])
        .collect::<Vec<_>>(),
    )
}
