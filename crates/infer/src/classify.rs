//! Running the network on preprocessed 28×28 images: the one place its output becomes
//! predictions, for files, test sets and training's final score alike.

use burn::prelude::*;
use data::{MnistBatcher, PIXELS};
use model::Cnn;

/// A loaded network on a device, ready to classify.
pub struct DigitClassifier {
    cnn: Cnn,
    device: Device,
}

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
}

impl DigitClassifier {
    /// Images per forward pass: a folder of any size runs in bounded memory.
    const BATCH: usize = 256;

    /// A network already in memory (e.g. one training has just finished) on `device`.
    pub fn new(cnn: Cnn, device: Device) -> Self {
        Self { cnn, device }
    }

    /// The loaded network, e.g. to export it.
    pub fn network(&self) -> &Cnn {
        &self.cnn
    }

    /// Classifies 28×28 images as produced by [`data::preprocess_image`]: one prediction per
    /// image, in order.
    pub fn classify(&self, images: &[[u8; PIXELS]]) -> Result<Vec<Prediction>, ClassifyError> {
        let mut predictions = Vec::with_capacity(images.len());
        for batch in images.chunks(Self::BATCH) {
            predictions.extend(self.classify_batch(batch)?);
        }
        Ok(predictions)
    }

    fn classify_batch(&self, images: &[[u8; PIXELS]]) -> Result<Vec<Prediction>, ClassifyError> {
        let inputs = MnistBatcher::images(images.iter(), &self.device);
        let probabilities = self
            .cnn
            .probabilities(inputs)
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| ClassifyError::Unreadable(format!("{e:?}")))?;
        predictions_from(&probabilities, images.len())
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

#[cfg(test)]
mod tests {
    use super::*;
    use model::CnnConfig;

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

    #[test]
    fn a_classifier_gives_one_prediction_per_image_across_batches() {
        let device = Device::flex();
        let classifier = DigitClassifier::new(CnnConfig::new().init(&device), device);
        let images = vec![[0u8; PIXELS]; DigitClassifier::BATCH + 3];
        let predictions = classifier.classify(&images).unwrap();
        assert_eq!(predictions.len(), images.len());
        let sum: f32 = predictions[0].probabilities.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "{sum}");
        assert_eq!(predictions[0], predictions[DigitClassifier::BATCH + 2]);
    }
}
