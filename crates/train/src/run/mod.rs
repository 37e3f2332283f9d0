//! One training run, from a config file to a directory of artifacts, in named phases:
//! [`PreparedRun::prepare`] checks everything and loads the data, writing nothing;
//! [`PreparedRun::train`] saves the recipe, fits the network ([`crate::fit`]) and finishes:
//! `model.bpk`, the one test score, `summary.json` and `curves.png`.

mod curves;
pub(crate) mod lock;
mod memory;

pub(crate) use memory::check_memory;

use crate::checkpoint::last_complete_epoch;
use crate::error::{TrainError, write_json, write_run_file};
use crate::fit::report::{EpochRow, read_metrics};
use crate::fit::{FitPlan, Fitted, Hooks};
use crate::recipe::{ConfigError, RunConfig};
use crate::run::curves::write_curves;
use crate::run::lock::RunLock;
use burn::data::dataset::Dataset;
use burn::prelude::*;
use data::{DataError, MnistDataset, OutlierPool, Split};
use infer::{DigitClassifier, Evaluation};
use model::{BackendKind, ReadyDevice};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What to train and where, as given on the command line.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// The TOML recipe.
    pub config_path: PathBuf,
    /// Which backend to train on.
    pub backend: BackendKind,
    /// Overrides `training.epochs`.
    pub epochs: Option<usize>,
    /// Defaults to `artifacts/<config file stem>`.
    pub run_dir: Option<PathBuf>,
    /// Fetch missing MNIST files from the public mirrors instead of failing.
    pub download: bool,
    /// Continue the run in the run directory from its last complete epoch.
    pub resume: bool,
    /// Start over in a run directory that holds an earlier run, replacing its files.
    pub restart: bool,
    /// `KEY=VALUE` settings applied over the config, e.g. `optimizer.learning_rate=0.01`.
    pub overrides: Vec<String>,
}

/// `summary.json`: the final (last-epoch) model's test figures and how long training took.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    /// Percent, scored once on the test set after the last epoch.
    pub test_accuracy: f64,
    /// Mean cross-entropy on the test set.
    pub test_loss: f64,
    /// Percent, on the validation split after the last epoch, when the config holds one out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_accuracy: Option<f64>,
    /// Epochs trained, resumed ones included.
    pub epochs: usize,
    /// Wall-clock seconds of the whole training loop, evaluation passes included.
    pub train_seconds: f64,
    /// The backend trained on.
    pub backend: String,
    /// Images trained on per epoch.
    pub train_images: usize,
    /// Held out from training when the config asks for a validation split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_images: Option<usize>,
    /// Images in the final test score.
    pub test_images: usize,
}

/// A finished run: its summary, where the model went, and what could not be drawn.
#[derive(Debug)]
pub struct Finished {
    /// What `summary.json` holds.
    pub summary: Summary,
    /// Where `model.bpk` was written.
    pub model_path: PathBuf,
    /// Problems that cost the run nothing but a figure, one line each.
    pub warnings: Vec<String>,
}

/// Where a resumed run picks up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// A new run.
    Fresh,
    /// After this epoch, the last one whose checkpoint is complete.
    AfterEpoch(usize),
    /// `--resume`, but no epoch had finished: from the beginning.
    NoCheckpoint,
}

/// The images of a run.
pub struct RunData {
    /// Trained on.
    pub train: MnistDataset,
    /// Scored after every epoch: the validation split if the config holds one out, else (the
    /// tutorial's way) the test set.
    pub held_out: MnistDataset,
    /// Scored once at the end, when `held_out` is a validation split.
    pub final_test: Option<MnistDataset>,
    /// Images of no digit drawn into training batches (empty unless the recipe has some).
    pub outliers: Arc<OutlierPool>,
}

/// What a run writes into its run directory: an earlier run is recognised by any of
/// them, and `--restart` removes exactly these.
pub const RUN_OUTPUTS: [&str; 10] = [
    "checkpoint",
    "config.toml",
    "metrics.csv",
    "model.bpk",
    "model.bpk.sha256",
    "summary.json",
    "curves.png",
    "confusion.png",
    "misclassified.png",
    "experiment.log",
];

/// A run whose config, data, backend and resume point are all checked, holding its run
/// directory's lock; nothing has been written there yet but the lock file.
pub struct PreparedRun {
    /// The resolved recipe: the file, then `--set`, then `--epochs`.
    pub config: RunConfig,
    /// The recipe's file: the given config, or the one saved in the run when resuming.
    pub config_path: PathBuf,
    /// Where the run writes.
    pub run_dir: PathBuf,
    /// The backend chosen.
    pub backend: BackendKind,
    /// Its device, ready.
    pub device: ReadyDevice,
    /// Where training starts.
    pub resume: Resume,
    /// The images.
    pub data: RunData,
    /// Start over in a directory that holds an earlier run.
    restart: bool,
    /// The run directory's claim, held until training ends.
    _lock: RunLock,
}

impl PreparedRun {
    /// Checks everything a run needs, loads (or with `--download` fetches) MNIST, and finds
    /// where to resume; `on_download` hears each URL fetched.
    pub fn prepare(
        options: &TrainOptions,
        on_download: impl FnMut(&str),
    ) -> Result<Self, TrainError> {
        let run_dir = options
            .run_dir
            .clone()
            .unwrap_or_else(|| default_run_dir(&options.config_path));
        let config_path = recipe_path(options, &run_dir)?;
        let recipe = RunConfig::load(&config_path)?;
        let config = resolve_config(recipe.clone(), options)?;
        memory::check_memory(&config, &config_path.display().to_string())?;
        if options.resume {
            keeps_its_network(&recipe, &config, &config_path)?;
        }
        if !options.download && !config.data.dir.is_dir() {
            return Err(TrainError::Config(ConfigError {
                origin: config_path.display().to_string(),
                key: "data.dir".into(),
                reason: format!(
                    "{} is not a directory (put the MNIST files there, or rerun with --download)",
                    config.data.dir.display()
                ),
            }));
        }
        outlier_sources_exist(&config, &config_path)?;
        let lock = RunLock::acquire(&run_dir)?;
        holds_no_seed_runs(&run_dir)?;
        if !options.resume && !options.restart {
            holds_no_earlier_run(&run_dir)?;
        }
        // Before any data is read: a backend this build lacks, or a GPU that is not there.
        let device = options.backend.init()?;
        let resume = match options.resume {
            false => Resume::Fresh,
            true => last_complete_epoch(&run_dir.join("checkpoint"))
                .map_or(Resume::NoCheckpoint, Resume::AfterEpoch),
        };
        let data = RunData::load(&config, options.download, on_download)?;
        Ok(Self {
            config,
            config_path,
            run_dir,
            backend: options.backend,
            device,
            resume,
            data,
            restart: options.restart,
            _lock: lock,
        })
    }

    /// What the images scored after each epoch are called: `validation` or `test`.
    pub fn held_out_name(&self) -> &'static str {
        match self.data.final_test {
            Some(_) => "validation",
            None => "test",
        }
    }

    /// Trains and writes `config.toml`, `checkpoint/`, `metrics.csv`, `model.bpk`,
    /// `summary.json` and `curves.png` into the run directory.
    pub fn train(self, hooks: Hooks) -> Result<Finished, TrainError> {
        if self.restart {
            self.remove_earlier_run()?;
        }
        let done_rows = self.save_recipe()?;
        let resume_from = match self.resume {
            Resume::AfterEpoch(epoch) => Some(epoch),
            Resume::Fresh | Resume::NoCheckpoint => None,
        };
        let plan = FitPlan {
            config: &self.config,
            config_path: &self.config_path,
            run_dir: &self.run_dir,
            device: &self.device.device,
            resume_from,
            done_rows,
        };
        let fitted = plan.fit(
            &self.data.train,
            &self.data.held_out,
            self.data.outliers.clone(),
            hooks,
        )?;
        self.finish(fitted)
    }

    /// `--restart`: removes what an earlier run wrote (and only that), now that the new run
    /// has been checked.
    fn remove_earlier_run(&self) -> Result<(), TrainError> {
        for name in RUN_OUTPUTS {
            let path = self.run_dir.join(name);
            let removed = match std::fs::symlink_metadata(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
                // The checkpoints' folder may hold files of the user's: only the records go.
                Ok(meta) if meta.is_dir() => crate::checkpoint::remove_records(&path),
                Ok(_) => std::fs::remove_file(&path),
            };
            removed.map_err(|e| TrainError::file(&path, format!("cannot remove: {e}")))?;
        }
        Ok(())
    }

    /// Creates the run directory and saves the resolved recipe in it; returns the rows
    /// of `metrics.csv` a resumed run keeps.
    fn save_recipe(&self) -> Result<Vec<EpochRow>, TrainError> {
        let dir = &self.run_dir;
        std::fs::create_dir_all(dir)
            .map_err(|e| TrainError::file(dir, format!("cannot create the run directory: {e}")))?;
        let path = dir.join("config.toml");
        write_run_file(&path, self.config.to_toml().as_bytes())?;
        let Resume::AfterEpoch(last) = self.resume else {
            return Ok(Vec::new());
        };
        let metrics = dir.join("metrics.csv");
        if !metrics.exists() {
            return Ok(Vec::new());
        }
        let rows = read_metrics(&metrics).map_err(|problem| TrainError::file(&metrics, problem))?;
        Ok(rows.into_iter().filter(|row| row.epoch <= last).collect())
    }

    /// Seconds the epochs trained before a resume took, as `metrics.csv` recorded them: a
    /// resumed run's time is all of its epochs', not only those trained since.
    fn earlier_seconds(&self, rows: &[EpochRow]) -> f64 {
        match self.resume {
            Resume::AfterEpoch(done) => rows
                .iter()
                .filter(|row| row.epoch <= done)
                .map(|row| row.seconds)
                .sum(),
            Resume::Fresh | Resume::NoCheckpoint => 0.0,
        }
    }

    /// Saves the model, scores it once on the test set, and writes the summary and curves.
    fn finish(self, fitted: Fitted) -> Result<Finished, TrainError> {
        let model_path = self.run_dir.join("model.bpk");
        let record = fitted
            .cnn
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| TrainError::file(&model_path, format!("cannot encode: {e}")))?;
        data::write_with_checksum(&model_path, &record)
            .map_err(|e| TrainError::file(&model_path, format!("cannot write: {e}")))?;

        let test = self.data.final_test.as_ref().unwrap_or(&self.data.held_out);
        let classifier = DigitClassifier::new(fitted.cnn, self.device.device.clone())
            .with_rule(self.config.verdict);
        let score = Evaluation::run(&classifier, test)?;
        let summary = Summary {
            test_accuracy: score.accuracy,
            test_loss: score.loss,
            validation_accuracy: self
                .data
                .final_test
                .as_ref()
                .and(fitted.rows.last())
                .map(|row| row.held_out_accuracy),
            epochs: fitted.rows.len(),
            train_seconds: fitted.seconds + self.earlier_seconds(&fitted.rows),
            backend: self.backend.to_string(),
            train_images: self.data.train.len(),
            validation_images: self
                .data
                .final_test
                .as_ref()
                .map(|_| self.data.held_out.len()),
            test_images: test.len(),
        };
        let mut warnings = Vec::new();
        let curves = self.run_dir.join("curves.png");
        if let Err(e) = write_curves(&fitted.rows, self.held_out_name(), &curves) {
            warnings.push(e.to_string());
        }
        write_json(&self.run_dir.join("summary.json"), &summary)?;
        Ok(Finished {
            summary,
            model_path,
            warnings,
        })
    }
}

/// `artifacts/<stem of the config file>`.
pub fn default_run_dir(config_path: &Path) -> PathBuf {
    let stem = config_path
        .file_stem()
        .map_or_else(|| "run".into(), |s| s.to_string_lossy().into_owned());
    Path::new("artifacts").join(stem)
}

/// The recipe to read: a resumed run keeps the one it started with, saved beside its
/// checkpoints.
fn recipe_path(options: &TrainOptions, run_dir: &Path) -> Result<PathBuf, TrainError> {
    if !options.resume {
        return Ok(options.config_path.clone());
    }
    let saved = run_dir.join("config.toml");
    match saved.is_file() {
        true => Ok(saved),
        false => Err(TrainError::file(
            &saved,
            format!(
                "not found; there is no run to resume in {}",
                run_dir.display()
            ),
        )),
    }
}

/// Without `--resume` or `--restart`, a run directory holding an earlier run is left
/// alone: starting over there would mix the two runs' files.
fn holds_no_earlier_run(dir: &Path) -> Result<(), TrainError> {
    let found: Vec<&str> = RUN_OUTPUTS
        .into_iter()
        .filter(|name| dir.join(name).symlink_metadata().is_ok())
        .collect();
    refuse_earlier_run(dir, &found)
}

/// A single run never goes into a multi-seed run's directory, not even with `--restart` or
/// `--resume`: the seeds' recipe and summaries would be mixed with its own.
fn holds_no_seed_runs(dir: &Path) -> Result<(), TrainError> {
    let found = crate::seeds::seed_outputs_in(dir);
    if found.is_empty() {
        return Ok(());
    }
    Err(TrainError::file(
        dir,
        format!(
            "holds a multi-seed run ({}); continue it with the same --seeds and --resume, or \
             give this run another --model",
            found.join(", ")
        ),
    ))
}

/// The refusal of a directory holding `found`, the names of an earlier run's files (none:
/// no refusal).
pub(crate) fn refuse_earlier_run(dir: &Path, found: &[&str]) -> Result<(), TrainError> {
    if found.is_empty() {
        return Ok(());
    }
    Err(TrainError::file(
        dir,
        format!(
            "holds an earlier run ({}); continue it with --resume, start over with --restart \
             (which replaces its files), or choose another --model",
            found.join(", ")
        ),
    ))
}

/// A resumed run continues from checkpoints of its own network: `--set model.…` cannot
/// change it.
fn keeps_its_network(
    saved: &RunConfig,
    config: &RunConfig,
    saved_path: &Path,
) -> Result<(), TrainError> {
    if saved.model == config.model {
        return Ok(());
    }
    Err(TrainError::Config(ConfigError {
        origin: "--set".into(),
        key: "model".into(),
        reason: format!(
            "a resumed run keeps the network it started with (in {}); start a new run to \
             change it",
            saved_path.display()
        ),
    }))
}

/// The recipe with `--set` and `--epochs` applied, each checked.
pub(crate) fn resolve_config(
    recipe: RunConfig,
    options: &TrainOptions,
) -> Result<RunConfig, ConfigError> {
    let mut config = recipe.with_overrides(&options.overrides)?;
    if let Some(epochs) = options.epochs {
        config.training.epochs = epochs;
        config.validate("--epochs")?;
    }
    Ok(config)
}

impl RunData {
    /// The training and test sets as the config limits them, with the validation split
    /// taken out of the training set when the config asks for one.
    fn load(
        config: &RunConfig,
        download: bool,
        on_download: impl FnMut(&str),
    ) -> Result<Self, TrainError> {
        let (train, test) = load_mnist(&config.data.dir, download, on_download)?;
        let limit = |set: MnistDataset, limit: Option<usize>| match limit {
            Some(n) => set.take(n),
            None => set,
        };
        let train = limit(train, config.data.train_limit);
        let test = limit(test, config.data.test_limit);
        let outliers = Arc::new(outlier_pool(config)?);
        Ok(match config.data.validation_images {
            Some(count) => {
                let (train, validation) = train.split_off_validation(count, config.seed);
                Self {
                    train,
                    held_out: validation,
                    final_test: Some(test),
                    outliers,
                }
            }
            None => Self {
                train,
                held_out: test,
                final_test: None,
                outliers,
            },
        })
    }
}

/// The recipe's outlier files are there, checked before anything is written.
fn outlier_sources_exist(config: &RunConfig, config_path: &Path) -> Result<(), TrainError> {
    let outliers = &config.outliers;
    let missing = |key: &str, path: &Path, what: &str| {
        TrainError::Config(ConfigError {
            origin: config_path.display().to_string(),
            key: format!("outliers.{key}"),
            reason: format!("{} is not {what}", path.display()),
        })
    };
    if outliers.per_batch == 0 {
        return Ok(());
    }
    if let Some(font) = outliers.font.as_deref().filter(|font| !font.is_file()) {
        return Err(missing(
            "font",
            font,
            "a font file (paths are relative to the working directory)",
        ));
    }
    if let Some(dir) = outliers
        .fashion_mnist
        .as_deref()
        .filter(|dir| !dir.is_dir())
    {
        return Err(missing(
            "fashion_mnist",
            dir,
            "a directory (apt-get install dataset-fashion-mnist puts it in /usr/share/datasets/fashion-mnist)",
        ));
    }
    Ok(())
}

/// The non-digits the recipe's `[outliers]` section asks for, one kind per source; none
/// when it adds none to a batch.
fn outlier_pool(config: &RunConfig) -> Result<OutlierPool, TrainError> {
    let section = &config.outliers;
    if section.per_batch == 0 {
        return Ok(OutlierPool::default());
    }
    let mut kinds = Vec::new();
    if let Some(font) = &section.font {
        let typed =
            infer::outliers::typed_images_in_weights(font, infer::outliers::TYPED_NON_DIGITS)
                .map_err(|reason| TrainError::Failed(format!("`outliers.font`: {reason}")))?;
        kinds.push(typed);
    }
    kinds.push(infer::outliers::scribbles(section.scribbles, config.seed));
    if let Some(dir) = &section.fashion_mnist {
        let fashion =
            MnistDataset::load_collection(dir, data::Collection::FashionMnist, Split::Train)
                .map_err(|e| {
                    TrainError::file(
                        dir,
                        format!(
                            "`outliers.fashion_mnist`: {e} (apt-get install dataset-fashion-mnist)"
                        ),
                    )
                })?;
        kinds.push(infer::outliers::dataset_images(&fashion));
    }
    Ok(OutlierPool::new(kinds))
}

/// MNIST's training and test sets from `dir`, fetched first with `download` if missing.
fn load_mnist(
    dir: &Path,
    download: bool,
    on_download: impl FnMut(&str),
) -> Result<(MnistDataset, MnistDataset), TrainError> {
    let load = || -> Result<_, DataError> {
        let train = MnistDataset::load(dir, Split::Train)?;
        let test = MnistDataset::load(dir, Split::Test)?;
        Ok((train, test))
    };
    match load() {
        Err(DataError::Missing { path }) if !download => Err(TrainError::file(
            path,
            format!(
                "not found; copy the four MNIST files into {} (see data/mnist/README.md) or rerun with --download",
                dir.display()
            ),
        )),
        Err(DataError::Missing { .. }) => {
            data::download_missing(dir, on_download)?;
            Ok(load()?)
        }
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_recipe_trains_where_eval_and_export_look() {
        let default = default_run_dir(Path::new("configs/default.toml"));
        assert_eq!(default, Path::new(infer::cli::DEFAULT_RUN_DIR));
    }
}
