//! Stroke width: how thick a picture's lines are beside the size of what they draw, and the
//! way to bring it to MNIST's.
//!
//! Scaling a digit to MNIST's 20-pixel box keeps its proportions, pen included: a small digit
//! drawn with a broad pen becomes a blob whose loops are filled, and a large one drawn with a
//! fine pen becomes a faint hairline. MNIST's digits were written with one kind of pen at one
//! size, so the network has seen neither. A picture whose stroke width, as a share of its ink
//! box, lies outside what MNIST's own digits show is thinned (grey erosion) or thickened (grey
//! dilation) toward MNIST's typical share before it is scaled.

use image::GrayImage;

/// MNIST's typical stroke width as a share of the ink box's longer side: the median of
/// [`relative_width`] over the training set's 60,000 digits, each enlarged 4× as a photo of
/// it would be (0.102 at their own 28 pixels, where the grid's coarseness shortens strokes).
pub(crate) const MNIST_RELATIVE_WIDTH: f64 = 0.11;
/// A picture is corrected only when its share lies outside this band, which holds 99.8 % of
/// MNIST's training digits at both sizes (the 0.1st percentiles are 0.052 and 0.068, the 99.9th
/// 0.235 and 0.251); a digit inside it is scaled as it is.
const USUAL_RELATIVE_WIDTH: (f64, f64) = (0.05, 0.25);
/// Longer side, in pixels, of the image the stroke is corrected in: fine enough for a
/// one-pixel change of a 20-pixel digit's stroke to be a few pixels' change, small enough that
/// the correction costs little whatever the picture's size.
pub(crate) const WORKING_SIDE: u32 = 80;

/// A box of pixels, inclusive: `(x0, y0, x1, y1)`.
pub(crate) type InkBox = (u32, u32, u32, u32);

/// The ink's mean stroke width within `ink_box` as a share of the box's longer side, from the
/// ink mask (pixels above `threshold`): twice the ink's area over the length of its outline,
/// which for a stroke of width w and length l (l ≫ w) is 2wl / 2l = w. `None` without ink.
pub(crate) fn relative_width(ink: &GrayImage, threshold: u8, ink_box: InkBox) -> Option<f64> {
    let (x0, y0, x1, y1) = ink_box;
    let width = ink.width() as usize;
    let (from, to) = (x0 as usize, x1 as usize + 1);
    // Rows of the mask as 0 or 1; the row above the box's first is paper.
    let mut above = vec![0u8; to - from];
    let mut here = vec![0u8; to - from];
    let (mut area, mut outline) = (0u64, 0u64);
    for y in y0..=y1 {
        let pixels = &ink.as_raw()[y as usize * width..][from..to];
        for (inked, &value) in here.iter_mut().zip(pixels) {
            *inked = u8::from(value > threshold);
        }
        // A row holds at most 16,384 pixels: its counts fit in a u32, summed without branches
        // so the loops run in vector registers.
        let inked: u32 = here.iter().map(|&m| u32::from(m)).sum();
        let between_rows: u32 = here.iter().zip(&above).map(|(a, b)| u32::from(a ^ b)).sum();
        let within_row: u32 = here
            .iter()
            .zip(&here[1..])
            .map(|(a, b)| u32::from(a ^ b))
            .sum();
        // The box's left and right edges count as paper too.
        let at_edges = u32::from(here[0]) + u32::from(here[here.len() - 1]);
        area += u64::from(inked);
        outline += u64::from(between_rows + within_row + at_edges);
        std::mem::swap(&mut above, &mut here);
    }
    // The edge below the last row.
    outline += above.iter().map(|&m| u64::from(m)).sum::<u64>();
    let longer_side = f64::from((x1 - x0 + 1).max(y1 - y0 + 1));
    (outline > 0).then(|| 2.0 * area as f64 / outline as f64 / longer_side)
}

/// How far to erode (positive) or dilate (negative) an image whose ink box's longer side is
/// `side` pixels and whose stroke is `relative` of it, so that it ends at MNIST's share; `None`
/// when the share is already in MNIST's usual band.
///
/// Eroding by r takes 2r from both the stroke and the box: (w − 2r) / (s − 2r) = m gives
/// r = (w − m·s) / (2(1 − m)); dilating is the same with r negative.
pub(crate) fn correction(relative: f64, side: u32) -> Option<i32> {
    let (low, high) = USUAL_RELATIVE_WIDTH;
    if (low..=high).contains(&relative) {
        return None;
    }
    let side = f64::from(side);
    let m = MNIST_RELATIVE_WIDTH;
    let radius = ((relative - m) * side / (2.0 * (1.0 - m))).round() as i32;
    // A quarter of the box is as far as either way can sensibly go.
    let bound = (side / 4.0) as i32;
    Some(radius.clamp(-bound, bound)).filter(|&r| r != 0)
}

/// Bright ink on dark paper, its strokes thinned by `radius` pixels on each side.
pub fn thinned(ink: &GrayImage, radius: u32) -> GrayImage {
    morph(ink, radius, true)
}

/// Bright ink on dark paper, its strokes thickened by `radius` pixels on each side.
pub fn thickened(ink: &GrayImage, radius: u32) -> GrayImage {
    morph(ink, radius, false)
}

/// `image` with every pixel replaced by the darkest (`erode`) or brightest (dilate) pixel in
/// the (2r+1)-pixel square around it, as two passes of a one-dimensional window.
pub(crate) fn morph(image: &GrayImage, radius: u32, erode: bool) -> GrayImage {
    let pick = |a: u8, b: u8| if erode { a.min(b) } else { a.max(b) };
    let (width, height) = image.dimensions();
    let pass = |source: &GrayImage, horizontal: bool| {
        GrayImage::from_fn(width, height, |x, y| {
            let (at, limit) = if horizontal { (x, width) } else { (y, height) };
            let from = at.saturating_sub(radius);
            let to = (at + radius).min(limit - 1);
            let sample = |i: u32| {
                let (sx, sy) = if horizontal { (i, y) } else { (x, i) };
                source.get_pixel(sx, sy).0[0]
            };
            // Outside the image is paper: eroding near an edge sees it.
            let outside = erode && (at < radius || at + radius >= limit);
            let start = if outside { 0 } else { sample(from) };
            image::Luma([(from..=to).map(sample).fold(start, pick)])
        })
    };
    pass(&pass(image, true), false)
}

/// `ink` within `ink_box`, reduced by the smallest whole factor that brings its longer side to
/// at most [`WORKING_SIDE`], each pixel the brightest of its block: a hairline survives the
/// reduction at full strength. A box already small enough is copied as it is.
pub(crate) fn max_reduced(ink: &GrayImage, ink_box: InkBox) -> GrayImage {
    let (x0, y0, x1, y1) = ink_box;
    let (w, h) = (x1 - x0 + 1, y1 - y0 + 1);
    let factor = w.max(h).div_ceil(WORKING_SIDE).max(1);
    GrayImage::from_fn(w.div_ceil(factor), h.div_ceil(factor), |bx, by| {
        let xs = x0 + bx * factor..(x0 + (bx + 1) * factor).min(x1 + 1);
        let ys = y0 + by * factor..(y0 + (by + 1) * factor).min(y1 + 1);
        let brightest = ys
            .flat_map(|y| xs.clone().map(move |x| ink.get_pixel(x, y).0[0]))
            .max()
            .unwrap_or(0);
        image::Luma([brightest])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `side`-pixel image holding a ring of the given outer radius and stroke width.
    fn ring(side: u32, outer: f64, width: f64) -> GrayImage {
        let c = f64::from(side) / 2.0;
        GrayImage::from_fn(side, side, |x, y| {
            let d = ((f64::from(x) + 0.5 - c).powi(2) + (f64::from(y) + 0.5 - c).powi(2)).sqrt();
            image::Luma([if d <= outer && d > outer - width {
                255
            } else {
                0
            }])
        })
    }

    fn full_box(image: &GrayImage) -> InkBox {
        (0, 0, image.width() - 1, image.height() - 1)
    }

    #[test]
    fn a_ring_measures_near_its_stroke_width() {
        for width in [4.0, 10.0, 20.0] {
            let image = ring(200, 99.0, width);
            let relative = relative_width(&image, 127, full_box(&image)).unwrap();
            let measured = relative * 198.0;
            // The outline is counted in steps along the pixel grid, which lengthens a curve
            // by up to 4/π: the width reads short by as much.
            assert!(
                measured > width * 0.7 && measured < width * 1.05,
                "stroke {width} measured {measured}"
            );
        }
    }

    #[test]
    fn only_a_share_outside_mnists_band_is_corrected() {
        assert_eq!(correction(MNIST_RELATIVE_WIDTH, 80), None);
        assert_eq!(correction(0.2, 80), None);
        let thinned = correction(0.45, 80).unwrap();
        let thickened = correction(0.02, 80).unwrap();
        assert!(thinned > 0 && thickened < 0, "{thinned} {thickened}");
        // Eroding by the answer brings the share back to MNIST's.
        let (w, s) = (0.45 * 80.0, 80.0);
        let after = (w - 2.0 * f64::from(thinned)) / (s - 2.0 * f64::from(thinned));
        assert!((after - MNIST_RELATIVE_WIDTH).abs() < 0.02, "{after}");
        assert_eq!(
            correction(5.0, 80),
            Some(20),
            "bounded by a quarter of the box"
        );
    }

    #[test]
    fn erosion_and_dilation_change_the_stroke_by_about_twice_the_radius() {
        let image = ring(120, 50.0, 12.0);
        // Widths in pixels: the box is the whole 120-pixel image each time.
        let measure =
            |image: &GrayImage| relative_width(image, 127, full_box(image)).unwrap() * 120.0;
        let before = measure(&image);
        let thinner = measure(&thinned(&image, 2));
        let thicker = measure(&thickened(&image, 2));
        // A square window reaches further along diagonals: up to √2 × 2 px a side.
        for change in [before - thinner, thicker - before] {
            assert!(
                (3.0..=6.5).contains(&change),
                "{thinner} {before} {thicker}"
            );
        }
        assert_eq!(morph(&image, 0, true), image);
    }

    #[test]
    fn a_hairline_survives_max_reduction_at_full_strength() {
        let mut image = GrayImage::new(800, 800);
        for x in 0..800 {
            image.put_pixel(x, 400, image::Luma([255]));
        }
        let reduced = max_reduced(&image, full_box(&image));
        assert_eq!(reduced.dimensions(), (80, 80));
        assert!(reduced.pixels().filter(|p| p.0[0] == 255).count() == 80);
    }
}
