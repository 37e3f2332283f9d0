//! The network seen as a classifier by Burn's Learner, with an optional gradient over only the
//! hardest images of each batch, and Outlier Exposure for batches that carry non-digits.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use data::MnistBatch;
use model::Cnn;

/// [`Cnn`] with a cross-entropy loss on its logits.
///
/// A wrapper because the Learner's step traits and the network live in other crates; only a
/// [`Cnn`] is saved as `model.bpk`, so inference never needs this type.
#[derive(Module, Debug)]
pub struct Classifier {
    /// The network the optimizer steps.
    pub cnn: Cnn,
    /// Each step takes its gradient over this share of its batch, the images with the
    /// largest loss (1: every image).
    #[module(skip)]
    pub backprop_fraction: f32,
    /// The weight of the outliers' term in the loss (Outlier Exposure); 0 ignores outliers.
    #[module(skip)]
    pub outlier_weight: f32,
}

impl Classifier {
    /// A classifier over `cnn` whose steps take their gradient over the `backprop_fraction` of
    /// each batch with the largest loss, and weigh a batch's outliers by `outlier_weight`.
    pub fn new(cnn: Cnn, backprop_fraction: f32, outlier_weight: f32) -> Self {
        Self {
            cnn,
            backprop_fraction,
            outlier_weight,
        }
    }

    /// The digits' logits and, when the batch carries outliers, the Outlier Exposure term
    /// (Hendrycks et al. 2019): [`Self::outlier_weight`] times the outliers' mean
    /// cross-entropy to the uniform distribution, which is least when the network gives
    /// every digit the same probability. One forward pass serves both.
    ///
    /// # Shapes
    /// - `images`: `[batch, 1, 28, 28]`, `outliers`: `[outliers, 1, 28, 28]`;
    ///   returns `[batch, classes]` and `[1]`.
    fn forward(
        &self,
        images: Tensor<4>,
        outliers: Option<Tensor<4>>,
    ) -> (Tensor<2>, Option<Tensor<1>>) {
        let Some(outliers) = outliers.filter(|_| self.outlier_weight > 0.0) else {
            return (self.cnn.forward(images), None);
        };
        let ([digits, ..], [others, ..]) = (images.dims(), outliers.dims());
        let logits = self.cnn.forward(Tensor::cat(vec![images, outliers], 0));
        let to_uniform = log_softmax(logits.clone().narrow(0, digits, others), 1)
            .mean_dim(1)
            .mean()
            .neg();
        (
            logits.narrow(0, 0, digits),
            Some(to_uniform.mul_scalar(self.outlier_weight)),
        )
    }

    /// The network's output on the digits and its mean cross-entropy: the loss reported,
    /// comparable with a run's without outliers.
    fn scored(logits: Tensor<2>, targets: Tensor<1, Int>) -> ClassificationOutput {
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), targets.clone());
        ClassificationOutput::new(loss, logits, targets)
    }

    /// A step whose gradient is taken over the [`Self::backprop_fraction`] of the batch with
    /// the largest loss ("selective backprop", Jiang et al. 2019): every image costs a
    /// forward pass, but only those images a backward pass, since the blocks' backward pass
    /// skips images whose gradient is zero. The loss reported is the whole batch's.
    fn step_on_hardest(&self, batch: MnistBatch) -> TrainOutput<ClassificationOutput> {
        let (logits, exposure) = self.forward(batch.images, batch.outliers);
        let losses = image_losses(logits.clone(), batch.targets.clone());
        let [images] = losses.dims();
        let kept = ((images as f32 * self.backprop_fraction).ceil() as usize).clamp(1, images);
        let mask = hardest(&losses, kept);
        let selected = losses.clone().mul(mask).sum().div_scalar(kept as f64);
        let grads = with_exposure(selected, exposure).backward();
        let output =
            ClassificationOutput::new(losses.detach().mean(), logits.detach(), batch.targets);
        TrainOutput::new(self, grads, output)
    }
}

impl TrainStep for Classifier {
    type Input = MnistBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: MnistBatch) -> TrainOutput<ClassificationOutput> {
        if self.backprop_fraction < 1.0 {
            return self.step_on_hardest(batch);
        }
        let (logits, exposure) = self.forward(batch.images, batch.outliers);
        let output = Self::scored(logits, batch.targets);
        let grads = with_exposure(output.loss.clone(), exposure).backward();
        TrainOutput::new(self, grads, output)
    }
}

impl InferenceStep for Classifier {
    type Input = MnistBatch;
    type Output = ClassificationOutput;

    /// Scored as `eval` scores a model: the mean cross-entropy.
    fn step(&self, batch: MnistBatch) -> ClassificationOutput {
        Self::scored(self.cnn.forward(batch.images), batch.targets)
    }
}

/// The loss a step descends: the digits' `loss`, plus the outliers' term when the batch has
/// one.
fn with_exposure(loss: Tensor<1>, exposure: Option<Tensor<1>>) -> Tensor<1> {
    match exposure {
        Some(term) => loss.add(term),
        None => loss,
    }
}

/// Each image's cross-entropy, as Burn's `CrossEntropyLoss` computes it before taking the mean.
///
/// # Shapes
/// - `logits`: `[batch, classes]`, `targets`: `[batch]`; returns `[batch]`.
fn image_losses(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [images, _] = logits.dims();
    log_softmax(logits, 1)
        .gather(1, targets.reshape([images, 1]))
        .reshape([images])
        .neg()
}

/// 1 for the `kept` largest of `losses`, else 0; among equal losses the earlier image is
/// kept first. Found on the losses' device: a copy to the host would wait for a GPU every
/// step. Sorting alone cannot pin the order of ties (backends sort unstably), so the images
/// tied with the `kept`-th largest loss are counted in order instead.
fn hardest(losses: &Tensor<1>, kept: usize) -> Tensor<1> {
    let losses = losses.clone().detach();
    let [images] = losses.dims();
    let cutoff = losses
        .clone()
        .topk(kept, 0)
        .narrow(0, kept - 1, 1)
        .expand([images]);
    let above = losses.clone().greater(cutoff.clone()).float();
    let tied = losses.equal(cutoff).float();
    let room = above
        .clone()
        .sum()
        .neg()
        .add_scalar(kept as f64)
        .expand([images]);
    let first_tied = tied.clone().cumsum(0).lower_equal(room).float().mul(tied);
    above.add(first_tied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{ModuleVisitor, Param};
    use burn::optim::GradientsParams;
    use model::CnnConfig;

    /// Every parameter's gradient in `grads`, in visiting order.
    fn gradients(cnn: &Cnn, grads: &GradientsParams) -> Vec<f32> {
        struct Collect<'a>(&'a GradientsParams, Vec<f32>);
        impl ModuleVisitor for Collect<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let grad = self
                    .0
                    .get::<D>(param.id)
                    .expect("every parameter has a gradient");
                self.1.extend(grad.into_data().try_to_vec::<f32>().unwrap());
            }
        }
        let mut collect = Collect(grads, Vec::new());
        cnn.visit(&mut collect);
        collect.1
    }

    /// `count` images of noise with labels 0, 1, 2, …, on `device`.
    fn noise_batch(count: usize, device: &Device) -> MnistBatch {
        let mut state = 12_345u32;
        let pixels: Vec<f32> = (0..count * 784)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1u32 << 24) as f32
            })
            .collect();
        let labels: Vec<i64> = (0..count as i64).map(|i| i % 10).collect();
        MnistBatch {
            images: Tensor::from_data(TensorData::new(pixels, [count, 1, 28, 28]), device),
            targets: Tensor::from_data(TensorData::new(labels, [count]), device),
            outliers: None,
        }
    }

    /// The images of `batch` at `indices`, in that order.
    fn images_of(batch: &MnistBatch, indices: &[usize]) -> MnistBatch {
        let device = batch.images.device();
        let indices = Tensor::<1, Int>::from_data(
            TensorData::new(indices.iter().map(|&i| i as i64).collect(), [indices.len()]),
            &device,
        );
        MnistBatch {
            images: batch.images.clone().select(0, indices.clone()),
            targets: batch.targets.clone().select(0, indices),
            outliers: None,
        }
    }

    fn floats<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
        tensor.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn image_losses_average_to_burns_cross_entropy() {
        let device = Device::flex();
        let batch = noise_batch(12, &device);
        let logits = CnnConfig::new()
            .init(&device)
            .forward(batch.images)
            .mul_scalar(7.0);
        let burn = CrossEntropyLossConfig::new()
            .init(&device)
            .forward(logits.clone(), batch.targets.clone());
        let ours = image_losses(logits, batch.targets).mean();
        let (burn, ours) = (floats(burn)[0], floats(ours)[0]);
        assert!(
            (burn - ours).abs() < 1e-5 * burn.abs(),
            "{burn} against {ours}"
        );
    }

    #[test]
    fn the_hardest_are_the_largest_losses_earlier_first_among_equals() {
        for device in [Device::flex(), Device::flex().autodiff()] {
            let losses = Tensor::<1>::from_floats([0.5, 2.0, 0.1, 2.0, 1.0, 2.0, 0.1], &device);
            for (kept, expected) in [
                (1, [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
                (2, [0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0]),
                (3, [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]),
                (4, [0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0]),
                (6, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]),
                (7, [1.0; 7]),
            ] {
                assert_eq!(floats(hardest(&losses, kept)), expected, "{kept} kept");
            }
        }
    }

    /// Many equal losses among many images, where an unstable sort shuffles ties: the earliest
    /// of them are kept.
    #[test]
    fn ties_at_the_cut_keep_the_earliest_images() {
        let values: Vec<f32> = (0..256).map(|i| [0.25, 1.0, 0.5][i % 3]).collect();
        let losses =
            Tensor::<1>::from_data(TensorData::new(values.clone(), [256]), &Device::flex());
        // 85 images hold the largest loss, 1.0; keeping 100 takes all of them and the first
        // 15 of the 85 images at 0.5.
        let mask = floats(hardest(&losses, 100));
        let kept: Vec<usize> = (0..256).filter(|&i| mask[i] == 1.0).collect();
        let mut expected: Vec<usize> = (0..256).filter(|i| i % 3 == 1).collect();
        expected.extend((0..256).filter(|i| i % 3 == 2).take(15));
        expected.sort();
        assert_eq!(kept, expected);
        assert_eq!(mask.iter().sum::<f32>(), 100.0);
    }

    /// A step over the hardest half of a batch has the gradient of a plain step over those
    /// images alone, and reports the whole batch's loss.
    #[test]
    fn a_step_on_the_hardest_images_has_their_gradient_alone() {
        let device = Device::flex().autodiff();
        let cnn = CnnConfig::new().init(&device);
        let batch = noise_batch(8, &device);
        let losses = floats(image_losses(
            cnn.forward(batch.images.clone()),
            batch.targets.clone(),
        ));
        let mut order: Vec<usize> = (0..8).collect();
        order.sort_by(|&a, &b| losses[b].total_cmp(&losses[a]));
        let hardest_four = images_of(&batch, &order[..4]);

        let step = TrainStep::step(&Classifier::new(cnn.clone(), 0.5, 0.0), batch);
        let alone = TrainStep::step(&Classifier::new(cnn.clone(), 1.0, 0.0), hardest_four);
        let (ours, theirs) = (gradients(&cnn, &step.grads), gradients(&cnn, &alone.grads));
        assert_eq!(ours.len(), 7_090);
        assert!(theirs.iter().any(|&g| g != 0.0));
        for (ours, theirs) in ours.iter().zip(&theirs) {
            assert!(
                (ours - theirs).abs() <= 1e-5 + 1e-4 * theirs.abs(),
                "{ours} against {theirs}"
            );
        }
        let mean = losses.iter().sum::<f32>() / 8.0;
        let reported = floats(step.item.loss)[0];
        assert!((reported - mean).abs() < 1e-5, "{reported} against {mean}");
    }

    /// With outliers, a step's gradient is the digits' plus the weighted gradient of the
    /// outliers' cross-entropy to uniform; the loss reported stays the digits' alone.
    #[test]
    fn outliers_add_their_pull_toward_uniform_to_the_gradient() {
        let device = Device::flex().autodiff();
        let cnn = CnnConfig::new().init(&device);
        let digits = noise_batch(6, &device);
        let others = noise_batch(10, &device).images.narrow(0, 6, 4);
        let with = |weight: f32| {
            let batch = MnistBatch {
                outliers: Some(others.clone()),
                ..digits.clone()
            };
            TrainStep::step(&Classifier::new(cnn.clone(), 1.0, weight), batch)
        };
        let plain = TrainStep::step(&Classifier::new(cnn.clone(), 1.0, 0.0), digits.clone());
        let (off, on) = (with(0.0), with(0.5));
        assert_eq!(
            floats(off.item.loss.clone()),
            floats(plain.item.loss.clone())
        );
        assert_eq!(floats(on.item.loss), floats(plain.item.loss));
        assert_eq!(on.item.output.dims(), [6, 10]);
        // By hand: the outliers' term alone, weighted, added to the digits' gradient.
        let term = log_softmax(cnn.forward(others.clone()), 1)
            .mean_dim(1)
            .mean()
            .neg()
            .mul_scalar(0.5);
        let term_grads = GradientsParams::from_grads(term.backward(), &cnn);
        let expected: Vec<f32> = gradients(&cnn, &plain.grads)
            .iter()
            .zip(gradients(&cnn, &term_grads))
            .map(|(a, b)| a + b)
            .collect();
        assert_eq!(gradients(&cnn, &off.grads), gradients(&cnn, &plain.grads));
        for (ours, theirs) in gradients(&cnn, &on.grads).iter().zip(&expected) {
            assert!(
                (ours - theirs).abs() <= 1e-5 + 1e-4 * theirs.abs(),
                "{ours} against {theirs}"
            );
        }
    }
}
