//! One training per artifact directory at a time.
//!
//! Two runs writing one directory would interleave their checkpoints, metrics and model and
//! both report success. The claim is an advisory lock (`flock`) on a file in the directory:
//! the kernel drops it when the process ends, however it ends, so a run killed with `kill -9`
//! never leaves a stale claim behind for `--resume` to trip over.

use crate::TrainError;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;

/// The lock file's name inside the artifact directory.
pub const LOCK_FILE: &str = ".train.lock";

/// An exclusive claim on an artifact directory, released when dropped.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Creates `dir` if needed and claims it, or says which process holds it.
    pub fn acquire(dir: &Path) -> Result<Self, TrainError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            TrainError::file(dir, format!("cannot create the artifact directory: {e}"))
        })?;
        let path = dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| TrainError::file(&path, format!("cannot open: {e}")))?;
        if !try_lock(&file) {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(TrainError::file(
                dir,
                format!(
                    "another training is writing this directory ({}); wait for it to end, or \
                     choose another --artifact-dir",
                    holder.trim()
                ),
            ));
        }
        // Who holds it, for the message a second run prints.
        let note = format!("process {}", std::process::id());
        let written = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(note.as_bytes()));
        written.map_err(|e| TrainError::file(&path, format!("cannot write: {e}")))?;
        Ok(Self { _file: file })
    }
}

/// Takes the exclusive lock without waiting; `false` if another process has it.
#[cfg(unix)]
fn try_lock(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor belongs to `file`, which is open for the whole call.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Elsewhere runs are not kept apart.
#[cfg(not(unix))]
fn try_lock(_file: &File) -> bool {
    true
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_is_refused_naming_the_holder_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let first = RunLock::acquire(&run).unwrap();
        let error = RunLock::acquire(&run).unwrap_err().to_string();
        assert!(error.contains("another training"), "{error}");
        assert!(
            error.contains(&format!("process {}", std::process::id())),
            "{error}"
        );
        drop(first);
        assert!(RunLock::acquire(&run).is_ok());
    }
}
