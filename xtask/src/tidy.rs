//! Rules of the workspace's shape, checked by `cargo test` (as rust-analyzer's `tidy` does):
//! short functions outside tests and SIMD kernels, dependency versions in one table, workspace lints everywhere, and one
//! integration-test binary per crate.

use crate::workspace_root;
use std::path::{Path, PathBuf};

/// The longest function a reader should have to hold in mind.
const MAX_FUNCTION_LINES: usize = 60;

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

/// Whether the function defined at `line` (1-based) of `source` is a SIMD kernel: compiled
/// for a target feature, a straight-line loop kept whole so the compiler vectorises it.
fn is_simd_kernel(source: &str, line: usize) -> bool {
    let lines: Vec<&str> = source.lines().collect();
    lines[line.saturating_sub(4)..line.saturating_sub(1)]
        .iter()
        .any(|l| l.contains("#[target_feature("))
}

/// The line where `source`'s unit tests start (`#[cfg(test)]`), or past its end.
fn tests_start(source: &str) -> usize {
    source
        .lines()
        .position(|l| l.starts_with("#[cfg(test)]"))
        .map_or(usize::MAX, |i| i + 1)
}

#[test]
fn no_function_is_longer_than_a_reader_can_hold_in_mind() {
    let root = workspace_root();
    let mut long = Vec::new();
    for member in members() {
        for file in rust_files(&member) {
            let relative = file.strip_prefix(&root).unwrap_or(&file).to_path_buf();
            // Tests read top to bottom as a story; the kernels are kept whole on purpose.
            if relative == Path::new(KERNELS)
                || relative.components().any(|c| c.as_os_str() == "tests")
            {
                continue;
            }
            let source = std::fs::read_to_string(&file).expect("a readable source file");
            let tests = tests_start(&source);
            for (name, line, length) in functions(&source) {
                if length > MAX_FUNCTION_LINES && line < tests && !is_simd_kernel(&source, line) {
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

/// The markdown files a reader is sent to: the README and everything under `docs/`.
fn documents() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).expect("a docs directory") {
        let path = entry.expect("a readable directory entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Every `code span` in markdown `text`, outside fenced blocks.
fn code_spans(text: &str) -> Vec<String> {
    let mut spans = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        spans.extend(line.split('`').skip(1).step_by(2).map(str::to_string));
    }
    spans
}

/// Every relative link target in markdown `text` (`[text](target)`), without its `#anchor`.
fn relative_links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(|target| target.split('#').next().unwrap_or_default().to_string())
        .filter(|target| !target.is_empty() && !target.contains("://"))
        .filter(|target| !target.starts_with("mailto:"))
        .collect()
}

/// The top-level folders of this repository that documents name paths in.
const REPOSITORY_FOLDERS: [&str; 8] = [
    "crates/", "xtask/", "configs/", "docs/", "scripts/", "data/", "deploy/", ".ci/",
];

/// Whether `span` names a file or folder of this repository (`crates/train/src/run/mod.rs`),
/// as opposed to one a run writes or a pattern.
fn is_repository_path(span: &str) -> bool {
    REPOSITORY_FOLDERS
        .iter()
        .any(|folder| span.starts_with(folder))
        && !span.contains(['*', '<', '{', ' ', '…'])
}

/// `A::b` paths in `span` whose first segment is one of `owners` (the workspace's crates and
/// types), with the last segment named.
fn item_paths<'a>(span: &'a str, owners: &[String]) -> Option<(&'a str, &'a str)> {
    let path = span.trim_end_matches("()");
    let segments: Vec<&str> = path.split("::").collect();
    let is_identifier =
        |s: &&str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if segments.len() < 2 || !segments.iter().all(is_identifier) {
        return None;
    }
    owners
        .iter()
        .any(|owner| owner == segments[0])
        .then(|| (segments[0], *segments.last().unwrap_or(&"")))
}

/// The names the workspace's sources define (`fn`, `struct`, `enum`, `trait`, `type`,
/// `const`, `static`, `mod`, enum variants and fields), and its types and crates.
fn defined_names() -> (std::collections::HashSet<String>, Vec<String>) {
    let mut names = std::collections::HashSet::new();
    let mut owners: Vec<String> = ["model", "data", "train", "infer", "serve", "fuzzing"]
        .map(String::from)
        .to_vec();
    for member in members() {
        for file in rust_files(&member) {
            let source = std::fs::read_to_string(&file).expect("a readable source file");
            let words: Vec<&str> = source
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| !w.is_empty())
                .collect();
            for pair in words.windows(2) {
                let kinds = [
                    "fn", "struct", "enum", "trait", "type", "const", "static", "mod",
                ];
                if kinds.contains(&pair[0]) {
                    names.insert(pair[1].to_string());
                    if ["struct", "enum", "trait", "type"].contains(&pair[0]) {
                        owners.push(pair[1].to_string());
                    }
                }
            }
            // Variants and fields: an indented name followed by `,`, `(`, `{` or `:`.
            for line in source.lines() {
                let name: String = line
                    .trim_start()
                    .trim_start_matches("pub ")
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    names.insert(name);
                }
            }
        }
    }
    (names, owners)
}

#[test]
fn every_path_and_item_the_docs_name_exists() {
    let root = workspace_root();
    let (names, owners) = defined_names();
    let mut missing = Vec::new();
    for document in documents() {
        let text = std::fs::read_to_string(&document).expect("a readable document");
        let shown = document
            .strip_prefix(&root)
            .unwrap_or(&document)
            .display()
            .to_string();
        let folder = document.parent().unwrap_or(&root);
        for link in relative_links(&text) {
            if !folder.join(&link).exists() {
                missing.push(format!("{shown}: link to {link}"));
            }
        }
        for span in code_spans(&text) {
            if is_repository_path(&span) && !root.join(&span).exists() {
                missing.push(format!("{shown}: `{span}`"));
            }
            if let Some((owner, item)) = item_paths(&span, &owners)
                && !names.contains(item)
            {
                missing.push(format!("{shown}: `{span}` ({owner} has no `{item}`)"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "named but not found:\n{}",
        missing.join("\n")
    );
}
