//! Any picture of a digit → the 28×28 image MNIST would have made of it.
//!
//! MNIST's own recipe: the digit, light ink on black, is cropped to its ink, scaled so its
//! longer side is 20 px (aspect ratio kept, anti-aliased), and placed in a 28×28 field so its
//! centre of mass is at the centre. Photos, scans and canvas exports are first brought to that
//! form: transparency flattened onto the paper, grey, ink made bright on dark, and the paper
//! pushed to black with a threshold found by Otsu's method. A stroke far thicker or thinner
//! than MNIST's for the digit's size (a small digit in a broad pen, a big one in a fine pen) is
//! brought to MNIST's first: see [`crate::stroke`].

use crate::PIXELS;
use crate::stroke::{self, InkBox};
use image::metadata::Orientation;
use image::{DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use model::IMAGE_SIDE;
use std::io::Cursor;
use std::path::{Path, PathBuf};

/// Why an image could not be turned into a network input. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    /// The file could not be read.
    #[error("{path}: cannot read: {error}")]
    Io {
        /// The image file.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// The file has no bytes.
    #[error("{path}: empty file")]
    Empty {
        /// The image file.
        path: PathBuf,
    },
    /// The bytes are not an image in a supported format, or a broken one.
    #[error("{path}: not a readable image: {reason}")]
    Decode {
        /// The image file.
        path: PathBuf,
        /// The decoder's complaint, on one line.
        reason: String,
    },
    /// The image has more pixels than a digit could need, checked before decoding it.
    #[error(
        "{path}: {width}×{height} pixels is more than the {max} a digit could need; scale it \
         down first"
    )]
    TooManyPixels {
        /// The image file.
        path: PathBuf,
        /// Its width, as its header says.
        width: u32,
        /// Its height, as its header says.
        height: u32,
        /// The most pixels accepted.
        max: u64,
    },
    /// The image is blank: nothing stands out from the background.
    #[error("{path}: no digit found (the image has no ink distinct from its background)")]
    NoInk {
        /// The image file.
        path: PathBuf,
    },
}

/// Largest width or height accepted, so a hostile header cannot ask for gigabytes.
const MAX_SIDE: u32 = 16_384;
/// Most pixels accepted, read from the header before anything is decoded: a 16-megapixel
/// photo, more than any phone's default, and far more than a 28×28 digit needs.
pub const MAX_PIXELS: u64 = 4096 * 4096;
/// Bytes per pixel of the largest layout a decoder hands over (16-bit RGBA), plus the 8-bit
/// RGBA copy alpha is flattened through and the grey image: what decoding one pixel may
/// hold at once, at most.
const PEAK_BYTES_PER_PIXEL: u64 = 8 + 4 + 1;
/// Largest decoding buffer accepted.
const MAX_ALLOC: u64 = MAX_PIXELS * 8;
/// Side of the box the digit is scaled into, as in MNIST.
const DIGIT_BOX: u32 = 20;
/// Where MNIST's digits have their centre of mass, in pixel indices (measured over the
/// training set: 14.0 ± 0.3 on both axes).
const MNIST_CENTRE: f64 = 14.0;
/// Contrast below which an image is taken to hold no ink at all (out of 255).
const MIN_CONTRAST: f32 = 24.0;

/// Reads and preprocesses the image file at `path`.
pub fn preprocess_image(path: &Path) -> Result<[u8; PIXELS], PreprocessError> {
    let bytes = crate::read_bounded(path, crate::MAX_IMAGE_FILE_BYTES).map_err(|error| {
        PreprocessError::Io {
            path: path.to_path_buf(),
            error,
        }
    })?;
    preprocess_bytes(&bytes, path)
}

/// Preprocesses an encoded image held in memory; `path` names it in errors.
pub fn preprocess_bytes(bytes: &[u8], path: &Path) -> Result<[u8; PIXELS], PreprocessError> {
    if bytes.is_empty() {
        return Err(PreprocessError::Empty {
            path: path.to_path_buf(),
        });
    }
    // Decoders' messages may span lines (found by fuzzing: a TIFF inside a JPEG header).
    let decode = |reason: String| PreprocessError::Decode {
        path: path.to_path_buf(),
        reason: model::one_line(&reason),
    };
    decoding_cost(bytes, path)?;
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| decode(e.to_string()))?;
    let grey = if reader.format() == Some(ImageFormat::Jpeg) {
        decode_grey_jpeg(bytes).map_err(decode)?
    } else {
        flatten_to_grey(&decode_any(reader).map_err(|e| decode(e.to_string()))?)
    };
    let (width, height) = grey.dimensions();
    if width == 0 || height == 0 {
        return Err(decode(format!("it has no pixels ({width}×{height})")));
    }
    grey_to_mnist(grey, true).ok_or_else(|| PreprocessError::NoInk {
        path: path.to_path_buf(),
    })
}

/// The most bytes decoding `bytes` may hold at once, from the image's header alone, or the
/// refusal of an image with more than [`MAX_PIXELS`]. A server budgets concurrent decodes
/// with it; an undecodable header costs nothing here and is refused by the decoder.
pub fn decoding_cost(bytes: &[u8], path: &Path) -> Result<u64, PreprocessError> {
    let dimensions = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()
        .map(limited)
        .and_then(|reader| reader.into_dimensions().ok());
    let Some((width, height)) = dimensions else {
        return Ok(0);
    };
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_PIXELS {
        return Err(PreprocessError::TooManyPixels {
            path: path.to_path_buf(),
            width,
            height,
            max: MAX_PIXELS,
        });
    }
    Ok(pixels * PEAK_BYTES_PER_PIXEL)
}

/// `reader` with the size limits every decode runs under.
fn limited(mut reader: ImageReader<Cursor<&[u8]>>) -> ImageReader<Cursor<&[u8]>> {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    reader
}

/// Decodes any format `image` reads, within the size limits, turned upright as its EXIF
/// orientation says (as viewers and browsers show it).
fn decode_any(reader: ImageReader<Cursor<&[u8]>>) -> image::ImageResult<DynamicImage> {
    let mut decoder = limited(reader).into_decoder()?;
    // A damaged EXIF block is no reason to refuse the pixels.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// Decodes a JPEG straight to its grey (luma) plane, refusing a truncated or corrupt file,
/// turned upright as its EXIF orientation says. CMYK and YCCK files (print workflows) have no
/// luma plane: they go through RGB.
fn decode_grey_jpeg(bytes: &[u8]) -> Result<GrayImage, String> {
    use zune_core::{bytestream::ZCursor, colorspace::ColorSpace, options::DecoderOptions};
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::Luma)
        .set_max_width(MAX_SIDE as usize)
        .set_max_height(MAX_SIDE as usize)
        .set_strict_mode(true);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(|e| format!("{e:?}"))?;
    let inked = matches!(
        decoder.input_colorspace(),
        Some(ColorSpace::CMYK | ColorSpace::YCCK)
    );
    if inked {
        decoder.set_options(options.jpeg_set_out_colorspace(ColorSpace::RGB));
    }
    let orientation = decoder
        .exif()
        .and_then(|exif| Orientation::from_exif_chunk(exif))
        .unwrap_or(Orientation::NoTransforms);
    let pixels = decoder.decode().map_err(|e| format!("{e:?}"))?;
    let (width, height) = decoder.dimensions().ok_or("JPEG without dimensions")?;
    let (width, height) = (width as u32, height as u32);
    let grey = if inked {
        let values = pixels.chunks_exact(3).map(|p| luma(p[0], p[1], p[2]));
        GrayImage::from_raw(width, height, values.collect())
    } else {
        GrayImage::from_raw(width, height, pixels)
    };
    let grey = grey.ok_or_else(|| "JPEG decoded to fewer pixels than its size".to_string())?;
    Ok(upright(grey, orientation))
}

/// `grey` turned as `orientation` says; the common upright case copies nothing.
fn upright(grey: GrayImage, orientation: Orientation) -> GrayImage {
    if orientation == Orientation::NoTransforms {
        return grey;
    }
    let mut image = DynamicImage::ImageLuma8(grey);
    image.apply_orientation(orientation);
    image.into_luma8()
}

/// The whole recipe on a decoded image; `None` when there is no ink to find.
pub fn to_mnist(image: &DynamicImage) -> Option<[u8; PIXELS]> {
    grey_to_mnist(flatten_to_grey(image), true)
}

/// [`to_mnist`] with the stroke scaled as it is, however thick or thin: what the recipe gave
/// before it corrected strokes, kept to measure what that correction gains.
pub fn to_mnist_keeping_stroke(image: &DynamicImage) -> Option<[u8; PIXELS]> {
    grey_to_mnist(flatten_to_grey(image), false)
}

/// The recipe from grey levels on: find the ink, crop, correct its stroke, scale and centre
/// it.
fn grey_to_mnist(grey: GrayImage, correct_stroke: bool) -> Option<[u8; PIXELS]> {
    // A decoder may hand over an image with no rows or columns (found by fuzzing).
    if grey.width() == 0 || grey.height() == 0 {
        return None;
    }
    let (ink, threshold) = ink_intensity(grey)?;
    let ink_box = ink_bounds(&ink, threshold)?;
    let digit = correct_stroke
        .then(|| stroke_corrected(&ink, threshold, ink_box))
        .flatten()
        .unwrap_or_else(|| scale_to_side(&ink, ink_box, DIGIT_BOX));
    Some(centre_by_mass(&digit))
}

/// The ink box scaled into the digit box after its stroke is thinned or thickened to MNIST's
/// share of the box; `None` when the stroke is in MNIST's usual band (or no ink would be left).
/// The correction runs at [`stroke::WORKING_SIDE`] pixels, whatever the picture's size.
fn stroke_corrected(ink: &GrayImage, threshold: u8, ink_box: InkBox) -> Option<GrayImage> {
    let relative = stroke::relative_width(ink, threshold, ink_box)?;
    let thick = relative > stroke::MNIST_RELATIVE_WIDTH;
    // A thick stroke survives averaging; a hairline keeps its strength only in block maxima.
    let working = match thick {
        true => scale_to_side(ink, ink_box, stroke::WORKING_SIDE),
        false => stroke::max_reduced(ink, ink_box),
    };
    let radius = stroke::correction(relative, working.width().max(working.height()))?;
    let corrected = stroke::morph(&working, radius.unsigned_abs(), thick);
    let corrected_box = ink_bounds(&corrected, threshold)?;
    Some(scale_to_side(&corrected, corrected_box, DIGIT_BOX))
}

/// Ink intensity (0 = paper, 255 = strongest ink) and the Otsu threshold between paper and
/// ink on that scale, or `None` for a blank image.
fn ink_intensity(grey: GrayImage) -> Option<(GrayImage, u8)> {
    // The border is mostly paper: its median tells the paper's shade, hence the polarity.
    let ink_is_dark = median(border(&grey)) >= 128;
    let mut ink = grey;
    if ink_is_dark {
        ink.iter_mut().for_each(|value| *value = 255 - *value);
    }
    let histogram = histogram(&ink);
    let (low, high) = (percentile(&histogram, 0.01), percentile(&histogram, 0.999));
    if f32::from(high) - f32::from(low) < MIN_CONTRAST {
        return None;
    }
    // Otsu splits paper from ink. The paper's own brightest shades (its grain, JPEG noise)
    // become 0 and the ink is stretched to the full range, keeping its anti-aliased edges.
    let threshold = otsu(&histogram);
    let mut paper = histogram;
    paper[threshold as usize + 1..].fill(0);
    let paper_level = f32::from(percentile(&paper, 0.98));
    let span = (f32::from(high) - paper_level).max(1.0);
    let stretch = |v: u8| {
        let v = (f32::from(v) - paper_level) / span;
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    };
    // Every pixel maps through one 256-entry table: the same values, without a float
    // rounding per pixel.
    let table: [u8; 256] = std::array::from_fn(|value| stretch(value as u8));
    ink.iter_mut()
        .for_each(|value| *value = table[usize::from(*value)]);
    Some((ink, stretch(threshold)))
}

/// Composites any transparency onto paper and converts to 8-bit grey.
///
/// A canvas export is often strokes with alpha over fully transparent pixels whose colour is
/// black too; dropping alpha would turn the whole picture black. The paper is taken to be the
/// opposite shade of the strokes, so both dark-on-clear and light-on-clear drawings work.
/// The common 8-bit layouts take integer paths: `image`'s general conversion goes through
/// floats per pixel, and was over a third of the time a photo took.
fn flatten_to_grey(image: &DynamicImage) -> GrayImage {
    match image {
        DynamicImage::ImageLuma8(grey) => grey.clone(),
        DynamicImage::ImageRgb8(rgb) => {
            let values = rgb.as_raw().chunks_exact(3).map(|p| luma(p[0], p[1], p[2]));
            grey_image(rgb.width(), rgb.height(), values.collect())
        }
        DynamicImage::ImageRgba8(rgba) => flatten_alpha(rgba),
        // Grey with alpha is flattened as it is, never widened to RGBA first.
        DynamicImage::ImageLumaA8(grey_alpha) => flatten_grey_alpha(
            grey_alpha.width(),
            grey_alpha.height(),
            grey_alpha.as_raw().chunks_exact(2).map(|p| (p[0], p[1])),
        ),
        DynamicImage::ImageLumaA16(grey_alpha) => flatten_grey_alpha(
            grey_alpha.width(),
            grey_alpha.height(),
            grey_alpha
                .as_raw()
                .chunks_exact(2)
                .map(|p| ((p[0] >> 8) as u8, (p[1] >> 8) as u8)),
        ),
        _ if !image.color().has_alpha() => image.to_luma8(),
        _ => flatten_alpha(&image.to_rgba8()),
    }
}

/// Relative luminance of an sRGB pixel with the Rec. 709 weights `image` uses (0.2126,
/// 0.7152, 0.0722, here in 16-bit fixed point), rounded.
fn luma(r: u8, g: u8, b: u8) -> u8 {
    let weighted = 13_933 * u32::from(r) + 46_871 * u32::from(g) + 4_732 * u32::from(b);
    ((weighted + (1 << 15)) >> 16) as u8
}

/// Grey levels of an RGBA image composited onto paper of the strokes' opposite shade.
fn flatten_alpha(rgba: &image::RgbaImage) -> GrayImage {
    let pixels = rgba.as_raw().chunks_exact(4);
    flatten_grey_alpha(
        rgba.width(),
        rgba.height(),
        pixels.map(|p| (luma(p[0], p[1], p[2]), p[3])),
    )
}

/// Grey levels composited onto paper of the strokes' opposite shade, from `(grey, alpha)`
/// pairs in row order.
fn flatten_grey_alpha(
    width: u32,
    height: u32,
    pixels: impl Iterator<Item = (u8, u8)>,
) -> GrayImage {
    let (mut grey, alpha): (Vec<u8>, Vec<u8>) = pixels.unzip();
    let (mut weighted, mut weight) = (0u64, 0u64);
    for (&value, &a) in grey.iter().zip(&alpha) {
        weighted += u64::from(value) * u64::from(a);
        weight += u64::from(a);
    }
    // Strokes darker than mid-grey on average are drawn on white paper, others on black.
    let paper: u32 = if weight > 0 && weighted < 128 * weight {
        255
    } else {
        0
    };
    for (value, &a) in grey.iter_mut().zip(&alpha) {
        let alpha = u32::from(a);
        let mixed = u32::from(*value) * alpha + paper * (255 - alpha);
        *value = ((mixed + 127) / 255) as u8;
    }
    grey_image(width, height, grey)
}

fn grey_image(width: u32, height: u32, values: Vec<u8>) -> GrayImage {
    GrayImage::from_raw(width, height, values).expect("one grey value per pixel")
}

fn border(grey: &GrayImage) -> Vec<u8> {
    let (w, h) = grey.dimensions();
    let mut values = Vec::with_capacity(2 * (w + h) as usize);
    for x in 0..w {
        values.push(grey.get_pixel(x, 0)[0]);
        values.push(grey.get_pixel(x, h - 1)[0]);
    }
    for y in 0..h {
        values.push(grey.get_pixel(0, y)[0]);
        values.push(grey.get_pixel(w - 1, y)[0]);
    }
    values
}

fn median(mut values: Vec<u8>) -> u8 {
    let mid = values.len() / 2;
    *values.select_nth_unstable(mid).1
}

fn histogram(grey: &GrayImage) -> [u64; 256] {
    // Four interleaved tallies: runs of one value (the paper) would otherwise make every
    // increment wait for the previous one to be stored.
    let mut partial = [[0u32; 256]; 4];
    let mut quads = grey.as_raw().chunks_exact(4);
    for quad in &mut quads {
        for (tally, &value) in partial.iter_mut().zip(quad) {
            tally[usize::from(value)] += 1;
        }
    }
    for &value in quads.remainder() {
        partial[0][usize::from(value)] += 1;
    }
    std::array::from_fn(|value| partial.iter().map(|tally| u64::from(tally[value])).sum())
}

/// The smallest value at or above which lies at most `1 - q` of the pixels.
fn percentile(histogram: &[u64; 256], q: f64) -> u8 {
    let total: u64 = histogram.iter().sum();
    let target = (q * total as f64).ceil() as u64;
    let mut seen = 0;
    for (value, &count) in histogram.iter().enumerate() {
        seen += count;
        if seen >= target.max(1) {
            return value as u8;
        }
    }
    255
}

/// Otsu's threshold: the value that best splits the histogram into two classes.
fn otsu(histogram: &[u64; 256]) -> u8 {
    let total: f64 = histogram.iter().sum::<u64>() as f64;
    let sum_all: f64 = histogram
        .iter()
        .enumerate()
        .map(|(v, &c)| v as f64 * c as f64)
        .sum();
    let (mut weight_low, mut sum_low) = (0.0, 0.0);
    let (mut best, mut best_variance) = (0u8, -1.0);
    for (value, &count) in histogram.iter().enumerate() {
        weight_low += count as f64;
        sum_low += value as f64 * count as f64;
        let weight_high = total - weight_low;
        if weight_low == 0.0 || weight_high == 0.0 {
            continue;
        }
        let mean_low = sum_low / weight_low;
        let mean_high = (sum_all - sum_low) / weight_high;
        let variance = weight_low * weight_high * (mean_low - mean_high).powi(2);
        if variance > best_variance {
            best_variance = variance;
            best = value as u8;
        }
    }
    best
}

/// The box holding the ink (pixels above `threshold`), ignoring the sparse rows and columns
/// that specks of noise produce: 0.5 % of the ink mass is trimmed from each side.
fn ink_bounds(ink: &GrayImage, threshold: u8) -> Option<InkBox> {
    let width = ink.width() as usize;
    let mut rows = Vec::with_capacity(ink.height() as usize);
    // A row or column holds at most 16,384 pixels of 255: its mass fits in a u32 and the
    // sums cannot wrap. Adding without overflow checks keeps the loop in vector registers.
    let mut cols = vec![0u32; width];
    for row in ink.as_raw().chunks_exact(width) {
        let mut row_mass = 0u32;
        for (col, &value) in cols.iter_mut().zip(row) {
            let mass = u32::from(if value > threshold { value } else { 0 });
            *col = col.wrapping_add(mass);
            row_mass = row_mass.wrapping_add(mass);
        }
        rows.push(u64::from(row_mass));
    }
    let cols: Vec<u64> = cols.into_iter().map(u64::from).collect();
    let (y0, y1) = trimmed_span(&rows)?;
    let (x0, x1) = trimmed_span(&cols)?;
    Some((x0, y0, x1, y1))
}

fn trimmed_span(mass: &[u64]) -> Option<(u32, u32)> {
    let total: u64 = mass.iter().sum();
    if total == 0 {
        return None;
    }
    let cut = total / 200;
    let first = cumulative_index(mass.iter(), cut)?;
    let last = mass.len() - 1 - cumulative_index(mass.iter().rev(), cut)?;
    Some((first as u32, last.max(first) as u32))
}

/// Index of the first element at which the running sum exceeds `cut`.
fn cumulative_index<'a>(values: impl Iterator<Item = &'a u64>, cut: u64) -> Option<usize> {
    let mut running = 0;
    for (i, &v) in values.enumerate() {
        running += v;
        if running > cut {
            return Some(i);
        }
    }
    None
}

/// Scales the ink box `(x0, y0, x1, y1)` (inclusive) of `ink` so its longer side is `side`
/// pixels, keeping the aspect ratio.
fn scale_to_side(ink: &GrayImage, (x0, y0, x1, y1): InkBox, side: u32) -> GrayImage {
    use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer, images};
    let (w, h) = (x1 - x0 + 1, y1 - y0 + 1);
    let scale = side as f32 / w.max(h) as f32;
    let new_w = ((w as f32 * scale).round() as u32).clamp(1, side);
    let new_h = ((h as f32 * scale).round() as u32).clamp(1, side);
    let source = images::ImageRef::new(ink.width(), ink.height(), ink.as_raw(), PixelType::U8)
        .expect("a grey image is one byte per pixel");
    let mut scaled = images::Image::new(new_w, new_h, PixelType::U8);
    // The bilinear (triangle) filter widens its support when shrinking, which is what
    // anti-aliasing needs.
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
        .crop(f64::from(x0), f64::from(y0), f64::from(w), f64::from(h));
    Resizer::new()
        .resize(&source, &mut scaled, &options)
        .expect("the ink box lies inside the image and both images are grey");
    grey_image(new_w, new_h, scaled.into_vec())
}

/// Places `digit` in a 28×28 black field with its centre of mass where MNIST puts it.
fn centre_by_mass(digit: &GrayImage) -> [u8; PIXELS] {
    let (w, h) = digit.dimensions();
    let side = IMAGE_SIDE as i64;
    let (com_x, com_y) = centre_of_mass(digit).unwrap_or((w as f64 / 2.0, h as f64 / 2.0));
    let centre = MNIST_CENTRE;
    // Shift so the centre of mass lands there, but keep the whole digit in the field.
    let left = ((centre - com_x).round() as i64).clamp(0, side - i64::from(w));
    let top = ((centre - com_y).round() as i64).clamp(0, side - i64::from(h));
    let mut field = [0u8; PIXELS];
    for (x, y, p) in digit.enumerate_pixels() {
        let (fx, fy) = (left + i64::from(x), top + i64::from(y));
        field[(fy * side + fx) as usize] = p[0];
    }
    field
}

/// Intensity-weighted mean pixel position (pixel centres at integer coordinates).
fn centre_of_mass(image: &GrayImage) -> Option<(f64, f64)> {
    let (mut mass, mut sx, mut sy) = (0.0, 0.0, 0.0);
    for (x, y, p) in image.enumerate_pixels() {
        let m = f64::from(p[0]);
        mass += m;
        sx += m * f64::from(x);
        sy += m * f64::from(y);
    }
    (mass > 0.0).then(|| (sx / mass, sy / mass))
}

/// A preprocessed 28×28 input as the bytes of a grey PNG file.
pub fn preprocessed_png(pixels: &[u8; PIXELS]) -> Vec<u8> {
    let side = model::IMAGE_SIDE as u32;
    let mut png = Vec::new();
    image::GrayImage::from_raw(side, side, pixels.to_vec())
        .expect("784 pixels make a 28×28 image")
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("a 28×28 grey PNG encodes in memory");
    png
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Luma, Rgba, RgbaImage};

    /// Centre of mass and ink box of a preprocessed 28×28 image.
    fn measure(pixels: &[u8; PIXELS]) -> ((f64, f64), (usize, usize)) {
        let image =
            GrayImage::from_raw(28, 28, pixels.to_vec()).expect("28×28 pixels make an image");
        let com = centre_of_mass(&image).unwrap();
        let inked: Vec<(usize, usize)> = (0..PIXELS)
            .filter(|&i| pixels[i] > 0)
            .map(|i| (i % 28, i / 28))
            .collect();
        let width =
            inked.iter().map(|p| p.0).max().unwrap() - inked.iter().map(|p| p.0).min().unwrap() + 1;
        let height =
            inked.iter().map(|p| p.1).max().unwrap() - inked.iter().map(|p| p.1).min().unwrap() + 1;
        (com, (width, height))
    }

    fn assert_mnist_like(pixels: &[u8; PIXELS]) {
        let ((cx, cy), (w, h)) = measure(pixels);
        assert!(
            (cx - MNIST_CENTRE).abs() <= 0.5 && (cy - MNIST_CENTRE).abs() <= 0.5,
            "centre of mass ({cx}, {cy})"
        );
        assert!(w <= 20 && h <= 20, "ink box {w}×{h}");
        assert!(w.max(h) >= 19, "ink box {w}×{h} should fill 20 px");
        assert_eq!(pixels[0], 0, "background is black");
        assert!(pixels.iter().any(|&p| p > 200), "ink is bright");
    }

    /// A thick stroke shaped like an "L", drawn in `ink` on `paper` on a large page, away from
    /// the centre.
    fn stroke_on_page(paper: u8, ink: u8) -> GrayImage {
        GrayImage::from_fn(300, 200, |x, y| {
            let upright = (40..58).contains(&x) && (30..150).contains(&y);
            let foot = (40..110).contains(&x) && (132..150).contains(&y);
            Luma([if upright || foot { ink } else { paper }])
        })
    }

    #[test]
    fn an_off_centre_stroke_lands_in_a_20px_box_centred_by_mass() {
        let page = DynamicImage::ImageLuma8(stroke_on_page(0, 255));
        assert_mnist_like(&to_mnist(&page).unwrap());
    }

    #[test]
    fn dark_ink_on_light_paper_is_inverted() {
        let page = DynamicImage::ImageLuma8(stroke_on_page(230, 40));
        let pixels = to_mnist(&page).unwrap();
        assert_mnist_like(&pixels);
        let bright = DynamicImage::ImageLuma8(stroke_on_page(0, 255));
        assert_eq!(
            pixels,
            to_mnist(&bright).unwrap(),
            "polarity does not change the result"
        );
    }

    #[test]
    fn a_canvas_export_with_alpha_is_flattened_onto_paper() {
        // Black strokes, drawn only through alpha, over transparent black.
        let stroke = stroke_on_page(0, 255);
        let canvas =
            RgbaImage::from_fn(300, 200, |x, y| Rgba([0, 0, 0, stroke.get_pixel(x, y)[0]]));
        let pixels = to_mnist(&DynamicImage::ImageRgba8(canvas)).unwrap();
        assert_mnist_like(&pixels);
        // White strokes on transparent white work too.
        let light = RgbaImage::from_fn(300, 200, |x, y| {
            Rgba([255, 255, 255, stroke.get_pixel(x, y)[0]])
        });
        assert_mnist_like(&to_mnist(&DynamicImage::ImageRgba8(light)).unwrap());
    }

    #[test]
    fn sixteen_bit_and_colour_images_are_handled() {
        let stroke = stroke_on_page(255, 0);
        let wide = image::ImageBuffer::<Luma<u16>, Vec<u16>>::from_fn(300, 200, |x, y| {
            Luma([u16::from(stroke.get_pixel(x, y)[0]) * 257])
        });
        assert_mnist_like(&to_mnist(&DynamicImage::ImageLuma16(wide)).unwrap());
        let blue_ink = image::RgbImage::from_fn(300, 200, |x, y| {
            if stroke.get_pixel(x, y)[0] == 0 {
                image::Rgb([20, 40, 160])
            } else {
                image::Rgb([250, 245, 235])
            }
        });
        assert_mnist_like(&to_mnist(&DynamicImage::ImageRgb8(blue_ink)).unwrap());
    }

    #[test]
    fn specks_of_noise_do_not_move_the_crop() {
        let mut page = stroke_on_page(0, 255);
        for (x, y) in [(3, 3), (290, 190), (200, 20), (150, 180)] {
            page.put_pixel(x, y, Luma([255]));
        }
        let noisy = to_mnist(&DynamicImage::ImageLuma8(page)).unwrap();
        let clean = to_mnist(&DynamicImage::ImageLuma8(stroke_on_page(0, 255))).unwrap();
        let diff: u32 = noisy
            .iter()
            .zip(&clean)
            .map(|(a, b)| u32::from(a.abs_diff(*b)))
            .sum();
        assert!(diff < 255 * 4, "noise changed the result by {diff}");
    }

    #[test]
    fn blank_and_tiny_images_have_no_digit() {
        assert!(
            to_mnist(&DynamicImage::ImageLuma8(GrayImage::from_pixel(
                50,
                50,
                Luma([255])
            )))
            .is_none()
        );
        assert!(
            to_mnist(&DynamicImage::ImageLuma8(GrayImage::from_pixel(
                1,
                1,
                Luma([0])
            )))
            .is_none()
        );
        let faint = GrayImage::from_fn(50, 50, |x, _| Luma([200 + (x % 3) as u8]));
        assert!(to_mnist(&DynamicImage::ImageLuma8(faint)).is_none());
    }

    fn save(dir: &tempfile::TempDir, name: &str, image: &GrayImage) -> PathBuf {
        let path = dir.path().join(name);
        image.save(&path).unwrap();
        path
    }

    #[test]
    fn files_in_every_format_decode() {
        let dir = tempfile::tempdir().unwrap();
        let page = DynamicImage::ImageLuma8(stroke_on_page(255, 0)).to_rgba8();
        for name in ["a.png", "a.jpg", "a.bmp", "a.gif", "a.tiff", "a.webp"] {
            let path = dir.path().join(name);
            match name {
                // JPEG has no alpha channel.
                "a.jpg" => DynamicImage::ImageRgba8(page.clone()).to_rgb8().save(&path),
                _ => page.save(&path),
            }
            .unwrap();
            assert_mnist_like(&preprocess_image(&path).unwrap());
        }
    }

    #[test]
    fn bad_files_get_a_named_error() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&str, &[u8], &str); 3] = [
            ("empty.png", b"", "empty file"),
            ("text.png", b"not an image at all", "not a readable image"),
            ("blank.png", &[], "no digit found"),
        ];
        for (name, bytes, expected) in cases {
            let path = if name == "blank.png" {
                save(&dir, name, &GrayImage::from_pixel(40, 40, Luma([255])))
            } else {
                let path = dir.path().join(name);
                std::fs::write(&path, bytes).unwrap();
                path
            };
            let err = preprocess_image(&path).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains(expected), "{err}");
        }
        let err = preprocess_image(Path::new("/no/such.png")).unwrap_err();
        assert!(err.to_string().contains("/no/such.png"), "{err}");
    }

    #[test]
    fn a_truncated_image_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = save(&dir, "whole.png", &stroke_on_page(255, 0));
        let bytes = std::fs::read(&path).unwrap();
        let err = preprocess_bytes(&bytes[..bytes.len() / 2], Path::new("cut.png")).unwrap_err();
        assert!(err.to_string().starts_with("cut.png: "), "{err}");
    }

    #[test]
    fn a_jpeg_cut_anywhere_in_its_scan_is_refused() {
        let photo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/digits/five-photo.jpg");
        let bytes = std::fs::read(&photo).unwrap();
        assert!(preprocess_bytes(&bytes, &photo).is_ok());
        for keep in [0.3, 0.5, 0.9, 0.99] {
            let cut = &bytes[..(bytes.len() as f64 * keep) as usize];
            let err = preprocess_bytes(cut, Path::new("cut.jpg")).unwrap_err();
            assert!(
                matches!(err, PreprocessError::Decode { .. })
                    && err.to_string().starts_with("cut.jpg: "),
                "{keep}: {err}"
            );
        }
    }

    #[test]
    fn grey_levels_match_image_s_own_conversion() {
        // Every shade of each channel and a spread of mixed colours, opaque.
        let rgb = image::RgbImage::from_fn(256, 4, |x, y| {
            let v = x as u8;
            match y {
                0 => image::Rgb([v, 0, 0]),
                1 => image::Rgb([0, v, 0]),
                2 => image::Rgb([0, 0, v]),
                _ => image::Rgb([v, v.wrapping_mul(7), v.wrapping_mul(13)]),
            }
        });
        let reference = DynamicImage::ImageRgb8(rgb.clone()).to_luma8();
        let ours = flatten_to_grey(&DynamicImage::ImageRgb8(rgb.clone()));
        let opaque = flatten_to_grey(&DynamicImage::ImageRgba8(
            DynamicImage::ImageRgb8(rgb).to_rgba8(),
        ));
        for (grey, name) in [(&ours, "RGB"), (&opaque, "opaque RGBA")] {
            let worst = grey
                .as_raw()
                .iter()
                .zip(reference.as_raw())
                .map(|(a, b)| a.abs_diff(*b))
                .max();
            assert!(worst <= Some(1), "{name}: off by {worst:?}");
        }
    }

    #[test]
    fn an_image_without_rows_or_columns_is_refused_not_a_panic() {
        for (width, height) in [(28, 0), (0, 28), (0, 0)] {
            assert_eq!(to_mnist(&DynamicImage::new_luma8(width, height)), None);
        }
        // A GIF whose frame has no rows, as a fuzzer wrote it.
        let gif = b"GIF87a\x1c\x00\x00\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff\
                    ,\x00\x00\x00\x00\x1c\x00\x00\x00\x00\x02\x02\x44\x01\x00;";
        let err = preprocess_bytes(gif, Path::new("flat.gif"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("flat.gif: "), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn a_header_claiming_enormous_dimensions_is_refused_quickly() {
        // A PNG header for a 100,000 × 100,000 image, with no data behind it.
        let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
        png.extend(100_000u32.to_be_bytes());
        png.extend(100_000u32.to_be_bytes());
        png.extend([8, 0, 0, 0, 0]);
        let crc = crc32(&png[12..]);
        png.extend(crc.to_be_bytes());
        let err = preprocess_bytes(&png, Path::new("huge.png")).unwrap_err();
        assert!(matches!(err, PreprocessError::Decode { .. }), "{err}");
    }

    #[test]
    fn too_many_pixels_are_refused_from_the_header_before_decoding() {
        // A 35-byte GIF whose screen claims 6000 × 6000 pixels (a decoder would allocate
        // hundreds of megabytes for it).
        let mut gif = b"GIF89a".to_vec();
        gif.extend(6000u16.to_le_bytes());
        gif.extend(6000u16.to_le_bytes());
        gif.extend([0x80, 0, 0, 0xff, 0xff, 0xff, 0, 0, 0, b',']);
        gif.extend([0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x4c, 1, 0, b';']);
        let started = std::time::Instant::now();
        let err = preprocess_bytes(&gif, Path::new("g.gif")).unwrap_err();
        assert!(
            matches!(err, PreprocessError::TooManyPixels { width: 6000, .. }),
            "{err}"
        );
        assert!(
            err.to_string().starts_with("g.gif: 6000×6000 pixels"),
            "{err}"
        );
        assert!(started.elapsed().as_millis() < 100);
        let small = encode(&DynamicImage::ImageLuma8(digit_like(40)), ImageFormat::Png);
        let cost = decoding_cost(&small, Path::new("s.png")).unwrap();
        assert_eq!(cost, 40 * 40 * PEAK_BYTES_PER_PIXEL);
    }

    /// A white-on-black stroke in a `side`-pixel square: a digit's worth of ink.
    fn digit_like(side: u32) -> GrayImage {
        GrayImage::from_fn(side, side, |x, y| {
            let inked = (side / 4..side * 3 / 4).contains(&x) && (y == side / 3 || x == side / 2);
            Luma([if inked { 255 } else { 0 }])
        })
    }

    fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), format)
            .unwrap();
        bytes
    }

    #[test]
    fn grey_with_alpha_reads_as_the_same_drawing_in_rgba() {
        let strokes = digit_like(40);
        // Strokes in the alpha channel over transparent black, as a canvas exports them.
        let grey_alpha = image::GrayAlphaImage::from_fn(40, 40, |x, y| {
            image::LumaA([0, strokes.get_pixel(x, y)[0]])
        });
        let rgba = DynamicImage::ImageLumaA8(grey_alpha.clone()).to_rgba8();
        let from_grey = preprocess_bytes(
            &encode(&DynamicImage::ImageLumaA8(grey_alpha), ImageFormat::Png),
            Path::new("la.png"),
        )
        .unwrap();
        let from_rgba = preprocess_bytes(
            &encode(&DynamicImage::ImageRgba8(rgba), ImageFormat::Png),
            Path::new("rgba.png"),
        )
        .unwrap();
        assert_eq!(from_grey, from_rgba);
    }

    #[test]
    fn an_exif_orientation_is_applied_before_preprocessing() {
        use image::ImageEncoder;
        let upright = digit_like(40);
        let stored = image::imageops::rotate180(&upright);
        // A little-endian TIFF header with one IFD entry: Orientation (0x0112) = 3, "rotate
        // 180°", what a phone writes for a photo taken upside down.
        let exif = [
            b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0,
            0,
        ];
        let mut png = Vec::new();
        let mut encoder = image::codecs::png::PngEncoder::new(&mut png);
        encoder.set_exif_metadata(exif.to_vec()).unwrap();
        encoder
            .write_image(stored.as_raw(), 40, 40, image::ExtendedColorType::L8)
            .unwrap();
        let expected = preprocess_bytes(
            &encode(&DynamicImage::ImageLuma8(upright), ImageFormat::Png),
            Path::new("upright.png"),
        )
        .unwrap();
        assert_eq!(
            preprocess_bytes(&png, Path::new("stored.png")).unwrap(),
            expected
        );
    }

    /// A 0 as a dark ring on a white 240-pixel picture: `across` pixels wide, its pen
    /// `pen` pixels wide.
    fn ring_picture(across: f64, pen: f64) -> DynamicImage {
        let outer = across / 2.0;
        DynamicImage::ImageLuma8(GrayImage::from_fn(240, 240, |x, y| {
            let d = (f64::from(x) - 120.0).hypot(f64::from(y) - 120.0);
            Luma([if d <= outer && d > outer - pen {
                0
            } else {
                255
            }])
        }))
    }

    /// Stroke width as a share of the ink box, of a preprocessed 28×28 input, its ink taken
    /// at half its brightest (a hairline scaled down is faint).
    fn stroke_share(pixels: &[u8; PIXELS]) -> f64 {
        let image = GrayImage::from_raw(28, 28, pixels.to_vec()).unwrap();
        let half = pixels.iter().max().unwrap() / 2;
        let ink_box = ink_bounds(&image, half).unwrap();
        stroke::relative_width(&image, half, ink_box).unwrap()
    }

    #[test]
    fn strokes_far_from_mnists_are_brought_toward_it() {
        let mnist = stroke::MNIST_RELATIVE_WIDTH;
        // A small 0 in a broad pen (a third of its size), a large one in a fine pen.
        for (across, pen) in [(42.0, 14.0), (200.0, 2.0)] {
            let picture = ring_picture(across, pen);
            let corrected = stroke_share(&to_mnist(&picture).unwrap());
            let kept = stroke_share(&to_mnist_keeping_stroke(&picture).unwrap());
            assert!(
                (corrected - mnist).abs() < 0.5 * (kept - mnist).abs(),
                "a {across}-px 0 in a {pen}-px pen: share {corrected:.3}, {kept:.3} kept"
            );
        }
    }

    #[test]
    fn a_stroke_like_mnists_is_scaled_as_it_is() {
        let picture = ring_picture(160.0, 18.0);
        assert_eq!(to_mnist(&picture), to_mnist_keeping_stroke(&picture));
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
