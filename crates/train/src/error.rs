//! Everything that can end a training run early, each naming the file or value at fault.

use crate::recipe::ConfigError;
use data::DataError;
use data::FetchError;
use model::BackendError;
use std::fmt;
use std::path::{Path, PathBuf};

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The recipe, an override or `--epochs` is not usable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The backend is not in this build, or has no device.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// MNIST could not be loaded.
    #[error(transparent)]
    Data(#[from] DataError),
    /// MNIST could not be fetched.
    #[error(transparent)]
    Download(#[from] FetchError),
    /// A file of the run that cannot be found, read or written.
    #[error("{}: {problem}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong, on one line.
        problem: String,
    },
    /// A checkpoint that does not fit the run's network.
    #[error("{}: does not match the network in {}: {reason}", checkpoint.display(), config.display())]
    Checkpoint {
        /// The checkpoint's model record.
        checkpoint: PathBuf,
        /// The run's recipe.
        config: PathBuf,
        /// What does not fit.
        reason: String,
    },
    /// Stopped from outside (e.g. Ctrl-C): the finished epochs are kept and can be resumed.
    #[error("training stopped ({reason}); {}; continue it by training again with --resume --model {}", Kept(*last_checkpoint), run_dir.display())]
    Interrupted {
        /// Who stopped it, e.g. `Ctrl-C`.
        reason: String,
        /// The epoch a resumed run continues after.
        last_checkpoint: Option<usize>,
        /// The run to resume.
        run_dir: PathBuf,
    },
    /// A multi-seed run stopped from outside: finished seeds and the stopped one's checkpoints
    /// are kept.
    #[error("training stopped ({reason}) during seed {seed}; finished seeds and checkpoints are kept; continue them by training again with --seeds {seeds} --resume --model {}", dir.display())]
    SeedsInterrupted {
        /// Who stopped it, e.g. `Ctrl-C`.
        reason: String,
        /// The seed that was training.
        seed: u64,
        /// The seeds, as `--seeds` takes them.
        seeds: String,
        /// The multi-seed run's directory.
        dir: PathBuf,
    },
    /// Stopped because going on would be pointless, e.g. a loss that became NaN.
    #[error("training stopped: {reason}; {}", Kept(*last_checkpoint))]
    Stopped {
        /// Why, and what to change.
        reason: String,
        /// The last epoch whose checkpoint is whole.
        last_checkpoint: Option<usize>,
    },
    /// Burn's Learner failed.
    #[error("training failed: {0}")]
    Failed(String),
    /// The trained network could not be scored on the test set.
    #[error("cannot score the trained model: {0}")]
    Score(infer::ClassifyError),
}

// By hand, not `#[from]`: that would make the error a source too, and `{:#}` would print
// its message twice.
impl From<infer::ClassifyError> for TrainError {
    fn from(error: infer::ClassifyError) -> Self {
        Self::Score(error)
    }
}

/// How much of an interrupted run is kept.
struct Kept(Option<usize>);

impl fmt::Display for Kept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(epoch) => write!(f, "epoch {epoch} is the last complete checkpoint"),
            None => f.write_str("no epoch was completed"),
        }
    }
}

/// Writes one of the run's own files ([`data::write_atomic`]); the error names it.
pub(crate) fn write_run_file(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    data::write_atomic(path, bytes)
        .map_err(|e| TrainError::file(path, format!("cannot write: {e}")))
}

/// Writes `value` as pretty JSON into one of the run's own files.
pub(crate) fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), TrainError> {
    let json = serde_json::to_string_pretty(value).map_err(|e| TrainError::file(path, e))?;
    write_run_file(path, json.as_bytes())
}

impl TrainError {
    /// `path: problem`, for a file of the run.
    pub(crate) fn file(path: impl Into<PathBuf>, problem: impl fmt::Display) -> Self {
        Self::File {
            path: path.into(),
            problem: problem.to_string(),
        }
    }
}
