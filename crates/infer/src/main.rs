use anyhow::Context;
use clap::Parser;
use infer::{DigitClassifier, ModelSource, Prediction};
use model::BackendKind;
use std::path::PathBuf;
use std::process::ExitCode;

/// Name the digit in each image, with the network's probability for every class.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Images to classify (PNG, JPEG, BMP, GIF, WebP, TIFF).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// A training run's artifact directory [default: the model shipped in this binary].
    #[arg(long)]
    model: Option<PathBuf>,
    /// flex (fast CPU), ndarray (slow CPU, deprecated) or wgpu (GPU).
    #[arg(long, default_value = "flex")]
    backend: BackendKind,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Classifies every image; returns whether all of them could be read.
fn run(cli: Cli) -> anyhow::Result<bool> {
    let source = cli.model.map_or(ModelSource::Shipped, ModelSource::RunDir);
    let classifier =
        DigitClassifier::load(&source, cli.backend.device()).context("cannot load the model")?;
    let mut all_ok = true;
    for path in &cli.images {
        match data::preprocess_image(path) {
            Ok(pixels) => {
                if let Some(prediction) = classifier.classify(&[pixels]).first() {
                    print_prediction(&path.display().to_string(), prediction);
                }
            }
            Err(error) => {
                eprintln!("error: {error}");
                all_ok = false;
            }
        }
    }
    Ok(all_ok)
}

fn print_prediction(name: &str, prediction: &Prediction) {
    println!(
        "{name}: {} ({:.1}%)",
        prediction.digit,
        100.0 * prediction.confidence()
    );
    let probabilities: Vec<String> = prediction
        .probabilities
        .iter()
        .enumerate()
        .map(|(digit, p)| format!("{digit}: {p:.4}"))
        .collect();
    println!("  {}", probabilities.join("  "));
}
