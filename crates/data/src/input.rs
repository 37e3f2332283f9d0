//! How a pixel becomes a network input: the one fact the batcher, the distortions and
//! inference (on the host and in a browser) all build on.

use crate::PIXELS;
use burn::prelude::*;
use model::IMAGE_SIDE;

/// The input scaling shared by training, evaluation and inference: `ToTensor()`'s `[0, 1]`.
pub fn pixel_to_input(pixel: u8) -> f32 {
    f32::from(pixel) / 255.0
}

/// Turns 28×28 grey images into the network's input tensor `[n, 1, 28, 28]`.
pub fn images_to_input<'a>(
    images: impl ExactSizeIterator<Item = &'a [u8; PIXELS]>,
    device: &Device,
) -> Tensor<4> {
    let count = images.len();
    let mut inputs = Vec::with_capacity(count * PIXELS);
    for image in images {
        inputs.extend(image.iter().copied().map(pixel_to_input));
    }
    Tensor::from_data(
        TensorData::new(inputs, [count, 1, IMAGE_SIDE, IMAGE_SIDE]),
        device,
    )
}
