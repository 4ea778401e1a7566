//! Where a tensor lives, and how the backend is picked at run time.

use crate::cuda::CudaDevice;
use crate::{Error, Result};

/// A compute device. Cloning is cheap (the CUDA device is reference-counted).
#[derive(Clone, Debug)]
pub enum Device {
    Cpu,
    Cuda(CudaDevice),
}

/// Environment variable capping the CUDA allocator, in GiB (decimals allowed).
pub const MEMORY_LIMIT_ENV: &str = "TRELLIS2_CUDA_MEMORY_LIMIT_GIB";

/// `"15.5"` → bytes; refuses what is not a positive finite number.
pub fn parse_gib(v: &str) -> Result<usize> {
    match v.trim().parse::<f64>() {
        Ok(g) if g.is_finite() && g > 0.0 => Ok((g * (1u64 << 30) as f64) as usize),
        _ => Err(Error::CudaUnavailable(format!(
            "{MEMORY_LIMIT_ENV}={v:?} is not a positive number of GiB"
        ))),
    }
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
    /// CUDA device 0 when one can be opened, else the CPU). On CUDA,
    /// `TRELLIS2_CUDA_MEMORY_LIMIT_GIB` caps what the allocator holds (see
    /// `CudaDevice::set_memory_limit`).
    pub fn from_env() -> Result<Device> {
        let spec = std::env::var("TRELLIS2_DEVICE").unwrap_or_else(|_| "auto".into());
        let dev = Device::parse(&spec)?;
        if let (Device::Cuda(c), Ok(v)) = (&dev, std::env::var(MEMORY_LIMIT_ENV)) {
            c.set_memory_limit(Some(parse_gib(&v)?));
        }
        Ok(dev)
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

    /// Marks urgent work on this device until the guard drops (`crate::urgency`); nothing on
    /// the CPU, whose threads the OS shares out.
    pub fn urgent(&self) -> Option<crate::urgency::UrgentGuard<'_>> {
        match self {
            Device::Cpu => None,
            Device::Cuda(d) => Some(d.urgency().urgent()),
        }
    }

    /// Waits while urgent work runs on this device, or until `stop()` (`crate::urgency`).
    pub fn yield_to_urgent(&self, stop: &dyn Fn() -> bool) {
        if let Device::Cuda(d) = self {
            d.urgency().yield_to_urgent(stop);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_limit_parses_gib() {
        assert_eq!(parse_gib("16").unwrap(), 16 << 30);
        assert_eq!(parse_gib(" 0.5 ").unwrap(), 512 << 20);
        for bad in ["", "0", "-1", "NaN", "inf", "16GiB"] {
            assert!(parse_gib(bad).is_err(), "{bad:?} accepted");
        }
    }
}
