//! The tutorial's convolutional network for 28×28 digits, written once against Burn's run-time
//! [`Device`] so the same code trains and serves on any backend.

mod backend;
mod config;
// The fused flex kernels (threads, x86 instruction sets) and the PyTorch interchange are
// host-only; in a browser (wasm32) the network runs Burn's own layers.
#[cfg(not(target_arch = "wasm32"))]
mod conv_pool;
#[cfg(not(target_arch = "wasm32"))]
mod dense;
#[cfg(not(target_arch = "wasm32"))]
mod flex_io;
#[cfg(not(target_arch = "wasm32"))]
mod interchange;
mod parameters;
mod prediction;
#[cfg(not(target_arch = "wasm32"))]
mod simd;
#[cfg(test)]
mod test_support;

pub use backend::{BackendError, BackendKind, ReadyDevice, UnknownBackend};
pub use config::{CnnConfig, InferenceConfig, InvalidModelConfig, MAX_PARAMETERS};
#[cfg(not(target_arch = "wasm32"))]
pub use interchange::{InterchangeError, WeightsFormat, pytorch_name};
pub use parameters::RecordError;
pub use prediction::{ClassifyError, Prediction, PredictionJson, Verdict, VerdictRule};

use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::prelude::*;
use burn::tensor::activation::relu;

/// Side of the square input images, in pixels.
pub const IMAGE_SIDE: usize = 28;

/// An error message from another library on one line: some span several, and every message
/// this project prints is one line.
pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `Conv2d → ReLU → MaxPool2d(2) → Conv2d → ReLU → MaxPool2d(2) → Flatten → Linear`.
///
/// There is no final softmax: the network returns logits, which is what cross-entropy wants.
#[derive(Module, Debug)]
pub struct Cnn {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    classifier: Linear,
    /// The input standardisation: a constant of the run's config, not a parameter.
    #[module(skip)]
    input_norm: InputNorm,
}

/// The standardisation the first convolution sees its input through.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InputNorm {
    /// Subtracted from every input.
    pub mean: f64,
    /// What the difference is divided by.
    pub std: f64,
}

impl InputNorm {
    /// No change: `ToTensor()` inputs go straight in.
    pub const IDENTITY: Self = Self {
        mean: 0.0,
        std: 1.0,
    };

    /// `(x − mean) / std`, as tensor operations (the fused block does it as it reads `x`).
    fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self == Self::IDENTITY {
            true => x,
            false => x.sub_scalar(self.mean).div_scalar(self.std),
        }
    }
}

impl Cnn {
    /// # Shapes
    /// - `images`: `[batch, 1, 28, 28]`, scaled as the `data` crate scales pixels.
    /// - returns logits `[batch, num_classes]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x = self.block(&self.conv1, images, self.input_norm);
        let x = self.block(&self.conv2, x, InputNorm::IDENTITY);
        self.logits(x.flatten(1, 3))
    }

    /// The classifier layer's logits. On flex this is its own operation (see [`dense`]), the
    /// matrix products split across threads; elsewhere, Burn's `Linear`.
    ///
    /// # Shapes
    /// - `features`: `[batch, inputs]`; returns `[batch, num_classes]`.
    fn logits(&self, features: Tensor<2>) -> Tensor<2> {
        #[cfg(not(target_arch = "wasm32"))]
        if dense::supported(&features, &self.classifier.weight.val()) {
            return self.fused_logits(features);
        }
        self.classifier.forward(features)
    }

    /// [`logits`](Self::logits) as flex's own operation.
    #[cfg(not(target_arch = "wasm32"))]
    fn fused_logits(&self, features: Tensor<2>) -> Tensor<2> {
        let weight = self.classifier.weight.val();
        let bias = match &self.classifier.bias {
            Some(bias) => bias.val(),
            None => Tensor::zeros([weight.dims()[1]], &features.device()),
        };
        dense::dense(features, weight, bias)
    }

    /// `MaxPool2d(2)(ReLU(conv(norm(x))))`. On flex this is one fused operation (see
    /// [`conv_pool`]), with training well over twice as fast, which standardises its input
    /// as it copies it in; elsewhere, the standardisation and the three layers.
    ///
    /// # Shapes
    /// - `x`: `[batch, in_channels, side, side]`; returns
    ///   `[batch, out_channels, (side + 1 - kernel) / 2, (side + 1 - kernel) / 2]`.
    fn block(&self, conv: &Conv2d, x: Tensor<4>, norm: InputNorm) -> Tensor<4> {
        #[cfg(not(target_arch = "wasm32"))]
        if conv_pool::supported(&x, &conv.weight.val()) {
            return fused_block(conv, x, norm);
        }
        self.layers(conv, norm.apply(x))
    }

    /// [`block`](Self::block) as Burn's three layers.
    fn layers(&self, conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
        self.pool.forward(relu(conv.forward(x)))
    }

    /// Class probabilities: softmax over [`forward`](Self::forward)'s logits.
    ///
    /// # Shapes
    /// - `images`: `[batch, 1, 28, 28]`; returns `[batch, num_classes]`.
    pub fn probabilities(&self, images: Tensor<4>) -> Tensor<2> {
        burn::tensor::activation::softmax(self.forward(images), 1)
    }
}

/// A block as flex's one fused operation.
#[cfg(not(target_arch = "wasm32"))]
fn fused_block(conv: &Conv2d, x: Tensor<4>, norm: InputNorm) -> Tensor<4> {
    let weight = conv.weight.val();
    let bias = match &conv.bias {
        Some(bias) => bias.val(),
        None => Tensor::zeros([weight.dims()[0]], &x.device()),
    };
    conv_pool::conv_relu_pool(x, weight, bias, norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{assert_close, tensor_values as values};

    fn random(shape: [usize; 4], device: &Device) -> Tensor<4> {
        Tensor::random(shape, burn::tensor::Distribution::Default, device)
    }

    /// MNIST's standardisation, which the default recipe uses.
    const STANDARDISED: InputNorm = InputNorm {
        mean: 0.1307,
        std: 0.3081,
    };

    #[test]
    fn the_fused_blocks_are_conv_relu_pool() {
        let device = Device::flex();
        for config in [
            CnnConfig::new(),
            CnnConfig::new().with_conv1_kernel(4).with_conv1_channels(6),
            CnnConfig::new().with_conv1_kernel(3).with_conv2_kernel(4),
        ] {
            let cnn = config.init(&device);
            let images = random([5, 1, 28, 28], &device);
            let fast = cnn.block(&cnn.conv1, images.clone(), STANDARDISED);
            let reference = cnn.layers(&cnn.conv1, STANDARDISED.apply(images));
            assert_eq!(fast.dims(), reference.dims());
            assert_close(&values(fast.clone()), &values(reference), 1e-5);

            let fast2 = cnn.block(&cnn.conv2, fast.clone(), InputNorm::IDENTITY);
            let reference2 = cnn.layers(&cnn.conv2, fast);
            assert_eq!(fast2.dims(), reference2.dims());
            assert_close(&values(fast2), &values(reference2), 1e-5);
        }
    }

    #[test]
    fn the_fused_blocks_have_the_same_gradients() {
        let device = Device::flex().autodiff();
        let cnn = CnnConfig::new().init(&device);
        let images = random([9, 1, 28, 28], &device).require_grad();
        let target = random([9, 20, 5, 5], &device);
        let gradients = |fused: bool| {
            let block = |conv: &Conv2d, x: Tensor<4>, norm: InputNorm| match fused {
                true => cnn.block(conv, x, norm),
                false => cnn.layers(conv, norm.apply(x)),
            };
            // conv1's gradients pass through conv2's input gradient, and the images' through
            // conv1's and its standardisation.
            let first = block(&cnn.conv1, images.clone(), STANDARDISED);
            let output = block(&cnn.conv2, first, InputNorm::IDENTITY);
            let grads = (output * target.clone()).sum().backward();
            let mut all = vec![values(images.grad(&grads).unwrap())];
            for conv in [&cnn.conv1, &cnn.conv2] {
                all.push(values(conv.weight.grad(&grads).unwrap()));
                all.push(values(conv.bias.as_ref().unwrap().grad(&grads).unwrap()));
            }
            all
        };
        for (fast, reference) in gradients(true).iter().zip(&gradients(false)) {
            assert_close(fast, reference, 1e-3);
        }
    }

    /// A permuted view's values are not laid out in order; the fused block reads them through
    /// a copy, forward and backward.
    #[test]
    fn the_fused_block_takes_a_strided_input() {
        let device = Device::flex().autodiff();
        let cnn = CnnConfig::new().init(&device);
        let images = random([28, 28, 3, 1], &device).permute([2, 3, 0, 1]);
        let weight_grad = |output: Tensor<4>| {
            let grads = output.sum().backward();
            values(cnn.conv1.weight.grad(&grads).unwrap())
        };
        let fused = cnn.block(&cnn.conv1, images.clone(), InputNorm::IDENTITY);
        let plain = cnn.layers(&cnn.conv1, images);
        assert_close(&values(fused.clone()), &values(plain.clone()), 1e-5);
        assert_close(&weight_grad(fused), &weight_grad(plain), 1e-3);
    }

    #[test]
    fn tutorial_network_has_7090_parameters() {
        let model = CnnConfig::new().init(&Device::flex());
        assert_eq!(model.num_params(), 7_090);
    }

    #[test]
    fn forward_gives_one_logit_per_class() {
        let device = Device::flex();
        let model = CnnConfig::new().init(&device);
        let images = Tensor::<4>::zeros([3, 1, 28, 28], &device);
        assert_eq!(model.forward(images).dims(), [3, 10]);
    }

    #[test]
    fn probabilities_sum_to_one() {
        let device = Device::flex();
        let model = CnnConfig::new().init(&device);
        let images =
            Tensor::<4>::random([2, 1, 28, 28], burn::tensor::Distribution::Default, &device);
        let sums: Vec<f32> = model
            .probabilities(images)
            .sum_dim(1)
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        for sum in sums {
            assert!((sum - 1.0).abs() < 1e-5, "probabilities sum to {sum}");
        }
    }

    #[test]
    fn other_architectures_size_the_classifier() {
        let config = CnnConfig::new().with_conv1_kernel(3).with_conv2_channels(8);
        // 28 → 26 → 13 → 11 → 5
        assert_eq!(config.feature_side(), Some(5));
        let model = config.init(&Device::flex());
        let logits = model.forward(Tensor::zeros([1, 1, 28, 28], &Device::flex()));
        assert_eq!(logits.dims(), [1, 10]);
    }

    #[test]
    fn oversized_kernels_are_detected() {
        assert_eq!(CnnConfig::new().with_conv1_kernel(29).feature_side(), None);
        assert_eq!(CnnConfig::new().with_conv2_kernel(13).feature_side(), None);
    }
}
