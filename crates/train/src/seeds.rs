//! One recipe trained with several seeds, one after another, and summarised as mean ± standard
//! deviation ([`Spread`]): a single run's test score moves by about 0.1 point from seed to seed.
//!
//! Each seed is an ordinary run in `DIR/seed-K/` (its own model, metrics, checkpoints and
//! resume). `DIR` holds the recipe every seed started from (`config.toml`), one row per
//! finished seed (`seeds.csv`, rewritten as each ends) and the summary (`seeds.json`).

use crate::error::{TrainError, write_json, write_run_file};
use crate::fit::Hooks;
use crate::fit::report::csv_text;
use crate::recipe::RunConfig;
use crate::run::lock::RunLock;
use crate::run::{
    PreparedRun, Summary, TrainOptions, check_memory, default_run_dir, refuse_earlier_run,
    resolve_config,
};
use infer::Spread;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// `seeds.csv`'s columns, in order.
pub const SEEDS_CSV_COLUMNS: [&str; 5] = [
    "seed",
    "validation_accuracy",
    "test_accuracy",
    "test_loss",
    "train_seconds",
];

/// Most seeds one run may train: each is a whole training run.
pub const MAX_SEEDS: u64 = 1000;

/// The seeds to train: `N` means seeds 1 to N; `A,B,C` names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedList(Vec<u64>);

impl SeedList {
    /// The seeds, in training order.
    pub fn seeds(&self) -> &[u64] {
        &self.0
    }
}

impl FromStr for SeedList {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let number = |part: &str| {
            part.trim()
                .parse::<u64>()
                .map_err(|_| format!("`{part}` is not a whole number"))
        };
        let too_many = || format!("at most {MAX_SEEDS} seeds in one run");
        let seeds: Vec<u64> = match text.contains(',') {
            false => {
                let count = number(text)?;
                if count > MAX_SEEDS {
                    return Err(too_many());
                }
                (1..=count).collect()
            }
            true => text
                .split(',')
                .filter(|part| !part.trim().is_empty())
                .take(MAX_SEEDS as usize + 1)
                .map(number)
                .collect::<Result<_, _>>()?,
        };
        if seeds.is_empty() {
            return Err("at least one seed is needed".into());
        }
        if seeds.len() as u64 > MAX_SEEDS {
            return Err(too_many());
        }
        let mut sorted = seeds.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err("a seed is named twice".into());
        }
        Ok(Self(seeds))
    }
}

impl fmt::Display for SeedList {
    /// As it is given on the command line: `N` for seeds 1 to N, else the list.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts_from_one = self.0.iter().zip(1..).all(|(&seed, k)| seed == k);
        match counts_from_one {
            true => write!(f, "{}", self.0.len()),
            false => {
                let names: Vec<String> = self.0.iter().map(u64::to_string).collect();
                write!(f, "{}", names.join(","))
            }
        }
    }
}

/// One finished seed, as a row of `seeds.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedRow {
    /// The run's seed.
    pub seed: u64,
    /// Percent, after the last epoch, when the recipe holds out a validation split.
    pub validation_accuracy: Option<f64>,
    /// Percent, scored once at the end.
    pub test_accuracy: f64,
    /// Mean −ln p of the true class on the test set.
    pub test_loss: f64,
    /// Wall-clock seconds of the training loop.
    pub train_seconds: f64,
}

impl SeedRow {
    fn of(seed: u64, summary: &Summary) -> Self {
        Self {
            seed,
            validation_accuracy: summary.validation_accuracy,
            test_accuracy: summary.test_accuracy,
            test_loss: summary.test_loss,
            train_seconds: summary.train_seconds,
        }
    }

    /// The row's fields under [`SEEDS_CSV_COLUMNS`]; no validation split, an empty field.
    fn csv_fields(&self) -> [String; 5] {
        [
            self.seed.to_string(),
            self.validation_accuracy
                .map_or_else(String::new, |v| format!("{v:.2}")),
            format!("{:.2}", self.test_accuracy),
            format!("{:.4}", self.test_loss),
            format!("{:.1}", self.train_seconds),
        ]
    }
}

/// `seeds.json`: the recipe's figures over all its seeds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedsSummary {
    /// The seeds trained.
    pub seeds: Vec<u64>,
    /// Percent, on the test set, scored once per seed at the end.
    pub test_accuracy: Spread,
    /// Percent, on the validation split after the last epoch, when the recipe holds one out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_accuracy: Option<Spread>,
    /// Mean −ln p of the true class on the test set.
    pub test_loss: Spread,
    /// Wall-clock seconds of each seed's training loop.
    pub train_seconds: Spread,
    /// Every seed's row, as in `seeds.csv`.
    pub runs: Vec<SeedRow>,
}

impl SeedsSummary {
    /// The summary of `rows`; `None` when there are none.
    pub fn of(rows: &[SeedRow]) -> Option<Self> {
        let figure =
            |get: fn(&SeedRow) -> f64| Spread::of(&rows.iter().map(get).collect::<Vec<_>>());
        let validation: Option<Vec<f64>> = rows.iter().map(|r| r.validation_accuracy).collect();
        Some(Self {
            seeds: rows.iter().map(|r| r.seed).collect(),
            test_accuracy: figure(|r| r.test_accuracy)?,
            validation_accuracy: validation.and_then(|values| Spread::of(&values)),
            test_loss: figure(|r| r.test_loss)?,
            train_seconds: figure(|r| r.train_seconds)?,
            runs: rows.to_vec(),
        })
    }
}

/// Called once a seed's run is prepared, before it trains; gives the hooks it trains with.
pub type OnSeedStart<'a> = Box<dyn FnMut(u64, &PreparedRun) -> Hooks + 'a>;

/// What the caller hears of a multi-seed run.
pub struct SeedHooks<'a> {
    /// Called once a seed's run is prepared, before it trains; gives the hooks it trains with.
    pub on_start: OnSeedStart<'a>,
    /// Called with each seed finished (or found finished when resuming).
    pub on_finish: Box<dyn FnMut(&SeedRow) + 'a>,
    /// Hears each URL fetched with `--download`.
    pub on_download: Box<dyn FnMut(&str) + 'a>,
}

/// A multi-seed run whose recipe is checked and whose directory is claimed.
pub struct SeedRuns {
    options: TrainOptions,
    seeds: SeedList,
    dir: PathBuf,
    /// The recipe every seed starts from; `seed` is replaced by each seed's own.
    config: RunConfig,
    _lock: RunLock,
}

impl SeedRuns {
    /// Checks the recipe (or, with `--resume`, finds the one the run started with) and claims
    /// the directory; writes nothing else yet.
    pub fn prepare(options: &TrainOptions, seeds: SeedList) -> Result<Self, TrainError> {
        let dir = options
            .run_dir
            .clone()
            .unwrap_or_else(|| default_run_dir(&options.config_path));
        let saved = dir.join("config.toml");
        let config = match options.resume {
            true => resumed_recipe(options, &saved)?,
            false => resolve_config(RunConfig::load(&options.config_path)?, options)?,
        };
        check_memory(&config, &options.config_path.display().to_string())?;
        let lock = RunLock::acquire(&dir)?;
        if !options.resume && !options.restart {
            holds_no_earlier_seeds(&dir)?;
        }
        Ok(Self {
            options: options.clone(),
            seeds,
            dir,
            config,
            _lock: lock,
        })
    }

    /// Where the seeds' runs, `seeds.csv` and `seeds.json` go.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Trains every seed not yet finished, one after another, and writes the summary.
    pub fn train(self, mut hooks: SeedHooks) -> Result<SeedsSummary, TrainError> {
        let recipe = self.dir.join("config.toml");
        if !self.options.resume {
            for name in ["seeds.csv", "seeds.json"] {
                remove_if_present(&self.dir.join(name))?;
            }
            write_run_file(&recipe, self.config.to_toml().as_bytes())?;
        }
        let mut rows = Vec::new();
        for &seed in self.seeds.seeds() {
            let row = match self.finished_seed(seed)? {
                Some(row) => row,
                None => self.train_seed(seed, &recipe, &mut hooks)?,
            };
            (hooks.on_finish)(&row);
            rows.push(row);
            self.write_csv(&rows)?;
        }
        let summary = SeedsSummary::of(&rows)
            .ok_or_else(|| TrainError::Failed("a multi-seed run needs at least one seed".into()))?;
        write_json(&self.dir.join("seeds.json"), &summary)?;
        Ok(summary)
    }

    fn seed_dir(&self, seed: u64) -> PathBuf {
        self.dir.join(format!("seed-{seed}"))
    }

    /// A seed a resumed multi-seed run already finished: its `summary.json` is written last.
    fn finished_seed(&self, seed: u64) -> Result<Option<SeedRow>, TrainError> {
        let path = self.seed_dir(seed).join("summary.json");
        if !self.options.resume || !path.exists() {
            return Ok(None);
        }
        let text = data::read_text_bounded(&path, data::MAX_TEXT_FILE_BYTES)
            .map_err(|e| TrainError::file(&path, format!("cannot read: {e}")))?;
        let summary: Summary = serde_json::from_str(&text)
            .map_err(|e| TrainError::file(&path, format!("not a run summary: {e}")))?;
        Ok(Some(SeedRow::of(seed, &summary)))
    }

    /// Trains one seed in `DIR/seed-K`, resuming it when a resumed run had started it.
    fn train_seed(
        &self,
        seed: u64,
        recipe: &Path,
        hooks: &mut SeedHooks,
    ) -> Result<SeedRow, TrainError> {
        let seed_dir = self.seed_dir(seed);
        let options = TrainOptions {
            config_path: recipe.to_path_buf(),
            run_dir: Some(seed_dir.clone()),
            epochs: None,
            overrides: vec![format!("seed={seed}")],
            resume: self.options.resume && seed_dir.join("config.toml").is_file(),
            restart: self.options.restart,
            ..self.options.clone()
        };
        let run = PreparedRun::prepare(&options, &mut hooks.on_download)?;
        let run_hooks = (hooks.on_start)(seed, &run);
        let finished = run.train(run_hooks).map_err(|error| match error {
            TrainError::Interrupted { reason, .. } => TrainError::SeedsInterrupted {
                reason,
                seed,
                seeds: self.seeds.to_string(),
                dir: self.dir.clone(),
            },
            other => other,
        })?;
        Ok(SeedRow::of(seed, &finished.summary))
    }

    fn write_csv(&self, rows: &[SeedRow]) -> Result<(), TrainError> {
        let path = self.dir.join("seeds.csv");
        let text = csv_text(SEEDS_CSV_COLUMNS, rows.iter().map(SeedRow::csv_fields));
        write_run_file(&path, text.as_bytes())
    }
}

/// `--resume`: the recipe the multi-seed run started with, unchanged, so every seed trains
/// the same one.
fn resumed_recipe(options: &TrainOptions, saved: &Path) -> Result<RunConfig, TrainError> {
    if !options.overrides.is_empty() || options.epochs.is_some() {
        return Err(TrainError::file(
            saved,
            "a resumed multi-seed run keeps the recipe it started with; drop --set and --epochs",
        ));
    }
    if !saved.is_file() {
        return Err(TrainError::file(
            saved,
            "not found; there is no multi-seed run to resume here",
        ));
    }
    Ok(RunConfig::load(saved)?)
}

/// Without `--resume` or `--restart`, a directory holding an earlier (multi-seed or single)
/// run is left alone.
fn holds_no_earlier_seeds(dir: &Path) -> Result<(), TrainError> {
    let mut found: Vec<String> = crate::RUN_OUTPUTS
        .into_iter()
        .filter(|name| dir.join(name).symlink_metadata().is_ok())
        .map(str::to_string)
        .collect();
    found.extend(seed_outputs_in(dir));
    found.sort();
    found.dedup();
    let names: Vec<&str> = found.iter().map(String::as_str).collect();
    refuse_earlier_run(dir, &names)
}

/// What of a multi-seed run `dir` holds: its summaries and `seed-K` runs, by name, sorted.
/// (`config.toml` alone does not tell one: a single run writes one too.)
pub(crate) fn seed_outputs_in(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = ["seeds.csv", "seeds.json"]
        .into_iter()
        .filter(|name| dir.join(name).symlink_metadata().is_ok())
        .map(str::to_string)
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        found.extend(
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| {
                    name.strip_prefix("seed-")
                        .is_some_and(|seed| seed.parse::<u64>().is_ok())
                }),
        );
    }
    found.sort();
    found
}

fn remove_if_present(path: &Path) -> Result<(), TrainError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(TrainError::file(path, format!("cannot remove: {e}")))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_count_past_the_bound_is_refused_without_counting() {
        let started = std::time::Instant::now();
        assert!(
            "10000000000000"
                .parse::<SeedList>()
                .unwrap_err()
                .contains("at most 1000 seeds")
        );
        assert!(started.elapsed().as_millis() < 100);
        assert_eq!("1000".parse::<SeedList>().unwrap().seeds().len(), 1000);
        let many = (1..=1001)
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert!(many.parse::<SeedList>().is_err());
    }

    #[test]
    fn a_count_means_seeds_from_one_and_a_list_names_them() {
        let count: SeedList = "5".parse().unwrap();
        assert_eq!(count.seeds(), &[1, 2, 3, 4, 5]);
        assert_eq!(count.to_string(), "5");
        let list: SeedList = "3, 7,11".parse().unwrap();
        assert_eq!(list.seeds(), &[3, 7, 11]);
        assert_eq!(list.to_string(), "3,7,11");
        for bad in ["0", "x", "1,1", "1,-2", ","] {
            assert!(bad.parse::<SeedList>().is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_is_summarised_only_when_every_seed_has_it() {
        let row = |seed, validation| SeedRow {
            seed,
            validation_accuracy: validation,
            test_accuracy: 99.0 + seed as f64 / 10.0,
            test_loss: 0.03,
            train_seconds: 20.0,
        };
        let with = SeedsSummary::of(&[row(1, Some(99.5)), row(2, Some(99.7))]).unwrap();
        assert_eq!(with.validation_accuracy.unwrap().mean, 99.6);
        assert!((with.test_accuracy.mean - 99.15).abs() < 1e-9);
        let without = SeedsSummary::of(&[row(1, Some(99.5)), row(2, None)]).unwrap();
        assert!(without.validation_accuracy.is_none());
        assert!(SeedsSummary::of(&[]).is_none());
        let csv = csv_text(SEEDS_CSV_COLUMNS, [row(3, None).csv_fields()].into_iter());
        assert!(csv.ends_with("\n3,,99.30,0.0300,20.0\n"), "{csv}");
    }
}
