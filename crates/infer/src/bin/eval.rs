use anyhow::Context;
use clap::Parser;
use data::{MnistDataset, Split};
use infer::{DigitClassifier, Evaluation, ModelSource};
use model::BackendKind;
use std::path::PathBuf;
use std::process::ExitCode;

/// Score a trained model on the MNIST test set: accuracy, loss, per-digit precision and recall,
/// the confusion matrix; draws `confusion.png` and `misclassified.png` into the run directory.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// The training run to evaluate.
    #[arg(long, default_value = "artifacts/default")]
    artifact_dir: PathBuf,
    /// flex (fast CPU), ndarray (slow CPU, deprecated) or wgpu (GPU).
    #[arg(long, default_value = "flex")]
    backend: BackendKind,
    /// Where MNIST is [default: the run's `data.dir`].
    #[arg(long)]
    data: Option<PathBuf>,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let source = ModelSource::RunDir(cli.artifact_dir.clone());
    let data_dir = match cli.data {
        Some(dir) => dir,
        None => infer::run_data_dir(&cli.artifact_dir)?,
    };
    let ready = cli.backend.init()?;
    let classifier =
        DigitClassifier::load(&source, ready.device).context("cannot load the model")?;
    let test = MnistDataset::load(&data_dir, Split::Test)?;
    println!(
        "{} on {}",
        cli.artifact_dir.join("model.bpk").display(),
        ready.description
    );
    let evaluation = Evaluation::run(&classifier, &test);
    println!("{evaluation}");
    let confusion = cli.artifact_dir.join("confusion.png");
    let misclassified = cli.artifact_dir.join("misclassified.png");
    infer::write_confusion(&evaluation, &confusion)?;
    infer::write_misclassified(&evaluation, &misclassified)?;
    println!(
        "\nwrote {} and {}",
        confusion.display(),
        misclassified.display()
    );
    Ok(())
}
