//! The CUDA backend: device context and stream, caching allocator, NVRTC kernel cache, cuBLASLt.
//!
//! Everything is loaded dynamically (cudarc `dynamic-loading`), so building and running on a
//! machine without CUDA works; `CudaDevice::new` then fails with `Error::CudaUnavailable` (the
//! libraries are probed first, because cudarc's lazy loader panics when one is missing).
//!
//! One device = one context + one stream. Every kernel, copy and GEMM is queued on that stream,
//! which is what lets the allocator reuse a freed block at once (see `alloc.rs`). Host reads
//! (`download`) synchronise. Set `TRELLIS2_CUDA_SYNC=1` to synchronise after every launch, so an
//! asynchronous fault is reported by the kernel that caused it.

mod alloc;
mod blas;
mod compile;
pub mod kernels;
mod launch;
mod subm_conv;

use std::sync::{Arc, OnceLock};

use cudarc::driver::{CudaContext, CudaStream, result as dresult, sys as dsys};

pub use alloc::MemoryStats;
pub(crate) use blas::Gemm;
pub use compile::{cache_dir, compile_cubin, include_dirs, nvrtc_available, nvrtc_version};
pub use kernels::KernelSource;
pub use launch::{Args, DeviceBuffer, Dims};
pub(crate) use launch::{args, as_f32, empty, float_suffix, kname, ptr, unit_bytes};
pub(crate) use subm_conv::implicit_gemm_conv;

use crate::storage::CpuStorage;
use crate::{DType, Error, Result};

/// A handle to one GPU (context, stream, allocator, compiled-kernel cache). Cheap to clone.
#[derive(Clone)]
pub struct CudaDevice {
    inner: Arc<Inner>,
}

struct Inner {
    ordinal: usize,
    name: String,
    compute_capability: (i32, i32),
    sync_each_launch: bool,
    // Field order is drop order: cuBLASLt, modules and cached blocks go before the stream and
    // the context they live in.
    blas: OnceLock<std::result::Result<blas::Blas, String>>,
    kernels: compile::KernelCache,
    pool: alloc::Pool,
    stream: Arc<CudaStream>,
    ctx: Arc<CudaContext>,
    /// Cooperative priority between computations sharing the stream (`crate::urgency`).
    urgency: crate::urgency::Urgency,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.ctx.bind_to_thread();
        let stream = self.stream.clone();
        let _ = self.pool.release_cached(&move || {
            stream
                .synchronize()
                .map_err(|e| alloc::cuda_err("synchronize", e))
        });
    }
}

impl std::fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CudaDevice({}: {}, sm_{}{})",
            self.inner.ordinal,
            self.inner.name,
            self.inner.compute_capability.0,
            self.inner.compute_capability.1
        )
    }
}

/// A device buffer holding the elements of one tensor; returned to the device's cache on drop.
pub struct CudaStorage {
    ptr: dsys::CUdeviceptr,
    bytes: usize,
    block: usize,
    dev: Arc<Inner>,
}

impl CudaStorage {
    /// The raw device address (valid while this storage lives).
    pub fn ptr(&self) -> u64 {
        self.ptr
    }
    /// Bytes requested (the block may be larger).
    pub fn len_bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for CudaStorage {
    fn drop(&mut self) {
        self.dev.pool.free(self.ptr, self.block);
    }
}

impl std::fmt::Debug for CudaStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CudaStorage({:#x}, {} bytes on cuda:{})",
            self.ptr, self.bytes, self.dev.ordinal
        )
    }
}

fn unavailable(what: impl std::fmt::Display) -> Error {
    Error::CudaUnavailable(what.to_string())
}

impl CudaDevice {
    /// Opens GPU `ordinal`: fails with `Error::CudaUnavailable` when libcuda, libnvrtc or
    /// libcublasLt cannot be loaded or there is no such GPU.
    pub fn new(ordinal: usize) -> Result<CudaDevice> {
        // SAFETY: these only try to dlopen the libraries.
        if !unsafe { dsys::is_culib_present() } {
            return Err(unavailable("libcuda (the NVIDIA driver) cannot be loaded"));
        }
        if !nvrtc_available() {
            return Err(unavailable(
                "libnvrtc cannot be loaded (add the CUDA lib dir to LD_LIBRARY_PATH)",
            ));
        }
        if !unsafe { cudarc::cublaslt::sys::is_culib_present() } {
            return Err(unavailable(
                "libcublasLt cannot be loaded (add the CUDA lib dir to LD_LIBRARY_PATH)",
            ));
        }
        let count = CudaContext::device_count().map_err(|e| unavailable(format!("cuInit: {e}")))?;
        if ordinal >= count.max(0) as usize {
            return Err(unavailable(format!(
                "no CUDA device {ordinal} ({count} present)"
            )));
        }
        let ctx =
            CudaContext::new(ordinal).map_err(|e| unavailable(format!("cuda:{ordinal}: {e}")))?;
        let stream = ctx
            .new_stream()
            .map_err(|e| alloc::cuda_err("cuStreamCreate", e))?;
        let cc = ctx
            .compute_capability()
            .map_err(|e| alloc::cuda_err("compute capability", e))?;
        if cc.0 < 8 {
            return Err(unavailable(format!(
                "cuda:{ordinal} is sm_{}{}; the kernels need sm_80 or newer",
                cc.0, cc.1
            )));
        }
        let name = ctx.name().unwrap_or_else(|_| "unknown GPU".into());
        let sync_each_launch = std::env::var("TRELLIS2_CUDA_SYNC").is_ok_and(|v| v == "1");
        Ok(CudaDevice {
            inner: Arc::new(Inner {
                ordinal,
                name,
                compute_capability: cc,
                sync_each_launch,
                blas: OnceLock::new(),
                kernels: compile::KernelCache::new(format!("sm_{}{}", cc.0, cc.1)),
                pool: alloc::Pool::new(),
                stream,
                ctx,
                urgency: Default::default(),
            }),
        })
    }

    /// Cooperative priority between computations sharing this device (`crate::urgency`).
    pub fn urgency(&self) -> &crate::urgency::Urgency {
        &self.inner.urgency
    }

    pub fn ordinal(&self) -> usize {
        self.inner.ordinal
    }
    /// The GPU's name as the driver reports it (e.g. "NVIDIA H200").
    pub fn name(&self) -> &str {
        &self.inner.name
    }
    pub fn compute_capability(&self) -> (i32, i32) {
        self.inner.compute_capability
    }
    /// The NVRTC target the kernels are compiled for (e.g. `sm_90`).
    pub fn arch(&self) -> &str {
        self.inner.kernels.arch()
    }

    fn bind(&self) -> Result<()> {
        self.inner
            .ctx
            .bind_to_thread()
            .map_err(|e| alloc::cuda_err("bind context", e))
    }

    /// Waits for all queued work; reports any asynchronous kernel fault.
    pub fn synchronize(&self) -> Result<()> {
        self.bind()?;
        self.inner
            .stream
            .synchronize()
            .map_err(|e| alloc::cuda_err("synchronize", e))
    }

    /// Allocated/peak/cached bytes of this device's allocator and the driver's free/total.
    pub fn memory_stats(&self) -> MemoryStats {
        let (allocated, peak_allocated, cached, peak_reserved, limit) = self.inner.pool.stats();
        let (device_free, device_total) = self
            .bind()
            .ok()
            .and_then(|_| dresult::mem_get_info().ok())
            .unwrap_or((0, 0));
        MemoryStats {
            allocated,
            peak_allocated,
            cached,
            peak_reserved,
            limit,
            device_free,
            device_total,
        }
    }

    /// Restarts the peak counter at the current allocation (e.g. per request).
    pub fn reset_peak_memory(&self) {
        self.inner.pool.reset_peak();
    }

    /// Caps the device memory this process's allocator holds (live + cached) at `bytes`;
    /// `None` removes the cap. An allocation that cannot fit, even after the cache is released,
    /// fails with `Error::OutOfMemory` like a full GPU. (Kernel modules, cuBLASLt's workspace
    /// and the context itself are outside the pool.)
    pub fn set_memory_limit(&self, bytes: Option<usize>) {
        self.inner.pool.set_limit(bytes);
    }

    /// Returns every cached (free) block to the driver.
    pub fn empty_cache(&self) -> Result<()> {
        self.bind()?;
        let dev = self.clone();
        self.inner.pool.release_cached(&move || dev.synchronize())
    }

    /// An uninitialised device buffer of `bytes`.
    pub(crate) fn alloc(&self, bytes: usize) -> Result<CudaStorage> {
        self.bind()?;
        let dev = self.clone();
        let (ptr, block) = self.inner.pool.alloc(bytes, move || dev.synchronize())?;
        Ok(CudaStorage {
            ptr,
            bytes,
            block,
            dev: self.inner.clone(),
        })
    }

    /// Copies host data to a new device buffer.
    pub fn upload(&self, host: &CpuStorage) -> Result<CudaStorage> {
        self.upload_bytes(host.as_bytes())
    }

    /// Copies raw host bytes (any alignment, e.g. a memory-mapped checkpoint) to a new device
    /// buffer.
    pub fn upload_bytes(&self, bytes: &[u8]) -> Result<CudaStorage> {
        let s = self.alloc(bytes.len())?;
        if !bytes.is_empty() {
            // SAFETY: `s` holds at least `bytes.len()` bytes. A pageable source is staged by the
            // driver before this returns, so `bytes` may be dropped afterwards.
            unsafe { dresult::memcpy_htod_async(s.ptr, bytes, self.inner.stream.cu_stream()) }
                .map_err(|e| alloc::cuda_err("upload", e))?;
        }
        Ok(s)
    }

    /// Copies a device buffer holding `dtype` elements back to the host (synchronises).
    pub fn download(&self, s: &CudaStorage, dtype: DType) -> Result<CpuStorage> {
        let mut bytes = vec![0u8; s.bytes];
        self.copy_to_host(s.ptr, &mut bytes)?;
        Ok(CpuStorage::from_bytes(dtype, &bytes))
    }

    /// Copies `dst.len()` bytes at device address `src` to the host (synchronises).
    pub(crate) fn copy_to_host(&self, src: u64, dst: &mut [u8]) -> Result<()> {
        self.bind()?;
        if !dst.is_empty() {
            // SAFETY: `src` addresses at least `dst.len()` live device bytes (caller's contract).
            unsafe { dresult::memcpy_dtoh_async(dst, src, self.inner.stream.cu_stream()) }
                .map_err(|e| alloc::cuda_err("download", e))?;
        }
        self.synchronize()
    }

    /// A zero-filled buffer of `n` elements of `dtype`.
    pub fn zeros(&self, dtype: DType, n: usize) -> Result<CudaStorage> {
        let s = self.alloc(n * dtype.size_in_bytes())?;
        self.memset(s.ptr, 0, s.bytes)?;
        Ok(s)
    }

    /// Fills `bytes` bytes at `ptr` with `value` (queued on the stream).
    pub(crate) fn memset(&self, ptr: u64, value: u8, bytes: usize) -> Result<()> {
        if bytes == 0 {
            return Ok(());
        }
        self.bind()?;
        // SAFETY: `ptr` addresses `bytes` live device bytes (caller's contract).
        unsafe { dresult::memset_d8_async(ptr, value, bytes, self.inner.stream.cu_stream()) }
            .map_err(|e| alloc::cuda_err("memset", e))
    }

    /// Device-to-device copy of `bytes` bytes (queued on the stream).
    pub(crate) fn copy_d2d(&self, dst: u64, src: u64, bytes: usize) -> Result<()> {
        if bytes == 0 {
            return Ok(());
        }
        self.bind()?;
        // SAFETY: both ranges are live device memory of `bytes` bytes (caller's contract).
        unsafe { dresult::memcpy_dtod_async(dst, src, bytes, self.inner.stream.cu_stream()) }
            .map_err(|e| alloc::cuda_err("copy", e))
    }

    /// Launches `func` of module `src` (compiled on first use).
    pub(crate) fn launch(
        &self,
        src: &'static kernels::KernelSource,
        func: &str,
        dims: Dims,
        args: &mut Args,
    ) -> Result<()> {
        self.bind()?;
        let k = self.inner.kernels.function(&self.inner.ctx, src, func)?;
        k.ensure_smem(dims.smem)?;
        let mut params = args.ptrs();
        // SAFETY: `params` matches the kernel's signature (each op's launcher is written against
        // its .cu file); every pointer argument is a live buffer of the size the kernel reads.
        unsafe {
            dresult::launch_kernel(
                k.func.cu_function(),
                dims.grid,
                dims.block,
                dims.smem,
                self.inner.stream.cu_stream(),
                &mut params,
            )
        }
        .map_err(|e| Error::Cuda {
            op: "launch",
            msg: format!("{}::{func}: {e}", src.name),
        })?;
        if self.inner.sync_each_launch {
            self.synchronize().map_err(|e| Error::Cuda {
                op: "kernel",
                msg: format!("{}::{func}: {e}", src.name),
            })?;
        }
        Ok(())
    }

    /// Enqueues a cuBLASLt GEMM (the handle is created on first use).
    pub(crate) fn gemm(&self, g: &Gemm) -> Result<()> {
        self.bind()?;
        let blas = self
            .inner
            .blas
            .get_or_init(|| blas::Blas::new().map_err(|e| e.to_string()));
        match blas {
            Ok(b) => b.gemm(self.inner.stream.cu_stream(), g),
            Err(msg) => Err(Error::Cuda {
                op: "cuBLASLt init",
                msg: msg.clone(),
            }),
        }
    }

    /// Compiles (or loads from the disk cache) every kernel module now, so the first request
    /// does not pay for NVRTC (services call this before reporting SERVING).
    pub fn warm_up(&self) -> Result<()> {
        self.warm_up_modules(kernels::ALL)
    }

    /// [`warm_up`](Self::warm_up) for other crates' kernel modules (the mesh stage's).
    pub fn warm_up_modules(&self, modules: &[&'static KernelSource]) -> Result<()> {
        self.bind()?;
        let cc = self.compute_capability();
        for src in modules {
            if !src.arch_suffix.is_empty() && cc != (9, 0) {
                continue; // arch-specific module for another GPU
            }
            compile::load_or_compile(src, &format!("{}{}", self.arch(), src.arch_suffix))?;
        }
        Ok(())
    }
}
