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

/// Whether `name` is a record Burn checkpoints (`model-3.bpk`), or one being written
/// (`.model-3.bpk.partial`, its writer's temporary file).
fn is_record(name: &str) -> bool {
    let name = name.strip_prefix('.').unwrap_or(name);
    let name = name.strip_suffix(".partial").unwrap_or(name);
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
