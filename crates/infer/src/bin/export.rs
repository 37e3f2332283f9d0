//! `export`: a training run's weights as a safetensors file for the tutorial's PyTorch model.

#![deny(unsafe_code)]

use anyhow::Context;
use clap::Parser;
use infer::cli::{DEFAULT_RUN_DIR, RUN_DIR_FLAG, RUN_DIR_FORMER_FLAG};
use infer::{DigitClassifier, ModelSource};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Write a training run's weights as a safetensors file that PyTorch's `load_state_dict`
/// takes for the tutorial's `nn.Sequential` model, fed `ToTensor()` inputs: any input
/// standardisation the run used is folded into the first convolution.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// The training run to export.
    #[arg(long = RUN_DIR_FLAG, alias = RUN_DIR_FORMER_FLAG, value_name = "DIR")]
    #[arg(default_value = DEFAULT_RUN_DIR)]
    run_dir: PathBuf,
    /// The safetensors file to write.
    #[arg(long, value_name = "FILE.safetensors")]
    to: PathBuf,
    #[command(flatten)]
    shipped: infer::cli::ShippedArgs,
}

fn main() -> ExitCode {
    infer::exit_status(run(Cli::parse()))
}

/// The formats `export` writes, by the file's extension: never one under another's name.
fn check_format(to: &Path) -> anyhow::Result<()> {
    match to.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => Ok(()),
        Some(other) => anyhow::bail!(
            "{}: export writes safetensors, not .{other}; name the file with .safetensors",
            to.display()
        ),
        None => anyhow::bail!(
            "{}: no extension to tell the format; name the file with .safetensors",
            to.display()
        ),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    check_format(&cli.to)?;
    let source = match cli.shipped.shipped {
        true => ModelSource::Shipped,
        false => ModelSource::RunDir(cli.run_dir),
    };
    let classifier = DigitClassifier::load(&source, burn::tensor::Device::flex())
        .map_err(infer::cli::or_shipped)
        .context("cannot load the model")?;
    // Burn's store writes beside the target and renames over it: follow links to the file
    // they name, and refuse a device or FIFO, which the rename would replace.
    let target = data::write_target(&cli.to)
        .with_context(|| format!("{}: cannot write", cli.to.display()))?;
    classifier.network().save_pytorch_safetensors(&target)?;
    let print = |line: String| infer::console::print(line).context("cannot write to stdout");
    print(format!("{} → {}", source.describe(), cli.to.display()))?;
    print(format!(
        "load in PyTorch: model.load_state_dict(safetensors.torch.load_file(\"{}\"))",
        cli.to.display()
    ))?;
    Ok(())
}
