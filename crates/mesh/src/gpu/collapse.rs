//! The parallel edge collapse's step on the GPU (`collapse.cu`; the algorithm and its CPU twin
//! are in `crate::collapse`). The mesh stays on the device between steps; each step reads back
//! three counts (edges, vertices and faces left).

use t2_tensor::cuda::{Args, CudaDevice, DeviceBuffer, KernelSource};

use super::gpu_err;
use super::prims::Prims;
use crate::collapse::{CollapseParams, CollapseReport, CollapseStepper, check_input, run};
use crate::error::MeshError;
use crate::types::TriMesh;

pub static COLLAPSE: KernelSource = KernelSource {
    name: "mesh_collapse",
    code: concat!(include_str!("exact.cuh"), include_str!("collapse.cu")),
    arch_suffix: "",
};

const BLOCK: u32 = 256;

/// Simplifies `mesh` towards `target_faces` on `dev` (same result as `collapse_cpu`).
pub fn collapse_gpu(
    dev: &CudaDevice,
    mesh: &TriMesh,
    target_faces: usize,
    params: &CollapseParams,
) -> Result<(TriMesh, CollapseReport), MeshError> {
    check_input(mesh, target_faces)?;
    collapse_resident(DeviceMesh::upload(dev, mesh)?, target_faces, params)
}

/// [`collapse_gpu`] of a mesh already on the device (the GPU remesh's output), unchecked:
/// its producer guarantees valid ids and finite positions.
pub(crate) fn collapse_resident(
    mesh: DeviceMesh,
    target_faces: usize,
    params: &CollapseParams,
) -> Result<(TriMesh, CollapseReport), MeshError> {
    let stepper = GpuStepper {
        dev: mesh.dev,
        verts: mesh.verts,
        faces: mesh.faces,
        nv: mesh.nv,
        nf: mesh.nf,
        params: *params,
    };
    run(stepper, target_faces, params)
}

/// A triangle mesh in device memory: positions as 3 f32 and faces as 3 u32 per row (the
/// buffers may be longer than `nv` / `nf` rows).
pub struct DeviceMesh {
    pub(crate) dev: CudaDevice,
    pub(crate) verts: DeviceBuffer<f32>,
    pub(crate) faces: DeviceBuffer<u32>,
    pub(crate) nv: usize,
    pub(crate) nf: usize,
}

impl DeviceMesh {
    pub fn upload(dev: &CudaDevice, mesh: &TriMesh) -> Result<DeviceMesh, MeshError> {
        let err = gpu_err("mesh upload");
        Ok(DeviceMesh {
            dev: dev.clone(),
            verts: dev
                .upload_slice(bytemuck::cast_slice::<[f32; 3], f32>(&mesh.vertices))
                .map_err(&err)?,
            faces: dev
                .upload_slice(bytemuck::cast_slice::<[u32; 3], u32>(&mesh.faces))
                .map_err(&err)?,
            nv: mesh.vertices.len(),
            nf: mesh.faces.len(),
        })
    }

    pub fn face_count(&self) -> usize {
        self.nf
    }

    pub fn download(&self) -> Result<TriMesh, MeshError> {
        let err = gpu_err("mesh download");
        let verts = self.verts.download().map_err(&err)?;
        let faces = self.faces.download().map_err(&err)?;
        Ok(TriMesh {
            vertices: bytemuck::cast_slice::<f32, [f32; 3]>(&verts[..3 * self.nv]).to_vec(),
            faces: bytemuck::cast_slice::<u32, [u32; 3]>(&faces[..3 * self.nf]).to_vec(),
        })
    }
}

struct GpuStepper {
    dev: CudaDevice,
    verts: DeviceBuffer<f32>,
    faces: DeviceBuffer<u32>,
    nv: usize,
    nf: usize,
    params: CollapseParams,
}

impl GpuStepper {
    fn prims(&self) -> Prims<'_> {
        Prims::new(&self.dev, "decimate")
    }

    fn launch(&self, func: &str, n: usize, args: &mut Args) -> Result<(), MeshError> {
        self.prims().launch(&COLLAPSE, func, n, BLOCK, args)
    }

    fn alloc<T: bytemuck::Pod>(&self, len: usize) -> Result<DeviceBuffer<T>, MeshError> {
        self.prims().alloc(len)
    }

    fn fill_u32(&self, ptr: u64, n: usize, value: u32) -> Result<(), MeshError> {
        self.prims().fill_u32(ptr, n, value)
    }

    fn scan(&self, data: &DeviceBuffer<u32>, n: usize) -> Result<(), MeshError> {
        self.prims().exclusive_scan(data, n)
    }

    fn take(&self, at: &[(&DeviceBuffer<u32>, usize)]) -> Result<Vec<u32>, MeshError> {
        self.prims().take(at)
    }
}

impl CollapseStepper for GpuStepper {
    fn faces(&self) -> usize {
        self.nf
    }

    fn step(&mut self, threshold: f32) -> Result<usize, MeshError> {
        let (nv, nf) = (self.nv, self.nf);
        let (verts, faces) = (self.verts.ptr(), self.faces.ptr());
        // Each vertex's faces, in face order.
        let offsets = self.alloc::<u32>(nv + 1)?;
        self.fill_u32(offsets.ptr(), nv + 1, 0)?;
        let mut a = Args::new();
        a.push(faces).push(nf as i64).push(offsets.ptr());
        self.launch("collapse_count_vertex_faces", 3 * nf, &mut a)?;
        self.scan(&offsets, nv + 1)?;
        let cursor = self.alloc::<u32>(nv)?;
        self.prims().copy_u32(offsets.ptr(), nv, cursor.ptr())?;
        let ids = self.alloc::<u32>(3 * nf)?;
        let mut a = Args::new();
        a.push(faces)
            .push(nf as i64)
            .push(cursor.ptr())
            .push(ids.ptr());
        self.launch("collapse_fill_vertex_faces", 3 * nf, &mut a)?;
        drop(cursor);
        let mut a = Args::new();
        a.push(offsets.ptr()).push(nv as i64).push(ids.ptr());
        self.launch("collapse_sort_vertex_faces", nv, &mut a)?;

        // Edges and boundary vertices.
        let edge_offsets = self.alloc::<u32>(nv + 1)?;
        let boundary = self.alloc::<u8>(nv)?;
        self.fill_u32(edge_offsets.ptr() + 4 * nv as u64, 1, 0)?;
        // Both edge passes read each vertex's faces and write per-vertex edge data.
        let per_vertex = |edge_data: u64| {
            let mut a = Args::new();
            a.push(offsets.ptr())
                .push(ids.ptr())
                .push(faces)
                .push(nv as i64)
                .push(edge_offsets.ptr())
                .push(edge_data);
            a
        };
        self.launch("collapse_count_edges", nv, &mut per_vertex(boundary.ptr()))?;
        self.scan(&edge_offsets, nv + 1)?;
        let ne = self.take(&[(&edge_offsets, nv)])?[0] as usize;
        if ne == 0 {
            return Ok(nf);
        }
        let edges = self.alloc::<u32>(2 * ne)?;
        self.launch("collapse_fill_edges", nv, &mut per_vertex(edges.ptr()))?;
        drop(edge_offsets);

        let costs = self.alloc::<f32>(ne)?;
        let mut a = Args::new();
        a.push(verts)
            .push(faces)
            .push(offsets.ptr())
            .push(ids.ptr())
            .push(boundary.ptr())
            .push(edges.ptr())
            .push(ne as i64)
            .push(self.params.lambda_edge_length)
            .push(self.params.lambda_skinny)
            .push(threshold)
            .push(costs.ptr());
        self.launch("collapse_edge_cost", ne, &mut a)?;

        let face_keys = self.alloc::<u64>(nf)?;
        self.prims().fill_u64(face_keys.ptr(), nf, u64::MAX)?;
        // Propagation and selection read the same candidates and face keys.
        let candidates = || {
            let mut a = Args::new();
            a.push(edges.ptr())
                .push(ne as i64)
                .push(costs.ptr())
                .push(threshold)
                .push(offsets.ptr())
                .push(ids.ptr())
                .push(face_keys.ptr());
            a
        };
        self.launch("collapse_propagate", ne, &mut candidates())?;

        // Keep flags with a trailing 0, scanned into the compaction maps.
        let vertex_map = self.alloc::<u32>(nv + 1)?;
        let face_map = self.alloc::<u32>(nf + 1)?;
        self.fill_u32(vertex_map.ptr(), nv, 1)?;
        self.fill_u32(vertex_map.ptr() + 4 * nv as u64, 1, 0)?;
        self.fill_u32(face_map.ptr(), nf, 1)?;
        self.fill_u32(face_map.ptr() + 4 * nf as u64, 1, 0)?;
        let mut a = candidates();
        a.push(boundary.ptr())
            .push(verts)
            .push(faces)
            .push(vertex_map.ptr())
            .push(face_map.ptr());
        self.launch("collapse_apply", ne, &mut a)?;
        drop((offsets, ids, boundary, edges, costs, face_keys));
        self.scan(&vertex_map, nv + 1)?;
        self.scan(&face_map, nf + 1)?;
        let left = self.take(&[(&vertex_map, nv), (&face_map, nf)])?;
        let (nv2, nf2) = (left[0] as usize, left[1] as usize);

        let new_verts = self.alloc::<f32>(3 * nv2)?;
        let mut a = Args::new();
        a.push(verts)
            .push(vertex_map.ptr())
            .push(nv as i64)
            .push(new_verts.ptr());
        self.launch("collapse_compact_vertices", nv, &mut a)?;
        let new_faces = self.alloc::<u32>(3 * nf2)?;
        let mut a = Args::new();
        a.push(faces)
            .push(face_map.ptr())
            .push(vertex_map.ptr())
            .push(nf as i64)
            .push(new_faces.ptr());
        self.launch("collapse_compact_faces", nf, &mut a)?;
        self.verts = new_verts;
        self.faces = new_faces;
        self.nv = nv2;
        self.nf = nf2;
        Ok(nf2)
    }

    fn into_mesh(self) -> Result<TriMesh, MeshError> {
        DeviceMesh {
            dev: self.dev,
            verts: self.verts,
            faces: self.faces,
            nv: self.nv,
            nf: self.nf,
        }
        .download()
    }
}
