//! Classifying pictures of digits with a trained network: the shipped one, or any training
//! run's artifact directory.

mod evaluation;
mod figures;

pub use evaluation::{Evaluation, Misclassified};
pub use figures::{write_confusion, write_misclassified};

/// How this crate's binaries end: success, or the error on one line, with its causes when
/// it is an `anyhow` error (`error: cannot load the model: FILE: ...`), and a failing status.
pub fn exit_status(result: Result<(), impl std::fmt::Display>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

use burn::module::Module;
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use data::{MnistBatcher, PIXELS};
use model::{Cnn, CnnConfig};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Weights of a default-config training run, built into the binary so a fresh clone can
/// classify without training first, and the config that run saved beside them.
const SHIPPED_MODEL: &[u8] = include_bytes!("../model/model.bpk");
const SHIPPED_CONFIG: &str = include_str!("../model/config.toml");

/// Why a model could not be loaded. Every variant names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: not found ({hint})")]
    Missing { path: PathBuf, hint: &'static str },
    #[error("{path}: cannot read: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{record}: does not match the network in {config}: {reason}")]
    Mismatch {
        record: String,
        config: String,
        reason: String,
    },
    #[error(transparent)]
    Weights(#[from] model::InterchangeError),
}

/// Where the weights come from.
#[derive(Clone, Debug)]
pub enum ModelSource {
    /// The model built into this binary.
    Shipped,
    /// A training run's artifact directory (`model.bpk` + `config.toml`).
    RunDir(PathBuf),
    /// A PyTorch `state_dict` of the tutorial's model (`.pt`, `.pth` or `.safetensors`).
    Weights(PathBuf),
}

impl ModelSource {
    /// How the source is named in output.
    pub fn describe(&self) -> String {
        match self {
            Self::Shipped => "the shipped model".into(),
            Self::RunDir(dir) => dir.join("model.bpk").display().to_string(),
            Self::Weights(path) => path.display().to_string(),
        }
    }
}

/// A digit and how sure the network is of each class.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    pub digit: usize,
    pub probabilities: Vec<f32>,
}

impl Prediction {
    pub fn confidence(&self) -> f32 {
        self.probabilities[self.digit]
    }

    /// `(digit, probability)` from the most to the least likely.
    pub fn ranked(&self) -> Vec<(usize, f32)> {
        let mut ranked: Vec<_> = self.probabilities.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked
    }
}

/// File extensions looked for inside directories.
pub const IMAGE_EXTENSIONS: [&str; 8] = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"];

/// An input that yields no image to classify.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct InputError {
    pub path: PathBuf,
    pub problem: String,
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
        let problem = match find_images(input, &mut found) {
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

fn find_images(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            find_images(&path, found)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            found.push(path);
        }
    }
    Ok(())
}

/// Writes a preprocessed 28×28 input as a grey PNG, to show what the network saw.
pub fn save_preprocessed(pixels: &[u8; PIXELS], path: &Path) -> image::ImageResult<()> {
    let side = model::IMAGE_SIDE as u32;
    image::GrayImage::from_raw(side, side, pixels.to_vec())
        .expect("784 pixels make a 28×28 image")
        .save(path)
}

/// A loaded network on a device, ready to classify.
pub struct DigitClassifier {
    cnn: Cnn,
    device: Device,
}

/// The part of a run's `config.toml` inference needs.
#[derive(Deserialize)]
struct RunFile {
    /// Keys a run's file leaves out (older runs predate some) take [`CnnConfig`]'s defaults.
    model: toml::Table,
    #[serde(default)]
    data: Option<RunData>,
}

impl RunFile {
    fn model(&self) -> Result<CnnConfig, toml::de::Error> {
        let mut model = toml::Table::try_from(CnnConfig::new())
            .expect("a CnnConfig always serialises to a table");
        model.extend(self.model.clone());
        model.try_into()
    }
}

/// The part of a run's `[data]` section evaluation needs.
#[derive(Deserialize)]
struct RunData {
    dir: PathBuf,
}

/// Where the run in `run_dir` read MNIST from (its `data.dir`, else `data/mnist`).
pub fn run_data_dir(run_dir: &Path) -> Result<PathBuf, LoadError> {
    let run = read_run_file(&run_dir.join("config.toml"))?;
    Ok(run
        .data
        .map_or_else(|| PathBuf::from("data/mnist"), |data| data.dir))
}

impl DigitClassifier {
    pub fn load(source: &ModelSource, device: Device) -> Result<Self, LoadError> {
        let (config, record, record_name, config_name) = match source {
            ModelSource::Weights(path) => {
                let cnn = Cnn::load_pytorch_weights(path, &device)?;
                return Ok(Self { cnn, device });
            }
            ModelSource::Shipped => (
                read_model_config(SHIPPED_CONFIG, Path::new("<shipped config>"))?,
                ModuleRecord::from_bytes(Bytes::from_bytes_vec(SHIPPED_MODEL.to_vec())).map_err(
                    |e| LoadError::Unreadable {
                        path: "<shipped model>".into(),
                        reason: e.to_string(),
                    },
                )?,
                "<shipped model>".to_string(),
                "the default config".to_string(),
            ),
            ModelSource::RunDir(dir) => {
                let config_path = dir.join("config.toml");
                let record_path = dir.join("model.bpk");
                let config = read_run_config(&config_path)?;
                if !record_path.is_file() {
                    return Err(LoadError::Missing {
                        path: record_path,
                        hint: "has this run finished training?",
                    });
                }
                let record =
                    ModuleRecord::load(&record_path).map_err(|e| LoadError::Unreadable {
                        path: record_path.clone(),
                        reason: e.to_string(),
                    })?;
                (
                    config,
                    record,
                    record_path.display().to_string(),
                    config_path.display().to_string(),
                )
            }
        };
        let problem = if config.feature_side().is_none() {
            Some("its kernel sizes leave no feature map".to_string())
        } else if !(config.input_std.is_finite() && config.input_std > 0.0) {
            Some(format!(
                "input_std must be positive, got {}",
                config.input_std
            ))
        } else {
            None
        };
        if let Some(reason) = problem {
            return Err(LoadError::Mismatch {
                record: record_name,
                config: config_name,
                reason,
            });
        }
        let cnn =
            config
                .init(&device)
                .try_load_record(record)
                .map_err(|e| LoadError::Mismatch {
                    record: record_name,
                    config: config_name,
                    reason: e.to_string(),
                })?;
        Ok(Self { cnn, device })
    }

    /// Classifies 28×28 images as produced by [`data::preprocess_image`], in batches so a
    /// folder of any size runs in bounded memory.
    pub fn classify(&self, images: &[[u8; PIXELS]]) -> Vec<Prediction> {
        images
            .chunks(Self::BATCH)
            .flat_map(|chunk| self.classify_batch(chunk))
            .collect()
    }

    const BATCH: usize = 256;

    /// The loaded network, e.g. to export it.
    pub fn network(&self) -> &Cnn {
        &self.cnn
    }

    fn classify_batch(&self, images: &[[u8; PIXELS]]) -> Vec<Prediction> {
        if images.is_empty() {
            return Vec::new();
        }
        let inputs = MnistBatcher::images(images.iter(), &self.device);
        let probabilities: Vec<f32> = self
            .cnn
            .probabilities(inputs)
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap_or_default();
        probabilities
            .chunks(probabilities.len() / images.len())
            .map(|p| Prediction {
                digit: argmax(p),
                probabilities: p.to_vec(),
            })
            .collect()
    }
}

fn read_run_config(path: &Path) -> Result<CnnConfig, LoadError> {
    let text = read_text(path)?;
    read_model_config(&text, path)
}

fn read_model_config(text: &str, path: &Path) -> Result<CnnConfig, LoadError> {
    parse_run_file(text, path)?
        .model()
        .map_err(|e| unreadable_toml(path, &e))
}

fn read_run_file(path: &Path) -> Result<RunFile, LoadError> {
    parse_run_file(&read_text(path)?, path)
}

fn read_text(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LoadError::Missing {
            path: path.to_path_buf(),
            hint: "expected a training run's artifact directory",
        },
        _ => LoadError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    })
}

fn parse_run_file(text: &str, path: &Path) -> Result<RunFile, LoadError> {
    toml::from_str::<RunFile>(text).map_err(|e| unreadable_toml(path, &e))
}

fn unreadable_toml(path: &Path, error: &toml::de::Error) -> LoadError {
    LoadError::Unreadable {
        path: path.to_path_buf(),
        reason: error
            .message()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}
