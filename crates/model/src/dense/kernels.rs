//! The arithmetic of a fully connected layer, `output = input · weight + bias`, forward and
//! backward, on plain `f32` slices, with the batch (or the weight's rows) split across
//! threads.
//!
//! Every product runs along the layer's inputs, sixteen at a time: the weight is used
//! transposed (`[outputs][inputs]`, each row padded to whole vectors), so that both operands
//! of a dot product lie in runs. Every sum is taken in an order fixed by the shapes alone, so
//! results are the same from run to run and whatever the number of threads.

use crate::simd::{Block, Isa, LANES, dispatched, values_mut};
use rayon::prelude::*;

/// Rows of the batch per parallel task.
const ROWS_PER_TASK: usize = 16;

/// Shapes of one layer: `input` is `[batch, inputs]`, `weight` `[inputs, outputs]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    pub batch: usize,
    pub inputs: usize,
    pub outputs: usize,
}

impl Shape {
    /// Vectors covering one row of inputs.
    fn input_blocks(&self) -> usize {
        self.inputs.div_ceil(LANES)
    }
}

/// The weight as `[outputs][input blocks]`: column `o` of `weight` as a row, padded with
/// zeros to whole vectors.
fn transposed(shape: Shape, weight: &[f32]) -> Vec<Block> {
    let mut rows = vec![Block::default(); shape.outputs * shape.input_blocks()];
    for (column, row) in rows.chunks_exact_mut(shape.input_blocks()).enumerate() {
        let row = values_mut(row);
        for (value, weights) in row.iter_mut().zip(weight.chunks_exact(shape.outputs)) {
            *value = weights[column];
        }
    }
    rows
}

/// `input · weight + bias`, `[batch, outputs]`.
pub(crate) fn forward(shape: Shape, input: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
    assert_eq!(input.len(), shape.batch * shape.inputs);
    assert_eq!(weight.len(), shape.inputs * shape.outputs);
    assert_eq!(bias.len(), shape.outputs);
    let columns = transposed(shape, weight);
    let mut output = vec![0.0; shape.batch * shape.outputs];
    output
        .par_chunks_mut(ROWS_PER_TASK * shape.outputs)
        .zip(input.par_chunks(ROWS_PER_TASK * shape.inputs))
        .for_each(|(output, input)| forward_rows(shape, &columns, bias, input, output));
    output
}

/// Gradients of the layer's input (when asked for), weight and bias.
pub(crate) struct Gradients {
    pub input: Option<Vec<f32>>,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// Backward pass of [`forward`], given the gradient of its output.
pub(crate) fn backward(
    shape: Shape,
    input: &[f32],
    weight: &[f32],
    output_grad: &[f32],
    input_grad_wanted: bool,
) -> Gradients {
    assert_eq!(input.len(), shape.batch * shape.inputs);
    assert_eq!(weight.len(), shape.inputs * shape.outputs);
    assert_eq!(output_grad.len(), shape.batch * shape.outputs);
    let input_grad = input_grad_wanted.then(|| {
        let columns = transposed(shape, weight);
        let mut grads = vec![0.0; input.len()];
        grads
            .par_chunks_mut(ROWS_PER_TASK * shape.inputs)
            .zip(output_grad.par_chunks(ROWS_PER_TASK * shape.outputs))
            .for_each(|(grads, output_grad)| input_rows(shape, &columns, output_grad, grads));
        grads
    });
    // `[input block][output]`: each output's weight gradient, a vector of inputs at a time.
    let mut weight_blocks = vec![Block::default(); shape.input_blocks() * shape.outputs];
    weight_blocks
        .par_chunks_mut(shape.outputs)
        .enumerate()
        .for_each(|(block, grads)| weight_block(shape, input, output_grad, block, grads));
    let mut weight_grad = vec![0.0; weight.len()];
    for (row, grads) in weight_grad.chunks_exact_mut(shape.outputs).enumerate() {
        let block = &weight_blocks[row / LANES * shape.outputs..][..shape.outputs];
        for (grad, block) in grads.iter_mut().zip(block) {
            *grad = block.0[row % LANES];
        }
    }
    let mut bias_grad = vec![0.0; shape.outputs];
    for grads in output_grad.chunks_exact(shape.outputs) {
        for (sum, grad) in bias_grad.iter_mut().zip(grads) {
            *sum += grad;
        }
    }
    Gradients {
        input: input_grad,
        weight: weight_grad,
        bias: bias_grad,
    }
}

/// Block `block` of `values` (a row of `inputs`), zeros past its end.
#[inline(always)]
fn load_block<I: Isa>(isa: I, values: &[f32], block: usize) -> I::V {
    let run = &values[block * LANES..];
    match run.first_chunk::<LANES>() {
        Some(full) => isa.load_unaligned(full),
        None => isa.load_partial(run),
    }
}

dispatched! {
/// Rows of `output` = rows of `input` · `columns`ᵀ + `bias`.
fn forward_rows / forward_rows_kernel(
    isa: impl Isa,
    shape: Shape,
    columns: &[Block],
    bias: &[f32],
    input: &[f32],
    output: &mut [f32],
) {
    for (input, output) in input.chunks_exact(shape.inputs).zip(output.chunks_exact_mut(shape.outputs)) {
        for ((output, column), bias) in output.iter_mut().zip(columns.chunks_exact(shape.input_blocks())).zip(bias) {
            let mut sum = isa.zero();
            for (block, weights) in column.iter().enumerate() {
                sum = isa.mul_add(load_block(isa, input, block), isa.load(weights), sum);
            }
            *output = isa.lane_sum(sum) + bias;
        }
    }
}
}

dispatched! {
/// Rows of the input gradient: each row of `output_grad` times `columns`, column by column.
fn input_rows / input_rows_kernel(
    isa: impl Isa,
    shape: Shape,
    columns: &[Block],
    output_grad: &[f32],
    input_grad: &mut [f32],
) {
    let blocks = shape.input_blocks();
    for (output_grad, input_grad) in output_grad.chunks_exact(shape.outputs).zip(input_grad.chunks_exact_mut(shape.inputs)) {
        for block in 0..blocks {
            let mut sum = isa.zero();
            for (grad, column) in output_grad.iter().zip(columns.chunks_exact(blocks)) {
                sum = isa.mul_add(isa.splat(*grad), isa.load(&column[block]), sum);
            }
            let end = ((block + 1) * LANES).min(shape.inputs);
            isa.store_partial(sum, &mut input_grad[block * LANES..end]);
        }
    }
}
}

dispatched! {
/// The weight gradient of inputs `block · 16 …` for every output: the sum over the batch of
/// each output's gradient times those inputs.
fn weight_block / weight_block_kernel(
    isa: impl Isa,
    shape: Shape,
    input: &[f32],
    output_grad: &[f32],
    block: usize,
    grads: &mut [Block],
) {
    for (output, grad) in grads.iter_mut().enumerate() {
        let mut sum = isa.zero();
        for (input, output_grad) in input.chunks_exact(shape.inputs).zip(output_grad.chunks_exact(shape.outputs)) {
            sum = isa.mul_add(isa.splat(output_grad[output]), load_block(isa, input, block), sum);
        }
        isa.store(sum, grad);
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{Baseline, values};
    use crate::test_support::{assert_close, pseudo_random};

    /// Odd sizes: a last block of inputs cut short, a last task of fewer rows.
    const SHAPES: [Shape; 2] = [
        Shape {
            batch: 21,
            inputs: 37,
            outputs: 3,
        },
        Shape {
            batch: 5,
            inputs: 500,
            outputs: 10,
        },
    ];

    /// The textbook loops: output, and the gradients of input, weight and bias.
    fn reference(shape: Shape, [x, w, b, dy]: &[Vec<f32>; 4]) -> [Vec<f32>; 4] {
        let Shape {
            batch,
            inputs,
            outputs,
        } = shape;
        let (mut y, mut dx, mut dw, mut db) = (
            vec![0.0f64; batch * outputs],
            vec![0.0f64; batch * inputs],
            vec![0.0f64; inputs * outputs],
            vec![0.0f64; outputs],
        );
        for n in 0..batch {
            for o in 0..outputs {
                let grad = f64::from(dy[n * outputs + o]);
                y[n * outputs + o] += f64::from(b[o]);
                db[o] += grad;
                for i in 0..inputs {
                    let (xi, wio) = (f64::from(x[n * inputs + i]), f64::from(w[i * outputs + o]));
                    y[n * outputs + o] += xi * wio;
                    dx[n * inputs + i] += grad * wio;
                    dw[i * outputs + o] += grad * xi;
                }
            }
        }
        [y, dx, dw, db].map(|v| v.into_iter().map(|v| v as f32).collect())
    }

    fn operands(shape: Shape) -> [Vec<f32>; 4] {
        [
            pseudo_random(shape.batch * shape.inputs, 1),
            pseudo_random(shape.inputs * shape.outputs, 2),
            pseudo_random(shape.outputs, 3),
            pseudo_random(shape.batch * shape.outputs, 4),
        ]
    }

    fn computed(shape: Shape, [x, w, b, dy]: &[Vec<f32>; 4]) -> [Vec<f32>; 4] {
        let y = forward(shape, x, w, b);
        let grads = backward(shape, x, w, dy, true);
        [y, grads.input.expect("asked for"), grads.weight, grads.bias]
    }

    #[test]
    fn forward_and_backward_match_the_textbook_loops() {
        for shape in SHAPES {
            let operands = operands(shape);
            for (fast, reference) in computed(shape, &operands)
                .iter()
                .zip(&reference(shape, &operands))
            {
                assert_close(fast, reference, 1e-4);
            }
        }
    }

    /// Everything the kernels compute for `shape` with `isa` in one task, as bits.
    fn everything<I: Isa>(isa: I, shape: Shape) -> Vec<Vec<u32>> {
        let [x, w, b, dy] = operands(shape);
        let columns = transposed(shape, &w);
        let mut y = vec![0.0; shape.batch * shape.outputs];
        forward_rows_kernel(isa, shape, &columns, &b, &x, &mut y);
        let mut dx = vec![0.0; x.len()];
        input_rows_kernel(isa, shape, &columns, &dy, &mut dx);
        let mut dw = vec![Block::default(); shape.input_blocks() * shape.outputs];
        for (block, grads) in dw.chunks_exact_mut(shape.outputs).enumerate() {
            weight_block_kernel(isa, shape, &x, &dy, block, grads);
        }
        let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect();
        vec![bits(&y), bits(&dx), bits(values(&dw))]
    }

    /// Every instruction set this machine has computes the same bits as plain arrays with
    /// the same fused multiply-adds.
    #[test]
    fn every_instruction_set_computes_the_same_bits() {
        for shape in SHAPES {
            let lane_by_lane = everything(Baseline::<true>, shape);
            #[cfg(target_arch = "x86_64")]
            {
                use crate::simd::{Avx2, Avx512};
                use std::arch::is_x86_feature_detected as has;
                if has!("avx2") && has!("fma") {
                    // SAFETY: the CPU has the features.
                    let isa = unsafe { Avx2::assume_present() };
                    assert_eq!(everything(isa, shape), lane_by_lane);
                }
                if has!("avx512f") && has!("avx2") && has!("fma") {
                    // SAFETY: the CPU has the features.
                    let isa = unsafe { Avx512::assume_present() };
                    assert_eq!(everything(isa, shape), lane_by_lane);
                }
            }
        }
    }
}
