//! What the network's output means: the one place its probabilities become a digit, for the
//! host's files, test sets and training's final score, and for the browser alike.

use burn::prelude::*;
use burn::serde::Serialize;

/// A digit and how sure the network is of each class.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The most likely class.
    pub digit: usize,
    /// Softmax of the logits, one per class.
    pub probabilities: Vec<f32>,
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

    /// One prediction per row of `probabilities` (`[images, classes]`, e.g. from
    /// [`Cnn::probabilities`](crate::Cnn::probabilities)).
    pub fn from_probabilities(probabilities: Tensor<2>) -> Result<Vec<Self>, ClassifyError> {
        let [images, _] = probabilities.dims();
        let values = probabilities
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| ClassifyError::Unreadable(format!("{e:?}")))?;
        predictions_from(&values, images)
    }
}

/// Splits a batch's probabilities, `[images × classes]` in row order, into one prediction
/// per image.
fn predictions_from(
    probabilities: &[f32],
    images: usize,
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
/// on-device mode write: `{"digit", "confidence", "probabilities"}`, probabilities to six
/// decimals.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(crate = "burn::serde")]
pub struct PredictionJson {
    /// The most likely digit.
    pub digit: usize,
    /// Its probability.
    pub confidence: f64,
    /// Every digit's probability, in order.
    pub probabilities: Vec<f64>,
}

impl From<&Prediction> for PredictionJson {
    fn from(prediction: &Prediction) -> Self {
        Self {
            digit: prediction.digit,
            confidence: rounded(prediction.confidence()),
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
        let predictions = predictions_from(&rows, 2).unwrap();
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
            predictions_from(&[], 3),
            Err(ClassifyError::Shape {
                values: 0,
                images: 3
            })
        );
        assert!(matches!(
            predictions_from(&[0.5; 7], 2),
            Err(ClassifyError::Shape { .. })
        ));
        assert_eq!(predictions_from(&[], 0), Ok(Vec::new()));
    }

    #[test]
    fn a_network_with_nan_weights_is_an_error() {
        assert_eq!(
            predictions_from(&[f32::NAN, 0.5], 1),
            Err(ClassifyError::NotFinite)
        );
    }
}
