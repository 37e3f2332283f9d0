//! The arithmetic of a `Conv2d → ReLU → MaxPool2d(2)` block on plain `f32` slices, forward
//! and backward, with the batch split across threads.
//!
//! Each pass is a small matrix product ([`products`](super::products)) over an image's
//! *patches*: row `(channel, tap)` is the input channel read from that kernel tap's shift,
//! `patch[p] = input[p + ky·width + kx]`, for every position `p` of the convolution map, which
//! keeps the input's row stride (the columns past the map's right edge are computed and never
//! read). The patches are never copied out: each row is read in place from the channel,
//! which is followed by enough zeros for every tap's run.
//! - forward: `maps = weight · patches`, then ReLU and pooling straight from the maps;
//! - weight gradient: `gradient maps · patchesᵀ`, summed over a task's images;
//! - input gradient: `weightᵀ · shifted gradient maps`, the gradient maps' own patches read
//!   backwards from every tap.
//!
//! Pooling records, for each pooled value, which of its four inputs won (or that ReLU cut it),
//! so the backward pass sends each gradient to one position and does no other pooling work.
//!
//! Every sum is taken in an order fixed by the shapes alone, so results are the same from run
//! to run and whatever the number of threads.

use super::products::{DotOperands, Panels, Shifted, broadcast_product, dot_products};
use crate::InputNorm;
use crate::simd::{Block, Isa, LANES, dispatched, values, values_mut};
use rayon::prelude::*;
use std::cell::RefCell;

/// The winner recorded for a pooled value that ReLU set to zero: no input won it, and no
/// gradient flows back through it.
const NO_WINNER: u8 = u8::MAX;

/// Images per parallel task in the backward pass. Each task sums its own weight gradient and
/// the partial sums are added in task order, so results do not depend on the thread count.
const IMAGES_PER_TASK: usize = 8;

/// Shapes of one block: stride 1, no padding, a 2×2 pooling window with stride 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub batch: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub height: usize,
    pub width: usize,
}

impl Geometry {
    /// The block for an input `[batch, in_channels, height, width]` and a weight
    /// `[out_channels, in_channels, kernel, kernel]`, or `None` when they do not fit together
    /// or the pooled output would be empty (a convolution map narrower than the 2×2 window).
    pub fn of(input: [usize; 4], weight: [usize; 4]) -> Option<Self> {
        let [batch, in_channels, height, width] = input;
        let [out_channels, weight_in_channels, kernel, kernel_width] = weight;
        // Each side of the convolution map, `side + 1 - kernel`, must be at least 2.
        let fits = in_channels == weight_in_channels
            && kernel == kernel_width
            && kernel >= 1
            && kernel < height.min(width);
        fits.then_some(Self {
            batch,
            in_channels,
            out_channels,
            kernel,
            height,
            width,
        })
    }

    /// `[height, width]` of each pooled output map (odd convolution sizes drop their last
    /// row or column, as `MaxPool2d` does).
    pub fn pooled(&self) -> [usize; 2] {
        [
            (self.height + 1 - self.kernel) / 2,
            (self.width + 1 - self.kernel) / 2,
        ]
    }

    fn plane(&self) -> usize {
        self.height * self.width
    }

    fn taps(&self) -> usize {
        self.kernel * self.kernel
    }

    fn image_len(&self) -> usize {
        self.in_channels * self.plane()
    }

    fn output_len(&self) -> usize {
        let [height, width] = self.pooled();
        self.out_channels * height * width
    }

    /// Bytes per row of pooling winners: the pooled width, padded to whole vectors so that
    /// each window's winner is read and written sixteen at a time.
    fn winners_row(&self) -> usize {
        self.pooled()[1].next_multiple_of(LANES)
    }

    /// Bytes of an image's pooling winners, `[out_channels][pooled height][winners row]`.
    fn winners_len(&self) -> usize {
        self.out_channels * self.pooled()[0] * self.winners_row()
    }

    fn weight_len(&self) -> usize {
        self.out_channels * self.in_channels * self.taps()
    }

    /// Rows of an image's patches: one per input channel and kernel tap.
    fn patch_rows(&self) -> usize {
        self.in_channels * self.taps()
    }

    /// Blocks of a convolution map that pooling reads (and of each patch row).
    fn map_blocks(&self) -> usize {
        let [height, width] = self.pooled();
        ((2 * height - 1) * self.width + 2 * width).div_ceil(LANES)
    }

    /// An input channel followed by zeros, enough for every tap's run of the map's blocks.
    fn padded_plane(&self) -> usize {
        self.plane()
            .max(self.map_blocks() * LANES + self.largest_shift())
    }

    /// Where each patch row starts in an image's padded channels: channel `c`, tap `t` at
    /// `c · padded plane + shift of t`.
    fn patch_starts(&self) -> Vec<usize> {
        (0..self.in_channels)
            .flat_map(|channel| {
                let first = channel * self.padded_plane();
                self.shifts().into_iter().map(move |shift| first + shift)
            })
            .collect()
    }

    /// Where the input gradient's rows start in an image's gradient maps: map `o` read back
    /// from tap `t`, at `o · stride + margin − shift of t` (in values).
    fn back_starts(&self) -> Vec<usize> {
        let (stride, margin) = (self.gradient_map_stride(), self.margin_blocks());
        (0..self.out_channels)
            .flat_map(|channel| {
                let first = (channel * stride + margin) * LANES;
                self.shifts().into_iter().map(move |shift| first - shift)
            })
            .collect()
    }

    /// Blocks covering an input plane.
    fn plane_blocks(&self) -> usize {
        self.plane().div_ceil(LANES)
    }

    /// Zero blocks before each gradient map, so that reading it from any tap's shift back
    /// stays inside it.
    fn margin_blocks(&self) -> usize {
        self.largest_shift().div_ceil(LANES)
    }

    /// Blocks from one gradient map to the next: the margin, then the map or the input plane,
    /// whichever is longer, so that the input gradient can read a whole plane from it.
    fn gradient_map_stride(&self) -> usize {
        self.margin_blocks() + self.map_blocks().max(self.plane_blocks())
    }

    /// The last tap's shift, `(kernel − 1) · (width + 1)`: the last of [`Self::shifts`],
    /// without building them (the buffers' sizes ask for it on every image).
    fn largest_shift(&self) -> usize {
        (self.kernel - 1) * (self.width + 1)
    }

    /// Where each kernel tap starts reading, relative to an output position.
    fn shifts(&self) -> Vec<usize> {
        (0..self.taps())
            .map(|tap| tap / self.kernel * self.width + tap % self.kernel)
            .collect()
    }
}

/// `(x − mean) / std` in `f32`, done to a block's input as it is copied in: the network's
/// input standardisation, for the first block, at the cost of the copy it makes anyway.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Standardise {
    mean: f32,
    std: f32,
}

impl Standardise {
    /// Inputs as they are.
    pub const NONE: Self = Self {
        mean: 0.0,
        std: 1.0,
    };

    /// `norm` in `f32`, rounded as tensor operations with these scalars round them.
    pub fn of(norm: InputNorm) -> Self {
        Self {
            mean: norm.mean as f32,
            std: norm.std as f32,
        }
    }
}

/// The block's output, `[batch, out_channels, pooled height, pooled width]`, and what the
/// backward pass needs to know of the pooling.
pub(crate) struct BlockOutput {
    pub output: Vec<f32>,
    /// `[batch]` × [`Geometry::winners_len`]: which input won each pooling window.
    pub winners: Vec<u8>,
}

/// `MaxPool2d(2)(ReLU(conv(norm(input), weight) + bias))`.
pub(crate) fn forward(
    geometry: Geometry,
    norm: Standardise,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
) -> BlockOutput {
    let g = geometry;
    assert_eq!(input.len(), g.batch * g.image_len());
    assert_eq!(weight.len(), g.weight_len());
    assert_eq!(bias.len(), g.out_channels);
    let mut output = vec![0.0; g.batch * g.output_len()];
    let mut winners = vec![NO_WINNER; g.batch * g.winners_len()];
    let reads = ForwardReads {
        g,
        norm,
        weight: Panels::of(weight, g.out_channels, g.patch_rows()),
        bias,
        patch_starts: g.patch_starts(),
    };
    output
        .par_chunks_mut(g.output_len())
        .zip(winners.par_chunks_mut(g.winners_len()))
        .zip(input.par_chunks(g.image_len()))
        .for_each(|((output, winners), image)| {
            with_scratch(g, |scratch| {
                forward_image(&reads, image, scratch, output, winners)
            })
        });
    BlockOutput { output, winners }
}

/// Gradients of the block's input (when asked for), weight and bias.
pub(crate) struct BlockGradients {
    pub input: Option<Vec<f32>>,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// Backward pass of [`forward`], given the gradient of its output.
pub(crate) fn backward(
    geometry: Geometry,
    norm: Standardise,
    input: &[f32],
    weight: &[f32],
    winners: &[u8],
    output_grad: &[f32],
    input_grad_wanted: bool,
) -> BlockGradients {
    let g = geometry;
    assert_eq!(input.len(), g.batch * g.image_len());
    assert_eq!(weight.len(), g.weight_len());
    assert_eq!(output_grad.len(), g.batch * g.output_len());
    assert_eq!(winners.len(), g.batch * g.winners_len());
    let reads = BackwardReads {
        g,
        norm,
        patch_starts: g.patch_starts(),
        back_starts: g.back_starts(),
        transposed_weight: match input_grad_wanted {
            true => transposed_weight(g, weight),
            false => Panels::default(),
        },
    };
    let task = |index: usize, input_grad: Option<&mut [f32]>| {
        let first = index * IMAGES_PER_TASK;
        let images = (g.batch - first).min(IMAGES_PER_TASK);
        let outputs = first * g.output_len()..(first + images) * g.output_len();
        let mut grads = TaskGradients {
            weight: vec![0.0; g.weight_len()],
            bias: vec![0.0; g.out_channels],
            input: input_grad,
        };
        with_scratch(g, |scratch| {
            backward_images(
                &reads,
                &input[first * g.image_len()..][..images * g.image_len()],
                &winners[first * g.winners_len()..][..images * g.winners_len()],
                &output_grad[outputs],
                scratch,
                &mut grads,
            )
        });
        (grads.weight, grads.bias)
    };
    let mut input_grad = input_grad_wanted.then(|| vec![0.0; input.len()]);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = match input_grad.as_deref_mut() {
        Some(grads) => grads
            .par_chunks_mut(IMAGES_PER_TASK * g.image_len())
            .enumerate()
            .map(|(index, grads)| task(index, Some(grads)))
            .collect(),
        None => (0..g.batch.div_ceil(IMAGES_PER_TASK))
            .into_par_iter()
            .map(|index| task(index, None))
            .collect(),
    };
    let mut weight_grad = vec![0.0; g.weight_len()];
    let mut bias_grad = vec![0.0; g.out_channels];
    for (weight_part, bias_part) in partials {
        add_assign(&mut weight_grad, &weight_part);
        add_assign(&mut bias_grad, &bias_part);
    }
    BlockGradients {
        input: input_grad,
        weight: weight_grad,
        bias: bias_grad,
    }
}

/// What the forward pass reads besides each image.
struct ForwardReads<'a> {
    g: Geometry,
    norm: Standardise,
    /// The weight, `[out_channels][patch row]`, laid out tile by tile ([`Panels`]).
    weight: Panels,
    bias: &'a [f32],
    /// [`Geometry::patch_starts`].
    patch_starts: Vec<usize>,
}

/// What every task of a backward pass reads besides its images.
struct BackwardReads {
    g: Geometry,
    norm: Standardise,
    /// [`Geometry::patch_starts`].
    patch_starts: Vec<usize>,
    /// [`Geometry::back_starts`].
    back_starts: Vec<usize>,
    /// [`transposed_weight`], when the input gradient is wanted; else empty.
    transposed_weight: Panels,
}

/// The weight as `[in_channels][out_channels · taps]`: for each input channel, what every
/// output channel's kernel gives it, the left operand of the input gradient's product.
fn transposed_weight(g: Geometry, weight: &[f32]) -> Panels {
    let taps = g.taps();
    let mut transposed = Vec::with_capacity(weight.len());
    for in_channel in 0..g.in_channels {
        for kernels in weight.chunks_exact(g.patch_rows()) {
            transposed.extend_from_slice(&kernels[in_channel * taps..][..taps]);
        }
    }
    Panels::of(&transposed, g.in_channels, g.out_channels * taps)
}

/// One task's gradients: its own sums for the weight and bias, its images' part of the input.
struct TaskGradients<'a> {
    weight: Vec<f32>,
    bias: Vec<f32>,
    input: Option<&'a mut [f32]>,
}

/// A thread's buffers for one block's shapes, enough for a task's images.
struct Scratch {
    /// `[image][in channel]`, each channel followed by zeros ([`Geometry::padded_plane`]).
    padded_channels: Vec<f32>,
    /// One image's convolution maps, `[out channel][map block]`.
    conv_maps: Vec<Block>,
    /// Each image's gradient maps, `[image][out channel]`, each after its margin
    /// ([`Geometry::gradient_map_stride`]). Only the positions of pooling windows are ever
    /// written, all of them every time, so everything else stays zero.
    gradient_maps: Vec<Block>,
    /// `[in channel][plane block]`: one image's input gradient.
    plane_grads: Vec<Block>,
    /// `[out channel][patch row]`: the weight gradient's lanes between images
    /// ([`dot_products`]).
    weight_partials: Vec<Block>,
}

impl Scratch {
    fn new(g: Geometry) -> Self {
        let images = IMAGES_PER_TASK;
        Self {
            padded_channels: vec![0.0; images * g.in_channels * g.padded_plane()],
            conv_maps: vec![Block::default(); g.out_channels * g.map_blocks()],
            gradient_maps: vec![
                Block::default();
                images * g.out_channels * g.gradient_map_stride()
            ],
            plane_grads: vec![Block::default(); g.in_channels * g.plane_blocks()],
            weight_partials: vec![Block::default(); g.weight_len()],
        }
    }
}

/// Copies `images`' channels, standardised by `norm`, into `padded` (laid out as
/// [`Scratch::padded_channels`], whose padding stays zero) and returns that part of it.
/// Inlined, as `fill_gradient_maps`.
#[inline(always)]
fn pad_channels<'a>(
    g: Geometry,
    norm: Standardise,
    images: &[f32],
    padded: &'a mut [f32],
) -> &'a [f32] {
    let channels = images.len() / g.plane();
    for (channel, padded) in images
        .chunks_exact(g.plane())
        .zip(padded.chunks_exact_mut(g.padded_plane()))
    {
        let padded = &mut padded[..g.plane()];
        match norm == Standardise::NONE {
            true => padded.copy_from_slice(channel),
            false => {
                for (padded, &value) in padded.iter_mut().zip(channel) {
                    *padded = (value - norm.mean) / norm.std;
                }
            }
        }
    }
    &padded[..channels * g.padded_plane()]
}

thread_local! {
    /// Each thread's [`Scratch`] per block shape, kept from one batch to the next: fresh
    /// buffers for every batch cost a page fault at the first touch of each page.
    static SCRATCH: RefCell<Vec<(Geometry, Scratch)>> = const { RefCell::new(Vec::new()) };
}

/// Block shapes whose buffers a thread keeps (a network has a few blocks).
const SHAPES_KEPT: usize = 4;

/// Runs `work` with this thread's buffers for `g`'s shapes (any batch size).
fn with_scratch<R>(g: Geometry, work: impl FnOnce(&mut Scratch) -> R) -> R {
    let shape = Geometry { batch: 0, ..g };
    SCRATCH.with_borrow_mut(|kept| {
        let index = match kept.iter().position(|(kept, _)| *kept == shape) {
            Some(index) => index,
            None => {
                if kept.len() == SHAPES_KEPT {
                    kept.remove(0);
                }
                kept.push((shape, Scratch::new(shape)));
                kept.len() - 1
            }
        };
        work(&mut kept[index].1)
    })
}

dispatched! {
/// One image's forward pass.
fn forward_image / forward_image_kernel(
    isa: impl Isa,
    reads: &ForwardReads,
    image: &[f32],
    scratch: &mut Scratch,
    output: &mut [f32],
    winners: &mut [u8],
) {
    let ForwardReads { g, norm, ref weight, bias, ref patch_starts } = *reads;
    let pooled = g.pooled()[0] * g.pooled()[1];
    let channel_winners = g.pooled()[0] * g.winners_row();
    let Scratch { padded_channels, conv_maps: maps, .. } = scratch;
    let values_read = pad_channels(g, norm, image, padded_channels);
    broadcast_product(isa, weight, Shifted { values: values_read, starts: patch_starts }, maps, g.map_blocks());
    for (channel, map) in maps.chunks_exact(g.map_blocks()).enumerate() {
        pool_map(
            isa,
            g,
            values(map),
            bias[channel],
            &mut output[channel * pooled..][..pooled],
            &mut winners[channel * channel_winners..][..channel_winners],
        );
    }
}
}

/// Pooling windows handled at a time: one per lane.
const WINDOWS: usize = LANES;

// The helpers below are functions, not closures: a closure would not be compiled with the
// calling kernel's instruction set, and every vector operation in it would become a call.

/// ReLU and 2×2 max pooling of one convolution `map` (plus its channel's `bias`) into
/// `output`, recording each window's winner (or [`NO_WINNER`] where ReLU cut it), sixteen
/// windows of a row at a time: the even and odd columns of the window's two rows are split
/// apart, and each window's four values are then compared lane by lane.
#[inline(always)]
fn pool_map<I: Isa>(
    isa: I,
    g: Geometry,
    map: &[f32],
    bias: f32,
    output: &mut [f32],
    winners: &mut [u8],
) {
    let pooled_width = g.pooled()[1];
    for (row, (output, winners)) in output
        .chunks_exact_mut(pooled_width)
        .zip(winners.chunks_exact_mut(g.winners_row()))
        .enumerate()
    {
        for first in (0..pooled_width).step_by(WINDOWS) {
            let windows = (pooled_width - first).min(WINDOWS);
            let at = 2 * row * g.width + 2 * first;
            let top = split_columns(isa, &map[at..][..2 * windows]);
            let bottom = split_columns(isa, &map[at + g.width..][..2 * windows]);
            let (value, winner) = pool_windows(isa, top, bottom, bias);
            isa.store_partial(value, &mut output[first..][..windows]);
            let codes = winners[first..][..LANES]
                .as_mut_array()
                .expect("whole vectors");
            isa.store_bytes(winner, codes);
        }
    }
}

/// Up to 32 consecutive `values` as (even columns, odd columns).
#[inline(always)]
fn split_columns<I: Isa>(isa: I, values: &[f32]) -> (I::V, I::V) {
    let (first, second) = values.split_at(values.len().min(LANES));
    isa.deinterleave(isa.load_partial(first), isa.load_partial(second))
}

/// Each lane's window, its `top` and `bottom` rows split into columns: the pooled value
/// (ReLU of the largest plus `bias`) and its winner as a number (or [`NO_WINNER`]).
#[inline(always)]
fn pool_windows<I: Isa>(
    isa: I,
    top: (I::V, I::V),
    bottom: (I::V, I::V),
    bias: f32,
) -> (I::V, I::V) {
    // The first of the largest, in `MaxPool2d`'s row-major order.
    let (top, top_winner) = first_of_largest(isa, top, [0.0, 1.0]);
    let (bottom, bottom_winner) = first_of_largest(isa, bottom, [2.0, 3.0]);
    let lower = isa.greater(bottom, top);
    let largest = isa.select(lower, bottom, top);
    let winner = isa.select(lower, bottom_winner, top_winner);
    let activation = isa.add(largest, isa.splat(bias));
    let kept = isa.greater(activation, isa.zero());
    (
        isa.select(kept, activation, isa.zero()),
        isa.select(kept, winner, isa.splat(f32::from(NO_WINNER))),
    )
}

/// `second` where it is larger than `first`, else `first`, and the matching one of `codes`.
#[inline(always)]
fn first_of_largest<I: Isa>(
    isa: I,
    (first, second): (I::V, I::V),
    codes: [f32; 2],
) -> (I::V, I::V) {
    let later = isa.greater(second, first);
    (
        isa.select(later, second, first),
        isa.select(later, isa.splat(codes[1]), isa.splat(codes[0])),
    )
}

/// Writes each image's gradient maps into `maps`: at every position of every pooling window,
/// the pooled gradient if that position won the window, else zero. Nothing else is written.
/// Sixteen windows of a row at a time, the inverse of [`pool_map`]'s split.
#[inline(always)]
fn fill_gradient_maps<I: Isa>(
    isa: I,
    g: Geometry,
    winners: &[u8],
    output_grad: &[f32],
    maps: &mut [Block],
) {
    let [pooled_height, pooled_width] = g.pooled();
    let start = g.margin_blocks() * LANES;
    for ((map, grads), winners) in maps
        .chunks_exact_mut(g.gradient_map_stride())
        .zip(output_grad.chunks_exact(pooled_height * pooled_width))
        .zip(winners.chunks_exact(pooled_height * g.winners_row()))
    {
        let map = &mut values_mut(map)[start..];
        for (row, (grads, winners)) in grads
            .chunks_exact(pooled_width)
            .zip(winners.chunks_exact(g.winners_row()))
            .enumerate()
        {
            for first in (0..pooled_width).step_by(WINDOWS) {
                let windows = (pooled_width - first).min(WINDOWS);
                let grad = isa.load_partial(&grads[first..][..windows]);
                // A window ReLU cut ([`NO_WINNER`]) matches no position; lanes past the
                // row's last window have no gradient, whatever their winner.
                let codes = winners[first..][..LANES].as_array().expect("whole vectors");
                let winner = isa.load_bytes(codes);
                let at = 2 * row * g.width + 2 * first;
                let top = [won(isa, winner, 0.0, grad), won(isa, winner, 1.0, grad)];
                merge_columns(isa, top, &mut map[at..][..2 * windows]);
                let bottom = [won(isa, winner, 2.0, grad), won(isa, winner, 3.0, grad)];
                merge_columns(isa, bottom, &mut map[at + g.width..][..2 * windows]);
            }
        }
    }
}

/// `grad` in the lanes whose `winner` is `position`, else zero.
#[inline(always)]
fn won<I: Isa>(isa: I, winner: I::V, position: f32, grad: I::V) -> I::V {
    isa.select(isa.equal(winner, isa.splat(position)), grad, isa.zero())
}

/// Writes even and odd columns back as up to 32 consecutive `values`.
#[inline(always)]
fn merge_columns<I: Isa>(isa: I, [even, odd]: [I::V; 2], values: &mut [f32]) {
    let (low, high) = isa.interleave(even, odd);
    let (first, second) = values.split_at_mut(values.len().min(LANES));
    isa.store_partial(low, first);
    isa.store_partial(high, second);
}

dispatched! {
/// A task's images' backward pass. Images whose output gradient is all zero (a step that
/// takes its gradient over part of the batch) add nothing to any gradient and are skipped:
/// the others are packed into the buffers' first slots.
fn backward_images / backward_images_kernel(
    isa: impl Isa,
    reads: &BackwardReads,
    images: &[f32],
    winners: &[u8],
    output_grad: &[f32],
    scratch: &mut Scratch,
    grads: &mut TaskGradients,
) {
    let g = reads.g;
    let (map_blocks, stride, margin) = (g.map_blocks(), g.gradient_map_stride(), g.margin_blocks());
    let image_maps = g.out_channels * stride;
    let image_padded = g.in_channels * g.padded_plane();
    let mut live = [0; IMAGES_PER_TASK];
    let count = live_images(g, output_grad, &mut live);
    let live = &live[..count];
    let Scratch { padded_channels, gradient_maps, plane_grads, weight_partials, .. } = scratch;
    for (slot, &image) in live.iter().enumerate() {
        fill_gradient_maps(
            isa,
            g,
            &winners[image * g.winners_len()..][..g.winners_len()],
            &output_grad[image * g.output_len()..][..g.output_len()],
            &mut gradient_maps[slot * image_maps..][..image_maps],
        );
        pad_channels(
            g,
            reads.norm,
            &images[image * g.image_len()..][..g.image_len()],
            &mut padded_channels[slot * image_padded..][..image_padded],
        );
    }
    let maps = &gradient_maps[..count * image_maps];
    let channels = &padded_channels[..count * image_padded];
    // Bias: the sum of each output channel's gradient maps.
    for (out_channel, bias_grad) in grads.bias.iter_mut().enumerate() {
        let mut sum = isa.zero();
        for image_maps in maps.chunks_exact(image_maps) {
            for block in &image_maps[out_channel * stride + margin..][..map_blocks] {
                sum = isa.add(sum, isa.load(block));
            }
        }
        *bias_grad += isa.lane_sum(sum);
    }
    // Weight: each output channel's gradient maps against each patch row.
    let operands = DotOperands {
        a: maps,
        a_rows: g.out_channels,
        a_image_stride: image_maps,
        a_row_stride: stride,
        a_offset: margin,
        b: Shifted { values: channels, starts: &reads.patch_starts },
        b_image_stride: image_padded,
        images: count,
        len: map_blocks,
    };
    dot_products(isa, operands, weight_partials, &mut grads.weight);
    // Input: every gradient map read back through every tap of its kernel (the input
    // gradient of a skipped image stays zero).
    let Some(input_grad) = grads.input.as_deref_mut() else {
        return;
    };
    for (image_maps, &image) in maps.chunks_exact(image_maps).zip(live) {
        let image_grad = &mut input_grad[image * g.image_len()..][..g.image_len()];
        let shifted_back = Shifted { values: values(image_maps), starts: &reads.back_starts };
        broadcast_product(isa, &reads.transposed_weight, shifted_back, plane_grads, g.plane_blocks());
        for (channel_grad, plane_grad) in image_grad
            .chunks_exact_mut(g.plane())
            .zip(plane_grads.chunks_exact(g.plane_blocks()))
        {
            channel_grad.copy_from_slice(&values(plane_grad)[..g.plane()]);
            // Through the standardisation: `d(x − mean) / std`.
            if reads.norm != Standardise::NONE {
                for grad in channel_grad.iter_mut() {
                    *grad /= reads.norm.std;
                }
            }
        }
    }
}
}

/// Writes into `live` the indices of the images (of a task) whose output gradient has a
/// non-zero value, in order, and returns how many there are.
fn live_images(g: Geometry, output_grad: &[f32], live: &mut [usize; IMAGES_PER_TASK]) -> usize {
    let mut count = 0;
    for (image, grad) in output_grad.chunks_exact(g.output_len()).enumerate() {
        // Every value's bits but the sign, or-ed together: zero for +0 and −0 alone, and a
        // loop without an early exit, which the compiler runs on vectors.
        if grad
            .iter()
            .fold(0, |bits, value| bits | value.to_bits() << 1)
            != 0
        {
            live[count] = image;
            count += 1;
        }
    }
    count
}

fn add_assign(sum: &mut [f32], part: &[f32]) {
    for (sum, part) in sum.iter_mut().zip(part) {
        *sum += part;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{Baseline, Isa};
    use crate::test_support::{assert_close, pseudo_random};

    /// The textbook loops, one value at a time.
    fn reference(g: Geometry, input: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
        let [ph, pw] = g.pooled();
        let k = g.kernel;
        let conv = |b: usize, co: usize, y: usize, x: usize| {
            let mut sum = bias[co];
            for ci in 0..g.in_channels {
                for ky in 0..k {
                    for kx in 0..k {
                        sum += weight[((co * g.in_channels + ci) * k + ky) * k + kx]
                            * input
                                [((b * g.in_channels + ci) * g.height + y + ky) * g.width + x + kx];
                    }
                }
            }
            sum.max(0.0)
        };
        let mut out = Vec::new();
        for b in 0..g.batch {
            for co in 0..g.out_channels {
                for py in 0..ph {
                    for px in 0..pw {
                        let values = [(0, 0), (0, 1), (1, 0), (1, 1)]
                            .map(|(dy, dx)| conv(b, co, 2 * py + dy, 2 * px + dx));
                        out.push(values.into_iter().fold(f32::MIN, f32::max));
                    }
                }
            }
        }
        out
    }

    /// A block's shapes: `[batch, in_channels, out_channels, kernel, height, width]`.
    fn geometry([batch, in_channels, out_channels, kernel, height, width]: [usize; 6]) -> Geometry {
        Geometry::of(
            [batch, in_channels, height, width],
            [out_channels, in_channels, kernel, kernel],
        )
        .expect("the test's shapes fit")
    }

    /// Input, weight and bias for `g`.
    fn random_block(g: Geometry, seed: u32) -> [Vec<f32>; 3] {
        [
            pseudo_random(g.batch * g.image_len(), seed),
            pseudo_random(g.weight_len(), seed + 1),
            pseudo_random(g.out_channels, seed + 2),
        ]
    }

    #[test]
    fn shapes_that_leave_no_pooled_output_are_refused() {
        // A 5×5 kernel on a 5×5 input leaves a 1×1 map: no 2×2 window to pool.
        assert_eq!(Geometry::of([1, 1, 5, 5], [1, 1, 5, 5]), None);
        assert_eq!(
            Geometry::of([1, 1, 5, 9], [1, 1, 4, 4]),
            Some(geometry([1, 1, 1, 4, 5, 9]))
        );
        assert_eq!(Geometry::of([1, 1, 9, 5], [1, 1, 5, 5]), None);
        assert_eq!(Geometry::of([1, 1, 9, 9], [1, 1, 0, 0]), None);
        assert_eq!(Geometry::of([1, 2, 9, 9], [1, 1, 3, 3]), None);
        assert_eq!(Geometry::of([1, 1, 9, 9], [1, 1, 3, 2]), None);
    }

    /// For every shape the kernels accept, the odd map sizes (where pooling drops a row or a
    /// column) included, a gradient map's margin covers every tap's shift back and its stride
    /// a whole input plane after it: the input gradient reads nothing of the next map.
    #[test]
    fn gradient_maps_cover_every_shift_back() {
        for kernel in 1..=7 {
            for height in kernel + 1..=30 {
                for width in kernel + 1..=30 {
                    let g = Geometry::of([1, 1, height, width], [1, 1, kernel, kernel])
                        .expect("a map of at least 2×2");
                    let largest_shift = g.shifts().last().copied().expect("a tap");
                    assert_eq!(g.largest_shift(), largest_shift);
                    assert!(g.margin_blocks() * LANES >= largest_shift);
                    assert!(g.gradient_map_stride() >= g.margin_blocks() + g.plane_blocks());
                    assert!(g.map_blocks() * LANES <= g.plane_blocks() * LANES + LANES);
                }
            }
        }
    }

    #[test]
    fn forward_matches_the_textbook_loops() {
        for g in [
            [3, 1, 4, 5, 28, 28],
            [9, 3, 5, 3, 12, 12],
            [2, 2, 3, 2, 9, 8],
            [2, 2, 3, 3, 13, 10],
            [2, 2, 3, 3, 9, 40],
        ]
        .map(geometry)
        {
            let [input, weight, bias] = random_block(g, 1);
            let fast = forward(g, Standardise::NONE, &input, &weight, &bias).output;
            assert_close(&fast, &reference(g, &input, &weight, &bias), 1e-5);
        }
    }

    /// Everything a block computes for a batch of one task with `isa`: output, winners,
    /// and the gradients of weight, bias and input, as bits.
    fn everything<I: Isa>(isa: I, g: Geometry, seed: u32) -> Vec<Vec<u32>> {
        let [input, weight, bias] = random_block(g, seed);
        let output_grad = pseudo_random(g.batch * g.output_len(), seed + 3);
        let mut output = vec![0.0; g.batch * g.output_len()];
        let mut winners = vec![NO_WINNER; g.batch * g.winners_len()];
        let mut scratch = Scratch::new(g);
        let forward_reads = ForwardReads {
            g,
            norm: Standardise::NONE,
            weight: Panels::of(&weight, g.out_channels, g.patch_rows()),
            bias: &bias,
            patch_starts: g.patch_starts(),
        };
        for ((image, output), winners) in input
            .chunks_exact(g.image_len())
            .zip(output.chunks_exact_mut(g.output_len()))
            .zip(winners.chunks_exact_mut(g.winners_len()))
        {
            forward_image_kernel(isa, &forward_reads, image, &mut scratch, output, winners);
        }
        let mut input_grad = vec![0.0; input.len()];
        let mut grads = TaskGradients {
            weight: vec![0.0; g.weight_len()],
            bias: vec![0.0; g.out_channels],
            input: Some(&mut input_grad),
        };
        let reads = BackwardReads {
            g,
            norm: Standardise::NONE,
            patch_starts: g.patch_starts(),
            back_starts: g.back_starts(),
            transposed_weight: transposed_weight(g, &weight),
        };
        backward_images_kernel(
            isa,
            &reads,
            &input,
            &winners,
            &output_grad,
            &mut scratch,
            &mut grads,
        );
        let TaskGradients { weight, bias, .. } = grads;
        let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect();
        let winners = winners.iter().map(|&w| u32::from(w)).collect();
        vec![
            bits(&output),
            winners,
            bits(&weight),
            bits(&bias),
            bits(&input_grad),
        ]
    }

    /// Batches of one task, with odd sizes everywhere: rows of tiles and of blocks cut short;
    /// the second has maps long enough to be multiplied image by image, the third rows of
    /// more pooling windows than a vector has lanes.
    const ODD_BLOCKS: [[usize; 6]; 3] = [
        [3, 4, 7, 3, 14, 13],
        [3, 2, 7, 5, 28, 27],
        [2, 2, 3, 3, 9, 40],
    ];

    /// Every instruction set this machine has computes the same bits as plain arrays with
    /// the same fused multiply-adds: each lane's arithmetic does not depend on the width.
    #[test]
    fn every_instruction_set_computes_the_same_bits() {
        for g in ODD_BLOCKS.map(geometry) {
            same_bits_on_every_instruction_set(g);
        }
    }

    fn same_bits_on_every_instruction_set(g: Geometry) {
        let lane_by_lane = everything(Baseline::<true>, g, 9);
        assert!(
            lane_by_lane
                .iter()
                .all(|values| values.iter().any(|&v| v != 0))
        );
        #[cfg(target_arch = "x86_64")]
        {
            use crate::simd::{Avx2, Avx512};
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") && has!("fma") {
                // SAFETY: the CPU has the features.
                let isa = unsafe { Avx2::assume_present() };
                assert_eq!(everything(isa, g, 9), lane_by_lane);
            }
            if has!("avx512f") && has!("avx2") && has!("fma") {
                // SAFETY: the CPU has the features.
                let isa = unsafe { Avx512::assume_present() };
                assert_eq!(everything(isa, g, 9), lane_by_lane);
            }
        }
    }

    /// The public passes (threads, tasks and the widest instruction set) compute what one
    /// task does with plain arrays; without fused multiply-adds, the baseline build (what
    /// CPUs without AVX2 and FMA, and other architectures, run) agrees to rounding.
    #[test]
    fn the_public_passes_agree_with_the_baseline() {
        for g in ODD_BLOCKS.map(geometry) {
            public_passes_agree_with_the_baseline(g);
        }
    }

    fn public_passes_agree_with_the_baseline(g: Geometry) {
        let [input, weight, bias] = random_block(g, 9);
        let output_grad = pseudo_random(g.batch * g.output_len(), 12);
        let forward = forward(g, Standardise::NONE, &input, &weight, &bias);
        let backward = backward(
            g,
            Standardise::NONE,
            &input,
            &weight,
            &forward.winners,
            &output_grad,
            true,
        );
        let public = [
            forward.output,
            backward.weight,
            backward.bias,
            backward.input.expect("asked for"),
        ];
        let floats = |bits: &[u32]| bits.iter().map(|&b| f32::from_bits(b)).collect::<Vec<_>>();
        let fused = cfg!(target_arch = "x86_64") && fma_detected();
        for (reference, tolerance) in
            [(Baseline::<false>, 1e-4)].map(|(isa, t)| (everything(isa, g, 9), t))
        {
            let reference = [0, 2, 3, 4].map(|i| floats(&reference[i]));
            for (public, reference) in public.iter().zip(&reference) {
                assert_close(public, reference, tolerance);
            }
        }
        if fused {
            let lane_by_lane = everything(Baseline::<true>, g, 9);
            let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            for (public, reference) in public.iter().zip([0, 2, 3, 4].map(|i| &lane_by_lane[i])) {
                assert_eq!(&bits(public), reference);
            }
        }
    }

    /// A step that takes its gradient over part of the batch leaves the others' output
    /// gradient zero; those images are skipped, and the gradients are those of the batch of
    /// the other images alone (the input's bit for bit, image by image).
    #[test]
    fn images_without_gradient_add_nothing() {
        let g = geometry([20, 2, 3, 3, 12, 12]);
        let [input, weight, bias] = random_block(g, 4);
        let winners = forward(g, Standardise::NONE, &input, &weight, &bias).winners;
        let mut output_grad = pseudo_random(g.batch * g.output_len(), 7);
        let live = |image: usize| image % 3 == 1 || image >= 16;
        for (image, grad) in output_grad.chunks_exact_mut(g.output_len()).enumerate() {
            if !live(image) {
                grad.fill(0.0);
            }
        }
        let all = backward(
            g,
            Standardise::NONE,
            &input,
            &weight,
            &winners,
            &output_grad,
            true,
        );
        let kept: Vec<usize> = (0..g.batch).filter(|&image| live(image)).collect();
        let pick = |values: &[f32], len: usize| -> Vec<f32> {
            kept.iter()
                .flat_map(|&image| values[image * len..][..len].to_vec())
                .collect()
        };
        let alone_g = Geometry {
            batch: kept.len(),
            ..g
        };
        let alone = backward(
            alone_g,
            Standardise::NONE,
            &pick(&input, g.image_len()),
            &weight,
            &kept
                .iter()
                .flat_map(|&i| winners[i * g.winners_len()..][..g.winners_len()].to_vec())
                .collect::<Vec<_>>(),
            &pick(&output_grad, g.output_len()),
            true,
        );
        assert_close(&all.weight, &alone.weight, 1e-5);
        assert_close(&all.bias, &alone.bias, 1e-5);
        let all_input = all.input.expect("asked for");
        assert_eq!(
            pick(&all_input, g.image_len()),
            alone.input.expect("asked for")
        );
        for image in (0..g.batch).filter(|&image| !live(image)) {
            assert!(
                all_input[image * g.image_len()..][..g.image_len()]
                    .iter()
                    .all(|&v| v == 0.0)
            );
        }
    }

    fn fma_detected() -> bool {
        #[cfg(target_arch = "x86_64")]
        return std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        #[cfg(not(target_arch = "x86_64"))]
        false
    }
}
