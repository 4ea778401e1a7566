//! Kernel arguments and launch shapes, plus the small helpers every `ops/*/cuda.rs` uses.
//!
//! The public part ([`Args`], [`Dims`], [`CudaDevice::launch_kernel`], [`DeviceBuffer`]) lets
//! another crate run its own NVRTC kernels on a `CudaDevice`: declare a [`KernelSource`], upload
//! plain-data slices, launch, download. Its kernels share the device's stream, allocator and
//! compiled-module cache (keyed by the module name, so a source's `name` must be unique across
//! the workspace).
//!
//! ```ignore
//! static SCALE: KernelSource = KernelSource { name: "my_scale", code: "...", arch_suffix: "" };
//! let x = dev.upload_slice(&[1.0f32, 2.0, 3.0])?;
//! let y = dev.alloc_slice::<f32>(x.len())?;
//! let mut a = Args::new();
//! a.push(x.ptr()).push(y.ptr()).push(x.len() as i64);
//! dev.launch_kernel(&SCALE, "scale_f32", Dims::linear(x.len(), 256), &mut a)?;
//! let host: Vec<f32> = y.download()?;
//! ```

use std::ffi::c_void;
use std::marker::PhantomData;

use bytemuck::Pod;

use super::kernels::KernelSource;
use super::{CudaDevice, CudaStorage};
use crate::storage::Storage;
use crate::{DType, Device, Error, Result, Tensor};

/// Threads per block of the element-wise (grid-stride) kernels.
pub(crate) const BLOCK: u32 = 256;
/// Cap on the blocks of a grid-stride launch: enough to fill an H200 many times over.
const MAX_BLOCKS: usize = 65_536;

/// Kernel parameters, each copied into its own 8-byte-aligned buffer so that the pointers
/// handed to `cuLaunchKernel` stay valid until the launch.
#[derive(Default)]
pub struct Args {
    bufs: Vec<Vec<u64>>,
}

impl Args {
    pub fn new() -> Args {
        Args::default()
    }
    /// Appends one parameter. `T` must match the kernel's C type exactly: `u64` for pointers
    /// (see [`DeviceBuffer::ptr`]), `i64`/`i32`/`u32`/`f32` for scalars, a `#[repr(C)]` struct
    /// for a by-value struct. Parameters are taken in the kernel's declaration order.
    pub fn push<T: Copy>(&mut self, v: T) -> &mut Args {
        let size = std::mem::size_of::<T>();
        let mut buf = vec![0u64; size.div_ceil(8).max(1)];
        // SAFETY: `buf` holds at least `size` bytes; T is Copy (plain data).
        unsafe {
            std::ptr::copy_nonoverlapping(
                &v as *const T as *const u8,
                buf.as_mut_ptr() as *mut u8,
                size,
            )
        };
        self.bufs.push(buf);
        self
    }
    pub(crate) fn ptrs(&mut self) -> Vec<*mut c_void> {
        self.bufs
            .iter_mut()
            .map(|b| b.as_mut_ptr() as *mut c_void)
            .collect()
    }
}

/// `args![a, b, c]` builds an `Args` from values.
macro_rules! args {
    ($($v:expr),* $(,)?) => {{
        let mut a = $crate::cuda::Args::new();
        $( a.push($v); )*
        a
    }};
}
pub(crate) use args;

/// Grid, block and dynamic shared memory (bytes) of one launch.
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub grid: (u32, u32, u32),
    pub block: (u32, u32, u32),
    pub smem: u32,
}

impl Dims {
    /// One thread per item: `ceil(n / block)` blocks of `block` threads (at least one block), no
    /// shared memory. The kernel must bounds-check its index against `n`.
    pub fn linear(n: usize, block: u32) -> Dims {
        let block = block.clamp(1, 1024);
        let blocks = n.div_ceil(block as usize).clamp(1, u32::MAX as usize);
        Dims {
            grid: (blocks as u32, 1, 1),
            block: (block, 1, 1),
            smem: 0,
        }
    }

    /// A 1-D grid-stride launch over `n` items.
    pub(crate) fn elementwise(n: usize) -> Dims {
        let blocks = n.div_ceil(BLOCK as usize).clamp(1, MAX_BLOCKS);
        Dims {
            grid: (blocks as u32, 1, 1),
            block: (BLOCK, 1, 1),
            smem: 0,
        }
    }
}

/// The device pointer of a CUDA tensor's buffer.
pub(crate) fn ptr(t: &Tensor) -> Result<u64> {
    match t.storage() {
        Storage::Cuda(s) => Ok(s.ptr()),
        Storage::Cpu(_) => Err(Error::DeviceMismatch {
            op: "cuda kernel",
            a: "cuda".into(),
            b: "cpu".into(),
        }),
    }
}

/// An uninitialised tensor on `dev` (every kernel writes all of its output).
pub(crate) fn empty(dev: &CudaDevice, shape: &[usize], dtype: DType) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let s: CudaStorage = dev.alloc(n * dtype.size_in_bytes())?;
    Ok(Tensor::from_storage(
        Storage::Cuda(s),
        shape.to_vec(),
        dtype,
        Device::Cuda(dev.clone()),
    ))
}

/// The symbol suffix of a float dtype (`<op>_<dtype>`), or a dtype error naming `op`.
pub(crate) fn float_suffix(op: &'static str, dtype: DType) -> Result<&'static str> {
    match dtype {
        DType::F32 | DType::F16 | DType::BF16 => Ok(dtype.as_str()),
        d => Err(Error::DType { op, dtype: d }),
    }
}

/// `<op>_<dtype>`: the one naming rule for kernel symbols.
pub(crate) fn kname(op: &str, dtype: DType) -> String {
    format!("{op}_{}", dtype.as_str())
}

/// The widest copy unit (16, 8, 4, 2 or 1 bytes) dividing every given byte count.
pub(crate) fn unit_bytes(byte_counts: &[usize]) -> usize {
    [16, 8, 4, 2, 1]
        .into_iter()
        .find(|u| byte_counts.iter().all(|b| b % u == 0))
        .unwrap_or(1)
}

/// Converts `t` to f32 when needed (a no-op clone for f32): exact for every float input.
pub(crate) fn as_f32(t: &Tensor) -> Result<Tensor> {
    crate::ops::to_dtype(t, DType::F32)
}

impl CudaDevice {
    /// Launches kernel `func` of module `src` on this device's stream (the module is compiled
    /// with NVRTC, or read from the disk cache, on first use). Asynchronous: a fault surfaces at
    /// the next synchronising call, or at once with `TRELLIS2_CUDA_SYNC=1`.
    ///
    /// The caller guarantees that `args` matches the kernel's parameter list and that every
    /// pointer in it addresses a live buffer of this device, large enough for what the kernel
    /// reads and writes (the buffers must outlive the launch: drop them after a synchronising
    /// call such as [`DeviceBuffer::download`]).
    pub fn launch_kernel(
        &self,
        src: &'static KernelSource,
        func: &str,
        dims: Dims,
        args: &mut Args,
    ) -> Result<()> {
        self.launch(src, func, dims, args)
    }

    /// Copies `data` to a new device buffer.
    pub fn upload_slice<T: Pod>(&self, data: &[T]) -> Result<DeviceBuffer<T>> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let storage = self.alloc(bytes.len())?;
        if !bytes.is_empty() {
            // SAFETY: `storage` holds at least `bytes.len()` bytes. A pageable source is staged
            // by the driver before this returns, so `data` may be dropped afterwards.
            unsafe {
                cudarc::driver::result::memcpy_htod_async(
                    storage.ptr(),
                    bytes,
                    self.inner.stream.cu_stream(),
                )
            }
            .map_err(|e| super::alloc::cuda_err("upload", e))?;
        }
        Ok(DeviceBuffer {
            storage,
            len: data.len(),
            dev: self.clone(),
            _elem: PhantomData,
        })
    }

    /// An uninitialised device buffer of `len` elements (the kernel must write what is read back).
    pub fn alloc_slice<T: Pod>(&self, len: usize) -> Result<DeviceBuffer<T>> {
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .ok_or(Error::OutOfMemory { bytes: usize::MAX })?;
        Ok(DeviceBuffer {
            storage: self.alloc(bytes)?,
            len,
            dev: self.clone(),
            _elem: PhantomData,
        })
    }
}

/// A typed device buffer of plain-data elements (`f32`, `u32`, `[f32; 4]`, `#[repr(C)]` Pod
/// structs), returned to the device's allocator cache on drop.
pub struct DeviceBuffer<T: Pod> {
    storage: CudaStorage,
    len: usize,
    dev: CudaDevice,
    _elem: PhantomData<T>,
}

impl<T: Pod> DeviceBuffer<T> {
    /// The device address, as a kernel pointer argument (`Args::push(buf.ptr())`).
    pub fn ptr(&self) -> u64 {
        self.storage.ptr()
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Copies the buffer back to the host; waits for all work queued before it.
    pub fn download(&self) -> Result<Vec<T>> {
        let mut out = vec![T::zeroed(); self.len];
        self.dev
            .copy_to_host(self.ptr(), bytemuck::cast_slice_mut(&mut out))?;
        Ok(out)
    }
}

impl<T: Pod> std::fmt::Debug for DeviceBuffer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DeviceBuffer<{}>[{}] at {:?}",
            std::any::type_name::<T>(),
            self.len,
            self.storage
        )
    }
}
