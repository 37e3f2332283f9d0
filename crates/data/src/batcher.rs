//! From items to tensors: the single place pixels become network inputs.

use crate::PIXELS;
use crate::augment::Augmentation;
use crate::input::images_to_input;
use crate::mnist::MnistItem;
use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;
use model::IMAGE_SIDE;
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};
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
    /// `[outliers, 1, 28, 28]`: images of no digit, which the loss pushes toward no answer
    /// (Outlier Exposure); only in training batches whose batcher has an [`OutlierPool`].
    pub outliers: Option<Tensor<4>>,
}

/// Images of anything but a digit, by kind (letters, scribbles, clothes…), framed as MNIST's
/// digits are. Each draw picks a kind, then an image of it, so a large kind does not drown
/// a small one.
#[derive(Clone, Debug, Default)]
pub struct OutlierPool {
    kinds: Vec<Vec<[u8; PIXELS]>>,
}

impl OutlierPool {
    /// A pool of these kinds; empty kinds are left out.
    pub fn new(kinds: Vec<Vec<[u8; PIXELS]>>) -> Self {
        Self {
            kinds: kinds.into_iter().filter(|kind| !kind.is_empty()).collect(),
        }
    }

    /// Images in the pool.
    pub fn len(&self) -> usize {
        self.kinds.iter().map(Vec::len).sum()
    }

    /// True when there is nothing to draw.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// A kind at random, then one of its images; `None` from an empty pool.
    fn draw(&self, rng: &mut impl Rng) -> Option<&[u8; PIXELS]> {
        if self.kinds.is_empty() {
            return None;
        }
        let kind = &self.kinds[rng.random_range(0..self.kinds.len())];
        Some(&kind[rng.random_range(0..kind.len())])
    }
}

/// Stacks [`MnistItem`]s into an [`MnistBatch`] with one allocation per tensor, distorting
/// each image first and adding outliers when built with [`augmented`](Self::augmented) and
/// [`with_outliers`](Self::with_outliers).
#[derive(Clone, Debug, Default)]
pub struct MnistBatcher {
    augmenter: Option<Arc<Augmenter>>,
}

/// The distortion, the outliers and the seeded stream they draw from: batch `n` of a run
/// always gets the same draws, whichever thread makes it, so an augmented run is as
/// repeatable as a plain one.
#[derive(Debug)]
struct Augmenter {
    augmentation: Augmentation,
    seed: u64,
    next_batch: AtomicU64,
    /// The pool and how many of its images each batch gets.
    outliers: Option<(Arc<OutlierPool>, usize)>,
}

/// Distinguishes the outliers' streams from the digits' (whose streams runs without outliers
/// have always drawn from, so their results do not change).
const OUTLIER_STREAMS: u64 = 0x6F75_746C_6965_7273;

/// The stream of image `position` of batch `batch`.
fn stream(seed: u64, batch: u64, position: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ (batch << 16 | position).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Distorts each image into its slot of `inputs`, in parallel, each from its own stream
/// (the seed, the batch number and its place), so threads cannot change the draws.
fn distorted(
    augmentation: &Augmentation,
    images: &[&[u8; PIXELS]],
    seed: u64,
    batch: u64,
    inputs: &mut [f32],
) {
    inputs
        .par_chunks_exact_mut(PIXELS)
        .zip(images.par_iter())
        .enumerate()
        .for_each(|(position, (slot, pixels))| {
            let mut rng = stream(seed, batch, position as u64);
            augmentation.apply(pixels, &mut rng, slot);
        });
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
                outliers: None,
            })),
        }
    }

    /// Adds `per_batch` images drawn from `pool` to every batch of a batcher made by
    /// [`augmented`](Self::augmented) (an identity distortion for none), distorted as the
    /// digits are and from the same seed. A batcher of evaluation images has none.
    pub fn with_outliers(self, pool: Arc<OutlierPool>, per_batch: usize) -> Self {
        let Some(augmenter) = self.augmenter else {
            return self;
        };
        let augmenter = Augmenter {
            augmentation: augmenter.augmentation,
            seed: augmenter.seed,
            next_batch: AtomicU64::new(augmenter.next_batch.load(Ordering::Relaxed)),
            outliers: (per_batch > 0 && !pool.is_empty()).then_some((pool, per_batch)),
        };
        Self {
            augmenter: Some(Arc::new(augmenter)),
        }
    }
}

impl Augmenter {
    /// Batch `batch`'s outliers, as network inputs `[count, 1, 28, 28]`.
    fn outliers(&self, batch: u64, device: &Device) -> Option<Tensor<4>> {
        let (pool, count) = self.outliers.as_ref()?;
        let seed = self.seed ^ OUTLIER_STREAMS;
        let mut rng = stream(seed, batch, 0xFFFF);
        let chosen: Vec<&[u8; PIXELS]> = (0..*count).filter_map(|_| pool.draw(&mut rng)).collect();
        let mut inputs = vec![0.0; chosen.len() * PIXELS];
        distorted(&self.augmentation, &chosen, seed, batch, &mut inputs);
        Some(Tensor::from_data(
            TensorData::new(inputs, [chosen.len(), 1, IMAGE_SIDE, IMAGE_SIDE]),
            device,
        ))
    }
}

impl Batcher<MnistItem, MnistBatch> for MnistBatcher {
    fn batch(&self, items: Vec<MnistItem>, device: &Device) -> MnistBatch {
        let labels: Vec<i64> = items.iter().map(|item| i64::from(item.label)).collect();
        let targets = Tensor::from_data(TensorData::new(labels, [items.len()]), device);
        let Some(augmenter) = &self.augmenter else {
            return MnistBatch {
                images: images_to_input(items.iter().map(|item| &item.pixels), device),
                targets,
                outliers: None,
            };
        };
        let batch = augmenter.next_batch.fetch_add(1, Ordering::Relaxed);
        let mut inputs = vec![0.0; items.len() * PIXELS];
        let pixels: Vec<&[u8; PIXELS]> = items.iter().map(|item| &item.pixels).collect();
        distorted(
            &augmenter.augmentation,
            &pixels,
            augmenter.seed,
            batch,
            &mut inputs,
        );
        MnistBatch {
            images: Tensor::from_data(
                TensorData::new(inputs, [items.len(), 1, IMAGE_SIDE, IMAGE_SIDE]),
                device,
            ),
            targets,
            outliers: augmenter.outliers(batch, device),
        }
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

    /// Outliers come on top of the digits, drawn and distorted from the run's seed, and leave
    /// the digits' draws as a run without them makes them.
    #[test]
    fn outliers_join_a_batch_without_changing_its_digits() {
        let device = Device::flex();
        let letters = vec![[7u8; PIXELS], [9u8; PIXELS]];
        let mut scribble = [0u8; PIXELS];
        scribble[300] = 255;
        let pool = Arc::new(OutlierPool::new(vec![letters, Vec::new(), vec![scribble]]));
        assert_eq!(pool.len(), 3);
        let batcher =
            |seed| MnistBatcher::augmented(DISTORTION, seed, 0).with_outliers(pool.clone(), 5);
        let run = batcher(5);
        let batch = run.batch(items(), &device);
        let outliers = batch.outliers.clone().expect("outliers");
        assert_eq!(outliers.dims(), [5, 1, 28, 28]);
        let plain = MnistBatcher::augmented(DISTORTION, 5, 0).batch(items(), &device);
        assert!(plain.outliers.is_none());
        assert_eq!(pixels(batch), pixels(plain));
        let again = batcher(5).batch(items(), &device).outliers.unwrap();
        assert_eq!(
            outliers.clone().into_data().try_to_vec::<f32>().unwrap(),
            again.into_data().try_to_vec::<f32>().unwrap()
        );
        let next = run.batch(items(), &device).outliers.unwrap();
        assert_ne!(
            outliers.into_data().try_to_vec::<f32>().unwrap(),
            next.into_data().try_to_vec::<f32>().unwrap()
        );
        // An empty pool, or none per batch, adds nothing.
        let none = MnistBatcher::augmented(DISTORTION, 5, 0)
            .with_outliers(Arc::new(OutlierPool::default()), 5)
            .batch(items(), &device);
        assert!(none.outliers.is_none());
        assert!(
            MnistBatcher::default()
                .batch(items(), &device)
                .outliers
                .is_none()
        );
    }
}
