//! MNIST's test digits as if written with other pens: enlarged as a photo of them would be,
//! then thinned to a fine line or thickened to a broad marker's, and read back through the
//! preprocessing any picture takes. Their accuracy shows what the preprocessing's stroke
//! correction is worth; the same digits scaled with their stroke kept show the alternative.

use crate::{DigitClassifier, Evaluation};
use burn::data::dataset::Dataset;
use data::{MnistDataset, PIXELS};
use image::{DynamicImage, GrayImage, imageops};
use model::{ClassifyError, IMAGE_SIDE};
use rayon::prelude::*;
use std::fmt;

/// A way of redrawing a digit: enlarged `enlarge` times, its stroke then grown (positive) or
/// shrunk (negative) by `grow` pixels on each side.
#[derive(Debug, Clone, Copy)]
pub struct Pen {
    /// What it is, as printed.
    pub name: &'static str,
    enlarge: u32,
    grow: i32,
}

/// From a fine line to a broad marker. MNIST's strokes are about 9 pixels wide at 4×, 18 at
/// 8×, in a box of about 80 or 160.
pub const PENS: [Pen; 4] = [
    Pen {
        name: "a fine pen (8× size, stroke −12 px)",
        enlarge: 8,
        grow: -6,
    },
    Pen {
        name: "MNIST's own pen (4× size)",
        enlarge: 4,
        grow: 0,
    },
    Pen {
        name: "a broad pen (4× size, stroke +16 px)",
        enlarge: 4,
        grow: 8,
    },
    Pen {
        name: "a marker (4× size, stroke +28 px)",
        enlarge: 4,
        grow: 14,
    },
];

/// `pixels`, an MNIST digit, redrawn with `pen` as a picture of bright ink on black.
pub fn redrawn(pixels: &[u8; PIXELS], pen: &Pen) -> GrayImage {
    let side = IMAGE_SIDE as u32;
    let digit = GrayImage::from_raw(side, side, pixels.to_vec())
        .expect("an MNIST digit is 28×28 grey pixels");
    let enlarged = imageops::resize(
        &digit,
        side * pen.enlarge,
        side * pen.enlarge,
        imageops::FilterType::Triangle,
    );
    match pen.grow {
        0 => enlarged,
        grow if grow > 0 => data::stroke::thickened(&enlarged, grow.unsigned_abs()),
        grow => data::stroke::thinned(&enlarged, grow.unsigned_abs()),
    }
}

/// The first `count` digits of `dataset` redrawn with `pen` and preprocessed as any picture
/// is, or with their stroke kept as it is when `keep_stroke`; a picture left without ink is
/// dropped with its label.
pub fn redrawn_digits(
    dataset: &MnistDataset,
    count: usize,
    pen: &Pen,
    keep_stroke: bool,
) -> MnistDataset {
    let preprocess = match keep_stroke {
        true => data::to_mnist_keeping_stroke,
        false => data::to_mnist,
    };
    let (pixels, labels): (Vec<[u8; PIXELS]>, Vec<u8>) = (0..count.min(dataset.len()))
        .into_par_iter()
        .filter_map(|index| {
            let item = dataset.item(index)?;
            let picture = DynamicImage::ImageLuma8(redrawn(&item.pixels, pen));
            preprocess(&picture).map(|input| (input, item.label))
        })
        .unzip();
    MnistDataset::from_parts(pixels.concat(), labels)
}

/// One pen's digits, preprocessed with the stroke corrected and with it kept.
pub struct PenSet {
    /// The pen they were redrawn with.
    pub pen: Pen,
    /// Through the preprocessing any picture takes.
    pub corrected: MnistDataset,
    /// Scaled with their stroke kept as it is.
    pub kept: MnistDataset,
}

/// The first `count` digits of `dataset` redrawn with each of [`PENS`].
pub fn pen_sets(dataset: &MnistDataset, count: usize) -> Vec<PenSet> {
    PENS.iter()
        .map(|pen| PenSet {
            pen: *pen,
            corrected: redrawn_digits(dataset, count, pen, false),
            kept: redrawn_digits(dataset, count, pen, true),
        })
        .collect()
}

/// How one model reads one pen's digits, as percentages.
#[derive(Debug, Clone, Copy)]
pub struct PenFigures {
    /// Right, with the stroke corrected.
    pub accuracy: f64,
    /// Called a digit, with the stroke corrected.
    pub called_digit: f64,
    /// Right, with the stroke kept.
    pub accuracy_keeping_stroke: f64,
    /// Called a digit, with the stroke kept.
    pub called_digit_keeping_stroke: f64,
}

/// Each pen's figures for `classifier`.
pub fn measure(
    classifier: &DigitClassifier,
    sets: &[PenSet],
) -> Result<Vec<PenFigures>, ClassifyError> {
    let score = |dataset: &MnistDataset| -> Result<(f64, f64), ClassifyError> {
        let evaluation = Evaluation::run(classifier, dataset)?;
        let called = evaluation.verdict_shares().digit * 100.0;
        Ok((evaluation.accuracy, called))
    };
    sets.iter()
        .map(|set| {
            let (accuracy, called_digit) = score(&set.corrected)?;
            let (accuracy_keeping_stroke, called_digit_keeping_stroke) = score(&set.kept)?;
            Ok(PenFigures {
                accuracy,
                called_digit,
                accuracy_keeping_stroke,
                called_digit_keeping_stroke,
            })
        })
        .collect()
}

impl fmt::Display for PenFigures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.2} % right, {:.1} % called a digit (stroke kept: {:.2} % right, {:.1} %)",
            self.accuracy,
            self.called_digit,
            self.accuracy_keeping_stroke,
            self.called_digit_keeping_stroke
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 28×28 "1": a vertical bar three pixels wide.
    fn one() -> [u8; PIXELS] {
        let mut pixels = [0u8; PIXELS];
        for y in 4..24 {
            for x in 13..16 {
                pixels[y * IMAGE_SIDE + x] = 255;
            }
        }
        pixels
    }

    fn inked(image: &GrayImage) -> usize {
        image.pixels().filter(|p| p.0[0] > 127).count()
    }

    #[test]
    fn pens_run_from_fine_to_broad() {
        let ink: Vec<f64> = PENS
            .iter()
            .map(|pen| inked(&redrawn(&one(), pen)) as f64 / f64::from(pen.enlarge.pow(2)))
            .collect();
        // Ink per original pixel grows from the fine pen to the marker.
        assert!(ink.windows(2).all(|w| w[0] < w[1]), "{ink:?}");
    }

    #[test]
    fn redrawn_digits_keep_their_labels_and_come_back_as_inputs() {
        let digits = MnistDataset::from_parts([one(), [0u8; PIXELS]].concat(), vec![1, 7]);
        for keep_stroke in [false, true] {
            let redrawn = redrawn_digits(&digits, 10, &PENS[3], keep_stroke);
            // The blank one has no ink and is dropped with its label.
            assert_eq!(redrawn.labels(), vec![1]);
            let item = redrawn.item(0).unwrap();
            assert!(item.pixels.iter().any(|&p| p > 0));
        }
    }
}
