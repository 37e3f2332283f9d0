//! Per-epoch reporting: `metrics.csv` and a callback per finished epoch, fed by Burn's metric
//! events, so the numbers on screen and on disk are the Learner's own.

use burn::train::Interrupter;
use burn::train::logger::MetricLogger;
use burn::train::metric::store::{EpochSummary, MetricsUpdate, Split};
use burn::train::metric::{Metric, MetricDefinition, MetricId, NumericEntry};
use data::write_atomic;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One finished epoch, as written to `metrics.csv`; read by column name, so columns in any
/// order, and under the names older runs gave them, are found.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct EpochRow {
    /// 1 for the first epoch.
    pub epoch: usize,
    /// Mean cross-entropy over the epoch's training batches.
    pub train_loss: f64,
    /// Percent.
    pub train_accuracy: f64,
    /// On the images scored after each epoch: the validation split when the config holds
    /// one out, else (the tutorial's way) the test set.
    #[serde(alias = "valid_loss")]
    pub held_out_loss: f64,
    /// Percent.
    #[serde(alias = "valid_accuracy")]
    pub held_out_accuracy: f64,
    /// Wall-clock seconds for the epoch's training and evaluation passes.
    pub seconds: f64,
    /// Training images per second during the training pass.
    pub images_per_second: f64,
}

/// `metrics.csv`'s columns, in order.
pub const CSV_COLUMNS: [&str; 7] = [
    "epoch",
    "train_loss",
    "train_accuracy",
    "held_out_loss",
    "held_out_accuracy",
    "seconds",
    "images_per_second",
];

impl EpochRow {
    /// The row's fields under [`CSV_COLUMNS`], each to the precision it is measured to.
    fn csv_fields(&self) -> [String; 7] {
        [
            self.epoch.to_string(),
            format!("{:.6}", self.train_loss),
            format!("{:.4}", self.train_accuracy),
            format!("{:.6}", self.held_out_loss),
            format!("{:.4}", self.held_out_accuracy),
            format!("{:.3}", self.seconds),
            format!("{:.1}", self.images_per_second),
        ]
    }

    /// The line printed for an epoch when the TUI is not showing; `held_out` names the
    /// evaluated split (`validation` or `test`).
    pub fn line(&self, total_epochs: usize, held_out: &str) -> String {
        format!(
            "epoch {:>2}/{total_epochs}  train loss {:.4} acc {:6.2}%  {held_out} loss {:.4} acc {:6.2}%  {:6.1} s  {:6.0} img/s",
            self.epoch,
            self.train_loss,
            self.train_accuracy,
            self.held_out_loss,
            self.held_out_accuracy,
            self.seconds,
            self.images_per_second
        )
    }
}

/// `metrics.csv` as text: the header, then one line per row.
pub fn metrics_csv(rows: &[EpochRow]) -> String {
    csv_text(CSV_COLUMNS, rows.iter().map(EpochRow::csv_fields))
}

/// A CSV file's text: `header`, then `rows`.
pub(crate) fn csv_text<const N: usize>(
    header: [&str; N],
    rows: impl Iterator<Item = [String; N]>,
) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let written = std::iter::once(header.map(String::from))
        .chain(rows)
        .try_for_each(|record| writer.write_record(record));
    let bytes = written
        .ok()
        .and_then(|()| writer.into_inner().ok())
        .expect("writing CSV to memory cannot fail");
    String::from_utf8(bytes).expect("CSV of UTF-8 fields is UTF-8")
}

/// The rows of a `metrics.csv`.
pub fn read_metrics(path: &Path) -> Result<Vec<EpochRow>, String> {
    let text = data::read_text_bounded(path, data::MAX_TEXT_FILE_BYTES)
        .map_err(|e| format!("cannot read: {e}"))?;
    csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes())
        .deserialize()
        .collect::<Result<_, _>>()
        .map_err(|error: csv::Error| {
            let line = error
                .position()
                .map_or_else(String::new, |p| format!("line {}: ", p.line()));
            match error.kind() {
                csv::ErrorKind::Deserialize { err, .. } => format!("{line}{err}"),
                _ => format!("{line}{error}"),
            }
        })
}

/// The rows an [`EpochReport`] has finished, shared with whoever started it.
pub type SharedRows = Arc<Mutex<Vec<EpochRow>>>;

/// The two measures reported, found in Burn's metric events by the names the metric
/// objects themselves give, so a metric renamed upstream is still found.
#[derive(Clone, Debug)]
pub struct MeasureNames {
    /// The loss metric's name.
    pub loss: String,
    /// The accuracy metric's name.
    pub accuracy: String,
}

impl MeasureNames {
    /// The names `loss` and `accuracy` report under.
    pub fn of(loss: &impl Metric, accuracy: &impl Metric) -> Self {
        Self {
            loss: loss.name().to_string(),
            accuracy: accuracy.name().to_string(),
        }
    }
}

/// The latest value of each measure on each split.
#[derive(Clone, Copy, Debug, Default)]
struct Latest {
    loss: Option<f64>,
    accuracy: Option<f64>,
}

/// Collects the Learner's epoch-level metrics, writes `metrics.csv` after each epoch and
/// hands each finished row to a callback.
///
/// Registered with `SupervisedTraining::with_metric_logger`. It stops training (at the next
/// batch) when the training loss is NaN or infinite, so the checkpoints of the epochs before
/// stay the last ones on disk, and when `metrics.csv` cannot be written.
pub struct EpochReport {
    csv_path: PathBuf,
    train_items: usize,
    measures: MeasureNames,
    names: HashMap<MetricId, String>,
    train: Latest,
    held_out: Latest,
    epoch_started: Option<Instant>,
    train_seconds: f64,
    rows: SharedRows,
    on_epoch: Box<dyn FnMut(&EpochRow) + Send>,
    interrupter: Interrupter,
}

/// Why an [`EpochReport`] stopped training: its reasons start with this.
pub const DIVERGED: &str = "the training loss became";

impl EpochReport {
    /// A report writing `csv_path`, starting from the `rows` of epochs already done (when
    /// resuming); `train_items` is the number of training images per epoch.
    pub fn new(
        csv_path: PathBuf,
        rows: Vec<EpochRow>,
        train_items: usize,
        measures: MeasureNames,
        interrupter: Interrupter,
        on_epoch: Box<dyn FnMut(&EpochRow) + Send>,
    ) -> Self {
        Self {
            csv_path,
            train_items,
            measures,
            names: HashMap::new(),
            train: Latest::default(),
            held_out: Latest::default(),
            epoch_started: None,
            train_seconds: 0.0,
            rows: Arc::new(Mutex::new(rows)),
            on_epoch,
            interrupter,
        }
    }

    /// The rows reported so far, shared with this logger.
    pub fn rows(&self) -> SharedRows {
        self.rows.clone()
    }

    fn finish_epoch(&mut self, epoch: usize) {
        let seconds = self
            .epoch_started
            .take()
            .map_or(0.0, |t| t.elapsed().as_secs_f64());
        let missing = |name: &str| {
            format!("Burn reported no `{name}` for epoch {epoch}; the metrics have changed")
        };
        let (Some(train_loss), Some(held_out_loss)) = (self.train.loss, self.held_out.loss) else {
            return self.interrupter.stop(Some(&missing(&self.measures.loss)));
        };
        let (Some(train_accuracy), Some(held_out_accuracy)) =
            (self.train.accuracy, self.held_out.accuracy)
        else {
            return self
                .interrupter
                .stop(Some(&missing(&self.measures.accuracy)));
        };
        let row = EpochRow {
            epoch,
            train_loss,
            train_accuracy,
            held_out_loss,
            held_out_accuracy,
            seconds,
            images_per_second: self.train_items as f64 / self.train_seconds.max(1e-9),
        };
        (self.on_epoch)(&row);
        let Ok(mut rows) = self.rows.lock() else {
            return;
        };
        rows.retain(|r| r.epoch < epoch);
        rows.push(row);
        if let Err(e) = write_atomic(&self.csv_path, metrics_csv(&rows).as_bytes()) {
            let reason = format!("{}: cannot write: {e}", self.csv_path.display());
            self.interrupter.stop(Some(&reason));
        }
    }

    fn record(&mut self, split: &Split, name: &str, value: f64) {
        let latest = match split {
            Split::Train => &mut self.train,
            Split::Valid => &mut self.held_out,
            Split::Test(_) => return,
        };
        if name == self.measures.loss {
            latest.loss = Some(value);
            if matches!(split, Split::Train) && !value.is_finite() {
                let reason = format!("{DIVERGED} {value}; lower optimizer.learning_rate");
                self.interrupter.stop(Some(&reason));
            }
        } else if name == self.measures.accuracy {
            latest.accuracy = Some(value);
        }
    }
}

impl MetricLogger for EpochReport {
    fn log(&mut self, update: MetricsUpdate, _epoch: usize, split: &Split) {
        self.epoch_started.get_or_insert_with(Instant::now);
        for numeric in update.entries_numeric {
            let (Some(name), Some(entry)) = (
                self.names.get(&numeric.entry.metric_id).cloned(),
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
            self.record(split, &name, value);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(epoch: usize) -> EpochRow {
        EpochRow {
            epoch,
            train_loss: 0.5 / epoch as f64,
            train_accuracy: 90.0 + epoch as f64,
            held_out_loss: 0.25,
            held_out_accuracy: 97.5,
            seconds: 2.5,
            images_per_second: 24_000.0,
        }
    }

    #[test]
    fn metrics_csv_round_trips_by_column_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        std::fs::write(&path, metrics_csv(&[row(1), row(2)])).unwrap();
        assert_eq!(read_metrics(&path).unwrap(), vec![row(1), row(2)]);
    }

    #[test]
    fn columns_are_found_by_name_in_any_order_and_under_former_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        std::fs::write(
            &path,
            "seconds,epoch,valid_loss,valid_accuracy,train_loss,train_accuracy,images_per_second\n\
             2.5,1,0.25,97.5,0.5,91,24000\n",
        )
        .unwrap();
        assert_eq!(read_metrics(&path).unwrap(), vec![row(1)]);
    }

    #[test]
    fn a_missing_column_or_a_broken_row_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        std::fs::write(&path, "epoch,train_loss\n1,0.5\n").unwrap();
        let error = read_metrics(&path).unwrap_err();
        assert!(error.contains("train_accuracy"), "{error}");
        let broken = metrics_csv(&[row(1)]) + "2,x,1,1,1,1,1\n";
        std::fs::write(&path, broken).unwrap();
        let error = read_metrics(&path).unwrap_err();
        assert!(error.starts_with("line 3: "), "{error}");
    }
}
