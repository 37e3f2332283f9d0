//! Downloading MNIST from the public mirrors, verified with the same checksums as loading.

use anyhow::{Context, bail};
use data::write_atomic;
use data::{MnistFile, read_idx};
use std::io::Read;
use std::path::Path;

const MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist",
    "https://storage.googleapis.com/cvdf-datasets/mnist",
];

/// Largest download accepted for one file (the training images are about 10 MB).
const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Fetches every MNIST file missing from `dir`, trying each mirror in turn.
pub fn download_missing(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    for file in MnistFile::ALL {
        if file.locate(dir).is_ok() {
            continue;
        }
        let target = dir.join(format!("{}.gz", file.name));
        let mut failures = Vec::new();
        let mut fetched = false;
        for mirror in MIRRORS {
            let url = format!("{mirror}/{}.gz", file.name);
            eprintln!("downloading {url}");
            match fetch_verified(&url, file, &target) {
                Ok(()) => {
                    fetched = true;
                    break;
                }
                Err(e) => failures.push(format!("{url}: {e:#}")),
            }
        }
        if !fetched {
            bail!(
                "{}: could not download ({}); copy the MNIST files into {} by hand",
                target.display(),
                failures.join("; "),
                dir.display()
            );
        }
    }
    Ok(())
}

fn fetch_verified(url: &str, file: MnistFile, target: &Path) -> anyhow::Result<()> {
    let mut body = Vec::new();
    ureq::get(url)
        .call()?
        .into_body()
        .into_reader()
        .take(MAX_BYTES)
        .read_to_end(&mut body)?;
    // Check before the file takes its final name, so a bad download never looks like data.
    let partial = target.with_extension("gz.partial");
    write_atomic(&partial, &body)?;
    let checked = read_idx(&partial)
        .map_err(anyhow::Error::from)
        .and_then(|idx| Ok(file.verify(target, &idx.bytes)?));
    match checked {
        Ok(()) => std::fs::rename(&partial, target)?,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    }
    Ok(())
}
