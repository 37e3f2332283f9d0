//! Training the MNIST network with Burn's Learner: strict TOML recipes, per-epoch reports and
//! checkpoints, and a run directory holding everything needed to reuse the model.
//!
//! Four rooms, each depending only on those before it:
//! - [`recipe`]: what to train, read from TOML and checked, without touching the machine;
//! - [`checkpoint`]: the records an epoch leaves behind, and finding the last whole one;
//! - `fit`: the loop (the Learner's set-up, the step, the schedule, the per-epoch report);
//! - [`run`]: one run in named phases: [`PreparedRun::prepare`] checks everything and loads
//!   the data without writing anything, [`PreparedRun::train`] trains and writes the
//!   artifacts; and [`seeds`], one recipe trained with several seeds and summarised.
//!
//! The caller owns the process: signals (through [`Hooks::interrupter`]) and everything
//! printed.

#![deny(unsafe_code)]

pub mod checkpoint;
mod error;
mod fit;
pub mod recipe;
pub mod run;
pub mod seeds;

pub use burn::train::Interrupter;
pub use error::TrainError;
pub use fit::Hooks;
pub use fit::report::EpochRow;
pub use recipe::{ConfigError, RunConfig};
pub use run::{Finished, PreparedRun, RUN_OUTPUTS, Resume, Summary, TrainOptions, default_run_dir};
pub use seeds::{SeedHooks, SeedList, SeedRow, SeedRuns, SeedsSummary};
