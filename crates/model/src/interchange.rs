//! Weights that cross over to and from PyTorch, laid out as the tutorial's `nn.Sequential`:
//! `0` is the first convolution, `3` the second, `7` the linear classifier; `Linear` weights
//! are stored `[out, in]` as PyTorch keeps them (Burn keeps `[in, out]`).

use crate::{Cnn, CnnConfig, InputNorm, one_line};
use burn::module::Param;
use burn::prelude::*;
use burn::store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot,
    PyTorchToBurnAdapter, PytorchStore, SafetensorsStore,
};
use std::path::{Path, PathBuf};

/// The largest weights file read: the tutorial's network is 30 KB, and no config this project
/// accepts comes near this.
const MAX_WEIGHTS_BYTES: u64 = 1 << 30;

/// Burn's layer names and the tutorial's `nn.Sequential` indices for the same layers.
const LAYERS: [(&str, &str); 3] = [("conv1", "0"), ("conv2", "3"), ("classifier", "7")];

/// The name a parameter has in the tutorial's PyTorch files: `classifier.bias` → `7.bias`.
pub fn pytorch_name(name: &str) -> String {
    LAYERS
        .iter()
        .find_map(|(burn, torch)| {
            let rest = name.strip_prefix(burn)?.strip_prefix('.')?;
            Some(format!("{torch}.{rest}"))
        })
        .unwrap_or_else(|| name.to_string())
}

/// Why weights could not be moved; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum InterchangeError {
    /// The file could not be read or decoded.
    #[error("{}: {reason}", path.display())]
    Unreadable {
        /// The weights file.
        path: PathBuf,
        /// What went wrong, on one line.
        reason: String,
    },
    /// The file could not be written.
    #[error("{}: cannot write: {reason}", path.display())]
    Unwritable {
        /// The file being written.
        path: PathBuf,
        /// What went wrong, on one line.
        reason: String,
    },
    /// The file holds other tensors than the tutorial network's.
    #[error("{}: does not hold the tutorial network's weights: {}", path.display(), problems.join("; "))]
    Mismatch {
        /// The weights file.
        path: PathBuf,
        /// Each missing, unexpected or misshapen tensor.
        problems: Vec<String>,
    },
}

/// The file formats a PyTorch `state_dict` comes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightsFormat {
    /// `torch.save(model.state_dict(), "….pt")`.
    Pytorch,
    /// `safetensors.torch.save_file(model.state_dict(), "….safetensors")`.
    Safetensors,
}

impl WeightsFormat {
    /// Told by the extension: `.pt`/`.pth` or `.safetensors`.
    pub fn of(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "pt" | "pth" => Some(Self::Pytorch),
            "safetensors" => Some(Self::Safetensors),
            _ => None,
        }
    }
}

impl Cnn {
    /// The same function of `ToTensor()` inputs with the input standardisation folded into
    /// the first convolution: `w' = w / std`, `b' = b - mean/std · Σw`. Exact, because the
    /// convolution has no padding: every tap sees a real pixel.
    pub fn with_input_norm_folded(self) -> Self {
        let InputNorm { mean, std } = self.input_norm;
        if self.input_norm == InputNorm::IDENTITY {
            return self;
        }
        let mut cnn = self;
        let weight = cnn.conv1.weight.val();
        let [out_channels, ..] = weight.dims();
        let tap_sums = weight
            .clone()
            .sum_dim(1)
            .sum_dim(2)
            .sum_dim(3)
            .reshape([out_channels]);
        cnn.conv1.weight = cnn.conv1.weight.map(|w| w.div_scalar(std));
        let shift = tap_sums.mul_scalar(mean / std);
        cnn.conv1.bias = Some(match cnn.conv1.bias.take() {
            Some(bias) => bias.map(|b| b - shift),
            None => Param::from_tensor(shift.neg()),
        });
        cnn.input_norm = InputNorm::IDENTITY;
        cnn
    }

    /// Writes the weights as a safetensors file PyTorch's `load_state_dict` takes for the
    /// tutorial's model (normalisation folded in, so `ToTensor()` inputs are all it needs).
    /// The file is written beside its target and renamed over it.
    pub fn save_pytorch_safetensors(&self, path: &Path) -> Result<(), InterchangeError> {
        let folded = self.clone().with_input_norm_folded();
        let mut store = SafetensorsStore::from_file(path)
            .overwrite(true)
            .with_to_adapter(BurnToPyTorchAdapter)
            .metadata("format", "pt")
            .remap(renaming(Direction::ToPytorch));
        folded
            .save_into(&mut store)
            .map_err(|e| InterchangeError::Unwritable {
                path: path.to_path_buf(),
                reason: one_line(&e.to_string()),
            })
    }

    /// Loads a PyTorch `state_dict` of the tutorial's model (`.pt`/`.pth` from `torch.save`,
    /// or `.safetensors`) into the tutorial-shaped network, which then takes `ToTensor()`
    /// inputs as the PyTorch model did.
    pub fn load_pytorch_weights(path: &Path, device: &Device) -> Result<Self, InterchangeError> {
        let unreadable = |reason: String| InterchangeError::Unreadable {
            path: path.to_path_buf(),
            reason,
        };
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(unreadable("not found".into()));
            }
            Err(e) => return Err(unreadable(e.to_string())),
            Ok(meta) if meta.is_dir() => {
                return Err(unreadable("a directory, not a weights file".into()));
            }
            Ok(meta) if !meta.is_file() => return Err(unreadable("not a regular file".into())),
            Ok(meta) if meta.len() > MAX_WEIGHTS_BYTES => {
                return Err(unreadable(format!(
                    "larger than the {} MiB a weights file may be",
                    MAX_WEIGHTS_BYTES >> 20
                )));
            }
            Ok(_) => {}
        }
        let format = WeightsFormat::of(path).ok_or_else(|| {
            unreadable("unknown weights format (expected .pt, .pth or .safetensors)".into())
        })?;
        let mut cnn = CnnConfig::new().init(device);
        // The indices are the tutorial's own (0, 3, 7); Burn's stores would otherwise
        // renumber gaps in `nn.Sequential` indices to 0, 1, 2.
        let result = match format {
            WeightsFormat::Pytorch => {
                let mut store = PytorchStore::from_file(path)
                    .allow_partial(true)
                    .validate(false)
                    .map_indices_contiguous(false)
                    .remap(renaming(Direction::FromPytorch));
                cnn.load_from(&mut store)
                    .map_err(|e| unreadable(one_line(&e.to_string())))?
            }
            WeightsFormat::Safetensors => {
                let mut store = SafetensorsStore::from_file(path)
                    .allow_partial(true)
                    .validate(false)
                    .map_indices_contiguous(false)
                    .with_from_adapter(PyTorchToBurnAdapter)
                    .remap(renaming(Direction::FromPytorch));
                cnn.load_from(&mut store)
                    .map_err(|e| unreadable(one_line(&e.to_string())))?
            }
        };
        let problems = problems(&result);
        if problems.is_empty() {
            Ok(cnn)
        } else {
            Err(InterchangeError::Mismatch {
                path: path.to_path_buf(),
                problems,
            })
        }
    }
}

/// Which way tensor names are translated.
#[derive(Clone, Copy)]
enum Direction {
    ToPytorch,
    FromPytorch,
}

/// The [`LAYERS`] renaming as a store's key remapper (`conv1.weight` ⇄ `0.weight`).
fn renaming(direction: Direction) -> KeyRemapper {
    let patterns = LAYERS.iter().map(|(burn, torch)| match direction {
        Direction::ToPytorch => (format!(r"^{burn}\."), format!("{torch}.")),
        Direction::FromPytorch => (format!(r"^{torch}\."), format!("{burn}.")),
    });
    KeyRemapper::from_pattern_iter(patterns).expect("layer names are valid patterns")
}

/// What went wrong in a load, in PyTorch's names.
fn problems(result: &ApplyResult) -> Vec<String> {
    let mut problems = Vec::new();
    let missing: Vec<String> = result.missing.iter().map(|(p, _)| torch_name(p)).collect();
    if !missing.is_empty() {
        problems.push(format!("missing {}", missing.join(", ")));
    }
    let unused: Vec<String> = result.unused.iter().map(|p| torch_name(p)).collect();
    if !unused.is_empty() {
        problems.push(format!("unexpected {}", unused.join(", ")));
    }
    for error in &result.errors {
        problems.push(match error {
            ApplyError::ShapeMismatch {
                path,
                expected,
                found,
            } => format!(
                "{} has shape {:?}, expected {:?}",
                torch_name(path),
                torch_shape(path, found),
                torch_shape(path, expected)
            ),
            other => one_line(&other.to_string()),
        });
    }
    problems
}

/// A shape as the PyTorch file has it: the adapter compares a `Linear` weight after turning
/// it to Burn's `[in, out]`, and the file holds `[out, in]`.
fn torch_shape(path: &str, shape: &[usize]) -> Vec<usize> {
    let mut shape = shape.to_vec();
    if path == "classifier.weight" {
        shape.reverse();
    }
    shape
}

/// A Burn parameter path in the tutorial's naming (`classifier.weight` → `7.weight`).
fn torch_name(path: &str) -> String {
    LAYERS
        .iter()
        .find_map(|(burn, torch)| {
            path.strip_prefix(burn)
                .filter(|rest| rest.starts_with('.'))
                .map(|rest| format!("{torch}{rest}"))
        })
        .unwrap_or_else(|| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::assert_close;
    use burn::tensor::Distribution;

    fn logits(cnn: &Cnn, images: Tensor<4>) -> Vec<f32> {
        cnn.forward(images)
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap()
    }

    #[test]
    fn folding_keeps_the_function() {
        let device = Device::flex();
        let cnn = CnnConfig::new()
            .with_input_mean(0.1307)
            .with_input_std(0.3081)
            .init(&device);
        let images = Tensor::<4>::random([4, 1, 28, 28], Distribution::Default, &device);
        let folded = cnn.clone().with_input_norm_folded();
        assert_eq!(folded.input_norm, InputNorm::IDENTITY);
        assert_close(
            &logits(&cnn, images.clone()),
            &logits(&folded, images),
            1e-4,
        );
    }

    #[test]
    fn safetensors_round_trip_uses_tutorial_names() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let cnn = CnnConfig::new()
            .with_input_mean(0.5)
            .with_input_std(0.25)
            .init(&device);
        cnn.save_pytorch_safetensors(&path).unwrap();

        let bytes = std::fs::read(&path).unwrap();
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut names: Vec<String> = file.names().into_iter().map(String::from).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "0.bias", "0.weight", "3.bias", "3.weight", "7.bias", "7.weight"
            ]
        );
        assert_eq!(file.tensor("7.weight").unwrap().shape(), [10, 500]);
        assert_eq!(file.tensor("0.weight").unwrap().shape(), [10, 1, 5, 5]);

        let back = Cnn::load_pytorch_weights(&path, &device).unwrap();
        let images = Tensor::<4>::random([3, 1, 28, 28], Distribution::Default, &device);
        assert_close(&logits(&cnn, images.clone()), &logits(&back, images), 1e-4);
    }

    #[test]
    fn bad_files_are_named_with_what_is_wrong() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let err = Cnn::load_pytorch_weights(&dir.path().join("none.pt"), &device).unwrap_err();
        assert!(err.to_string().contains("none.pt: not found"), "{err}");
        let folder = dir.path().join("folder.pt");
        std::fs::create_dir(&folder).unwrap();
        let err = Cnn::load_pytorch_weights(&folder, &device).unwrap_err();
        assert!(err.to_string().contains("folder.pt: a directory"), "{err}");

        let odd = dir.path().join("weights.bin");
        std::fs::write(&odd, b"0000").unwrap();
        let err = Cnn::load_pytorch_weights(&odd, &device).unwrap_err();
        assert!(err.to_string().contains("unknown weights format"), "{err}");

        let junk = dir.path().join("junk.safetensors");
        std::fs::write(&junk, b"not a safetensors file").unwrap();
        let err = Cnn::load_pytorch_weights(&junk, &device)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(&junk.display().to_string()), "{err}");
        assert!(!err.contains('\n'), "{err}");

        // A smaller classifier: one tensor mis-shaped. The other layers' names are right.
        let other = dir.path().join("other.safetensors");
        CnnConfig::new()
            .with_conv2_channels(16)
            .init(&device)
            .save_pytorch_safetensors(&other)
            .unwrap();
        let err = Cnn::load_pytorch_weights(&other, &device)
            .unwrap_err()
            .to_string();
        assert!(err.contains("3.weight has shape [16, 10, 3, 3]"), "{err}");
        // The classifier's weight in PyTorch's own `[out, in]`, as the file holds it.
        assert!(
            err.contains("7.weight has shape [10, 400], expected [10, 500]"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
    }
}
