//! The CUDA path of the mesh stage's heavy steps: the closest-point queries of the narrow-band
//! remesh (band filtering, corner UDF) and of the texture bake (snap + trilinear voxel sampling
//! + quantisation), on a BVH in device memory: built there (`lbvh.rs`), or `bvh.rs`'s uploaded.
//!
//! The CPU path stays the default and the numerical reference. The kernels (`closest.cu`)
//! repeat the CPU arithmetic operation for operation (no FMA contraction, IEEE division and
//! square root), so a CUDA result equals the CPU's unless two candidates tie in distance; the
//! parity tests (`tests/gpu_parity.rs`) measure how often that happens.
//!
//! Kernels run through t2-tensor's public launch API on a [`CudaDevice`]; NVRTC compiles them
//! on first use (disk-cached). With no GPU, CI still compiles them with NVRTC (`KERNELS`, test
//! below) and runs their logic on the host against the CPU path (`host_check.rs`).

pub mod collapse;
mod lbvh;
pub(crate) mod prims;
pub(crate) mod remesh;

use t2_tensor::cuda::{Args, CudaDevice, DeviceBuffer, Dims, KernelSource};

use crate::bvh::{Bvh, Closest};
use crate::error::MeshError;
use crate::sample::VoxelField;

/// The mesh stage's CUDA kernels (one NVRTC module).
pub static CLOSEST: KernelSource = KernelSource {
    name: "mesh_closest",
    // The remesh kernels query the tree, so they share the module.
    code: concat!(
        include_str!("exact.cuh"),
        include_str!("closest.cu"),
        include_str!("remesh.cu")
    ),
    arch_suffix: "",
};

/// Every kernel source of this crate, for the NVRTC compile check.
pub static KERNELS: &[&KernelSource] = &[&CLOSEST, &collapse::COLLAPSE, &prims::PRIMS, &lbvh::LBVH];

/// Threads per block: the traversal keeps a 64-entry stack per thread in local memory, and
/// 128-thread blocks measured no slower than 256 while leaving the scheduler more room.
const BLOCK: u32 = 128;

/// Face id the kernels write when nothing lies within the search radius.
const NO_FACE: u32 = u32::MAX;

fn gpu_err(step: &'static str) -> impl Fn(t2_tensor::Error) -> MeshError {
    move |e| {
        let msg = e.to_string();
        if e.is_oom() {
            MeshError::GpuOutOfMemory { step, msg }
        } else {
            MeshError::Gpu { step, msg }
        }
    }
}

/// Opens CUDA device `ordinal` for the mesh stage (a typed error when there is no usable GPU).
pub fn open_device(ordinal: usize) -> Result<CudaDevice, MeshError> {
    CudaDevice::new(ordinal).map_err(gpu_err("open device"))
}

/// Compiles (or loads from the disk cache) the mesh kernels now, so the first request does not
/// pay for NVRTC.
pub fn warm_up(dev: &CudaDevice) -> Result<(), MeshError> {
    // Every module (the collapse's too, which only a decimation would otherwise load).
    dev.warm_up_modules(KERNELS)
        .map_err(gpu_err("kernel warm-up"))?;
    // A zero-size launch is not allowed; a tree of two leaves (every build kernel runs) and
    // one query are.
    let verts = [[0.0; 3], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
    GpuBvh::build(dev, &verts, &[[0, 1, 2]; 5])?.closest_within(&[[0.0; 3]], 1.0)?;
    Ok(())
}

/// A BVH in device memory (nodes + triangles in leaf order, face id in each first corner's w;
/// the layout is `Bvh::flattened`'s): built on the device ([`GpuBvh::build`], `lbvh.rs`) or
/// uploaded from a CPU [`Bvh`].
pub struct GpuBvh {
    dev: CudaDevice,
    nodes: DeviceBuffer<[u32; 8]>,
    tris: DeviceBuffer<[f32; 4]>,
}

/// The world-space frame of one remesh grid level, as the kernels take it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GridFrame {
    pub res: u32,
    pub scale: f32,
    pub center: [f32; 3],
}

impl GpuBvh {
    /// Flattens `bvh` and copies it to `dev`.
    pub fn upload(dev: &CudaDevice, bvh: &Bvh) -> Result<GpuBvh, MeshError> {
        let (nodes, tris) = bvh.flattened();
        let err = gpu_err("bvh upload");
        Ok(GpuBvh {
            dev: dev.clone(),
            nodes: dev.upload_slice(&nodes).map_err(&err)?,
            tris: dev.upload_slice(&tris).map_err(&err)?,
        })
    }

    pub fn device(&self) -> &CudaDevice {
        &self.dev
    }

    fn launch(
        &self,
        step: &'static str,
        func: &str,
        n: usize,
        args: &mut Args,
    ) -> Result<(), MeshError> {
        self.dev
            .launch_kernel(&CLOSEST, func, Dims::linear(n, BLOCK), args)
            .map_err(gpu_err(step))
    }

    /// `Bvh::closest_within` for every point: the closest surface point strictly within
    /// `radius` (`f32::INFINITY` for the unbounded query), `None` when there is none.
    pub fn closest_within(
        &self,
        points: &[[f32; 3]],
        radius: f32,
    ) -> Result<Vec<Option<Closest>>, MeshError> {
        if points.is_empty() {
            return Ok(Vec::new());
        }
        let err = gpu_err("closest");
        let q = self.dev.upload_slice(points).map_err(&err)?;
        let pd = self
            .dev
            .alloc_slice::<[f32; 4]>(points.len())
            .map_err(&err)?;
        let uf = self
            .dev
            .alloc_slice::<[f32; 4]>(points.len())
            .map_err(&err)?;
        let mut a = Args::new();
        a.push(self.nodes.ptr())
            .push(self.tris.ptr())
            .push(q.ptr())
            .push(points.len() as i64)
            .push(radius)
            .push(pd.ptr())
            .push(uf.ptr());
        self.launch("closest", "mesh_closest_within", points.len(), &mut a)?;
        let pd = pd.download().map_err(&err)?;
        let uf = uf.download().map_err(&err)?;
        Ok(pd
            .iter()
            .zip(&uf)
            .map(|(pd, uf)| {
                let face = uf[3].to_bits();
                (face != NO_FACE).then_some(Closest {
                    distance: pd[3],
                    face,
                    uvw: [uf[0], uf[1], uf[2]],
                    point: [pd[0], pd[1], pd[2]],
                })
            })
            .collect())
    }

    /// The remesh band test of one level (`remesh.rs` step 1): for each voxel, whether
    /// `|UDF(centre) − eps| < tol`, the UDF searched within `eps + tol`.
    pub(crate) fn band_filter(
        &self,
        coords: &[[i32; 3]],
        frame: GridFrame,
        eps: f32,
        tol: f32,
    ) -> Result<Vec<u8>, MeshError> {
        if coords.is_empty() {
            return Ok(Vec::new());
        }
        let err = gpu_err("remesh band filter");
        let c = self.dev.upload_slice(coords).map_err(&err)?;
        let keep = self.dev.alloc_slice::<u8>(coords.len()).map_err(&err)?;
        let mut a = Args::new();
        a.push(self.nodes.ptr())
            .push(self.tris.ptr())
            .push(c.ptr())
            .push(coords.len() as i64)
            .push(frame.res as f32)
            .push(frame.scale)
            .push(frame.center[0])
            .push(frame.center[1])
            .push(frame.center[2])
            .push(eps + tol)
            .push(eps)
            .push(tol)
            .push(keep.ptr());
        self.launch(
            "remesh band filter",
            "mesh_band_filter",
            coords.len(),
            &mut a,
        )?;
        keep.download().map_err(&err)
    }

    /// `UDF − eps` at grid corners (`remesh.rs` step 2), the UDF capped at `reach`.
    pub(crate) fn corner_udf(
        &self,
        corners: &[[i32; 3]],
        frame: GridFrame,
        reach: f32,
        eps: f32,
    ) -> Result<Vec<f32>, MeshError> {
        if corners.is_empty() {
            return Ok(Vec::new());
        }
        let err = gpu_err("remesh corner udf");
        let c = self.dev.upload_slice(corners).map_err(&err)?;
        let values = self.dev.alloc_slice::<f32>(corners.len()).map_err(&err)?;
        let mut a = Args::new();
        a.push(self.nodes.ptr())
            .push(self.tris.ptr())
            .push(c.ptr())
            .push(corners.len() as i64)
            .push(frame.res as f32)
            .push(frame.scale)
            .push(frame.center[0])
            .push(frame.center[1])
            .push(frame.center[2])
            .push(reach)
            .push(eps)
            .push(values.ptr());
        self.launch(
            "remesh corner udf",
            "mesh_corner_udf",
            corners.len(),
            &mut a,
        )?;
        values.download().map_err(&err)
    }
}

/// The voxel attribute field in device memory: the host-built hash table (same slot function
/// as `VoxelHash::get`) and the attribute rows.
pub(crate) struct GpuField {
    keys: DeviceBuffer<u64>,
    vals: DeviceBuffer<u32>,
    mask: u64,
    size: [i64; 3],
    attrs: DeviceBuffer<[f32; 6]>,
    voxel_size: f32,
}

impl GpuField {
    pub(crate) fn upload(dev: &CudaDevice, field: &VoxelField) -> Result<GpuField, MeshError> {
        let err = gpu_err("voxel field upload");
        let (keys, vals, mask, size) = field.hash().raw();
        // A launch needs a valid pointer even for an empty attribute table (all lookups miss).
        let attrs = if field.attrs().is_empty() {
            dev.upload_slice(&[[0.0f32; 6]])
        } else {
            dev.upload_slice(field.attrs())
        };
        Ok(GpuField {
            keys: dev.upload_slice(keys).map_err(&err)?,
            vals: dev.upload_slice(vals).map_err(&err)?,
            mask,
            size,
            attrs: attrs.map_err(&err)?,
            voxel_size: field.voxel_size(),
        })
    }
}

/// Surface points snapped onto a tree's surface, kept on the device for the voxel sampling.
pub(crate) struct SnappedPoints {
    /// At least one row (every launch needs a valid pointer); `n` of them are points.
    points: DeviceBuffer<[f32; 3]>,
    n: usize,
}

impl GpuBvh {
    /// The bake's snap (`bake.rs`): each texel's surface point moved to the closest point of
    /// the mesh (searched within `snap_radius`, else unbounded).
    pub(crate) fn snap(
        &self,
        points: &[[f32; 3]],
        snap_radius: f32,
    ) -> Result<SnappedPoints, MeshError> {
        let err = gpu_err("bake snap");
        // At least one row, so that every launch has a valid pointer.
        let p = self
            .dev
            .upload_slice(if points.is_empty() {
                &[[0.0; 3]]
            } else {
                points
            })
            .map_err(&err)?;
        let out = self
            .dev
            .alloc_slice::<[f32; 3]>(points.len().max(1))
            .map_err(&err)?;
        if !points.is_empty() {
            let mut a = Args::new();
            a.push(self.nodes.ptr())
                .push(self.tris.ptr())
                .push(p.ptr())
                .push(points.len() as i64)
                .push(snap_radius)
                .push(out.ptr());
            self.launch("bake snap", "mesh_bake_snap", points.len(), &mut a)?;
        }
        Ok(SnappedPoints {
            points: out,
            n: points.len(),
        })
    }

    /// Samples `field` trilinearly at each snapped point and quantises: 6 bytes per point.
    pub(crate) fn sample_snapped(
        &self,
        field: &GpuField,
        snapped: &SnappedPoints,
    ) -> Result<Vec<[u8; 6]>, MeshError> {
        let n = snapped.n;
        if n == 0 {
            return Ok(Vec::new());
        }
        let err = gpu_err("bake sample");
        let out = self.dev.alloc_slice::<[u8; 6]>(n).map_err(&err)?;
        let mut a = Args::new();
        a.push(snapped.points.ptr())
            .push(n as i64)
            .push(field.keys.ptr())
            .push(field.vals.ptr())
            .push(field.mask)
            .push(field.size[0])
            .push(field.size[1])
            .push(field.size[2])
            .push(field.attrs.ptr())
            .push(field.voxel_size)
            .push(out.ptr());
        self.launch("bake sample", "mesh_bake_sample", n, &mut a)?;
        out.download().map_err(&err)
    }
}

#[cfg(test)]
mod host_check;

#[cfg(test)]
mod tests {
    use super::*;

    /// CI's kernel check for this crate (as t2-tensor's for its own): the mesh kernels must
    /// compile with NVRTC for sm_90 with no GPU; skipped without libnvrtc unless
    /// `TRELLIS2_REQUIRE_NVRTC=1` (CI), which turns a missing NVRTC into a failure.
    #[test]
    fn mesh_kernels_compile_with_nvrtc_for_sm90() {
        match t2_tensor::cuda::kernels::nvrtc_check_sm90(KERNELS) {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("skipped: libnvrtc not found (set TRELLIS2_REQUIRE_NVRTC=1 to fail)")
            }
            Err(e) => panic!("{e}"),
        }
    }
}
