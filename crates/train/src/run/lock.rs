//! One training per run directory at a time.
//!
//! Two runs writing one directory would interleave their checkpoints, metrics and model and
//! both report success. The claim is an advisory lock (`File::try_lock`, `flock` on Linux) on
//! a file in the directory:
//! the kernel drops it when the process ends, however it ends, so a run killed with `kill -9`
//! never leaves a stale claim behind for `--resume` to trip over.

use crate::TrainError;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;

/// The lock file's name inside the run directory.
pub const LOCK_FILE: &str = ".train.lock";

/// An exclusive claim on a run directory, released when dropped.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Creates `dir` if needed and claims it, or says which process holds it.
    pub fn acquire(dir: &Path) -> Result<Self, TrainError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| TrainError::file(dir, format!("cannot create the run directory: {e}")))?;
        let path = dir.join(LOCK_FILE);
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        // The lock's name is this program's: a link planted under it is not followed (the
        // open fails instead of writing a process id into whatever the link names).
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
        let mut file = options.open(&path).map_err(|e| {
            let reason = match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    "a symbolic link, where training keeps its lock: remove it".to_string()
                }
                _ => format!("cannot open: {e}"),
            };
            TrainError::file(&path, reason)
        })?;
        if file.try_lock().is_err() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(TrainError::file(
                dir,
                format!(
                    "another training is writing this directory ({}); wait for it to end, or \
                     choose another --model",
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

    #[test]
    fn a_link_planted_as_the_lock_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let precious = dir.path().join("precious.txt");
        std::fs::write(&precious, b"keep").unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::os::unix::fs::symlink(&precious, run.join(LOCK_FILE)).unwrap();
        let error = RunLock::acquire(&run).unwrap_err().to_string();
        assert!(error.contains("a symbolic link"), "{error}");
        assert_eq!(std::fs::read(&precious).unwrap(), b"keep");
    }
}
