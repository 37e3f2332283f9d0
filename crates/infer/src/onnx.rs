//! The network as an ONNX model, for runtimes outside Burn (onnxruntime, browsers, phones).
//!
//! Burn's exporter runs the network's forward pass once on a capture device and writes the
//! operations it saw. There the fused flex kernels do not apply, so `Cnn::forward` runs Burn's
//! own layers, the operations ONNX has: `Sub`/`Div` for the input standardisation,
//! `Conv`, `Relu`, `MaxPool`, `Reshape`, `MatMul` and `Add`.
//!
//! The exporter is the `onnx` cargo feature; without it only the model's interface is here.

#[cfg(feature = "onnx")]
pub use exporter::{OnnxError, onnx_bytes};

/// The input's name in the ONNX graph: `[batch, 1, 28, 28]` float32 pixels scaled to
/// `[0, 1]` (as `ToTensor()` and [`data::pixel_to_input`] scale them), the batch axis symbolic.
pub const INPUT_NAME: &str = "pixels";

/// The output's name in the ONNX graph: `[batch, 10]` float32 logits (softmax gives the
/// probabilities).
pub const OUTPUT_NAME: &str = "logits";

#[cfg(feature = "onnx")]
mod exporter {
    use super::{INPUT_NAME, OUTPUT_NAME};
    use burn::prelude::*;
    use burn_onnx::export::{AxisSpec, InputSpec, OnnxExporter};
    use model::{Cnn, IMAGE_SIDE};
    use onnx_ir::{Message, ModelProto};

    /// Why the network could not be written as ONNX.
    #[derive(Debug, thiserror::Error)]
    #[error("cannot export as ONNX: {0}")]
    pub struct OnnxError(String);

    /// The ONNX file's bytes for `cnn`, with a dynamic batch axis: any number of images per call.
    pub fn onnx_bytes(cnn: &Cnn) -> Result<Vec<u8>, OnnxError> {
        let device = Device::flex();
        let images = |count| Tensor::<4>::zeros([count, 1, IMAGE_SIDE, IMAGE_SIDE], &device);
        // Two traces with different batch sizes tell the batch axis from the fixed ones.
        let specs = [InputSpec::new([
            AxisSpec::dynamic("batch"),
            AxisSpec::Static,
            AxisSpec::Static,
            AxisSpec::Static,
        ])];
        let model = OnnxExporter::new()
            .export_dynamic(cnn, images(1), images(2), &specs, |cnn: &Cnn, x| {
                cnn.forward(x)
            })
            .map_err(|e| OnnxError(model::one_line(&e.to_string())))?;
        named(model.as_bytes())
    }

    /// The model in `bytes` with its input called [`INPUT_NAME`] and its output [`OUTPUT_NAME`]
    /// (the exporter names them after its internal tensor ids), wherever the graph refers to them.
    fn named(bytes: &[u8]) -> Result<Vec<u8>, OnnxError> {
        let fail = |e: &dyn std::fmt::Display| OnnxError(model::one_line(&e.to_string()));
        let mut model = ModelProto::parse_from_bytes(bytes).map_err(|e| fail(&e))?;
        let graph = model.graph.mut_or_insert_default();
        let (Some(input), Some(output)) = (graph.input.first(), graph.output.first()) else {
            return Err(OnnxError(
                "the exported graph has no input or output".into(),
            ));
        };
        let renames = [
            (input.name.clone(), INPUT_NAME),
            (output.name.clone(), OUTPUT_NAME),
        ];
        let rename = |name: &mut String| {
            if let Some((_, new)) = renames.iter().find(|(old, _)| old == name) {
                *name = (*new).to_string();
            }
        };
        graph
            .input
            .iter_mut()
            .for_each(|value| rename(&mut value.name));
        graph
            .output
            .iter_mut()
            .for_each(|value| rename(&mut value.name));
        for node in &mut graph.node {
            node.input
                .iter_mut()
                .chain(node.output.iter_mut())
                .for_each(rename);
        }
        model.write_to_bytes().map_err(|e| fail(&e))
    }
}
