//! The CUDA backend: device context and stream, caching allocator, NVRTC kernel cache, cuBLASLt.
//!
//! Everything is loaded dynamically (cudarc `dynamic-loading`), so building and running on a
//! machine without CUDA works; `CudaDevice::new` then fails with `Error::CudaUnavailable`.
//!
//! STATUS: interface only — the CUDA backend is being written (issue 3). Until then every call
//! returns `Error::CudaUnavailable`, and `Device::from_env()` with `auto` falls back to the CPU.

use crate::storage::CpuStorage;
use crate::{DType, Error, Result};

/// A handle to one GPU (context, stream, allocator, compiled-kernel cache). Cheap to clone.
#[derive(Clone, Debug)]
pub struct CudaDevice {
    ordinal: usize,
}

/// A device buffer holding the elements of one tensor.
#[derive(Debug)]
pub struct CudaStorage {
    _private: (),
}

impl CudaDevice {
    pub fn new(ordinal: usize) -> Result<CudaDevice> {
        let _ = ordinal;
        Err(Error::CudaUnavailable(
            "the CUDA backend is not built yet".into(),
        ))
    }
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }
    pub fn synchronize(&self) -> Result<()> {
        Err(Error::CudaUnavailable(
            "the CUDA backend is not built yet".into(),
        ))
    }
    pub fn upload(&self, _host: &CpuStorage) -> Result<CudaStorage> {
        Err(Error::CudaUnavailable(
            "the CUDA backend is not built yet".into(),
        ))
    }
    pub fn download(&self, _s: &CudaStorage, _dtype: DType) -> Result<CpuStorage> {
        Err(Error::CudaUnavailable(
            "the CUDA backend is not built yet".into(),
        ))
    }
    pub fn zeros(&self, _dtype: DType, _n: usize) -> Result<CudaStorage> {
        Err(Error::CudaUnavailable(
            "the CUDA backend is not built yet".into(),
        ))
    }
}
