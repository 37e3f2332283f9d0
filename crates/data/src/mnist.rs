//! The four MNIST files, checked against their published checksums, as a Burn dataset.

use crate::PIXELS;
use crate::idx::{IdxError, IdxFile, read_idx};
use burn::data::dataset::{Dataset, DatasetError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where MNIST's four files are, relative to the working directory, unless a recipe says
/// otherwise.
pub const DEFAULT_MNIST_DIR: &str = "data/mnist";

/// Which half of MNIST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// 60,000 training images.
    Train,
    /// 10,000 test images.
    Test,
}

/// One of the four files MNIST is distributed as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MnistFile {
    /// The name without `.gz`.
    pub name: &'static str,
    /// sha256 of the decompressed bytes, identical on every mirror.
    pub sha256: &'static str,
}

impl MnistFile {
    /// The 60,000 training images.
    pub const TRAIN_IMAGES: MnistFile = MnistFile {
        name: "train-images-idx3-ubyte",
        sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    };
    /// Their labels.
    pub const TRAIN_LABELS: MnistFile = MnistFile {
        name: "train-labels-idx1-ubyte",
        sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    };
    /// The 10,000 test images.
    pub const TEST_IMAGES: MnistFile = MnistFile {
        name: "t10k-images-idx3-ubyte",
        sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    };
    /// Their labels.
    pub const TEST_LABELS: MnistFile = MnistFile {
        name: "t10k-labels-idx1-ubyte",
        sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    };
    /// All four, in the order they are fetched.
    pub const ALL: [MnistFile; 4] = [
        Self::TRAIN_IMAGES,
        Self::TRAIN_LABELS,
        Self::TEST_IMAGES,
        Self::TEST_LABELS,
    ];

    /// The existing copy in `dir`: `NAME.gz` if present, else the uncompressed `NAME`.
    pub fn locate(self, dir: &Path) -> Result<PathBuf, DataError> {
        let gz = dir.join(format!("{}.gz", self.name));
        let raw = dir.join(self.name);
        if gz.is_file() {
            Ok(gz)
        } else if raw.is_file() {
            Ok(raw)
        } else {
            Err(DataError::Missing { path: gz })
        }
    }

    /// Reads the file from `dir` and checks its checksum.
    pub fn read_verified(self, dir: &Path) -> Result<IdxFile, DataError> {
        let path = self.locate(dir)?;
        let file = read_idx(&path)?;
        self.verify(&path, &file.bytes)?;
        Ok(file)
    }

    /// Checks decompressed `bytes` against the published checksum.
    pub fn verify(self, path: &Path, bytes: &[u8]) -> Result<(), DataError> {
        let actual = crate::sha256_hex(bytes);
        if actual == self.sha256 {
            Ok(())
        } else {
            Err(DataError::Checksum {
                path: path.to_path_buf(),
                expected: self.sha256,
                actual,
            })
        }
    }
}

/// A dataset distributed as MNIST is: the same four file names and shapes, labels 0 to 9.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collection {
    /// Handwritten digits.
    Mnist,
    /// Zalando's Fashion-MNIST: clothes, bags and shoes, the digits' size and framing. Images
    /// that are no digit at all, to measure how the network tells them apart.
    FashionMnist,
}

impl Collection {
    /// The images' and the labels' file of `split`.
    pub fn files(self, split: Split) -> (MnistFile, MnistFile) {
        match (self, split) {
            (Self::Mnist, Split::Train) => (MnistFile::TRAIN_IMAGES, MnistFile::TRAIN_LABELS),
            (Self::Mnist, Split::Test) => (MnistFile::TEST_IMAGES, MnistFile::TEST_LABELS),
            (Self::FashionMnist, Split::Train) => FASHION_TRAIN,
            (Self::FashionMnist, Split::Test) => FASHION_TEST,
        }
    }
}

/// Where Debian's `dataset-fashion-mnist` package puts Fashion-MNIST.
pub const DEFAULT_FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Fashion-MNIST's training files. The checksums are of the decompressed files, which do not
/// depend on how they were compressed (Debian recompresses them: its `.gz` files are not
/// byte for byte upstream's).
const FASHION_TRAIN: (MnistFile, MnistFile) = (
    MnistFile {
        name: "train-images-idx3-ubyte",
        sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    },
    MnistFile {
        name: "train-labels-idx1-ubyte",
        sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    },
);
/// Fashion-MNIST's test files.
const FASHION_TEST: (MnistFile, MnistFile) = (
    MnistFile {
        name: "t10k-images-idx3-ubyte",
        sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    },
    MnistFile {
        name: "t10k-labels-idx1-ubyte",
        sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
);

/// Why MNIST could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file is in none of the names it may have (`NAME` or `NAME.gz`).
    #[error("{path}: not found")]
    Missing {
        /// The name looked for.
        path: PathBuf,
    },
    /// The file is not a valid IDX file.
    #[error(transparent)]
    Idx(#[from] IdxError),
    #[error(
        "{path}: checksum mismatch (sha256 of the decompressed data is {actual}, expected {expected}); the file is corrupt"
    )]
    /// The file is not the published one.
    Checksum {
        /// The file.
        path: PathBuf,
        /// The published sha256.
        expected: &'static str,
        /// The sha256 of what was read.
        actual: String,
    },
    /// The file is a valid IDX file, but not the images or labels expected.
    #[error("{path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
}

/// One image and its label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MnistItem {
    /// 28×28 grey pixels, row-major, ink bright on a dark background.
    pub pixels: [u8; PIXELS],
    /// The digit, 0 to 9.
    pub label: u8,
}

/// MNIST images and labels held in memory (decoded once; items are cheap copies).
///
/// Subsets ([`take`](Self::take), [`split_off_validation`](Self::split_off_validation)) are
/// views that share the loaded data.
#[derive(Clone, Debug)]
pub struct MnistDataset {
    pixels: Arc<Vec<u8>>,
    labels: Arc<Vec<u8>>,
    /// Which stored images this view holds, in order; `None` for the first `len`.
    order: Option<Arc<Vec<usize>>>,
    len: usize,
}

impl MnistDataset {
    /// Loads one split of MNIST from `dir`, verifying both files' checksums and shapes.
    pub fn load(dir: &Path, split: Split) -> Result<Self, DataError> {
        Self::load_collection(dir, Collection::Mnist, split)
    }

    /// Loads one split of `collection` from `dir`, verifying both files' checksums and shapes.
    pub fn load_collection(
        dir: &Path,
        collection: Collection,
        split: Split,
    ) -> Result<Self, DataError> {
        let (images, labels) = collection.files(split);
        let image_file = images.read_verified(dir)?;
        let label_file = labels.read_verified(dir)?;
        let invalid = |file: MnistFile, problem: String| DataError::Invalid {
            path: file.locate(dir).unwrap_or_else(|_| dir.join(file.name)),
            problem,
        };
        let count = match image_file.dims.as_slice() {
            [count, 28, 28] => *count,
            dims => {
                return Err(invalid(
                    images,
                    format!("expected N×28×28 images, found {dims:?}"),
                ));
            }
        };
        if label_file.dims != [count] {
            return Err(invalid(
                labels,
                format!(
                    "expected {count} labels, found dimensions {:?}",
                    label_file.dims
                ),
            ));
        }
        if let Some(bad) = label_file.data().iter().find(|&&l| l > 9) {
            return Err(invalid(labels, format!("label {bad} is not a digit")));
        }
        Ok(Self::from_parts(
            image_file.into_data(),
            label_file.into_data(),
        ))
    }

    /// Builds a dataset from raw row-major pixels (`labels.len()` × 784) and labels.
    ///
    /// # Panics
    /// When the lengths disagree.
    pub fn from_parts(pixels: Vec<u8>, labels: Vec<u8>) -> Self {
        assert_eq!(
            pixels.len(),
            labels.len() * PIXELS,
            "one 28×28 image per label"
        );
        let len = labels.len();
        Self {
            pixels: Arc::new(pixels),
            labels: Arc::new(labels),
            order: None,
            len,
        }
    }

    /// Holds out `count` items chosen by `seed` (the same seed always picks the same ones)
    /// and returns `(the rest, the held-out items)`.
    pub fn split_off_validation(self, count: usize, seed: u64) -> (Self, Self) {
        let mut order: Vec<usize> = (0..self.len).map(|i| self.index(i)).collect();
        // Fisher–Yates with SplitMix64: small, seeded and the same on every platform.
        let mut state = seed;
        for i in (1..order.len()).rev() {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            order.swap(i, (z % (i as u64 + 1)) as usize);
        }
        let count = count.min(order.len());
        let mut held_out: Vec<usize> = order.split_off(order.len() - count);
        order.sort_unstable();
        held_out.sort_unstable();
        let view = |indices: Vec<usize>| Self {
            pixels: self.pixels.clone(),
            labels: self.labels.clone(),
            len: indices.len(),
            order: Some(Arc::new(indices)),
        };
        (view(order), view(held_out))
    }

    /// Position in the stored arrays of this view's `index`-th item.
    fn index(&self, index: usize) -> usize {
        self.order.as_ref().map_or(index, |order| order[index])
    }

    /// The first `n` items only (all of them when `n` is larger); shares the loaded data.
    pub fn take(mut self, n: usize) -> Self {
        self.len = self.len.min(n);
        self
    }

    /// The item at `index`, if there is one.
    pub fn item(&self, index: usize) -> Option<MnistItem> {
        if index >= self.len {
            return None;
        }
        let stored = self.index(index);
        let start = stored * PIXELS;
        let pixels = self.pixels[start..start + PIXELS].try_into().ok()?;
        Some(MnistItem {
            pixels,
            label: self.labels[stored],
        })
    }

    /// Labels of the items, in order.
    pub fn labels(&self) -> Vec<u8> {
        (0..self.len).map(|i| self.labels[self.index(i)]).collect()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("index {index} is out of range for a dataset of {len} items")]
struct OutOfRange {
    index: usize,
    len: usize,
}

impl Dataset<MnistItem> for MnistDataset {
    fn get(&self, index: usize) -> Result<MnistItem, DatasetError> {
        self.item(index).ok_or_else(|| {
            DatasetError::new(OutOfRange {
                index,
                len: self.len,
            })
        })
    }

    fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The project's copy of MNIST, which these tests read for real.
    fn mnist_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
    }

    #[test]
    fn loads_the_test_split_with_verified_checksums() {
        let test = MnistDataset::load(&mnist_dir(), Split::Test).unwrap();
        assert_eq!(test.len(), 10_000);
        let mut counts = [0usize; 10];
        for label in test.labels() {
            counts[label as usize] += 1;
        }
        assert_eq!(
            counts,
            [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
        );
        // The first test image is a 7.
        assert_eq!(test.get(0).unwrap().label, 7);
        assert!(test.get(10_000).is_err());
    }

    #[test]
    fn take_limits_the_dataset() {
        let test = MnistDataset::load(&mnist_dir(), Split::Test)
            .unwrap()
            .take(100);
        assert_eq!(test.len(), 100);
        assert!(test.get(99).is_ok());
        assert!(test.get(100).is_err());
    }

    #[test]
    fn a_validation_split_is_seeded_and_disjoint() {
        let test = MnistDataset::load(&mnist_dir(), Split::Test)
            .unwrap()
            .take(1000);
        let (rest, held) = test.clone().split_off_validation(100, 7);
        assert_eq!((rest.len(), held.len()), (900, 100));
        let (_, again) = test.clone().split_off_validation(100, 7);
        assert_eq!(held.labels(), again.labels());
        let (_, other) = test.split_off_validation(100, 8);
        let ids = |d: &MnistDataset| d.order.as_ref().unwrap().as_ref().clone();
        assert_ne!(ids(&held), ids(&other), "another seed picks other images");
        let rest_ids = ids(&rest);
        assert!(
            ids(&held).iter().all(|i| !rest_ids.contains(i)),
            "no image in both"
        );
        assert!(
            ids(&held).iter().chain(&rest_ids).all(|&i| i < 1000),
            "only from the view"
        );
    }

    #[test]
    fn a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = MnistDataset::load(dir.path(), Split::Test).unwrap_err();
        assert!(matches!(err, DataError::Missing { .. }));
        assert!(
            err.to_string().contains("t10k-images-idx3-ubyte.gz"),
            "{err}"
        );
    }

    #[test]
    fn a_corrupt_file_fails_its_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let mut labels = read_idx(&MnistFile::TEST_LABELS.locate(&mnist_dir()).unwrap())
            .unwrap()
            .bytes;
        labels[100] ^= 1;
        std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), &labels).unwrap();
        let err = MnistFile::TEST_LABELS
            .read_verified(dir.path())
            .unwrap_err();
        assert!(matches!(err, DataError::Checksum { .. }), "{err}");
        assert!(err.to_string().contains("t10k-labels-idx1-ubyte"), "{err}");
    }
}
