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

/// Fonts the project does not ship (Debian's `fonts-liberation` and `fonts-dejavu-core`):
/// typed non-digits held out from training, which types only the shipped DejaVu Sans.
pub const HELD_OUT_FONTS: [&str; 4] = [
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
];

/// A recipe over seeds, as `eval` scores the multi-seed run.
pub struct OverSeeds {
    /// Test accuracy, `99.24 ± 0.06 (min 99.14, max 99.30)`.
    pub spread: String,
    /// The same with test-time augmentation, when asked for.
    pub tta: Option<String>,
    /// With `outliers`, eval's means over the seeds: how the models tell digits from other
    /// images, one line per kind.
    pub outliers: Vec<String>,
}

/// A recipe's test accuracy over seeds 1 to `seeds` as `eval` gives it for the multi-seed run,
/// plain and (when `tta`) with test-time augmentation on the same models, and (when
/// `outliers`) how well they tell digits from Fashion-MNIST, drawn shapes, letters typed in
/// [`HELD_OUT_FONTS`] and the sample pictures in `data/digits`, and how they read test digits
/// redrawn with other pens.
pub fn over_seeds(
    config: &str,
    seeds: usize,
    tta: bool,
    outliers: bool,
    backend: &str,
    scratch: &Path,
) -> anyhow::Result<OverSeeds> {
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
    let mut extra = Vec::new();
    if outliers {
        for font in HELD_OUT_FONTS {
            if !Path::new(font).is_file() {
                bail!("{font}: not found (apt-get install fonts-liberation fonts-dejavu-core)");
            }
            extra.extend(["--outlier-font".to_string(), font.to_string()]);
        }
        extra.extend(["--outliers", "--real-digits", "data/digits", "--pens"].map(String::from));
    }
    let (spread, stdout) = eval_over_seeds(&runs, &extra, backend)?;
    let tta = match tta {
        true => Some(eval_over_seeds(&runs, &["--tta".to_string()], backend)?.0),
        false => None,
    };
    let outliers = stdout
        .lines()
        .skip_while(|line| !line.starts_with("mean over "))
        .map(String::from)
        .collect();
    Ok(OverSeeds {
        spread,
        tta,
        outliers,
    })
}

/// `eval`'s spread of the test accuracy over the seeds of the multi-seed run in `runs`, and
/// everything it printed.
fn eval_over_seeds(
    runs: &Path,
    extra: &[String],
    backend: &str,
) -> anyhow::Result<(String, String)> {
    let mut command = Command::new(binary("eval"));
    command
        .args(["--backend", backend])
        .arg("--model")
        .arg(runs)
        .args(extra)
        .stdout(Stdio::piped());
    let Measured { stdout, .. } = measure(&mut command)?;
    let Some(spread) = stdout
        .lines()
        .find_map(|line| line.strip_prefix("test accuracy over "))
        .and_then(|rest| rest.split_once(": "))
    else {
        bail!("eval printed no spread for {}", runs.display());
    };
    Ok((spread.1.to_string(), stdout))
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
