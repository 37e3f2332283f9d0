//! Checks and conversions over the network's six tensors, for weights that come from files:
//! another float precision is converted, and NaN or infinite values are found and named.

use crate::{Cnn, CnnConfig, InvalidModelConfig};
use burn::module::Param;
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::FloatDType;

/// Why a saved record did not become a network.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The config describes no network.
    #[error(transparent)]
    Config(#[from] InvalidModelConfig),
    /// The record's tensors do not fit the network the config describes.
    #[error("{0}")]
    Mismatch(String),
    /// A parameter holds NaN or an infinity, named as the network names it (`conv2.bias`).
    #[error("the weights hold NaN or infinite values (first in {0})")]
    NotFinite(&'static str),
}

impl CnnConfig {
    /// The network this config describes with the weights of `record`, as [`Cnn::checked`]
    /// leaves them: every reader of a saved model (a run, the shipped one, the page's) builds
    /// it here.
    pub fn init_with_record(
        &self,
        record: ModuleRecord,
        device: &Device,
    ) -> Result<Cnn, RecordError> {
        self.validate()?;
        self.init(device)
            .try_load_record(record)
            .map_err(|e| RecordError::Mismatch(crate::one_line(&e.to_string())))?
            .checked()
            .map_err(RecordError::NotFinite)
    }
}

impl Cnn {
    /// The network in f32, the precision it computes in, or the name of its first parameter
    /// holding NaN or an infinity: broken weights are refused where they are read rather than
    /// answering NaN for every image.
    pub fn checked(self) -> Result<Self, &'static str> {
        let cnn = self.with_parameters_in(FloatDType::F32);
        match cnn.non_finite_parameter() {
            Some(parameter) => Err(parameter),
            None => Ok(cnn),
        }
    }

    /// The network with every parameter in `dtype`. Weights saved in f16, bf16 or f64 become
    /// f32 this way, the precision the network computes in.
    pub fn with_parameters_in(mut self, dtype: FloatDType) -> Self {
        fn cast<const D: usize>(param: Param<Tensor<D>>, dtype: FloatDType) -> Param<Tensor<D>> {
            param.map(|tensor| tensor.cast(dtype))
        }
        for conv in [&mut self.conv1, &mut self.conv2] {
            conv.weight = cast(conv.weight.clone(), dtype);
            conv.bias = conv.bias.take().map(|bias| cast(bias, dtype));
        }
        let classifier = &mut self.classifier;
        classifier.weight = cast(classifier.weight.clone(), dtype);
        classifier.bias = classifier.bias.take().map(|bias| cast(bias, dtype));
        self
    }

    /// The name of the first parameter holding a NaN or an infinity (`conv2.bias`), if any:
    /// such a network answers NaN, and a damaged or diverged file is how it gets one.
    pub fn non_finite_parameter(&self) -> Option<&'static str> {
        fn finite<const D: usize>(param: &Param<Tensor<D>>) -> bool {
            param.val().is_finite().all().into_scalar::<bool>()
        }
        let optional = |bias: &Option<Param<Tensor<1>>>| bias.as_ref().is_none_or(finite);
        let checks = [
            ("conv1.weight", finite(&self.conv1.weight)),
            ("conv1.bias", optional(&self.conv1.bias)),
            ("conv2.weight", finite(&self.conv2.weight)),
            ("conv2.bias", optional(&self.conv2.bias)),
            ("classifier.weight", finite(&self.classifier.weight)),
            ("classifier.bias", optional(&self.classifier.bias)),
        ];
        checks
            .into_iter()
            .find_map(|(name, ok)| (!ok).then_some(name))
    }
}

#[cfg(test)]
mod tests {
    use crate::CnnConfig;
    use burn::prelude::*;
    use burn::tensor::{DType, Distribution, FloatDType};

    #[test]
    fn other_precisions_become_f32_and_compute_the_same_function() {
        let device = Device::flex();
        let cnn = CnnConfig::new().init(&device);
        let images = Tensor::<4>::random([3, 1, 28, 28], Distribution::Default, &device);
        let expected = cnn.forward(images.clone()).into_data();
        for dtype in [FloatDType::F64, FloatDType::F16] {
            let other = cnn.clone().with_parameters_in(dtype);
            assert_eq!(other.conv1.weight.val().dtype(), DType::from(dtype));
            let back = other.with_parameters_in(FloatDType::F32);
            assert_eq!(back.classifier.weight.val().dtype(), DType::F32);
            let logits = back.forward(images.clone()).into_data();
            // f16 keeps about three significant digits of each weight.
            logits.assert_approx_eq::<f32>(&expected, burn::tensor::Tolerance::absolute(0.05));
        }
    }

    #[test]
    fn a_nan_or_infinity_is_found_and_named() {
        let device = Device::flex();
        let mut cnn = CnnConfig::new().init(&device);
        assert_eq!(cnn.non_finite_parameter(), None);
        let bias = cnn.conv2.bias.take().unwrap();
        cnn.conv2.bias = Some(bias.map(|b| b.slice_fill(0..1, f32::INFINITY)));
        assert_eq!(cnn.non_finite_parameter(), Some("conv2.bias"));
        cnn.conv1.weight = cnn.conv1.weight.map(|w| w.mul_scalar(f32::NAN));
        assert_eq!(cnn.non_finite_parameter(), Some("conv1.weight"));
    }
}
