//! `export`: a training run's weights as a safetensors file for the tutorial's PyTorch model.

use anyhow::Context;
use clap::Parser;
use infer::{DigitClassifier, ModelSource};
use std::path::PathBuf;
use std::process::ExitCode;

/// Write a training run's weights as a safetensors file that PyTorch's `load_state_dict`
/// takes for the tutorial's `nn.Sequential` model, fed `ToTensor()` inputs: any input
/// standardisation the run used is folded into the first convolution.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// The training run to export.
    #[arg(long, default_value = "artifacts/default")]
    artifact_dir: PathBuf,
    /// The safetensors file to write.
    #[arg(long, value_name = "FILE.safetensors")]
    to: PathBuf,
}

fn main() -> ExitCode {
    infer::exit_status(run(Cli::parse()))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let source = ModelSource::RunDir(cli.artifact_dir);
    let classifier = DigitClassifier::load(&source, burn::tensor::Device::flex())
        .context("cannot load the model")?;
    // Burn's store writes beside the target and renames over it: follow links to the file
    // they name, and refuse a device or FIFO, which the rename would replace.
    let target = data::write_target(&cli.to)
        .with_context(|| format!("{}: cannot write", cli.to.display()))?;
    classifier.network().save_pytorch_safetensors(&target)?;
    println!("{} → {}", source.describe(), cli.to.display());
    println!(
        "load in PyTorch: model.load_state_dict(safetensors.torch.load_file(\"{}\"))",
        cli.to.display()
    );
    Ok(())
}
