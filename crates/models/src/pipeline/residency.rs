//! Where the networks live between stages: all resident on the device (the default: fastest,
//! ~16 GiB of weights at full size), or one at a time (the low-VRAM mode: each stage loads its
//! network from the mmap'd safetensors, runs, and frees it, so the device holds one network's
//! weights plus the activations). The reference's `low_vram` flag moves modules between host
//! and device; reloading from the page cache costs about the same and keeps no second copy.

use std::sync::Arc;

use t2_tensor::Device;

use crate::config::ModelFiles;
use crate::error::{ModelError, Result};

/// How a loaded pipeline keeps its networks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Residency {
    /// Every requested network stays on the device.
    #[default]
    AllResident,
    /// One network on the device at a time (low-VRAM mode).
    OneAtATime,
}

impl Residency {
    /// Environment variable selecting the low-VRAM mode in the services (`1`/`true`).
    pub const ENV: &'static str = "TRELLIS2_LOW_VRAM";

    /// `OneAtATime` when `TRELLIS2_LOW_VRAM` is `1` or `true`; a value that is neither a
    /// yes nor a no is an error rather than a silent default.
    pub fn from_env() -> Result<Residency> {
        Self::from_flag(std::env::var(Self::ENV).ok().as_deref())
    }

    /// The value of `TRELLIS2_LOW_VRAM` (`None`: unset).
    pub fn from_flag(v: Option<&str>) -> Result<Residency> {
        match v.map(str::trim) {
            None | Some("" | "0" | "false") => Ok(Residency::AllResident),
            Some("1" | "true") => Ok(Residency::OneAtATime),
            Some(v) => Err(ModelError::invalid(format!(
                "{}={v:?}: want 1/true or 0/false",
                Self::ENV
            ))),
        }
    }
}

type Loader<T> = Arc<dyn Fn() -> Result<T> + Send + Sync>;

/// One network of the pipeline.
pub(crate) enum Slot<T> {
    /// Not requested by this process (a service loads only its stages' networks).
    Absent,
    Resident(T),
    /// Loaded for each use and freed afterwards.
    OnDemand {
        load: Loader<T>,
        device: Device,
    },
}

impl<T> Slot<T> {
    /// Builds the slot for `files` (`None`: absent). In low-VRAM mode the network is loaded once
    /// here and freed, so a bad checkpoint fails at start as in the resident mode.
    pub(crate) fn new(
        files: Option<ModelFiles>,
        residency: Residency,
        device: &Device,
        load: impl Fn(&ModelFiles) -> Result<T> + Send + Sync + 'static,
    ) -> Result<Slot<T>> {
        let Some(files) = files else {
            return Ok(Slot::Absent);
        };
        match residency {
            Residency::AllResident => {
                let t = std::time::Instant::now();
                let model = load(&files)?;
                tracing::info!(
                    weights = %files.weights.display(),
                    seconds = t.elapsed().as_secs_f64(),
                    "network loaded"
                );
                Ok(Slot::Resident(model))
            }
            Residency::OneAtATime => {
                drop(load(&files)?);
                release_cache(device)?;
                Ok(Slot::OnDemand {
                    load: Arc::new(move || load(&files)),
                    device: device.clone(),
                })
            }
        }
    }

    /// The network for one stage, loading it if it is not resident.
    pub(crate) fn hold(&self, key: &str) -> Result<Held<'_, T>> {
        match self {
            Slot::Absent => Err(ModelError::NotLoaded(key.to_string())),
            Slot::Resident(m) => Ok(Held::Borrowed(m)),
            Slot::OnDemand { load, device } => {
                let t = std::time::Instant::now();
                let model = load()?;
                tracing::debug!(
                    model = key,
                    seconds = t.elapsed().as_secs_f64(),
                    "loaded for one stage"
                );
                Ok(Held::Owned {
                    model: Some(model),
                    device: device.clone(),
                })
            }
        }
    }

    /// The network if it is resident (benchmarks and parity runs drive resident networks).
    pub(crate) fn resident(&self) -> Option<&T> {
        match self {
            Slot::Resident(m) => Some(m),
            _ => None,
        }
    }
}

/// A network held for one stage; a loaded-for-the-stage network is freed on drop and its
/// memory handed back to the driver, so the next stage's network can take its place.
pub enum Held<'a, T> {
    Borrowed(&'a T),
    Owned { model: Option<T>, device: Device },
}

impl<T> std::ops::Deref for Held<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Held::Borrowed(m) => m,
            Held::Owned { model, .. } => model.as_ref().expect("present until drop"),
        }
    }
}

impl<T> Drop for Held<'_, T> {
    fn drop(&mut self) {
        if let Held::Owned { model, device } = self {
            drop(model.take());
            if let Err(e) = release_cache(device) {
                tracing::warn!(error = %e, "could not return freed weights to the driver");
            }
        }
    }
}

/// Gives the allocator's cached blocks back to the driver (the weights just freed would
/// otherwise stay reserved in size buckets the next network may not use).
fn release_cache(device: &Device) -> Result<()> {
    if let Device::Cuda(c) = device {
        c.empty_cache()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_demand_loads_per_hold_and_absent_is_not_loaded() {
        let files = ModelFiles {
            config: "c.json".into(),
            weights: "w.safetensors".into(),
        };
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = count.clone();
        let slot = Slot::new(
            Some(files),
            Residency::OneAtATime,
            &Device::Cpu,
            move |_| Ok(c.fetch_add(1, std::sync::atomic::Ordering::SeqCst)),
        )
        .unwrap();
        // Once at construction (the check), then once per hold.
        assert_eq!(*slot.hold("m").unwrap(), 1);
        assert_eq!(*slot.hold("m").unwrap(), 2);
        assert!(slot.resident().is_none());
        let absent: Slot<u8> =
            Slot::new(None, Residency::OneAtATime, &Device::Cpu, |_| Ok(0)).unwrap();
        assert!(matches!(absent.hold("x"), Err(ModelError::NotLoaded(k)) if k == "x"));
    }

    #[test]
    fn low_vram_flag_values() {
        for (v, want) in [
            (None, false),
            (Some("0"), false),
            (Some(""), false),
            (Some("1"), true),
            (Some(" true"), true),
        ] {
            let r = Residency::from_flag(v).unwrap();
            assert_eq!(r == Residency::OneAtATime, want, "{v:?}");
        }
        assert!(Residency::from_flag(Some("yes please")).is_err());
    }
}
