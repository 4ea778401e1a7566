//! Device building blocks shared by the mesh stage's GPU steps (`prims.cu`): fills, copies,
//! reading a few counts back in one download, and an in-place exclusive scan of u32 (the
//! offsets of every order-preserving compaction).

use bytemuck::Pod;
use t2_tensor::cuda::{Args, CudaDevice, DeviceBuffer, Dims, KernelSource};

use super::gpu_err;
use crate::error::MeshError;

pub static PRIMS: KernelSource = KernelSource {
    name: "mesh_prims",
    code: include_str!("prims.cu"),
    arch_suffix: "",
};

const BLOCK: u32 = 256;
/// `SCAN_TILE` in prims.cu.
const SCAN_TILE: usize = 2048;

/// The primitives on one device, with the step name their errors carry.
#[derive(Clone, Copy)]
pub(crate) struct Prims<'a> {
    pub dev: &'a CudaDevice,
    pub step: &'static str,
}

impl<'a> Prims<'a> {
    pub fn new(dev: &'a CudaDevice, step: &'static str) -> Self {
        Prims { dev, step }
    }

    /// Launches `func` of `src` with one thread per item of `n` in blocks of `block`.
    pub fn launch(
        &self,
        src: &'static KernelSource,
        func: &str,
        n: usize,
        block: u32,
        args: &mut Args,
    ) -> Result<(), MeshError> {
        self.launch_dims(src, func, Dims::linear(n, block), args)
    }

    pub fn launch_dims(
        &self,
        src: &'static KernelSource,
        func: &str,
        dims: Dims,
        args: &mut Args,
    ) -> Result<(), MeshError> {
        self.dev
            .launch_kernel(src, func, dims, args)
            .map_err(gpu_err(self.step))
    }

    /// A device buffer of `len` elements (at least one, so every launch has a valid pointer).
    pub fn alloc<T: Pod>(&self, len: usize) -> Result<DeviceBuffer<T>, MeshError> {
        self.dev.alloc_slice(len.max(1)).map_err(gpu_err(self.step))
    }

    pub fn upload<T: Pod>(&self, data: &[T]) -> Result<DeviceBuffer<T>, MeshError> {
        self.dev.upload_slice(data).map_err(gpu_err(self.step))
    }

    pub fn download<T: Pod>(&self, buf: &DeviceBuffer<T>) -> Result<Vec<T>, MeshError> {
        buf.download().map_err(gpu_err(self.step))
    }

    /// Sets `n` u32 at device address `ptr` to `value`.
    pub fn fill_u32(&self, ptr: u64, n: usize, value: u32) -> Result<(), MeshError> {
        if n == 0 {
            return Ok(());
        }
        let mut a = Args::new();
        a.push(ptr).push(n as i64).push(value);
        self.launch(&PRIMS, "prims_fill_u32", n, BLOCK, &mut a)
    }

    /// Sets `n` u64 at device address `ptr` to `value`.
    pub fn fill_u64(&self, ptr: u64, n: usize, value: u64) -> Result<(), MeshError> {
        if n == 0 {
            return Ok(());
        }
        let mut a = Args::new();
        a.push(ptr).push(n as i64).push(value);
        self.launch(&PRIMS, "prims_fill_u64", n, BLOCK, &mut a)
    }

    /// Copies `n` u32 from `src` to `dst` (device addresses).
    pub fn copy_u32(&self, src: u64, n: usize, dst: u64) -> Result<(), MeshError> {
        if n == 0 {
            return Ok(());
        }
        let mut a = Args::new();
        a.push(src).push(n as i64).push(dst);
        self.launch(&PRIMS, "prims_copy_u32", n, BLOCK, &mut a)
    }

    /// Exclusive scan of the first `n` u32 of `data`, in place.
    pub fn exclusive_scan(&self, data: &DeviceBuffer<u32>, n: usize) -> Result<(), MeshError> {
        if n == 0 {
            return Ok(());
        }
        let tiles = n.div_ceil(SCAN_TILE);
        let sums = self.alloc::<u32>(tiles)?;
        let per_tile = Dims {
            grid: (tiles as u32, 1, 1),
            block: (BLOCK, 1, 1),
            smem: 0,
        };
        let mut a = Args::new();
        a.push(data.ptr()).push(n as i64).push(sums.ptr());
        self.launch_dims(&PRIMS, "prims_scan_tile_sums", per_tile, &mut a)?;
        let mut a = Args::new();
        a.push(sums.ptr()).push(tiles as i64);
        self.launch(&PRIMS, "prims_scan_tile_offsets", 1, BLOCK, &mut a)?;
        let mut a = Args::new();
        a.push(data.ptr()).push(n as i64).push(sums.ptr());
        self.launch_dims(&PRIMS, "prims_scan_apply", per_tile, &mut a)?;
        // `sums` goes back to the allocator's cache on drop; the stream orders its reuse.
        Ok(())
    }

    /// `buf[i]` for each `(buf, i)`, in one download.
    /// With `at` empty: waits for the work queued so far.
    pub fn take(&self, at: &[(&DeviceBuffer<u32>, usize)]) -> Result<Vec<u32>, MeshError> {
        let out = self.alloc::<u32>(at.len())?;
        for (slot, (buf, i)) in at.iter().enumerate() {
            let mut a = Args::new();
            a.push(buf.ptr())
                .push(*i as i64)
                .push(out.ptr())
                .push(slot as i64);
            self.launch(&PRIMS, "prims_take", 1, 32, &mut a)?;
        }
        let mut v = self.download(&out)?;
        v.truncate(at.len());
        Ok(v)
    }
}
