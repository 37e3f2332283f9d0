//! The classifier's fully connected layer as one operation on the flex CPU backend, with its
//! own backward pass.
//!
//! Flex runs `Linear` as a general matrix product on the training loop's thread, where, at
//! this network's shapes (`[128, 500] · [500, 10]`), it and the transposes of its backward
//! pass held the kernels' worker threads idle for about a tenth of each step. Here the three
//! products are small enough to write directly: along the inputs, sixteen lanes at a time,
//! with the batch split across threads. The operation is registered through Burn's backend
//! extensions, as [`crate::conv_pool`] is; other backends run Burn's `Linear`.
//!
//! - `kernels`: the forward and backward products on `f32` slices.

mod kernels;

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
use kernels::Shape;

/// This operation's name, in its panics.
const OPERATION: &str = "dense";

#[backend_extension(Flex, Autodiff)]
pub trait DenseBackend: burn::backend::Backend {
    /// `input · weight + bias`.
    fn dense(
        input: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// Whether [`dense`] can run on `input` and `weight`: f32 tensors on flex whose shapes fit.
pub(crate) fn supported(input: &Tensor<2>, weight: &Tensor<2>) -> bool {
    flex_f32(input) && flex_f32(weight) && input.dims()[1] == weight.dims()[0]
}

/// `input · weight + bias`, as `Linear` computes it, on flex.
///
/// # Shapes
/// - `input`: `[batch, inputs]`
/// - `weight`: `[inputs, outputs]` (`Linear`'s layout), `bias`: `[outputs]`
/// - returns `[batch, outputs]`
pub(crate) fn dense(input: Tensor<2>, weight: Tensor<2>, bias: Tensor<1>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as DenseBackend>::dense(
        input.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
    ))
}

impl DenseBackend for Flex {
    fn dense(input: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        run_forward(&input, &weight, &bias).0
    }
}

impl<C: CheckpointStrategy> DenseBackend for Autodiff<Flex, C> {
    fn dense(
        input: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        match DenseBackward
            .prepare::<C>([input.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (output, saved) =
                    run_forward(input.primitive(), weight.primitive(), bias.primitive());
                prep.finish(saved, output)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(run_forward(input.primitive(), weight.primitive(), bias.primitive()).0)
            }
        }
    }
}

#[derive(Debug)]
struct DenseBackward;

/// What the backward pass reads: the forward pass's input and weight (contiguous).
#[derive(Clone, Debug)]
struct SavedForBackward {
    input: FlexTensor,
    weight: FlexTensor,
    shape: Shape,
}

impl Backward<Flex, 3> for DenseBackward {
    type State = SavedForBackward;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        register_gradients(ops, grads, OPERATION, |saved, output_grad, input_wanted| {
            let computed = kernels::backward(
                saved.shape,
                values(&saved.input),
                values(&saved.weight),
                output_grad,
                input_wanted,
            );
            [
                computed.input.map(|grad| tensor(grad, saved.input.shape())),
                Some(tensor(computed.weight, saved.weight.shape())),
                Some(tensor(computed.bias, [saved.shape.outputs])),
            ]
        });
    }
}

/// The forward pass on flex tensors: the output, and what the backward pass needs.
fn run_forward(
    input: &FlexTensor,
    weight: &FlexTensor,
    bias: &FlexTensor,
) -> (FlexTensor, SavedForBackward) {
    // The public functions take two-dimensional tensors only.
    let ([batch, inputs], [weight_inputs, outputs]) =
        (input.shape().dims::<2>(), weight.shape().dims::<2>());
    assert!(
        inputs == weight_inputs && bias.shape().num_elements() == outputs,
        "dense: input {:?}, weight {:?} and bias {:?} do not fit together",
        input.shape(),
        weight.shape(),
        bias.shape()
    );
    let shape = Shape {
        batch,
        inputs,
        outputs,
    };
    let (input, weight, bias) = (
        contiguous(input, OPERATION),
        contiguous(weight, OPERATION),
        contiguous(bias, OPERATION),
    );
    let output = kernels::forward(shape, values(&input), values(&weight), values(&bias));
    let saved = SavedForBackward {
        input,
        weight,
        shape,
    };
    (tensor(output, [batch, outputs]), saved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::assert_same_as_layers;
    use burn::nn::LinearConfig;
    use burn::tensor::Distribution;

    /// The operation computes what Burn's `Linear` does, and the same gradients, at odd sizes.
    #[test]
    fn matches_burns_linear_and_its_gradients() {
        let device = Device::flex().autodiff();
        for [batch, inputs, outputs] in [[3, 37, 4], [19, 500, 10]] {
            let linear = LinearConfig::new(inputs, outputs).init(&device);
            let input =
                Tensor::<2>::random([batch, inputs], Distribution::Default, &device).require_grad();
            let weight = linear.weight.val();
            let bias = linear.bias.as_ref().map(|b| b.val()).unwrap();
            assert!(supported(&input, &weight));
            let fused = dense(input.clone(), weight, bias);
            let reference = linear.forward(input.clone());
            let bias = linear.bias.as_ref().unwrap();
            assert_same_as_layers([fused, reference], &input, &linear.weight, bias);
        }
    }

    /// Shapes that do not fit are left to Burn's `Linear`, not to a panic.
    #[test]
    fn shapes_that_do_not_fit_are_not_fused() {
        let device = Device::flex();
        let input = Tensor::<2>::zeros([2, 5], &device);
        assert!(supported(&input, &Tensor::zeros([5, 3], &device)));
        assert!(!supported(&input, &Tensor::zeros([4, 3], &device)));
    }
}
