//! The flex backend's tensors as `f32` slices, and the backward step's bookkeeping, for the
//! operations of `(input, weight, bias)` this crate computes itself ([`crate::conv_pool`],
//! [`crate::dense`]).

use burn::backend::Flex;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::Ops;
use burn::backend::flex::FlexTensor;
use burn::prelude::*;
use burn::tensor::{DType, Shape, TensorData};

/// Whether `tensor` holds `f32` values on flex (tracked by autodiff or not): the tensors this
/// crate's own operations compute on.
pub(crate) fn flex_f32<const D: usize>(tensor: &Tensor<D>) -> bool {
    tensor.device().without_autodiff() == Device::flex() && tensor.dtype() == DType::F32
}

/// The tensor itself when its values are already laid out in order, else a copy that is.
/// `operation` names the caller in the panic for a tensor that is not `f32` (each operation
/// checks its inputs' type before it is chosen).
pub(crate) fn contiguous(tensor: &FlexTensor, operation: &str) -> FlexTensor {
    assert_eq!(
        tensor.dtype(),
        DType::F32,
        "{operation} runs on f32 tensors"
    );
    tensor.to_contiguous()
}

/// The values of a tensor [`contiguous`] returned.
pub(crate) fn values(tensor: &FlexTensor) -> &[f32] {
    tensor
        .as_slice()
        .expect("a contiguous f32 tensor has a slice of values")
}

/// A tensor of `values` in `shape`.
pub(crate) fn tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// The backward step of an operation of `(input, weight, bias)`: `compute(saved state, output
/// gradient, whether the input's gradient is wanted)` returns the three gradients (`None`
/// for one not computed), and each is registered with its parent's node when the graph
/// tracks that parent.
pub(crate) fn register_gradients<S>(
    ops: Ops<S, 3>,
    grads: &mut Gradients,
    operation: &str,
    compute: impl FnOnce(S, &[f32], bool) -> [Option<FlexTensor>; 3],
) {
    let output_grad = contiguous(&grads.consume::<Flex>(&ops.node), operation);
    let input_wanted = ops.parents[0].is_some();
    let computed = compute(ops.state, values(&output_grad), input_wanted);
    for (node, grad) in ops.parents.into_iter().zip(computed) {
        if let (Some(node), Some(grad)) = (node, grad) {
            grads.register::<Flex>(node.id, grad);
        }
    }
}
