//! `eval`: scores a model on the MNIST test set and draws the figures.

#![deny(unsafe_code)]

use anyhow::Context;
use clap::Parser;
use data::{MnistDataset, Split};
use infer::cli::{BackendArgs, DEFAULT_RUN_DIR, RUN_DIR_FLAG, RUN_DIR_FORMER_FLAG};
use infer::{DigitClassifier, Evaluation, ModelSource, figures};

/// A line on stdout; a write that fails is this command's error.
fn print(line: impl std::fmt::Display) -> anyhow::Result<()> {
    infer::console::print(line).context("cannot write to stdout")
}
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Score a trained model on the MNIST test set: accuracy, loss, per-digit precision and recall,
/// the confusion matrix; draws `confusion.png` and `misclassified.png`. Given a multi-seed run
/// (`train --seeds`), scores every seed and gives the accuracy's mean ± std.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// The training run to evaluate; the figures are drawn into it.
    #[arg(long = RUN_DIR_FLAG, alias = RUN_DIR_FORMER_FLAG, value_name = "DIR")]
    #[arg(default_value = DEFAULT_RUN_DIR, conflicts_with = "weights")]
    run_dir: PathBuf,
    /// Evaluate a PyTorch state_dict of the tutorial's model instead (.pt, .pth, .safetensors).
    #[arg(long, value_name = "FILE", conflicts_with = "shipped")]
    weights: Option<PathBuf>,
    #[command(flatten)]
    backend: BackendArgs,
    /// Where MNIST is [default: the run's `data.dir`, or data/mnist with --weights].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Draw the figures into this directory [default: the run's directory; none with --weights
    /// or --shipped].
    #[arg(long, value_name = "DIR")]
    figures: Option<PathBuf>,
    /// Write every test image's label and predicted digit to this CSV file.
    #[arg(long, value_name = "FILE")]
    predictions: Option<PathBuf>,
    /// Also write the test images as PNG files named INDEX-LABEL.png into this new folder,
    /// to try `infer` or the server on real MNIST digits.
    #[arg(long, value_name = "DIR")]
    save_images: Option<PathBuf>,
    /// With --save-images, write only the first N test images.
    #[arg(long, value_name = "N", requires = "save_images")]
    save_limit: Option<usize>,
    /// Also measure how well the answer's confidence tells digits from Fashion-MNIST's test
    /// images, read from DIR (Debian's `dataset-fashion-mnist` puts them in
    /// /usr/share/datasets/fashion-mnist).
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = data::DEFAULT_FASHION_MNIST_DIR)]
    outliers: Option<PathBuf>,
    /// Also measure it against letters and symbols typed in this font (repeatable).
    #[arg(long, value_name = "FILE")]
    outlier_font: Vec<PathBuf>,
    #[command(flatten)]
    shipped: infer::cli::ShippedArgs,
    #[command(flatten)]
    tta: infer::cli::TtaArgs,
}

fn main() -> ExitCode {
    infer::exit_status(run(Cli::parse()))
}

/// What to score, on which images, and where its figures go (none for a model without a run
/// directory of its own).
fn chosen(cli: &Cli) -> anyhow::Result<(ModelSource, PathBuf, Option<PathBuf>)> {
    let data_or_default = || {
        cli.data
            .clone()
            .unwrap_or_else(|| PathBuf::from(data::DEFAULT_MNIST_DIR))
    };
    Ok(match &cli.weights {
        _ if cli.shipped.shipped => (ModelSource::Shipped, data_or_default(), cli.figures.clone()),
        Some(weights) => (
            ModelSource::Weights(weights.clone()),
            data_or_default(),
            cli.figures.clone(),
        ),
        None => (
            ModelSource::RunDir(cli.run_dir.clone()),
            match &cli.data {
                Some(dir) => dir.clone(),
                None => infer::run_data_dir(&cli.run_dir).map_err(infer::cli::or_shipped)?,
            },
            Some(cli.figures.clone().unwrap_or_else(|| cli.run_dir.clone())),
        ),
    })
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let seeds = match cli.weights.is_some() || cli.shipped.shipped {
        true => Vec::new(),
        false => infer::seed_runs_in(&cli.run_dir),
    };
    if !seeds.is_empty() {
        return score_seeds(&cli, &seeds);
    }
    let (source, data_dir, figures) = chosen(&cli)?;
    let ready = cli.backend.kind.init()?;
    let classifier = DigitClassifier::load(&source, ready.device)
        .context("cannot load the model")?
        .with_shifted_copies(cli.tta.tta);
    let test = MnistDataset::load(&data_dir, Split::Test)?;
    print(format_args!(
        "{} on {}",
        source.describe(),
        ready.description
    ))?;
    let evaluation = Evaluation::run(&classifier, &test)?;
    print(&evaluation)?;
    print_separations(&cli, &classifier, &evaluation)?;
    if let Some(path) = &cli.predictions {
        write_predictions(&evaluation, path)?;
    }
    if let Some(dir) = &cli.save_images {
        let written = infer::save_dataset_images(&test, cli.save_limit, dir)
            .with_context(|| format!("{}: cannot write the test images", dir.display()))?;
        print(format_args!(
            "wrote {written} test images into {}",
            dir.display()
        ))?;
    }
    if let Some(dir) = figures {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        let confusion = dir.join("confusion.png");
        let misclassified = dir.join("misclassified.png");
        figures::write_confusion(&evaluation, &confusion)?;
        figures::write_misclassified(&evaluation, &misclassified)?;
        print(format_args!(
            "\nwrote {} and {}",
            confusion.display(),
            misclassified.display()
        ))?;
    }
    Ok(())
}

/// A multi-seed run: each seed's test accuracy, then their spread. What is written per image
/// or drawn belongs to one model, so it asks for one seed's run.
fn score_seeds(cli: &Cli, seeds: &[(u64, PathBuf)]) -> anyhow::Result<()> {
    if cli.predictions.is_some() || cli.save_images.is_some() || cli.figures.is_some() {
        anyhow::bail!(
            "{}: holds a multi-seed run; for --predictions, --save-images or --figures, name \
             one seed's run, e.g. --model {}",
            cli.run_dir.display(),
            seeds[0].1.display()
        );
    }
    let ready = cli.backend.kind.init()?;
    print(format_args!(
        "{} seeds on {}",
        seeds.len(),
        ready.description
    ))?;
    let mut accuracies = Vec::with_capacity(seeds.len());
    // The seeds of one recipe read one MNIST: it is loaded (and checksummed) again only for
    // a seed whose run read another.
    let mut test: Option<(PathBuf, MnistDataset)> = None;
    for (seed, dir) in seeds {
        let data_dir = match &cli.data {
            Some(dir) => dir.clone(),
            None => infer::run_data_dir(dir)?,
        };
        let source = ModelSource::RunDir(dir.clone());
        let classifier = DigitClassifier::load(&source, ready.device.clone())
            .context("cannot load the model")?
            .with_shifted_copies(cli.tta.tta);
        let (loaded, dataset) = match test.take() {
            Some((loaded, dataset)) if loaded == data_dir => (loaded, dataset),
            _ => {
                let dataset = MnistDataset::load(&data_dir, Split::Test)?;
                (data_dir, dataset)
            }
        };
        let evaluation = Evaluation::run(&classifier, &dataset)?;
        test = Some((loaded, dataset));
        print(format_args!(
            "seed {seed}: test accuracy {:.2}% (loss {:.4})",
            evaluation.accuracy, evaluation.loss
        ))?;
        accuracies.push(evaluation.accuracy);
    }
    let spread = infer::Spread::of(&accuracies).context("no seed to score")?;
    print(format_args!(
        "test accuracy over {} seeds: {spread}",
        seeds.len()
    ))
}

/// `--outliers` and `--outlier-font`: how well the top probability tells the test digits from
/// each kind of other image.
fn print_separations(
    cli: &Cli,
    classifier: &DigitClassifier,
    evaluation: &Evaluation,
) -> anyhow::Result<()> {
    use infer::outliers::{
        Separation, TYPED_NON_DIGITS, confidences, dataset_images, typed_images,
    };
    let mut kinds = Vec::new();
    if let Some(dir) = &cli.outliers {
        let fashion =
            MnistDataset::load_collection(dir, data::Collection::FashionMnist, Split::Test)
                .context("cannot load Fashion-MNIST (apt-get install dataset-fashion-mnist)")?;
        kinds.push((
            "Fashion-MNIST's test images".to_string(),
            dataset_images(&fashion),
        ));
    }
    for font in &cli.outlier_font {
        let images = typed_images(font, TYPED_NON_DIGITS).map_err(anyhow::Error::msg)?;
        let name = font.file_name().unwrap_or_default().to_string_lossy();
        kinds.push((format!("letters and symbols in {name}"), images));
    }
    if kinds.is_empty() {
        return Ok(());
    }
    print(
        "
telling digits from other images by the top probability",
    )?;
    for (kind, images) in kinds {
        let scores = confidences(classifier, &images)?;
        let separation = Separation::of(&evaluation.confidences, &scores)
            .with_context(|| format!("{kind}: nothing to compare"))?;
        print(format_args!("  {kind} ({}): {separation}", images.len()))?;
    }
    Ok(())
}

/// Every test image's label and predicted digit, as CSV.
fn write_predictions(evaluation: &Evaluation, path: &Path) -> anyhow::Result<()> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(["index", "label", "predicted"])?;
    for (index, (label, predicted)) in evaluation.predictions.iter().enumerate() {
        csv.serialize((index, label, predicted))?;
    }
    data::write_named_file(path, &csv.into_inner()?)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    print(format_args!("wrote {}", path.display()))
}
