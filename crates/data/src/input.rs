//! How a pixel becomes a network input: the one fact the batcher, the distortions and
//! inference all build on.

/// The input scaling shared by training, evaluation and inference: `ToTensor()`'s `[0, 1]`.
pub fn pixel_to_input(pixel: u8) -> f32 {
    f32::from(pixel) / 255.0
}
