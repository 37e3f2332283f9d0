//! The accuracy figures the README quotes: the default recipe's seed 3 as `cargo xtask train`
//! prints it, and each recipe over seeds 1 to N (mean ± sample standard deviation), with and
//! without test-time augmentation.

use super::{Measured, measure};
use crate::binary;
use anyhow::{Context, bail};
use std::path::Path;
use std::process::{Command, Stdio};

/// The recipe a newcomer trains first, whose run the README's transcript shows.
pub const DEFAULT_CONFIG: &str = "configs/default.toml";
/// The tutorial's own recipe.
pub const TUTORIAL_CONFIG: &str = "configs/tutorial.toml";
/// Where `cargo xtask train` puts the default recipe's run, as its transcript names it.
const DEFAULT_RUN_DIR: &str = "artifacts/default";

/// The default recipe's seed 3, trained as a newcomer trains it.
pub struct DefaultRun {
    /// What the trainer printed, with the scratch directory named as the user's would be.
    pub transcript: String,
    /// Test accuracy, percent.
    pub accuracy: f64,
    /// Seconds of the training loop, as its last line says.
    pub seconds: f64,
}

/// Trains `configs/default.toml` once, into `scratch`, as `cargo xtask train` would.
pub fn default_run(backend: &str, scratch: &Path) -> anyhow::Result<DefaultRun> {
    let run = scratch.join("default");
    let _ = std::fs::remove_dir_all(&run);
    eprintln!("the default recipe, seed 3");
    let Measured { stdout, .. } = measure(
        Command::new(binary("train"))
            .args(["--config", DEFAULT_CONFIG, "--backend", backend])
            .arg("--model")
            .arg(&run)
            .stdout(Stdio::piped()),
    )?;
    let transcript = stdout.replace(&run.display().to_string(), DEFAULT_RUN_DIR);
    let last = transcript.lines().last().unwrap_or_default();
    let (accuracy, seconds) = final_line_figures(last)
        .with_context(|| format!("the trainer's last line has no figures: {last:?}"))?;
    Ok(DefaultRun {
        transcript,
        accuracy,
        seconds,
    })
}

/// `(accuracy, seconds)` from `test accuracy 99.39% (loss …) after 10 epochs in 13.4 s; …`.
pub fn final_line_figures(line: &str) -> Option<(f64, f64)> {
    let accuracy = line
        .strip_prefix("test accuracy ")?
        .split('%')
        .next()?
        .parse()
        .ok()?;
    let seconds = line
        .split(" in ")
        .nth(1)?
        .split(" s")
        .next()?
        .parse()
        .ok()?;
    Some((accuracy, seconds))
}

/// A recipe's test accuracy over seeds 1 to `seeds` as `eval` gives it for the multi-seed run
/// (`99.24 ± 0.06 (min 99.14, max 99.30)`), plain and (when `tta`) with test-time augmentation
/// on the same models.
pub fn over_seeds(
    config: &str,
    seeds: usize,
    tta: bool,
    backend: &str,
    scratch: &Path,
) -> anyhow::Result<(String, Option<String>)> {
    let stem = Path::new(config)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("recipe");
    let runs = scratch.join(format!("{stem}-seeds"));
    let _ = std::fs::remove_dir_all(&runs);
    eprintln!("{config} over seeds 1 to {seeds}");
    measure(
        Command::new(binary("train"))
            .args(["--config", config, "--backend", backend])
            .args(["--seeds", &seeds.to_string()])
            .arg("--model")
            .arg(&runs)
            .stdout(Stdio::null()),
    )?;
    let plain = eval_over_seeds(&runs, false, backend)?;
    let augmented = match tta {
        true => Some(eval_over_seeds(&runs, true, backend)?),
        false => None,
    };
    Ok((plain, augmented))
}

/// `eval`'s spread of the test accuracy over the seeds of the multi-seed run in `runs`.
fn eval_over_seeds(runs: &Path, tta: bool, backend: &str) -> anyhow::Result<String> {
    let mut command = Command::new(binary("eval"));
    command
        .args(["--backend", backend])
        .arg("--model")
        .arg(runs)
        .stdout(Stdio::piped());
    if tta {
        command.arg("--tta");
    }
    let Measured { stdout, .. } = measure(&mut command)?;
    let Some(spread) = stdout
        .lines()
        .find_map(|line| line.strip_prefix("test accuracy over "))
        .and_then(|rest| rest.split_once(": "))
    else {
        bail!("eval printed no spread for {}", runs.display());
    };
    Ok(spread.1.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_line_gives_accuracy_and_seconds() {
        let line = "test accuracy 99.39% (loss 0.0197) after 10 epochs in 13.4 s; model saved to \
                    artifacts/default/model.bpk";
        assert_eq!(final_line_figures(line), Some((99.39, 13.4)));
        assert_eq!(final_line_figures("epoch 1/10"), None);
    }
}
