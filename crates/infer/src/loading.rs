//! Where a network comes from: the shipped model, a training run's directory, or PyTorch
//! weights; and the part of a run's `config.toml` that inference reads.

use crate::classify::DigitClassifier;
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use model::{Cnn, CnnConfig, InferenceConfig, RecordError, VerdictRule, one_line};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Weights of a default-config training run, built into the binary so a fresh clone can
/// classify without training first, and the config that run saved beside them.
const SHIPPED_MODEL: &[u8] = include_bytes!("../model/model.bpk");
const SHIPPED_CONFIG: &str = include_str!("../model/config.toml");
const SHIPPED_CHECKSUM: &str = include_str!("../model/model.bpk.sha256");
/// The shipped model's test figures, as `cargo xtask eval --model crates/infer/model`
/// printed them.
const SHIPPED_SUMMARY: &str = include_str!("../model/summary.json");

/// The largest `model.bpk` read: the default network's is 30 KB, and configs that would need
/// more than this are far beyond what the network is for.
const MAX_RECORD_BYTES: u64 = 1 << 30;
/// How the shipped model's files are named in errors.
const SHIPPED_MODEL_NAME: &str = "<shipped model>";
const SHIPPED_CONFIG_NAME: &str = "<shipped config>";

/// Why a model could not be loaded. Every variant names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file of the model is not there.
    #[error("{path}: not found ({hint})")]
    Missing {
        /// The file looked for.
        path: PathBuf,
        /// What its absence probably means.
        hint: &'static str,
    },
    /// A run's directory that is not there, or holds no run.
    #[error("{dir}: no training run here; train one into it first (`train --model {dir}`)")]
    NoRun {
        /// The directory named.
        dir: PathBuf,
    },
    /// A file given where a run's directory belongs (often the run's config).
    #[error(
        "{path}: a file, not a training run's directory; give the folder a training wrote \
         (such as artifacts/default){}",
        if path.extension().is_some_and(|e| e == "toml") {
            "; a config is trained first (`train --config FILE`)"
        } else {
            ""
        }
    )]
    NotARunDirectory {
        /// The file named.
        path: PathBuf,
    },
    /// A file of the model cannot be read or parsed.
    #[error("{path}: cannot read: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What went wrong, on one line.
        reason: String,
    },
    /// The weights are not those of the network the config describes.
    #[error("{record}: does not match the network in {config}: {reason}")]
    Mismatch {
        /// The weights' file.
        record: String,
        /// The config's file.
        config: String,
        /// What does not fit.
        reason: String,
    },
    /// The weights hold NaN or infinite values: a damaged file, or a run that diverged.
    #[error("{model}: the weights hold NaN or infinite values (first in {parameter})")]
    NotFinite {
        /// The model, as [`ModelSource::describe`] names it.
        model: String,
        /// The first parameter found with such values, as the model's file names it.
        parameter: String,
    },
    /// PyTorch weights that cannot be imported.
    #[error(transparent)]
    Weights(#[from] model::InterchangeError),
}

/// Where the weights come from.
#[derive(Clone, Debug)]
pub enum ModelSource {
    /// The model built into this binary.
    Shipped,
    /// A training run's run directory (`model.bpk` + `config.toml`).
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

/// What is known of a model before it classifies anything: for people, and for `/api/model`.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    /// Where the weights come from, as [`ModelSource::describe`] says (a path, for people on
    /// this machine).
    pub source: String,
    /// A name for the model without any path, for clients: `shipped`, the run's directory
    /// name, or the weights' file name.
    pub label: String,
    /// The SHA-256 of the weights' file, in hex: which model answers, exactly.
    pub sha256: String,
    /// The network's architecture.
    pub config: CnnConfig,
    /// The test accuracy (percent) its run recorded in `summary.json`, when there is one.
    pub test_accuracy: Option<f64>,
    /// How its answers become verdicts.
    pub verdict: VerdictRule,
}

impl ModelSource {
    /// A name without any path: `shipped`, the run's directory name, the weights' file name.
    pub fn label(&self) -> String {
        let name = |path: &Path| {
            path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into(),
            )
        };
        match self {
            Self::Shipped => "shipped".into(),
            Self::RunDir(dir) => name(dir),
            Self::Weights(path) => name(path),
        }
    }

    /// The SHA-256 of the weights' file.
    fn weights_sha256(&self) -> Result<String, LoadError> {
        let path = match self {
            Self::Shipped => return Ok(data::sha256_hex(SHIPPED_MODEL)),
            Self::RunDir(dir) => dir.join("model.bpk"),
            Self::Weights(path) => path.clone(),
        };
        let bytes =
            data::read_bounded(&path, MAX_RECORD_BYTES).map_err(|e| LoadError::Unreadable {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        Ok(data::sha256_hex(&bytes))
    }

    /// The model's architecture, recorded test accuracy and checksum. PyTorch weights are
    /// the tutorial's network and come with no record.
    pub fn info(&self) -> Result<ModelInfo, LoadError> {
        let recorded = |text: &str| {
            serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|summary| summary["test_accuracy"].as_f64())
        };
        let (run, test_accuracy) = match self {
            Self::Shipped => (
                Some(RunFile::parse(
                    SHIPPED_CONFIG,
                    Path::new(SHIPPED_CONFIG_NAME),
                )?),
                recorded(SHIPPED_SUMMARY),
            ),
            Self::RunDir(dir) => (
                Some(RunFile::read_in(dir)?),
                data::read_text_bounded(&dir.join("summary.json"), data::MAX_TEXT_FILE_BYTES)
                    .ok()
                    .and_then(|text| recorded(&text)),
            ),
            Self::Weights(_) => (None, None),
        };
        let (config, verdict) = run.map_or_else(
            || (CnnConfig::new(), VerdictRule::default()),
            |run| (run.inference.model, run.inference.verdict),
        );
        Ok(ModelInfo {
            source: self.describe(),
            label: self.label(),
            sha256: self.weights_sha256()?,
            config,
            test_accuracy,
            verdict,
        })
    }
}

/// What inference and evaluation read of a run's `config.toml`: the network and its rule
/// ([`InferenceConfig`]), and where MNIST was and how the validation split was drawn.
#[derive(Debug)]
struct RunFile {
    inference: InferenceConfig,
    data: Option<RunData>,
    /// The seed the validation split was drawn with.
    seed: Option<u64>,
}

/// The training sections evaluation needs.
#[derive(Debug, Deserialize)]
struct TrainingSide {
    #[serde(default)]
    data: Option<RunData>,
    #[serde(default)]
    seed: Option<u64>,
}

/// The part of a run's `[data]` section evaluation needs; the rest is training's.
#[derive(Debug, Deserialize)]
struct RunData {
    dir: PathBuf,
    #[serde(default)]
    train_limit: Option<usize>,
    #[serde(default)]
    validation_images: Option<usize>,
}

impl RunFile {
    fn parse(text: &str, path: &Path) -> Result<Self, LoadError> {
        let unreadable = |reason: String| LoadError::Unreadable {
            path: path.to_path_buf(),
            reason,
        };
        let inference = InferenceConfig::parse(text).map_err(unreadable)?;
        let side: TrainingSide =
            toml::from_str(text).map_err(|e| unreadable(one_line(e.message())))?;
        Ok(Self {
            inference,
            data: side.data,
            seed: side.seed,
        })
    }

    /// The `config.toml` of the run in `dir`.
    fn read_in(dir: &Path) -> Result<Self, LoadError> {
        if dir.is_file() {
            return Err(LoadError::NotARunDirectory {
                path: dir.to_path_buf(),
            });
        }
        let path = dir.join("config.toml");
        let text =
            data::read_text_bounded(&path, data::MAX_TEXT_FILE_BYTES).map_err(|e| {
                match e.kind() {
                    std::io::ErrorKind::NotFound => LoadError::NoRun {
                        dir: dir.to_path_buf(),
                    },
                    _ => LoadError::Unreadable {
                        path: path.clone(),
                        reason: e.to_string(),
                    },
                }
            })?;
        Self::parse(&text, &path)
    }
}

/// Where the run in `run_dir` read MNIST from (its `data.dir`, else [`data::DEFAULT_MNIST_DIR`]).
pub fn run_data_dir(run_dir: &Path) -> Result<PathBuf, LoadError> {
    let run = RunFile::read_in(run_dir)?;
    Ok(run
        .data
        .map_or_else(|| PathBuf::from(data::DEFAULT_MNIST_DIR), |data| data.dir))
}

/// The validation split the run in `run_dir` held out of MNIST's training set in `data_dir`,
/// drawn as training drew it; `None` when it held none out.
pub fn run_validation_split(
    run_dir: &Path,
    data_dir: &Path,
) -> Result<Option<data::MnistDataset>, LoadError> {
    let run = RunFile::read_in(run_dir)?;
    let Some(data) = run.data else {
        return Ok(None);
    };
    let Some(count) = data.validation_images else {
        return Ok(None);
    };
    let train = data::MnistDataset::load(data_dir, data::Split::Train).map_err(|e| {
        LoadError::Unreadable {
            path: data_dir.to_path_buf(),
            reason: e.to_string(),
        }
    })?;
    let train = match data.train_limit {
        Some(limit) => train.take(limit),
        None => train,
    };
    let seed = run.seed.unwrap_or(3);
    Ok(Some(train.split_off_validation(count, seed).1))
}

impl DigitClassifier {
    /// Loads the network `source` names onto `device`.
    pub fn load(source: &ModelSource, device: Device) -> Result<Self, LoadError> {
        let (cnn, rule) = match source {
            ModelSource::Weights(path) => {
                let cnn = Cnn::load_pytorch_weights(path, &device)?
                    .checked()
                    .map_err(|parameter| LoadError::NotFinite {
                        model: source.describe(),
                        // Named as PyTorch's files name it, with the tutorial's indices.
                        parameter: model::pytorch_name(parameter),
                    })?;
                (cnn, VerdictRule::default())
            }
            ModelSource::Shipped => load_shipped(&device)?,
            ModelSource::RunDir(dir) => load_run(dir, &device)?,
        };
        Ok(Self::new(cnn, device).with_rule(rule))
    }
}

/// The shipped network and its verdict rule, from one reading of its config.
fn load_shipped(device: &Device) -> Result<(Cnn, VerdictRule), LoadError> {
    let InferenceConfig {
        model: config,
        verdict,
    } = RunFile::parse(SHIPPED_CONFIG, Path::new(SHIPPED_CONFIG_NAME))?.inference;
    data::matches_checksum(SHIPPED_CHECKSUM, SHIPPED_MODEL, "model.bpk.sha256").map_err(
        |error| LoadError::Unreadable {
            path: SHIPPED_MODEL_NAME.into(),
            reason: error.to_string(),
        },
    )?;
    let record =
        ModuleRecord::from_bytes(Bytes::from_bytes_vec(SHIPPED_MODEL.to_vec())).map_err(|e| {
            LoadError::Unreadable {
                path: SHIPPED_MODEL_NAME.into(),
                reason: e.to_string(),
            }
        })?;
    let cnn = build(
        &config,
        record,
        SHIPPED_MODEL_NAME,
        SHIPPED_CONFIG_NAME,
        device,
    )?;
    Ok((cnn, verdict))
}

/// The run's network and its verdict rule, from one reading of its `config.toml`.
fn load_run(dir: &Path, device: &Device) -> Result<(Cnn, VerdictRule), LoadError> {
    let config_path = dir.join("config.toml");
    let record_path = dir.join("model.bpk");
    let InferenceConfig {
        model: config,
        verdict,
    } = RunFile::read_in(dir)?.inference;
    // Anything there that is not a file (a directory, say) is named as what it is below.
    if !record_path.exists() {
        return Err(LoadError::Missing {
            path: record_path,
            hint: "has this run finished training?",
        });
    }
    // Burn's messages may span lines: they quote tensor names from the file (found by
    // fuzzing).
    let unreadable = |reason: String| LoadError::Unreadable {
        path: record_path.clone(),
        reason: one_line(&reason),
    };
    let bytes = data::read_bounded(&record_path, MAX_RECORD_BYTES)
        .map_err(|e| unreadable(e.to_string()))?;
    // Damage that still parses would load as a different network: the checksum written at
    // save time catches it.
    data::verify_checksum(&record_path, &bytes).map_err(|e| unreadable(e.to_string()))?;
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| unreadable(e.to_string()))?;
    let (record_name, config_name) = (record_path.display(), config_path.display());
    let cnn = build(
        &config,
        record,
        &record_name.to_string(),
        &config_name.to_string(),
        device,
    )?;
    Ok((cnn, verdict))
}

/// The network `config` describes, with the weights of `record`, in f32 and finite.
fn build(
    config: &CnnConfig,
    record: ModuleRecord,
    record_name: &str,
    config_name: &str,
    device: &Device,
) -> Result<Cnn, LoadError> {
    config
        .init_with_record(record, device)
        .map_err(|error| match error {
            RecordError::Config(_) | RecordError::Mismatch(_) => LoadError::Mismatch {
                record: record_name.to_string(),
                config: config_name.to_string(),
                reason: error.to_string(),
            },
            RecordError::NotFinite(parameter) => LoadError::NotFinite {
                model: record_name.to_string(),
                parameter: parameter.to_string(),
            },
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_is_read_with_the_models_schema() {
        let run = RunFile::parse(SHIPPED_CONFIG, Path::new(SHIPPED_CONFIG_NAME)).unwrap();
        assert_eq!(run.inference.model.validate(), Ok(()));
        assert_eq!(
            run.data.unwrap().dir,
            PathBuf::from(data::DEFAULT_MNIST_DIR)
        );
    }

    #[test]
    fn a_runs_verdict_rule_is_read_and_checked() {
        let run = RunFile::parse(
            "[model]\n[verdict]\ndigit_at_least = 0.7\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(run.inference.verdict.digit_at_least, 0.7);
        let old = RunFile::parse("[model]\n", Path::new("c.toml")).unwrap();
        assert_eq!(old.inference.verdict, VerdictRule::default());
        for text in [
            "[model]\n[verdict]\ndigit_at_least = 7.0\n",
            "[model]\n[verdict]\ndigit_at_lest = 0.7\n",
        ] {
            let error = RunFile::parse(text, Path::new("c.toml"))
                .unwrap_err()
                .to_string();
            assert!(error.starts_with("c.toml: cannot read: "), "{error}");
        }
    }

    #[test]
    fn an_unknown_model_key_is_refused_not_defaulted() {
        let error = RunFile::parse(
            "[model]\nconv1_channel = 12\n",
            Path::new("run/config.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("run/config.toml: cannot read: "),
            "{error}"
        );
        assert!(error.contains("conv1_channel"), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn the_shipped_model_says_what_it_is_and_how_it_scored() {
        let info = ModelSource::Shipped.info().unwrap();
        assert_eq!(info.config.input_std, 0.3081);
        assert_eq!(info.test_accuracy, Some(99.25));
        assert_eq!(info.verdict.digit_at_least, 0.489);
        assert_eq!(info.label, "shipped");
        assert_eq!(
            info.sha256,
            SHIPPED_CHECKSUM.split_whitespace().next().unwrap()
        );
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tutorial.pt");
        let weights = ModelSource::Weights(fixture).info().unwrap();
        assert_eq!(
            (weights.config, weights.test_accuracy),
            (CnnConfig::new(), None)
        );
        assert_eq!(weights.label, "tutorial.pt");
        assert_eq!(weights.sha256.len(), 64);
    }

    #[test]
    fn other_sections_are_trainings_and_left_alone() {
        let text = "seed = 4\n[model]\n[optimizer]\nlearning_rate = 0.01\n[data]\ndir = 'x'\n";
        let run = RunFile::parse(text, Path::new("config.toml")).unwrap();
        assert_eq!(run.inference.model, CnnConfig::new());
        assert_eq!(run.data.unwrap().dir, PathBuf::from("x"));
    }

    #[test]
    fn an_invalid_architecture_is_named_before_the_weights_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            "[model]\nconv1_kernel = 40\n",
        )
        .unwrap();
        data::write_with_checksum(&dir.path().join("model.bpk"), SHIPPED_MODEL).unwrap();
        let error = load_run(dir.path(), &Device::flex())
            .unwrap_err()
            .to_string();
        assert!(error.contains("conv2_kernel"), "{error}");
        assert!(error.contains("does not match the network in"), "{error}");
    }
}
