//! Per-epoch reporting: one readable line per epoch and `metrics.csv`, fed by Burn's metric
//! events, so the numbers on screen and on disk are the Learner's own.

use burn::train::Interrupter;
use burn::train::logger::MetricLogger;
use burn::train::metric::store::{EpochSummary, MetricsUpdate, Split};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};
use data::write_atomic;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One finished epoch, as written to `metrics.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRow {
    pub epoch: usize,
    pub train_loss: f64,
    /// Percent.
    pub train_accuracy: f64,
    pub valid_loss: f64,
    /// Percent.
    pub valid_accuracy: f64,
    /// Wall-clock seconds for the epoch's training and evaluation passes.
    pub seconds: f64,
    /// Training images per second during the training pass.
    pub images_per_second: f64,
}

impl EpochRow {
    pub const CSV_HEADER: &'static str =
        "epoch,train_loss,train_accuracy,valid_loss,valid_accuracy,seconds,images_per_second";

    /// Parses a line written by [`EpochRow::csv`].
    pub fn from_csv(line: &str) -> Option<Self> {
        let values: Vec<f64> = line
            .split(',')
            .map(|v| v.trim().parse().ok())
            .collect::<Option<_>>()?;
        let [
            epoch,
            train_loss,
            train_accuracy,
            valid_loss,
            valid_accuracy,
            seconds,
            images_per_second,
        ] = values[..]
        else {
            return None;
        };
        Some(Self {
            epoch: epoch as usize,
            train_loss,
            train_accuracy,
            valid_loss,
            valid_accuracy,
            seconds,
            images_per_second,
        })
    }

    fn csv(&self) -> String {
        format!(
            "{},{:.6},{:.4},{:.6},{:.4},{:.3},{:.1}",
            self.epoch,
            self.train_loss,
            self.train_accuracy,
            self.valid_loss,
            self.valid_accuracy,
            self.seconds,
            self.images_per_second
        )
    }

    /// The line printed when the TUI is not showing; `held_out` names the evaluated split.
    pub fn line(&self, total_epochs: usize, held_out: &str) -> String {
        format!(
            "epoch {:>2}/{total_epochs}  train loss {:.4} acc {:6.2}%  {held_out} loss {:.4} acc {:6.2}%  {:6.1} s  {:6.0} img/s",
            self.epoch,
            self.train_loss,
            self.train_accuracy,
            self.valid_loss,
            self.valid_accuracy,
            self.seconds,
            self.images_per_second
        )
    }
}

/// Collects the Learner's epoch-level metrics and reports each finished epoch.
///
/// Registered with `SupervisedTraining::with_metric_logger`; the finished rows are also shared
/// through [`EpochReport::rows`] so the caller can read them after training.
pub struct EpochReport {
    csv_path: PathBuf,
    print_lines: bool,
    total_epochs: usize,
    train_items: usize,
    names: HashMap<MetricId, String>,
    latest: HashMap<(bool, String), f64>,
    epoch_started: Option<Instant>,
    train_seconds: f64,
    rows: Arc<Mutex<Vec<EpochRow>>>,
    guard: Option<Interrupter>,
    held_out: &'static str,
}

impl EpochReport {
    pub fn new(
        csv_path: PathBuf,
        print_lines: bool,
        total_epochs: usize,
        train_items: usize,
    ) -> Self {
        Self {
            csv_path,
            print_lines,
            total_epochs,
            train_items,
            names: HashMap::new(),
            latest: HashMap::new(),
            epoch_started: None,
            train_seconds: 0.0,
            rows: Arc::default(),
            guard: None,
            held_out: "test",
        }
    }

    /// Names the split evaluated after each epoch in the printed lines (`test` by default).
    pub fn held_out(mut self, name: &'static str) -> Self {
        self.held_out = name;
        self
    }

    /// Stops training (at the next batch) as soon as a training loss is NaN or infinite, so
    /// the checkpoints of the epochs before it stay the last ones on disk.
    pub fn stop_on_non_finite_loss(mut self, interrupter: Interrupter) -> Self {
        self.guard = Some(interrupter);
        self
    }

    /// Starts from the rows of epochs already done (when resuming).
    pub fn with_rows(self, rows: Vec<EpochRow>) -> Self {
        if let Ok(mut shared) = self.rows.lock() {
            *shared = rows;
        }
        self
    }

    /// The rows reported so far, shared with this logger.
    pub fn rows(&self) -> Arc<Mutex<Vec<EpochRow>>> {
        self.rows.clone()
    }

    fn value(&self, valid: bool, name: &str) -> f64 {
        self.latest
            .get(&(valid, name.to_string()))
            .copied()
            .unwrap_or(f64::NAN)
    }

    fn finish_epoch(&mut self, epoch: usize) {
        let seconds = self
            .epoch_started
            .take()
            .map_or(0.0, |t| t.elapsed().as_secs_f64());
        let row = EpochRow {
            epoch,
            train_loss: self.value(false, "Loss"),
            train_accuracy: self.value(false, "Accuracy"),
            valid_loss: self.value(true, "Loss"),
            valid_accuracy: self.value(true, "Accuracy"),
            seconds,
            images_per_second: self.train_items as f64 / self.train_seconds.max(1e-9),
        };
        if self.print_lines {
            println!("{}", row.line(self.total_epochs, self.held_out));
        }
        let Ok(mut rows) = self.rows.lock() else {
            return;
        };
        rows.retain(|r| r.epoch < epoch);
        rows.push(row);
        let mut csv = String::from(EpochRow::CSV_HEADER);
        for row in rows.iter() {
            csv.push('\n');
            csv.push_str(&row.csv());
        }
        csv.push('\n');
        if let Err(e) = write_atomic(&self.csv_path, csv.as_bytes()) {
            eprintln!("warning: {}: cannot write: {e}", self.csv_path.display());
        }
    }
}

impl MetricLogger for EpochReport {
    fn log(&mut self, update: MetricsUpdate, _epoch: usize, split: &Split) {
        let valid = match split {
            Split::Train => false,
            Split::Valid => true,
            Split::Test(_) => return,
        };
        self.epoch_started.get_or_insert_with(Instant::now);
        for numeric in update.entries_numeric {
            let (Some(name), Some(entry)) = (
                self.names.get(&numeric.entry.metric_id),
                numeric.numeric_entry,
            ) else {
                continue;
            };
            // Burn sends per-batch values, then the epoch's final value last.
            let value = match entry {
                NumericEntry::Value(v) | NumericEntry::Final(v) => v,
                NumericEntry::Aggregated {
                    aggregated_value, ..
                } => aggregated_value,
            };
            if !valid
                && name == "Loss"
                && !value.is_finite()
                && let Some(interrupter) = &self.guard
            {
                interrupter.stop(Some(&format!(
                    "the training loss became {value}; lower optimizer.learning_rate"
                )));
            }
            self.latest.insert((valid, name.clone()), value);
        }
    }

    fn read_numeric(
        &mut self,
        _name: &str,
        _epoch: usize,
        _split: &Split,
    ) -> Result<Vec<NumericEntry>, String> {
        Err("epoch reports keep no per-batch history".into())
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        self.names
            .insert(definition.metric_id, definition.name.to_string());
    }

    fn log_epoch_summary(&mut self, summary: EpochSummary) {
        match summary.split {
            Split::Train => {
                self.train_seconds = self
                    .epoch_started
                    .map_or(0.0, |t| t.elapsed().as_secs_f64());
            }
            Split::Valid => self.finish_epoch(summary.epoch_number),
            Split::Test(_) => {}
        }
    }
}
