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

/// Mean, sample standard deviation, least and greatest of some accuracies (percent).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Option<Self> {
        let n = values.len() as f64;
        if values.is_empty() {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n;
        let squares: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
        let std = if values.len() > 1 {
            (squares / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Some(Self {
            mean,
            std,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

impl std::fmt::Display for Spread {
    /// `99.32 ± 0.09 % (99.21 – 99.40)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.2} ± {:.2} % ({:.2} – {:.2})",
            self.mean, self.std, self.min, self.max
        )
    }
}

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

/// A recipe's test accuracy over seeds 1 to `seeds`, plain and (when `tta`) with test-time
/// augmentation on the same models.
pub fn over_seeds(
    config: &str,
    seeds: usize,
    tta: bool,
    backend: &str,
    scratch: &Path,
) -> anyhow::Result<(Spread, Option<Spread>)> {
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
    let (mut plain, mut augmented) = (Vec::new(), Vec::new());
    for seed in 1..=seeds {
        let run = runs.join(format!("seed-{seed}"));
        plain.push(eval_accuracy(&run, false, backend, scratch)?);
        if tta {
            augmented.push(eval_accuracy(&run, true, backend, scratch)?);
        }
    }
    let spread = Spread::of(&plain).context("no seed trained")?;
    Ok((spread, Spread::of(&augmented)))
}

/// `eval`'s test accuracy for the run in `run` (figures drawn into scratch).
fn eval_accuracy(run: &Path, tta: bool, backend: &str, scratch: &Path) -> anyhow::Result<f64> {
    let mut command = Command::new(binary("eval"));
    command
        .args(["--backend", backend])
        .arg("--model")
        .arg(run)
        .arg("--figures")
        .arg(scratch.join("figures"))
        .stdout(Stdio::piped());
    if tta {
        command.arg("--tta");
    }
    let Measured { stdout, .. } = measure(&mut command)?;
    let Some(accuracy) = stdout
        .split("test accuracy ")
        .nth(1)
        .and_then(|rest| rest.split('%').next())
        .and_then(|value| value.parse().ok())
    else {
        bail!("eval printed no accuracy for {}", run.display());
    };
    Ok(accuracy)
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

    #[test]
    fn the_spread_is_the_sample_deviation() {
        let spread = Spread::of(&[99.0, 99.2, 99.4]).unwrap();
        assert!((spread.mean - 99.2).abs() < 1e-9);
        assert!((spread.std - 0.2).abs() < 1e-9);
        assert_eq!((spread.min, spread.max), (99.0, 99.4));
        assert_eq!(spread.to_string(), "99.20 ± 0.20 % (99.00 – 99.40)");
        assert_eq!(Spread::of(&[]), None);
    }
}
