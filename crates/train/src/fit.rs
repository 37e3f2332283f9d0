//! Fitting the network with Burn's Learner: the data loaders, the optimizer and its
//! schedule, the per-epoch report, checkpoints, and the launch.

use crate::checkpoint::last_complete_epoch;
use crate::classifier::Classifier;
use crate::config::{OptimizerSection, RunConfig, Schedule};
use crate::error::TrainError;
use crate::prefetch::Prefetched;
use crate::quiet::QuietRenderer;
use crate::report::{DIVERGED, EpochReport, EpochRow, MeasureNames, SharedRows};
use crate::workers;
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::Dataset;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::optim::lr_scheduler::linear::LinearLrSchedulerConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::lr_scheduler::sequential::SequentialLrSchedulerConfig;
use burn::optim::lr_scheduler::{LrSchedulerConfig, LrSchedulerRecord};
use burn::optim::{AdamConfig, OptimizerRecord};
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::train::checkpoint::{Checkpoint, KeepLastNCheckpoints};
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{Interrupter, Learner, LearningResult, SupervisedTraining};
use data::{MnistBatcher, MnistDataset};
use model::{Cnn, one_line};
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
    pub artifact_dir: &'a Path,
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
        self.artifact_dir.join("checkpoint")
    }

    /// Trains on `train`, scoring `held_out` after every epoch.
    pub fn fit(
        self,
        train: &MnistDataset,
        held_out: &MnistDataset,
        hooks: Hooks,
    ) -> Result<Fitted, TrainError> {
        self.device.seed(self.config.seed);
        let autodiff = self.device.clone().autodiff();
        let training = || {
            let (training, rows) = self.supervised_training(train, held_out, hooks, &autodiff);
            let learner = self.learner(&autodiff, train.len())?;
            let started = Instant::now();
            let result = training.launch(learner);
            Ok::<_, TrainError>((result, rows, started.elapsed().as_secs_f64()))
        };
        // Only flex's kernels split their work over rayon's pool.
        let (result, rows, seconds) = match *self.device == Device::flex() {
            true => workers::on_workers_kept_awake(training),
            false => workers::on_a_worker(training),
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
        hooks: Hooks,
        autodiff: &Device,
    ) -> (SupervisedTraining<Classifier>, SharedRows) {
        let batch_size = self.config.training.batch_size;
        let batches_done = self.resume_from.unwrap_or(0) * self.batches_per_epoch(train.len());
        let train_batcher = match self.config.augmentation.augmentation() {
            Some(augmentation) => {
                MnistBatcher::augmented(augmentation, self.config.seed, batches_done as u64)
            }
            None => MnistBatcher::default(),
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
        let (train_loader, held_out_loader) = (
            Arc::new(Prefetched::new(train_loader)),
            Arc::new(Prefetched::new(held_out_loader)),
        );

        let (loss, accuracy) = (LossMetric::new(), AccuracyMetric::new());
        let report = EpochReport::new(
            self.artifact_dir.join("metrics.csv"),
            self.done_rows.clone(),
            train.len(),
            MeasureNames::of(&loss, &accuracy),
            hooks.interrupter.clone(),
            hooks.on_epoch,
        );
        let rows = report.rows();
        let epochs = self.config.training.epochs;
        let mut training =
            SupervisedTraining::new(self.artifact_dir, train_loader, held_out_loader)
                .with_interrupter(hooks.interrupter)
                .metrics((accuracy, loss))
                .with_metric_logger(report)
                .with_default_checkpointers()
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
        );
        if let Some(epoch) = self.resume_from {
            // Burn panics on a checkpoint it cannot read or that does not fit: read each
            // record here first, to name the file and say why instead.
            let record: ModuleRecord = self.read_checkpoint("model", epoch)?;
            let _: OptimizerRecord = self.read_checkpoint("optim", epoch)?;
            let _: LrSchedulerRecord = self.read_checkpoint("scheduler", epoch)?;
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
        let schedule = learning_rate_schedule(o, steps)
            .map_err(|e| TrainError::file(self.config_path, format!("`optimizer`: {e}")))?;
        Ok(Learner::new(classifier, optimizer, schedule))
    }

    /// One of the records Burn checkpointed after `epoch` (`model`, `optim`, `scheduler`).
    fn read_checkpoint<R: Checkpoint>(&self, part: &str, epoch: usize) -> Result<R, TrainError> {
        let path = self.checkpoint_dir().join(format!("{part}-{epoch}.bpk"));
        R::load(path.clone()).map_err(|e| {
            let reason = one_line(&e.to_string());
            TrainError::file(
                &path,
                format!(
                    "cannot read ({reason}): epoch {epoch}'s checkpoint is damaged; remove its \
                     model, optim and scheduler records to resume from the epoch before"
                ),
            )
        })
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
                    artifact_dir: self.artifact_dir.to_path_buf(),
                },
            });
        }
        drop(result.renderer);
        Ok(result.model.cnn.valid().fork(self.device))
    }
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
