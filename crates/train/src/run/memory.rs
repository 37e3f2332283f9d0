//! Whether a recipe's training fits in this machine's memory: checked when a run is prepared,
//! not when its recipe is read, so reading a recipe never depends on the machine.

use crate::recipe::{ConfigError, RunConfig};

/// A recipe that would not fit: the dotted key to blame, and why.
type Invalid = (String, String);

/// Refuses a batch whose working set cannot fit in `available` bytes, before anything is
/// allocated: an absurd `training.batch_size` would otherwise abort the process on a
/// failed allocation. Estimated from the network's shapes, in f32: each image's
/// activations and their gradients, and the weights with their gradients and Adam's two
/// moments.
fn fits_in_memory(config: &RunConfig, available: Option<u64>) -> Result<(), Invalid> {
    let Some(available) = available else {
        return Ok(());
    };
    let floats_per_image = config.model.training_floats_per_image().unwrap_or(0);
    let parameters = config.model.parameter_count().unwrap_or(0);
    // A network too large for even one image is the model's fault, not the batch's.
    let one_image = floats_per_image
        .saturating_add(parameters.saturating_mul(4))
        .saturating_mul(4);
    if one_image > available {
        return Err((
            "model".into(),
            format!(
                "a network with {} and {} channels would need about {} MiB to train on a \
                 single image, more than the {} MiB of memory available",
                config.model.conv1_channels,
                config.model.conv2_channels,
                one_image >> 20,
                available >> 20
            ),
        ));
    }
    let bytes = (config.training.batch_size as u64)
        .saturating_mul(floats_per_image)
        .saturating_add(parameters.saturating_mul(4))
        .saturating_mul(4);
    if bytes <= available {
        return Ok(());
    }
    Err((
        "training.batch_size".into(),
        format!(
            "{} images a batch of a network with {} and {} channels would need about {} MiB, \
             more than the {} MiB of memory available; use a smaller batch or fewer \
             channels",
            config.training.batch_size,
            config.model.conv1_channels,
            config.model.conv2_channels,
            bytes >> 20,
            available >> 20
        ),
    ))
}

/// Refuses a recipe that cannot train in the memory this machine has free now; `origin`
/// names the recipe in the error.
pub(crate) fn check_memory(config: &RunConfig, origin: &str) -> Result<(), ConfigError> {
    fits_in_memory(config, available_memory()).map_err(|(key, reason)| ConfigError {
        origin: origin.to_string(),
        key,
        reason,
    })
}

/// Memory the system can give this process now (`MemAvailable` in `/proc/meminfo`), or `None`
/// where that is not known.
fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_too_large_for_memory_is_refused_before_any_allocation() {
        let config = RunConfig::default();
        let gib = 1u64 << 30;
        assert_eq!(fits_in_memory(&config, Some(gib)), Ok(()));
        assert_eq!(fits_in_memory(&config, None), Ok(()));
        let mut absurd = config.clone();
        absurd.training.batch_size = 100_000_000;
        let (key, reason) = fits_in_memory(&absurd, Some(64 * gib)).unwrap_err();
        assert_eq!(key, "training.batch_size");
        assert!(
            reason.contains("MiB") && reason.contains("10 and 20 channels"),
            "{reason}"
        );
        // A network too wide for one image is blamed on the model, not the batch.
        let mut wide = config.clone();
        wide.model.conv1_channels = 400_000;
        let (key, reason) = fits_in_memory(&wide, Some(gib)).unwrap_err();
        assert_eq!(key, "model", "{reason}");
        // With this machine's memory: no machine holds terabytes.
        absurd.training.batch_size = 1_000_000_000;
        let (key, _) = fits_in_memory(&absurd, available_memory()).unwrap_err();
        assert_eq!(key, "training.batch_size");
    }
}
