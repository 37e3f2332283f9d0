//! Running the network on preprocessed 28×28 images: the one place its output becomes
//! predictions, for files, test sets and training's final score alike.

use burn::prelude::*;
use data::{MnistBatcher, PIXELS};
use model::Cnn;

/// A loaded network on a device, ready to classify.
pub struct DigitClassifier {
    cnn: Cnn,
    device: Device,
    /// Average the logits over shifted copies of each image ([`Self::with_shifted_copies`]).
    shifted_copies: bool,
}

/// The copies test-time augmentation averages over: the image and its one-pixel shifts
/// right, left, down and up, as `(dx, dy)`.
pub const SHIFTED_COPIES: [(isize, isize); 5] = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)];

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
        Self {
            cnn,
            device,
            shifted_copies: false,
        }
    }

    /// Test-time augmentation: each image is classified by the mean of the network's logits
    /// over [`SHIFTED_COPIES`], five forward passes instead of one. A digit drawn a pixel off
    /// where the network expects it then counts less.
    pub fn with_shifted_copies(mut self, on: bool) -> Self {
        self.shifted_copies = on;
        self
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
        let probabilities = match self.shifted_copies {
            false => {
                let inputs = MnistBatcher::images(images.iter(), &self.device);
                self.cnn.probabilities(inputs)
            }
            true => self.mean_over_shifted_copies(images),
        };
        let probabilities = probabilities
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| ClassifyError::Unreadable(format!("{e:?}")))?;
        predictions_from(&probabilities, images.len())
    }
}

impl DigitClassifier {
    /// Softmax of the mean logits over [`SHIFTED_COPIES`] of each image.
    ///
    /// # Shapes
    /// - returns `[images, classes]`
    fn mean_over_shifted_copies(&self, images: &[[u8; PIXELS]]) -> Tensor<2> {
        let copies: Vec<[u8; PIXELS]> = SHIFTED_COPIES
            .iter()
            .flat_map(|&(dx, dy)| images.iter().map(move |image| shifted(image, dx, dy)))
            .collect();
        let logits = self
            .cnn
            .forward(MnistBatcher::images(copies.iter(), &self.device));
        let [_, classes] = logits.dims();
        let mean = logits
            .reshape([SHIFTED_COPIES.len(), images.len(), classes])
            .mean_dim(0)
            .reshape([images.len(), classes]);
        burn::tensor::activation::softmax(mean, 1)
    }
}

/// `image` moved `dx` pixels right and `dy` down, background coming in at the edges.
fn shifted(image: &[u8; PIXELS], dx: isize, dy: isize) -> [u8; PIXELS] {
    let side = model::IMAGE_SIDE as isize;
    let mut out = [0u8; PIXELS];
    for y in 0..side {
        for x in 0..side {
            let (sx, sy) = (x - dx, y - dy);
            if (0..side).contains(&sx) && (0..side).contains(&sy) {
                out[(y * side + x) as usize] = image[(sy * side + sx) as usize];
            }
        }
    }
    out
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
    fn a_shift_moves_every_pixel_and_brings_in_background() {
        let mut image = [0u8; PIXELS];
        image[5 * 28 + 7] = 200;
        image[27] = 9;
        let right = shifted(&image, 1, 0);
        assert_eq!(right[5 * 28 + 8], 200);
        assert_eq!(
            right.iter().filter(|&&p| p > 0).count(),
            1,
            "pixel 27 left the frame"
        );
        let up = shifted(&image, 0, -1);
        assert_eq!(up[4 * 28 + 7], 200);
        assert_eq!(shifted(&image, 0, 0), image);
    }

    #[test]
    fn shifted_copies_average_the_logits_of_each_copy() {
        let device = Device::flex();
        let cnn = CnnConfig::new().init(&device);
        let mut images = [[0u8; PIXELS]; 2];
        for (i, image) in images.iter_mut().enumerate() {
            for y in 6..22 {
                image[y * 28 + 10 + 4 * i] = 255;
            }
        }
        let plain = DigitClassifier::new(cnn.clone(), device.clone());
        let averaged = DigitClassifier::new(cnn.clone(), device.clone()).with_shifted_copies(true);
        let got = averaged.classify(&images).unwrap();
        // By hand: every copy through the plain path, logits averaged, then softmax.
        for (image, prediction) in images.iter().zip(&got) {
            let copies: Vec<[u8; PIXELS]> = SHIFTED_COPIES
                .iter()
                .map(|&(dx, dy)| shifted(image, dx, dy))
                .collect();
            let logits = cnn.forward(MnistBatcher::images(copies.iter(), &device));
            let mean = logits.mean_dim(0);
            let expected = burn::tensor::activation::softmax(mean, 1)
                .into_data()
                .try_into_vec_as::<f32>()
                .unwrap();
            for (a, b) in prediction.probabilities.iter().zip(&expected) {
                assert!((a - b).abs() < 1e-5, "{a} against {b}");
            }
        }
        assert_ne!(got, plain.classify(&images).unwrap());
    }

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
