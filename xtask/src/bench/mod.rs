//! `cargo xtask bench`: the project's speed and memory figures, taken the same way on any
//! machine, optionally beside the PyTorch tutorial's. Wall times and peak memory are of whole
//! processes, as a user would see them; per-epoch figures come from each trainer's own log.

mod abuse;
mod accuracy;
pub mod report;

use crate::{backend_features, binary, cargo, workspace_root};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// flex, ndarray or wgpu (the binaries are built with the cargo feature it needs).
    #[arg(long, default_value = "flex")]
    backend: String,
    /// The training recipe to time (the tutorial's, to compare with PyTorch like for like).
    #[arg(long, default_value = "configs/tutorial.toml")]
    config: PathBuf,
    /// Training epochs to time.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Also train the tutorial's PyTorch model with this Python (which must have torch;
    /// torchvision too for the tutorial's DataLoader), alternating with this project's runs.
    #[arg(long, value_name = "PYTHON")]
    pytorch: Option<PathBuf>,
    /// Training runs of each trainer; the table shows medians.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// How many times to run the one-image classification.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Skip training; time inference only.
    #[arg(long)]
    no_train: bool,
    /// The recipe timed to 99 % test accuracy (with training, unless `--no-train`).
    #[arg(long, default_value = "configs/fast.toml")]
    fast_config: PathBuf,
    /// Seeds of the time-to-99 % recipe, 1 to N; every one has to reach 99 %.
    #[arg(long, default_value_t = 3)]
    fast_seeds: usize,
    /// Also load the HTTP server (`serve`) with 1, 8 and 64 concurrent clients; with
    /// `--pytorch`, the tutorial's model behind FastAPI too (`scripts/pytorch_serve.py`, which
    /// needs fastapi, uvicorn and Pillow besides torch).
    #[arg(long)]
    serve: bool,
    /// Requests per load level with `--serve`.
    #[arg(long, default_value_t = 5000)]
    requests: usize,
    /// With `--serve`, post only this image instead of every sample digit in turn.
    #[arg(long, value_name = "FILE")]
    serve_image: Option<PathBuf>,
    /// Seeds (1 to N) over which the default and tutorial recipes' accuracy is measured, with
    /// the default recipe's seed 3 trained as `cargo xtask train` does; 0 skips them.
    #[arg(long, value_name = "N", default_value_t = 5)]
    accuracy_seeds: usize,
    /// Also write the figures into this markdown file, headed by the command, the date and
    /// the machine (the project's own are in docs/bench.md).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Copy the summary table and the transcript into README.md, from the file `--out` writes.
    #[arg(long, requires = "out", conflicts_with = "no_train")]
    readme: bool,
}

/// A finished child process: wall time, peak resident memory and what it printed.
struct Measured {
    wall: Duration,
    peak_bytes: Option<u64>,
    stdout: String,
}

/// One training run's figures.
#[derive(Clone, Copy, Debug)]
struct Training {
    /// Mean seconds of an epoch's training pass (no evaluation).
    epoch_seconds: f64,
    train_rate: f64,
    eval_rate: f64,
    wall: f64,
    peak_bytes: Option<u64>,
    accuracy: f64,
}

/// Who trains: this project on a backend, or PyTorch with one of its input pipelines.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Trainer {
    Burn,
    PytorchTutorial,
    PytorchPreloaded,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut build: Vec<String> = [
        "build",
        "--quiet",
        "--package",
        "train",
        "--package",
        "infer",
        "--package",
        "serve",
    ]
    .map(String::from)
    .into();
    build.extend(backend_features(&args.backend));
    cargo(&build)?;
    let scratch = tempfile::tempdir()?;
    let mut summary = Summary::default();
    let mut sections = Vec::new();
    if !args.no_train {
        if args.accuracy_seeds > 0 {
            sections.extend(accuracy_sections(&args, scratch.path(), &mut summary)?);
        }
        let rows = training_table(&args, scratch.path(), &mut summary)?;
        sections.push(section("Training speed", &rows));
        let rows = time_to_target_table(&args, scratch.path(), &mut summary)?;
        sections.push(section("Time to 99 %", &rows));
    }
    let rows = inference_table(&args, scratch.path(), &mut summary)?;
    sections.push(section("Inference", &rows));
    if args.serve {
        sections.push(section("Serving", &serve_table(&args, scratch.path())?));
        let rows = abuse::table(&sample_payloads()?, args.requests)?;
        sections.push(section("Serving under abuse", &rows));
    }
    sections.insert(0, summary.section());
    let machine = machine();
    for section in &sections {
        println!("{section}\n");
    }
    println!("Machine: {machine}");
    if let Some(out) = &args.out {
        let command = format!("cargo xtask bench {}", command_line());
        let text = report::document(&command, &machine, &sections);
        std::fs::write(out, &text).with_context(|| format!("{}: cannot write", out.display()))?;
        eprintln!("wrote {}", out.display());
        if args.readme {
            report::update_readme(&workspace_root().join("README.md"), &text)?;
            eprintln!("updated README.md's summary and transcript");
        }
    }
    Ok(())
}

/// A report section: a heading over its rows.
fn section(heading: &str, rows: &[String]) -> String {
    format!("## {heading}\n\n{}", rows.join("\n"))
}

/// The bench's own flags as given, for the report's heading.
fn command_line() -> String {
    std::env::args()
        .skip_while(|arg| arg != "bench")
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The figures the README quotes, gathered while the tables are made.
#[derive(Default)]
struct Summary {
    rows: Vec<(String, String)>,
}

impl Summary {
    fn add(&mut self, what: impl Into<String>, figure: impl Into<String>) {
        self.rows.push((what.into(), figure.into()));
    }

    /// The summary table, as the README shows it.
    fn section(&self) -> String {
        let mut table = vec!["| measured | figure |".to_string(), "| --- | --- |".into()];
        table.extend(
            self.rows
                .iter()
                .map(|(what, figure)| format!("| {what} | {figure} |")),
        );
        format!(
            "## Summary\n\n{}",
            report::wrap("summary", &table.join("\n"))
        )
    }
}

/// The default recipe's seed 3 as a newcomer trains it (its transcript), and the default and
/// tutorial recipes over seeds.
fn accuracy_sections(
    args: &Args,
    scratch: &Path,
    summary: &mut Summary,
) -> anyhow::Result<Vec<String>> {
    let run = accuracy::default_run(&args.backend, scratch)?;
    summary.add(
        format!("`{}`, seed 3, {}", accuracy::DEFAULT_CONFIG, args.backend),
        format!(
            "**{:.2} %** test accuracy after {:.1} s of training",
            run.accuracy, run.seconds
        ),
    );
    let seeds = args.accuracy_seeds;
    let default = accuracy::over_seeds(
        accuracy::DEFAULT_CONFIG,
        seeds,
        true,
        true,
        &args.backend,
        scratch,
    )?;
    let tutorial = accuracy::over_seeds(
        accuracy::TUTORIAL_CONFIG,
        seeds,
        false,
        false,
        &args.backend,
        scratch,
    )?
    .spread;
    let over = |config: &str| {
        format!("`{config}`, seeds 1–{seeds}: test accuracy (%), mean ± std (min, max)")
    };
    summary.add(
        over(accuracy::DEFAULT_CONFIG),
        format!("**{}**", default.spread),
    );
    if let Some(tta) = default.tta {
        summary.add("the same models with `--tta`", tta);
    }
    summary.add(over(accuracy::TUTORIAL_CONFIG), tutorial);
    let transcript = format!("```text\n$ cargo xtask train\n{}```", run.transcript);
    Ok(vec![
        format!(
            "## What `cargo xtask train` prints\n\nThe default recipe, seed 3, its output not a \
             terminal (in a terminal, Burn's TUI shows instead):\n\n{}",
            report::wrap("transcript", &transcript)
        ),
        outlier_section(seeds, &default.outliers),
    ])
}

/// How the default recipe's models tell digits from other images, as eval's means print it.
fn outlier_section(seeds: usize, lines: &[String]) -> String {
    format!(
        "## Is it a digit?\n\nThe default recipe's models (seeds 1–{seeds}) against images that \
             are no digit, none of them seen in training: Fashion-MNIST's test images, letters, \
             symbols and shapes drawn as on the page, and letters and symbols typed in fonts the \
             project does not ship; and the sample pictures in `data/digits`. \"Pass where 95 % \
             of digits do\" is the false-positive rate at 95 % true positives; \"flagged\" is \
             the share whose verdict is `unsure` or `not-a-digit`. Last, the first 1,000 test \
             digits redrawn with other pens (enlarged, then thinned or thickened) and read back \
             through the preprocessing, which corrects a stroke far from MNIST's; in brackets, \
             the same pictures scaled with their stroke kept. As `eval --model RUNS --outliers \
             --outlier-font FONT… --real-digits data/digits --pens` prints it:\n\n```text\n{}\n```",
        lines.join("\n")
    )
}

/// Each trainer's median run, and this project's ratio to each PyTorch pipeline.
fn training_table(
    args: &Args,
    scratch: &Path,
    summary: &mut Summary,
) -> anyhow::Result<Vec<String>> {
    let mut trainers = vec![Trainer::Burn];
    if args.pytorch.is_some() {
        trainers.extend([Trainer::PytorchTutorial, Trainer::PytorchPreloaded]);
    }
    // Rounds alternate the trainers, so a machine that slows down hurts all of them.
    let mut runs: Vec<Vec<Training>> = vec![Vec::new(); trainers.len()];
    for round in 0..args.rounds.max(1) {
        for (trainer, runs) in trainers.iter().zip(&mut runs) {
            eprintln!("round {}: {}", round + 1, trainer.label(&args.backend));
            runs.push(train_once(*trainer, args, scratch)?);
        }
    }
    let medians: Vec<Training> = runs.iter().map(|runs| median(runs)).collect();
    summary.add(
        format!(
            "`{}`, one training epoch (training pass, median), {}",
            args.config.display(),
            args.backend
        ),
        format!("{:.2} s", medians[0].epoch_seconds),
    );
    let mut rows = vec![
        format!(
            "| trainer ({} epochs, {}) | s per epoch (training pass) | training images/s | evaluation images/s | wall time | peak memory | test accuracy |",
            args.epochs,
            args.config.display()
        ),
        "| --- | --- | --- | --- | --- | --- | --- |".into(),
    ];
    for (trainer, m) in trainers.iter().zip(&medians) {
        rows.push(format!(
            "| {} | {:.2} s | {:.0} | {:.0} | {:.1} s | {} | {:.2}% |",
            trainer.label(&args.backend),
            m.epoch_seconds,
            m.train_rate,
            m.eval_rate,
            m.wall,
            megabytes(m.peak_bytes),
            m.accuracy
        ));
    }
    if medians.len() > 1 {
        rows.push(String::new());
    }
    for (trainer, m) in trainers.iter().zip(&medians).skip(1) {
        rows.push(format!(
            "{} ÷ {}: {:.2} per training epoch, {:.2} in wall time",
            Trainer::Burn.label(&args.backend),
            trainer.label(&args.backend),
            medians[0].epoch_seconds / m.epoch_seconds,
            medians[0].wall / m.wall
        ));
    }
    Ok(rows)
}

/// The CPU's model name and how many threads it offers: figures only compare within a run
/// on one machine, so every table is headed by the machine's name.
fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{model}, {threads} threads")
}

/// The accuracy a fast recipe has to reach on the test set.
const TARGET_ACCURACY: f64 = 99.0;

/// Trains the fast recipe with seeds 1 to `seeds` into one `train --seeds` run; returns its
/// directory.
fn train_fast_seeds(args: &Args, scratch: &Path, seeds: usize) -> anyhow::Result<PathBuf> {
    let config = std::path::absolute(&args.fast_config)?;
    let runs = scratch.join("fast");
    let _ = std::fs::remove_dir_all(&runs);
    eprintln!(
        "time to {TARGET_ACCURACY} %: {}",
        args.fast_config.display()
    );
    measure(
        Command::new(binary("train"))
            .arg("--config")
            .arg(&config)
            .args(["--backend", &args.backend])
            .args(["--seeds", &seeds.to_string()])
            .arg("--model")
            .arg(&runs)
            .stdout(Stdio::null()),
    )?;
    Ok(runs)
}

/// The fast recipe trained with seeds 1 to N (one `train --seeds` run): each seed's training
/// seconds (the training passes, as in the table above: no evaluation, no loading) and test
/// accuracy, and their mean.
fn time_to_target_table(
    args: &Args,
    scratch: &Path,
    summary: &mut Summary,
) -> anyhow::Result<Vec<String>> {
    let seeds = args.fast_seeds.max(1);
    let runs = train_fast_seeds(args, scratch, seeds)?;
    let mut rows = vec![
        format!(
            "| time to {TARGET_ACCURACY} % ({}, {}) | seconds of training | test accuracy |",
            args.fast_config.display(),
            args.backend
        ),
        "| --- | --- | --- |".into(),
    ];
    let (mut seconds, mut reached) = (Vec::new(), 0);
    for seed in 1..=seeds {
        let run = runs.join(format!("seed-{seed}"));
        let summary = read_summary(&run.join("summary.json"))?;
        let [rates] = read_columns(&run.join("metrics.csv"), ["images_per_second"])?;
        let trained: f64 = training_passes(&summary, &rates).sum();
        reached += usize::from(summary.accuracy >= TARGET_ACCURACY);
        rows.push(format!(
            "| seed {seed} | {trained:.2} s | {:.2}% |",
            summary.accuracy
        ));
        seconds.push(trained);
    }
    let mean = seconds.iter().sum::<f64>() / seconds.len() as f64;
    summary.add(
        format!(
            "`{}` to {TARGET_ACCURACY} %, seeds 1–{seeds}, {}",
            args.fast_config.display(),
            args.backend
        ),
        format!(
            "{mean:.2} s of training on average; {reached} of {seeds} seeds reached {TARGET_ACCURACY} %"
        ),
    );
    rows.push(format!(
        "| mean | {mean:.2} s | {reached} of {} seeds reached {TARGET_ACCURACY} % |",
        seconds.len()
    ));
    Ok(rows)
}

/// `infer` on one image (median of `args.runs` processes) and on a folder of 1,000.
fn inference_table(
    args: &Args,
    scratch: &Path,
    summary: &mut Summary,
) -> anyhow::Result<Vec<String>> {
    let mut rows = vec![
        "| inference | rate | wall time | peak memory |".to_string(),
        "| --- | --- | --- | --- |".into(),
    ];
    let sample = workspace_root().join("data/digits/seven-mnist.png");
    let mut one = Vec::with_capacity(args.runs);
    let mut one_peak = None;
    for _ in 0..args.runs.max(1) {
        let measured = measure(
            Command::new(binary("infer"))
                .args(["--backend", &args.backend])
                .arg(&sample)
                .stdout(Stdio::null()),
        )?;
        one.push(measured.wall);
        one_peak = one_peak.max(measured.peak_bytes);
    }
    one.sort();
    let median_ms = one[one.len() / 2].as_secs_f64() * 1e3;
    summary.add(
        format!("`infer` on one image, the whole process, {}", args.backend),
        format!("{median_ms:.1} ms"),
    );
    rows.push(format!(
        "| infer 1 image, {} | median of {} runs | {:.1} ms | {} |",
        args.backend,
        one.len(),
        median_ms,
        megabytes(one_peak)
    ));

    let samples = scratch.join("digits");
    let count = fill_folder(&samples, 1000)?;
    rows.push(infer_folder_row(
        args,
        &samples,
        &format!("{count} sample digits"),
        count,
    )?);
    let mnist = scratch.join("mnist");
    let count = save_mnist_pngs(&mnist, 1000, scratch)?;
    rows.push(infer_folder_row(
        args,
        &mnist,
        &format!("{count} MNIST test PNGs"),
        count,
    )?);
    Ok(rows)
}

/// `infer` over a whole folder of `count` images, in one process.
fn infer_folder_row(
    args: &Args,
    folder: &Path,
    what: &str,
    count: usize,
) -> anyhow::Result<String> {
    let measured = measure(
        Command::new(binary("infer"))
            .args(["--backend", &args.backend, "--json"])
            .arg(folder)
            .stdout(Stdio::null()),
    )?;
    Ok(format!(
        "| infer folder of {what}, {} | {:.0} images/s | {:.2} s | {} |",
        args.backend,
        count as f64 / measured.wall.as_secs_f64(),
        measured.wall.as_secs_f64(),
        megabytes(measured.peak_bytes)
    ))
}

/// The first `count` MNIST test images as 28×28 PNG files in `folder`, written by `eval`.
fn save_mnist_pngs(folder: &Path, count: usize, scratch: &Path) -> anyhow::Result<usize> {
    measure(
        Command::new(binary("eval"))
            .args(["--model", "crates/infer/model", "--data", "data/mnist"])
            .arg("--figures")
            .arg(scratch)
            .arg("--save-images")
            .arg(folder)
            .args(["--save-limit", &count.to_string()])
            .stdout(Stdio::null()),
    )?;
    Ok(count)
}

/// `serve` (and with `--pytorch`, the tutorial's model behind FastAPI) on this machine under
/// 1, 8 and 64 concurrent clients, each posting the sample digits round-robin on one
/// keep-alive connection; then each server's answers on the samples and its peak memory.
/// The servers run one after the other, never at once.
fn serve_table(args: &Args, scratch: &Path) -> anyhow::Result<Vec<String>> {
    let payloads = match &args.serve_image {
        Some(path) => {
            vec![std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?]
        }
        None => sample_payloads()?,
    };
    let mut serve = Command::new(binary("serve"));
    serve.args(["--addr", "127.0.0.1:0", "--backend", &args.backend]);
    let mut servers = vec![(format!("serve, {}", args.backend), serve)];
    if let Some(python) = &args.pytorch {
        let weights = scratch.join("model.safetensors");
        measure(
            Command::new(binary("export"))
                .args(["--model", "crates/infer/model", "--to"])
                .arg(&weights)
                .stdout(Stdio::null()),
        )?;
        let mut pytorch = Command::new(python);
        pytorch
            .arg(workspace_root().join("scripts/pytorch_serve.py"))
            .arg(&weights);
        servers.push(("PyTorch, FastAPI + uvicorn".to_string(), pytorch));
    }
    let mut rows = vec![
        format!(
            "| server, {} ({} requests per row) | clients | classifications/s | p50 | p99 | errors |",
            args.serve_image
                .as_ref()
                .map_or_else(|| "the sample digits".into(), |p| p.display().to_string()),
            args.requests
        ),
        "| --- | --- | --- | --- | --- | --- |".to_string(),
    ];
    let mut footers = vec![
        "| server | sample digits classified right | peak memory |".to_string(),
        "| --- | --- | --- |".to_string(),
    ];
    for (label, command) in &mut servers {
        let (load_rows, footer) = load_server(label, command, &payloads, args)?;
        rows.extend(load_rows);
        footers.push(footer);
    }
    rows.push(String::new());
    rows.extend(footers);
    Ok(rows)
}

/// Starts the server `command` (which prints `... http://ADDR/` first), loads it at each
/// level, checks its answers on the sample digits and stops it with SIGTERM: one row per
/// load level, and one with its correct answers and peak memory.
fn load_server(
    label: &str,
    command: &mut Command,
    payloads: &[Vec<u8>],
    args: &Args,
) -> anyhow::Result<(Vec<String>, String)> {
    eprintln!("loading {label}");
    let mut server = command
        .current_dir(workspace_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().context("no stdout")?),
        &mut first,
    )?;
    let addr: std::net::SocketAddr = first
        .split_whitespace()
        .find_map(|word| word.strip_prefix("http://"))
        .and_then(|address| address.trim_end_matches('/').parse().ok())
        .with_context(|| format!("{label} printed no address: {first:?}"))?;
    let limit = Duration::from_secs(120);
    // Warm-up: the first requests fault pages in and start the thread pools.
    crate::load::run(addr, payloads, 8, 500, limit);
    let mut rows = Vec::new();
    for clients in [1, 8, 64] {
        let load = crate::load::run(addr, payloads, clients, args.requests, limit);
        rows.push(format!(
            "| {label} | {clients} | {:.0} | {:.2} ms | {:.2} ms | {} |",
            load.rate(),
            load.percentile(0.5),
            load.percentile(0.99),
            load.errors
        ));
    }
    let right = samples_right(addr)?;
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()?;
    let (status, peak) = wait_with_peak_memory(server)?;
    if !status.success() {
        bail!("{label} did not stop cleanly ({status})");
    }
    Ok((rows, format!("| {label} | {right} | {} |", megabytes(peak))))
}

/// How many of the sample digits the server at `addr` names right, as `right/all`; each
/// sample's file name starts with its digit in words (`seven-mnist.png`).
fn samples_right(addr: std::net::SocketAddr) -> anyhow::Result<String> {
    const WORDS: [&str; 10] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    let samples = sample_paths()?;
    let mut right = 0;
    for path in &samples {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let expected = WORDS
            .iter()
            .position(|word| name.starts_with(&format!("{word}-")));
        let (status, body) = crate::load::classify_once(addr, &std::fs::read(path)?)?;
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let digit = answer["digit"].as_u64().map(|d| d as usize);
        if status == 200 && expected.is_some() && digit == expected {
            right += 1;
        }
    }
    Ok(format!("{right}/{}", samples.len()))
}

/// The bytes of every sample image in `data/digits`.
fn sample_payloads() -> anyhow::Result<Vec<Vec<u8>>> {
    let samples = sample_paths()?;
    samples
        .iter()
        .map(|path| std::fs::read(path).with_context(|| format!("{}: cannot read", path.display())))
        .collect()
}

/// The sample images in `data/digits`, sorted.
fn sample_paths() -> anyhow::Result<Vec<PathBuf>> {
    let mut samples: Vec<PathBuf> = std::fs::read_dir(workspace_root().join("data/digits"))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    samples.retain(|path| path.extension().is_some_and(|e| e != "md"));
    samples.sort();
    if samples.is_empty() {
        bail!("data/digits holds no sample images");
    }
    Ok(samples)
}

impl Trainer {
    fn label(self, backend: &str) -> String {
        match self {
            Self::Burn => format!("this project, {backend}"),
            Self::PytorchTutorial => "PyTorch, the tutorial's DataLoader".into(),
            Self::PytorchPreloaded => "PyTorch, data preloaded as one tensor".into(),
        }
    }
}

fn train_once(trainer: Trainer, args: &Args, scratch: &Path) -> anyhow::Result<Training> {
    match trainer {
        Trainer::Burn => train_burn(args, scratch),
        Trainer::PytorchTutorial => train_pytorch("tutorial", args),
        Trainer::PytorchPreloaded => train_pytorch("preloaded", args),
    }
}

/// This project's trainer; per-epoch figures from its `metrics.csv` and `summary.json`.
fn train_burn(args: &Args, scratch: &Path) -> anyhow::Result<Training> {
    let config = std::path::absolute(&args.config)?;
    let run_dir = scratch.join("run");
    let _ = std::fs::remove_dir_all(&run_dir);
    let measured = measure(
        Command::new(binary("train"))
            .arg("--config")
            .arg(&config)
            .args(["--backend", &args.backend])
            .args(["--epochs", &args.epochs.to_string()])
            .arg("--model")
            .arg(&run_dir)
            .stdout(Stdio::null()),
    )?;
    let summary = read_summary(&run_dir.join("summary.json"))?;
    let [epoch_seconds, train_rates] = read_columns(
        &run_dir.join("metrics.csv"),
        ["seconds", "images_per_second"],
    )?;
    let n = epoch_seconds.len() as f64;
    let train_seconds = training_passes(&summary, &train_rates).sum::<f64>() / n;
    let eval_seconds = (epoch_seconds.iter().sum::<f64>() / n - train_seconds).max(1e-9);
    Ok(Training {
        epoch_seconds: train_seconds,
        train_rate: summary.train / train_seconds,
        eval_rate: summary.test / eval_seconds,
        wall: measured.wall.as_secs_f64(),
        peak_bytes: measured.peak_bytes,
        accuracy: summary.accuracy,
    })
}

/// The tutorial in PyTorch with one of its input pipelines; figures from its JSON lines.
fn train_pytorch(loader: &str, args: &Args) -> anyhow::Result<Training> {
    let epochs = args.epochs.to_string();
    let Some(python) = &args.pytorch else {
        bail!("no Python given for PyTorch");
    };
    let measured = measure(
        Command::new(python)
            .arg(workspace_root().join("scripts/pytorch_tutorial.py"))
            .args(["--loader", loader, "--epochs", &epochs])
            .arg("--data")
            .arg(workspace_root().join("data/mnist"))
            .stdout(Stdio::piped()),
    )?;
    let epochs: Vec<serde_json::Value> = measured
        .stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|value| value.get("epoch").is_some())
        .collect();
    let field = |value: &serde_json::Value, key: &str| value[key].as_f64().unwrap_or(f64::NAN);
    let Some(last) = epochs.last() else {
        bail!("{} printed no epoch", python.display());
    };
    let n = epochs.len() as f64;
    let train_seconds = epochs
        .iter()
        .map(|e| field(e, "train_seconds"))
        .sum::<f64>()
        / n;
    let test_seconds = epochs.iter().map(|e| field(e, "test_seconds")).sum::<f64>() / n;
    Ok(Training {
        epoch_seconds: train_seconds,
        train_rate: field(last, "train_images") / train_seconds,
        eval_rate: field(last, "test_images") / test_seconds,
        wall: measured.wall.as_secs_f64(),
        peak_bytes: measured.peak_bytes,
        accuracy: field(last, "test_accuracy"),
    })
}

/// The run with the median training-epoch time.
fn median(runs: &[Training]) -> Training {
    let mut sorted = runs.to_vec();
    sorted.sort_by(|a, b| a.epoch_seconds.total_cmp(&b.epoch_seconds));
    sorted[sorted.len() / 2]
}

/// Each epoch's training-pass seconds, from its `images_per_second`: an epoch's `seconds`
/// cover the evaluation pass too, while the rate is of the training images alone.
fn training_passes<'a>(
    summary: &'a SummaryFigures,
    rates: &'a [f64],
) -> impl Iterator<Item = f64> + 'a {
    rates.iter().map(|rate| summary.train / rate)
}

/// The parts of `summary.json` the bench reads: image counts and the final accuracy.
struct SummaryFigures {
    train: f64,
    test: f64,
    accuracy: f64,
}

fn read_summary(path: &Path) -> anyhow::Result<SummaryFigures> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a summary", path.display()))?;
    let number = |key: &str| {
        value[key]
            .as_f64()
            .with_context(|| format!("{}: no `{key}`", path.display()))
    };
    Ok(SummaryFigures {
        train: number("train_images")?,
        test: number("test_images")?,
        accuracy: number("test_accuracy")?,
    })
}

/// Runs `command` (its output discarded unless it pipes stdout, which is then kept); fails
/// if it fails.
fn measure(command: &mut Command) -> anyhow::Result<Measured> {
    command.current_dir(workspace_root());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let mut stdout = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stdout)?;
    }
    let (status, peak_bytes) = wait_with_peak_memory(child)?;
    let wall = started.elapsed();
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(Measured {
        wall,
        peak_bytes,
        stdout,
    })
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

/// The named columns of a run's `metrics.csv`, each found by its name in the header.
fn read_columns<const N: usize>(path: &Path, names: [&str; N]) -> anyhow::Result<[Vec<f64>; N]> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let mut positions = [0; N];
    for (position, name) in positions.iter_mut().zip(names) {
        *position = header
            .iter()
            .position(|column| column.trim() == name)
            .with_context(|| format!("{}: no `{name}` column", path.display()))?;
    }
    let mut columns: [Vec<f64>; N] = std::array::from_fn(|_| Vec::new());
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        for (column, &position) in columns.iter_mut().zip(&positions) {
            let value = fields.get(position).and_then(|v| v.trim().parse().ok());
            column.push(value.with_context(|| format!("{}: not a metrics file", path.display()))?);
        }
    }
    if columns[0].is_empty() {
        bail!("{}: no complete epoch", path.display());
    }
    Ok(columns)
}

/// Copies the sample digits round-robin into `dir` until it holds `count` images.
fn fill_folder(dir: &Path, count: usize) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let samples = sample_paths()?;
    for i in 0..count {
        let sample = &samples[i % samples.len()];
        let extension = sample.extension().and_then(|e| e.to_str()).unwrap_or("png");
        std::fs::copy(sample, dir.join(format!("{i:04}.{extension}")))?;
    }
    Ok(count)
}
