//! The network and its preprocessing in a browser: the page's "on this device" mode.
//!
//! The same code the server runs, compiled to wasm32: `data`'s preprocessing from the image's
//! bytes, `model`'s network through Burn (its own layers: the fused kernels are host-only) and
//! `model`'s reading of the probabilities. The answer is the server's `/api/classify` JSON, so
//! the page shows either without knowing which answered. `cargo xtask web` builds the site.

#![deny(unsafe_code)]

use base64::Engine;
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use model::{Cnn, InferenceConfig, Prediction, PredictionJson, RecordError, VerdictRule};
use serde::Serialize;
use std::path::Path;
use wasm_bindgen::prelude::*;

/// Why the model could not be loaded or an image not read; the page shows it as it is.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// `config.toml` has no readable `[model]` section.
    #[error("config.toml: cannot read: {0}")]
    Config(String),
    /// `model.bpk` is damaged, or not the network `config.toml` describes.
    #[error("model.bpk: cannot load: {0}")]
    Record(String),
    /// The image's bytes are not a picture of a digit this page can read.
    #[error(transparent)]
    Image(#[from] data::PreprocessError),
    /// The network's output could not be read.
    #[error(transparent)]
    Classify(#[from] model::ClassifyError),
}

/// One image's answer: the server's `/api/classify` JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Answer {
    /// The digit and the probabilities, in the one schema.
    #[serde(flatten)]
    pub prediction: PredictionJson,
    /// The 28×28 image the network saw, as a base64 PNG.
    pub preprocessed: String,
}

/// The network, loaded in the page.
#[wasm_bindgen]
pub struct OnDevice {
    cnn: Cnn,
    device: Device,
    rule: VerdictRule,
}

#[wasm_bindgen]
impl OnDevice {
    /// The network `config` (a run's `config.toml`) describes, with the weights of `record`
    /// (its `model.bpk`).
    #[wasm_bindgen(constructor)]
    pub fn new(config: &str, record: Vec<u8>) -> Result<OnDevice, JsError> {
        Ok(Self::load(config, record)?)
    }

    /// The answer for an image file's bytes (PNG, JPEG, …), as JSON text; `name` names the
    /// file in errors.
    pub fn classify(&self, image: &[u8], name: &str) -> Result<String, JsError> {
        let answer = self.answer(image, name)?;
        Ok(serde_json::to_string(&answer)?)
    }
}

impl OnDevice {
    /// [`OnDevice::new`] with a Rust error.
    pub fn load(config: &str, record: Vec<u8>) -> Result<Self, WebError> {
        let InferenceConfig {
            model: config,
            verdict: rule,
        } = InferenceConfig::parse(config).map_err(WebError::Config)?;
        let device = Device::flex();
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(record))
            .map_err(|e| WebError::Record(model::one_line(&e.to_string())))?;
        let cnn = config
            .init_with_record(record, &device)
            .map_err(|error| match error {
                RecordError::Config(e) => WebError::Config(e.to_string()),
                other => WebError::Record(other.to_string()),
            })?;
        Ok(Self { cnn, device, rule })
    }

    /// The answer for an image file's bytes; `name` names the file in errors.
    pub fn answer(&self, image: &[u8], name: &str) -> Result<Answer, WebError> {
        let pixels = data::preprocess_bytes(image, Path::new(name))?;
        let input = data::images_to_input(std::iter::once(&pixels), &self.device);
        let prediction = Prediction::from_probabilities(self.cnn.probabilities(input), &self.rule)?
            .pop()
            .ok_or(model::ClassifyError::Shape {
                values: 0,
                images: 1,
            })?;
        let png = data::preprocessed_png(&pixels);
        Ok(Answer {
            prediction: PredictionJson::from(&prediction),
            preprocessed: base64::engine::general_purpose::STANDARD.encode(png),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use infer::{DigitClassifier, ModelSource};

    fn shipped(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../infer/model")
            .join(name);
        std::fs::read(path).unwrap()
    }

    fn on_device() -> OnDevice {
        let config = String::from_utf8(shipped("config.toml")).unwrap();
        OnDevice::load(&config, shipped("model.bpk")).unwrap()
    }

    /// The browser's answer is the server's: the same digit, probabilities and picture for
    /// every sample digit.
    #[test]
    fn the_answer_is_what_infer_and_the_server_give() {
        let reader = on_device();
        let server = DigitClassifier::load(&ModelSource::Shipped, Device::flex()).unwrap();
        let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/digits");
        let mut checked = 0;
        for entry in std::fs::read_dir(samples).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let answer = reader.answer(&bytes, "sample").unwrap();
            let pixels = data::preprocess_bytes(&bytes, &path).unwrap();
            let expected = PredictionJson::from(&server.classify(&[pixels]).unwrap()[0]);
            assert_eq!(answer.prediction, expected, "{}", path.display());
            let png = base64::engine::general_purpose::STANDARD.decode(&answer.preprocessed);
            assert_eq!(png.unwrap(), data::preprocessed_png(&pixels));
            checked += 1;
        }
        assert!(checked >= 8, "only {checked} samples");
    }

    #[test]
    fn a_broken_config_record_or_image_is_named() {
        let record = shipped("model.bpk");
        let error = OnDevice::load("[model]\nconv1_channel = 3\n", record.clone())
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.starts_with("config.toml: ") && error.contains("conv1_channel"),
            "{error}"
        );
        let config = "[model]\nconv1_channels = 12\n";
        let error = OnDevice::load(config, record.clone())
            .err()
            .unwrap()
            .to_string();
        assert!(error.starts_with("model.bpk: cannot load"), "{error}");
        let error = OnDevice::load("[model]\n", record[..100].to_vec())
            .err()
            .unwrap();
        assert!(error.to_string().starts_with("model.bpk: "), "{error}");
        let error = on_device()
            .answer(b"not a picture", "notes.png")
            .unwrap_err();
        assert!(error.to_string().starts_with("notes.png: "), "{error}");
    }
}
