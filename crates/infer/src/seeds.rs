//! A recipe's runs over several seeds (`train --seeds` writes `DIR/seed-K/`), and the spread of
//! a figure over them: a single run's test score moves by about 0.1 point from seed to seed,
//! so two recipes are only told apart by the spread of several.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// Mean, sample standard deviation (n − 1; 0 for one value), least and greatest of a figure
/// over seeds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub std: f64,
    /// Least value.
    pub min: f64,
    /// Greatest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Self> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let squares: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
        let std = if n > 1 {
            (squares / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(Self {
            mean,
            std,
            min,
            max,
        })
    }
}

impl fmt::Display for Spread {
    /// `99.24 ± 0.06 (min 99.14, max 99.30)`, two decimals, as accuracies are given.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.2} ± {:.2} (min {:.2}, max {:.2})",
            self.mean, self.std, self.min, self.max
        )
    }
}

/// The finished seed runs in `dir` (`seed-K/` holding a `model.bpk`), by seed; none when `dir`
/// is a single run or holds no seeds.
pub fn seed_runs_in(dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut runs: Vec<(u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name();
            let seed = name.to_str()?.strip_prefix("seed-")?.parse().ok()?;
            Some((seed, entry.path()))
        })
        .filter(|(_, run)| run.join("model.bpk").is_file())
        .collect();
    runs.sort_unstable_by_key(|(seed, _)| *seed);
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_is_the_sample_deviation() {
        let spread = Spread::of(&[99.25, 99.24, 99.22, 99.28, 99.14, 99.30]).unwrap();
        assert!((spread.mean - 99.238_333).abs() < 1e-4);
        // Σ(v − mean)² = 0.015683…, over n − 1 = 5.
        assert!((spread.std - 0.056_006).abs() < 1e-5, "{}", spread.std);
        assert_eq!((spread.min, spread.max), (99.14, 99.30));
        assert_eq!(spread.to_string(), "99.24 ± 0.06 (min 99.14, max 99.30)");
        assert_eq!(Spread::of(&[98.0]).unwrap().std, 0.0);
        assert!(Spread::of(&[]).is_none());
    }

    #[test]
    fn seed_runs_are_the_finished_seed_folders_in_seed_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["seed-10", "seed-2", "seed-3", "seed-x", "other"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        for name in ["seed-10", "seed-2", "seed-x", "other"] {
            std::fs::write(dir.path().join(name).join("model.bpk"), b"").unwrap();
        }
        let seeds: Vec<u64> = seed_runs_in(dir.path()).iter().map(|(s, _)| *s).collect();
        assert_eq!(seeds, [2, 10]);
        assert!(seed_runs_in(&dir.path().join("seed-2")).is_empty());
    }
}
