//! MNIST on disk and in tensors: IDX parsing with checksums, a Burn [`Dataset`] and [`Batcher`],
//! and the one path from any picture of a digit to the network's input.
//!
//! [`Dataset`]: burn::data::dataset::Dataset
//! [`Batcher`]: burn::data::dataloader::batcher::Batcher

#![deny(unsafe_code)]

mod augment;
// Datasets and batches are for training and evaluation, on the host; a browser (wasm32) build
// has the preprocessing and the pixel scaling.
#[cfg(not(target_arch = "wasm32"))]
mod batcher;
#[cfg(not(any(target_arch = "wasm32", target_env = "musl")))]
mod fetch;
mod files;
mod idx;
mod input;
#[cfg(not(target_arch = "wasm32"))]
mod mnist;
mod preprocess;
pub mod stroke;

pub use augment::Augmentation;
#[cfg(not(target_arch = "wasm32"))]
pub use batcher::{MnistBatch, MnistBatcher, OutlierPool};
#[cfg(not(any(target_arch = "wasm32", target_env = "musl")))]
pub use fetch::{FetchError, download_missing};
pub use files::{
    ChecksumError, MAX_IMAGE_FILE_BYTES, MAX_TEXT_FILE_BYTES, checksum_path, matches_checksum,
    read_bounded, read_text_bounded, sha256_hex, verify_checksum, write_atomic, write_named_file,
    write_target, write_with_checksum,
};
pub use idx::{IdxError, IdxFile, read_idx};
pub use input::{images_to_input, pixel_to_input};
#[cfg(not(target_arch = "wasm32"))]
pub use mnist::{
    Collection, DEFAULT_FASHION_MNIST_DIR, DEFAULT_MNIST_DIR, DataError, MnistDataset, MnistFile,
    MnistItem, Split,
};
pub use preprocess::{
    MAX_PIXELS, PreprocessError, decoding_cost, preprocess_bytes, preprocess_image,
    preprocessed_png, to_mnist, to_mnist_keeping_stroke,
};

/// Pixels in one 28×28 image.
pub const PIXELS: usize = model::IMAGE_SIDE * model::IMAGE_SIDE;
