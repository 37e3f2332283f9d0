//! The range of every value in a recipe, checked once the whole recipe is read.

use super::{
    ConfigError, DataSection, OptimizerSection, OutliersSection, RunConfig, Schedule,
    TrainingSection,
};
use data::Augmentation;

impl RunConfig {
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
        check_augmentation(&self.augmentation)?;
        self.training.check()?;
        self.data.check()?;
        self.outliers.check()?;
        self.verdict
            .check()
            .map_err(|reason| ("verdict".to_string(), reason))?;
        Ok(())
    }
}

/// The most outliers a batch may carry, and the most scribbles drawn: far beyond what helps,
/// and small enough that a typo cannot exhaust memory.
const MAX_OUTLIERS_PER_BATCH: usize = 4096;
const MAX_SCRIBBLES: usize = 200_000;

impl OutliersSection {
    fn check(&self) -> Result<(), Invalid> {
        if self.per_batch > MAX_OUTLIERS_PER_BATCH {
            return invalid(
                "outliers.per_batch",
                format!(
                    "must be at most {MAX_OUTLIERS_PER_BATCH}, got {}",
                    self.per_batch
                ),
            );
        }
        if self.scribbles > MAX_SCRIBBLES {
            return invalid(
                "outliers.scribbles",
                format!("must be at most {MAX_SCRIBBLES}, got {}", self.scribbles),
            );
        }
        if !(self.weight.is_finite() && (0.0..=100.0).contains(&self.weight)) {
            return invalid(
                "outliers.weight",
                format!("must be from 0 to 100, got {}", self.weight),
            );
        }
        let sources = self.font.is_some() || self.scribbles > 0 || self.fashion_mnist.is_some();
        if self.per_batch > 0 && !sources {
            return invalid(
                "outliers.per_batch",
                "needs somewhere to draw outliers from: set `font`, `scribbles` or \
                 `fashion_mnist`"
                    .into(),
            );
        }
        Ok(())
    }
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

/// Each bound's largest value: beyond it the distortions no longer look like handwriting.
fn check_augmentation(augmentation: &Augmentation) -> Result<(), Invalid> {
    for (key, value, max) in [
        (
            "augmentation.rotation_degrees",
            augmentation.rotation_degrees,
            90.0,
        ),
        ("augmentation.scale", augmentation.scale, 0.5),
        ("augmentation.shift_pixels", augmentation.shift_pixels, 8.0),
        (
            "augmentation.elastic_pixels",
            augmentation.elastic_pixels,
            4.0,
        ),
    ] {
        if !(0.0..=max).contains(&value) {
            return invalid(key, format!("must be in [0, {max}], got {value}"));
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> ConfigError {
        RunConfig::parse(text, "test.toml").unwrap_err()
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
            ("[outliers]\nper_batch = 64", "outliers.per_batch"),
            (
                "[outliers]\nper_batch = 5000\nscribbles = 10",
                "outliers.per_batch",
            ),
            ("[outliers]\nscribbles = 1000000", "outliers.scribbles"),
            ("[outliers]\nweight = -1.0", "outliers.weight"),
            ("[verdict]\ndigit_at_least = 1.5", "verdict"),
        ] {
            let err = parse_err(text);
            assert_eq!(err.key, key, "{text}: {err}");
            let line = err.to_string();
            assert!(line.starts_with("test.toml: "), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
    }
}
