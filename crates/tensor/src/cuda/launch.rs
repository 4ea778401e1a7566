//! Kernel arguments and launch shapes, plus the small helpers every `ops/*/cuda.rs` uses.

use std::ffi::c_void;

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
pub(crate) struct Args {
    bufs: Vec<Vec<u64>>,
}

impl Args {
    pub(crate) fn new() -> Args {
        Args::default()
    }
    /// Appends one parameter. `T` must match the kernel's C type exactly: `u64` for pointers,
    /// `i64`/`i32`/`f32` for scalars, a `#[repr(C)]` struct for a by-value struct.
    pub(crate) fn push<T: Copy>(&mut self, v: T) -> &mut Args {
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

/// Grid, block and dynamic shared memory of one launch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub grid: (u32, u32, u32),
    pub block: (u32, u32, u32),
    pub smem: u32,
}

impl Dims {
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
