//! Classifying image files: expanding folders, preprocessing each file the way MNIST's
//! digits were, running the network once over all of them, and matching results to files.

use crate::classify::DigitClassifier;
use burn::data::dataset::Dataset;
use data::{MnistDataset, PIXELS};
use model::{ClassifyError, Prediction};
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// File extensions looked for inside directories.
pub const IMAGE_EXTENSIONS: [&str; 8] = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"];

/// An input that yields no image to classify.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct InputError {
    /// The input as given.
    pub path: PathBuf,
    /// Why it yields nothing.
    pub problem: String,
}

/// Why one input file has no prediction; each names the file, on one line.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Not an image file, or a folder without images.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The file could not be read or decoded, or holds no digit.
    #[error(transparent)]
    Image(#[from] data::PreprocessError),
    /// The network answered fewer images than it was given.
    #[error("{}: no prediction", .0.display())]
    NoPrediction(PathBuf),
    /// The image the network saw could not be saved (`--save-preprocessed`).
    #[error("{}: cannot write: {error}", path.display())]
    Save {
        /// The file that was to be written.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
}

/// What became of one input file.
#[derive(Debug)]
pub struct FileResult {
    /// The image file.
    pub path: PathBuf,
    /// The prediction and the 28×28 image the network saw, or why there is none.
    pub outcome: Result<Classified, FileError>,
}

/// A file's prediction and the network's view of it.
#[derive(Clone, Debug)]
pub struct Classified {
    /// The 28×28 input the file became.
    pub pixels: [u8; PIXELS],
    /// What the network made of it.
    pub prediction: Prediction,
}

/// Expands the command line's inputs, in order: files are kept as given, directories are
/// searched (recursively, sorted) for files with an image extension, and a directory that
/// cannot be read or holds no image becomes an error in its place.
pub fn collect_images(inputs: &[PathBuf]) -> Vec<Result<PathBuf, InputError>> {
    let mut images = Vec::new();
    for input in inputs {
        if !input.is_dir() {
            images.push(Ok(input.clone()));
            continue;
        }
        let mut found = Vec::new();
        let problem = match find_images(input, &mut found, &mut HashSet::new()) {
            Err(e) => Some(format!("cannot read the directory: {e}")),
            Ok(()) if found.is_empty() => Some(format!(
                "no images in this directory (looked for .{})",
                IMAGE_EXTENSIONS.join(", .")
            )),
            Ok(()) => None,
        };
        match problem {
            Some(problem) => images.push(Err(InputError {
                path: input.clone(),
                problem,
            })),
            None => images.extend(found.into_iter().map(Ok)),
        }
    }
    images
}

/// Adds the images under `dir` to `found`. Each directory is entered once, by its real
/// path: a link back up the tree would otherwise make the walk endless, and a link to a
/// folder already walked would classify its files again.
fn find_images(
    dir: &Path,
    found: &mut Vec<PathBuf>,
    visited: &mut HashSet<PathBuf>,
) -> std::io::Result<()> {
    if !visited.insert(std::fs::canonicalize(dir)?) {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            find_images(&path, found, visited)?;
        } else if has_image_extension(&path) {
            found.push(path);
        }
    }
    Ok(())
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Classifies every image `inputs` name (files, and folders searched as
/// [`collect_images`] does), one result per file, in order. Files are decoded and
/// preprocessed on all cores, then the network runs over all of them in batches.
pub fn classify_files(
    classifier: &DigitClassifier,
    inputs: &[PathBuf],
) -> Result<Vec<FileResult>, ClassifyError> {
    let decoded: Vec<(PathBuf, Result<[u8; PIXELS], FileError>)> = collect_images(inputs)
        .into_par_iter()
        .map(|input| match input {
            Ok(path) => {
                let pixels = data::preprocess_image(&path).map_err(FileError::from);
                (path, pixels)
            }
            Err(error) => (error.path.clone(), Err(error.into())),
        })
        .collect();
    let ready: Vec<[u8; PIXELS]> = decoded
        .iter()
        .filter_map(|(_, pixels)| pixels.as_ref().ok().copied())
        .collect();
    // One prediction per decoded image, in order: hand them out to the files that decoded.
    let mut predictions = classifier.classify(&ready)?.into_iter();
    Ok(decoded
        .into_iter()
        .map(|(path, pixels)| {
            let outcome = pixels.and_then(|pixels| {
                let prediction = predictions
                    .next()
                    .ok_or_else(|| FileError::NoPrediction(path.clone()))?;
                Ok(Classified { pixels, prediction })
            });
            FileResult { path, outcome }
        })
        .collect())
}

/// Writes a preprocessed 28×28 input as a grey PNG, to show what the network saw.
pub fn save_preprocessed(pixels: &[u8; PIXELS], path: &Path) -> std::io::Result<()> {
    data::write_atomic(path, &data::preprocessed_png(pixels))
}

/// Writes the first `count` images of `dataset` (all, with `None`) as PNG files named
/// `INDEX-LABEL.png` (`00042-7.png`) into `dir`, which must not exist yet, and returns how
/// many it wrote. They go into a temporary folder beside `dir` that is renamed into place at
/// the end, so an interruption leaves no half-filled folder.
pub fn save_dataset_images(
    dataset: &MnistDataset,
    count: Option<usize>,
    dir: &Path,
) -> std::io::Result<usize> {
    if dir.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "already exists (images are written into a new folder only)",
        ));
    }
    let parent = match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let staging = tempfile::Builder::new()
        .prefix(".images-")
        .tempdir_in(parent)?;
    let count = count.map_or(dataset.len(), |count| count.min(dataset.len()));
    (0..count).into_par_iter().try_for_each(|index| {
        let item = dataset
            .item(index)
            .expect("index below the dataset's length");
        let name = format!("{index:05}-{}.png", item.label);
        std::fs::write(
            staging.path().join(name),
            data::preprocessed_png(&item.pixels),
        )
    })?;
    // Once renamed, the staging folder's clean-up on drop finds nothing left to remove.
    std::fs::rename(staging.path(), dir)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::Device;
    use model::CnnConfig;

    fn workspace() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn folders_are_searched_in_order_and_empty_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("b");
        std::fs::create_dir(&nested).unwrap();
        for name in ["b/z.PNG", "a.jpg", "notes.txt"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let found = collect_images(&[dir.path().to_path_buf(), empty.clone()]);
        let paths: Vec<_> = found.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(paths, [&dir.path().join("a.jpg"), &nested.join("z.PNG")]);
        let error = found.last().unwrap().as_ref().unwrap_err();
        assert_eq!(error.path, empty);
        assert!(error.problem.contains("no images"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn links_back_up_the_tree_or_to_a_folder_walked_are_followed_once() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("inner");
        std::fs::create_dir(&inner).unwrap();
        std::fs::write(inner.join("a.png"), b"").unwrap();
        std::os::unix::fs::symlink(dir.path(), inner.join("up")).unwrap();
        std::os::unix::fs::symlink(&inner, dir.path().join("again")).unwrap();
        let found = collect_images(&[dir.path().to_path_buf()]);
        let paths: Vec<_> = found.iter().map(|r| r.as_ref().unwrap()).collect();
        // `again` sorts before `inner`: the folder is walked once, under the first name met.
        assert_eq!(paths, [&dir.path().join("again/a.png")]);
    }

    #[test]
    fn each_file_gets_its_own_result_in_order() {
        let device = Device::flex();
        let classifier = DigitClassifier::new(CnnConfig::new().init(&device), device);
        let digits = workspace().join("data/digits");
        let inputs = [
            digits.join("seven-mnist.png"),
            digits.join("missing.png"),
            digits.join("two-paper.png"),
        ];
        let results = classify_files(&classifier, &inputs).unwrap();
        assert_eq!(results.len(), 3);
        for (result, input) in results.iter().zip(&inputs) {
            assert_eq!(&result.path, input);
        }
        assert!(results[0].outcome.is_ok());
        let error = results[1].outcome.as_ref().unwrap_err();
        assert!(error.to_string().contains("missing.png"), "{error}");
        let two = results[2].outcome.as_ref().unwrap();
        assert_eq!(two.pixels, data::preprocess_image(&inputs[2]).unwrap());
    }

    #[test]
    fn dataset_images_are_saved_as_pngs_that_decode_to_the_same_pixels() {
        let pixels: Vec<u8> = (0..3 * PIXELS).map(|i| (i % 251) as u8).collect();
        let dataset = MnistDataset::from_parts(pixels, vec![7, 2, 1]);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("images");
        assert_eq!(save_dataset_images(&dataset, Some(2), &out).unwrap(), 2);
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["00000-7.png", "00001-2.png"]);
        let decoded = image::open(out.join("00001-2.png")).unwrap().to_luma8();
        assert_eq!(decoded.as_raw()[..], dataset.item(1).unwrap().pixels[..]);
        // A second save never mixes into an existing folder, and leaves nothing behind.
        let err = save_dataset_images(&dataset, None, &out).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
