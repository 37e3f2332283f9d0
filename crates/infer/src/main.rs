//! `infer`: names the digit in each image file with the network's probabilities.

#![deny(unsafe_code)]

use anyhow::Context;
use clap::Parser;
use infer::cli::{ModelArgs, TtaArgs};
use infer::{DigitClassifier, FileError, FileResult, classify_files, console, output};
use model::BackendKind;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Name the digit in each image, with the network's probability for every class.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Image files (PNG, JPEG, BMP, GIF, WebP, TIFF) and directories of them.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    tta: TtaArgs,
    /// One JSON object per line instead of the human format.
    #[arg(long)]
    json: bool,
    /// Show only the K most likely digits (human format).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u8).range(1..=10))]
    top: Option<u8>,
    /// Write the 28×28 image the network saw for each input into this directory.
    #[arg(long, value_name = "DIR")]
    save_preprocessed: Option<PathBuf>,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            console::note(format_args!("error: {error:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Classifies every input; returns whether all of them could be classified.
fn run(cli: Cli) -> anyhow::Result<bool> {
    let source = cli.model.source();
    let ready = cli.model.backend.kind.init()?;
    if cli.model.backend.kind == BackendKind::Wgpu {
        console::note(format_args!("using {}", ready.description));
        console::note(
            "the first run compiles wgpu's kernels (slow on a software driver); later runs reuse them",
        );
    }
    let classifier = DigitClassifier::load(&source, ready.device)
        .context("cannot load the model")?
        .with_shifted_copies(cli.tta.tta);
    if let Some(dir) = &cli.save_preprocessed {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
    }
    let mut all_ok = true;
    for (index, result) in classify_files(&classifier, &cli.inputs)?
        .into_iter()
        .enumerate()
    {
        if let Some(dir) = &cli.save_preprocessed
            && let Err(problem) = save_preprocessed(&result, index, dir)
        {
            all_ok = false;
            let failure = FileResult {
                path: result.path.clone(),
                outcome: Err(problem),
            };
            print(&cli, &failure)?;
        }
        all_ok &= result.outcome.is_ok();
        print(&cli, &result)?;
    }
    Ok(all_ok)
}

/// Writes the network's view of a classified file into `dir` as `INDEX-STEM.png`.
fn save_preprocessed(result: &FileResult, index: usize, dir: &Path) -> Result<(), FileError> {
    let Ok(classified) = &result.outcome else {
        return Ok(());
    };
    let stem = result
        .path
        .file_stem()
        .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
    let target = dir.join(format!("{index:04}-{stem}.png"));
    infer::save_preprocessed(&classified.pixels, &target).map_err(|error| FileError::Save {
        path: target,
        error,
    })
}

/// Prints one result: on stdout, or a failure in the human format on stderr. A reader that
/// has gone away (`infer DIR | head -1`) ends the run quietly rather than with a panic.
fn print(cli: &Cli, result: &FileResult) -> anyhow::Result<()> {
    let line = match (&result.outcome, cli.json) {
        (_, true) => output::json_line(result),
        (Ok(classified), false) => {
            let file = output::display_name(&result.path);
            let top = cli.top.map_or(10, usize::from);
            output::human_text(&file, &classified.prediction, top)
        }
        (Err(message), false) => {
            console::note(format_args!("error: {message}"));
            return Ok(());
        }
    };
    console::print(line).context("cannot write to stdout")
}
