//! NVML through `nvml-wrapper`, which dlopens the library: loaded once, on the first sample.

use std::ffi::OsString;
use std::sync::OnceLock;

use nvml_wrapper::Nvml;
use nvml_wrapper::error::NvmlError;

use crate::{NvmlGpu, NvmlStatus};

/// Overrides where NVML is loaded from (a path or soname).
pub const NVML_LIBRARY_ENV: &str = "TRELLIS2_NVML_LIBRARY";

pub(crate) fn default_library() -> OsString {
    std::env::var_os(NVML_LIBRARY_ENV).unwrap_or_else(|| "libnvidia-ml.so.1".into())
}

pub(crate) struct NvmlSource {
    library: OsString,
    loaded: OnceLock<Result<Nvml, String>>,
}

impl NvmlSource {
    pub(crate) fn new(library: OsString) -> Self {
        Self {
            library,
            loaded: OnceLock::new(),
        }
    }

    fn nvml(&self) -> Result<&Nvml, &str> {
        self.loaded
            .get_or_init(|| {
                let r = Nvml::builder()
                    .lib_path(&self.library)
                    .init()
                    .map_err(|e| format!("NVML ({}): {e}", self.library.to_string_lossy()));
                match &r {
                    Ok(_) => tracing::info!(library = ?self.library, "NVML loaded: GPU utilisation is reported"),
                    Err(e) => tracing::info!(reason = %e, "NVML absent: GPU utilisation is not reported"),
                }
                r
            })
            .as_ref()
            .map_err(String::as_str)
    }

    pub(crate) fn sample(&self) -> NvmlStatus {
        let nvml = match self.nvml() {
            Ok(n) => n,
            Err(why) => return NvmlStatus::Absent(why.to_string()),
        };
        match gpus(nvml) {
            Ok(g) => NvmlStatus::Present(g),
            // Loaded but not answering (driver gone, GPU lost): report absent with the reason.
            Err(e) => NvmlStatus::Absent(format!("NVML query failed: {e}")),
        }
    }
}

fn gpus(nvml: &Nvml) -> Result<Vec<NvmlGpu>, NvmlError> {
    let n = nvml.device_count()?;
    let mut out = Vec::with_capacity(n as usize);
    for index in 0..n {
        let d = nvml.device_by_index(index)?;
        let mem = d.memory_info()?;
        out.push(NvmlGpu {
            index,
            name: d.name().unwrap_or_default(),
            uuid: d.uuid().unwrap_or_default(),
            memory_used: mem.used,
            memory_total: mem.total,
            utilization: d.utilization_rates().ok().map(|u| f64::from(u.gpu) / 100.0),
        });
    }
    Ok(out)
}
