//! From items to tensors: the single place pixels become network inputs.

use crate::PIXELS;
use crate::augment::Augmentation;
use crate::input::images_to_input;
use crate::mnist::MnistItem;
use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;
use model::IMAGE_SIDE;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rayon::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A batch ready for the network.
#[derive(Clone, Debug)]
pub struct MnistBatch {
    /// `[batch, 1, 28, 28]`, scaled by [`pixel_to_input`](crate::pixel_to_input).
    pub images: Tensor<4>,
    /// `[batch]` class indices.
    pub targets: Tensor<1, Int>,
}

/// Stacks [`MnistItem`]s into an [`MnistBatch`] with one allocation per tensor, distorting
/// each image first when built with [`augmented`](Self::augmented).
#[derive(Clone, Debug, Default)]
pub struct MnistBatcher {
    augmenter: Option<Arc<Augmenter>>,
}

/// The distortion and the seeded stream it draws from: batch `n` of a run always gets the
/// same draws, whichever thread makes it, so an augmented run is as repeatable as a plain one.
#[derive(Debug)]
struct Augmenter {
    augmentation: Augmentation,
    seed: u64,
    next_batch: AtomicU64,
}

impl MnistBatcher {
    /// A batcher for training images: each gets its own random distortion, drawn from `seed`.
    /// `first_batch` is how many batches an interrupted run had already drawn, so a resumed
    /// run continues the stream instead of repeating it.
    pub fn augmented(augmentation: Augmentation, seed: u64, first_batch: u64) -> Self {
        Self {
            augmenter: Some(Arc::new(Augmenter {
                augmentation,
                seed,
                next_batch: AtomicU64::new(first_batch),
            })),
        }
    }
}

impl Batcher<MnistItem, MnistBatch> for MnistBatcher {
    fn batch(&self, items: Vec<MnistItem>, device: &Device) -> MnistBatch {
        let labels: Vec<i64> = items.iter().map(|item| i64::from(item.label)).collect();
        let targets = Tensor::from_data(TensorData::new(labels, [items.len()]), device);
        let images = match &self.augmenter {
            None => images_to_input(items.iter().map(|item| &item.pixels), device),
            Some(augmenter) => {
                let batch = augmenter.next_batch.fetch_add(1, Ordering::Relaxed);
                let mut inputs = vec![0.0; items.len() * PIXELS];
                // Images are distorted in parallel, each from its own stream (the seed, the
                // batch number and its place in the batch), so threads cannot change the draws.
                inputs
                    .par_chunks_exact_mut(PIXELS)
                    .zip(items.par_iter())
                    .enumerate()
                    .for_each(|(position, (slot, item))| {
                        let stream =
                            (batch << 16 | position as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                        let mut rng = StdRng::seed_from_u64(augmenter.seed ^ stream);
                        augmenter.augmentation.apply(&item.pixels, &mut rng, slot);
                    });
                Tensor::from_data(
                    TensorData::new(inputs, [items.len(), 1, IMAGE_SIDE, IMAGE_SIDE]),
                    device,
                )
            }
        };
        MnistBatch { images, targets }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_order_shape_and_scale() {
        let mut first = [0u8; PIXELS];
        first[0] = 255;
        let second = [51u8; PIXELS];
        let items = vec![
            MnistItem {
                pixels: first,
                label: 3,
            },
            MnistItem {
                pixels: second,
                label: 8,
            },
        ];
        let batch = MnistBatcher::default().batch(items, &Device::flex());
        assert_eq!(batch.images.dims(), [2, 1, 28, 28]);
        let targets: Vec<i64> = batch.targets.into_data().try_into_vec_as::<i64>().unwrap();
        assert_eq!(targets, vec![3, 8]);
        let pixels: Vec<f32> = batch.images.into_data().try_into_vec_as::<f32>().unwrap();
        assert_eq!(pixels[0], 1.0);
        assert_eq!(pixels[1], 0.0);
        assert!((pixels[PIXELS] - 0.2).abs() < 1e-6);
    }

    fn items() -> Vec<MnistItem> {
        (0..4u8)
            .map(|label| {
                let mut pixels = [0u8; PIXELS];
                for y in 8..20 {
                    pixels[y * IMAGE_SIDE + 10 + usize::from(label)] = 255;
                }
                MnistItem { pixels, label }
            })
            .collect()
    }

    /// Every kind of distortion at once.
    const DISTORTION: Augmentation = Augmentation {
        rotation_degrees: 10.0,
        scale: 0.1,
        shift_pixels: 2.0,
        elastic_pixels: 1.0,
    };

    fn pixels(batch: MnistBatch) -> Vec<f32> {
        batch.images.into_data().try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn augmented_batches_repeat_by_seed_and_batch_number() {
        let augmentation = DISTORTION;
        let device = Device::flex();
        let plain = pixels(MnistBatcher::default().batch(items(), &device));
        let run = MnistBatcher::augmented(augmentation, 5, 0);
        let first = pixels(run.batch(items(), &device));
        let second = pixels(run.batch(items(), &device));
        assert_ne!(first, plain);
        assert_ne!(first, second, "each batch draws anew");
        // Another run with the same seed draws the same; a resumed one picks up the stream.
        assert_eq!(
            pixels(MnistBatcher::augmented(augmentation, 5, 0).batch(items(), &device)),
            first
        );
        assert_eq!(
            pixels(MnistBatcher::augmented(augmentation, 5, 1).batch(items(), &device)),
            second
        );
        assert_ne!(
            pixels(MnistBatcher::augmented(augmentation, 6, 0).batch(items(), &device)),
            first
        );
    }
}
