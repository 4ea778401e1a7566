//! Where a tensor lives, and how the backend is picked at run time.

use crate::cuda::CudaDevice;
use crate::{Error, Result};

/// A compute device. Cloning is cheap (the CUDA device is reference-counted).
#[derive(Clone, Debug)]
pub enum Device {
    Cpu,
    Cuda(CudaDevice),
}

impl Device {
    pub fn cpu() -> Device {
        Device::Cpu
    }

    /// Opens CUDA device `ordinal`, or fails with `Error::CudaUnavailable` when the driver,
    /// NVRTC or a GPU is missing (never panics: the libraries are loaded dynamically).
    pub fn cuda(ordinal: usize) -> Result<Device> {
        Ok(Device::Cuda(CudaDevice::new(ordinal)?))
    }

    /// Picks the device from `TRELLIS2_DEVICE`: `cpu`, `cuda`, `cuda:N`, or `auto` (the default:
    /// CUDA device 0 when one can be opened, else the CPU).
    pub fn from_env() -> Result<Device> {
        let spec = std::env::var("TRELLIS2_DEVICE").unwrap_or_else(|_| "auto".into());
        Device::parse(&spec)
    }

    pub fn parse(spec: &str) -> Result<Device> {
        match spec.trim() {
            "cpu" => Ok(Device::Cpu),
            "auto" | "" => Ok(Device::cuda(0).unwrap_or(Device::Cpu)),
            "cuda" | "gpu" => Device::cuda(0),
            s if s.starts_with("cuda:") => {
                let n = s[5..].parse::<usize>().map_err(|_| {
                    Error::CudaUnavailable(format!("bad device spec `{s}` (want cuda:N)"))
                })?;
                Device::cuda(n)
            }
            s => Err(Error::CudaUnavailable(format!(
                "unknown device `{s}` (want cpu, cuda, cuda:N or auto)"
            ))),
        }
    }

    pub fn is_cpu(&self) -> bool {
        matches!(self, Device::Cpu)
    }
    pub fn is_cuda(&self) -> bool {
        matches!(self, Device::Cuda(_))
    }

    /// True when both are the CPU, or the same CUDA device.
    pub fn same(&self, other: &Device) -> bool {
        match (self, other) {
            (Device::Cpu, Device::Cpu) => true,
            (Device::Cuda(a), Device::Cuda(b)) => a.ordinal() == b.ordinal(),
            _ => false,
        }
    }

    /// Waits for all queued work on the device.
    pub fn synchronize(&self) -> Result<()> {
        match self {
            Device::Cpu => Ok(()),
            Device::Cuda(d) => d.synchronize(),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Device::Cpu => "cpu".into(),
            Device::Cuda(d) => format!("cuda:{}", d.ordinal()),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}
