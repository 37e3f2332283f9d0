//! The inference crate's integration tests, as modules of one test binary: each test binary
//! links all of Burn, so one binary instead of three is a shorter build.

mod cli;
mod pytorch_weights;
mod user_style;

use std::path::{Path, PathBuf};

/// The workspace root, where the binaries are run from.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A process's output as text.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
