//! What the network's output means: the one place its probabilities become a digit and a
//! verdict, for the host's files, test sets and training's final score, and for the browser
//! alike.

use burn::prelude::*;
use burn::serde::{Deserialize, Serialize};

/// A digit, how sure the network is of each class, and what that makes of the image.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The most likely class.
    pub digit: usize,
    /// Softmax of the logits, one per class.
    pub probabilities: Vec<f32>,
    /// Whether the image reads as that digit, as two digits, or as no digit at all.
    pub verdict: Verdict,
}

/// What an image is, by its probabilities and a model's [`VerdictRule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(crate = "burn::serde", rename_all = "kebab-case")]
pub enum Verdict {
    /// The top digit is sure enough.
    Digit,
    /// Two digits share what one alone should hold: "4 or 9?".
    Unsure,
    /// No digit, nor any two, is likely: a letter, a symbol, a scribble.
    NotADigit,
}

/// How a model's probabilities become a [`Verdict`]; saved with each training run as its
/// `config.toml`'s `[verdict]` section, since the thresholds belong to the model they were
/// chosen for.
///
/// With `p1` and `p2` the two largest probabilities: `digit` when `p1 ≥ digit_at_least`;
/// otherwise `unsure` when `p1 + p2 ≥ two_digits_at_least` (two digits hold what one
/// should); otherwise `not-a-digit`. A network trained with outliers spreads its
/// probabilities over all ten digits for anything else.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(crate = "burn::serde", default, deny_unknown_fields)]
pub struct VerdictRule {
    /// The top probability an image needs to be called a digit, in `[0, 1]` (0: every image
    /// is a digit). Chosen on validation digits, to keep nearly all of them.
    pub digit_at_least: f64,
    /// What the two likeliest digits need together, short of that, for `unsure` rather than
    /// `not-a-digit`, in `[0, 1]`.
    pub two_digits_at_least: f64,
}

impl Default for VerdictRule {
    /// For models that come with no rule (runs from before rules were saved, PyTorch
    /// weights): about what the default recipe chose on its validation split (0.489, see
    /// `docs/experiments.md`).
    fn default() -> Self {
        Self {
            digit_at_least: 0.5,
            two_digits_at_least: 0.75,
        }
    }
}

impl VerdictRule {
    /// A rule that calls every image a digit (the network's answer, unjudged).
    pub const ALWAYS_DIGIT: Self = Self {
        digit_at_least: 0.0,
        two_digits_at_least: 0.0,
    };

    /// Why the rule cannot be used, if it cannot: which threshold is not a probability.
    pub fn check(&self) -> Result<(), String> {
        for (name, value) in [
            ("digit_at_least", self.digit_at_least),
            ("two_digits_at_least", self.two_digits_at_least),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(format!(
                    "`{name}` is {value}; it is a probability, from 0 to 1"
                ));
            }
        }
        Ok(())
    }

    /// The verdict for one image's probabilities.
    pub fn judge(&self, probabilities: &[f32]) -> Verdict {
        let (mut first, mut second) = (0.0f32, 0.0f32);
        for &p in probabilities {
            if p > first {
                (first, second) = (p, first);
            } else if p > second {
                second = p;
            }
        }
        if f64::from(first) >= self.digit_at_least {
            Verdict::Digit
        } else if f64::from(first + second) >= self.two_digits_at_least {
            Verdict::Unsure
        } else {
            Verdict::NotADigit
        }
    }
}

/// Why the network's output could not be turned into predictions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClassifyError {
    /// The output tensor could not be read back from the device.
    #[error("the network's output could not be read: {0}")]
    Unreadable(String),
    /// The output does not have one row per image.
    #[error("the network gave {values} values for {images} images")]
    Shape {
        /// Probabilities returned.
        values: usize,
        /// Images given.
        images: usize,
    },
    /// A probability is NaN or infinite.
    #[error("the network's output is not a number (are its weights NaN or infinite?)")]
    NotFinite,
}

impl Prediction {
    /// The probability of the predicted digit.
    pub fn confidence(&self) -> f32 {
        self.probabilities[self.digit]
    }

    /// `(digit, probability)` from the most to the least likely.
    pub fn ranked(&self) -> Vec<(usize, f32)> {
        let mut ranked: Vec<_> = self.probabilities.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked
    }

    /// The second most likely digit and its probability: the other half of an `unsure`.
    pub fn runner_up(&self) -> Option<(usize, f32)> {
        self.ranked().get(1).copied()
    }

    /// One prediction per row of `probabilities` (`[images, classes]`, e.g. from
    /// [`Cnn::probabilities`](crate::Cnn::probabilities)), judged by `rule`.
    pub fn from_probabilities(
        probabilities: Tensor<2>,
        rule: &VerdictRule,
    ) -> Result<Vec<Self>, ClassifyError> {
        let [images, _] = probabilities.dims();
        let values = probabilities
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| ClassifyError::Unreadable(format!("{e:?}")))?;
        predictions_from(&values, images, rule)
    }
}

/// Splits a batch's probabilities, `[images × classes]` in row order, into one prediction
/// per image.
fn predictions_from(
    probabilities: &[f32],
    images: usize,
    rule: &VerdictRule,
) -> Result<Vec<Prediction>, ClassifyError> {
    if images == 0 {
        return Ok(Vec::new());
    }
    let shape_error = ClassifyError::Shape {
        values: probabilities.len(),
        images,
    };
    if probabilities.is_empty() || !probabilities.len().is_multiple_of(images) {
        return Err(shape_error);
    }
    if probabilities.iter().any(|p| !p.is_finite()) {
        return Err(ClassifyError::NotFinite);
    }
    let classes = probabilities.len() / images;
    Ok(probabilities
        .chunks_exact(classes)
        .map(|p| Prediction {
            digit: argmax(p),
            probabilities: p.to_vec(),
            verdict: rule.judge(p),
        })
        .collect())
}

fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// Six decimals are plenty for a probability and keep JSON lines readable.
fn rounded(p: f32) -> f64 {
    (f64::from(p) * 1e6).round() / 1e6
}

/// One image's answer in JSON, the one schema `infer --json`, `serve` and the page's
/// on-device mode write: `{"digit", "confidence", "verdict", "probabilities"}`, probabilities
/// to six decimals.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(crate = "burn::serde")]
pub struct PredictionJson {
    /// The most likely digit.
    pub digit: usize,
    /// Its probability.
    pub confidence: f64,
    /// `digit`, `unsure` or `not-a-digit` ([`Verdict`]).
    pub verdict: Verdict,
    /// Every digit's probability, in order.
    pub probabilities: Vec<f64>,
}

impl From<&Prediction> for PredictionJson {
    fn from(prediction: &Prediction) -> Self {
        Self {
            digit: prediction.digit,
            confidence: rounded(prediction.confidence()),
            verdict: prediction.verdict,
            probabilities: prediction
                .probabilities
                .iter()
                .copied()
                .map(rounded)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_are_split_one_row_per_image() {
        let rows = [0.1, 0.7, 0.2, 0.5, 0.2, 0.3];
        let predictions = predictions_from(&rows, 2, &VerdictRule::ALWAYS_DIGIT).unwrap();
        assert_eq!(predictions.len(), 2);
        assert_eq!(predictions[0].digit, 1);
        assert_eq!(predictions[1].digit, 0);
        assert_eq!(predictions[1].probabilities, vec![0.5, 0.2, 0.3]);
        assert_eq!(predictions[0].ranked()[1], (2, 0.2));
    }

    /// An output that could not be read used to become an empty list, split into chunks of
    /// zero: a panic. It is an error now, as is an output of the wrong size.
    #[test]
    fn an_empty_or_ragged_output_is_an_error_not_a_panic() {
        assert_eq!(
            predictions_from(&[], 3, &VerdictRule::default()),
            Err(ClassifyError::Shape {
                values: 0,
                images: 3
            })
        );
        assert!(matches!(
            predictions_from(&[0.5; 7], 2, &VerdictRule::default()),
            Err(ClassifyError::Shape { .. })
        ));
        assert_eq!(
            predictions_from(&[], 0, &VerdictRule::default()),
            Ok(Vec::new())
        );
    }

    #[test]
    fn a_network_with_nan_weights_is_an_error() {
        assert_eq!(
            predictions_from(&[f32::NAN, 0.5], 1, &VerdictRule::default()),
            Err(ClassifyError::NotFinite)
        );
    }

    #[test]
    fn one_threshold_tells_a_digit_two_digits_and_none() {
        let rule = VerdictRule {
            digit_at_least: 0.6,
            two_digits_at_least: 0.75,
        };
        let mut sure = [0.02; 10];
        sure[4] = 0.82;
        assert_eq!(rule.judge(&sure), Verdict::Digit);
        let mut four_or_nine = [0.01; 10];
        (four_or_nine[4], four_or_nine[9]) = (0.48, 0.44);
        assert_eq!(rule.judge(&four_or_nine), Verdict::Unsure);
        assert_eq!(rule.judge(&[0.1; 10]), Verdict::NotADigit);
        // Short of the threshold, with the runner-up too weak for two digits to hold it.
        let mut faint = [0.5 / 9.0; 10];
        faint[2] = 0.5;
        assert_eq!(rule.judge(&faint), Verdict::NotADigit);
        // At the threshold is enough.
        let mut edge = [0.4 / 9.0; 10];
        edge[0] = 0.6;
        assert_eq!(rule.judge(&edge), Verdict::Digit);
        assert_eq!(VerdictRule::ALWAYS_DIGIT.judge(&[0.1; 10]), Verdict::Digit);
        let predictions = predictions_from(&four_or_nine, 1, &rule).unwrap();
        assert_eq!(predictions[0].verdict, Verdict::Unsure);
        assert_eq!(predictions[0].runner_up(), Some((9, 0.44)));
    }

    #[test]
    fn the_rule_is_read_strictly_and_checked() {
        let rule = VerdictRule {
            two_digits_at_least: 1.5,
            ..VerdictRule::default()
        };
        assert!(rule.check().unwrap_err().contains("two_digits_at_least"));
        assert_eq!(VerdictRule::default().check(), Ok(()));
        let json = serde_json::to_string(&PredictionJson::from(&Prediction {
            digit: 3,
            probabilities: vec![0.1; 10],
            verdict: Verdict::NotADigit,
        }))
        .unwrap();
        assert!(json.contains(r#""verdict":"not-a-digit""#), "{json}");
    }
}
