//! From items to tensors: the single place pixels become network inputs.

use crate::PIXELS;
use crate::mnist::MnistItem;
use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;
use model::IMAGE_SIDE;

/// The input scaling shared by training, evaluation and inference: `ToTensor()`'s `[0, 1]`.
pub fn pixel_to_input(pixel: u8) -> f32 {
    f32::from(pixel) / 255.0
}

/// A batch ready for the network.
#[derive(Clone, Debug)]
pub struct MnistBatch {
    /// `[batch, 1, 28, 28]`, scaled by [`pixel_to_input`].
    pub images: Tensor<4>,
    /// `[batch]` class indices.
    pub targets: Tensor<1, Int>,
}

/// Stacks [`MnistItem`]s into an [`MnistBatch`] with one allocation per tensor.
#[derive(Clone, Debug, Default)]
pub struct MnistBatcher;

impl MnistBatcher {
    /// Turns 28×28 grey images into the network's input tensor `[n, 1, 28, 28]`.
    pub fn images<'a>(
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
}

impl Batcher<MnistItem, MnistBatch> for MnistBatcher {
    fn batch(&self, items: Vec<MnistItem>, device: &Device) -> MnistBatch {
        let labels: Vec<i64> = items.iter().map(|item| i64::from(item.label)).collect();
        let targets = Tensor::from_data(TensorData::new(labels, [items.len()]), device);
        let images = Self::images(items.iter().map(|item| &item.pixels), device);
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
        let batch = MnistBatcher.batch(items, &Device::flex());
        assert_eq!(batch.images.dims(), [2, 1, 28, 28]);
        let targets: Vec<i64> = batch.targets.into_data().try_into_vec_as::<i64>().unwrap();
        assert_eq!(targets, vec![3, 8]);
        let pixels: Vec<f32> = batch.images.into_data().try_into_vec_as::<f32>().unwrap();
        assert_eq!(pixels[0], 1.0);
        assert_eq!(pixels[1], 0.0);
        assert!((pixels[PIXELS] - 0.2).abs() < 1e-6);
    }
}
