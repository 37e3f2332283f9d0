//! The training loop: Burn's Learner with this run's data loaders, optimizer, schedule,
//! per-epoch report and checkpoints, and the network it ends with.

pub(crate) mod classifier;
mod kept_awake;
mod quiet;
pub(crate) mod report;
mod schedule;

use self::classifier::Classifier;
use self::quiet::QuietRenderer;
use self::report::{DIVERGED, EpochReport, EpochRow, MeasureNames, SharedRows};
use crate::checkpoint::{self, ChecksummedRecords, last_complete_epoch};
use crate::error::TrainError;
use crate::recipe::RunConfig;
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::Dataset;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::lr_scheduler::LrSchedulerRecord;
use burn::optim::{AdamConfig, OptimizerRecord};
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::train::checkpoint::KeepLastNCheckpoints;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{Interrupter, Learner, LearningResult, SupervisedTraining};
use data::{MnistBatcher, MnistDataset, OutlierPool};
use model::Cnn;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// What the caller of a run hears while it trains, and how it can stop it.
pub struct Hooks {
    /// Stops training at the next batch boundary, keeping every finished checkpoint.
    pub interrupter: Interrupter,
    /// Called with each finished epoch's row.
    pub on_epoch: Box<dyn FnMut(&EpochRow) + Send>,
    /// Show Burn's terminal dashboard while training (else nothing is drawn).
    pub dashboard: bool,
}

/// Where a fit starts, writes and reads.
pub(crate) struct FitPlan<'a> {
    pub config: &'a RunConfig,
    /// Where the recipe came from, to name it in errors.
    pub config_path: &'a Path,
    pub run_dir: &'a Path,
    pub device: &'a Device,
    /// The last complete epoch of the run being resumed.
    pub resume_from: Option<usize>,
    /// Rows of `metrics.csv` already done, when resuming.
    pub done_rows: Vec<EpochRow>,
}

/// A trained network, in inference mode on the run's device, and its epochs.
pub(crate) struct Fitted {
    pub cnn: Cnn,
    pub rows: Vec<EpochRow>,
    /// Wall-clock seconds of the Learner's loop, evaluation passes included.
    pub seconds: f64,
}

impl FitPlan<'_> {
    /// Optimizer steps in an epoch over `train_images` (the last batch may be short).
    fn batches_per_epoch(&self, train_images: usize) -> usize {
        train_images.div_ceil(self.config.training.batch_size)
    }

    fn checkpoint_dir(&self) -> PathBuf {
        self.run_dir.join("checkpoint")
    }

    /// Trains on `train` with `outliers` in every batch the recipe asks them in, scoring
    /// `held_out` after every epoch.
    pub fn fit(
        self,
        train: &MnistDataset,
        held_out: &MnistDataset,
        outliers: Arc<OutlierPool>,
        hooks: Hooks,
    ) -> Result<Fitted, TrainError> {
        self.device.seed(self.config.seed);
        let autodiff = self.device.clone().autodiff();
        let training = || {
            let (training, rows) =
                self.supervised_training(train, held_out, outliers, hooks, &autodiff);
            let learner = self.learner(&autodiff, train.len())?;
            let started = Instant::now();
            let result = training.launch(learner);
            Ok::<_, TrainError>((result, rows, started.elapsed().as_secs_f64()))
        };
        // Only flex's kernels split their work over rayon's pool.
        let (result, rows, seconds) = match *self.device == Device::flex() {
            true => kept_awake::on_workers_kept_awake(training),
            false => kept_awake::on_a_worker(training),
        }?;
        let cnn = self.trained_network(result)?;
        let rows = rows.lock().map(|rows| rows.clone()).unwrap_or_default();
        if rows.is_empty() {
            return Err(TrainError::Failed(
                "training finished without completing an epoch".into(),
            ));
        }
        Ok(Fitted { cnn, rows, seconds })
    }

    /// Burn's supervised training with this run's loaders, metrics, report and checkpoints.
    fn supervised_training(
        &self,
        train: &MnistDataset,
        held_out: &MnistDataset,
        outliers: Arc<OutlierPool>,
        hooks: Hooks,
        autodiff: &Device,
    ) -> (SupervisedTraining<Classifier>, SharedRows) {
        let batch_size = self.config.training.batch_size;
        let batches_done = self.resume_from.unwrap_or(0) * self.batches_per_epoch(train.len());
        let augmentation = self.config.augmentation;
        let per_batch = self.config.outliers.per_batch;
        let train_batcher = match augmentation.is_identity()
            && (per_batch == 0 || outliers.is_empty())
        {
            true => MnistBatcher::default(),
            false => MnistBatcher::augmented(augmentation, self.config.seed, batches_done as u64)
                .with_outliers(outliers, per_batch),
        };
        let train_loader = DataLoaderBuilder::new(train_batcher)
            .batch_size(batch_size)
            .shuffle(self.config.seed)
            .set_device(autodiff.clone())
            .build(train.clone());
        let held_out_loader = DataLoaderBuilder::new(MnistBatcher::default())
            .batch_size(batch_size)
            .set_device(self.device.clone())
            .build(held_out.clone());

        let (loss, accuracy) = (LossMetric::new(), AccuracyMetric::new());
        let report = EpochReport::new(
            self.run_dir.join("metrics.csv"),
            self.done_rows.clone(),
            train.len(),
            MeasureNames::of(&loss, &accuracy),
            hooks.interrupter.clone(),
            hooks.on_epoch,
        );
        let rows = report.rows();
        let epochs = self.config.training.epochs;
        let [model, optimizer, schedule] = ChecksummedRecords::all(&self.checkpoint_dir());
        let mut training = SupervisedTraining::new(self.run_dir, train_loader, held_out_loader)
            .with_interrupter(hooks.interrupter)
            .metrics((accuracy, loss))
            .with_metric_logger(report)
            .with_custom_checkpointers(model, optimizer, schedule)
            .with_checkpointing_strategy(KeepLastNCheckpoints::new(epochs.max(1)))
            .num_epochs(epochs);
        if let Some(epoch) = self.resume_from {
            training = training.checkpoint(epoch);
        }
        if !hooks.dashboard {
            training = training.renderer(Box::new(QuietRenderer));
        }
        (training, rows)
    }

    /// The network (fresh, or from the checkpoint being resumed), Adam and the schedule.
    fn learner(
        &self,
        autodiff: &Device,
        train_images: usize,
    ) -> Result<Learner<Classifier>, TrainError> {
        let mut classifier = Classifier::new(
            self.config.model.init(autodiff),
            self.config.training.backprop_fraction,
            self.config.outliers.weight,
        );
        if let Some(epoch) = self.resume_from {
            // Burn panics on a checkpoint it cannot read or that does not fit: each record is
            // read here first, to name the file and say why instead.
            let dir = self.checkpoint_dir();
            let record: ModuleRecord = checkpoint::read_record(&dir, "model", epoch)?;
            let _: OptimizerRecord = checkpoint::read_record(&dir, "optim", epoch)?;
            let _: LrSchedulerRecord = checkpoint::read_record(&dir, "scheduler", epoch)?;
            let path = self.checkpoint_dir().join(format!("model-{epoch}.bpk"));
            classifier =
                classifier
                    .try_load_record(record)
                    .map_err(|e| TrainError::Checkpoint {
                        checkpoint: path,
                        config: self.config_path.to_path_buf(),
                        reason: e.to_string(),
                    })?;
        }
        let o = &self.config.optimizer;
        let optimizer = AdamConfig::new()
            .with_beta_1(o.beta1)
            .with_beta_2(o.beta2)
            .with_epsilon(o.epsilon)
            .with_weight_decay(
                (o.weight_decay > 0.0).then(|| WeightDecayConfig::new(o.weight_decay)),
            )
            .init();
        let steps = self.config.training.epochs * self.batches_per_epoch(train_images);
        let schedule = schedule::learning_rate_schedule(o, steps)
            .map_err(|e| TrainError::file(self.config_path, format!("`optimizer`: {e}")))?;
        Ok(Learner::new(classifier, optimizer, schedule))
    }

    /// The network the Learner ended with, or why it ended early.
    fn trained_network(&self, result: LearningResult<Classifier>) -> Result<Cnn, TrainError> {
        if let Some(error) = result.error {
            return Err(TrainError::Failed(error.to_string()));
        }
        if let Some(stop) = result.interrupted {
            let reason = stop.reason.unwrap_or_else(|| "interrupted".into());
            let last_checkpoint = last_complete_epoch(&self.checkpoint_dir());
            return Err(match reason.starts_with(DIVERGED) {
                true => TrainError::Stopped {
                    reason,
                    last_checkpoint,
                },
                false => TrainError::Interrupted {
                    reason,
                    last_checkpoint,
                    run_dir: self.run_dir.to_path_buf(),
                },
            });
        }
        drop(result.renderer);
        Ok(result.model.cnn.valid().fork(self.device))
    }
}
