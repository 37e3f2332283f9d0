//! Project automation, in Rust so it runs wherever cargo does (the cargo-xtask pattern).
//!
//! Each task is a module; tasks only orchestrate cargo and the project's binaries. The
//! binaries own their flags: `train`, `eval` and `export` are passed on to them unchanged
//! (`cargo xtask train --help` is the trainer's own help), so a flag is defined once.

mod bench;
mod container;
mod forward;
mod load;
#[cfg(test)]
mod tidy;
mod web;

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
    /// Build the trainer and train a model; the flags are the `train` binary's (`--help`).
    #[command(disable_help_flag = true)]
    Train(forward::Args),
    /// Score a training run (or PyTorch weights) on the test set, with figures; the flags are
    /// the `eval` binary's (`--help`).
    #[command(disable_help_flag = true)]
    Eval(forward::Args),
    /// Write a training run's weights as a safetensors file for the tutorial's PyTorch model;
    /// the flags are the `export` binary's (`--help`).
    #[command(disable_help_flag = true)]
    Export(forward::Args),
    /// Time training, inference and (with `--serve`) the HTTP server, with peak memory, as
    /// markdown tables.
    Bench(bench::Args),
    /// Build the `serve` container image (FROM scratch, a static serve with the shipped
    /// model); `--check` runs it and classifies a sample.
    Container(container::Args),
    /// Build the drawing page as a static site that reads digits in the browser (the network
    /// compiled to WebAssembly), for any static file server or `serve --site`.
    Web(web::Args),
}

fn main() -> ExitCode {
    let result = match Cli::parse().task {
        Task::Train(args) => forward::run("train", "train", args),
        Task::Eval(args) => forward::run("infer", "eval", args),
        Task::Export(args) => forward::run("infer", "export", args),
        Task::Bench(args) => bench::run(args),
        Task::Container(args) => container::run(args),
        Task::Web(args) => web::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root.
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

/// `cargo <args>` for this workspace, run in `dir`; fails with the command when it does not
/// succeed.
fn cargo_in(dir: &Path, args: &[String]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    for name in std::env::vars_os().filter_map(|(name, _)| name.into_string().ok()) {
        if describes_xtask(&name) {
            command.env_remove(name);
        }
    }
    let status = command.args(args).current_dir(dir).status()?;
    if status.success() {
        Ok(())
    } else {
        anyhow::bail!("`cargo {}` failed ({status})", args.join(" "))
    }
}

/// Whether `name` is one of the variables `cargo run` sets to describe xtask itself. A build
/// script that watches one (ring's watches `CARGO_PKG_NAME`) would see it changed from a plain
/// `cargo test`, and cargo would rebuild that crate and everything above it.
fn describes_xtask(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_CRATE_NAME",
            "CARGO_BIN_NAME",
            "CARGO_PRIMARY_PACKAGE",
        ]
        .contains(&name)
}

#[test]
fn cargo_is_run_without_xtasks_own_description() {
    assert!(describes_xtask("CARGO_PKG_NAME"));
    assert!(describes_xtask("CARGO_MANIFEST_DIR"));
    assert!(!describes_xtask("CARGO_TARGET_DIR"));
    assert!(!describes_xtask("CARGO_HOME"));
    assert!(!describes_xtask("PATH"));
}

/// `cargo <args>` in the workspace root.
fn cargo(args: &[String]) -> anyhow::Result<()> {
    cargo_in(&workspace_root(), args)
}
