//! Sixteen-lane vectors of `f32` on whatever the CPU has: one AVX-512 register, two AVX2
//! registers, or plain arrays. The kernels are written once, generic over [`Isa`], and
//! [`dispatched!`] compiles them for each and picks the widest the CPU has at run time.
//!
//! Every lane does the same arithmetic in the same order whatever the width, so AVX-512 and
//! AVX2 give identical results; the baseline, without fused multiply-adds, rounds each
//! product before adding it and differs in the last bits.

/// Values per vector, whatever the instruction set: a 64-byte cache line of `f32`.
pub(crate) const LANES: usize = 16;

/// Sixteen values on a 64-byte boundary. A vector load from an aligned block reads one cache
/// line; from anywhere else it straddles two and, with AVX-512, costs twice as much.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(64))]
pub(crate) struct Block(pub [f32; LANES]);

/// `blocks` read as one run of `f32`.
pub(crate) fn values(blocks: &[Block]) -> &[f32] {
    // SAFETY: `Block` is `repr(C)` around `[f32; LANES]` and exactly 64 bytes, with no
    // padding, so `n` blocks are `n × LANES` consecutive, initialised `f32`s.
    unsafe { std::slice::from_raw_parts(blocks.as_ptr().cast::<f32>(), blocks.len() * LANES) }
}

/// `blocks` written as one run of `f32`.
pub(crate) fn values_mut(blocks: &mut [Block]) -> &mut [f32] {
    // SAFETY: as in `values`; the borrow is exclusive.
    unsafe {
        std::slice::from_raw_parts_mut(blocks.as_mut_ptr().cast::<f32>(), blocks.len() * LANES)
    }
}

/// An instruction set's sixteen-lane vector and its operations. A value of an implementing
/// type is proof that the CPU has that instruction set.
pub(crate) trait Isa: Copy {
    /// Sixteen lanes in registers.
    type V: Copy;
    /// Whether the set has 32 vector registers (AVX-512), room for larger tiles.
    const WIDE: bool;
    fn zero(self) -> Self::V;
    fn splat(self, value: f32) -> Self::V;
    fn load(self, block: &Block) -> Self::V;
    /// Sixteen values from anywhere: a load that may straddle two cache lines.
    fn load_unaligned(self, values: &[f32; LANES]) -> Self::V;
    fn store(self, vector: Self::V, block: &mut Block);
    /// `a · b + acc`, lane by lane.
    fn mul_add(self, a: Self::V, b: Self::V, acc: Self::V) -> Self::V;
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// The first `values.len()` (at most sixteen) values; the other lanes are zero.
    fn load_partial(self, values: &[f32]) -> Self::V;
    /// Stores the first `values.len()` (at most sixteen) lanes.
    fn store_partial(self, vector: Self::V, values: &mut [f32]);
    /// Small whole numbers, one byte per lane, as `f32`.
    fn load_bytes(self, bytes: &[u8; LANES]) -> Self::V;
    /// Lanes holding whole numbers from 0 to 255, one byte per lane.
    fn store_bytes(self, vector: Self::V, bytes: &mut [u8; LANES]);

    /// Which lanes hold a comparison's outcome, per instruction set.
    type Mask: Copy;
    /// `a > b`, lane by lane (false where either is NaN, as for `f32`'s `>`).
    fn greater(self, a: Self::V, b: Self::V) -> Self::Mask;
    /// `a == b`, lane by lane.
    fn equal(self, a: Self::V, b: Self::V) -> Self::Mask;
    /// `if_true` in the lanes of `mask`, `if_false` in the others.
    fn select(self, mask: Self::Mask, if_true: Self::V, if_false: Self::V) -> Self::V;
    /// Thirty-two consecutive values, `first` then `second`, split into those at even
    /// positions and those at odd positions, each in order.
    fn deinterleave(self, first: Self::V, second: Self::V) -> (Self::V, Self::V);
    /// The inverse of [`Self::deinterleave`]: `even[0], odd[0], even[1], …` as two vectors.
    fn interleave(self, even: Self::V, odd: Self::V) -> (Self::V, Self::V);

    /// The sum of the lanes, added pairwise in a fixed order.
    #[inline(always)]
    fn lane_sum(self, vector: Self::V) -> f32 {
        let mut block = Block::default();
        self.store(vector, &mut block);
        let mut lanes = block.0;
        let mut width = LANES;
        while width > 1 {
            width /= 2;
            for lane in 0..width {
                lanes[lane] += lanes[lane + width];
            }
        }
        lanes[0]
    }
}

/// Plain arrays, for CPUs without AVX2 and other architectures; `FMA` fuses each
/// multiply-add in software (slow, for tests that compare bits with the vector builds).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Baseline<const FMA: bool>;

impl<const FMA: bool> Isa for Baseline<FMA> {
    type V = [f32; LANES];
    const WIDE: bool = false;
    #[inline(always)]
    fn zero(self) -> Self::V {
        [0.0; LANES]
    }
    #[inline(always)]
    fn splat(self, value: f32) -> Self::V {
        [value; LANES]
    }
    #[inline(always)]
    fn load(self, block: &Block) -> Self::V {
        block.0
    }
    #[inline(always)]
    fn load_unaligned(self, values: &[f32; LANES]) -> Self::V {
        *values
    }
    #[inline(always)]
    fn store(self, vector: Self::V, block: &mut Block) {
        block.0 = vector;
    }
    #[inline(always)]
    fn mul_add(self, a: Self::V, b: Self::V, acc: Self::V) -> Self::V {
        std::array::from_fn(|lane| match FMA {
            true => a[lane].mul_add(b[lane], acc[lane]),
            false => acc[lane] + a[lane] * b[lane],
        })
    }
    #[inline(always)]
    fn add(self, a: Self::V, b: Self::V) -> Self::V {
        std::array::from_fn(|lane| a[lane] + b[lane])
    }
    #[inline(always)]
    fn load_partial(self, values: &[f32]) -> Self::V {
        std::array::from_fn(|lane| values.get(lane).copied().unwrap_or(0.0))
    }
    #[inline(always)]
    fn store_partial(self, vector: Self::V, values: &mut [f32]) {
        for (value, lane) in values.iter_mut().zip(vector) {
            *value = lane;
        }
    }
    #[inline(always)]
    fn load_bytes(self, bytes: &[u8; LANES]) -> Self::V {
        bytes.map(f32::from)
    }
    #[inline(always)]
    fn store_bytes(self, vector: Self::V, bytes: &mut [u8; LANES]) {
        *bytes = vector.map(|lane| lane as u8);
    }
    type Mask = [bool; LANES];
    #[inline(always)]
    fn greater(self, a: Self::V, b: Self::V) -> Self::Mask {
        std::array::from_fn(|lane| a[lane] > b[lane])
    }
    #[inline(always)]
    fn equal(self, a: Self::V, b: Self::V) -> Self::Mask {
        std::array::from_fn(|lane| a[lane] == b[lane])
    }
    #[inline(always)]
    fn select(self, mask: Self::Mask, if_true: Self::V, if_false: Self::V) -> Self::V {
        std::array::from_fn(|lane| {
            if mask[lane] {
                if_true[lane]
            } else {
                if_false[lane]
            }
        })
    }
    #[inline(always)]
    fn deinterleave(self, first: Self::V, second: Self::V) -> (Self::V, Self::V) {
        let at = |position: usize| match position < LANES {
            true => first[position],
            false => second[position - LANES],
        };
        (
            std::array::from_fn(|lane| at(2 * lane)),
            std::array::from_fn(|lane| at(2 * lane + 1)),
        )
    }
    #[inline(always)]
    fn interleave(self, even: Self::V, odd: Self::V) -> (Self::V, Self::V) {
        let at = |position: usize| match position % 2 {
            0 => even[position / 2],
            _ => odd[position / 2],
        };
        (
            std::array::from_fn(at),
            std::array::from_fn(|lane| at(LANES + lane)),
        )
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Block, Isa, LANES};
    use std::arch::x86_64::*;

    /// AVX-512: one register per vector, 32 registers.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Avx512(());

    impl Avx512 {
        /// # Safety
        /// The CPU must have AVX-512F, AVX2 and FMA.
        pub(crate) unsafe fn assume_present() -> Self {
            Self(())
        }
    }

    // SAFETY (every `unsafe` block below): an `Avx512` exists only where the CPU has the
    // features (`assume_present`); loads and stores go through references to sixteen values,
    // and the aligned ones to 64-byte `Block`s.
    impl Isa for Avx512 {
        type V = __m512;
        const WIDE: bool = true;
        #[inline(always)]
        fn zero(self) -> __m512 {
            // SAFETY: the features are present (see the impl).
            unsafe { _mm512_setzero_ps() }
        }
        #[inline(always)]
        fn splat(self, value: f32) -> __m512 {
            // SAFETY: the features are present (see the impl).
            unsafe { _mm512_set1_ps(value) }
        }
        #[inline(always)]
        fn load(self, block: &Block) -> __m512 {
            // SAFETY: the features are present (see the impl).
            unsafe { _mm512_load_ps(block.0.as_ptr()) }
        }
        #[inline(always)]
        fn load_unaligned(self, values: &[f32; LANES]) -> __m512 {
            // SAFETY: the features are present (see the impl).
            unsafe { _mm512_loadu_ps(values.as_ptr()) }
        }
        #[inline(always)]
        fn store(self, vector: __m512, block: &mut Block) {
            // SAFETY: the features are present (see the impl).
            unsafe { _mm512_store_ps(block.0.as_mut_ptr(), vector) }
        }
        #[inline(always)]
        fn mul_add(self, a: __m512, b: __m512, acc: __m512) -> __m512 {
            // SAFETY: the features are present (see the impl).
            unsafe { _mm512_fmadd_ps(a, b, acc) }
        }
        #[inline(always)]
        fn add(self, a: __m512, b: __m512) -> __m512 {
            // SAFETY: the features are present (see the impl).
            unsafe { _mm512_add_ps(a, b) }
        }
        #[inline(always)]
        fn load_partial(self, values: &[f32]) -> __m512 {
            // SAFETY: the features are present; the mask reads only `values`' own lanes.
            unsafe { _mm512_maskz_loadu_ps(first_lanes(values.len()), values.as_ptr()) }
        }
        #[inline(always)]
        fn store_partial(self, vector: __m512, values: &mut [f32]) {
            let mask = first_lanes(values.len());
            // SAFETY: the features are present; the mask writes only `values`' own lanes.
            unsafe { _mm512_mask_storeu_ps(values.as_mut_ptr(), mask, vector) }
        }
        #[inline(always)]
        fn load_bytes(self, bytes: &[u8; LANES]) -> __m512 {
            // SAFETY: the features are present; sixteen bytes are read.
            unsafe {
                _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(bytes.as_ptr().cast())))
            }
        }
        #[inline(always)]
        fn store_bytes(self, vector: __m512, bytes: &mut [u8; LANES]) {
            // SAFETY: the features are present; sixteen bytes are written.
            unsafe {
                let bytes_out = _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(vector));
                _mm_storeu_si128(bytes.as_mut_ptr().cast(), bytes_out)
            }
        }
        type Mask = __mmask16;
        #[inline(always)]
        fn greater(self, a: __m512, b: __m512) -> __mmask16 {
            // SAFETY: the features are present (see the impl).
            unsafe { _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, b) }
        }
        #[inline(always)]
        fn equal(self, a: __m512, b: __m512) -> __mmask16 {
            // SAFETY: the features are present (see the impl).
            unsafe { _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, b) }
        }
        #[inline(always)]
        fn select(self, mask: __mmask16, if_true: __m512, if_false: __m512) -> __m512 {
            // SAFETY: the features are present (see the impl).
            unsafe { _mm512_mask_blend_ps(mask, if_false, if_true) }
        }
        #[inline(always)]
        fn deinterleave(self, first: __m512, second: __m512) -> (__m512, __m512) {
            // SAFETY: the features are present (see the impl).
            unsafe {
                let even =
                    _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                let odd =
                    _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
                (
                    _mm512_permutex2var_ps(first, even, second),
                    _mm512_permutex2var_ps(first, odd, second),
                )
            }
        }
        #[inline(always)]
        fn interleave(self, even: __m512, odd: __m512) -> (__m512, __m512) {
            // SAFETY: the features are present (see the impl).
            unsafe {
                let low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
                let high =
                    _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
                (
                    _mm512_permutex2var_ps(even, low, odd),
                    _mm512_permutex2var_ps(even, high, odd),
                )
            }
        }
    }

    /// A mask of the first `count` (at most sixteen) lanes.
    #[inline(always)]
    fn first_lanes(count: usize) -> __mmask16 {
        debug_assert!(count <= LANES);
        ((1u32 << count.min(LANES)) - 1) as __mmask16
    }

    /// AVX2 with FMA: two eight-lane registers per vector, 16 registers.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Avx2(());

    impl Avx2 {
        /// # Safety
        /// The CPU must have AVX2 and FMA.
        pub(crate) unsafe fn assume_present() -> Self {
            Self(())
        }
    }

    const HALF: usize = LANES / 2;

    // SAFETY (every `unsafe` block below): as for `Avx512`, with AVX2 and FMA; each half is
    // eight of the block's sixteen values, 32-byte aligned.
    impl Isa for Avx2 {
        type V = [__m256; 2];
        const WIDE: bool = false;
        #[inline(always)]
        fn zero(self) -> Self::V {
            // SAFETY: the features are present (see the impl).
            unsafe { [_mm256_setzero_ps(); 2] }
        }
        #[inline(always)]
        fn splat(self, value: f32) -> Self::V {
            // SAFETY: the features are present (see the impl).
            unsafe { [_mm256_set1_ps(value); 2] }
        }
        #[inline(always)]
        fn load(self, block: &Block) -> Self::V {
            let values = block.0.as_ptr();
            // SAFETY: the features are present (see the impl).
            unsafe { [_mm256_load_ps(values), _mm256_load_ps(values.add(HALF))] }
        }
        #[inline(always)]
        fn load_unaligned(self, values: &[f32; LANES]) -> Self::V {
            let values = values.as_ptr();
            // SAFETY: the features are present (see the impl).
            unsafe { [_mm256_loadu_ps(values), _mm256_loadu_ps(values.add(HALF))] }
        }
        #[inline(always)]
        fn store(self, [low, high]: Self::V, block: &mut Block) {
            let values = block.0.as_mut_ptr();
            // SAFETY: the features are present (see the impl).
            unsafe {
                _mm256_store_ps(values, low);
                _mm256_store_ps(values.add(HALF), high);
            }
        }
        #[inline(always)]
        fn mul_add(self, a: Self::V, b: Self::V, acc: Self::V) -> Self::V {
            // SAFETY: the features are present (see the impl).
            unsafe {
                [
                    _mm256_fmadd_ps(a[0], b[0], acc[0]),
                    _mm256_fmadd_ps(a[1], b[1], acc[1]),
                ]
            }
        }
        #[inline(always)]
        fn add(self, a: Self::V, b: Self::V) -> Self::V {
            // SAFETY: the features are present (see the impl).
            unsafe { [_mm256_add_ps(a[0], b[0]), _mm256_add_ps(a[1], b[1])] }
        }
        #[inline(always)]
        fn load_partial(self, values: &[f32]) -> Self::V {
            let mut block = Block::default();
            let count = values.len().min(LANES);
            block.0[..count].copy_from_slice(&values[..count]);
            self.load(&block)
        }
        #[inline(always)]
        fn store_partial(self, vector: Self::V, values: &mut [f32]) {
            let mut block = Block::default();
            self.store(vector, &mut block);
            let count = values.len().min(LANES);
            values[..count].copy_from_slice(&block.0[..count]);
        }
        #[inline(always)]
        fn load_bytes(self, bytes: &[u8; LANES]) -> Self::V {
            let bytes = bytes.as_ptr();
            // SAFETY: the features are present; eight bytes are read from each half.
            unsafe {
                let half = |at: *const u8| {
                    _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(at.cast())))
                };
                [half(bytes), half(bytes.add(HALF))]
            }
        }
        #[inline(always)]
        fn store_bytes(self, [low, high]: Self::V, bytes: &mut [u8; LANES]) {
            // SAFETY: the features are present; sixteen bytes are written.
            unsafe {
                // Packing works within each 128-bit half: words come out as low 0–3,
                // high 0–3, low 4–7, high 4–7, and are put back in order before the bytes.
                let words = _mm256_packs_epi32(_mm256_cvttps_epi32(low), _mm256_cvttps_epi32(high));
                let words = _mm256_permute4x64_epi64::<0b11_01_10_00>(words);
                let bytes_out = _mm_packus_epi16(
                    _mm256_castsi256_si128(words),
                    _mm256_extracti128_si256::<1>(words),
                );
                _mm_storeu_si128(bytes.as_mut_ptr().cast(), bytes_out)
            }
        }
        type Mask = [__m256; 2];
        #[inline(always)]
        fn greater(self, a: Self::V, b: Self::V) -> Self::Mask {
            // SAFETY: the features are present (see the impl).
            unsafe {
                [
                    _mm256_cmp_ps::<_CMP_GT_OQ>(a[0], b[0]),
                    _mm256_cmp_ps::<_CMP_GT_OQ>(a[1], b[1]),
                ]
            }
        }
        #[inline(always)]
        fn equal(self, a: Self::V, b: Self::V) -> Self::Mask {
            // SAFETY: the features are present (see the impl).
            unsafe {
                [
                    _mm256_cmp_ps::<_CMP_EQ_OQ>(a[0], b[0]),
                    _mm256_cmp_ps::<_CMP_EQ_OQ>(a[1], b[1]),
                ]
            }
        }
        #[inline(always)]
        fn select(self, mask: Self::Mask, if_true: Self::V, if_false: Self::V) -> Self::V {
            // SAFETY: the features are present (see the impl).
            unsafe {
                [
                    _mm256_blendv_ps(if_false[0], if_true[0], mask[0]),
                    _mm256_blendv_ps(if_false[1], if_true[1], mask[1]),
                ]
            }
        }
        #[inline(always)]
        fn deinterleave(self, first: Self::V, second: Self::V) -> (Self::V, Self::V) {
            // SAFETY: the features are present (see the impl).
            unsafe {
                // Shuffles pick within 128-bit halves; the 64-bit permute puts them in order.
                let pick = |a: __m256, b: __m256, odd: bool| {
                    let picked = match odd {
                        false => _mm256_shuffle_ps::<0b10_00_10_00>(a, b),
                        true => _mm256_shuffle_ps::<0b11_01_11_01>(a, b),
                    };
                    _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(
                        picked,
                    )))
                };
                (
                    [
                        pick(first[0], first[1], false),
                        pick(second[0], second[1], false),
                    ],
                    [
                        pick(first[0], first[1], true),
                        pick(second[0], second[1], true),
                    ],
                )
            }
        }
        #[inline(always)]
        fn interleave(self, even: Self::V, odd: Self::V) -> (Self::V, Self::V) {
            // SAFETY: the features are present (see the impl).
            unsafe {
                // Unpacking works within 128-bit halves; the half permutes put them in order.
                let zip = |even: __m256, odd: __m256| {
                    let (low, high) =
                        (_mm256_unpacklo_ps(even, odd), _mm256_unpackhi_ps(even, odd));
                    [
                        _mm256_permute2f128_ps::<0x20>(low, high),
                        _mm256_permute2f128_ps::<0x31>(low, high),
                    ]
                };
                (zip(even[0], odd[0]), zip(even[1], odd[1]))
            }
        }
    }
}

/// Defines `$kernel`, generic over [`Isa`] (its first argument, `isa: impl Isa`), from a body, and
/// `$name`, the function callers use, which runs that body compiled for the widest
/// instruction set the CPU has: AVX-512, else AVX2 with FMA, else [`Baseline`].
macro_rules! dispatched {
    (
        $(#[$meta:meta])*
        fn $name:ident / $kernel:ident($isa:ident: impl Isa, $($arg:ident: $ty:ty),* $(,)?)
        $body:block
    ) => {
        #[inline(always)]
        fn $kernel<I: $crate::simd::Isa>($isa: I, $($arg: $ty),*) $body

        $(#[$meta])*
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                use $crate::simd::{Avx2, Avx512};
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn with_avx512($($arg: $ty),*) {
                    // SAFETY: called only once the CPU was found to have these features,
                    // and compiled with them.
                    $kernel(unsafe { Avx512::assume_present() }, $($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn with_avx2($($arg: $ty),*) {
                    // SAFETY: as above.
                    $kernel(unsafe { Avx2::assume_present() }, $($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU was just found to have the features it enables.
                    return unsafe { with_avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU was just found to have the features it enables.
                    return unsafe { with_avx2($($arg),*) };
                }
            }
            $kernel($crate::simd::Baseline::<false>, $($arg),*)
        }
    };
}
pub(crate) use dispatched;
