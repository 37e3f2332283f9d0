//! The TOML recipe of a run: its schema, read strictly and checked whole, and saved with the
//! run.
//!
//! A file may leave out any key (the tutorial's value applies); an unknown key, a wrong type
//! or a value out of range is refused with the file, the key and the reason, before any data
//! is read or any model is built. Reading is pure: it depends on the text, never on the
//! machine it runs on.

mod checks;
mod load;
mod overrides;

pub use checks::MAX_EPOCHS;
use data::Augmentation;
use model::{CnnConfig, VerdictRule};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

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
    /// Random, seeded distortions of the training images (never of evaluation images).
    pub augmentation: Augmentation,
    /// Where MNIST is and how much of it to use.
    pub data: DataSection,
    /// Images of no digit shown in training, so the network learns to answer "none".
    pub outliers: OutliersSection,
    /// How the trained model's answers become verdicts (saved with it, read by inference).
    pub verdict: VerdictRule,
}

/// Outlier Exposure (Hendrycks, Mazeika and Dietterich, ICLR 2019): each training batch also
/// holds images of no digit, and the loss pulls the network's answer for them toward the
/// uniform distribution, no digit more likely than another. The network stays the same; what
/// changes is that its top probability now tells a digit from anything else.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutliersSection {
    /// Non-digit images added to each batch (0: none, the tutorial's way).
    pub per_batch: usize,
    /// The weight of their pull toward uniform, against the digits' cross-entropy.
    pub weight: f32,
    /// Letters and symbols typed in this font, in three weights, are among them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub font: Option<PathBuf>,
    /// This many random scribbles (tangles, dots, blobs, hatching…) are among them.
    pub scribbles: usize,
    /// Fashion-MNIST's training images, read from this folder, are among them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fashion_mnist: Option<PathBuf>,
}

impl Default for OutliersSection {
    fn default() -> Self {
        Self {
            per_batch: 0,
            weight: 0.5,
            font: None,
            scribbles: 0,
            fashion_mnist: None,
        }
    }
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
            augmentation: Augmentation::default(),
            data: DataSection::default(),
            outliers: OutliersSection::default(),
            verdict: VerdictRule::default(),
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
            dir: PathBuf::from(data::DEFAULT_MNIST_DIR),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

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
    fn resolved_config_round_trips() {
        let mut config = RunConfig::default();
        config.data.train_limit = Some(100);
        let again = RunConfig::parse(&config.to_toml(), "saved.toml").unwrap();
        assert_eq!(again, config);
    }

    #[test]
    fn the_built_in_default_is_configs_tutorial_toml() {
        let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let tutorial = RunConfig::load(&configs.join("tutorial.toml")).unwrap();
        assert_eq!(tutorial, RunConfig::default());
    }

    #[test]
    fn shipped_configs_are_valid() {
        let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        for name in ["default.toml", "tutorial.toml", "smoke.toml", "fast.toml"] {
            RunConfig::load(&configs.join(name)).unwrap();
        }
    }
}
