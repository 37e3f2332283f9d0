//! The records an epoch leaves behind, and where an interrupted run can pick up.
//!
//! Each epoch writes `model-N.bpk`, `optim-N.bpk` and `scheduler-N.bpk` under `checkpoint/`,
//! each through a temporary file and a rename (so a record on disk is always whole, even after
//! `kill -9`) and each with its SHA-256 beside it, as `model.bpk` has: a record damaged on
//! disk is refused when a run resumes from it, naming the file, instead of training on from
//! wrong weights.

use crate::error::TrainError;
use burn::tensor::Bytes;
use burn::train::checkpoint::{Checkpoint, Checkpointer, CheckpointerError};
use model::one_line;
use std::path::{Path, PathBuf};

/// The three records Burn checkpoints each epoch; an epoch is resumable when all exist.
const PARTS: [&str; 3] = ["model", "optim", "scheduler"];

fn record_path(directory: &Path, part: &str, epoch: usize) -> PathBuf {
    directory.join(format!("{part}-{epoch}.bpk"))
}

/// The latest epoch whose model, optimizer and scheduler records are all on disk.
pub fn last_complete_epoch(directory: &Path) -> Option<usize> {
    let entries = std::fs::read_dir(directory).ok()?;
    entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("model-")?
                .strip_suffix(".bpk")?
                .parse()
                .ok()
        })
        .filter(|&epoch| {
            PARTS
                .iter()
                .all(|part| record_path(directory, part, epoch).is_file())
        })
        .max()
}

/// One of the records checkpointed after `epoch` (`model`, `optim` or `scheduler`), checked
/// against its checksum first. Burn panics on a record it cannot read; reading it here names
/// the file and the way out instead.
pub(crate) fn read_record<R: Checkpoint>(
    directory: &Path,
    part: &str,
    epoch: usize,
) -> Result<R, TrainError> {
    let path = record_path(directory, part, epoch);
    let damaged = |reason: String| {
        TrainError::file(
            &path,
            format!(
                "{reason}; remove epoch {epoch}'s model, optim and scheduler records (and their \
                 .sha256 files) to resume from the epoch before"
            ),
        )
    };
    let bytes = data::read_bounded(&path, MAX_RECORD_BYTES)
        .map_err(|e| damaged(format!("cannot read: {e}")))?;
    data::verify_checksum(&path, &bytes).map_err(|e| damaged(e.to_string()))?;
    R::checkpoint_from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| damaged(format!("cannot read ({})", one_line(&e.to_string()))))
}

/// Largest record a checkpoint may hold: Adam's moments of a network far wider than any
/// recipe allows to train.
const MAX_RECORD_BYTES: u64 = 1 << 32;

/// Burn's checkpointer for one of the three records, writing each with its checksum.
pub(crate) struct ChecksummedRecords {
    directory: PathBuf,
    part: &'static str,
}

impl ChecksummedRecords {
    /// The model's, the optimizer's and the schedule's checkpointers, writing into `directory`.
    pub(crate) fn all(directory: &Path) -> [Self; 3] {
        PARTS.map(|part| Self {
            directory: directory.to_path_buf(),
            part,
        })
    }
}

impl<R: Checkpoint> Checkpointer<R> for ChecksummedRecords {
    fn save(&self, epoch: usize, record: R) -> Result<(), CheckpointerError> {
        let bytes = record
            .checkpoint_into_bytes()
            .map_err(CheckpointerError::Record)?;
        std::fs::create_dir_all(&self.directory).map_err(CheckpointerError::IOError)?;
        data::write_with_checksum(&record_path(&self.directory, self.part, epoch), &bytes)
            .map_err(CheckpointerError::IOError)
    }

    fn delete(&self, epoch: usize) -> Result<(), CheckpointerError> {
        let path = record_path(&self.directory, self.part, epoch);
        for file in [data::checksum_path(&path), path] {
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(CheckpointerError::IOError(e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn restore(&self, epoch: usize) -> Result<R, CheckpointerError> {
        read_record(&self.directory, self.part, epoch)
            .map_err(|e| CheckpointerError::Unknown(e.to_string()))
    }
}

/// Whether `name` is a checkpointed record (`model-3.bpk`), its checksum
/// (`model-3.bpk.sha256`), or one being written (`.model-3.bpk.partial`, the temporary file of
/// Burn's writer in earlier versions).
fn is_record(name: &str) -> bool {
    let name = name.strip_prefix('.').unwrap_or(name);
    let name = name.strip_suffix(".partial").unwrap_or(name);
    let name = name.strip_suffix(".sha256").unwrap_or(name);
    PARTS.iter().any(|part| {
        name.strip_prefix(part)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|rest| rest.strip_suffix(".bpk"))
            .is_some_and(|epoch| !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// Removes the checkpoint records in `directory`, and the directory if that leaves it
/// empty; any other file in it (the user's) stays.
pub fn remove_records(directory: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(directory)? {
        let entry = entry?;
        let is_file = entry.file_type()?.is_file();
        if is_file && entry.file_name().to_str().is_some_and(is_record) {
            std::fs::remove_file(entry.path())?;
        }
    }
    match std::fs::remove_dir(directory) {
        Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_records_are_removed_and_the_users_files_stay() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoints = dir.path().join("checkpoint");
        std::fs::create_dir(&checkpoints).unwrap();
        for name in [
            "model-1.bpk",
            "optim-1.bpk",
            "scheduler-12.bpk",
            ".model-2.bpk.partial",
        ] {
            std::fs::write(checkpoints.join(name), b"x").unwrap();
        }
        for name in ["notes.txt", "model-best.bpk", "model-1.bpk.bak"] {
            std::fs::write(checkpoints.join(name), b"mine").unwrap();
        }
        remove_records(&checkpoints).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&checkpoints)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["model-1.bpk.bak", "model-best.bpk", "notes.txt"]);
        // A folder of records alone goes with them.
        let only = dir.path().join("only");
        std::fs::create_dir(&only).unwrap();
        std::fs::write(only.join("model-3.bpk"), b"x").unwrap();
        remove_records(&only).unwrap();
        assert!(!only.exists());
    }

    #[test]
    fn an_epoch_counts_only_when_all_three_records_exist() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(last_complete_epoch(dir.path()), None);
        for part in PARTS {
            std::fs::write(record_path(dir.path(), part, 1), b"x").unwrap();
        }
        std::fs::write(record_path(dir.path(), "model", 2), b"x").unwrap();
        std::fs::write(record_path(dir.path(), "optim", 2), b"x").unwrap();
        std::fs::write(dir.path().join(".scheduler-2.bpk.partial"), b"x").unwrap();
        assert_eq!(last_complete_epoch(dir.path()), Some(1));
    }
}
