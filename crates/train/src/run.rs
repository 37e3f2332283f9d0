//! One training run, from a config file to a directory of artifacts.

use crate::checkpoint::last_complete_epoch;
use crate::classifier::Classifier;
use crate::config::{OptimizerSection, RunConfig, Schedule};
use crate::fetch::download_missing;
use crate::plots::write_curves;
use crate::quiet::QuietRenderer;
use crate::report::{EpochReport, EpochRow};
use anyhow::{Context, bail};
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::AdamConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::lr_scheduler::LrSchedulerConfig;
use burn::optim::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::optim::lr_scheduler::linear::LinearLrSchedulerConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::lr_scheduler::sequential::SequentialLrSchedulerConfig;
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::train::checkpoint::KeepLastNCheckpoints;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{Interrupter, Learner, SupervisedTraining};
use data::write_atomic;
use data::{DataError, MnistBatcher, MnistDataset, Split};
use model::{BackendKind, Cnn};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What to train and where, as given on the command line.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub config_path: PathBuf,
    pub backend: BackendKind,
    /// Overrides `training.epochs`.
    pub epochs: Option<usize>,
    /// Defaults to `artifacts/<config file stem>`.
    pub artifact_dir: Option<PathBuf>,
    /// Fetch missing MNIST files from the public mirrors instead of failing.
    pub download: bool,
    /// Continue the run in the artifact directory from its last complete epoch.
    pub resume: bool,
    /// `KEY=VALUE` settings applied over the config, e.g. `optimizer.learning_rate=0.01`.
    pub overrides: Vec<String>,
}

/// `summary.json`: the final (last-epoch) model's test figures and how long training took.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Percent, as measured by the Learner's test pass after the last epoch.
    pub test_accuracy: f64,
    pub test_loss: f64,
    pub epochs: usize,
    /// Wall-clock seconds of the whole training loop, evaluation passes included.
    pub train_seconds: f64,
    pub backend: String,
    pub train_images: usize,
    /// Held out from training when the config asks for a validation split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_images: Option<usize>,
    pub test_images: usize,
}

/// Trains as `options` say and writes `model.bpk`, `config.toml`, `metrics.csv`,
/// `summary.json` and `checkpoint/` into the artifact directory.
pub fn train(options: &TrainOptions) -> anyhow::Result<Summary> {
    let artifact_dir = options
        .artifact_dir
        .clone()
        .unwrap_or_else(|| default_artifact_dir(&options.config_path));
    // A resumed run keeps the recipe it started with, saved beside its checkpoints.
    let config_path = if options.resume {
        let saved = artifact_dir.join("config.toml");
        if !saved.is_file() {
            bail!(
                "{}: not found; there is no run to resume in {}",
                saved.display(),
                artifact_dir.display()
            );
        }
        saved
    } else {
        options.config_path.clone()
    };
    let mut config = RunConfig::load(&config_path)?.with_overrides(&options.overrides)?;
    if let Some(epochs) = options.epochs {
        config.training.epochs = epochs;
        config.validate("--epochs")?;
    }
    if !options.download && !config.data.dir.is_dir() {
        bail!(
            "{}: `data.dir`: {} is not a directory (put the MNIST files there, or rerun with --download)",
            config_path.display(),
            config.data.dir.display()
        );
    }
    // Before anything is written: a backend this build lacks, or a GPU that is not there.
    let ready = options.backend.init()?;
    let checkpoint_dir = artifact_dir.join("checkpoint");
    let resume_from = if options.resume {
        last_complete_epoch(&checkpoint_dir)
    } else {
        None
    };
    std::fs::create_dir_all(&artifact_dir).with_context(|| {
        format!(
            "{}: cannot create the artifact directory",
            artifact_dir.display()
        )
    })?;
    write_atomic(
        &artifact_dir.join("config.toml"),
        config.to_toml().as_bytes(),
    )
    .with_context(|| {
        format!(
            "{}: cannot write",
            artifact_dir.join("config.toml").display()
        )
    })?;

    let (train_set, test_set) = load_mnist(&config, options.download)?;
    // The tutorial scores the test set after every epoch; with a validation split the test
    // set is kept for one final score instead.
    let (train_set, valid_set, final_test) = match config.data.validation_images {
        Some(held) => {
            let (rest, validation) = train_set.split_off_validation(held, config.seed);
            (rest, validation, Some(test_set))
        }
        None => (train_set, test_set.clone(), None),
    };
    let device = ready.device;
    device.seed(config.seed);
    let autodiff = device.clone().autodiff();

    let batches_per_epoch = train_set.len().div_ceil(config.training.batch_size);
    let train_batcher = match config.augmentation.augmentation() {
        Some(augmentation) => MnistBatcher::augmented(
            augmentation,
            config.seed,
            (resume_from.unwrap_or(0) * batches_per_epoch) as u64,
        ),
        None => MnistBatcher::default(),
    };
    let train_loader = DataLoaderBuilder::new(train_batcher)
        .batch_size(config.training.batch_size)
        .shuffle(config.seed)
        .set_device(autodiff.clone())
        .build(train_set.clone());
    let test_loader = DataLoaderBuilder::new(MnistBatcher::default())
        .batch_size(config.training.batch_size)
        .set_device(device.clone())
        .build(valid_set.clone());

    let epochs = config.training.epochs;
    let interrupter = Interrupter::new();
    let metrics_path = artifact_dir.join("metrics.csv");
    let done_rows = match resume_from {
        Some(epoch) => read_rows(&metrics_path, epoch),
        None => Vec::new(),
    };
    let report = EpochReport::new(
        metrics_path,
        !std::io::stdout().is_terminal(),
        epochs,
        train_set.len(),
    )
    .with_rows(done_rows)
    .held_out(if final_test.is_some() {
        "valid"
    } else {
        "test"
    });
    let rows = report.rows();
    let report = report.stop_on_non_finite_loss(interrupter.clone());
    let mut training = SupervisedTraining::new(&artifact_dir, train_loader, test_loader)
        .with_interrupter(interrupter.clone())
        .metrics((AccuracyMetric::new(), LossMetric::new()))
        .with_metric_logger(report)
        .with_default_checkpointers()
        .with_checkpointing_strategy(KeepLastNCheckpoints::new(epochs.max(1)))
        .num_epochs(epochs);
    if let Some(epoch) = resume_from {
        println!("resuming {} after epoch {epoch}", artifact_dir.display());
        training = training.checkpoint(epoch);
    } else if options.resume {
        println!(
            "no complete checkpoint in {}; starting from the beginning",
            checkpoint_dir.display()
        );
    }
    stop_on_ctrl_c(interrupter);
    if !std::io::stdout().is_terminal() {
        training = training.renderer(Box::new(QuietRenderer));
        let held_out = match &final_test {
            Some(test) => format!("{} validation, {} test", valid_set.len(), test.len()),
            None => format!("{} test", valid_set.len()),
        };
        println!(
            "training {} on {} for {epochs} epoch{} ({} training, {held_out} images)",
            options.config_path.display(),
            ready.description,
            if epochs == 1 { "" } else { "s" },
            train_set.len(),
        );
    }

    let mut classifier = Classifier {
        cnn: config.model.cnn().init(&autodiff),
    };
    if let Some(epoch) = resume_from {
        // Burn panics on a checkpoint that does not fit; check it here to say why instead.
        let path = checkpoint_dir.join(format!("model-{epoch}.bpk"));
        let record = ModuleRecord::load(&path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
        classifier = classifier.try_load_record(record).map_err(|e| {
            anyhow::anyhow!(
                "{}: does not match the network in {}: {e}",
                path.display(),
                config_path.display()
            )
        })?;
    }
    let o = &config.optimizer;
    let optimizer = AdamConfig::new()
        .with_beta_1(o.beta1)
        .with_beta_2(o.beta2)
        .with_epsilon(o.epsilon)
        .with_weight_decay((o.weight_decay > 0.0).then(|| WeightDecayConfig::new(o.weight_decay)))
        .init();

    if options.backend == BackendKind::Wgpu {
        eprintln!(
            "wgpu compiles its kernels during the first steps: a minute or more on a software \
             driver, seconds on a GPU; they are cached for later runs"
        );
    }
    let schedule = learning_rate_schedule(o, epochs * batches_per_epoch)
        .map_err(|e| anyhow::anyhow!("{}: `optimizer`: {e}", config_path.display()))?;
    let started = Instant::now();
    let result = training.launch(Learner::new(classifier, optimizer, schedule));
    let train_seconds = started.elapsed().as_secs_f64();
    if let Some(error) = result.error {
        bail!("training failed: {error}");
    }
    if let Some(stop) = result.interrupted {
        let kept = last_complete_epoch(&checkpoint_dir).map_or_else(
            || "no epoch was completed".to_string(),
            |e| format!("epoch {e} is the last complete checkpoint"),
        );
        match stop.reason.as_deref() {
            Some(CTRL_C) => bail!(
                "training stopped (Ctrl-C); {kept}; resume with: cargo xtask train --resume --artifact-dir {}",
                artifact_dir.display()
            ),
            reason => bail!(
                "training stopped: {}; {kept}",
                reason.unwrap_or("interrupted")
            ),
        }
    }
    drop(result.renderer);

    let model_path = artifact_dir.join("model.bpk");
    let cnn = result.model.cnn.valid().fork(&device);
    let record = cnn.clone().into_record().into_bytes()?;
    write_atomic(&model_path, &record)
        .with_context(|| format!("{}: cannot write", model_path.display()))?;

    let rows = rows.lock().map(|rows| rows.clone()).unwrap_or_default();
    let Some(last) = rows.last() else {
        bail!("training finished without completing an epoch");
    };
    // Without a validation split the Learner scored this very model on the test set at the
    // end of the last epoch; with one, the test set is scored now, once.
    let (test_loss, test_accuracy, test_images) = match &final_test {
        Some(test) => {
            let (loss, accuracy) = evaluate(&cnn, test, config.training.batch_size, &device);
            (loss, accuracy, test.len())
        }
        None => (last.valid_loss, last.valid_accuracy, valid_set.len()),
    };
    let summary = Summary {
        test_accuracy,
        test_loss,
        epochs: rows.len(),
        train_seconds,
        backend: options.backend.to_string(),
        train_images: train_set.len(),
        validation_images: final_test.as_ref().map(|_| valid_set.len()),
        test_images,
    };
    let curves_path = artifact_dir.join("curves.png");
    if let Err(e) = write_curves(&rows, &curves_path) {
        eprintln!("warning: {}: {e:#}", curves_path.display());
    }
    let summary_path = artifact_dir.join("summary.json");
    write_atomic(
        &summary_path,
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )
    .with_context(|| format!("{}: cannot write", summary_path.display()))?;
    println!(
        "test accuracy {:.2}% (loss {:.4}) after {} epoch{} in {:.1} s; model saved to {}",
        summary.test_accuracy,
        summary.test_loss,
        summary.epochs,
        if summary.epochs == 1 { "" } else { "s" },
        summary.train_seconds,
        model_path.display()
    );
    Ok(summary)
}

/// The config's learning-rate schedule over a run of `steps` optimizer steps.
fn learning_rate_schedule(o: &OptimizerSection, steps: usize) -> Result<ModuleLrScheduler, String> {
    let peak = o.learning_rate;
    let last = peak * o.final_lr_fraction;
    let steps = steps.max(2);
    match o.schedule {
        Schedule::Constant => Ok(peak.into()),
        Schedule::Cosine => CosineAnnealingLrSchedulerConfig::new(peak, steps)
            .with_min_lr(last)
            .init(),
        Schedule::OneCycle => {
            let warmup = ((steps as f64 * o.warmup_fraction).round() as usize).clamp(1, steps - 1);
            SequentialLrSchedulerConfig::new(
                vec![
                    LrSchedulerConfig::Linear(LinearLrSchedulerConfig::new(
                        peak / 25.0,
                        peak,
                        warmup,
                    )),
                    LrSchedulerConfig::Cosine(
                        CosineAnnealingLrSchedulerConfig::new(peak, steps - warmup)
                            .with_min_lr(last),
                    ),
                ],
                vec![warmup],
            )
            .init()
        }
    }
}

/// The rows of `metrics.csv` for epochs up to `last_epoch` (those a resumed run keeps).
fn read_rows(path: &Path, last_epoch: usize) -> Vec<EpochRow> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(EpochRow::from_csv)
        .filter(|row| row.epoch <= last_epoch)
        .collect()
}

/// The reason given to the Learner when the user presses Ctrl-C.
const CTRL_C: &str = "Ctrl-C";

/// The first Ctrl-C stops training at the next batch boundary, keeping every finished
/// checkpoint; a second one quits at once.
fn stop_on_ctrl_c(interrupter: Interrupter) {
    #[cfg(unix)]
    {
        ctrl_c::install();
        std::thread::spawn(move || {
            while !ctrl_c::pressed() {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            eprintln!("stopping at the next batch (Ctrl-C again to quit now)");
            interrupter.stop(Some(CTRL_C));
        });
    }
    #[cfg(not(unix))]
    let _ = interrupter;
}

#[cfg(unix)]
mod ctrl_c {
    use std::sync::atomic::{AtomicUsize, Ordering};

    static PRESSES: AtomicUsize = AtomicUsize::new(0);

    extern "C" fn on_sigint(_signal: libc::c_int) {
        // Only async-signal-safe work here: an atomic counter, and `_exit` on the second press.
        if PRESSES.fetch_add(1, Ordering::SeqCst) > 0 {
            // SAFETY: `_exit` is async-signal-safe and ends the process without unwinding.
            unsafe { libc::_exit(130) };
        }
    }

    pub fn install() {
        let handler = on_sigint as extern "C" fn(libc::c_int);
        // SAFETY: the handler only touches an atomic and calls `_exit`.
        unsafe { libc::signal(libc::SIGINT, handler as libc::sighandler_t) };
    }

    pub fn pressed() -> bool {
        PRESSES.load(Ordering::SeqCst) > 0
    }
}

/// `artifacts/<stem of the config file>`.
pub fn default_artifact_dir(config_path: &Path) -> PathBuf {
    let stem = config_path
        .file_stem()
        .map_or_else(|| "run".into(), |s| s.to_string_lossy().into_owned());
    Path::new("artifacts").join(stem)
}

fn load_mnist(config: &RunConfig, download: bool) -> anyhow::Result<(MnistDataset, MnistDataset)> {
    let dir = &config.data.dir;
    let load = || -> Result<_, DataError> {
        let train = MnistDataset::load(dir, Split::Train)?;
        let test = MnistDataset::load(dir, Split::Test)?;
        Ok((train, test))
    };
    let (train, test) = match load() {
        Err(DataError::Missing { path }) if !download => bail!(
            "{}: not found; copy the four MNIST files into {} (see data/mnist/README.md) or rerun with --download",
            path.display(),
            dir.display()
        ),
        Err(DataError::Missing { .. }) => {
            download_missing(dir)?;
            load()?
        }
        other => other?,
    };
    let train = match config.data.train_limit {
        Some(n) => train.take(n),
        None => train,
    };
    let test = match config.data.test_limit {
        Some(n) => test.take(n),
        None => test,
    };
    Ok((train, test))
}

/// Mean cross-entropy and accuracy (percent) of `cnn` over `dataset`, batched as in training.
fn evaluate(cnn: &Cnn, dataset: &MnistDataset, batch_size: usize, device: &Device) -> (f64, f64) {
    let loss = CrossEntropyLossConfig::new().init(device);
    let (mut loss_sum, mut correct) = (0.0, 0i64);
    for start in (0..dataset.len()).step_by(batch_size.max(1)) {
        let end = (start + batch_size).min(dataset.len());
        let items = (start..end).filter_map(|i| dataset.item(i)).collect();
        let batch = MnistBatcher::default().batch(items, device);
        let logits = cnn.forward(batch.images);
        let batch_loss = loss
            .forward(logits.clone(), batch.targets.clone())
            .into_scalar::<f64>();
        loss_sum += batch_loss * (end - start) as f64;
        correct += logits
            .argmax(1)
            .squeeze_dim::<1>(1)
            .equal(batch.targets)
            .int()
            .sum()
            .into_scalar::<i64>();
    }
    let n = dataset.len().max(1) as f64;
    (loss_sum / n, 100.0 * correct as f64 / n)
}
