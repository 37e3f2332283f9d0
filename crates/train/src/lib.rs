//! Training the MNIST network with Burn's Learner: strict TOML configs, per-epoch reports and
//! checkpoints, and a run directory holding everything needed to reuse the model.
//!
//! A run is two calls: [`PreparedRun::prepare`] checks everything and loads the data without
//! writing anything, and [`PreparedRun::train`] trains and writes the artifacts. The caller
//! owns the process: signals (through [`Hooks::interrupter`]) and everything printed.
//! [`SeedRuns`] trains one recipe with several seeds, each such a run, and summarises them.

#![deny(unsafe_code)]

pub mod checkpoint;
pub mod classifier;
pub mod config;
mod error;
pub mod fetch;
mod fit;
pub mod lock;
pub mod plots;
mod prefetch;
mod quiet;
pub mod report;
pub mod run;
pub mod seeds;
mod workers;

pub use burn::train::Interrupter;
pub use config::{ConfigError, RunConfig};
pub use error::TrainError;
pub use fit::Hooks;
pub use report::EpochRow;
pub use run::{
    Finished, PreparedRun, RUN_OUTPUTS, Resume, Summary, TrainOptions, default_artifact_dir,
};
pub use seeds::{SeedHooks, SeedList, SeedRow, SeedRuns, SeedsSummary, Spread};
