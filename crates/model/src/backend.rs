//! The run-time choice of backend, shared by every binary that builds a [`Device`].

use burn::tensor::Device;
use std::fmt;
use std::str::FromStr;

/// A backend this project knows how to build a device for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// Burn's pure-Rust CPU backend: the fast default.
    #[default]
    Flex,
    /// The older ndarray CPU backend, deprecated upstream and about 13× slower here.
    Ndarray,
    /// GPUs (and software Vulkan) through wgpu.
    Wgpu,
}

impl BackendKind {
    /// Every backend, in the order help texts list them.
    pub const ALL: [BackendKind; 3] = [BackendKind::Flex, BackendKind::Ndarray, BackendKind::Wgpu];

    /// The name used on the command line and in `summary.json`.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Flex => "flex",
            BackendKind::Ndarray => "ndarray",
            BackendKind::Wgpu => "wgpu",
        }
    }

    /// Initialises the backend and returns its device (without autodiff; call `.autodiff()`
    /// on it to train) and a description of what was picked.
    ///
    /// For wgpu this acquires the adapter now, so a machine without one fails here with an
    /// error instead of a panic on the first tensor.
    pub fn init(self) -> Result<ReadyDevice, BackendError> {
        match self {
            BackendKind::Flex => Ok(ReadyDevice {
                device: Device::flex(),
                description: "flex (CPU)".into(),
            }),
            // Kept selectable for comparison; its deprecation is acknowledged here only.
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            BackendKind::Ndarray => Ok(ReadyDevice {
                device: Device::ndarray(),
                description: "ndarray (CPU)".into(),
            }),
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => {
                let (device, setup) = Device::wgpu_options()
                    .init_with_setup()
                    .map_err(|e| BackendError::NoAdapter(crate::one_line(&e.to_string())))?;
                let info = setup.adapter.get_info();
                let driver = [info.driver.as_str(), info.driver_info.as_str()]
                    .into_iter()
                    .filter(|part| !part.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                Ok(ReadyDevice {
                    device,
                    description: format!(
                        "wgpu on {} ({:?}, {:?}; {driver})",
                        info.name, info.device_type, info.backend
                    ),
                })
            }
            #[cfg(not(all(feature = "ndarray", feature = "wgpu")))]
            missing => Err(BackendError::NotBuilt(missing)),
        }
    }

    /// Whether this build includes the backend: flex always, the others when the `model`
    /// feature of the same name was on (`cargo xtask` turns it on for the `--backend` it is given).
    pub fn is_built(self) -> bool {
        match self {
            BackendKind::Flex => true,
            BackendKind::Ndarray => cfg!(feature = "ndarray"),
            BackendKind::Wgpu => cfg!(feature = "wgpu"),
        }
    }
}

/// A backend's device, ready for tensors.
#[derive(Clone, Debug)]
pub struct ReadyDevice {
    /// Where tensors go; without autodiff (call `.autodiff()` on it to train).
    pub device: Device,
    /// What was picked, for the user: e.g. the GPU adapter's name, type and API.
    pub description: String,
}

/// Why a backend could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendError {
    /// wgpu found no usable adapter: no GPU driver, no Vulkan/Metal/DX12/GL implementation.
    NoAdapter(String),
    /// The binary was compiled without this backend, to keep the build short.
    NotBuilt(BackendKind),
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::NoAdapter(reason) => write!(
                f,
                "wgpu found no usable GPU adapter ({reason}); install your GPU's driver, or Mesa's \
                 software Vulkan (Debian/Ubuntu: mesa-vulkan-drivers) to try it without a GPU, \
                 or use --backend flex"
            ),
            BackendError::NotBuilt(kind) => write!(
                f,
                "this build has no {kind} backend (it is left out to keep the build short); \
                 build with `--features {kind}` (e.g. `cargo run -p infer --features {kind} -- ...`), \
                 or use `cargo xtask`, which adds it for `--backend {kind}`"
            ),
        }
    }
}

impl std::error::Error for BackendError {}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A backend name that is not one of [`BackendKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownBackend(pub String);

impl fmt::Display for UnknownBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown backend `{}` (expected flex, ndarray or wgpu)",
            self.0
        )
    }
}

impl std::error::Error for UnknownBackend {}

impl FromStr for BackendKind {
    type Err = UnknownBackend;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        BackendKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| UnknownBackend(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in BackendKind::ALL {
            assert_eq!(kind.name().parse::<BackendKind>(), Ok(kind));
        }
        assert!("cuda".parse::<BackendKind>().is_err());
    }

    #[test]
    fn a_backend_left_out_of_the_build_is_refused_naming_its_feature() {
        assert!(BackendKind::Flex.is_built());
        for kind in BackendKind::ALL {
            let message = BackendError::NotBuilt(kind).to_string();
            assert!(message.contains(&format!("--features {kind}")), "{message}");
            if !kind.is_built() {
                assert_eq!(kind.init().err(), Some(BackendError::NotBuilt(kind)));
            }
        }
    }
}
