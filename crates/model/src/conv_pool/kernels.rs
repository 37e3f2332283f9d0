//! The arithmetic of a `Conv2d → ReLU → MaxPool2d(2)` block on plain `f32` slices, forward
//! and backward, with the batch split across threads.
//!
//! Every inner loop is a multiply-add over a contiguous run of one channel: a convolution map
//! is kept with the *input's* row stride, so the contribution of kernel tap `(ky, kx)` to a
//! run of output positions is `map[p..] += w · input[p + ky·width + kx ..]`. The columns
//! past the right edge of the map are computed and never read. Runs are [`CHUNK`] values long,
//! a size the compiler keeps in vector registers; on x86-64 the kernels are compiled a second
//! time for AVX2 with fused multiply-add, and picked at run time.
//!
//! Pooling records, for each pooled value, which of its four inputs won (or that ReLU cut it),
//! so the backward pass sends each gradient to one position and does no other pooling work.
//!
//! Every sum is taken in an order fixed by the shapes alone, so results are the same from run
//! to run and whatever the number of threads; a CPU without FMA rounds differently in the last
//! bits.

use rayon::prelude::*;

/// The winner recorded for a pooled value that ReLU set to zero: no input won it, and no
/// gradient flows back through it.
const NO_WINNER: u8 = u8::MAX;

/// Images per parallel task in the backward pass. Each task sums its own weight gradient and
/// the partial sums are added in task order, so results do not depend on the thread count.
const IMAGES_PER_TASK: usize = 8;

/// Values computed together, in vector registers, by the innermost loops.
const CHUNK: usize = 32;

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
        let geometry = Self {
            batch,
            in_channels,
            out_channels,
            kernel,
            height,
            width,
        };
        if !fits {
            return None;
        }
        // The kernels read a whole span from every tap's shift without bounds checks in
        // their inner loops; the chunk of zeros after each padded channel must cover it.
        let largest_shift = geometry.shifts().last().copied().unwrap_or(0);
        assert!(
            geometry.span() + largest_shift <= geometry.padded_plane(),
            "the padding of {geometry:?} does not cover a span"
        );
        Some(geometry)
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

    fn weight_len(&self) -> usize {
        self.out_channels * self.in_channels * self.taps()
    }

    /// Length of the part of a convolution map that pooling reads, rounded up to whole
    /// chunks. Tap `(ky, kx)` reads the input from `ky·width + kx` on, for this long.
    fn span(&self) -> usize {
        let [height, width] = self.pooled();
        ((2 * height - 1) * self.width + 2 * width).next_multiple_of(CHUNK)
    }

    /// An input channel followed by a chunk of zeros, so that every tap can read a whole
    /// span: `span + largest shift <= plane + CHUNK`.
    fn padded_plane(&self) -> usize {
        self.plane() + CHUNK
    }

    /// The largest shift of a kernel tap: the zeros before each gradient map, so that the
    /// input gradient can read a chunk before a map's start.
    fn margin(&self) -> usize {
        (self.kernel - 1) * (self.width + 1)
    }

    /// One gradient map: the margin, then whole chunks covering the input plane.
    fn padded_map(&self) -> usize {
        self.margin() + self.plane().next_multiple_of(CHUNK)
    }

    /// Where each kernel tap starts reading, relative to an output position.
    fn shifts(&self) -> Vec<usize> {
        (0..self.taps())
            .map(|tap| tap / self.kernel * self.width + tap % self.kernel)
            .collect()
    }
}

/// The block's output, `[batch, out_channels, pooled height, pooled width]`, and what the
/// backward pass needs to know of the pooling.
pub(crate) struct BlockOutput {
    pub output: Vec<f32>,
    pub winners: Vec<u8>,
}

/// `MaxPool2d(2)(ReLU(conv(input, weight) + bias))`.
pub(crate) fn forward(
    geometry: Geometry,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
) -> BlockOutput {
    let g = geometry;
    assert_eq!(input.len(), g.batch * g.image_len());
    assert_eq!(weight.len(), g.weight_len());
    assert_eq!(bias.len(), g.out_channels);
    let mut output = vec![0.0; g.batch * g.output_len()];
    let mut winners = vec![NO_WINNER; output.len()];
    output
        .par_chunks_mut(g.output_len())
        .zip(winners.par_chunks_mut(g.output_len()))
        .zip(input.par_chunks(g.image_len()))
        .for_each_init(
            || Scratch::new(g, 1),
            |scratch, ((output, winners), image)| {
                forward_image(g, image, weight, bias, scratch, output, winners)
            },
        );
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
    assert_eq!(winners.len(), output_grad.len());
    let task = |index: usize, input_grad: Option<&mut [f32]>| {
        let first = index * IMAGES_PER_TASK;
        let images = (g.batch - first).min(IMAGES_PER_TASK);
        let outputs = first * g.output_len()..(first + images) * g.output_len();
        let mut grads = TaskGradients {
            weight: vec![0.0; g.weight_len()],
            bias: vec![0.0; g.out_channels],
            input: input_grad,
        };
        backward_images(
            g,
            &input[first * g.image_len()..][..images * g.image_len()],
            weight,
            &winners[outputs.clone()],
            &output_grad[outputs],
            &mut Scratch::new(g, images),
            &mut grads,
        );
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

/// One task's gradients: its own sums for the weight and bias, its images' part of the input.
struct TaskGradients<'a> {
    weight: Vec<f32>,
    bias: Vec<f32>,
    input: Option<&'a mut [f32]>,
}

/// A task's buffers.
struct Scratch {
    shifts: Vec<usize>,
    /// Each image's channels, each followed by a chunk of zeros (see
    /// [`Geometry::padded_plane`]).
    padded_channels: Vec<f32>,
    /// A convolution map (forward), or each image's gradient maps, one per output channel
    /// (backward), each after `margin` zeros (see [`Geometry::padded_map`]).
    maps: Vec<f32>,
    /// Two channels of the input gradient, each in whole chunks.
    plane_grad: Vec<f32>,
}

impl Scratch {
    fn new(g: Geometry, images: usize) -> Self {
        Self {
            shifts: g.shifts(),
            padded_channels: vec![0.0; images * g.in_channels * g.padded_plane()],
            // At least two: the forward pass convolves two output channels at a time.
            maps: vec![0.0; (images * g.out_channels).max(2) * g.padded_map()],
            plane_grad: vec![0.0; 2 * g.plane().next_multiple_of(CHUNK)],
        }
    }

    /// Copies images' channels into `padded_channels`, whose padding stays zero.
    fn pad_channels(&mut self, g: Geometry, images: &[f32]) {
        for (channel, padded) in images
            .chunks_exact(g.plane())
            .zip(self.padded_channels.chunks_exact_mut(g.padded_plane()))
        {
            padded[..g.plane()].copy_from_slice(channel);
        }
    }
}

/// Defines `$kernel`, generic over `FMA` (whether its multiply-adds are fused), from a body,
/// and `$name`, the function callers use, which runs that body compiled for the widest vectors
/// the CPU has: AVX-512 (sixteen lanes), else AVX2 and FMA (eight lanes and one instruction
/// per multiply-add, instead of baseline x86-64's four lanes and two), else baseline code.
/// Every lane does the same arithmetic in the same order at any width, so all three give
/// identical results.
macro_rules! dispatched {
    (
        $(#[$meta:meta])*
        fn $name:ident / $kernel:ident($($arg:ident: $ty:ty),* $(,)?) $body:block
    ) => {
        #[inline(always)]
        fn $kernel<const FMA: bool>($($arg: $ty),*) $body

        $(#[$meta])*
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn with_avx512($($arg: $ty),*) {
                    $kernel::<true>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn with_avx2($($arg: $ty),*) {
                    $kernel::<true>($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU was just found to have the features it enables.
                    return unsafe { with_avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU was just found to have the features it enables.
                    return unsafe { with_avx2($($arg),*) };
                }
            }
            $kernel::<false>($($arg),*)
        }
    };
}

dispatched! {
/// One image's forward pass. Output channels are convolved two at a time: each input value
/// loaded feeds both, which halves the loads per multiply-add without changing any channel's
/// arithmetic or its order (an odd last channel is computed twice over rather than branch in
/// the loop).
fn forward_image / forward_image_kernel(
    g: Geometry,
    image: &[f32],
    weight: &[f32],
    bias: &[f32],
    scratch: &mut Scratch,
    output: &mut [f32],
    winners: &mut [u8],
) {
    let pooled = g.pooled()[0] * g.pooled()[1];
    let kernels_len = g.in_channels * g.taps();
    scratch.pad_channels(g, image);
    let (first_map, rest) = scratch.maps.split_at_mut(g.span());
    let second_map = &mut rest[..g.span()];
    let channels = Channels {
        g,
        padded: &scratch.padded_channels,
        shifts: &scratch.shifts,
    };
    for out_channel in (0..g.out_channels).step_by(2) {
        let next = (out_channel + 1).min(g.out_channels - 1);
        let kernels = |channel: usize| &weight[channel * kernels_len..][..kernels_len];
        channels.convolve_pair::<FMA>([kernels(out_channel), kernels(next)], first_map, second_map);
        for (channel, map) in [(out_channel, &*first_map), (next, &*second_map)] {
            pool_map(
                g,
                map,
                bias[channel],
                &mut output[channel * pooled..][..pooled],
                &mut winners[channel * pooled..][..pooled],
            );
        }
    }
}
}

/// An image's padded input channels, read through a kernel's taps.
struct Channels<'a> {
    g: Geometry,
    padded: &'a [f32],
    shifts: &'a [usize],
}

impl Channels<'_> {
    /// `map = Σ over channels and taps of w · shifted channel` for two output channels at
    /// once, each summed in the order it would be alone.
    #[inline(always)]
    fn convolve_pair<const FMA: bool>(
        &self,
        [first, second]: [&[f32]; 2],
        first_map: &mut [f32],
        second_map: &mut [f32],
    ) {
        let taps = self.g.taps();
        for ((start, first_chunk), second_chunk) in (0..)
            .step_by(CHUNK)
            .zip(first_map.as_chunks_mut::<CHUNK>().0)
            .zip(second_map.as_chunks_mut::<CHUNK>().0)
        {
            let (mut first_sum, mut second_sum) = ([0.0f32; CHUNK], [0.0f32; CHUNK]);
            for ((channel, first_kernel), second_kernel) in self
                .padded
                .chunks_exact(self.g.padded_plane())
                .zip(first.chunks_exact(taps))
                .zip(second.chunks_exact(taps))
            {
                for ((&a, &b), &shift) in first_kernel.iter().zip(second_kernel).zip(self.shifts) {
                    let source = &channel[start + shift..][..CHUNK];
                    multiply_add::<FMA>(&mut first_sum, a, source);
                    multiply_add::<FMA>(&mut second_sum, b, source);
                }
            }
            (*first_chunk, *second_chunk) = (first_sum, second_sum);
        }
    }
}

/// ReLU and 2×2 max pooling of one convolution `map` (plus its channel's `bias`) into
/// `output`, recording each window's winner (or [`NO_WINNER`] where ReLU cut it).
#[inline(always)]
fn pool_map(g: Geometry, map: &[f32], bias: f32, output: &mut [f32], winners: &mut [u8]) {
    let pooled_width = g.pooled()[1];
    for (row, (output, winners)) in output
        .chunks_exact_mut(pooled_width)
        .zip(winners.chunks_exact_mut(pooled_width))
        .enumerate()
    {
        let top = &map[2 * row * g.width..][..2 * pooled_width];
        let bottom = &map[(2 * row + 1) * g.width..][..2 * pooled_width];
        for (((value, winner), top), bottom) in output
            .iter_mut()
            .zip(winners)
            .zip(top.chunks_exact(2))
            .zip(bottom.chunks_exact(2))
        {
            // The first of the largest, in `MaxPool2d`'s row-major order.
            let first = |a: (f32, u8), b: (f32, u8)| if b.0 > a.0 { b } else { a };
            let (largest, best) = first(
                first((top[0], 0), (top[1], 1)),
                first((bottom[0], 2), (bottom[1], 3)),
            );
            let activation = largest + bias;
            (*value, *winner) = if activation > 0.0 {
                (activation, best)
            } else {
                (0.0, NO_WINNER)
            };
        }
    }
}

dispatched! {
/// A task's images' backward pass.
fn backward_images / backward_images_kernel(
    g: Geometry,
    images: &[f32],
    weight: &[f32],
    winners: &[u8],
    output_grad: &[f32],
    scratch: &mut Scratch,
    grads: &mut TaskGradients,
) {
    let [pooled_height, pooled_width] = g.pooled();
    let pooled = pooled_height * pooled_width;
    let (span, margin, padded_map) = (g.span(), g.margin(), g.padded_map());
    let offsets = [0, 1, g.width, g.width + 1];
    scratch.pad_channels(g, images);
    // The gradient of each convolution map: the pooled gradient at its window's winner,
    // zero elsewhere.
    for ((map, grads_in), winners) in scratch
        .maps
        .chunks_exact_mut(padded_map)
        .zip(output_grad.chunks_exact(pooled))
        .zip(winners.chunks_exact(pooled))
    {
        map.fill(0.0);
        let map = &mut map[margin..];
        for (row, (grads_in, winners)) in grads_in
            .chunks_exact(pooled_width)
            .zip(winners.chunks_exact(pooled_width))
            .enumerate()
        {
            let map_row = &mut map[2 * row * g.width..];
            for (column, (&grad, &winner)) in grads_in.iter().zip(winners).enumerate() {
                if winner != NO_WINNER {
                    map_row[2 * column + offsets[usize::from(winner)]] = grad;
                }
            }
        }
    }
    // Bias: the sum of each output channel's gradient maps.
    let maps_per_image = g.out_channels * padded_map;
    for (out_channel, bias_grad) in grads.bias.iter_mut().enumerate() {
        let mut sums = [0.0f32; CHUNK];
        for maps in scratch.maps.chunks_exact(maps_per_image) {
            let map = &maps[out_channel * padded_map + margin..][..span];
            for chunk in map.as_chunks::<CHUNK>().0 {
                for (sum, value) in sums.iter_mut().zip(chunk) {
                    *sum += value;
                }
            }
        }
        *bias_grad += reduce(sums);
    }
    // Weight: each tap's gradient is the dot product of the gradient maps and the input
    // channels read from that tap's shift, summed over the task's images before the lanes
    // are added up; two output channels at once, sharing each input load.
    let (channels_per_image, taps) = (g.in_channels * g.padded_plane(), g.taps());
    for out_channel in (0..g.out_channels).step_by(2) {
        let next = (out_channel + 1).min(g.out_channels - 1);
        for in_channel in 0..g.in_channels {
            for (tap, &shift) in scratch.shifts.iter().enumerate() {
                let (mut first_sums, mut second_sums) = ([0.0f32; CHUNK], [0.0f32; CHUNK]);
                for (maps, channels) in scratch
                    .maps
                    .chunks_exact(maps_per_image)
                    .zip(scratch.padded_channels.chunks_exact(channels_per_image))
                {
                    let first = &maps[out_channel * padded_map + margin..][..span];
                    let second = &maps[next * padded_map + margin..][..span];
                    let channel = &channels[in_channel * g.padded_plane() + shift..][..span];
                    for ((first, second), channel) in first
                        .as_chunks::<CHUNK>()
                        .0
                        .iter()
                        .zip(second.as_chunks::<CHUNK>().0)
                        .zip(channel.as_chunks::<CHUNK>().0)
                    {
                        multiply_add_each::<FMA>(&mut first_sums, first, channel);
                        multiply_add_each::<FMA>(&mut second_sums, second, channel);
                    }
                }
                let at = |channel: usize| (channel * g.in_channels + in_channel) * taps + tap;
                grads.weight[at(out_channel)] += reduce(first_sums);
                // An odd last channel was computed twice over; it is added once.
                if next != out_channel {
                    grads.weight[at(next)] += reduce(second_sums);
                }
            }
        }
    }
    // Input: every gradient map read back through every tap of its kernel, a chunk of the
    // input plane at a time, for two input channels at once (each map value loaded feeds
    // both; an odd last channel is computed twice over rather than branch in the loop).
    let Some(input_grad) = grads.input.as_deref_mut() else {
        return;
    };
    let (plane, taps) = (g.plane(), g.taps());
    let (first_grad, second_grad) = scratch
        .plane_grad
        .split_at_mut(plane.next_multiple_of(CHUNK));
    for (maps, image_grad) in scratch
        .maps
        .chunks_exact(maps_per_image)
        .zip(input_grad.chunks_exact_mut(g.image_len()))
    {
        for in_channel in (0..g.in_channels).step_by(2) {
            let next = (in_channel + 1).min(g.in_channels - 1);
            for ((start, first_chunk), second_chunk) in (0..)
                .step_by(CHUNK)
                .zip(first_grad.as_chunks_mut::<CHUNK>().0)
                .zip(second_grad.as_chunks_mut::<CHUNK>().0)
            {
                let (mut first_sum, mut second_sum) = ([0.0f32; CHUNK], [0.0f32; CHUNK]);
                for (map, kernels) in maps
                    .chunks_exact(padded_map)
                    .zip(weight.chunks_exact(g.in_channels * taps))
                {
                    let first = &kernels[in_channel * taps..][..taps];
                    let second = &kernels[next * taps..][..taps];
                    for ((&a, &b), &shift) in first.iter().zip(second).zip(&scratch.shifts) {
                        let source = &map[margin + start - shift..][..CHUNK];
                        multiply_add::<FMA>(&mut first_sum, a, source);
                        multiply_add::<FMA>(&mut second_sum, b, source);
                    }
                }
                (*first_chunk, *second_chunk) = (first_sum, second_sum);
            }
            image_grad[in_channel * plane..][..plane].copy_from_slice(&first_grad[..plane]);
            image_grad[next * plane..][..plane].copy_from_slice(&second_grad[..plane]);
        }
    }
}
}

/// `sum += w · source`.
#[inline(always)]
fn multiply_add<const FMA: bool>(sum: &mut [f32; CHUNK], w: f32, source: &[f32]) {
    for (sum, &source) in sum.iter_mut().zip(source) {
        *sum = if FMA {
            w.mul_add(source, *sum)
        } else {
            *sum + w * source
        };
    }
}

/// `sum += a · b`, element by element.
#[inline(always)]
fn multiply_add_each<const FMA: bool>(sum: &mut [f32; CHUNK], a: &[f32; CHUNK], b: &[f32; CHUNK]) {
    for ((sum, &a), &b) in sum.iter_mut().zip(a).zip(b) {
        *sum = if FMA {
            a.mul_add(b, *sum)
        } else {
            *sum + a * b
        };
    }
}

/// The sum of the lanes, added pairwise. Kept out of line: inlined, it leads the compiler to
/// vectorise the loops that fill `sums` two lanes at a time.
#[inline(never)]
fn reduce(mut sums: [f32; CHUNK]) -> f32 {
    let mut width = CHUNK;
    while width > 1 {
        width /= 2;
        for lane in 0..width {
            sums[lane] += sums[lane + width];
        }
    }
    sums[0]
}

fn add_assign(sum: &mut [f32], part: &[f32]) {
    for (sum, part) in sum.iter_mut().zip(part) {
        *sum += part;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::assert_close;

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

    fn pseudo_random(len: usize, seed: u32) -> Vec<f32> {
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

    /// Every shape the kernels accept satisfies the padding invariant `of` asserts, the odd
    /// map sizes (where pooling drops a row or a column) included.
    #[test]
    fn the_padding_covers_every_span() {
        for kernel in 1..=7 {
            for height in kernel + 1..=30 {
                for width in kernel + 1..=30 {
                    let g = Geometry::of([1, 1, height, width], [1, 1, kernel, kernel]);
                    assert!(g.is_some(), "{kernel} {height} {width}");
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
        ]
        .map(geometry)
        {
            let [input, weight, bias] = random_block(g, 1);
            let fast = forward(g, &input, &weight, &bias).output;
            assert_close(&fast, &reference(g, &input, &weight, &bias), 1e-5);
        }
    }

    /// Whatever vector width this machine's build picked (AVX-512, AVX2 or none), it computes
    /// the same bits as the kernel run one lane at a time with the same fused multiply-adds:
    /// each lane's arithmetic does not depend on how many lanes there are.
    #[test]
    fn every_vector_width_computes_the_same_bits() {
        let g = geometry([3, 4, 5, 3, 14, 13]);
        let [input, weight, bias] = random_block(g, 9);
        let fused = cfg!(target_arch = "x86_64") && fma_detected();
        type ForwardKernel =
            fn(Geometry, &[f32], &[f32], &[f32], &mut Scratch, &mut [f32], &mut [u8]);
        let run = |kernel: ForwardKernel| {
            let mut output = vec![0.0; g.output_len()];
            let mut winners = vec![NO_WINNER; output.len()];
            let mut scratch = Scratch::new(g, 1);
            let image = &input[..g.image_len()];
            kernel(
                g,
                image,
                &weight,
                &bias,
                &mut scratch,
                &mut output,
                &mut winners,
            );
            output
        };
        let lane_by_lane: ForwardKernel = match fused {
            true => forward_image_kernel::<true>,
            false => forward_image_kernel::<false>,
        };
        let (vectorised, lane_by_lane) = (run(forward_image), run(lane_by_lane));
        assert!(vectorised.iter().any(|&value| value != 0.0));
        let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&vectorised), bits(&lane_by_lane));
    }

    fn fma_detected() -> bool {
        #[cfg(target_arch = "x86_64")]
        return std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// The baseline build of the kernels (what CPUs without AVX2 and FMA, and other
    /// architectures, run) computes what this machine's build computes.
    #[test]
    fn the_baseline_kernels_agree_with_the_dispatched_ones() {
        let g = geometry([5, 3, 4, 3, 12, 11]);
        let [input, weight, bias] = random_block(g, 4);
        let output_grad = pseudo_random(g.batch * g.output_len(), 7);
        let forward_with = |baseline: bool| {
            type ForwardKernel =
                fn(Geometry, &[f32], &[f32], &[f32], &mut Scratch, &mut [f32], &mut [u8]);
            let kernel: ForwardKernel = match baseline {
                true => forward_image_kernel::<false>,
                false => forward_image,
            };
            let mut output = vec![0.0; g.batch * g.output_len()];
            let mut winners = vec![NO_WINNER; output.len()];
            let mut scratch = Scratch::new(g, 1);
            for ((image, output), winners) in input
                .chunks_exact(g.image_len())
                .zip(output.chunks_exact_mut(g.output_len()))
                .zip(winners.chunks_exact_mut(g.output_len()))
            {
                kernel(g, image, &weight, &bias, &mut scratch, output, winners);
            }
            (output, winners)
        };
        let (output, winners) = forward_with(false);
        let (baseline_output, baseline_winners) = forward_with(true);
        assert_close(&output, &baseline_output, 1e-4);
        assert_eq!(winners, baseline_winners);

        let backward_with = |baseline: bool| {
            type BackwardKernel =
                fn(Geometry, &[f32], &[f32], &[u8], &[f32], &mut Scratch, &mut TaskGradients);
            let kernel: BackwardKernel = match baseline {
                true => backward_images_kernel::<false>,
                false => backward_images,
            };
            let mut input_grad = vec![0.0; input.len()];
            let mut grads = TaskGradients {
                weight: vec![0.0; g.weight_len()],
                bias: vec![0.0; g.out_channels],
                input: Some(&mut input_grad),
            };
            let mut scratch = Scratch::new(g, g.batch);
            kernel(
                g,
                &input,
                &weight,
                &winners,
                &output_grad,
                &mut scratch,
                &mut grads,
            );
            let TaskGradients { weight, bias, .. } = grads;
            [weight, bias, input_grad]
        };
        for (dispatched, baseline) in backward_with(false).iter().zip(&backward_with(true)) {
            assert!(dispatched.iter().any(|&value| value != 0.0));
            assert_close(dispatched, baseline, 1e-4);
        }
    }
}
