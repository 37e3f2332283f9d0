//! The network seen as a classifier by Burn's Learner.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use data::MnistBatch;
use model::Cnn;

/// [`Cnn`] with a cross-entropy loss on its logits.
///
/// A wrapper because the Learner's step traits and the network live in other crates; only the
/// inner [`Cnn`] is saved as `model.bpk`, so inference never needs this type.
#[derive(Module, Debug)]
pub struct Classifier {
    /// The network; the only part saved.
    pub cnn: Cnn,
}

impl Classifier {
    /// # Shapes
    /// - `batch.images`: `[batch, 1, 28, 28]`; `batch.targets`: `[batch]`.
    pub fn forward_classification(&self, batch: MnistBatch) -> ClassificationOutput {
        let logits = self.cnn.forward(batch.images);
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.targets.clone());
        ClassificationOutput::new(loss, logits, batch.targets)
    }
}

impl TrainStep for Classifier {
    type Input = MnistBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: MnistBatch) -> TrainOutput<ClassificationOutput> {
        let output = self.forward_classification(batch);
        TrainOutput::new(self, output.loss.backward(), output)
    }
}

impl InferenceStep for Classifier {
    type Input = MnistBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: MnistBatch) -> ClassificationOutput {
        self.forward_classification(batch)
    }
}
