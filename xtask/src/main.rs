//! Project automation, in Rust so it runs wherever cargo does (the cargo-xtask pattern).
//!
//! Each task is a module; tasks only orchestrate cargo and the project's binaries.

mod bench;
mod eval;
mod export;
mod train;

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the trainer (optimised) and train a model.
    Train(train::Args),
    /// Score a training run (or PyTorch weights) on the test set: accuracy, per-digit precision
    /// and recall, confusion.
    Eval(eval::Args),
    /// Time training and inference, with peak memory, as a markdown table.
    Bench(bench::Args),
    /// Write a training run's weights as a safetensors file for the tutorial's PyTorch model.
    Export(export::Args),
}

fn main() -> ExitCode {
    let result = match Cli::parse().task {
        Task::Train(args) => train::run(args),
        Task::Eval(args) => eval::run(args),
        Task::Bench(args) => bench::run(args),
        Task::Export(args) => export::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: tasks run from there, whatever directory cargo was called in.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// A binary built by `cargo build` in the shared (optimised) dev profile.
fn binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    target
        .join("debug")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// A user-given path made absolute against the caller's directory, so it survives the move
/// to the workspace root.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `cargo run --quiet --package PACKAGE --bin BIN [--features BACKEND] -- ARGS`: one of the
/// project's binaries, built first if needed, with the backend it will run on.
fn run_binary(package: &str, bin: &str, backend: &str, args: Vec<String>) -> anyhow::Result<()> {
    let mut command: Vec<String> = ["run", "--quiet", "--package", package, "--bin", bin]
        .map(String::from)
        .into();
    command.extend(backend_features(backend));
    command.push("--".into());
    command.extend(args);
    cargo(&command)
}

/// The cargo flags that compile `backend` in. flex is always there; the others are features
/// of the binaries' crates, left out of a plain build because they take minutes to compile.
/// Cargo keeps each feature set's build, so going back and forth rebuilds nothing twice.
/// An unknown name gets no flag, and the binary refuses it with the list of backends.
fn backend_features(backend: &str) -> Vec<String> {
    match backend {
        "ndarray" | "wgpu" => vec!["--features".into(), backend.into()],
        _ => Vec::new(),
    }
}

/// A path as a command-line argument.
fn arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// `cargo <args>` in the workspace root; fails with the command when it does not succeed.
fn cargo(args: &[String]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        anyhow::bail!("`cargo {}` failed ({status})", args.join(" "))
    }
}
