//! `eval`: scores a model on the MNIST test set and draws the figures.

#![deny(unsafe_code)]

use anyhow::Context;
use clap::Parser;
use data::{MnistDataset, PIXELS, Split};
use infer::cli::{BackendArgs, DEFAULT_RUN_DIR, RUN_DIR_FLAG, RUN_DIR_FORMER_FLAG};
use infer::outliers::{Separation, VerdictShares};
use infer::{DigitClassifier, Evaluation, ModelSource, figures, pens};

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
    /// Also measure how well the model tells digits from other images: Fashion-MNIST's test
    /// images, read from DIR (Debian's `dataset-fashion-mnist` puts them in
    /// /usr/share/datasets/fashion-mnist), and letters, symbols and shapes drawn as on the
    /// page. For each: the AUROC of the top probability, the share passing where 95 % of
    /// digits do (the false-positive rate at 95 % true positives), and the verdicts.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = data::DEFAULT_FASHION_MNIST_DIR)]
    outliers: Option<PathBuf>,
    /// Also measure it against letters and symbols typed in this font (repeatable).
    #[arg(long, value_name = "FILE")]
    outlier_font: Vec<PathBuf>,
    /// Also count how many pictures of digits in DIR (photos, scans, drawings; searched as
    /// `infer` searches folders) are still called a digit.
    #[arg(long, value_name = "DIR")]
    real_digits: Option<PathBuf>,
    /// Also classify the first N scored digits [default: 1000] redrawn with other pens, from a
    /// fine pen to a marker, through the preprocessing any picture takes, and scaled with
    /// their stroke kept as it is: each pen's accuracy, and what the stroke correction gains.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "1000")]
    pens: Option<usize>,
    /// Score the validation split the run held out (`data.validation_images`) instead of the
    /// test set, and print the `verdict.digit_at_least` that keeps 99.5 %, 99 % and 98 % of
    /// its digits: thresholds are chosen here, never on the test set.
    #[arg(long, conflicts_with_all = ["weights", "shipped"])]
    validation: bool,
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
    let test = scored_images(&cli, &cli.run_dir, &data_dir)?;
    print(format_args!(
        "{} on {}",
        source.describe(),
        ready.description
    ))?;
    let mut evaluation = Evaluation::run(&classifier, &test)?;
    evaluation.scored_set = scored_name(&cli);
    print(&evaluation)?;
    if cli.validation {
        print_thresholds(&evaluation)?;
    }
    let kinds = outlier_kinds(&cli)?;
    let figures_of_kinds = measure_kinds(&classifier, &evaluation, &kinds)?;
    let real = real_digits(&cli, &classifier)?;
    print_kinds(&evaluation, &kinds, &figures_of_kinds, real.as_ref())?;
    let pen_sets = pen_sets(&cli, &test);
    print_pens(&pen_sets, &[pens::measure(&classifier, &pen_sets)?])?;
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
    let kinds = outlier_kinds(cli)?;
    let mut measured = Vec::with_capacity(seeds.len());
    let mut pen_figures = Vec::with_capacity(seeds.len());
    // The seeds of one recipe read one MNIST: it is loaded (and checksummed) again only for
    // a seed whose run read another.
    let mut test: Option<(PathBuf, MnistDataset)> = None;
    let mut pen_sets_of_first: Option<Vec<pens::PenSet>> = None;
    for (seed, dir) in seeds {
        let source = ModelSource::RunDir(dir.clone());
        let classifier = DigitClassifier::load(&source, ready.device.clone())
            .context("cannot load the model")?
            .with_shifted_copies(cli.tta.tta);
        let (loaded, dataset) = seed_images(cli, dir, test.take())?;
        let evaluation = Evaluation::run(&classifier, &dataset)?;
        let pen_sets = pen_sets_of_first.get_or_insert_with(|| pen_sets(cli, &dataset));
        pen_figures.push(pens::measure(&classifier, pen_sets)?);
        test = Some((loaded, dataset));
        print(format_args!(
            "seed {seed}: {} accuracy {:.2}% (loss {:.4})",
            scored_name(cli),
            evaluation.accuracy,
            evaluation.loss
        ))?;
        if cli.validation {
            print_thresholds(&evaluation)?;
        }
        accuracies.push(evaluation.accuracy);
        let of_kinds = measure_kinds(&classifier, &evaluation, &kinds)?;
        measured.push(SeedFigures {
            evaluation,
            kinds: of_kinds,
            real: real_digits(cli, &classifier)?,
        });
    }
    let spread = infer::Spread::of(&accuracies).context("no seed to score")?;
    print(format_args!(
        "{} accuracy over {} seeds: {spread}",
        scored_name(cli),
        seeds.len()
    ))?;
    print_kind_means(&kinds, &measured)?;
    print_pens(&pen_sets_of_first.unwrap_or_default(), &pen_figures)
}

/// `--pens`: the scored digits redrawn with each pen, from the first `N` of `scored`.
fn pen_sets(cli: &Cli, scored: &MnistDataset) -> Vec<pens::PenSet> {
    cli.pens
        .map_or_else(Vec::new, |count| pens::pen_sets(scored, count))
}

/// Each pen's figures, as the mean over the models scored (one per seed).
fn print_pens(sets: &[pens::PenSet], per_model: &[Vec<pens::PenFigures>]) -> anyhow::Result<()> {
    if sets.is_empty() || per_model.is_empty() {
        return Ok(());
    }
    let models = per_model.len() as f64;
    print(format_args!(
        "\ndigits redrawn with other pens ({} each{})",
        burn::data::dataset::Dataset::len(&sets[0].corrected),
        if per_model.len() > 1 {
            format!("; mean over {} seeds", per_model.len())
        } else {
            String::new()
        }
    ))?;
    for (index, set) in sets.iter().enumerate() {
        let mean = |figure: fn(&pens::PenFigures) -> f64| {
            per_model
                .iter()
                .map(|figures| figure(&figures[index]))
                .sum::<f64>()
                / models
        };
        let figures = pens::PenFigures {
            accuracy: mean(|f| f.accuracy),
            called_digit: mean(|f| f.called_digit),
            accuracy_keeping_stroke: mean(|f| f.accuracy_keeping_stroke),
            called_digit_keeping_stroke: mean(|f| f.called_digit_keeping_stroke),
        };
        print(format_args!("  {}: {figures}", set.pen.name))?;
    }
    Ok(())
}

/// The images to score the seed's run in `dir` on, and the folder they came from: the test
/// set, reused from `loaded` when it came from the same folder, or the seed's own validation
/// split.
fn seed_images(
    cli: &Cli,
    dir: &Path,
    loaded: Option<(PathBuf, MnistDataset)>,
) -> anyhow::Result<(PathBuf, MnistDataset)> {
    let data_dir = match &cli.data {
        Some(dir) => dir.clone(),
        None => infer::run_data_dir(dir)?,
    };
    Ok(match loaded {
        _ if cli.validation => (data_dir.clone(), scored_images(cli, dir, &data_dir)?),
        Some((loaded, dataset)) if loaded == data_dir => (loaded, dataset),
        _ => {
            let dataset = MnistDataset::load(&data_dir, Split::Test)?;
            (data_dir, dataset)
        }
    })
}

/// What eval scores: `test`, or `validation` with `--validation`.
fn scored_name(cli: &Cli) -> &'static str {
    match cli.validation {
        true => "validation",
        false => "test",
    }
}

/// The images scored for the run in `run_dir`: the test set in `data_dir`, or with
/// `--validation` the run's validation split of the training set there.
fn scored_images(cli: &Cli, run_dir: &Path, data_dir: &Path) -> anyhow::Result<MnistDataset> {
    if !cli.validation {
        return Ok(MnistDataset::load(data_dir, Split::Test)?);
    }
    infer::run_validation_split(run_dir, data_dir)?.with_context(|| {
        format!(
            "{}: this run held out no validation split; train with `--set \
             data.validation_images=5000` to choose thresholds on one",
            run_dir.join("config.toml").display()
        )
    })
}

/// The thresholds that keep most of the scored digits digits.
fn print_thresholds(evaluation: &Evaluation) -> anyhow::Result<()> {
    for share in [0.995, 0.99, 0.98] {
        if let Some(threshold) = evaluation.threshold_keeping(share) {
            print(format_args!(
                "  verdict.digit_at_least keeping {:.1} % of these digits: {threshold:.4}",
                100.0 * share
            ))?;
        }
    }
    Ok(())
}

/// A kind of non-digit images and its name, as printed.
type Kind = (String, Vec<[u8; PIXELS]>);

/// The non-digits `--outliers` and `--outlier-font` ask for, by kind, loaded once for every
/// model scored.
fn outlier_kinds(cli: &Cli) -> anyhow::Result<Vec<Kind>> {
    use infer::outliers::{TYPED_NON_DIGITS, dataset_images, drawn_non_digits, typed_images};
    let mut kinds = Vec::new();
    if let Some(dir) = &cli.outliers {
        let fashion =
            MnistDataset::load_collection(dir, data::Collection::FashionMnist, Split::Test)
                .context("cannot load Fashion-MNIST (apt-get install dataset-fashion-mnist)")?;
        kinds.push((
            "Fashion-MNIST's test images".to_string(),
            dataset_images(&fashion),
        ));
        kinds.push((
            "letters, symbols and shapes drawn as on the page".to_string(),
            drawn_non_digits(),
        ));
    }
    for font in &cli.outlier_font {
        let images = typed_images(font, TYPED_NON_DIGITS).map_err(anyhow::Error::msg)?;
        let name = font.file_name().unwrap_or_default().to_string_lossy();
        kinds.push((format!("letters and symbols in {name}"), images));
    }
    Ok(kinds)
}

/// How one model tells the scored digits from one kind of non-digit.
struct KindFigures {
    separation: Separation,
    shares: VerdictShares,
}

fn measure_kinds(
    classifier: &DigitClassifier,
    evaluation: &Evaluation,
    kinds: &[Kind],
) -> anyhow::Result<Vec<KindFigures>> {
    kinds
        .iter()
        .map(|(kind, images)| {
            let predictions = classifier.classify(images)?;
            let scores: Vec<f32> = predictions.iter().map(|p| p.confidence()).collect();
            let verdicts: Vec<_> = predictions.iter().map(|p| p.verdict).collect();
            let separation = Separation::of(&evaluation.confidences, &scores)
                .with_context(|| format!("{kind}: nothing to compare"))?;
            Ok(KindFigures {
                separation,
                shares: VerdictShares::of(&verdicts),
            })
        })
        .collect()
}

/// `--real-digits`: the verdicts on the pictures of digits in the folder, and how many.
fn real_digits(
    cli: &Cli,
    classifier: &DigitClassifier,
) -> anyhow::Result<Option<(VerdictShares, usize)>> {
    let Some(dir) = &cli.real_digits else {
        return Ok(None);
    };
    let mut verdicts = Vec::new();
    for result in infer::classify_files(classifier, std::slice::from_ref(dir))? {
        let classified = result.outcome.map_err(anyhow::Error::from)?;
        verdicts.push(classified.prediction.verdict);
    }
    Ok(Some((VerdictShares::of(&verdicts), verdicts.len())))
}

/// One model's figures for each kind of non-digit, and its verdicts on real digits.
fn print_kinds(
    evaluation: &Evaluation,
    kinds: &[Kind],
    figures: &[KindFigures],
    real: Option<&(VerdictShares, usize)>,
) -> anyhow::Result<()> {
    if kinds.is_empty() && real.is_none() {
        return Ok(());
    }
    print(format_args!(
        "\ntelling digits from other images (AUROC and pass rate by the top probability; \
         verdicts from {})",
        evaluation.rule.digit_at_least
    ))?;
    for ((kind, images), figures) in kinds.iter().zip(figures) {
        print(format_args!(
            "  {kind} ({}): {}; {}",
            images.len(),
            figures.separation,
            figures.shares
        ))?;
    }
    if let Some((shares, count)) = real {
        print(format_args!("  pictures of digits ({count}): {shares}"))?;
    }
    Ok(())
}

/// One seed's model: its score, its figures for each kind of non-digit, and its verdicts on
/// pictures of digits.
struct SeedFigures {
    evaluation: Evaluation,
    kinds: Vec<KindFigures>,
    real: Option<(VerdictShares, usize)>,
}

/// Over the seeds of a run: the mean of each figure.
fn print_kind_means(kinds: &[Kind], measured: &[SeedFigures]) -> anyhow::Result<()> {
    let seeds = measured.len().max(1) as f64;
    let mean =
        |figure: &dyn Fn(&SeedFigures) -> f64| measured.iter().map(figure).sum::<f64>() / seeds;
    print(format_args!(
        "mean over {} seeds: {:.2} % of scored digits called a digit, {:.2} % right when called a digit",
        measured.len(),
        mean(&|seed| 100.0 * seed.evaluation.verdict_shares().digit),
        mean(&|seed| seed.evaluation.accuracy_when_digit()),
    ))?;
    for (index, (kind, _)) in kinds.iter().enumerate() {
        print(format_args!(
            "  {kind}: AUROC {:.3}, {:.1} % pass where 95 % of digits do; {:.1} % flagged \
             ({:.1} % not a digit, {:.1} % unsure)",
            mean(&|seed| seed.kinds[index].separation.auroc),
            mean(&|seed| 100.0 * seed.kinds[index].separation.passed_at_95),
            mean(&|seed| 100.0 * seed.kinds[index].shares.flagged()),
            mean(&|seed| 100.0 * seed.kinds[index].shares.not_a_digit),
            mean(&|seed| 100.0 * seed.kinds[index].shares.unsure),
        ))?;
    }
    if measured.iter().all(|seed| seed.real.is_some()) && !measured.is_empty() {
        print(format_args!(
            "  pictures of digits: {:.1} % called a digit",
            mean(&|seed| seed.real.as_ref().map_or(0.0, |(s, _)| 100.0 * s.digit)),
        ))?;
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
