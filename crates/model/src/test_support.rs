//! Helpers shared by this crate's tests.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::Distribution;

/// Asserts that two equally long slices differ nowhere by as much as `tolerance`.
pub(crate) fn assert_close(a: &[f32], b: &[f32], tolerance: f32) {
    assert_eq!(a.len(), b.len());
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(worst < tolerance, "largest difference {worst}");
}

/// `len` values in [-1, 1] from a xorshift generator: the same for the same `seed`.
pub(crate) fn pseudo_random(len: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A tensor's values, read back as `f32`.
pub(crate) fn tensor_values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("an f32 tensor")
}

/// Asserts that an operation's `output` agrees with `reference`, Burn's layers applied to the
/// same `input` with the same `weight` and `bias`, and that the gradients of all three agree
/// too, through the same random linear loss.
pub(crate) fn assert_same_as_layers<const D: usize, const I: usize, const W: usize>(
    [output, reference]: [Tensor<D>; 2],
    input: &Tensor<I>,
    weight: &Param<Tensor<W>>,
    bias: &Param<Tensor<1>>,
) {
    assert_eq!(output.dims(), reference.dims());
    assert_close(
        &tensor_values(output.clone()),
        &tensor_values(reference.clone()),
        1e-5,
    );
    let device = output.device();
    let target = Tensor::<D>::random(output.dims(), Distribution::Default, &device);
    let gradients = |output: Tensor<D>| {
        let grads = (output * target.clone()).sum().backward();
        let missing = "every input of the loss has a gradient";
        [
            tensor_values(input.grad(&grads).expect(missing)),
            tensor_values(weight.grad(&grads).expect(missing)),
            tensor_values(bias.grad(&grads).expect(missing)),
        ]
    };
    for (fast, reference) in gradients(output).iter().zip(&gradients(reference)) {
        assert_close(fast, reference, 1e-4);
    }
}
