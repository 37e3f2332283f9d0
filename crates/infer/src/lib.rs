//! Classifying pictures of digits with a trained network (the shipped one, any training
//! run's, or PyTorch weights), and scoring it on a labelled test set with figures.
//!
//! Everything that turns a network's output into a digit lives here, so the `infer`, `eval`
//! and `export` binaries, training's final score and any server built on this crate agree.

#![deny(unsafe_code)]

mod classify;
pub mod cli;
pub mod console;
mod evaluation;
pub mod figures;
mod files;
mod loading;
pub mod onnx;
pub mod outliers;
pub mod output;
pub mod pens;
mod seeds;

pub use classify::DigitClassifier;
pub use evaluation::{Evaluation, Misclassified};
pub use files::{
    Classified, FileError, FileResult, IMAGE_EXTENSIONS, InputError, classify_files,
    collect_images, save_dataset_images, save_preprocessed,
};
pub use loading::{LoadError, ModelInfo, ModelSource, run_data_dir, run_validation_split};
pub use model::{ClassifyError, Prediction};
pub use seeds::{Spread, seed_runs_in};

/// How this crate's binaries end: success, or the error on one line, with its causes when
/// it is an `anyhow` error (`error: cannot load the model: FILE: ...`), and a failing status.
pub fn exit_status(result: Result<(), impl std::fmt::Display>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            console::note(format_args!("error: {error:#}"));
            std::process::ExitCode::FAILURE
        }
    }
}
