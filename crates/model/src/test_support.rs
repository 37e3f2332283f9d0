//! Helpers shared by this crate's tests.

/// Asserts that two equally long slices differ nowhere by as much as `tolerance`.
pub(crate) fn assert_close(a: &[f32], b: &[f32], tolerance: f32) {
    assert_eq!(a.len(), b.len());
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(worst < tolerance, "largest difference {worst}");
}

/// `len` values in [-1, 1] from a xorshift generator: the same for the same `seed`.
pub(crate) fn pseudo_random(len: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}
