//! The TOML recipe of a run: parsed strictly, checked whole, saved with the run.
//!
//! A file may leave out any key (the tutorial's value applies); an unknown key, a wrong type
//! or a value out of range is refused with the file, the key and the reason, before any data
//! is read or any model is built.

use model::{CnnConfig, one_line};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// Everything a training run needs to know, as written in `configs/*.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Seeds weight initialisation and shuffling.
    pub seed: u64,
    /// The network, in the model crate's one schema (strict: see
    /// [`CnnConfig::deserialize_strict`]).
    #[serde(deserialize_with = "CnnConfig::deserialize_strict")]
    pub model: CnnConfig,
    /// Adam's settings and the learning-rate schedule.
    pub optimizer: OptimizerSection,
    /// Epochs and batch size.
    pub training: TrainingSection,
    /// Distortions of the training images.
    pub augmentation: AugmentationSection,
    /// Where MNIST is and how much of it to use.
    pub data: DataSection,
}

/// Adam's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizerSection {
    /// Peak learning rate (the whole run's with `constant`).
    pub learning_rate: f64,
    /// Adam's decay of its first-moment estimate.
    pub beta1: f32,
    /// Adam's decay of its second-moment estimate.
    pub beta2: f32,
    /// PyTorch's default is 1e-8 and Burn's 1e-5; the tutorial's recipe uses PyTorch's.
    pub epsilon: f32,
    /// L2 penalty added to the gradients (PyTorch's `weight_decay`); 0 turns it off.
    pub weight_decay: f32,
    /// How the learning rate moves over the run, stepped once per batch.
    pub schedule: Schedule,
    /// `one-cycle`: the share of all steps spent warming up linearly to `learning_rate`.
    pub warmup_fraction: f64,
    /// Where `cosine` and `one-cycle` end, as a fraction of `learning_rate`.
    pub final_lr_fraction: f64,
}

/// The learning-rate schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// `learning_rate` throughout, as the tutorial does.
    Constant,
    /// Cosine decay from `learning_rate` to `learning_rate × final_lr_fraction`.
    Cosine,
    /// Linear warm-up from `learning_rate / 25` to `learning_rate` over `warmup_fraction` of
    /// the steps, then cosine decay (PyTorch's `OneCycleLR` shape).
    OneCycle,
}

/// Random, seeded distortions of the training images (never of evaluation images): each
/// image gets its own rotation, scale and shift, drawn uniformly from ± these bounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentationSection {
    /// Largest rotation either way, in degrees.
    pub rotation_degrees: f32,
    /// Relative: 0.1 draws scales from 0.9 to 1.1.
    pub scale: f32,
    /// Largest shift along each axis, in pixels.
    pub shift_pixels: f32,
    /// Largest displacement of a smooth elastic warp, in pixels (see
    /// [`data::Augmentation::elastic_pixels`]).
    pub elastic_pixels: f32,
}

/// How long and in what steps to train.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingSection {
    /// Passes over the training images.
    pub epochs: usize,
    /// Images per optimizer step.
    pub batch_size: usize,
    /// Take each step's gradient over only this share of its batch: the images with the
    /// largest loss ("selective backprop", Jiang et al. 2019). The others cost only their
    /// forward pass; 1 takes every image.
    pub backprop_fraction: f32,
}

/// Where MNIST is, how much of it to use, and whether to hold out a validation split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataSection {
    /// Where the four MNIST files are, relative to the working directory.
    pub dir: PathBuf,
    /// Train on the first N training images only (all 60,000 when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
    /// Evaluate on the first N test images only (all 10,000 when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_limit: Option<usize>,
    /// Hold out N training images (chosen by `seed`) to validate on after each epoch; the test
    /// set is then scored only once, at the end. Absent: the tutorial's way, the test set after
    /// every epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_images: Option<usize>,
}

impl Default for RunConfig {
    /// The PyTorch tutorial's recipe.
    fn default() -> Self {
        Self {
            seed: 3,
            model: CnnConfig::new(),
            optimizer: OptimizerSection::default(),
            training: TrainingSection::default(),
            augmentation: AugmentationSection::default(),
            data: DataSection::default(),
        }
    }
}

impl Default for OptimizerSection {
    fn default() -> Self {
        Self {
            learning_rate: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
            schedule: Schedule::Constant,
            warmup_fraction: 0.3,
            final_lr_fraction: 0.0,
        }
    }
}

impl Default for AugmentationSection {
    /// None: the tutorial trains on the images as they are.
    fn default() -> Self {
        Self {
            rotation_degrees: 0.0,
            scale: 0.0,
            shift_pixels: 0.0,
            elastic_pixels: 0.0,
        }
    }
}

impl Default for TrainingSection {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 128,
            backprop_fraction: 1.0,
        }
    }
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("data/mnist"),
            train_limit: None,
            test_limit: None,
            validation_images: None,
        }
    }
}

/// A config that cannot be used, located as precisely as possible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file, or a description of where the value came from (e.g. a command-line flag).
    pub origin: String,
    /// Dotted key, e.g. `optimizer.learning_rate`; empty when the file as a whole is at fault.
    pub key: String,
    /// Why the value cannot be used.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.origin, self.reason)
        } else {
            write!(f, "{}: `{}`: {}", self.origin, self.key, self.reason)
        }
    }
}

impl RunConfig {
    /// Reads, parses and validates a config file. A file may start from another with
    /// `extends = "other.toml"` (relative to its own folder): the other file's values, with
    /// this file's written over them, key by key.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let table = read_table(path, 0)?;
        let text = toml::to_string(&table).expect("a TOML table serialises");
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates TOML text; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Self, ConfigError> {
        let deserializer = toml::Deserializer::parse(text).map_err(|e| ConfigError {
            origin: source.to_string(),
            key: String::new(),
            reason: syntax_error(text, &e),
        })?;
        let config: RunConfig =
            serde_path_to_error::deserialize(deserializer).map_err(|e| ConfigError {
                origin: source.to_string(),
                key: key_of(e.path()),
                reason: one_line(e.inner().message()),
            })?;
        config.validate(source)?;
        Ok(config)
    }

    /// Checks every value's range; `source` names where they came from in errors.
    pub fn validate(&self, source: &str) -> Result<(), ConfigError> {
        self.check().map_err(|(key, reason)| ConfigError {
            origin: source.to_string(),
            key,
            reason,
        })
    }

    fn check(&self) -> Result<(), Invalid> {
        self.model
            .validate()
            .map_err(|invalid| (format!("model.{}", invalid.key), invalid.reason))?;
        self.optimizer.check()?;
        self.augmentation.check()?;
        self.training.check()?;
        self.data.check()?;
        self.fits_in_memory(available_memory())
    }

    /// Refuses a batch whose working set cannot fit in `available` bytes, before anything is
    /// allocated: an absurd `training.batch_size` would otherwise abort the process on a
    /// failed allocation. Estimated from the network's shapes, in f32: each image's
    /// activations and their gradients, and the weights with their gradients and Adam's two
    /// moments.
    fn fits_in_memory(&self, available: Option<u64>) -> Result<(), Invalid> {
        let Some(available) = available else {
            return Ok(());
        };
        let floats_per_image = self.model.training_floats_per_image().unwrap_or(0);
        let parameters = self.model.parameter_count().unwrap_or(0);
        // A network too large for even one image is the model's fault, not the batch's.
        let one_image = floats_per_image
            .saturating_add(parameters.saturating_mul(4))
            .saturating_mul(4);
        if one_image > available {
            return invalid(
                "model",
                format!(
                    "a network with {} and {} channels would need about {} MiB to train on a \
                     single image, more than the {} MiB of memory available",
                    self.model.conv1_channels,
                    self.model.conv2_channels,
                    one_image >> 20,
                    available >> 20
                ),
            );
        }
        let bytes = (self.training.batch_size as u64)
            .saturating_mul(floats_per_image)
            .saturating_add(parameters.saturating_mul(4))
            .saturating_mul(4);
        if bytes <= available {
            return Ok(());
        }
        invalid(
            "training.batch_size",
            format!(
                "{} images a batch of a network with {} and {} channels would need about {} MiB, \
                 more than the {} MiB of memory available; use a smaller batch or fewer \
                 channels",
                self.training.batch_size,
                self.model.conv1_channels,
                self.model.conv2_channels,
                bytes >> 20,
                available >> 20
            ),
        )
    }

    /// Applies `KEY=VALUE` settings (dotted keys, TOML values; bare words are strings) over
    /// this config, each checked like a file's value and named as `--set KEY=VALUE` in errors.
    pub fn with_overrides(self, overrides: &[String]) -> Result<Self, ConfigError> {
        let mut config = self;
        for setting in overrides {
            let origin = format!("--set {setting}");
            let fail = |key: &str, reason: String| ConfigError {
                origin: origin.clone(),
                key: key.to_string(),
                reason,
            };
            let Some((key, value)) = setting.split_once('=') else {
                return Err(fail("", "expected KEY=VALUE".into()));
            };
            if setting.contains(['\n', '\r']) {
                return Err(fail(
                    key.trim(),
                    "one value per --set: no line breaks".into(),
                ));
            }
            let key = key.trim();
            let raw = value.trim();
            let parsed = toml::from_str::<toml::Table>(&format!("v = {raw}"))
                .ok()
                .and_then(|mut t| t.remove("v"));
            let value = match parsed {
                Some(value) => value,
                // TOML refuses a float it cannot hold; Rust reads it as infinity.
                None if raw.parse::<f64>().is_ok_and(|v| v.is_infinite()) => {
                    return Err(fail(key, format!("{raw} is too large a number")));
                }
                None => toml::Value::String(raw.to_string()),
            };
            let mut table = toml::Table::try_from(&config).expect("a RunConfig always serialises");
            let mut parts: Vec<&str> = key.split('.').collect();
            let last = parts.pop().unwrap_or_default();
            let mut slot = &mut table;
            let section = key.rsplit_once('.').map_or("", |(section, _)| section);
            for part in parts {
                let sections = slot.iter().filter(|(_, v)| v.is_table()).map(|(k, _)| k);
                let hint = did_you_mean(part, sections, "");
                slot = match slot.get_mut(part) {
                    Some(toml::Value::Table(inner)) => inner,
                    _ => return Err(fail(key, format!("no such section{hint}"))),
                };
            }
            let optional = ["train_limit", "test_limit", "validation_images"];
            if !slot.contains_key(last) && !optional.contains(&last) {
                let mut keys: Vec<String> = slot.keys().cloned().collect();
                keys.extend(optional.map(String::from));
                let hint = did_you_mean(last, keys.iter(), section);
                return Err(fail(key, format!("unknown key{hint}")));
            }
            slot.insert(last.to_string(), value);
            config = Self::parse(
                &toml::to_string(&table).expect("a table serialises"),
                &origin,
            )?;
        }
        Ok(config)
    }

    /// The resolved config, every key written out, as saved beside a run's model.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a RunConfig always serialises")
    }
}

impl Schedule {
    /// The name a config file gives it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Constant => "constant",
            Self::Cosine => "cosine",
            Self::OneCycle => "one-cycle",
        }
    }
}

impl AugmentationSection {
    /// The data crate's augmentation, or `None` when every bound is zero.
    pub fn augmentation(&self) -> Option<data::Augmentation> {
        let augmentation = data::Augmentation {
            rotation_degrees: self.rotation_degrees,
            scale: self.scale,
            shift_pixels: self.shift_pixels,
            elastic_pixels: self.elastic_pixels,
        };
        (!augmentation.is_identity()).then_some(augmentation)
    }
}

/// How many files one `extends` chain may hold: enough for any real layering, and a cycle
/// ends here instead of looping.
const MAX_EXTENDS: usize = 4;

/// `path`'s TOML table with what it `extends` resolved: the base's keys, this file's over
/// them. Syntax errors are reported here, with the file and line they are on.
fn read_table(path: &Path, depth: usize) -> Result<toml::Table, ConfigError> {
    let origin = path.display().to_string();
    let fail = |key: &str, reason: String| ConfigError {
        origin: origin.clone(),
        key: key.into(),
        reason,
    };
    let text = data::read_text_bounded(path, data::MAX_TEXT_FILE_BYTES)
        .map_err(|e| fail("", format!("cannot read: {e}")))?;
    let mut table: toml::Table =
        toml::from_str(&text).map_err(|e| fail("", syntax_error(&text, &e)))?;
    let Some(base) = table.remove("extends") else {
        return Ok(table);
    };
    let Some(base) = base.as_str() else {
        return Err(fail("extends", "must be a file name in quotes".into()));
    };
    if depth + 1 >= MAX_EXTENDS {
        return Err(fail(
            "extends",
            format!("more than {MAX_EXTENDS} files extend each other (a cycle?)"),
        ));
    }
    let base_path = path.parent().unwrap_or(Path::new(".")).join(base);
    let mut merged = read_table(&base_path, depth + 1)?;
    merge(&mut merged, table);
    Ok(merged)
}

/// Writes `over`'s keys into `base`, descending into tables present in both.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(value)) => merge(inner, value),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Memory the system can give this process now (`MemAvailable` in `/proc/meminfo`), or `None`
/// where that is not known.
fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// A value out of range: its dotted key and why.
type Invalid = (String, String);

fn invalid(key: &str, reason: String) -> Result<(), Invalid> {
    Err((key.to_string(), reason))
}

impl OptimizerSection {
    fn check(&self) -> Result<(), Invalid> {
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return invalid(
                "optimizer.learning_rate",
                format!("must be a positive number, got {}", self.learning_rate),
            );
        }
        for (key, value) in [
            ("optimizer.beta1", self.beta1),
            ("optimizer.beta2", self.beta2),
        ] {
            if !(0.0..1.0).contains(&value) {
                return invalid(key, format!("must be in [0, 1), got {value}"));
            }
        }
        // A smaller value, such as 1e-50, becomes 0 as a 32-bit float.
        if !(self.epsilon.is_finite() && self.epsilon >= f32::MIN_POSITIVE) {
            return invalid(
                "optimizer.epsilon",
                format!(
                    "must be positive and at least {:e} (the smallest normal 32-bit float; \
                     smaller values become 0), got {}",
                    f32::MIN_POSITIVE,
                    self.epsilon
                ),
            );
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return invalid(
                "optimizer.weight_decay",
                format!("must be zero or positive, got {}", self.weight_decay),
            );
        }
        self.check_schedule()
    }

    fn check_schedule(&self) -> Result<(), Invalid> {
        if !(0.0..1.0).contains(&self.warmup_fraction) {
            return invalid(
                "optimizer.warmup_fraction",
                format!("must be in [0, 1), got {}", self.warmup_fraction),
            );
        }
        if !(0.0..=1.0).contains(&self.final_lr_fraction) {
            return invalid(
                "optimizer.final_lr_fraction",
                format!("must be in [0, 1], got {}", self.final_lr_fraction),
            );
        }
        if self.schedule != Schedule::Constant && self.learning_rate > 1.0 {
            return invalid(
                "optimizer.learning_rate",
                format!(
                    "must be at most 1 with a `{}` schedule, got {}",
                    self.schedule.name(),
                    self.learning_rate
                ),
            );
        }
        Ok(())
    }
}

impl AugmentationSection {
    fn check(&self) -> Result<(), Invalid> {
        for (key, value, max) in [
            ("augmentation.rotation_degrees", self.rotation_degrees, 90.0),
            ("augmentation.scale", self.scale, 0.5),
            ("augmentation.shift_pixels", self.shift_pixels, 8.0),
            ("augmentation.elastic_pixels", self.elastic_pixels, 4.0),
        ] {
            if !(0.0..=max).contains(&value) {
                return invalid(key, format!("must be in [0, {max}], got {value}"));
            }
        }
        Ok(())
    }
}

/// Most epochs a run may ask for: far past any use, and small enough that every count
/// derived from it (steps, schedule positions) fits.
pub const MAX_EPOCHS: usize = 100_000;

impl TrainingSection {
    fn check(&self) -> Result<(), Invalid> {
        if !(1..=MAX_EPOCHS).contains(&self.epochs) {
            return invalid(
                "training.epochs",
                format!("must be from 1 to {MAX_EPOCHS}, not {}", self.epochs),
            );
        }
        if self.batch_size == 0 {
            return invalid("training.batch_size", "must be at least 1".into());
        }
        if !(self.backprop_fraction > 0.0 && self.backprop_fraction <= 1.0) {
            return invalid(
                "training.backprop_fraction",
                format!("must be in (0, 1], not {}", self.backprop_fraction),
            );
        }
        Ok(())
    }
}

impl DataSection {
    fn check(&self) -> Result<(), Invalid> {
        for (key, limit) in [
            ("data.train_limit", self.train_limit),
            ("data.test_limit", self.test_limit),
            ("data.validation_images", self.validation_images),
        ] {
            if limit == Some(0) {
                return invalid(key, "must be at least 1 when set".into());
            }
        }
        if let Some(held) = self.validation_images {
            let training = self.train_limit.unwrap_or(60_000).min(60_000);
            if held >= training {
                return invalid(
                    "data.validation_images",
                    format!("must leave training images: {held} of {training} held out"),
                );
            }
        }
        Ok(())
    }
}

/// `; did you mean `SECTION.NAME`?` for the candidate closest to a mistyped `word`, when one
/// is close enough to be a typo (a third of its letters at most).
fn did_you_mean<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a String>,
    section: &str,
) -> String {
    let dotted = |name: &str| match section {
        "" => name.to_string(),
        section => format!("{section}.{name}"),
    };
    candidates
        .map(|candidate| (strsim::damerau_levenshtein(word, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).max(1))
        .min()
        .map(|(_, candidate)| format!("; did you mean `{}`?", dotted(candidate)))
        .unwrap_or_default()
}

fn key_of(path: &serde_path_to_error::Path) -> String {
    path.to_string()
        .trim_start_matches('.')
        .trim_end_matches('?')
        .to_string()
}

/// A TOML syntax error in `text` as `line N: what`, on one line.
fn syntax_error(text: &str, error: &toml::de::Error) -> String {
    let offset = error.span().map_or(0, |span| span.start.min(text.len()));
    let line = 1 + text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    format!("line {line}: {}", one_line(error.message()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> ConfigError {
        RunConfig::parse(text, "test.toml").unwrap_err()
    }

    #[test]
    fn a_batch_too_large_for_memory_is_refused_before_any_allocation() {
        let config = RunConfig::default();
        let gib = 1u64 << 30;
        assert_eq!(config.fits_in_memory(Some(gib)), Ok(()));
        assert_eq!(config.fits_in_memory(None), Ok(()));
        let mut absurd = config.clone();
        absurd.training.batch_size = 100_000_000;
        let (key, reason) = absurd.fits_in_memory(Some(64 * gib)).unwrap_err();
        assert_eq!(key, "training.batch_size");
        assert!(
            reason.contains("MiB") && reason.contains("10 and 20 channels"),
            "{reason}"
        );
        // A network too wide for one image is blamed on the model, not the batch.
        let mut wide = config.clone();
        wide.model.conv1_channels = 400_000;
        let (key, reason) = wide.fits_in_memory(Some(gib)).unwrap_err();
        assert_eq!(key, "model", "{reason}");
        // Through the config's own checks, on this machine: no machine holds terabytes.
        let err =
            RunConfig::parse("[training]\nbatch_size = 1000000000\n", "huge.toml").unwrap_err();
        assert_eq!(err.key, "training.batch_size", "{err}");
    }

    #[test]
    fn empty_file_is_the_tutorial_recipe() {
        let config = RunConfig::parse("", "empty.toml").unwrap();
        assert_eq!(config, RunConfig::default());
        assert_eq!(config.training.batch_size, 128);
        assert_eq!(config.optimizer.learning_rate, 1e-3);
        assert_eq!(config.seed, 3);
    }

    #[test]
    fn missing_keys_take_defaults() {
        let config = RunConfig::parse("[training]\nepochs = 2\n", "t.toml").unwrap();
        assert_eq!(config.training.epochs, 2);
        assert_eq!(config.training.batch_size, 128);
    }

    #[test]
    fn unknown_keys_are_refused_with_their_path() {
        let err = parse_err("[training]\nepoch = 2\n");
        assert_eq!(err.origin, "test.toml");
        assert!(err.key.contains("training"), "{err}");
        assert!(err.reason.contains("epoch"), "{err}");
        let err = parse_err("colour = 'red'\n");
        assert!(err.reason.contains("colour"), "{err}");
    }

    #[test]
    fn the_model_section_is_read_strictly_with_the_models_schema() {
        let err = parse_err("[model]\nconv1_channel = 12\n");
        assert_eq!(err.key, "model", "{err}");
        assert!(err.reason.contains("unknown key `conv1_channel`"), "{err}");
        let config = RunConfig::parse("[model]\nconv1_channels = 12\n", "t.toml").unwrap();
        assert_eq!(config.model, CnnConfig::new().with_conv1_channels(12));
    }

    #[test]
    fn wrong_types_are_refused_with_their_key() {
        let err = parse_err("[optimizer]\nlearning_rate = 'fast'\n");
        assert_eq!(err.key, "optimizer.learning_rate", "{err}");
        let err = parse_err("[training]\nbatch_size = -4\n");
        assert_eq!(err.key, "training.batch_size", "{err}");
    }

    #[test]
    fn bad_values_are_refused_with_their_key() {
        for (text, key) in [
            ("[training]\nbatch_size = 0", "training.batch_size"),
            ("[training]\nepochs = 0", "training.epochs"),
            ("[training]\nepochs = 100001", "training.epochs"),
            (
                "[optimizer]\nlearning_rate = -0.1",
                "optimizer.learning_rate",
            ),
            (
                "[optimizer]\nlearning_rate = 0.0",
                "optimizer.learning_rate",
            ),
            ("[optimizer]\nbeta2 = 1.0", "optimizer.beta2"),
            ("[optimizer]\nepsilon = 0.0", "optimizer.epsilon"),
            ("[model]\nconv1_kernel = 40", "model.conv2_kernel"),
            ("[model]\nconv2_channels = 0", "model.conv2_channels"),
            ("[model]\nnum_classes = 5", "model.num_classes"),
            ("[data]\ntrain_limit = 0", "data.train_limit"),
            ("[model]\ninput_std = 0.0", "model.input_std"),
            ("[optimizer]\nschedule = 'linear'", "optimizer.schedule"),
            (
                "[optimizer]\nwarmup_fraction = 1.0",
                "optimizer.warmup_fraction",
            ),
            (
                "[augmentation]\nrotation_degrees = -5",
                "augmentation.rotation_degrees",
            ),
            (
                "[data]\ntrain_limit = 500\nvalidation_images = 500",
                "data.validation_images",
            ),
            (
                "[training]\nbackprop_fraction = 0.0",
                "training.backprop_fraction",
            ),
            (
                "[training]\nbackprop_fraction = 1.5",
                "training.backprop_fraction",
            ),
        ] {
            let err = parse_err(text);
            assert_eq!(err.key, key, "{text}: {err}");
            let line = err.to_string();
            assert!(line.starts_with("test.toml: "), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn broken_toml_is_one_line_naming_the_file() {
        let err = parse_err("seed = 1\n[training\nepochs = 2");
        let line = err.to_string();
        assert!(line.starts_with("test.toml: line 2: "), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }

    #[test]
    fn overrides_are_applied_and_checked() {
        let set = |s: &[&str]| {
            RunConfig::default()
                .with_overrides(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        let config = set(&[
            "optimizer.learning_rate=0.01",
            "training.epochs = 3",
            "data.train_limit=500",
        ])
        .unwrap();
        assert_eq!(config.optimizer.learning_rate, 0.01);
        assert_eq!(config.training.epochs, 3);
        assert_eq!(config.data.train_limit, Some(500));
        assert_eq!(config.data.dir, RunConfig::default().data.dir);

        let err = set(&["training.batch_size=0"]).unwrap_err();
        assert_eq!(err.origin, "--set training.batch_size=0");
        assert_eq!(err.key, "training.batch_size");
        let err = set(&["optimizer.lr=0.01"]).unwrap_err();
        assert_eq!(err.key, "optimizer.lr", "{err}");
        let err = set(&["optimiser.learning_rate=0.01"]).unwrap_err();
        assert!(err.reason.contains("no such section"), "{err}");
        let err = set(&["training.epochs=many"]).unwrap_err();
        assert_eq!(err.key, "training.epochs", "{err}");
        assert!(set(&["epochs"]).unwrap_err().reason.contains("KEY=VALUE"));
    }

    #[test]
    fn a_mistyped_override_gets_the_nearest_key() {
        let set = |s: &str| RunConfig::default().with_overrides(&[s.to_string()]);
        let reason = |s: &str| set(s).unwrap_err().reason;
        assert_eq!(
            reason("optimizer.learning_rat=0.01"),
            "unknown key; did you mean `optimizer.learning_rate`?"
        );
        assert_eq!(
            reason("optimiser.learning_rate=0.01"),
            "no such section; did you mean `optimizer`?"
        );
        assert_eq!(reason("sed=4"), "unknown key; did you mean `seed`?");
        assert_eq!(reason("optimizer.zzz=1"), "unknown key");
        assert_eq!(
            reason("optimizer.learning_rate=1e309"),
            "1e309 is too large a number"
        );
        assert!(reason("optimizer.epsilon=1e-50").contains("smallest normal 32-bit float"));
        // A value that smuggles in more TOML is refused whole, not half-applied.
        let err = set("seed=5\n[optimizer]\nlearning_rate=5").unwrap_err();
        assert!(err.reason.contains("line breaks"), "{err}");
    }

    #[test]
    fn resolved_config_round_trips() {
        let mut config = RunConfig::default();
        config.data.train_limit = Some(100);
        let again = RunConfig::parse(&config.to_toml(), "saved.toml").unwrap();
        assert_eq!(again, config);
    }

    #[test]
    fn a_config_extends_another_key_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write(
            "base.toml",
            "seed = 7\n[optimizer]\nlearning_rate = 0.01\nbeta2 = 0.99\n",
        );
        write(
            "child.toml",
            "extends = \"base.toml\"\n[optimizer]\nlearning_rate = 0.02\n",
        );
        let child = RunConfig::load(&dir.path().join("child.toml")).unwrap();
        assert_eq!(child.seed, 7);
        assert_eq!(child.optimizer.learning_rate, 0.02);
        assert_eq!(child.optimizer.beta2, 0.99);

        write("loop.toml", "extends = \"loop.toml\"\n");
        let err = RunConfig::load(&dir.path().join("loop.toml")).unwrap_err();
        assert_eq!(err.key, "extends", "{err}");
        write("broken.toml", "extends = \"missing.toml\"\n");
        let err = RunConfig::load(&dir.path().join("broken.toml")).unwrap_err();
        assert!(err.origin.ends_with("missing.toml"), "{err}");
        write(
            "bad.toml",
            "extends = \"base.toml\"\n[optimizer]\nlearning_rate = -1\n",
        );
        let err = RunConfig::load(&dir.path().join("bad.toml")).unwrap_err();
        assert!(err.origin.ends_with("bad.toml"), "{err}");
        assert_eq!(err.key, "optimizer.learning_rate", "{err}");
    }

    #[test]
    fn shipped_configs_are_valid() {
        let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        for name in ["default.toml", "tutorial.toml", "smoke.toml", "fast.toml"] {
            RunConfig::load(&configs.join(name)).unwrap();
        }
    }
}
