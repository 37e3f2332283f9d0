//! Images that are no digit, and how well a score tells them from digits: what `eval
//! --outliers` measures before a model says "that isn't a digit".
//!
//! The score is the top probability (the answer's confidence): a digit should get a high one,
//! anything else a low one. [`Separation`] gives the two figures out-of-distribution detection
//! is compared by: the area under the ROC curve, and the share of non-digits still passing at
//! the threshold that lets 95 % of digits through.

use crate::classify::DigitClassifier;
use ab_glyph::{Font, FontRef, PxScale};
use burn::data::dataset::Dataset;
use data::{MnistDataset, PIXELS};
use image::{DynamicImage, GrayImage, Luma};
use model::ClassifyError;
use std::fmt;
use std::path::Path;

/// Letters and symbols typed as a picture of them would be: every one that no common font
/// draws like a digit (`O`, `o`, `I`, `l` and `|` are left out: they are `0` and `1`).
pub const TYPED_NON_DIGITS: &str =
    "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz#%&@?!+*=<>$€£§/\\()[]{}~^";

/// How well a score separates digits from other images (higher scores meaning "digit").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Separation {
    /// The chance that a random digit scores above a random other image (ties count half):
    /// 1 separates perfectly, 0.5 not at all.
    pub auroc: f64,
    /// The share of other images scoring at or above the score that 95 % of digits reach.
    pub passed_at_95: f64,
}

impl Separation {
    /// The separation of `digits`' scores from `others`'; `None` when either is empty or a
    /// score is NaN.
    pub fn of(digits: &[f32], others: &[f32]) -> Option<Self> {
        if digits.is_empty() || others.is_empty() || digits.iter().chain(others).any(|s| s.is_nan())
        {
            return None;
        }
        let mut others = others.to_vec();
        others.sort_by(f32::total_cmp);
        let below = |score: f32| others.partition_point(|&o| o < score);
        let at_or_below = |score: f32| others.partition_point(|&o| o <= score);
        let wins: f64 = digits
            .iter()
            .map(|&d| below(d) as f64 + 0.5 * (at_or_below(d) - below(d)) as f64)
            .sum();
        let mut sorted = digits.to_vec();
        sorted.sort_by(f32::total_cmp);
        // The score 95 % of digits reach: the largest threshold that many are at or above.
        let threshold = sorted[sorted.len() * 5 / 100];
        let passed = others.len() - below(threshold);
        Some(Self {
            auroc: wins / (digits.len() as f64 * others.len() as f64),
            passed_at_95: passed as f64 / others.len() as f64,
        })
    }
}

impl fmt::Display for Separation {
    /// `AUROC 0.912, 41.2 % pass where 95 % of digits do`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AUROC {:.3}, {:.1} % pass where 95 % of digits do",
            self.auroc,
            100.0 * self.passed_at_95
        )
    }
}

/// The top probability the classifier gives each image.
pub fn confidences(
    classifier: &DigitClassifier,
    images: &[[u8; PIXELS]],
) -> Result<Vec<f32>, ClassifyError> {
    Ok(classifier
        .classify(images)?
        .iter()
        .map(model::Prediction::confidence)
        .collect())
}

/// Every image of a dataset (Fashion-MNIST's, say), as the network sees it: they are framed
/// as MNIST's digits already, so they skip preprocessing.
pub fn dataset_images(dataset: &MnistDataset) -> Vec<[u8; PIXELS]> {
    (0..Dataset::len(dataset))
        .filter_map(|i| dataset.item(i))
        .map(|item| item.pixels)
        .collect()
}

/// Each of `text`'s characters typed in the font in `font_file`, dark on white, through the
/// preprocessing an uploaded picture of it would go through. Characters the font lacks are
/// skipped.
pub fn typed_images(font_file: &Path, text: &str) -> Result<Vec<[u8; PIXELS]>, String> {
    let bytes = data::read_bounded(font_file, 64 << 20)
        .map_err(|e| format!("{}: cannot read: {e}", font_file.display()))?;
    let font = FontRef::try_from_slice(&bytes)
        .map_err(|e| format!("{}: not a font: {e}", font_file.display()))?;
    Ok(text
        .chars()
        .filter_map(|c| typed(&font, c))
        .filter_map(|picture| data::to_mnist(&DynamicImage::ImageLuma8(picture)))
        .collect())
}

/// `c` at 96 px, with a margin, as a grey picture; `None` when the font has no such glyph.
fn typed(font: &FontRef, c: char) -> Option<GrayImage> {
    let id = font.glyph_id(c);
    if id.0 == 0 {
        return None;
    }
    let outline = font.outline_glyph(id.with_scale(PxScale::from(96.0)))?;
    let bounds = outline.px_bounds();
    let margin = 16;
    let width = bounds.width().ceil() as u32 + 2 * margin;
    let height = bounds.height().ceil() as u32 + 2 * margin;
    let mut picture = GrayImage::from_pixel(width, height, Luma([255]));
    outline.draw(|x, y, coverage| {
        let ink = (255.0 * (1.0 - coverage.clamp(0.0, 1.0))).round() as u8;
        let pixel = picture.get_pixel_mut(x + margin, y + margin);
        pixel.0[0] = pixel.0[0].min(ink);
    });
    Some(picture)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separation_counts_wins_and_what_passes_the_95_percent_threshold() {
        let perfect = Separation::of(&[0.9, 0.95, 1.0], &[0.1, 0.2]).unwrap();
        assert_eq!(perfect.auroc, 1.0);
        assert_eq!(perfect.passed_at_95, 0.0);
        let none = Separation::of(&[0.5; 4], &[0.5; 2]).unwrap();
        assert_eq!(none.auroc, 0.5);
        assert_eq!(none.passed_at_95, 1.0);
        // 20 digits from 0.81 to 1.00: 95 % are at or above 0.82.
        let digits: Vec<f32> = (81..=100).map(|v| v as f32 / 100.0).collect();
        let mixed = Separation::of(&digits, &[0.1, 0.82, 0.9, 0.99]).unwrap();
        assert_eq!(mixed.passed_at_95, 0.75);
        // 0.1 loses to all 20, 0.82 to 18 and ties 1, 0.9 to 10 and ties 1, 0.99 to 1, ties 1.
        assert!((mixed.auroc - (20.0 + 18.5 + 10.5 + 1.5) / 80.0).abs() < 1e-12);
        assert!(Separation::of(&[], &[0.5]).is_none());
        assert!(Separation::of(&[f32::NAN], &[0.5]).is_none());
    }

    #[test]
    fn typed_letters_become_mnist_framed_images() {
        let font = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/fonts/DejaVuSans.ttf");
        let images = typed_images(&font, "AB#").unwrap();
        assert_eq!(images.len(), 3);
        for image in &images {
            assert!(
                image.iter().filter(|&&p| p > 128).count() > 30,
                "little ink"
            );
            // Framed as MNIST's digits: the 4-pixel border is empty.
            assert!(image[..4 * 28].iter().all(|&p| p == 0));
        }
        assert_ne!(images[0], images[1]);
        let error = typed_images(Path::new("Cargo.toml"), "A").unwrap_err();
        assert!(error.contains("not a font"), "{error}");
    }
}
