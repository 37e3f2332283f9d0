//! Finding where an interrupted run can pick up.
//!
//! Burn writes each epoch's `model-N.bpk`, `optim-N.bpk` and `scheduler-N.bpk` under
//! `checkpoint/`; its burnpack writer goes through a temporary file and a rename, so a record
//! on disk is always whole, even after `kill -9`.

use std::path::{Path, PathBuf};

/// The three records Burn checkpoints each epoch; an epoch is resumable when all exist.
const PARTS: [&str; 3] = ["model", "optim", "scheduler"];

fn record_path(directory: &Path, name: &str, epoch: usize) -> PathBuf {
    directory.join(format!("{name}-{epoch}.bpk"))
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

#[cfg(test)]
mod tests {
    use super::*;

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
