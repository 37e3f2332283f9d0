//! PyTorch and this project compute the same function: weights saved by PyTorch (see
//! scripts/make_fixture.py) give PyTorch's logits here, and exported weights go back unchanged.

use burn::prelude::*;
use burn::tensor::FloatDType;
use data::PIXELS;
use infer::{DigitClassifier, ModelSource};
use safetensors::SafeTensors;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The fixture's images and PyTorch's logits for them.
fn expected() -> (Vec<[u8; PIXELS]>, Vec<f32>) {
    let bytes = std::fs::read(fixture("expected.safetensors")).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let images = file.tensor("images").unwrap();
    let images = images
        .data()
        .chunks_exact(PIXELS)
        .map(|chunk| chunk.try_into().unwrap())
        .collect();
    let logits = file
        .tensor("logits")
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (images, logits)
}

fn logits(source: &ModelSource, images: &[[u8; PIXELS]]) -> Vec<f32> {
    let device = Device::flex();
    let classifier = DigitClassifier::load(source, device.clone()).unwrap();
    // The same input path as inference and training: ToTensor()'s scaling.
    let inputs = data::images_to_input(images.iter(), &device);
    classifier
        .network()
        .forward(inputs)
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap()
}

fn assert_close(ours: &[f32], theirs: &[f32], tolerance: f32) {
    assert_eq!(ours.len(), theirs.len());
    let worst = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < tolerance, "largest logit difference {worst}");
}

#[test]
fn pytorch_state_dicts_give_pytorchs_logits() {
    let (images, expected) = expected();
    assert_eq!(images.len(), 32);
    for name in ["tutorial.pt", "tutorial.safetensors"] {
        let ours = logits(&ModelSource::Weights(fixture(name)), &images);
        assert_close(&ours, &expected, 1e-5);
    }
}

#[test]
fn exported_weights_load_back_to_the_same_function() {
    let (images, _) = expected();
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("shipped.safetensors");
    let shipped = DigitClassifier::load(&ModelSource::Shipped, device).unwrap();
    shipped
        .network()
        .save_pytorch_safetensors(&exported)
        .unwrap();
    let before = logits(&ModelSource::Shipped, &images);
    let after = logits(&ModelSource::Weights(exported), &images);
    // Folding the input standardisation into the first convolution reorders float sums.
    assert_close(&after, &before, 1e-4);
}

#[test]
fn a_state_dict_with_wrong_tensors_is_refused_naming_them() {
    let error = DigitClassifier::load(&ModelSource::Weights(fixture("broken.pt")), Device::flex())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("broken.pt"), "{error}");
    assert!(error.contains("missing 7.bias"), "{error}");
    assert!(error.contains("unexpected 8.weight"), "{error}");
    assert!(!error.contains('\n'), "{error}");
}

/// `model.half()` or `model.double()` before saving: the same names and shapes, another
/// precision. Loaded as f32, they compute the same function (to f16's precision).
#[test]
fn weights_saved_in_another_precision_load_as_f32() {
    let (images, _) = expected();
    let dir = tempfile::tempdir().unwrap();
    let shipped = DigitClassifier::load(&ModelSource::Shipped, Device::flex()).unwrap();
    let before = logits(&ModelSource::Shipped, &images);
    for (dtype, tolerance) in [(FloatDType::F64, 1e-4), (FloatDType::F16, 0.1)] {
        let path = dir.path().join(format!("{dtype:?}.safetensors"));
        let network = shipped.network().clone().with_parameters_in(dtype);
        network.save_pytorch_safetensors(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let stored = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(
            format!("{:?}", stored.tensor("0.weight").unwrap().dtype()),
            format!("{dtype:?}"),
            "the file keeps the precision"
        );
        assert_close(
            &logits(&ModelSource::Weights(path), &images),
            &before,
            tolerance,
        );
    }
}

/// A file whose weights hold a NaN (a diverged run, a damaged file) is refused on loading,
/// naming the file and the tensor, instead of answering NaN for every image.
#[test]
fn weights_holding_nan_are_refused_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nan.safetensors");
    let shipped = DigitClassifier::load(&ModelSource::Shipped, Device::flex()).unwrap();
    shipped.network().save_pytorch_safetensors(&path).unwrap();
    // The classifier's first bias value becomes a NaN, in place.
    let mut bytes = std::fs::read(&path).unwrap();
    let offset = {
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let bias = file.tensor("7.bias").unwrap();
        bias.data().as_ptr() as usize - bytes.as_ptr() as usize
    };
    bytes[offset..offset + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    let error = DigitClassifier::load(&ModelSource::Weights(path), Device::flex())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("nan.safetensors"), "{error}");
    assert!(
        error.contains("NaN") && error.contains("first in 7.bias"),
        "{error}"
    );
}
