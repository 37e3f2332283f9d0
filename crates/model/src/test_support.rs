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
