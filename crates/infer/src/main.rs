use anyhow::Context;
use clap::Parser;
use data::PIXELS;
use infer::{DigitClassifier, ModelSource, Prediction, collect_images};
use model::BackendKind;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Name the digit in each image, with the network's probability for every class.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Image files (PNG, JPEG, BMP, GIF, WebP, TIFF) and directories of them.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// A training run's artifact directory [default: the model shipped in this binary].
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// A PyTorch state_dict of the tutorial's model instead (.pt, .pth or .safetensors),
    /// fed `ToTensor()` inputs as in the tutorial.
    #[arg(long, value_name = "FILE", conflicts_with = "model")]
    weights: Option<PathBuf>,
    /// flex (fast CPU), ndarray (slow CPU, deprecated) or wgpu (GPU); the last two only in a
    /// build with that cargo feature (`--features wgpu`).
    #[arg(long, default_value = "flex")]
    backend: BackendKind,
    /// One JSON object per line instead of the human format.
    #[arg(long)]
    json: bool,
    /// Show only the K most likely digits (human format).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u8).range(1..=10))]
    top: Option<u8>,
    /// Write the 28×28 image the network saw for each input into this directory.
    #[arg(long, value_name = "DIR")]
    save_preprocessed: Option<PathBuf>,
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

/// Classifies every input; returns whether all of them could be classified.
fn run(cli: Cli) -> anyhow::Result<bool> {
    let source = match (cli.model, cli.weights) {
        (Some(dir), _) => ModelSource::RunDir(dir),
        (None, Some(file)) => ModelSource::Weights(file),
        (None, None) => ModelSource::Shipped,
    };
    let ready = cli.backend.init()?;
    if cli.backend == BackendKind::Wgpu {
        eprintln!("using {}", ready.description);
        eprintln!(
            "the first run compiles wgpu's kernels (slow on a software driver); later runs reuse them"
        );
    }
    let classifier =
        DigitClassifier::load(&source, ready.device).context("cannot load the model")?;
    if let Some(dir) = &cli.save_preprocessed {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
    }
    let output = Output {
        json: cli.json,
        top: cli.top.map_or(10, usize::from),
    };

    // Decode everything first, keeping the inputs' order, then run the network once.
    let inputs: Vec<(PathBuf, Result<[u8; PIXELS], String>)> = collect_images(&cli.inputs)
        .into_iter()
        .map(|input| match input {
            Ok(path) => {
                let pixels = data::preprocess_image(&path).map_err(|e| e.to_string());
                (path, pixels)
            }
            Err(error) => (error.path.clone(), Err(error.to_string())),
        })
        .collect();
    let ready: Vec<[u8; PIXELS]> = inputs
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().copied())
        .collect();
    let mut predictions = classifier.classify(&ready).into_iter();

    let mut all_ok = true;
    for (index, (path, pixels)) in inputs.iter().enumerate() {
        let pixels = match pixels {
            Ok(pixels) => pixels,
            Err(message) => {
                output.failure(path, message);
                all_ok = false;
                continue;
            }
        };
        // `classify` returns one prediction per decoded image, in order.
        let Some(prediction) = predictions.next() else {
            break;
        };
        if let Some(dir) = &cli.save_preprocessed {
            let target = dir.join(format!("{index:04}-{}.png", stem(path)));
            if let Err(error) = infer::save_preprocessed(pixels, &target) {
                output.failure(
                    path,
                    &format!("{}: cannot write: {error}", target.display()),
                );
                all_ok = false;
            }
        }
        output.prediction(path, &prediction);
    }
    Ok(all_ok)
}

/// Six decimals are plenty for a probability and keep JSON lines readable.
fn rounded(p: f32) -> f64 {
    (f64::from(p) * 1e6).round() / 1e6
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned())
}

/// How results are printed.
struct Output {
    json: bool,
    top: usize,
}

impl Output {
    fn prediction(&self, path: &Path, prediction: &Prediction) {
        let file = path.display().to_string();
        if self.json {
            println!(
                "{}",
                json!({
                    "file": file,
                    "digit": prediction.digit,
                    "confidence": rounded(prediction.confidence()),
                    "probabilities": prediction.probabilities.iter().copied().map(rounded).collect::<Vec<_>>(),
                })
            );
            return;
        }
        println!(
            "{file}: {} ({:.1}%)",
            prediction.digit,
            100.0 * prediction.confidence()
        );
        let shown: Vec<String> = if self.top < prediction.probabilities.len() {
            prediction
                .ranked()
                .into_iter()
                .take(self.top)
                .map(|(digit, p)| format!("{digit}: {:.1}%", 100.0 * p))
                .collect()
        } else {
            prediction
                .probabilities
                .iter()
                .enumerate()
                .map(|(digit, p)| format!("{digit}: {p:.4}"))
                .collect()
        };
        println!("  {}", shown.join("  "));
    }

    fn failure(&self, path: &Path, message: &str) {
        if self.json {
            println!(
                "{}",
                json!({ "file": path.display().to_string(), "error": message })
            );
        } else {
            eprintln!("error: {message}");
        }
    }
}
