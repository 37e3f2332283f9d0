//! Rules of the workspace's shape, checked by `cargo test` (as rust-analyzer's `tidy` does):
//! short functions, dependency versions in one table, workspace lints everywhere, and one
//! integration-test binary per crate.

use crate::workspace_root;
use std::path::{Path, PathBuf};

/// The longest function a reader should have to hold in mind.
const MAX_FUNCTION_LINES: usize = 80;

/// The SIMD kernels: long straight-line loops kept whole so the compiler vectorises them.
const KERNELS: &str = "crates/model/src/conv_pool/kernels.rs";

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("a readable source directory") {
            let path = entry.expect("a readable directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The workspace's members: each crate directory and xtask.
fn members() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut members: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .expect("a crates directory")
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.join("Cargo.toml").is_file())
        .collect();
    members.push(root.join("xtask"));
    members.sort();
    members
}

/// `(name, first line, length)` of each function in rustfmt-formatted `source`: from its
/// `fn` line to the closing brace at the same indentation.
fn functions(source: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = source.lines().collect();
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        let Some(at) = code.find("fn ") else {
            continue;
        };
        let before = &code[..at];
        let is_definition = before.split_whitespace().all(|word| {
            [
                "pub",
                "pub(crate)",
                "const",
                "unsafe",
                "async",
                "extern",
                "\"C\"",
            ]
            .contains(&word)
        });
        if !is_definition || code.ends_with(';') {
            continue;
        }
        let indent = line.len() - code.len();
        let close = format!("{}}}", " ".repeat(indent));
        let end = match code.ends_with('}') {
            true => Some(0),
            false => lines[start..].iter().position(|l| *l == close),
        };
        if let Some(end) = end {
            let name = code[at + 3..].split(['(', '<']).next().unwrap_or_default();
            found.push((name.to_string(), start + 1, end + 1));
        }
    }
    found
}

#[test]
fn no_function_is_longer_than_a_reader_can_hold_in_mind() {
    let root = workspace_root();
    let mut long = Vec::new();
    for member in members() {
        for file in rust_files(&member) {
            let relative = file.strip_prefix(&root).unwrap_or(&file).to_path_buf();
            if relative == Path::new(KERNELS) {
                continue;
            }
            let source = std::fs::read_to_string(&file).expect("a readable source file");
            for (name, line, length) in functions(&source) {
                if length > MAX_FUNCTION_LINES {
                    long.push(format!(
                        "{}:{line}: {name} is {length} lines",
                        relative.display()
                    ));
                }
            }
        }
    }
    assert!(
        long.is_empty(),
        "over {MAX_FUNCTION_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_function_finder_measures_from_fn_to_brace() {
    let source = "fn a() {\n    1;\n}\n\nimpl X {\n    pub(crate) fn b<T>(\n        t: T,\n    ) -> T {\n        t\n    }\n    fn c() -> u8 { 1 }\n}\n// fn d() {\n";
    assert_eq!(
        functions(source),
        [
            ("a".to_string(), 1, 3),
            ("b".to_string(), 6, 5),
            ("c".to_string(), 11, 1)
        ]
    );
}

/// The `[dependencies]`-like tables of a manifest, as `(table, name, value)`.
fn dependencies(manifest: &toml::Table) -> Vec<(String, String, toml::Value)> {
    let mut found = Vec::new();
    let mut visit = |prefix: &str, table: &toml::Table| {
        for kind in ["dependencies", "dev-dependencies", "build-dependencies"] {
            for (name, value) in table
                .get(kind)
                .and_then(|t| t.as_table())
                .into_iter()
                .flatten()
            {
                found.push((format!("{prefix}{kind}"), name.clone(), value.clone()));
            }
        }
    };
    visit("", manifest);
    for (target, table) in manifest
        .get("target")
        .and_then(|t| t.as_table())
        .into_iter()
        .flatten()
    {
        if let Some(table) = table.as_table() {
            visit(&format!("target.{target}."), table);
        }
    }
    found
}

fn manifest(dir: &Path) -> toml::Table {
    let path = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&path).expect("a readable manifest");
    text.parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_dependency_version_is_in_the_workspace_table() {
    let mut local = Vec::new();
    // The workspace hack's whole content is versions and features, pinned on purpose.
    let pinned = workspace_root().join("crates/workspace-hack");
    for member in members().into_iter().filter(|m| *m != pinned) {
        for (table, name, value) in dependencies(&manifest(&member)) {
            let inherited = value.get("workspace").and_then(toml::Value::as_bool) == Some(true);
            if !inherited {
                local.push(format!("{}: [{table}] {name}", member.display()));
            }
        }
    }
    assert!(
        local.is_empty(),
        "versions outside [workspace.dependencies]:\n{}",
        local.join("\n")
    );
}

#[test]
fn every_member_uses_the_workspace_lints() {
    for member in members() {
        let lints = manifest(&member).get("lints").cloned();
        assert_eq!(
            lints.and_then(|l| l.get("workspace").and_then(toml::Value::as_bool)),
            Some(true),
            "{}: add `[lints] workspace = true`",
            member.display()
        );
    }
}

/// Each test binary links all of Burn: a crate's integration tests are modules of one
/// binary, `tests/it/`, not files of their own.
#[test]
fn each_crate_has_one_integration_test_binary() {
    for member in members() {
        let Ok(entries) = std::fs::read_dir(member.join("tests")) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a readable directory entry").path();
            assert!(
                path.is_dir(),
                "{}: put integration tests in tests/it/ as modules",
                path.display()
            );
        }
    }
}

/// What `cargo tree` resolves for `selection`: each package (name and version) with the set
/// of feature lists it is built with (two where host and target builds differ).
fn resolved_features(
    selection: &[&str],
) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args([
            "tree",
            "--locked",
            "--offline",
            "--prefix",
            "none",
            "--no-dedupe",
        ])
        .args(["--format", "{p}|{f}"])
        .args(selection)
        .current_dir(workspace_root())
        .output()
        .expect("cargo runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "cargo tree {selection:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut found = std::collections::BTreeMap::<_, std::collections::BTreeSet<_>>::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (package, features) = line.split_once('|').unwrap_or((line, ""));
        // `name v1.2.3 (/path)` for the workspace's own crates: keep name and version.
        let package = package
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        found
            .entry(package)
            .or_default()
            .insert(features.to_string());
    }
    found
}

/// Burn's stack compiles once whichever README command comes first: a build of any one member
/// (`cargo run -p infer`, `cargo xtask train`, ...) builds every package it shares with
/// `cargo test --workspace` with features the workspace build also uses. When this fails, add the listed crates
/// with the workspace's features to `crates/workspace-hack/Cargo.toml`.
#[test]
fn every_entry_point_resolves_the_workspace_features() {
    let workspace = resolved_features(&["--workspace"]);
    let mut differ = Vec::new();
    for member in members() {
        let name = manifest(&member)["package"]["name"]
            .as_str()
            .expect("a package name")
            .to_string();
        let alone = resolved_features(&["--package", &name, "--edges", "normal,build"]);
        for (package, features) in alone {
            let shared = workspace.get(&package);
            if !shared.is_some_and(|shared| features.is_subset(shared)) {
                differ.push(format!(
                    "{name} alone builds {package} with {features:?}; the workspace with {:?}",
                    workspace.get(&package)
                ));
            }
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

/// The README quotes measured figures only from the report `cargo xtask bench` writes, so no
/// two of them can disagree: its summary table and transcript are copies of the report's.
#[test]
fn the_readme_quotes_the_bench_report() {
    use crate::bench::report::{SHARED_BLOCKS, block};
    let root = workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("a README");
    let report = std::fs::read_to_string(root.join("docs/bench.md")).expect("docs/bench.md");
    for name in SHARED_BLOCKS {
        let quoted = block(&readme, name);
        assert!(quoted.is_some(), "README.md has no {name} block");
        assert_eq!(
            quoted,
            block(&report, name),
            "README.md's {name} differs from docs/bench.md's: run \
             `cargo xtask bench --out docs/bench.md --readme`"
        );
    }
}
