//! `MaxPool2d(2)(ReLU(conv(x)))` as one operation on the flex CPU backend, with its own
//! backward pass.
//!
//! Flex runs the three layers as separate general kernels: a convolution that computes and
//! stores every value, an activation, and a pooling pass that finds the maxima again in the
//! backward pass. Done as one operation, pooling happens while the convolution's values are
//! still in cache, the backward pass puts each gradient straight at the position that won its
//! pooling window, and nothing but the pooled output and a byte per pooled value (rows
//! padded to whole vectors) is kept for it. These blocks are nearly all of this network's
//! arithmetic; done this way, a training epoch on flex took 1.7 s instead of 4.3 s, and less
//! since (`docs/performance.md`).
//! The operation is registered through Burn's backend extensions; other backends run the
//! plain layers.
//!
//! - `kernels`: the passes of a block on `f32` slices, and how the batch is split;
//! - `products`: the two small matrix products those passes reduce to, written in the
//!   sixteen-lane vectors of [`crate::simd`].

mod kernels;
mod products;

use crate::InputNorm;
use crate::flex_io::{contiguous, flex_f32, register_gradients, tensor, values};
use burn::backend::TensorMetadata;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Dispatch, Flex, backend_extension};
use burn::prelude::*;
use kernels::{Geometry, Standardise};
use std::sync::Arc;

/// This operation's name, in its panics.
const OPERATION: &str = "conv_relu_pool";

#[backend_extension(Flex, Autodiff)]
pub trait ConvReluPoolBackend: burn::backend::Backend {
    /// `MaxPool2d(2)(ReLU(conv2d(norm(input), weight) + bias))`, stride 1, no padding.
    fn conv_relu_pool(
        input: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        norm: InputNorm,
    ) -> FloatTensor<Self>;
}

/// Whether [`conv_relu_pool`] can run on `input` and `weight`: f32 tensors on flex whose
/// shapes leave a pooled output.
pub(crate) fn supported(input: &Tensor<4>, weight: &Tensor<4>) -> bool {
    flex_f32(input) && flex_f32(weight) && Geometry::of(input.dims(), weight.dims()).is_some()
}

/// `MaxPool2d(2)(ReLU(conv2d(norm(input), weight) + bias))`, stride 1, no padding, on flex:
/// the standardisation costs nothing here, done as the input is copied in.
///
/// # Shapes
/// - `input`: `[batch, in_channels, height, width]`
/// - `weight`: `[out_channels, in_channels, kernel, kernel]`, `bias`: `[out_channels]`
/// - returns `[batch, out_channels, (height + 1 - kernel) / 2, (width + 1 - kernel) / 2]`
pub(crate) fn conv_relu_pool(
    input: Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
    norm: InputNorm,
) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as ConvReluPoolBackend>::conv_relu_pool(
        input.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        norm,
    ))
}

impl ConvReluPoolBackend for Flex {
    fn conv_relu_pool(
        input: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        norm: InputNorm,
    ) -> FlexTensor {
        run_forward(&input, &weight, &bias, norm).0
    }
}

impl<C: CheckpointStrategy> ConvReluPoolBackend for Autodiff<Flex, C> {
    fn conv_relu_pool(
        input: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        norm: InputNorm,
    ) -> FloatTensor<Self> {
        match ConvReluPoolBackward
            .prepare::<C>([input.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (output, saved) = run_forward(
                    input.primitive(),
                    weight.primitive(),
                    bias.primitive(),
                    norm,
                );
                prep.finish(saved, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(
                run_forward(
                    input.primitive(),
                    weight.primitive(),
                    bias.primitive(),
                    norm,
                )
                .0,
            ),
        }
    }
}

#[derive(Debug)]
struct ConvReluPoolBackward;

/// What the backward pass reads: the forward pass's inputs as it read them (contiguous), and
/// the pooling's winners.
#[derive(Clone, Debug)]
struct SavedForBackward {
    input: FlexTensor,
    weight: FlexTensor,
    /// Which input of each pooling window won, or that ReLU cut the value.
    winners: Arc<Vec<u8>>,
    geometry: Geometry,
    norm: Standardise,
}

impl Backward<Flex, 3> for ConvReluPoolBackward {
    type State = SavedForBackward;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        register_gradients(ops, grads, OPERATION, |saved, output_grad, input_wanted| {
            let computed = kernels::backward(
                saved.geometry,
                saved.norm,
                values(&saved.input),
                values(&saved.weight),
                &saved.winners,
                output_grad,
                input_wanted,
            );
            [
                computed.input.map(|grad| tensor(grad, saved.input.shape())),
                Some(tensor(computed.weight, saved.weight.shape())),
                Some(tensor(computed.bias, [saved.geometry.out_channels])),
            ]
        });
    }
}

/// The forward pass on flex tensors: the output, and what the backward pass needs.
fn run_forward(
    input: &FlexTensor,
    weight: &FlexTensor,
    bias: &FlexTensor,
    norm: InputNorm,
) -> (FlexTensor, SavedForBackward) {
    let geometry = Geometry::of(input.shape().dims(), weight.shape().dims()).unwrap_or_else(|| {
        panic!(
            "conv_relu_pool: input {:?} and weight {:?} do not make a block with a pooled output",
            input.shape(),
            weight.shape()
        )
    });
    let (input, weight, bias) = (
        contiguous(input, OPERATION),
        contiguous(weight, OPERATION),
        contiguous(bias, OPERATION),
    );
    let norm = Standardise::of(norm);
    let forward = kernels::forward(
        geometry,
        norm,
        values(&input),
        values(&weight),
        values(&bias),
    );
    let [pooled_height, pooled_width] = geometry.pooled();
    let output = tensor(
        forward.output,
        [
            geometry.batch,
            geometry.out_channels,
            pooled_height,
            pooled_width,
        ],
    );
    let saved = SavedForBackward {
        input,
        weight,
        winners: Arc::new(forward.winners),
        geometry,
        norm,
    };
    (output, saved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::assert_same_as_layers;
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::Distribution;
    use burn::tensor::activation::relu;

    /// Where a convolution map has an odd side, pooling drops its last row or column: those
    /// positions get no gradient, and the fused block must agree with Burn's layers there.
    #[test]
    fn odd_map_sizes_have_the_layers_gradients() {
        let device = Device::flex().autodiff();
        // [batch, in_channels, out_channels, kernel, height, width]: maps of 11×8, 9×9, 6×3, and
        // 7×38 (rows of more pooling windows than a vector has lanes).
        for [batch, inputs, outputs, kernel, height, width] in [
            [3, 2, 4, 3, 13, 10],
            [2, 1, 3, 4, 12, 12],
            [9, 3, 2, 2, 7, 4],
            [2, 2, 3, 3, 9, 40],
        ] {
            let conv = Conv2dConfig::new([inputs, outputs], [kernel; 2])
                .with_padding(PaddingConfig2d::Valid)
                .init(&device);
            let pool = MaxPool2dConfig::new([2, 2]).init();
            let images = Tensor::<4>::random(
                [batch, inputs, height, width],
                Distribution::Default,
                &device,
            )
            .require_grad();
            let weight = conv.weight.val();
            let bias = conv.bias.as_ref().map(|b| b.val()).unwrap();
            assert!(supported(&images, &weight));
            let fused = conv_relu_pool(images.clone(), weight, bias, InputNorm::IDENTITY);
            let layers = pool.forward(relu(conv.forward(images.clone())));
            let bias = conv.bias.as_ref().unwrap();
            assert_same_as_layers([fused, layers], &images, &conv.weight, bias);
        }
    }

    /// Shapes the fused kernels cannot pool are left to Burn's layers, not to a panic.
    #[test]
    fn shapes_without_a_pooled_output_are_not_fused() {
        let device = Device::flex();
        let images = Tensor::<4>::zeros([1, 1, 5, 5], &device);
        assert!(!supported(&images, &Tensor::zeros([2, 1, 5, 5], &device)));
        assert!(supported(&images, &Tensor::zeros([2, 1, 4, 4], &device)));
        assert!(!supported(&images, &Tensor::zeros([2, 3, 4, 4], &device)));
    }
}
