//! The GPU path computes what the CPU path computes: same weights, same logits, same
//! gradients, same losses over a few training steps. Runs on any wgpu adapter, including
//! Mesa's software Vulkan (lavapipe), which CI installs.

use burn::data::dataloader::batcher::Batcher;
use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Gradients;
use data::{MnistBatch, MnistBatcher, MnistDataset, Split};
use model::{BackendKind, Cnn, CnnConfig};

/// Real test images: `count` of them from `start`.
fn test_batch(start: usize, count: usize, device: &Device) -> MnistBatch {
    let test = MnistDataset::load(&crate::root().join("data/mnist"), Split::Test).unwrap();
    let items = (start..start + count)
        .filter_map(|i| test.item(i))
        .collect();
    MnistBatcher::default().batch(items, device)
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_into_vec_as::<f32>().unwrap()
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Every parameter's gradient, in the module's order.
struct GradientCollector<'a> {
    grads: &'a Gradients,
    found: Vec<Vec<f32>>,
}

impl ModuleVisitor for GradientCollector<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let grad = param
            .val()
            .grad(self.grads)
            .expect("every parameter has a gradient");
        self.found.push(values(grad));
    }
}

fn loss(model: &Cnn, batch: MnistBatch) -> Tensor<1> {
    let logits = model.forward(batch.images);
    CrossEntropyLossConfig::new()
        .init(&logits.device())
        .forward(logits, batch.targets)
}

fn gradients(model: &Cnn, batch: MnistBatch) -> Vec<Vec<f32>> {
    let grads = loss(model, batch).backward();
    let mut collector = GradientCollector {
        grads: &grads,
        found: Vec::new(),
    };
    model.visit(&mut collector);
    collector.found
}

/// Losses of `steps` Adam steps from the same weights, one batch of 64 per step.
fn training_losses(record: &burn::store::ModuleRecord, device: &Device, steps: usize) -> Vec<f32> {
    let device = device.clone().autodiff();
    let mut model = CnnConfig::new().init(&device).load_record(record.clone());
    let mut optimizer = AdamConfig::new().with_epsilon(1e-8).init();
    let mut losses = Vec::with_capacity(steps);
    for step in 0..steps {
        let loss = loss(&model, test_batch(64 * step, 64, &device));
        losses.push(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(1e-3, model, grads);
    }
    losses
}

#[test]
#[ignore = "needs a Vulkan or GL driver (apt-get install mesa-vulkan-drivers runs it without a \
            GPU); run with `cargo test -p train --features wgpu -- --ignored`, as .ci/run does"]
fn flex_and_wgpu_compute_the_same_function() {
    let wgpu = BackendKind::Wgpu
        .init()
        .unwrap_or_else(|e| panic!("this test needs a wgpu adapter (CI installs lavapipe): {e}"))
        .device;
    let flex = Device::flex();
    flex.seed(3);
    let record = CnnConfig::new().init(&flex).into_record();
    let on = |device: &Device| CnnConfig::new().init(device).load_record(record.clone());

    // Inference: the same weights give the same logits on 128 real test images.
    let logits_flex = values(on(&flex).forward(test_batch(0, 128, &flex).images));
    let logits_wgpu = values(on(&wgpu).forward(test_batch(0, 128, &wgpu).images));
    let logit_gap = max_difference(&logits_flex, &logits_wgpu);
    assert!(logit_gap < 1e-4, "logits differ by {logit_gap}");

    // Backward: the same gradients for every parameter.
    let flex_ad = flex.clone().autodiff();
    let wgpu_ad = wgpu.clone().autodiff();
    let grads_flex = gradients(&on(&flex_ad), test_batch(0, 128, &flex_ad));
    let grads_wgpu = gradients(&on(&wgpu_ad), test_batch(0, 128, &wgpu_ad));
    assert_eq!(grads_flex.len(), 6, "weights and biases of three layers");
    for (i, (a, b)) in grads_flex.iter().zip(&grads_wgpu).enumerate() {
        let gap = max_difference(a, b);
        assert!(gap < 1e-3, "gradient of parameter {i} differs by {gap}");
    }

    // Training: a few optimizer steps follow the same path.
    let losses_flex = training_losses(&record, &flex, 4);
    let losses_wgpu = training_losses(&record, &wgpu, 4);
    let loss_gap = max_difference(&losses_flex, &losses_wgpu);
    assert!(loss_gap < 1e-3, "losses {losses_flex:?} vs {losses_wgpu:?}");
    assert!(
        losses_flex[3] < losses_flex[0],
        "training lowers the loss: {losses_flex:?}"
    );

    // A model trained on one backend loads on the other.
    let moved = on(&wgpu).into_record();
    let back = CnnConfig::new().init(&flex).load_record(moved);
    let again = values(back.forward(test_batch(0, 8, &flex).images));
    assert!(max_difference(&again, &logits_flex[..80]) < 1e-6);
}
