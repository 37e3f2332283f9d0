//! Images that are no digit, and how well a model tells them from digits: what training
//! shows the network (Outlier Exposure) and what `eval --outliers` measures.
//!
//! Three makers of non-digits: letters and symbols typed in a font ([`typed_images`]), random
//! scribbles ([`scribbles`], for training) and hand-made drawings of letters, symbols and
//! shapes ([`drawn_non_digits`], held out for measuring). Drawings are drawn as the page's pad
//! draws them and framed by the same preprocessing.
//!
//! The score is the top probability (the answer's confidence): a digit should get a high one,
//! anything else a low one. [`Separation`] gives the two figures out-of-distribution detection
//! is compared by: the area under the ROC curve, and the share of non-digits still passing at
//! the threshold that lets 95 % of digits through. [`VerdictShares`] says what a model's
//! verdicts make of a set of images.

use ab_glyph::{Font, FontRef, PxScale};
use burn::data::dataset::Dataset;
use data::{MnistDataset, PIXELS};
use image::{DynamicImage, GrayImage, Luma};
use model::Verdict;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;
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

/// The share of a set of images given each verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct VerdictShares {
    /// Called a digit.
    pub digit: f64,
    /// Called two digits at once.
    pub unsure: f64,
    /// Called no digit.
    pub not_a_digit: f64,
}

impl VerdictShares {
    /// The shares among `verdicts` (all zero for none).
    pub fn of(verdicts: &[Verdict]) -> Self {
        let share = |kind: Verdict| {
            let count = verdicts.iter().filter(|&&v| v == kind).count();
            count as f64 / verdicts.len().max(1) as f64
        };
        Self {
            digit: share(Verdict::Digit),
            unsure: share(Verdict::Unsure),
            not_a_digit: share(Verdict::NotADigit),
        }
    }

    /// The share not called a digit: for non-digits, those caught.
    pub fn flagged(&self) -> f64 {
        self.unsure + self.not_a_digit
    }
}

impl fmt::Display for VerdictShares {
    /// `99.1 % digit, 0.6 % unsure, 0.3 % not a digit`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.1} % digit, {:.1} % unsure, {:.1} % not a digit",
            100.0 * self.digit,
            100.0 * self.unsure,
            100.0 * self.not_a_digit
        )
    }
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
    typed_in_weights(font_file, text, &[0])
}

/// [`typed_images`] in three weights: as the font draws them, and with the ink grown by 3 and
/// 6 pixels of the 96-pixel glyph (bolder, as other fonts and markers draw), for training.
pub fn typed_images_in_weights(font_file: &Path, text: &str) -> Result<Vec<[u8; PIXELS]>, String> {
    typed_in_weights(font_file, text, &[0, 3, 6])
}

/// Each character of `text` in `font_file`, its ink grown by each of `growths` pixels.
fn typed_in_weights(
    font_file: &Path,
    text: &str,
    growths: &[u32],
) -> Result<Vec<[u8; PIXELS]>, String> {
    let bytes = data::read_bounded(font_file, 64 << 20)
        .map_err(|e| format!("{}: cannot read: {e}", font_file.display()))?;
    let font = FontRef::try_from_slice(&bytes)
        .map_err(|e| format!("{}: not a font: {e}", font_file.display()))?;
    Ok(text
        .chars()
        .filter_map(|c| typed(&font, c))
        .flat_map(|picture| growths.iter().map(move |&grow| bolder(&picture, grow)))
        .filter_map(|picture| data::to_mnist(&DynamicImage::ImageLuma8(picture)))
        .collect())
}

/// Dark ink on white grown by `by` pixels in every direction (a square pen): the stroke
/// thickening preprocessing uses, on the picture turned light-on-dark and back.
fn bolder(picture: &GrayImage, by: u32) -> GrayImage {
    let mut ink = picture.clone();
    image::imageops::invert(&mut ink);
    let mut grown = data::stroke::thickened(&ink, by);
    image::imageops::invert(&mut grown);
    grown
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

/// The side of the square canvas drawings are drawn on, in pixels: the page's pad.
const CANVAS: u32 = 280;

/// A stroke: points in the unit square (x right, y down), joined by a round pen.
type Stroke = Vec<(f32, f32)>;

/// `strokes` drawn dark on a white 280-pixel canvas with a round pen `pen` pixels wide, as
/// the page's pad draws, then framed as MNIST's digits are; `None` for no ink.
pub fn drawn(strokes: &[Stroke], pen: f32) -> Option<[u8; PIXELS]> {
    let mut canvas = GrayImage::from_pixel(CANVAS, CANVAS, Luma([255]));
    let side = CANVAS as f32;
    for stroke in strokes {
        let points: Vec<(f32, f32)> = stroke.iter().map(|&(x, y)| (x * side, y * side)).collect();
        match points.as_slice() {
            [] => {}
            [dot] => ink_segment(&mut canvas, *dot, *dot, pen / 2.0),
            _ => {
                for pair in points.windows(2) {
                    ink_segment(&mut canvas, pair[0], pair[1], pen / 2.0);
                }
            }
        }
    }
    data::to_mnist(&DynamicImage::ImageLuma8(canvas))
}

/// Inks every pixel within `radius` of the segment from `a` to `b`, its edge antialiased.
fn ink_segment(canvas: &mut GrayImage, a: (f32, f32), b: (f32, f32), radius: f32) {
    let (width, height) = canvas.dimensions();
    let reach = radius + 1.0;
    let span = |low: f32, high: f32, limit: u32| {
        let from = (low - reach).floor().max(0.0) as u32;
        let to = ((high + reach).ceil().max(0.0) as u32).min(limit);
        from..to
    };
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let length_squared = (dx * dx + dy * dy).max(1e-6);
    for y in span(a.1.min(b.1), a.1.max(b.1), height) {
        for x in span(a.0.min(b.0), a.0.max(b.0), width) {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let t = (((px - a.0) * dx + (py - a.1) * dy) / length_squared).clamp(0.0, 1.0);
            let distance = (px - a.0 - t * dx).hypot(py - a.1 - t * dy);
            let coverage = (radius + 0.5 - distance).clamp(0.0, 1.0);
            if coverage > 0.0 {
                let ink = (255.0 * (1.0 - coverage)).round() as u8;
                let pixel = canvas.get_pixel_mut(x, y);
                pixel.0[0] = pixel.0[0].min(ink);
            }
        }
    }
}

/// `count` random scribbles drawn from `seed`: tangles, scattered strokes, dots, blobs,
/// hatching and jagged outlines, with pens from thin to thick. None is a single line or a
/// round loop, the marks a 1 or a 0 is made of.
pub fn scribbles(count: usize, seed: u64) -> Vec<[u8; PIXELS]> {
    (0..count as u64)
        .into_par_iter()
        .filter_map(|i| {
            let mut rng = StdRng::seed_from_u64(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let (strokes, pen) = scribble(&mut rng);
            drawn(&strokes, pen)
        })
        .collect()
}

/// One random scribble and its pen's width in pixels.
fn scribble(rng: &mut StdRng) -> (Vec<Stroke>, f32) {
    let pen = rng.random_range(8.0..32.0);
    match rng.random_range(0..6) {
        // A tangle: one stroke through many random points.
        0 => (
            vec![(0..rng.random_range(6..14)).map(|_| spot(rng)).collect()],
            pen,
        ),
        1 => (scattered(rng), pen),
        // Dots, one to six.
        2 => (
            (0..rng.random_range(1..7))
                .map(|_| vec![spot(rng)])
                .collect(),
            pen * 1.5,
        ),
        // A blob: a short stroke of a very thick pen.
        3 => (vec![short_stroke(rng, 0.15)], rng.random_range(50.0..120.0)),
        4 => (hatching(rng), pen),
        _ => (vec![star(rng)], pen),
    }
}

/// A random point away from the canvas's edges.
fn spot(rng: &mut StdRng) -> (f32, f32) {
    (rng.random_range(0.1..0.9), rng.random_range(0.1..0.9))
}

/// A straight stroke from a random point, at most `reach` each way.
fn short_stroke(rng: &mut StdRng, reach: f32) -> Stroke {
    let (x, y) = spot(rng);
    let end = (
        x + rng.random_range(-reach..reach),
        y + rng.random_range(-reach..reach),
    );
    vec![(x, y), end]
}

/// Three to six short strokes scattered about.
fn scattered(rng: &mut StdRng) -> Vec<Stroke> {
    (0..rng.random_range(3..7))
        .map(|_| short_stroke(rng, 0.3))
        .collect()
}

/// Three to six parallel lines, crossed by as many half the time.
fn hatching(rng: &mut StdRng) -> Vec<Stroke> {
    use std::f32::consts::{FRAC_PI_2, PI};
    let mut strokes = Vec::new();
    let directions = if rng.random_bool(0.5) { 2 } else { 1 };
    let first = rng.random_range(0.0..PI);
    for direction in 0..directions {
        let angle = first + direction as f32 * FRAC_PI_2;
        let (dx, dy) = (angle.cos(), angle.sin());
        let lines = rng.random_range(3..7);
        for line in 0..lines {
            let offset = (line as f32 / (lines - 1) as f32 - 0.5) * 0.6;
            let (cx, cy) = (0.5 - dy * offset, 0.5 + dx * offset);
            strokes.push(vec![
                (cx - 0.35 * dx, cy - 0.35 * dy),
                (cx + 0.35 * dx, cy + 0.35 * dy),
            ]);
        }
    }
    strokes
}

/// A jagged closed outline: a star of five to nine points with random inner corners.
fn star(rng: &mut StdRng) -> Stroke {
    use std::f32::consts::TAU;
    let corners = rng.random_range(5..10) * 2;
    let turn = rng.random_range(0.0..TAU);
    (0..=corners)
        .map(|k| {
            let radius = if k % 2 == 0 {
                0.4
            } else {
                rng.random_range(0.1..0.25)
            };
            let angle = turn + (k % corners) as f32 * TAU / corners as f32;
            (0.5 + radius * angle.cos(), 0.5 + radius * angle.sin())
        })
        .collect()
}

/// Letters, symbols and shapes drawn as people draw them on the pad, none a digit: held out
/// from training, to measure how well a model calls drawings it never saw "not a digit".
/// Each is drawn with three pens (thin, the page's, thick) at three slants.
pub fn drawn_non_digits() -> Vec<[u8; PIXELS]> {
    let mut images = Vec::new();
    for (_, strokes) in drawings() {
        for pen in [12.0, 18.0, 28.0] {
            for slant in [-0.15f32, 0.0, 0.15] {
                let slanted: Vec<Stroke> = strokes
                    .iter()
                    .map(|stroke| {
                        stroke
                            .iter()
                            .map(|&(x, y)| (x + slant * (0.5 - y), y))
                            .collect()
                    })
                    .collect();
                images.extend(drawn(&slanted, pen));
            }
        }
    }
    images
}

/// A circle's outline (or an arc of it, from `from` to `to` in turns) as a stroke.
fn arc(center: (f32, f32), radius: f32, from: f32, to: f32) -> Stroke {
    (0..=24)
        .map(|k| {
            let angle = std::f32::consts::TAU * (from + (to - from) * k as f32 / 24.0);
            (
                center.0 + radius * angle.cos(),
                center.1 + radius * angle.sin(),
            )
        })
        .collect()
}

/// A straight-sided stroke's corners, in the unit square.
type Corners = &'static [(f32, f32)];

/// The held-out drawings made of straight strokes, by name: each stroke's corners in the unit
/// square.
const STRAIGHT_DRAWINGS: &[(&str, &[Corners])] = &[
    (
        "A",
        &[
            &[(0.2, 0.9), (0.5, 0.1), (0.8, 0.9)],
            &[(0.32, 0.6), (0.68, 0.6)],
        ],
    ),
    (
        "E",
        &[
            &[(0.75, 0.1), (0.3, 0.1), (0.3, 0.9), (0.75, 0.9)],
            &[(0.3, 0.5), (0.65, 0.5)],
        ],
    ),
    (
        "F",
        &[
            &[(0.75, 0.1), (0.3, 0.1), (0.3, 0.9)],
            &[(0.3, 0.5), (0.65, 0.5)],
        ],
    ),
    (
        "H",
        &[
            &[(0.25, 0.1), (0.25, 0.9)],
            &[(0.75, 0.1), (0.75, 0.9)],
            &[(0.25, 0.5), (0.75, 0.5)],
        ],
    ),
    (
        "K",
        &[
            &[(0.3, 0.1), (0.3, 0.9)],
            &[(0.75, 0.1), (0.3, 0.55), (0.75, 0.9)],
        ],
    ),
    (
        "M",
        &[&[(0.15, 0.9), (0.2, 0.1), (0.5, 0.6), (0.8, 0.1), (0.85, 0.9)]],
    ),
    (
        "N",
        &[&[(0.25, 0.9), (0.25, 0.1), (0.75, 0.9), (0.75, 0.1)]],
    ),
    (
        "W",
        &[&[(0.1, 0.1), (0.3, 0.9), (0.5, 0.4), (0.7, 0.9), (0.9, 0.1)]],
    ),
    ("X", &[&[(0.2, 0.1), (0.8, 0.9)], &[(0.8, 0.1), (0.2, 0.9)]]),
    (
        "Y",
        &[
            &[(0.2, 0.1), (0.5, 0.5), (0.8, 0.1)],
            &[(0.5, 0.5), (0.5, 0.9)],
        ],
    ),
    (
        "#",
        &[
            &[(0.4, 0.1), (0.3, 0.9)],
            &[(0.7, 0.1), (0.6, 0.9)],
            &[(0.15, 0.35), (0.85, 0.35)],
            &[(0.15, 0.65), (0.85, 0.65)],
        ],
    ),
    (
        "+",
        &[&[(0.5, 0.15), (0.5, 0.85)], &[(0.15, 0.5), (0.85, 0.5)]],
    ),
    (
        "=",
        &[&[(0.15, 0.38), (0.85, 0.38)], &[(0.15, 0.62), (0.85, 0.62)]],
    ),
    (
        "star",
        &[&[
            (0.5, 0.08),
            (0.75, 0.9),
            (0.1, 0.38),
            (0.9, 0.38),
            (0.25, 0.9),
            (0.5, 0.08),
        ]],
    ),
    (
        "triangle",
        &[&[(0.5, 0.1), (0.9, 0.85), (0.1, 0.85), (0.5, 0.1)]],
    ),
    (
        "square",
        &[&[
            (0.15, 0.15),
            (0.85, 0.15),
            (0.85, 0.85),
            (0.15, 0.85),
            (0.15, 0.15),
        ]],
    ),
    (
        "arrow",
        &[
            &[(0.1, 0.5), (0.9, 0.5)],
            &[(0.65, 0.25), (0.9, 0.5), (0.65, 0.75)],
        ],
    ),
    ("check", &[&[(0.15, 0.55), (0.4, 0.85), (0.9, 0.15)]]),
    ("dot", &[&[(0.5, 0.5)]]),
];

/// The held-out drawings, by name: strokes in the unit square.
fn drawings() -> Vec<(&'static str, Vec<Stroke>)> {
    use std::f32::consts::TAU;
    let mut drawings: Vec<(&str, Vec<Stroke>)> = STRAIGHT_DRAWINGS
        .iter()
        .map(|(name, strokes)| (*name, strokes.iter().map(|s| s.to_vec()).collect()))
        .collect();
    let curve = |points: usize, at: &dyn Fn(f32) -> (f32, f32)| -> Stroke {
        (0..=points).map(|k| at(k as f32 / points as f32)).collect()
    };
    let mut r = vec![(0.3, 0.9), (0.3, 0.1)];
    r.extend(arc((0.45, 0.3), 0.2, -0.25, 0.25));
    r.extend([(0.3, 0.5), (0.75, 0.9)]);
    let mut heart = arc((0.32, 0.35), 0.18, 0.5, 1.0);
    heart.extend(arc((0.68, 0.35), 0.18, 0.5, 1.0));
    heart.extend([(0.5, 0.88), (0.14, 0.35)]);
    let spiral = curve(60, &|t| {
        let angle = t * 3.0 * TAU;
        (0.5 + 0.42 * t * angle.cos(), 0.5 + 0.42 * t * angle.sin())
    });
    let wave = curve(30, &|t| (0.1 + 0.8 * t, 0.5 + 0.15 * (t * 2.0 * TAU).sin()));
    let smiley = vec![
        arc((0.5, 0.5), 0.4, 0.0, 1.0),
        vec![(0.36, 0.38)],
        vec![(0.64, 0.38)],
        arc((0.5, 0.52), 0.2, 0.1, 0.4),
    ];
    drawings.extend([
        ("R", vec![r]),
        ("heart", vec![heart]),
        ("spiral", vec![spiral]),
        ("wave", vec![wave]),
        ("smiley", smiley),
    ]);
    drawings
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

    #[test]
    fn drawings_and_scribbles_become_mnist_framed_images() {
        let images = drawn_non_digits();
        assert_eq!(images.len(), drawings().len() * 9);
        let scribbled = scribbles(24, 1);
        assert_eq!(scribbled.len(), 24);
        assert_eq!(scribbles(24, 1), scribbled, "the same seed draws the same");
        assert_ne!(scribbles(24, 2), scribbled);
        for image in images.iter().chain(&scribbled) {
            assert!(image.iter().any(|&p| p > 128), "no ink");
            // Framed as MNIST's digits: the ink fits a 20-pixel box (and its antialiased edge).
            let inked = |along: fn(usize) -> usize| {
                let lines: Vec<usize> = (0..PIXELS).filter(|&i| image[i] > 0).map(along).collect();
                lines.iter().max().unwrap() - lines.iter().min().unwrap() + 1
            };
            assert!(
                inked(|i| i / 28) <= 22 && inked(|i| i % 28) <= 22,
                "not framed"
            );
        }
        let thin = drawn(
            &[vec![(0.2, 0.5), (0.8, 0.5)], vec![(0.5, 0.2), (0.5, 0.8)]],
            4.0,
        );
        let thick = drawn(
            &[vec![(0.2, 0.5), (0.8, 0.5)], vec![(0.5, 0.2), (0.5, 0.8)]],
            40.0,
        );
        let ink = |image: [u8; PIXELS]| image.iter().filter(|&&p| p > 128).count();
        assert!(ink(thick.unwrap()) > ink(thin.unwrap()));
        assert!(drawn(&[], 18.0).is_none());
    }

    #[test]
    fn verdict_shares_count_each_kind() {
        let shares = VerdictShares::of(&[
            Verdict::Digit,
            Verdict::Unsure,
            Verdict::NotADigit,
            Verdict::NotADigit,
        ]);
        assert_eq!(
            (shares.digit, shares.unsure, shares.not_a_digit),
            (0.25, 0.25, 0.5)
        );
        assert_eq!(shares.flagged(), 0.75);
        assert_eq!(
            shares.to_string(),
            "25.0 % digit, 25.0 % unsure, 50.0 % not a digit"
        );
        assert_eq!(VerdictShares::of(&[]), VerdictShares::default());
    }

    #[test]
    fn typed_images_come_in_three_weights() {
        let font = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/fonts/DejaVuSans.ttf");
        let images = typed_images_in_weights(&font, "AB").unwrap();
        assert_eq!(images.len(), 6);
        let ink = |image: &[u8; PIXELS]| image.iter().map(|&p| u32::from(p)).sum::<u32>();
        assert!(ink(&images[2]) > ink(&images[0]), "bolder is inkier");
    }
}
