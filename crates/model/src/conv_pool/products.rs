//! The two small matrix products every pass of a block reduces to. Each is computed in
//! tiles whose sums stay in vector registers, so that every value loaded feeds several
//! multiply-adds: that, not the loads, is what then bounds the time.
//!
//! The right-hand rows are runs of an image read from a kernel tap's shift ([`Shifted`]):
//! image patches without copying them out. Those loads are not aligned, but a tile makes few
//! enough of them that the multiply-adds still set the pace.

use crate::simd::{Block, Isa, LANES};

/// Rows that are runs of `values`, row `r` starting at `values[starts[r]]`, each read for a
/// whole number of blocks. The caller pads `values` so that every run is inside it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shifted<'a> {
    pub values: &'a [f32],
    pub starts: &'a [usize],
}

/// Rows of `a` (or of the output) per tile: a row past the last is computed as the last one
/// again, rather than compiled as a tile of its own.
const TILE_ROWS: usize = 5;

/// A tile's `N` rows from `first` on, of `rows`: a row past the last is the last one again.
fn clamped_rows<const N: usize>(first: usize, rows: usize) -> [usize; N] {
    std::array::from_fn(|i| (first + i).min(rows - 1))
}

/// The left operand of [`broadcast_product`], `rows × depth` scalars, laid out tile by tile:
/// for each tile of [`TILE_ROWS`] rows, the rows' values at `k = 0`, then at `k = 1`, and so
/// on. A tile then reads its scalars from one run, in order, instead of computing five row
/// addresses at every step (which, measured, left the multiply-adds waiting).
#[derive(Clone, Debug, Default)]
pub(crate) struct Panels {
    values: Vec<f32>,
    rows: usize,
    depth: usize,
}

impl Panels {
    /// `a`, row-major `rows × depth`, laid out in tiles (a row past the last is the last
    /// one again, as the tiles compute it).
    pub fn of(a: &[f32], rows: usize, depth: usize) -> Self {
        assert_eq!(a.len(), rows * depth);
        let mut values = Vec::with_capacity(rows.div_ceil(TILE_ROWS) * TILE_ROWS * depth);
        for first_row in (0..rows).step_by(TILE_ROWS) {
            let row: [usize; TILE_ROWS] = clamped_rows(first_row, rows);
            for k in 0..depth {
                values.extend(row.map(|r| a[r * depth + k]));
            }
        }
        Self {
            values,
            rows,
            depth,
        }
    }

    /// The scalars of the tile whose first row is `first_row`, `TILE_ROWS` per step of `k`.
    fn tile(&self, first_row: usize) -> &[[f32; TILE_ROWS]] {
        let per_tile = TILE_ROWS * self.depth;
        self.values[first_row / TILE_ROWS * per_tile..][..per_tile]
            .as_chunks::<TILE_ROWS>()
            .0
    }
}

/// `c = a · b`: `a` is `rows × depth` scalars ([`Panels`]); `b` is `depth` rows and `c` is
/// `rows` rows of `blocks` blocks. Each output lane sums over `depth` in order.
///
/// The forward pass (weights times image patches) and the input gradient (transposed
/// weights times gradient maps read back from every tap) are both this product.
#[inline(always)]
pub(crate) fn broadcast_product<I: Isa>(
    isa: I,
    a: &Panels,
    b: Shifted,
    c: &mut [Block],
    blocks: usize,
) {
    let rows = a.rows;
    assert_eq!(a.depth, b.starts.len());
    assert_eq!(c.len(), rows * blocks);
    for first_row in (0..rows).step_by(TILE_ROWS) {
        let row = clamped_rows(first_row, rows);
        let a = a.tile(first_row);
        let mut block = 0;
        if I::WIDE {
            while block + 4 <= blocks {
                broadcast_tile::<I, 4>(isa, (a, row), b, c, [block, blocks]);
                block += 4;
            }
        }
        while block < blocks {
            broadcast_tile::<I, 1>(isa, (a, row), b, c, [block, blocks]);
            block += 1;
        }
    }
}

/// Rows `row` of `c`, `COLUMNS` blocks from block `first`; `a` is their tile of [`Panels`].
///
/// The tiles' loops run over indices, not iterators: with constant bounds they unroll
/// completely, and only then do the sums stay in registers.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn broadcast_tile<I: Isa, const COLUMNS: usize>(
    isa: I,
    (a, row): (&[[f32; TILE_ROWS]], [usize; TILE_ROWS]),
    b: Shifted,
    c: &mut [Block],
    [first, blocks]: [usize; 2],
) {
    let mut sums = [[isa.zero(); COLUMNS]; TILE_ROWS];
    for (scalars, &start) in a.iter().zip(b.starts) {
        let b_row = b.values[start + first * LANES..][..COLUMNS * LANES]
            .as_chunks::<LANES>()
            .0;
        let mut loaded = [isa.zero(); COLUMNS];
        for j in 0..COLUMNS {
            loaded[j] = isa.load_unaligned(&b_row[j]);
        }
        for i in 0..TILE_ROWS {
            let weight = isa.splat(scalars[i]);
            for j in 0..COLUMNS {
                sums[i][j] = isa.mul_add(weight, loaded[j], sums[i][j]);
            }
        }
    }
    for i in 0..TILE_ROWS {
        for j in 0..COLUMNS {
            isa.store(sums[i][j], &mut c[row[i] * blocks + first + j]);
        }
    }
}

/// The operands of [`dot_products`], image after image.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DotOperands<'a> {
    /// Aligned rows: row `r` of image `i` is `len` blocks from
    /// `i · a_image_stride + r · a_row_stride + a_offset`.
    pub a: &'a [Block],
    pub a_rows: usize,
    pub a_image_stride: usize,
    pub a_row_stride: usize,
    pub a_offset: usize,
    /// Shifted rows; image `i`'s are read from `b.values[i · b_image_stride..]`.
    pub b: Shifted<'a>,
    pub b_image_stride: usize,
    pub images: usize,
    pub len: usize,
}

impl<'a> DotOperands<'a> {
    #[inline(always)]
    fn a_row(&self, image: usize, row: usize) -> &'a [Block] {
        let start = image * self.a_image_stride + row * self.a_row_stride + self.a_offset;
        &self.a[start..][..self.len]
    }

    #[inline(always)]
    fn b_row(&self, image: usize, row: usize) -> &'a [[f32; LANES]] {
        let start = image * self.b_image_stride + self.b.starts[row];
        self.b.values[start..][..self.len * LANES]
            .as_chunks::<LANES>()
            .0
    }
}

/// `c[m][n] += Σ over images and positions of a[m] · b[n]`; `c` is `a_rows × b_rows`,
/// row-major. Each lane sums over the images, then the positions; the lanes are added last.
/// `partials` (at least as long as `c`) holds the lanes between images when rows are long.
///
/// The weight gradient (gradient maps against image patches) is this product.
#[inline(always)]
pub(crate) fn dot_products<I: Isa>(
    isa: I,
    operands: DotOperands,
    partials: &mut [Block],
    c: &mut [f32],
) {
    let b_rows = operands.b.starts.len();
    assert_eq!(c.len(), operands.a_rows * b_rows);
    assert!(partials.len() >= c.len());
    if I::WIDE {
        dot_tiles::<I, TILE_ROWS, 4>(isa, operands, partials, c);
    } else {
        dot_tiles::<I, 2, 2>(isa, operands, partials, c);
    }
}

/// Rows of at least this many blocks are multiplied one image at a time, every tile in turn,
/// so that the image's rows stay in the first-level cache from one tile to the next; each
/// tile's sums wait in `partials` meanwhile. Shorter rows take every image in one tile.
const LONG_ROWS: usize = 16;

#[inline(always)]
fn dot_tiles<I: Isa, const A: usize, const B: usize>(
    isa: I,
    operands: DotOperands,
    partials: &mut [Block],
    c: &mut [f32],
) {
    let (a_rows, b_rows, images) = (operands.a_rows, operands.b.starts.len(), operands.images);
    let passes = match operands.len >= LONG_ROWS {
        true => images,
        false => 1,
    };
    for pass in 0..passes {
        let images = match passes {
            1 => 0..images,
            _ => pass..pass + 1,
        };
        for first_a in (0..a_rows).step_by(A) {
            for first_b in (0..b_rows).step_by(B) {
                let (a_row, b_row) = (clamped_rows(first_a, a_rows), clamped_rows(first_b, b_rows));
                let at = |i: usize, j: usize| a_row[i] * b_rows + b_row[j];
                let mut sums = [[isa.zero(); B]; A];
                if pass > 0 {
                    for (i, sums) in sums.iter_mut().enumerate() {
                        for (j, sum) in sums.iter_mut().enumerate() {
                            *sum = isa.load(&partials[at(i, j)]);
                        }
                    }
                }
                let sums =
                    dot_tile::<I, A, B>(isa, &operands, images.clone(), (a_row, b_row), sums);
                if pass + 1 < passes {
                    // A row past the last is the last one again: the same sums, stored twice.
                    for (i, sums) in sums.iter().enumerate() {
                        for (j, &sum) in sums.iter().enumerate() {
                            isa.store(sum, &mut partials[at(i, j)]);
                        }
                    }
                    continue;
                }
                // Rows past the last were computed as the last one again; they are added once.
                for (i, sums) in sums.iter().enumerate().take(a_rows - first_a) {
                    for (j, &sum) in sums.iter().enumerate().take(b_rows - first_b) {
                        c[(first_a + i) * b_rows + first_b + j] += isa.lane_sum(sum);
                    }
                }
            }
        }
    }
}

/// `sums` plus the products of rows `a_row` against rows `b_row` over `images` (index loops,
/// as in [`broadcast_tile`]).
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn dot_tile<I: Isa, const A: usize, const B: usize>(
    isa: I,
    operands: &DotOperands,
    images: std::ops::Range<usize>,
    (a_row, b_row): ([usize; A], [usize; B]),
    mut sums: [[I::V; B]; A],
) -> [[I::V; B]; A] {
    let len = operands.len;
    for image in images {
        let mut a: [&[Block]; A] = [&[]; A];
        for i in 0..A {
            a[i] = operands.a_row(image, a_row[i]);
        }
        let mut b: [&[[f32; LANES]]; B] = [&[]; B];
        for j in 0..B {
            b[j] = operands.b_row(image, b_row[j]);
        }
        for position in 0..len {
            let mut a_values = [isa.zero(); A];
            for i in 0..A {
                a_values[i] = isa.load(&a[i][position]);
            }
            let mut b_values = [isa.zero(); B];
            for j in 0..B {
                b_values[j] = isa.load_unaligned(&b[j][position]);
            }
            for i in 0..A {
                for j in 0..B {
                    sums[i][j] = isa.mul_add(a_values[i], b_values[j], sums[i][j]);
                }
            }
        }
    }
    sums
}
