//! `cargo xtask bench`: the project's speed and memory figures, taken the same way on any
//! machine. Timings are of whole processes, as a user would see them.

use crate::{binary, cargo, workspace_root};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// flex, ndarray or wgpu.
    #[arg(long, default_value = "flex")]
    backend: String,
    /// The training recipe to time.
    #[arg(long, default_value = "configs/default.toml")]
    config: PathBuf,
    /// Training epochs to time.
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// How many times to run the one-image classification.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Skip training; time inference only.
    #[arg(long)]
    no_train: bool,
}

/// A finished child process: wall time and peak resident memory.
struct Measured {
    wall: Duration,
    peak_bytes: Option<u64>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    cargo(
        &[
            "build",
            "--quiet",
            "--package",
            "train",
            "--package",
            "infer",
        ]
        .map(String::from),
    )?;
    let scratch = tempfile::tempdir()?;
    let mut rows = Vec::new();

    if !args.no_train {
        let run_dir = scratch.path().join("run");
        let config = crate::absolute(&args.config);
        let measured = measure(
            Command::new(binary("train"))
                .arg("--config")
                .arg(&config)
                .args([
                    "--backend",
                    &args.backend,
                    "--epochs",
                    &args.epochs.to_string(),
                ])
                .arg("--artifact-dir")
                .arg(&run_dir),
        )?;
        let epochs = read_metrics(&run_dir.join("metrics.csv"))?;
        let mean =
            |column: usize| epochs.iter().map(|row| row[column]).sum::<f64>() / epochs.len() as f64;
        rows.push(format!(
            "| train {} epoch(s), {} | {:.2} s per epoch, {:.0} training images/s | {:.1} s | {} |",
            epochs.len(),
            args.backend,
            mean(5),
            mean(6),
            measured.wall.as_secs_f64(),
            megabytes(measured.peak_bytes)
        ));
    }

    let sample = workspace_root().join("data/digits/seven-mnist.png");
    let mut one = Vec::with_capacity(args.runs);
    let mut one_peak = None;
    for _ in 0..args.runs.max(1) {
        let measured = measure(
            Command::new(binary("infer"))
                .args(["--backend", &args.backend])
                .arg(&sample),
        )?;
        one.push(measured.wall);
        one_peak = one_peak.max(measured.peak_bytes);
    }
    one.sort();
    rows.push(format!(
        "| infer 1 image, {} | median of {} runs | {:.1} ms | {} |",
        args.backend,
        one.len(),
        one[one.len() / 2].as_secs_f64() * 1e3,
        megabytes(one_peak)
    ));

    let folder = scratch.path().join("digits");
    let count = fill_folder(&folder, 1000)?;
    let measured = measure(
        Command::new(binary("infer"))
            .args(["--backend", &args.backend, "--json"])
            .arg(&folder),
    )?;
    rows.push(format!(
        "| infer folder of {count} images, {} | {:.0} images/s | {:.2} s | {} |",
        args.backend,
        count as f64 / measured.wall.as_secs_f64(),
        measured.wall.as_secs_f64(),
        megabytes(measured.peak_bytes)
    ));

    println!("| task | rate | wall time | peak memory |");
    println!("| --- | --- | --- | --- |");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}

/// Runs `command` with its output discarded; fails if it fails.
fn measure(command: &mut Command) -> anyhow::Result<Measured> {
    command
        .current_dir(workspace_root())
        .stdout(std::process::Stdio::null());
    let started = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let (status, peak_bytes) = wait_with_peak_memory(child)?;
    let wall = started.elapsed();
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(Measured { wall, peak_bytes })
}

#[cfg(unix)]
fn wait_with_peak_memory(
    child: std::process::Child,
) -> anyhow::Result<(std::process::ExitStatus, Option<u64>)> {
    use std::os::unix::process::ExitStatusExt;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our own child, not yet waited for; both pointers are valid.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    if pid < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // ru_maxrss is in kilobytes on Linux.
    let peak = u64::try_from(usage.ru_maxrss).ok().map(|kb| kb * 1024);
    Ok((std::process::ExitStatus::from_raw(status), peak))
}

#[cfg(not(unix))]
fn wait_with_peak_memory(
    mut child: std::process::Child,
) -> anyhow::Result<(std::process::ExitStatus, Option<u64>)> {
    Ok((child.wait()?, None))
}

fn megabytes(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "n/a".into(), |b| format!("{:.0} MB", b as f64 / 1e6))
}

/// The rows of a run's `metrics.csv`, as numbers.
fn read_metrics(path: &Path) -> anyhow::Result<Vec<Vec<f64>>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let rows = text
        .lines()
        .skip(1)
        .map(|line| {
            line.split(',')
                .map(str::parse)
                .collect::<Result<Vec<f64>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not a metrics file", path.display()))?;
    if rows.is_empty() || rows.iter().any(|row| row.len() < 7) {
        bail!("{}: no complete epoch", path.display());
    }
    Ok(rows)
}

/// Copies the sample digits round-robin into `dir` until it holds `count` images.
fn fill_folder(dir: &Path, count: usize) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let mut samples: Vec<PathBuf> = std::fs::read_dir(workspace_root().join("data/digits"))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    samples.retain(|path| path.extension().is_some_and(|e| e != "md"));
    samples.sort();
    if samples.is_empty() {
        bail!("data/digits holds no sample images");
    }
    for i in 0..count {
        let sample = &samples[i % samples.len()];
        let extension = sample.extension().and_then(|e| e.to_str()).unwrap_or("png");
        std::fs::copy(sample, dir.join(format!("{i:04}.{extension}")))?;
    }
    Ok(count)
}
