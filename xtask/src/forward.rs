//! `cargo xtask train|eval|export`: build one of the project's binaries with the backend its
//! `--backend` flag names (and, for `export` to ONNX, the `onnx` feature), and run it with the
//! flags as given, in the caller's directory.

use crate::{backend_features, cargo_in, workspace_root};

/// Everything after the task's name, for the binary.
#[derive(clap::Args)]
pub struct Args {
    /// The binary's flags (`--help` lists them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    flags: Vec<String>,
}

/// `cargo run --package PACKAGE --bin BIN [--features BACKEND] -- FLAGS`.
pub fn run(package: &str, bin: &str, args: Args) -> anyhow::Result<()> {
    let manifest = workspace_root().join("Cargo.toml");
    let mut command: Vec<String> = vec![
        "run".into(),
        "--quiet".into(),
        "--manifest-path".into(),
        manifest.to_string_lossy().into_owned(),
        "--package".into(),
        package.into(),
        "--bin".into(),
        bin.into(),
    ];
    if let Some(backend) = backend(&args.flags) {
        command.extend(backend_features(backend));
    }
    if bin == "export" && writes_onnx(&args.flags) {
        command.extend(["--features".into(), "onnx".into()]);
    }
    command.push("--".into());
    command.extend(args.flags);
    // Relative paths in the flags, and the binaries' defaults (`configs/default.toml`,
    // `artifacts/`, `data/mnist`), mean what they would to `cargo run` here.
    cargo_in(&std::env::current_dir()?, &command)
}

/// The value of `--backend NAME` or `--backend=NAME`, as the binary will read it.
fn backend(flags: &[String]) -> Option<&str> {
    value_of(flags, "--backend")
}

/// The last value of `flag` (`FLAG VALUE` or `FLAG=VALUE`), as the binary will read it.
fn value_of<'a>(flags: &'a [String], flag: &str) -> Option<&'a str> {
    let mut flags = flags.iter().take_while(|f| *f != "--");
    let mut found = None;
    while let Some(given) = flags.next() {
        if given == flag {
            found = flags.next().map(String::as_str);
        } else if let Some(value) = given.strip_prefix(flag).and_then(|v| v.strip_prefix('=')) {
            found = Some(value);
        }
    }
    found
}

/// Whether `export`'s flags ask for ONNX: `--format onnx`, or a `--to` file ending `.onnx`.
fn writes_onnx(flags: &[String]) -> bool {
    match value_of(flags, "--format") {
        Some(format) => format == "onnx",
        None => value_of(flags, "--to").is_some_and(|to| to.ends_with(".onnx")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn the_backend_is_read_as_the_binary_reads_it() {
        assert_eq!(backend(&flags("--epochs 1")), None);
        assert_eq!(backend(&flags("--backend wgpu --epochs 1")), Some("wgpu"));
        assert_eq!(
            backend(&flags("--epochs 1 --backend=ndarray")),
            Some("ndarray")
        );
        assert_eq!(
            backend(&flags("--backend flex --backend wgpu")),
            Some("wgpu")
        );
        assert_eq!(backend(&flags("--backend")), None);
        assert_eq!(backend(&flags("-- --backend wgpu")), None);
    }

    #[test]
    fn onnx_is_asked_for_by_the_file_or_the_format() {
        assert!(writes_onnx(&flags("--to model.onnx")));
        assert!(writes_onnx(&flags("--shipped --to=m.onnx")));
        assert!(writes_onnx(&flags("--to model.bin --format onnx")));
        assert!(!writes_onnx(&flags("--to model.onnx --format safetensors")));
        assert!(!writes_onnx(&flags("--to model.safetensors")));
        assert!(!writes_onnx(&flags("-- --to model.onnx")));
    }

    #[test]
    fn flags_reach_the_binary_unchanged() {
        use clap::Parser;
        #[derive(clap::Parser)]
        #[command(disable_help_flag = true)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let line = ["xtask", "--config", "c.toml", "--set", "a.b=1", "--help"];
        let cli = Cli::try_parse_from(line).unwrap();
        assert_eq!(cli.args.flags, &line[1..]);
    }
}
