//! The training crate's integration tests, as modules of one test binary: each test binary
//! links all of Burn, so one binary instead of three is a shorter build.

mod cli;
mod protect;
mod resume;
mod seeds;
// The parity test needs the wgpu backend, which is compiled only with the `wgpu` feature
// (`cargo test --workspace --all-features`, as CI runs it). Without it, `cli` checks instead
// that asking for wgpu is refused with the way to get it.
#[cfg(feature = "wgpu")]
mod wgpu_parity;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root, where the binaries are run from.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A process's output as text.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `train` binary with `args`, run from the workspace root.
fn train_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_train"));
    command.args(args).current_dir(root());
    command
}

/// Runs the `train` binary with `args` to the end.
fn train(args: &[&str]) -> Output {
    train_command(args).output().expect("the train binary runs")
}

/// Trains with the recipe `config` into `artifacts`, with `extra` arguments, to the end.
fn train_into(config: &Path, artifacts: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "--config",
        config.to_str().unwrap(),
        "--model",
        artifacts.to_str().unwrap(),
    ];
    args.extend(extra);
    train(&args)
}

/// A refused run: non-zero exit, exactly one line on stderr containing every `needle`, no panic.
fn assert_refused(output: &Output, needles: &[&str]) {
    let stderr = text(&output.stderr);
    assert!(
        !output.status.success(),
        "expected failure, stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line expected: {stderr}"
    );
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} missing from: {stderr}");
    }
}
