//! The fuzz targets: each takes arbitrary bytes to one parser of untrusted input and checks
//! what must hold for every input, whatever it is:
//!
//! - nothing panics, hangs or allocates without bound (the fuzzer's own checks);
//! - what is refused is refused with one line of message (what the binaries print);
//! - what is accepted is usable: an image becomes 28×28 pixels with ink, a config
//!   re-reads as itself, a network answers ten finite probabilities that sum to one.
//!
//! Files are written to a private scratch folder because the loaders under test take paths,
//! as the binaries do, so their size and file-type checks are exercised too.

use burn::prelude::*;
use data::{PIXELS, preprocess_bytes, read_idx};
use infer::{DigitClassifier, ModelSource};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use train::RunConfig;

/// A fuzz target: takes any bytes, panics only when a promise is broken.
pub type Target = fn(&[u8]);

/// The targets by name, as `fuzz/fuzz_targets/` and `fuzz/corpus/` name them.
pub const TARGETS: [(&str, Target); 6] = [
    ("idx", idx),
    ("image", image),
    ("exif", exif),
    ("config", config),
    ("weights", weights),
    ("record", record),
];

/// An IDX file, raw or gzipped, as MNIST's files are read.
pub fn idx(bytes: &[u8]) {
    let path = scratch_file("input.idx", bytes);
    match read_idx(&path) {
        Ok(file) => {
            let cells: usize = file.dims.iter().product();
            assert_eq!(file.data().len(), cells, "data and dimensions disagree");
        }
        Err(error) => assert_one_line(&error),
    }
}

/// Any encoded image, as `infer` and `serve` preprocess uploads.
pub fn image(bytes: &[u8]) {
    match preprocess_bytes(bytes, Path::new("upload")) {
        Ok(pixels) => {
            assert_eq!(pixels.len(), PIXELS);
            assert!(pixels.iter().any(|&p| p > 0), "an accepted image has ink");
        }
        Err(error) => assert_one_line(&error),
    }
}

/// An EXIF block, as a photo carries it: in a JPEG's APP1 segment and in a PNG's `eXIf`
/// chunk, around a valid picture of a digit. Whatever the block says, the picture is read
/// (a damaged block is no reason to refuse the pixels) and still has its ink, turned or not.
pub fn exif(bytes: &[u8]) {
    for picture in [jpeg_with_exif(bytes), png_with_exif(bytes)] {
        match preprocess_bytes(&picture, Path::new("photo")) {
            Ok(pixels) => assert!(pixels.iter().any(|&p| p > 0), "the digit keeps its ink"),
            Err(error) => panic!("a valid picture refused for its EXIF block: {error}"),
        }
    }
}

/// A small picture of a digit (a bar, white on black) as `format` encodes it.
fn digit_picture(format: image::ImageFormat) -> Vec<u8> {
    let mut picture = image::GrayImage::new(24, 32);
    for y in 4..28 {
        for x in 10..14 {
            picture.put_pixel(x, y, image::Luma([255]));
        }
    }
    let mut encoded = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut encoded, format)
        .expect("a small picture encodes");
    encoded.into_inner()
}

/// The digit as a JPEG whose first segment is APP1 holding `exif` (cut to the segment's
/// largest size).
fn jpeg_with_exif(exif: &[u8]) -> Vec<u8> {
    static JPEG: OnceLock<Vec<u8>> = OnceLock::new();
    let jpeg = JPEG.get_or_init(|| digit_picture(image::ImageFormat::Jpeg));
    let exif = &exif[..exif.len().min(usize::from(u16::MAX) - 8)];
    let length = u16::try_from(exif.len() + 8).expect("cut to fit");
    let mut file = jpeg[..2].to_vec();
    file.extend([0xFF, 0xE1]);
    file.extend(length.to_be_bytes());
    file.extend(b"Exif\0\0");
    file.extend(exif);
    file.extend(&jpeg[2..]);
    file
}

/// The digit as a PNG with an `eXIf` chunk holding `exif` right after its header chunk.
fn png_with_exif(exif: &[u8]) -> Vec<u8> {
    static PNG: OnceLock<Vec<u8>> = OnceLock::new();
    let png = PNG.get_or_init(|| digit_picture(image::ImageFormat::Png));
    // The signature (8 bytes), then IHDR: length, type, 13 bytes of data, CRC.
    let after_header = 8 + 4 + 4 + 13 + 4;
    let mut chunk = b"eXIf".to_vec();
    chunk.extend(exif);
    let mut crc = flate2::Crc::new();
    crc.update(&chunk);
    let mut file = png[..after_header].to_vec();
    file.extend(u32::try_from(exif.len()).unwrap_or(u32::MAX).to_be_bytes());
    file.extend(&chunk);
    file.extend(crc.sum().to_be_bytes());
    file.extend(&png[after_header..]);
    file
}

/// A training recipe, as `train --config` reads it; and each of its lines as a
/// `--set KEY=VALUE` over the default recipe.
pub fn config(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    match RunConfig::parse(text, "fuzz.toml") {
        Ok(config) => {
            let again = RunConfig::parse(&config.to_toml(), "saved.toml");
            assert_eq!(
                again.as_ref(),
                Ok(&config),
                "a saved recipe re-reads as itself"
            );
        }
        Err(error) => assert_one_line(&error),
    }
    let settings: Vec<String> = text.lines().take(8).map(str::to_string).collect();
    match RunConfig::default().with_overrides(&settings) {
        Ok(config) => assert_eq!(config.validate("--set"), Ok(())),
        Err(error) => assert_one_line(&error),
    }
}

/// PyTorch weights for the tutorial's model: the first byte picks the format (`.pt` or
/// `.safetensors`), the rest is the file.
pub fn weights(bytes: &[u8]) {
    let Some((&format, file)) = bytes.split_first() else {
        return;
    };
    let name = match format % 2 {
        0 => "weights.pt",
        _ => "weights.safetensors",
    };
    let path = scratch_file(name, file);
    answers_sensibly(&ModelSource::Weights(path));
}

/// A trained run's `model.bpk`, beside the shipped model's `config.toml` and with a
/// checksum that matches (so the record itself is parsed), as `infer --model DIR` loads it.
pub fn record(bytes: &[u8]) {
    const SHIPPED_CONFIG: &str = include_str!("../../infer/model/config.toml");
    let dir = scratch().join("run");
    static CONFIG: OnceLock<()> = OnceLock::new();
    CONFIG.get_or_init(|| {
        std::fs::create_dir_all(&dir).expect("the scratch folder is writable");
        std::fs::write(dir.join("config.toml"), SHIPPED_CONFIG)
            .expect("the scratch folder is writable");
    });
    data::write_with_checksum(&dir.join("model.bpk"), bytes)
        .expect("the scratch folder is writable");
    answers_sensibly(&ModelSource::RunDir(dir));
}

/// Loads a network; if it loads, it classifies an image into ten finite probabilities
/// summing to one.
fn answers_sensibly(source: &ModelSource) {
    match DigitClassifier::load(source, Device::flex()) {
        Ok(classifier) => {
            let mut image = [0u8; PIXELS];
            image[PIXELS / 2..PIXELS / 2 + 28].fill(255);
            let predictions = classifier.classify(&[image]);
            let prediction = match predictions.as_deref() {
                Ok([one]) => one,
                Ok(many) => panic!("{} predictions for one image", many.len()),
                Err(error) => return assert_one_line(error),
            };
            let sum: f32 = prediction.probabilities.iter().sum();
            assert_eq!(prediction.probabilities.len(), 10);
            assert!((sum - 1.0).abs() < 1e-3, "probabilities sum to {sum}");
            assert!(prediction.digit < 10);
        }
        Err(error) => assert_one_line(&error),
    }
}

/// What the binaries print for a refusal: one line.
fn assert_one_line(error: &dyn std::fmt::Display) {
    let message = error.to_string();
    assert!(!message.is_empty(), "an empty error message");
    assert!(
        !message.contains('\n'),
        "a message of several lines: {message:?}"
    );
}

/// Removes this process's scratch folder; the corpus replay calls it when done, so nothing
/// is left behind in `/dev/shm`.
pub fn remove_scratch() {
    if let Some(dir) = SCRATCH.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

static SCRATCH: OnceLock<PathBuf> = OnceLock::new();

/// A folder of this process's own, in memory where the system has one.
fn scratch() -> &'static Path {
    SCRATCH.get_or_init(|| {
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("mnist-fuzzing-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the scratch folder is writable");
        dir
    })
}

fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, bytes).expect("the scratch folder is writable");
    path
}
