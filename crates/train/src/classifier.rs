//! The network seen as a classifier by Burn's Learner, with an optional running average of
//! its weights and an optional gradient over only the hardest images of each batch.

use crate::distill::Teacher;
use burn::module::{ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::optim::ModuleOptimizer;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
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
    /// An exponential moving average of `cnn`'s weights, updated after every step, when the
    /// recipe asks for one: it is what is evaluated after each epoch and saved as the model.
    /// Averaging the last few hundred steps smooths out the noise of the final steps.
    pub average: Option<Cnn>,
    /// Each step, `average = decay × average + (1 − decay) × weights`.
    #[module(skip)]
    pub average_decay: f64,
    /// Mixes each one-hot target with the uniform distribution by this much (0: plain
    /// cross-entropy).
    #[module(skip)]
    pub label_smoothing: f32,
    /// Each step takes its gradient over this share of its batch, the images with the
    /// largest loss (1: every image).
    #[module(skip)]
    pub backprop_fraction: f32,
    /// A trained network whose softened predictions are extra targets, when the recipe
    /// distils; never stepped and never saved.
    #[module(skip)]
    pub teacher: Option<Teacher>,
}

impl Classifier {
    /// A classifier over `cnn`, averaging its weights with `average_decay` when that is above
    /// zero.
    pub fn new(cnn: Cnn, average_decay: f64, label_smoothing: f32) -> Self {
        let average = (average_decay > 0.0).then(|| detached_copy(&cnn));
        Self {
            cnn,
            average,
            average_decay,
            label_smoothing,
            backprop_fraction: 1.0,
            teacher: None,
        }
    }

    /// This classifier, taking each step's gradient over the `fraction` of its batch with
    /// the largest loss.
    pub fn with_backprop_fraction(self, fraction: f32) -> Self {
        Self {
            backprop_fraction: fraction,
            ..self
        }
    }

    /// This classifier, also learning from `teacher`'s predictions.
    pub fn with_teacher(self, teacher: Option<Teacher>) -> Self {
        Self { teacher, ..self }
    }

    /// The network to evaluate and keep: the average when there is one.
    pub fn evaluated(&self) -> &Cnn {
        self.average.as_ref().unwrap_or(&self.cnn)
    }

    /// # Shapes
    /// - `batch.images`: `[batch, 1, 28, 28]`; `batch.targets`: `[batch]`.
    fn classify(&self, cnn: &Cnn, batch: MnistBatch, smoothing: f32) -> ClassificationOutput {
        let logits = cnn.forward(batch.images);
        let loss = CrossEntropyLossConfig::new()
            .with_smoothing((smoothing > 0.0).then_some(smoothing))
            .init(&logits.device())
            .forward(logits.clone(), batch.targets.clone());
        ClassificationOutput::new(loss, logits, batch.targets)
    }
}

impl TrainStep for Classifier {
    type Input = MnistBatch;
    type Output = ClassificationOutput;

    /// The labels' loss, blended with the teacher's when there is one.
    fn step(&self, batch: MnistBatch) -> TrainOutput<ClassificationOutput> {
        // A run's config never pairs the two: the teacher's loss takes every image.
        if self.backprop_fraction < 1.0 && self.teacher.is_none() {
            return self.step_on_hardest(batch);
        }
        let images = self.teacher.as_ref().map(|_| batch.images.clone());
        let mut output = self.classify(&self.cnn, batch, self.label_smoothing);
        if let (Some(teacher), Some(images)) = (&self.teacher, images) {
            output.loss = teacher.blended_loss(images, output.output.clone(), output.loss);
        }
        TrainOutput::new(self, output.loss.backward(), output)
    }

    /// The optimizer's step, then the average follows the stepped weights.
    fn optimize(
        self,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        grads: GradientsParams,
    ) -> Self {
        let mut stepped = optim.step(lr, self, grads);
        if let Some(average) = stepped.average.take() {
            stepped.average = Some(blend(average, &stepped.cnn, stepped.average_decay));
        }
        stepped
    }
}

impl Classifier {
    /// A step whose gradient is taken over the [`Self::backprop_fraction`] of the batch with
    /// the largest loss ("selective backprop", Jiang et al. 2019): every image costs a
    /// forward pass, but only those images a backward pass, since the blocks' backward pass
    /// skips images whose gradient is zero. The loss reported is the whole batch's.
    fn step_on_hardest(&self, batch: MnistBatch) -> TrainOutput<ClassificationOutput> {
        let logits = self.cnn.forward(batch.images);
        let losses = image_losses(logits.clone(), batch.targets.clone(), self.label_smoothing);
        let [images] = losses.dims();
        let kept = ((images as f32 * self.backprop_fraction).ceil() as usize).clamp(1, images);
        let mask = hardest(&losses, kept);
        let selected = losses.clone().mul(mask).sum().div_scalar(kept as f64);
        let grads = selected.backward();
        let output =
            ClassificationOutput::new(losses.detach().mean(), logits.detach(), batch.targets);
        TrainOutput::new(self, grads, output)
    }
}

/// Each image's cross-entropy against its label mixed with the uniform distribution by
/// `smoothing`, as Burn's `CrossEntropyLoss` computes it before taking the mean.
///
/// # Shapes
/// - `logits`: `[batch, classes]`, `targets`: `[batch]`; returns `[batch]`.
fn image_losses(logits: Tensor<2>, targets: Tensor<1, Int>, smoothing: f32) -> Tensor<1> {
    let [images, _] = logits.dims();
    let log_probabilities = log_softmax(logits, 1);
    let target = log_probabilities
        .clone()
        .gather(1, targets.reshape([images, 1]))
        .reshape([images]);
    if smoothing == 0.0 {
        return target.neg();
    }
    let uniform = log_probabilities.mean_dim(1).reshape([images]);
    target
        .mul_scalar(1.0 - smoothing as f64)
        .add(uniform.mul_scalar(smoothing as f64))
        .neg()
}

/// 1 for the `kept` largest of `losses` (the earlier image first among equals), else 0.
fn hardest(losses: &Tensor<1>, kept: usize) -> Tensor<1> {
    let values = losses
        .clone()
        .detach()
        .into_data()
        .try_to_vec::<f32>()
        .expect("losses are f32");
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let mut mask = vec![0.0f32; values.len()];
    for &image in &order[..kept] {
        mask[image] = 1.0;
    }
    Tensor::from_data(TensorData::new(mask, [values.len()]), &losses.device())
}

impl InferenceStep for Classifier {
    type Input = MnistBatch;
    type Output = ClassificationOutput;

    /// Scored as `eval` scores a model: the plain cross-entropy of the evaluated network.
    fn step(&self, batch: MnistBatch) -> ClassificationOutput {
        self.classify(self.evaluated(), batch, 0.0)
    }
}

/// `cnn`'s weights under new parameter ids, outside the autodiff graph: the optimizer finds
/// gradients by id, so a copy sharing the ids would be stepped too.
fn detached_copy(cnn: &Cnn) -> Cnn {
    struct Fresh;
    impl ModuleMapper for Fresh {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let tensor = fresh_leaf(param.val().inner(), param.val().is_autodiff());
            Param::initialized(ParamId::new(), tensor).set_require_grad(false)
        }
    }
    cnn.clone().map(&mut Fresh)
}

/// `decay × average + (1 − decay) × weights`, parameter by parameter, in the order Burn visits
/// both (they are the same type, so the same order).
fn blend(average: Cnn, weights: &Cnn, decay: f64) -> Cnn {
    struct Blend {
        weights: std::vec::IntoIter<Tensor<1>>,
        decay: f64,
    }
    impl ModuleMapper for Blend {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let Some(weights) = self.weights.next() else {
                return param;
            };
            let decay = self.decay;
            param.map(|average| {
                let weights = weights.reshape(average.shape());
                average
                    .mul_scalar(decay)
                    .add(weights.mul_scalar(1.0 - decay))
            })
        }
    }
    average.map(&mut Blend {
        weights: flattened(weights).into_iter(),
        decay,
    })
}

/// Every parameter of `cnn`, flattened and off the autodiff graph, in the order Burn visits
/// them.
fn flattened(cnn: &Cnn) -> Vec<Tensor<1>> {
    struct Collect(Vec<Tensor<1>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let tensor = param.val().inner();
            let count = tensor.shape().num_elements();
            self.0.push(tensor.reshape([count]));
        }
    }
    let mut collect = Collect(Vec::new());
    cnn.visit(&mut collect);
    collect.0
}

/// `tensor` (computed without autodiff) as a new leaf of the graph when `autodiff`, with no
/// history behind it.
fn fresh_leaf<const D: usize>(tensor: Tensor<D>, autodiff: bool) -> Tensor<D> {
    match autodiff {
        true => tensor.autodiff(),
        false => tensor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::CnnConfig;

    /// Every weight of `cnn`, in visiting order.
    fn values(cnn: &Cnn) -> Vec<f32> {
        flattened(cnn)
            .into_iter()
            .flat_map(|t| t.into_data().try_into_vec_as::<f32>().unwrap())
            .collect()
    }

    /// Each parameter's id and whether it asks for gradients.
    fn params(cnn: &Cnn) -> Vec<(ParamId, bool)> {
        struct Ids(Vec<(ParamId, bool)>);
        impl ModuleVisitor for Ids {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                self.0.push((param.id, param.val().is_require_grad()));
            }
        }
        let mut ids = Ids(Vec::new());
        cnn.visit(&mut ids);
        ids.0
    }

    #[test]
    fn the_average_moves_a_decay_step_toward_the_weights() {
        let device = Device::flex();
        let config = CnnConfig::new();
        let (start, next) = (config.init(&device), config.init(&device));
        let average = detached_copy(&start);
        let (copied, original) = (params(&average), params(&start));
        assert_eq!(copied.len(), 6);
        for ((copy_id, grad), (id, _)) in copied.iter().zip(&original) {
            assert_ne!(
                copy_id, id,
                "a copy sharing ids would be stepped by the optimizer"
            );
            assert!(!grad);
        }
        let blended = blend(average, &next, 0.75);
        let (a, b, c) = (values(&start), values(&next), values(&blended));
        assert_eq!(a.len(), 7_090);
        for ((a, b), c) in a.iter().zip(&b).zip(&c) {
            assert!((0.75 * a + 0.25 * b - c).abs() < 1e-6);
        }
    }

    #[test]
    fn the_average_carries_no_graph_from_step_to_step() {
        // On the training device the weights are tracked; the average must stay a leaf, or
        // each step's would hold the graph of every step before it.
        let device = Device::flex().autodiff();
        let weights = CnnConfig::new().init(&device);
        let mut average = detached_copy(&weights);
        for _ in 0..3 {
            average = blend(average, &weights, 0.9);
        }
        struct Leaves(bool);
        impl ModuleVisitor for Leaves {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let tensor = param.val();
                self.0 &= tensor.is_autodiff() && !tensor.is_tracked();
            }
        }
        let mut leaves = Leaves(true);
        average.visit(&mut leaves);
        assert!(leaves.0);
    }

    #[test]
    fn without_a_decay_there_is_no_average() {
        let cnn = CnnConfig::new().init(&Device::flex());
        let ids = params(&cnn);
        let plain = Classifier::new(cnn, 0.0, 0.0);
        assert!(plain.average.is_none());
        assert_eq!(params(plain.evaluated()), ids);
    }

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
        for smoothing in [0.0, 0.1] {
            let burn = CrossEntropyLossConfig::new()
                .with_smoothing((smoothing > 0.0).then_some(smoothing))
                .init(&device)
                .forward(logits.clone(), batch.targets.clone());
            let ours = image_losses(logits.clone(), batch.targets.clone(), smoothing).mean();
            let (burn, ours) = (floats(burn)[0], floats(ours)[0]);
            assert!(
                (burn - ours).abs() < 1e-5 * burn.abs(),
                "{burn} against {ours}"
            );
        }
    }

    #[test]
    fn the_hardest_are_the_largest_losses_earlier_first() {
        let losses = Tensor::<1>::from_floats([0.5, 2.0, 0.1, 2.0, 1.0], &Device::flex());
        for (kept, expected) in [
            (1, [0.0, 1.0, 0.0, 0.0, 0.0]),
            (2, [0.0, 1.0, 0.0, 1.0, 0.0]),
            (3, [0.0, 1.0, 0.0, 1.0, 1.0]),
            (5, [1.0; 5]),
        ] {
            assert_eq!(floats(hardest(&losses, kept)), expected, "{kept} kept");
        }
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
            0.1,
        ));
        let mut order: Vec<usize> = (0..8).collect();
        order.sort_by(|&a, &b| losses[b].total_cmp(&losses[a]));
        let hardest_four = images_of(&batch, &order[..4]);

        let selective = Classifier::new(cnn.clone(), 0.0, 0.1).with_backprop_fraction(0.5);
        let step = TrainStep::step(&selective, batch);
        let alone = TrainStep::step(&Classifier::new(cnn.clone(), 0.0, 0.1), hardest_four);
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
}
