//! Downloading MNIST from the public mirrors, verified with the same checksums as loading.

use crate::{MnistFile, read_idx, write_atomic};
use std::io::Read;
use std::path::{Path, PathBuf};

const MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist",
    "https://storage.googleapis.com/cvdf-datasets/mnist",
];

/// Largest download accepted for one file (the training images are about 10 MB).
const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// An MNIST file that could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The data directory could not be created.
    #[error("{}: cannot create: {error}", dir.display())]
    Directory {
        /// The data directory.
        dir: PathBuf,
        /// What the system said (part of this message, so not a separate source that
        /// `{:#}` would print a second time).
        error: std::io::Error,
    },
    #[error("{}: could not download ({failures}); copy the MNIST files into {} by hand", target.display(), dir.display())]
    /// No mirror gave a file whose checksum is right.
    Download {
        /// The file to fetch.
        target: PathBuf,
        /// The data directory.
        dir: PathBuf,
        /// Each mirror's URL and what went wrong there.
        failures: String,
    },
}

/// Fetches every MNIST file missing from `dir`, trying each mirror in turn; `on_download`
/// hears each URL as it is tried.
pub fn download_missing(dir: &Path, mut on_download: impl FnMut(&str)) -> Result<(), FetchError> {
    std::fs::create_dir_all(dir).map_err(|error| FetchError::Directory {
        dir: dir.to_path_buf(),
        error,
    })?;
    for file in MnistFile::ALL {
        if file.locate(dir).is_ok() {
            continue;
        }
        let target = dir.join(format!("{}.gz", file.name));
        let mut failures = Vec::new();
        let mut fetched = false;
        for mirror in MIRRORS {
            let url = format!("{mirror}/{}.gz", file.name);
            on_download(&url);
            match fetch_verified(&url, file, &target) {
                Ok(()) => {
                    fetched = true;
                    break;
                }
                Err(e) => failures.push(format!("{url}: {e}")),
            }
        }
        if !fetched {
            return Err(FetchError::Download {
                target,
                dir: dir.to_path_buf(),
                failures: failures.join("; "),
            });
        }
    }
    Ok(())
}

/// Downloads one file and gives it its final name only once its checksum is right, so a bad
/// download never looks like data. The error is one line.
fn fetch_verified(url: &str, file: MnistFile, target: &Path) -> Result<(), String> {
    let mut body = Vec::new();
    ureq::get(url)
        .call()
        .map_err(|e| e.to_string())?
        .into_body()
        .into_reader()
        .take(MAX_BYTES)
        .read_to_end(&mut body)
        .map_err(|e| e.to_string())?;
    let partial = target.with_extension("gz.partial");
    write_atomic(&partial, &body).map_err(|e| e.to_string())?;
    let checked = read_idx(&partial)
        .map_err(|e| e.to_string())
        .and_then(|idx| file.verify(target, &idx.bytes).map_err(|e| e.to_string()));
    match checked {
        Ok(()) => std::fs::rename(&partial, target).map_err(|e| e.to_string()),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}
