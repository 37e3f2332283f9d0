//! `cargo xtask web --out DIR`: the drawing page as a static site that reads digits in the
//! browser: the page, the `web` crate compiled to wasm32 with its JavaScript binding, and the
//! weights. Any static file server can host it; `serve --site DIR` serves it beside the API.

use crate::{cargo, workspace_root};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The browsers' target; it installs with `rustup target add`.
const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// The folder of the site that holds the wasm module, its binding and the weights.
pub const DEVICE_DIR: &str = "device";
/// What the site is made of: a folder holding any other name was not written by this task
/// and is left alone.
const SITE_ENTRIES: [&str; 2] = ["index.html", DEVICE_DIR];
/// The model's files the page loads (`model.bpk.sha256` travels with the weights).
const MODEL_FILES: [&str; 3] = ["config.toml", "model.bpk", "model.bpk.sha256"];
/// Everything in the site's `device/` folder: the bound module, its binding and the model.
const DEVICE_FILES: [&str; 5] = [
    "web.js",
    "web_bg.wasm",
    "config.toml",
    "model.bpk",
    "model.bpk.sha256",
];
/// The whole site, uncompressed, at most (page, wasm, binding and weights).
pub const MAX_SITE_BYTES: u64 = 3_000_000;

#[derive(clap::Args)]
pub struct Args {
    /// The folder to write the site into: new, or a site this task wrote before.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The training run whose model the page runs [default: the shipped model].
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let model = model_dir(&args)?;
    refuse_foreign_files(&args.out)?;
    let wasm = build_wasm()?;
    let parent = match args.out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("{}: cannot create", parent.display()))?;
    let staging = tempfile::tempdir_in(&parent)?;
    let device = staging.path().join(DEVICE_DIR);
    // Shrunk before it is bound: wasm-bindgen's table of JavaScript values must come through
    // untouched, and the bound module keeps the input's name (`web`).
    let shrunk = staging.path().join("web.wasm");
    shrink(&wasm, &shrunk)?;
    bind(&shrunk, &device)?;
    std::fs::remove_file(&shrunk)?;
    std::fs::copy(
        workspace_root().join("crates/serve/static/index.html"),
        staging.path().join("index.html"),
    )?;
    for name in MODEL_FILES {
        std::fs::copy(model.join(name), device.join(name))
            .with_context(|| format!("{}: cannot copy", model.join(name).display()))?;
    }
    let size = report_sizes(staging.path())?;
    if size > MAX_SITE_BYTES {
        bail!("the site is {size} bytes, over {MAX_SITE_BYTES}");
    }
    replace_site(staging.path(), &args.out)?;
    println!(
        "wrote the site into {} ({:.2} MB); try it with `python3 -m http.server --directory {}`",
        args.out.display(),
        size as f64 / 1e6,
        args.out.display()
    );
    Ok(())
}

/// The run whose model the site ships (the shipped model by default), with its files there.
fn model_dir(args: &Args) -> anyhow::Result<PathBuf> {
    let model = args
        .model
        .clone()
        .unwrap_or_else(|| workspace_root().join("crates/infer/model"));
    for name in MODEL_FILES {
        if !model.join(name).is_file() {
            bail!(
                "{}: not found; give --model a finished training run",
                model.join(name).display()
            );
        }
    }
    Ok(model)
}

/// Moves the site built in `staging` to `out`, replacing the site written there before.
fn replace_site(staging: &Path, out: &Path) -> anyhow::Result<()> {
    for name in SITE_ENTRIES {
        let old = out.join(name);
        match old.is_dir() {
            true => std::fs::remove_dir_all(&old)?,
            false if old.exists() => std::fs::remove_file(&old)?,
            false => {}
        }
    }
    std::fs::create_dir_all(out)?;
    for name in SITE_ENTRIES {
        std::fs::rename(staging.join(name), out.join(name))?;
    }
    Ok(())
}

/// A folder holding anything but a site this task wrote is refused, so nothing of the
/// user's is replaced.
fn refuse_foreign_files(out: &Path) -> anyhow::Result<()> {
    holds_only(out, &SITE_ENTRIES)?;
    holds_only(&out.join(DEVICE_DIR), &DEVICE_FILES)
}

/// Fails unless `dir` is missing or holds nothing but `names`.
fn holds_only(dir: &Path, names: &[&str]) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return match dir.symlink_metadata().is_ok() {
            true => bail!("{}: not a folder; give --out a new folder", dir.display()),
            false => Ok(()),
        };
    };
    for entry in entries {
        let name = entry?.file_name();
        if !names.iter().any(|ours| name == *ours) {
            bail!(
                "{}: holds {} which `cargo xtask web` did not write; give --out a new folder",
                dir.display(),
                name.to_string_lossy()
            );
        }
    }
    Ok(())
}

/// Builds the `web` crate for browsers and returns its `.wasm` file.
fn build_wasm() -> anyhow::Result<PathBuf> {
    cargo(&[
        "build".into(),
        "--quiet".into(),
        "--profile".into(),
        "web".into(),
        "--target".into(),
        WASM_TARGET.into(),
        "--package".into(),
        "web".into(),
    ])
    .context(format!(
        "the wasm build failed; the target installs with `rustup target add {WASM_TARGET}`"
    ))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    Ok(target.join(WASM_TARGET).join("web").join("web.wasm"))
}

/// Runs wasm-bindgen (the version in Cargo.lock) on `wasm`, writing the module and its
/// JavaScript binding into `dir`.
fn bind(wasm: &Path, dir: &Path) -> anyhow::Result<()> {
    let wanted = locked_version("wasm-bindgen")?;
    let install = format!("cargo install wasm-bindgen-cli --version {wanted}");
    let found = Command::new("wasm-bindgen")
        .arg("--version")
        .output()
        .with_context(|| format!("wasm-bindgen not found; install it with `{install}`"))?;
    let found = String::from_utf8_lossy(&found.stdout);
    if found.split_whitespace().nth(1) != Some(wanted.as_str()) {
        bail!(
            "wasm-bindgen is {}, the web crate needs {wanted}; `{install}`",
            found.trim()
        );
    }
    let status = Command::new("wasm-bindgen")
        .args(["--target", "web", "--no-typescript", "--out-dir"])
        .arg(dir)
        .arg(wasm)
        .status()?;
    if !status.success() {
        bail!("wasm-bindgen failed ({status})");
    }
    Ok(())
}

/// Optimises `module` for size with binaryen's `wasm-opt` into `smaller` (about a third
/// smaller: what keeps the site under [`MAX_SITE_BYTES`]).
fn shrink(module: &Path, smaller: &Path) -> anyhow::Result<()> {
    let status = Command::new("wasm-opt")
        .arg("-Oz")
        // What the module uses (rustc's wasm32 defaults, wasm-bindgen's reference types);
        // `--all-features` would let binaryen write encodings browsers refuse.
        .args([
            "--enable-simd",
            "--enable-bulk-memory",
            "--enable-nontrapping-float-to-int",
            "--enable-sign-ext",
            "--enable-mutable-globals",
            "--enable-reference-types",
            "--enable-multivalue",
            "--output",
        ])
        .arg(smaller)
        .arg(module)
        .status()
        .context("wasm-opt not found; install binaryen (`apt-get install binaryen`)")?;
    if !status.success() {
        bail!("wasm-opt failed ({status})");
    }
    Ok(())
}

/// The version of `package` that Cargo.lock pins.
fn locked_version(package: &str) -> anyhow::Result<String> {
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == format!("name = \"{package}\"") {
            let version = lines.next().and_then(|l| l.strip_prefix("version = \""));
            if let Some(version) = version.and_then(|v| v.strip_suffix('"')) {
                return Ok(version.to_string());
            }
        }
    }
    bail!("Cargo.lock: no {package}")
}

/// Prints each file's size and returns the total.
fn report_sizes(site: &Path) -> anyhow::Result<u64> {
    let mut files = vec![site.join("index.html")];
    for entry in std::fs::read_dir(site.join(DEVICE_DIR))? {
        files.push(entry?.path());
    }
    files.sort();
    let mut total = 0;
    for file in files {
        let size = std::fs::metadata(&file)?.len();
        println!(
            "{:>9} bytes  {}",
            size,
            file.strip_prefix(site).unwrap_or(&file).display()
        );
        total += size;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_holding_anything_of_the_users_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("site");
        refuse_foreign_files(&out).unwrap();
        std::fs::create_dir_all(out.join(DEVICE_DIR)).unwrap();
        std::fs::write(out.join("index.html"), "").unwrap();
        std::fs::write(out.join(DEVICE_DIR).join("model.bpk"), "").unwrap();
        refuse_foreign_files(&out).unwrap();
        std::fs::write(out.join(DEVICE_DIR).join("notes.txt"), "mine").unwrap();
        let error = refuse_foreign_files(&out).unwrap_err().to_string();
        assert!(error.contains("notes.txt"), "{error}");
        std::fs::remove_file(out.join(DEVICE_DIR).join("notes.txt")).unwrap();
        std::fs::write(out.join("photo.jpg"), "mine").unwrap();
        let error = refuse_foreign_files(&out).unwrap_err().to_string();
        assert!(error.contains("photo.jpg"), "{error}");
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(refuse_foreign_files(&file).is_err());
    }
}
