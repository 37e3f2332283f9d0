//! How the learning rate moves over a run, stepped once per batch.

use crate::recipe::{OptimizerSection, Schedule};
use burn::optim::lr_scheduler::LrSchedulerConfig;
use burn::optim::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::optim::lr_scheduler::linear::LinearLrSchedulerConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::lr_scheduler::sequential::SequentialLrSchedulerConfig;

/// The config's learning-rate schedule over a run of `steps` optimizer steps.
pub(super) fn learning_rate_schedule(
    o: &OptimizerSection,
    steps: usize,
) -> Result<ModuleLrScheduler, String> {
    let peak = o.learning_rate;
    let last = peak * o.final_lr_fraction;
    let steps = steps.max(2);
    match o.schedule {
        Schedule::Constant => Ok(peak.into()),
        Schedule::Cosine => CosineAnnealingLrSchedulerConfig::new(peak, steps)
            .with_min_lr(last)
            .init(),
        Schedule::OneCycle => {
            let warmup = ((steps as f64 * o.warmup_fraction).round() as usize).clamp(1, steps - 1);
            SequentialLrSchedulerConfig::new(
                vec![
                    LrSchedulerConfig::Linear(LinearLrSchedulerConfig::new(
                        peak / 25.0,
                        peak,
                        warmup,
                    )),
                    LrSchedulerConfig::Cosine(
                        CosineAnnealingLrSchedulerConfig::new(peak, steps - warmup)
                            .with_min_lr(last),
                    ),
                ],
                vec![warmup],
            )
            .init()
        }
    }
}
