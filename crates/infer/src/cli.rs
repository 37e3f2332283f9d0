//! The flags that choose a model and a backend, shared by the binaries that classify (`infer`
//! and `serve`), so they are defined once.

use crate::loading::{LoadError, ModelSource};
use model::BackendKind;
use std::path::PathBuf;

/// The flag that names a training run's directory (`model.bpk`, `config.toml`, ...), spelled
/// the same in every binary: `train` writes there, the others read it.
pub const RUN_DIR_FLAG: &str = "model";

/// The run directory's former flag in `train`, `eval` and `export`, still accepted.
pub const RUN_DIR_FORMER_FLAG: &str = "artifact-dir";

/// Where `train` writes, and `eval` and `export` read, when no run directory is named.
pub const DEFAULT_RUN_DIR: &str = "artifacts/default";

/// `--backend NAME`, for `#[command(flatten)]` in every binary that runs the network.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct BackendArgs {
    /// flex (fast CPU), ndarray (slow CPU, deprecated) or wgpu (GPU); the last two only in a
    /// build with that cargo feature (`--features wgpu`).
    #[arg(long = "backend", default_value = "flex")]
    pub kind: BackendKind,
}

/// `--model DIR | --weights FILE` and `--backend NAME`, for `#[command(flatten)]`.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// A training run's directory [default: the model shipped in this binary].
    #[arg(long = RUN_DIR_FLAG, alias = RUN_DIR_FORMER_FLAG, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// A PyTorch state_dict of the tutorial's model instead (.pt, .pth or .safetensors),
    /// fed `ToTensor()` inputs as in the tutorial.
    #[arg(long, value_name = "FILE", conflicts_with = "run_dir")]
    pub weights: Option<PathBuf>,
    /// The backend to run on.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// `--tta`, for `#[command(flatten)]` in the commands that classify images.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct TtaArgs {
    /// Test-time augmentation: classify each image by the mean of the network's logits over
    /// it and its four one-pixel shifts (five forward passes per image).
    #[arg(long)]
    pub tta: bool,
}

impl ModelArgs {
    /// Where the weights come from: `--model`, `--weights`, or the shipped model.
    pub fn source(&self) -> ModelSource {
        match (&self.run_dir, &self.weights) {
            (Some(dir), _) => ModelSource::RunDir(dir.clone()),
            (None, Some(file)) => ModelSource::Weights(file.clone()),
            (None, None) => ModelSource::Shipped,
        }
    }
}

/// `--shipped`, for `#[command(flatten)]` in the binaries whose run directory has a default
/// (`eval`, `export`): the model `infer` and `serve` use when given none.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct ShippedArgs {
    /// Use the model shipped in the binaries (what `infer` and `serve` use by default)
    /// instead of a training run.
    #[arg(long, conflicts_with = "run_dir")]
    pub shipped: bool,
}

/// A load error, with the way out that a run-less newcomer needs where a run directory was
/// assumed: train one, or take the shipped model.
pub fn or_shipped(error: LoadError) -> anyhow::Error {
    match error {
        LoadError::NoRun { .. } | LoadError::NotARunDirectory { .. } => {
            anyhow::anyhow!("{error}, or pass --shipped for the model shipped in the binaries")
        }
        other => other.into(),
    }
}
