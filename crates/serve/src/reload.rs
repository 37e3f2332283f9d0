//! Loading the model again without a restart (SIGHUP): the new one is loaded, checked (its
//! checksum, its shapes, its values) and warmed beside the old one, then swapped in whole.
//! Requests in flight finish on the model they started with; a reload that fails leaves the
//! old model serving and says why.

use crate::api::AppState;
use burn::tensor::Device;
use infer::{DigitClassifier, LoadError, ModelInfo, ModelSource};

/// Where the model comes from, and how it is run: what a reload needs to load it again.
pub struct Reloader {
    /// The model's source, read again at each reload.
    pub source: ModelSource,
    /// The device it runs on.
    pub device: Device,
    /// Whether it averages over shifted copies (`--tta`).
    pub shifted_copies: bool,
}

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The model could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The model loaded but cannot classify.
    #[error("the reloaded model cannot classify: {0}")]
    Classify(infer::ClassifyError),
    /// The classifying thread has stopped.
    #[error(transparent)]
    Stopped(#[from] crate::queue::Unanswered),
    /// The loading thread panicked.
    #[error("loading panicked")]
    Panicked,
}

// By hand, not `#[from]`, which would also make it a source that `{:#}` prints again.
impl From<infer::ClassifyError> for ReloadError {
    fn from(error: infer::ClassifyError) -> Self {
        Self::Classify(error)
    }
}

impl Reloader {
    /// Loads and warms the model again, then answers with it; the old one is kept on any
    /// failure. The outcome is counted in the metrics either way.
    pub async fn reload(&self, state: &AppState) -> Result<ModelInfo, ReloadError> {
        let result = self.load_and_swap(state).await;
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        state.metrics.reloaded(outcome);
        result
    }

    async fn load_and_swap(&self, state: &AppState) -> Result<ModelInfo, ReloadError> {
        let (source, device, shifted) = (
            self.source.clone(),
            self.device.clone(),
            self.shifted_copies,
        );
        let (info, classifier) = tokio::task::spawn_blocking(move || {
            let info = source.info()?;
            let classifier = DigitClassifier::load(&source, device)?.with_shifted_copies(shifted);
            classifier.classify(&[[0; data::PIXELS]])?;
            Ok::<_, ReloadError>((info, classifier))
        })
        .await
        .map_err(|_| ReloadError::Panicked)??;
        state.queue.replace(classifier)?;
        state.metrics.serving(&info.label, &info.sha256);
        match state.model.write() {
            Ok(mut model) => *model = info.clone(),
            Err(poisoned) => *poisoned.into_inner() = info.clone(),
        }
        Ok(info)
    }
}
