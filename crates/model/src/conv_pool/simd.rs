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
        fn $kernel<I: $crate::conv_pool::simd::Isa>($isa: I, $($arg: $ty),*) $body

        $(#[$meta])*
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                use $crate::conv_pool::simd::{Avx2, Avx512};
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
            $kernel($crate::conv_pool::simd::Baseline::<false>, $($arg),*)
        }
    };
}
pub(crate) use dispatched;
