//! Seeded random distortions of training images: small rotations, scalings, shifts and
//! smooth elastic warps, the variation between people's handwriting that 60,000 images only
//! sample.

use crate::PIXELS;
use crate::input::pixel_to_input;
use model::IMAGE_SIDE;
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

/// Bounds of the random distortion; each image draws its own values uniformly from ± these
/// bounds. Read as the `[augmentation]` section of a training recipe: a key left out is 0,
/// no distortion of that kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Augmentation {
    /// Largest rotation either way, in degrees.
    pub rotation_degrees: f32,
    /// Relative: 0.1 draws scales from 0.9 to 1.1.
    pub scale: f32,
    /// Largest shift along each axis, in pixels.
    pub shift_pixels: f32,
    /// Largest displacement of the elastic warp's control points, in pixels: a smooth random
    /// field that bends strokes locally, as in Simard et al. (2003), drawn on a coarse grid
    /// and interpolated (far cheaper than smoothing a per-pixel field).
    pub elastic_pixels: f32,
}

/// Control points of the elastic warp along each side: one every 6.75 pixels.
const ELASTIC_GRID: usize = 5;

impl Augmentation {
    /// True when no bound allows any change.
    pub fn is_identity(&self) -> bool {
        self.rotation_degrees == 0.0
            && self.scale == 0.0
            && self.shift_pixels == 0.0
            && self.elastic_pixels == 0.0
    }

    /// Writes one randomly distorted copy of `pixels` into `inputs`, already scaled as
    /// [`pixel_to_input`] scales pixels. The image turns and scales about its centre and is
    /// resampled bilinearly; whatever comes from outside the frame is background.
    pub fn apply(&self, pixels: &[u8; PIXELS], rng: &mut impl Rng, inputs: &mut [f32]) {
        let mut draw = |bound: f32| {
            if bound > 0.0 {
                rng.random_range(-bound..=bound)
            } else {
                0.0
            }
        };
        let angle = draw(self.rotation_degrees).to_radians();
        let scale = 1.0 + draw(self.scale);
        let (dx, dy) = (draw(self.shift_pixels), draw(self.shift_pixels));
        let warp = (self.elastic_pixels > 0.0).then(|| {
            let mut grid = [[(0.0f32, 0.0f32); ELASTIC_GRID]; ELASTIC_GRID];
            for point in grid.iter_mut().flatten() {
                *point = (draw(self.elastic_pixels), draw(self.elastic_pixels));
            }
            ElasticField::of(&grid)
        });
        let affine = Affine {
            sin_cos: angle.sin_cos(),
            scale,
            shift: (dx, dy),
        };
        affine.resample(pixels, inputs, warp.as_ref());
    }
}

/// One image's drawn rotation, scale and shift.
struct Affine {
    sin_cos: (f32, f32),
    scale: f32,
    shift: (f32, f32),
}

impl Affine {
    /// Each output pixel reads the source at the inverse transform of its position, moved by
    /// `warp` there. A row at a time: its source positions first (arithmetic the compiler
    /// runs on vectors), then its reads.
    fn resample(&self, pixels: &[u8; PIXELS], inputs: &mut [f32], warp: Option<&ElasticField>) {
        let ((sin, cos), scale, (dx, dy)) = (self.sin_cos, self.scale, self.shift);
        let centre = (IMAGE_SIDE as f32 - 1.0) / 2.0;
        let framed = Framed::of(pixels);
        let (mut wx, mut wy) = ([0.0; IMAGE_SIDE], [0.0; IMAGE_SIDE]);
        let (mut sx, mut sy) = ([0.0; IMAGE_SIDE], [0.0; IMAGE_SIDE]);
        for (y, row) in inputs.chunks_exact_mut(IMAGE_SIDE).enumerate() {
            if let Some(warp) = warp {
                warp.row(y, &mut wx, &mut wy);
            }
            let oy = y as f32 - centre - dy;
            for x in 0..IMAGE_SIDE {
                let ox = x as f32 - centre - dx;
                sx[x] = (cos * ox + sin * oy) / scale + centre + wx[x];
                sy[x] = (-sin * ox + cos * oy) / scale + centre + wy[x];
            }
            framed.read_row(&sx, &sy, row);
        }
    }
}

/// An elastic warp's displacements: its control grid interpolated bilinearly, so it is
/// smooth and bends neighbouring pixels alike. Interpolated along each grid row once per
/// image, then between grid rows once per pixel.
struct ElasticField {
    /// `[grid row][x]`: each grid row's displacement at every column.
    along_rows: [[(f32, f32); IMAGE_SIDE]; ELASTIC_GRID],
}

impl ElasticField {
    fn of(grid: &[[(f32, f32); ELASTIC_GRID]; ELASTIC_GRID]) -> Self {
        let mut along_rows = [[(0.0, 0.0); IMAGE_SIDE]; ELASTIC_GRID];
        for (points, along) in grid.iter().zip(&mut along_rows) {
            for (x, along) in along.iter_mut().enumerate() {
                let (i, fx) = grid_place(x);
                let (left, right) = (points[i], points[i + 1]);
                *along = (mix(left.0, right.0, fx), mix(left.1, right.1, fx));
            }
        }
        Self { along_rows }
    }

    /// The displacements of pixel row `y`, along each axis.
    fn row(&self, y: usize, wx: &mut [f32; IMAGE_SIDE], wy: &mut [f32; IMAGE_SIDE]) {
        let (j, fy) = grid_place(y);
        let (above, below) = (&self.along_rows[j], &self.along_rows[j + 1]);
        for x in 0..IMAGE_SIDE {
            wx[x] = mix(above[x].0, below[x].0, fy);
            wy[x] = mix(above[x].1, below[x].1, fy);
        }
    }
}

/// The grid cell a pixel coordinate falls in, and how far across it.
fn grid_place(v: usize) -> (usize, f32) {
    let cell = (IMAGE_SIDE - 1) as f32 / (ELASTIC_GRID - 1) as f32;
    let t = v as f32 / cell;
    let i = (t as usize).min(ELASTIC_GRID - 2);
    (i, t - i as f32)
}

fn mix(a: f32, b: f32, t: f32) -> f32 {
    a + (b - a) * t
}

/// [`pixel_to_input`] for an interpolated (fractional) pixel value; the scaling is linear, so
/// interpolating pixels and then scaling equals scaling and then interpolating.
fn pixel_to_input_f32(value: f32) -> f32 {
    value * pixel_to_input(1)
}

/// Background pixels around the image on each side: a bilinear read whose first column (or
/// row) is clamped to the border reads only background, as every read outside the frame does.
const BORDER: usize = 2;

/// Side of a [`Framed`] image.
const FRAMED_SIDE: usize = IMAGE_SIDE + 2 * BORDER;

/// An image's pixels as `f32` inside a border of background, so that the bilinear reads of
/// [`Framed::read_row`] need no test for the frame's edges.
struct Framed([f32; FRAMED_SIDE * FRAMED_SIDE]);

impl Framed {
    fn of(pixels: &[u8; PIXELS]) -> Self {
        let mut framed = [0.0; FRAMED_SIDE * FRAMED_SIDE];
        for (row, pixels) in framed[BORDER * FRAMED_SIDE..]
            .chunks_exact_mut(FRAMED_SIDE)
            .zip(pixels.chunks_exact(IMAGE_SIDE))
        {
            for (value, &pixel) in row[BORDER..].iter_mut().zip(pixels) {
                *value = f32::from(pixel);
            }
        }
        Self(framed)
    }

    /// The image's values at the fractional positions `(x[i], y[i])` into `values`, scaled
    /// as [`pixel_to_input`] scales pixels; 0 outside the frame.
    // The one `unsafe` call in this crate: into the AVX-512 read below.
    #[allow(unsafe_code)]
    fn read_row(&self, x: &[f32; IMAGE_SIDE], y: &[f32; IMAGE_SIDE], values: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { self.read_row_avx512(x, y, values) };
        }
        self.read_row_scalar(x, y, values);
    }

    /// [`Self::read_row`] a pixel at a time.
    fn read_row_scalar(&self, x: &[f32; IMAGE_SIDE], y: &[f32; IMAGE_SIDE], values: &mut [f32]) {
        // Where each read starts and how far across its pixel it falls, every column first.
        let (mut starts, mut fx, mut fy) = ([0; IMAGE_SIDE], [0.0; IMAGE_SIDE], [0.0; IMAGE_SIDE]);
        for i in 0..IMAGE_SIDE {
            let (x0, y0) = (floor(x[i]), floor(y[i]));
            (fx[i], fy[i]) = (x[i] - x0 as f32, y[i] - y0 as f32);
            starts[i] = framed_place(y0) * FRAMED_SIDE + framed_place(x0);
        }
        for (i, value) in values.iter_mut().enumerate() {
            let at = |offset: usize| self.0[starts[i] + offset];
            let (fx, fy) = (fx[i], fy[i]);
            let top = at(0) * (1.0 - fx) + at(1) * fx;
            let bottom = at(FRAMED_SIDE) * (1.0 - fx) + at(FRAMED_SIDE + 1) * fx;
            *value = pixel_to_input_f32(top * (1.0 - fy) + bottom * fy);
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl Framed {
    /// [`Self::read_row`] sixteen pixels at a time, each read's four pixels gathered: the
    /// compiler leaves these reads scalar, and they were most of a distortion's time. The
    /// same operations in the same order as [`Self::read_row_scalar`], so the same values,
    /// bit for bit, which a test checks.
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[allow(unsafe_code)]
    unsafe fn read_row_avx512(
        &self,
        x: &[f32; IMAGE_SIDE],
        y: &[f32; IMAGE_SIDE],
        values: &mut [f32],
    ) {
        use std::arch::x86_64::*;
        assert_eq!(values.len(), IMAGE_SIDE);
        let framed = self.0.as_ptr();
        let (one, scale) = (_mm512_set1_ps(1.0), _mm512_set1_ps(pixel_to_input_f32(1.0)));
        // A read's first column (or row) is clamped to the border as `framed_place` clamps
        // it, but before it becomes an integer, so no coordinate can overflow the conversion.
        let (lowest, highest) = (
            _mm512_set1_ps(-(BORDER as f32)),
            _mm512_set1_ps(IMAGE_SIDE as f32),
        );
        let border = _mm512_set1_epi32(BORDER as i32);
        for first in (0..IMAGE_SIDE).step_by(16) {
            let mask: __mmask16 = (1u32 << (IMAGE_SIDE - first).min(16)).wrapping_sub(1) as u16;
            // SAFETY: masked loads and stores touch only the lanes of `mask`, which lie inside
            // `x`, `y` and `values`; every gathered offset is inside the framed image (below).
            unsafe {
                let (xs, ys) = (
                    _mm512_maskz_loadu_ps(mask, x.as_ptr().add(first)),
                    _mm512_maskz_loadu_ps(mask, y.as_ptr().add(first)),
                );
                let (x0, y0) = (
                    _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(xs),
                    _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(ys),
                );
                let (fx, fy) = (_mm512_sub_ps(xs, x0), _mm512_sub_ps(ys, y0));
                let place = |v: __m512| {
                    let clamped = _mm512_min_ps(_mm512_max_ps(v, lowest), highest);
                    _mm512_add_epi32(_mm512_cvttps_epi32(clamped), border)
                };
                // Each coordinate is in 0..=IMAGE_SIDE + BORDER, so the read's last pixel,
                // one row and one column on, is inside the FRAMED_SIDE² values.
                let start = _mm512_add_epi32(
                    _mm512_mullo_epi32(place(y0), _mm512_set1_epi32(FRAMED_SIDE as i32)),
                    place(x0),
                );
                let at = |offset: usize| {
                    _mm512_mask_i32gather_ps::<4>(
                        _mm512_setzero_ps(),
                        mask,
                        start,
                        framed.add(offset),
                    )
                };
                let (not_fx, not_fy) = (_mm512_sub_ps(one, fx), _mm512_sub_ps(one, fy));
                let top = _mm512_add_ps(_mm512_mul_ps(at(0), not_fx), _mm512_mul_ps(at(1), fx));
                let bottom = _mm512_add_ps(
                    _mm512_mul_ps(at(FRAMED_SIDE), not_fx),
                    _mm512_mul_ps(at(FRAMED_SIDE + 1), fx),
                );
                let value = _mm512_add_ps(_mm512_mul_ps(top, not_fy), _mm512_mul_ps(bottom, fy));
                _mm512_mask_storeu_ps(
                    values.as_mut_ptr().add(first),
                    mask,
                    _mm512_mul_ps(value, scale),
                );
            }
        }
    }
}

/// Where a read whose first column (or row) is `v` starts in a [`Framed`] image. Clamping
/// only moves reads that lie wholly outside the frame, whose two columns (or rows) are
/// background either way.
fn framed_place(v: i32) -> usize {
    (v.clamp(-(BORDER as i32), IMAGE_SIDE as i32) + BORDER as i32) as usize
}

/// `v.floor()` as an integer, without the library call that `f32::floor` is on CPUs this
/// crate is compiled for (x86-64 before SSE4.1). Exact for every `|v| < 2³¹`.
fn floor(v: f32) -> i32 {
    let truncated = v as i32;
    truncated - i32::from(v < truncated as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// The bilinear read with a test for the frame at each of its four pixels.
    fn bilinear_checked(pixels: &[u8; PIXELS], x: f32, y: f32) -> f32 {
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        let at = |xi: f32, yi: f32| -> f32 {
            if xi < 0.0 || yi < 0.0 || xi >= IMAGE_SIDE as f32 || yi >= IMAGE_SIDE as f32 {
                0.0
            } else {
                f32::from(pixels[yi as usize * IMAGE_SIDE + xi as usize])
            }
        };
        let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1.0, y0) * fx;
        let bottom = at(x0, y0 + 1.0) * (1.0 - fx) + at(x0 + 1.0, y0 + 1.0) * fx;
        top * (1.0 - fy) + bottom * fy
    }

    #[test]
    fn framed_reads_equal_reads_checked_at_the_edges() {
        let mut rng = StdRng::seed_from_u64(5);
        let pixels: [u8; PIXELS] = std::array::from_fn(|_| rng.random_range(0..=255));
        let framed = Framed::of(&pixels);
        let mut coordinates: Vec<f32> = (-400..=400).map(|i| i as f32 / 8.0).collect();
        for whole in [-3.0f32, -2.0, -1.0, 0.0, 27.0, 28.0, 29.0] {
            coordinates.extend([whole, whole.next_down(), whole.next_up(), whole - 1e-6]);
        }
        coordinates.extend([-1e-9, 1e-9, -0.0, 1e6, -1e6, 1e9, -1e9]);
        let mut values = [0.0; IMAGE_SIDE];
        for &y in &coordinates {
            for xs in coordinates.chunks(IMAGE_SIDE) {
                let x = std::array::from_fn(|i| xs[i % xs.len()]);
                // The read this CPU runs (sixteen at a time where it has AVX-512), and the
                // one-pixel-at-a-time read that others run.
                let mut scalar = [0.0; IMAGE_SIDE];
                framed.read_row(&x, &[y; IMAGE_SIDE], &mut values);
                framed.read_row_scalar(&x, &[y; IMAGE_SIDE], &mut scalar);
                for ((&x, value), scalar) in x.iter().zip(values).zip(scalar) {
                    let checked = pixel_to_input_f32(bilinear_checked(&pixels, x, y));
                    assert_eq!(value.to_bits(), checked.to_bits(), "at ({x}, {y})");
                    assert_eq!(scalar.to_bits(), checked.to_bits(), "at ({x}, {y})");
                }
            }
        }
    }

    /// The warp at one pixel, interpolated from the grid in one go.
    fn warp_at(
        grid: &[[(f32, f32); ELASTIC_GRID]; ELASTIC_GRID],
        x: usize,
        y: usize,
    ) -> (f32, f32) {
        let ((i, fx), (j, fy)) = (grid_place(x), grid_place(y));
        let axis = |get: fn(&(f32, f32)) -> f32| {
            let top = mix(get(&grid[j][i]), get(&grid[j][i + 1]), fx);
            let bottom = mix(get(&grid[j + 1][i]), get(&grid[j + 1][i + 1]), fx);
            mix(top, bottom, fy)
        };
        (axis(|p| p.0), axis(|p| p.1))
    }

    /// The elastic field's displacement at pixel `(x, y)`.
    fn field_at(field: &ElasticField, x: usize, y: usize) -> (f32, f32) {
        let (mut wx, mut wy) = ([0.0; IMAGE_SIDE], [0.0; IMAGE_SIDE]);
        field.row(y, &mut wx, &mut wy);
        (wx[x], wy[x])
    }

    #[test]
    fn the_field_row_by_row_is_the_grid_interpolated_pixel_by_pixel() {
        let mut rng = StdRng::seed_from_u64(9);
        let grid = std::array::from_fn(|_| {
            std::array::from_fn(|_| (rng.random_range(-2.0..2.0), rng.random_range(-2.0..2.0)))
        });
        let field = ElasticField::of(&grid);
        for y in 0..IMAGE_SIDE {
            for x in 0..IMAGE_SIDE {
                let (row_by_row, direct) = (field_at(&field, x, y), warp_at(&grid, x, y));
                assert_eq!(
                    row_by_row.0.to_bits(),
                    direct.0.to_bits(),
                    "x at ({x}, {y})"
                );
                assert_eq!(
                    row_by_row.1.to_bits(),
                    direct.1.to_bits(),
                    "y at ({x}, {y})"
                );
            }
        }
    }

    #[test]
    fn floor_is_the_library_floor() {
        for v in [
            -2.5f32,
            -1.0,
            -1e-9,
            -0.0,
            0.0,
            1e-9,
            0.999_999_9,
            1.0,
            27.5,
            1e6,
            -1e6,
        ] {
            assert_eq!(floor(v) as f32, v.floor(), "floor({v})");
        }
    }

    fn stroke() -> [u8; PIXELS] {
        let mut pixels = [0u8; PIXELS];
        for y in 6..22 {
            pixels[y * IMAGE_SIDE + 13] = 255;
            pixels[y * IMAGE_SIDE + 14] = 200;
        }
        pixels
    }

    fn distort(augmentation: Augmentation, seed: u64) -> Vec<f32> {
        let mut inputs = vec![0.0; PIXELS];
        augmentation.apply(&stroke(), &mut StdRng::seed_from_u64(seed), &mut inputs);
        inputs
    }

    const NONE: Augmentation = Augmentation {
        rotation_degrees: 0.0,
        scale: 0.0,
        shift_pixels: 0.0,
        elastic_pixels: 0.0,
    };

    #[test]
    fn no_distortion_is_the_plain_scaling() {
        assert!(NONE.is_identity());
        let inputs = distort(NONE, 1);
        let expected: Vec<f32> = stroke().iter().map(|&p| pixel_to_input(p)).collect();
        for (a, b) in inputs.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn same_seed_same_image_other_seed_other_image() {
        let augmentation = Augmentation {
            rotation_degrees: 15.0,
            scale: 0.1,
            shift_pixels: 2.0,
            elastic_pixels: 1.5,
        };
        assert!(!augmentation.is_identity());
        assert_eq!(distort(augmentation, 7), distort(augmentation, 7));
        assert_ne!(distort(augmentation, 7), distort(augmentation, 8));
    }

    #[test]
    fn a_whole_pixel_shift_moves_the_stroke() {
        // Bounds of exactly one pixel drawn many times: ink mass is kept and stays near the
        // centre, and the column of maximum ink moves by at most the bound.
        let augmentation = Augmentation {
            shift_pixels: 1.0,
            ..NONE
        };
        let original: f32 = stroke().iter().map(|&p| pixel_to_input(p)).sum();
        for seed in 0..20 {
            let inputs = distort(augmentation, seed);
            let ink: f32 = inputs.iter().sum();
            assert!(
                (ink - original).abs() / original < 0.15,
                "seed {seed}: {ink}"
            );
            let mut columns = [0.0f32; IMAGE_SIDE];
            for (i, v) in inputs.iter().enumerate() {
                columns[i % IMAGE_SIDE] += v;
            }
            let peak = (0..IMAGE_SIDE)
                .max_by(|&a, &b| columns[a].total_cmp(&columns[b]))
                .unwrap();
            assert!((12..=15).contains(&peak), "seed {seed}: column {peak}");
        }
    }

    #[test]
    fn rotation_turns_a_vertical_stroke() {
        let augmentation = Augmentation {
            rotation_degrees: 30.0,
            ..NONE
        };
        // Some draw among these seeds turns the stroke by more than 10°: its ends leave the
        // two middle columns.
        let turned = (0..10).any(|seed| {
            let inputs = distort(augmentation, seed);
            let top_row = &inputs[7 * IMAGE_SIDE..8 * IMAGE_SIDE];
            top_row[13] + top_row[14] < 0.5
        });
        assert!(turned);
    }

    #[test]
    fn an_elastic_warp_bends_strokes_but_keeps_them_in_place() {
        let augmentation = Augmentation {
            elastic_pixels: 2.0,
            ..NONE
        };
        assert!(!augmentation.is_identity());
        let plain: Vec<f32> = stroke().iter().map(|&p| pixel_to_input(p)).collect();
        let original: f32 = plain.iter().sum();
        for seed in 0..10 {
            let inputs = distort(augmentation, seed);
            assert_ne!(inputs, plain, "seed {seed}: a warp changes the image");
            // No pixel moves by more than the bound, so the ink stays near the stroke.
            for (i, &v) in inputs.iter().enumerate() {
                let column = i % IMAGE_SIDE;
                if v > 0.1 {
                    assert!(
                        (10..=17).contains(&column),
                        "seed {seed}: ink at column {column}"
                    );
                }
            }
            let ink: f32 = inputs.iter().sum();
            assert!(
                (ink - original).abs() / original < 0.3,
                "seed {seed}: {ink}"
            );
        }
    }

    #[test]
    fn the_warp_is_the_grid_at_its_points_and_between_them() {
        let mut grid = [[(0.0f32, 0.0f32); ELASTIC_GRID]; ELASTIC_GRID];
        grid[0][0] = (1.0, -1.0);
        grid[ELASTIC_GRID - 1][ELASTIC_GRID - 1] = (2.0, 0.5);
        let field = ElasticField::of(&grid);
        assert_eq!(field_at(&field, 0, 0), (1.0, -1.0));
        let last = IMAGE_SIDE - 1;
        let (x, y) = field_at(&field, last, last);
        assert!((x - 2.0).abs() < 1e-5 && (y - 0.5).abs() < 1e-5);
        // Halfway between the first two control points along the top edge: half the first.
        let (x, _) = field_at(&field, 3, 0);
        assert!(x > 0.4 && x < 0.7, "{x}");
        assert_eq!(field_at(&field, 14, 14), (0.0, 0.0));
    }
}
