//! `export`: a training run's network for use outside this project: as the tutorial's PyTorch
//! model's weights (safetensors), or as an ONNX model.

#![deny(unsafe_code)]

use anyhow::Context;
use clap::Parser;
use infer::cli::{DEFAULT_RUN_DIR, RUN_DIR_FLAG, RUN_DIR_FORMER_FLAG};
use infer::{DigitClassifier, ModelSource};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Write a training run's network for use elsewhere: `.safetensors`, the weights that
/// PyTorch's `load_state_dict` takes for the tutorial's `nn.Sequential` model (any input
/// standardisation the run used folded into the first convolution), or `.onnx`, the whole
/// network for onnxruntime and other ONNX runtimes (input `[batch, 1, 28, 28]` pixels / 255,
/// output `[batch, 10]` logits; in a build with the `onnx` feature, which `cargo xtask
/// export` turns on).
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// The training run to export.
    #[arg(long = RUN_DIR_FLAG, alias = RUN_DIR_FORMER_FLAG, value_name = "DIR")]
    #[arg(default_value = DEFAULT_RUN_DIR)]
    run_dir: PathBuf,
    /// The file to write; its extension, `.safetensors` or `.onnx`, says the format.
    #[arg(long, value_name = "FILE")]
    to: PathBuf,
    /// The format, whatever the file's extension says.
    #[arg(long, value_enum)]
    format: Option<Format>,
    #[command(flatten)]
    shipped: infer::cli::ShippedArgs,
}

/// What `export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// The tutorial's PyTorch `state_dict`.
    Safetensors,
    /// An ONNX model (opset 18) with a dynamic batch axis.
    Onnx,
}

fn main() -> ExitCode {
    infer::exit_status(run(Cli::parse()))
}

/// The format to write: `--format`, else the file's extension; an unknown extension is
/// refused, never written as some other format.
fn format_of(to: &Path, format: Option<Format>) -> anyhow::Result<Format> {
    if let Some(format) = format {
        return Ok(format);
    }
    match to.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => Ok(Format::Safetensors),
        Some("onnx") => Ok(Format::Onnx),
        Some(other) => anyhow::bail!(
            "{}: export writes .safetensors or .onnx, not .{other}; name the file with one of \
             them, or say the format with --format",
            to.display()
        ),
        None => anyhow::bail!(
            "{}: no extension to tell the format; name the file .safetensors or .onnx, or say \
             it with --format",
            to.display()
        ),
    }
}

/// The network as an ONNX file at `target`.
#[cfg(feature = "onnx")]
fn write_onnx(network: &model::Cnn, target: &Path) -> anyhow::Result<()> {
    let bytes = infer::onnx::onnx_bytes(network)?;
    data::write_named_file(target, &bytes)
        .with_context(|| format!("{}: cannot write", target.display()))
}

#[cfg(not(feature = "onnx"))]
fn write_onnx(_network: &model::Cnn, target: &Path) -> anyhow::Result<()> {
    anyhow::bail!(
        "{}: this build has no ONNX export (it is left out to keep the build short); build \
         with `--features onnx`, or use `cargo xtask export`, which adds it for a .onnx file",
        target.display()
    )
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let format = format_of(&cli.to, cli.format)?;
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
    let print = |line: String| infer::console::print(line).context("cannot write to stdout");
    let to = cli.to.display();
    match format {
        Format::Safetensors => {
            classifier.network().save_pytorch_safetensors(&target)?;
            print(format!("{} → {to}", source.describe()))?;
            print(format!(
                "load in PyTorch: model.load_state_dict(safetensors.torch.load_file(\"{to}\"))"
            ))
        }
        Format::Onnx => {
            write_onnx(classifier.network(), &target)?;
            print(format!("{} → {to}", source.describe()))?;
            print(format!(
                "run it: onnxruntime.InferenceSession(\"{to}\").run(None, {{\"{}\": pixels}})",
                infer::onnx::INPUT_NAME
            ))
        }
    }
}
