//! The training crate's integration tests, as modules of one test binary: each test binary
//! links all of Burn, so one binary instead of three is a shorter build.

mod cli;
mod resume;
// The parity test needs the wgpu backend, which is compiled only with the `wgpu` feature
// (`cargo test --workspace --all-features`, as CI runs it). Without it, `cli` checks instead
// that asking for wgpu is refused with the way to get it.
#[cfg(feature = "wgpu")]
mod wgpu_parity;

use std::path::{Path, PathBuf};

/// The workspace root, where the binaries are run from.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A process's output as text.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
