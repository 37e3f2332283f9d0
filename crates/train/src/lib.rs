//! Training the MNIST network with Burn's Learner: strict TOML configs, per-epoch reports and
//! checkpoints, and a run directory holding everything needed to reuse the model.

pub mod checkpoint;
pub mod classifier;
pub mod config;
pub mod fetch;
pub mod plots;
mod quiet;
pub mod report;
pub mod run;

pub use config::{ConfigError, RunConfig};
pub use run::{Summary, TrainOptions, train};
