//! Running the network on preprocessed 28×28 images: the one place its output becomes
//! predictions, for files, test sets and training's final score alike.

use burn::prelude::*;
use data::PIXELS;
use model::{ClassifyError, Cnn, Prediction, VerdictRule};

/// A loaded network on a device, ready to classify.
pub struct DigitClassifier {
    cnn: Cnn,
    device: Device,
    /// How its answers become verdicts: the model's own rule.
    rule: VerdictRule,
    /// Average the logits over shifted copies of each image ([`Self::with_shifted_copies`]).
    shifted_copies: bool,
}

/// The copies test-time augmentation averages over: the image and its one-pixel shifts
/// right, left, down and up, as `(dx, dy)`.
pub const SHIFTED_COPIES: [(isize, isize); 5] = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)];

impl DigitClassifier {
    /// Images per forward pass: a folder of any size runs in bounded memory.
    const BATCH: usize = 256;

    /// A network already in memory (e.g. one training has just finished) on `device`,
    /// judged by the default [`VerdictRule`] until [`Self::with_rule`] says otherwise.
    pub fn new(cnn: Cnn, device: Device) -> Self {
        Self {
            cnn,
            device,
            rule: VerdictRule::default(),
            shifted_copies: false,
        }
    }

    /// Judge answers by `rule` (the one saved with the model's run).
    pub fn with_rule(mut self, rule: VerdictRule) -> Self {
        self.rule = rule;
        self
    }

    /// The rule answers are judged by.
    pub fn rule(&self) -> VerdictRule {
        self.rule
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
                let inputs = data::images_to_input(images.iter(), &self.device);
                self.cnn.probabilities(inputs)
            }
            true => self.mean_over_shifted_copies(images),
        };
        Prediction::from_probabilities(probabilities, &self.rule)
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
            .forward(data::images_to_input(copies.iter(), &self.device));
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
            let logits = cnn.forward(data::images_to_input(copies.iter(), &device));
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
