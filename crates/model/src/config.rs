//! [`CnnConfig`]: the one schema of the network, as code builds it and as the `[model]`
//! section of a run's `config.toml` writes it.

use crate::{Cnn, IMAGE_SIDE, InputNorm, VerdictRule, one_line};
use burn::nn::LinearConfig;
use burn::nn::conv::Conv2dConfig;
use burn::nn::pool::MaxPool2dConfig;
use burn::prelude::*;
use burn::serde::de::Error as _;
use burn::serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

/// Architecture of [`Cnn`]. The defaults are the PyTorch tutorial's network (7,090 parameters).
#[derive(Config, Debug, PartialEq)]
pub struct CnnConfig {
    /// Output channels of the first convolution.
    #[config(default = 10)]
    pub conv1_channels: usize,
    /// Kernel side of the first convolution.
    #[config(default = 5)]
    pub conv1_kernel: usize,
    /// Output channels of the second convolution.
    #[config(default = 20)]
    pub conv2_channels: usize,
    /// Kernel side of the second convolution.
    #[config(default = 3)]
    pub conv2_kernel: usize,
    /// Number of classes the network scores.
    #[config(default = 10)]
    pub num_classes: usize,
    /// Inputs arrive as `ToTensor()` scales them, in `[0, 1]`; the network first standardises
    /// them to `(x - input_mean) / input_std`. Keeping this inside the model means training,
    /// evaluation, inference and exported weights can never disagree about it. The defaults
    /// leave inputs unchanged, as the tutorial does.
    #[config(default = 0.0)]
    pub input_mean: f64,
    /// See `input_mean`.
    #[config(default = 1.0)]
    pub input_std: f64,
}

/// The most parameters a network may have: 10⁸ (400 MB in f32), some 14,000 times the
/// tutorial's. Far beyond what the network is for, and far below what would exhaust memory
/// before a single batch.
pub const MAX_PARAMETERS: u64 = 100_000_000;

impl CnnConfig {
    /// Side of the feature maps that reach the classifier, or `None` when the kernels are too
    /// large for a 28×28 input.
    pub fn feature_side(&self) -> Option<usize> {
        let after_conv1 = (IMAGE_SIDE + 1).checked_sub(self.conv1_kernel)?;
        let after_conv2 = (after_conv1 / 2 + 1).checked_sub(self.conv2_kernel)?;
        (after_conv2 / 2 > 0).then_some(after_conv2 / 2)
    }

    /// The network's parameter count (7,090 for the tutorial's), or `None` when the kernels
    /// leave no feature map.
    pub fn parameter_count(&self) -> Option<u64> {
        let side = self.feature_side()? as u64;
        let [c1, k1, c2, k2, classes] = [
            self.conv1_channels,
            self.conv1_kernel,
            self.conv2_channels,
            self.conv2_kernel,
            self.num_classes,
        ]
        .map(|n| n as u64);
        let conv1 = c1.saturating_mul(k1 * k1).saturating_add(c1);
        let conv2 = c2
            .saturating_mul(c1)
            .saturating_mul(k2 * k2)
            .saturating_add(c2);
        let features = c2.saturating_mul(side * side);
        let classifier = features.saturating_mul(classes).saturating_add(classes);
        Some(conv1.saturating_add(conv2).saturating_add(classifier))
    }

    /// Floats one image keeps while training, as an upper estimate: the input, each block's
    /// convolution map and pooled map, the logits, and a gradient for each. `None` when the
    /// kernels leave no feature map.
    pub fn training_floats_per_image(&self) -> Option<u64> {
        self.feature_side()?;
        let conv1_side = (IMAGE_SIDE + 1 - self.conv1_kernel) as u64;
        let pooled1 = conv1_side / 2;
        let conv2_side = pooled1 + 1 - self.conv2_kernel as u64;
        let pooled2 = conv2_side / 2;
        let (c1, c2) = (self.conv1_channels as u64, self.conv2_channels as u64);
        let maps = c1
            .saturating_mul(conv1_side * conv1_side + pooled1 * pooled1)
            .saturating_add(c2.saturating_mul(conv2_side * conv2_side + pooled2 * pooled2));
        let values =
            maps.saturating_add((IMAGE_SIDE * IMAGE_SIDE) as u64 + self.num_classes as u64);
        Some(values.saturating_mul(2))
    }

    /// Builds the network with freshly initialised weights (PyTorch's default initialisation:
    /// uniform in ±1/√fan_in).
    ///
    /// # Panics
    /// When [`feature_side`](Self::feature_side) is `None`; callers validate configs first.
    pub fn init(&self, device: &Device) -> Cnn {
        let side = self
            .feature_side()
            .expect("kernel sizes leave no feature map; validate the config first");
        Cnn {
            conv1: Conv2dConfig::new([1, self.conv1_channels], [self.conv1_kernel; 2]).init(device),
            conv2: Conv2dConfig::new(
                [self.conv1_channels, self.conv2_channels],
                [self.conv2_kernel; 2],
            )
            .init(device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            classifier: LinearConfig::new(self.conv2_channels * side * side, self.num_classes)
                .init(device),
            input_norm: InputNorm {
                mean: self.input_mean,
                std: self.input_std,
            },
        }
    }

    /// Checks that the values build a network for 28×28 digits; the error names the key.
    pub fn validate(&self) -> Result<(), InvalidModelConfig> {
        let fail = |key, reason: String| Err(InvalidModelConfig { key, reason });
        for (key, value) in [
            ("conv1_channels", self.conv1_channels),
            ("conv1_kernel", self.conv1_kernel),
            ("conv2_channels", self.conv2_channels),
            ("conv2_kernel", self.conv2_kernel),
        ] {
            if value == 0 {
                return fail(key, "must be at least 1".into());
            }
        }
        if self.feature_side().is_none() {
            let (k1, k2) = (self.conv1_kernel, self.conv2_kernel);
            return fail(
                "conv2_kernel",
                format!("kernels {k1}×{k1} and {k2}×{k2} leave no feature map from a 28×28 image"),
            );
        }
        let parameters = self.parameter_count().unwrap_or(u64::MAX);
        if parameters > MAX_PARAMETERS {
            let key = if self.conv1_channels > self.conv2_channels {
                "conv1_channels"
            } else {
                "conv2_channels"
            };
            return fail(
                key,
                format!(
                    "makes a network of {parameters} parameters, more than the {MAX_PARAMETERS} \
                     this project builds (the tutorial's has 7,090)"
                ),
            );
        }
        if self.num_classes != 10 {
            return fail(
                "num_classes",
                format!("MNIST has 10 classes, got {}", self.num_classes),
            );
        }
        if !self.input_mean.is_finite() {
            return fail(
                "input_mean",
                format!("must be a number, got {}", self.input_mean),
            );
        }
        if !(self.input_std.is_finite() && self.input_std > 0.0) {
            return fail(
                "input_std",
                format!("must be a positive number, got {}", self.input_std),
            );
        }
        Ok(())
    }

    /// Reads a `[model]` table strictly, for `#[serde(deserialize_with = ...)]`: a key left out
    /// takes its default, and an unknown key or a wrong type is an error naming the key.
    ///
    /// Burn's `Config` derive reads every field as required and ignores unknown ones; a
    /// renamed key would then be lost without a word, so configs are read through this.
    pub fn deserialize_strict<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Self, D::Error> {
        let given = BTreeMap::<String, toml::Value>::deserialize(deserializer)?;
        let defaults = toml::Table::try_from(Self::new()).map_err(D::Error::custom)?;
        let mut table = defaults.clone();
        for (key, value) in given {
            if !defaults.contains_key(&key) {
                let known: Vec<&str> = defaults.keys().map(String::as_str).collect();
                return Err(D::Error::custom(format!(
                    "unknown key `{key}` (the keys are {})",
                    known.join(", ")
                )));
            }
            // One key at a time over the defaults, so a wrong type is reported with its key.
            let mut single = defaults.clone();
            single.insert(key.clone(), value.clone());
            if let Err(error) = single.try_into::<Self>() {
                return Err(D::Error::custom(format!(
                    "`{key}`: {}",
                    one_line(error.message())
                )));
            }
            table.insert(key, value);
        }
        table.try_into().map_err(D::Error::custom)
    }
}

/// A [`CnnConfig`] that cannot build a network for MNIST.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}`: {reason}")]
pub struct InvalidModelConfig {
    /// The field at fault, as named in a `[model]` section.
    pub key: &'static str,
    /// Why the value cannot be used.
    pub reason: String,
}

/// What inference reads of a run's `config.toml`, on the host and in a browser alike: the
/// network's `[model]` section, read strictly, and the `[verdict]` rule its answers are
/// judged by (runs from before rules were saved get the default). The other sections are
/// training's.
#[derive(Clone, Debug, Deserialize)]
#[serde(crate = "burn::serde")]
pub struct InferenceConfig {
    /// The network.
    #[serde(deserialize_with = "CnnConfig::deserialize_strict")]
    pub model: CnnConfig,
    /// How its answers become verdicts.
    #[serde(default)]
    pub verdict: VerdictRule,
}

impl InferenceConfig {
    /// Reads a run's `config.toml` text, checking the rule; the error is one line, without
    /// the file's name.
    pub fn parse(text: &str) -> Result<Self, String> {
        let read: Self = toml::from_str(text).map_err(|e| one_line(e.message()))?;
        read.verdict
            .check()
            .map_err(|reason| format!("`verdict`: {reason}"))?;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(crate = "burn::serde")]
    struct Section {
        #[serde(deserialize_with = "CnnConfig::deserialize_strict")]
        model: CnnConfig,
    }

    fn read(text: &str) -> Result<CnnConfig, String> {
        toml::from_str::<Section>(text)
            .map(|section| section.model)
            .map_err(|e| one_line(e.message()))
    }

    #[test]
    fn the_parameter_count_is_the_built_networks() {
        let device = burn::prelude::Device::flex();
        for config in [
            CnnConfig::new(),
            CnnConfig::new().with_conv1_channels(7).with_conv2_kernel(5),
            CnnConfig::new()
                .with_conv1_kernel(3)
                .with_conv2_channels(32),
        ] {
            let built = burn::module::Module::num_params(&config.init(&device)) as u64;
            assert_eq!(config.parameter_count(), Some(built), "{config:?}");
        }
        assert_eq!(CnnConfig::new().parameter_count(), Some(7_090));
    }

    #[test]
    fn a_network_too_large_to_build_is_refused_naming_the_key() {
        let huge = CnnConfig::new().with_conv2_channels(1_000_000_000);
        let error = huge.validate().unwrap_err();
        assert_eq!(error.key, "conv2_channels");
        assert!(error.reason.contains("parameters"), "{error}");
    }

    #[test]
    fn a_section_takes_defaults_for_the_keys_it_leaves_out() {
        assert_eq!(read("[model]\n"), Ok(CnnConfig::new()));
        let config = read("[model]\nconv1_channels = 12\ninput_std = 1\n").unwrap();
        assert_eq!(config, CnnConfig::new().with_conv1_channels(12));
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused_naming_the_key() {
        let error = read("[model]\nconv1_channel = 12\n").unwrap_err();
        assert!(error.contains("unknown key `conv1_channel`"), "{error}");
        assert!(error.contains("conv1_channels"), "{error}");
        let error = read("[model]\nconv2_kernel = 'big'\n").unwrap_err();
        assert!(error.starts_with("`conv2_kernel`: "), "{error}");
    }

    #[test]
    fn validation_names_the_key_at_fault() {
        for (config, key) in [
            (CnnConfig::new().with_conv1_channels(0), "conv1_channels"),
            (CnnConfig::new().with_conv1_kernel(40), "conv2_kernel"),
            (CnnConfig::new().with_num_classes(5), "num_classes"),
            (CnnConfig::new().with_input_std(0.0), "input_std"),
            (CnnConfig::new().with_input_mean(f64::NAN), "input_mean"),
        ] {
            assert_eq!(config.validate().unwrap_err().key, key);
        }
        assert_eq!(CnnConfig::new().validate(), Ok(()));
    }
}
