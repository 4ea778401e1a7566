//! The reference's `o_voxel.postprocess.to_glb` flow (spec §4.4): fill holes → BVH of the
//! "original" mesh → remesh + decimate (production path) or decimate + cleanup (non-remesh path)
//! → UV unwrap → vertex normals → texture bake → GLB. Each step is timed for the bench.

use std::time::{Duration, Instant};

use t2_tensor::Device;

use crate::bvh::Bvh;
use crate::cleanup::{cleanup, remove_degenerate_faces, vertex_normals};
use crate::decimate::{DecimateReport, decimate_on, decimate_resident};
use crate::error::MeshError;
use crate::glb::{TextureFormat, write_glb};
use crate::gpu::GpuBvh;
use crate::holes::{DEFAULT_MAX_HOLE_PERIMETER, fill_holes};
use crate::remesh::{RemeshParams, Remeshed, remesh_narrow_band_dc_staged};
use crate::surface::SurfaceIndex;
use crate::topology::compact_vertices;
use crate::types::{MeshWithVoxel, TexturedMesh, TriMesh};
use crate::{bake, uv};

/// Small connected components below this area are dropped on the non-remesh path.
const MIN_COMPONENT_AREA: f32 = 1e-5;

/// `to_glb` parameters. `Default` is the production setting of the reference app (`app.py`:
/// 500k faces, 2048² textures, remesh with band 1 and no projection); `to_glb`'s own defaults
/// differ (no remesh, projection 0.9).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GlbParams {
    pub decimation_target: usize,
    /// 512, 1024, 2048 or 4096.
    pub texture_size: u32,
    pub remesh: bool,
    pub remesh_band: f32,
    pub remesh_project: f32,
    pub texture_format: TextureFormat,
}

impl Default for GlbParams {
    fn default() -> Self {
        GlbParams {
            decimation_target: 500_000,
            texture_size: 2048,
            remesh: true,
            remesh_band: 1.0,
            remesh_project: 0.0,
            texture_format: TextureFormat::Png,
        }
    }
}

impl GlbParams {
    pub fn validate(&self) -> Result<(), MeshError> {
        let bad = |name, reason: String| Err(MeshError::InvalidParameter { name, reason });
        if !matches!(self.texture_size, 512 | 1024 | 2048 | 4096) {
            return bad(
                "texture_size",
                format!("{} is not one of 512, 1024, 2048, 4096", self.texture_size),
            );
        }
        if self.decimation_target < 4 {
            return bad(
                "decimation_target",
                format!("{} is below 4 faces", self.decimation_target),
            );
        }
        if !(self.remesh_band > 0.0 && self.remesh_band <= 8.0) {
            return bad(
                "remesh_band",
                format!("{} is not in (0, 8]", self.remesh_band),
            );
        }
        if !(0.0..=1.0).contains(&self.remesh_project) {
            return bad(
                "remesh_project",
                format!("{} is not in [0, 1]", self.remesh_project),
            );
        }
        Ok(())
    }
}

/// Process CPU seconds (all threads), supplied by callers that want per-step CPU time next to
/// wall time (benches on shared machines).
pub type CpuClock = fn() -> f64;

/// One timed step.
#[derive(Clone, Debug)]
pub struct StepTime {
    pub name: &'static str,
    pub wall: Duration,
    /// CPU seconds spent in the step, when a [`CpuClock`] was given.
    pub cpu_seconds: Option<f64>,
}

/// Time per step and the sizes in between.
#[derive(Clone, Debug, Default)]
pub struct GlbReport {
    pub steps: Vec<StepTime>,
    cpu_clock: Option<CpuClock>,
    pub input_faces: usize,
    pub remeshed_faces: usize,
    pub decimate: Option<DecimateReport>,
    pub output_faces: usize,
    pub output_vertices: usize,
    pub charts: u32,
    /// UV unwrap seconds: our charts + LSCM, the crate's segmentation, flattening, packing,
    /// output (see `UvMesh`).
    pub uv_stage_seconds: [f64; 5],
    /// Charts our LSCM left to the crate.
    pub uv_handed_off: u32,
    /// Fraction of the texture covered by charts.
    pub atlas_utilization: f32,
    /// Empty texels around each chart (below `uv::CHART_PADDING` where the charts fit only
    /// that way).
    pub chart_padding: u32,
    /// Remesh phases and their wall seconds (see `remesh_narrow_band_dc_timed`).
    pub remesh_phases: Vec<(&'static str, f64)>,
    /// Seconds per phase of the bake.
    pub bake_phases: Vec<(&'static str, f64)>,
    pub covered_texels: usize,
}

impl GlbReport {
    fn time<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        let cpu0 = self.cpu_clock.map(|c| c());
        let t = Instant::now();
        let out = f();
        let wall = t.elapsed();
        let cpu_seconds = self.cpu_clock.zip(cpu0).map(|(c, c0)| c() - c0);
        self.steps.push(StepTime {
            name,
            wall,
            cpu_seconds,
        });
        out
    }
}

/// Everything up to the textured mesh (no serialisation), on the CPU.
pub fn to_textured_mesh(
    input: &MeshWithVoxel,
    p: &GlbParams,
) -> Result<(TexturedMesh, GlbReport), MeshError> {
    to_textured_mesh_timed(input, p, None)
}

/// [`to_textured_mesh`], also recording CPU seconds per step with `cpu_clock`.
pub fn to_textured_mesh_timed(
    input: &MeshWithVoxel,
    p: &GlbParams,
    cpu_clock: Option<CpuClock>,
) -> Result<(TexturedMesh, GlbReport), MeshError> {
    to_textured_mesh_on(input, p, &Device::Cpu, cpu_clock)
}

/// [`to_textured_mesh_timed`] with the heavy steps on `device`: on a CUDA device the BVH is
/// built there (`GpuBvh::build`) and the remesh's closest-point queries and the bake's snap +
/// voxel sampling run on it (`gpu` module); fill_holes, UV unwrap and the raster stay on the
/// CPU. The CPU (the default everywhere else) is the numerical reference.
pub fn to_textured_mesh_on(
    input: &MeshWithVoxel,
    p: &GlbParams,
    device: &Device,
    cpu_clock: Option<CpuClock>,
) -> Result<(TexturedMesh, GlbReport), MeshError> {
    check_voxels(input)?;
    prepare_geometry(&input.mesh, input.resolution, p, device, cpu_clock)?.bake(input)
}

fn check_resolution(resolution: u32) -> Result<(), MeshError> {
    if resolution == 0 || resolution > 1 << 14 {
        return Err(MeshError::InvalidParameter {
            name: "resolution",
            reason: format!("{resolution} is not in 1..=16384"),
        });
    }
    Ok(())
}

fn check_voxels(input: &MeshWithVoxel) -> Result<(), MeshError> {
    check_resolution(input.resolution)?;
    if input.coords.len() != input.attrs.len() {
        return Err(MeshError::LengthMismatch {
            what: "voxel attrs",
            expected: input.coords.len(),
            got: input.attrs.len(),
        });
    }
    Ok(())
}

/// The GLB steps that need only the surface (fill holes, BVH, remesh, decimate, UV unwrap,
/// normals), done: what is left is the bake, which needs the texture voxels. Splitting here
/// lets a caller run these CPU-heavy steps while the texture decoder runs on the GPU.
pub struct GlbGeometry {
    params: GlbParams,
    resolution: u32,
    /// Closest-point index of the hole-filled input surface (the bake snaps texels onto it).
    index: SurfaceIndex,
    /// The GPU bake's voxel-free part, done with the surface steps.
    bake_plan: Option<bake::BakePlan>,
    uv_mesh: uv::UvMesh,
    normals: Vec<[f32; 3]>,
    report: GlbReport,
}

/// The surface steps of [`to_textured_mesh_on`] on `mesh` (decoded at `resolution`).
pub fn prepare_geometry(
    mesh: &TriMesh,
    resolution: u32,
    p: &GlbParams,
    device: &Device,
    cpu_clock: Option<CpuClock>,
) -> Result<GlbGeometry, MeshError> {
    p.validate()?;
    check_resolution(resolution)?;
    let mut r = GlbReport {
        input_faces: mesh.faces.len(),
        cpu_clock,
        ..Default::default()
    };
    let mut original = mesh.clone();
    r.time("fill_holes", || {
        fill_holes(&mut original, DEFAULT_MAX_HOLE_PERIMETER)
    })?;
    let index = match device {
        Device::Cpu => {
            SurfaceIndex::Cpu(r.time("bvh", || Bvh::new(&original.vertices, &original.faces))?)
        }
        Device::Cuda(dev) => SurfaceIndex::Cuda(r.time("bvh", || {
            GpuBvh::build(dev, &original.vertices, &original.faces)
        })?),
    };
    let gpu = match &index {
        SurfaceIndex::Cuda(g) => Some(g),
        SurfaceIndex::Cpu(_) => None,
    };

    let mut mesh = if p.remesh {
        let params = RemeshParams::for_grid(resolution, p.remesh_band, p.remesh_project);
        let mut phases = Vec::new();
        let remeshed = r.time("remesh", || {
            remesh_narrow_band_dc_staged(index.as_surface(), &params, &mut phases)
        })?;
        r.remesh_phases = phases;
        let (m, d) = match remeshed {
            Remeshed::Host(remeshed) => {
                r.remeshed_faces = remeshed.faces.len();
                r.time("decimate", || {
                    decimate_on(&remeshed, p.decimation_target, gpu.map(GpuBvh::device))
                })?
            }
            Remeshed::Device(remeshed) => {
                r.remeshed_faces = remeshed.face_count();
                r.time("decimate", || {
                    decimate_resident(remeshed, p.decimation_target)
                })?
            }
        };
        r.decimate = Some(d);
        m
    } else {
        let dev = gpu.map(GpuBvh::device);
        non_remesh_path(&original, p.decimation_target, dev, &mut r)?
    };
    drop(original);
    r.time("remove_degenerate", || {
        remove_degenerate_faces(&mut mesh);
        compact_vertices(&mut mesh.vertices, &mut mesh.faces);
    });
    if mesh.faces.is_empty() {
        return Err(MeshError::Empty("no faces left after simplification"));
    }
    let uv_mesh = r.time("uv_unwrap", || uv::unwrap(&mesh, p.texture_size))?;
    r.charts = uv_mesh.chart_count;
    r.uv_stage_seconds = uv_mesh.stage_seconds;
    r.uv_handed_off = uv_mesh.handed_off_charts;
    r.atlas_utilization = uv_mesh.utilization;
    r.chart_padding = uv_mesh.padding;
    let normals = r.time("normals", || {
        let n = vertex_normals(&mesh.vertices, &mesh.faces);
        uv_mesh
            .xref
            .iter()
            .map(|&i| n[i as usize])
            .collect::<Vec<_>>()
    });
    // On a GPU the bake's raster and snap need no texture voxels: done here, off the path
    // that waits for the texture decoder.
    let bake_plan = match &index {
        SurfaceIndex::Cuda(g) => Some(r.time("bake_plan", || {
            bake::plan_on_gpu(&uv_mesh, g, p.texture_size, resolution)
        })?),
        SurfaceIndex::Cpu(_) => None,
    };
    Ok(GlbGeometry {
        params: *p,
        resolution,
        index,
        bake_plan,
        uv_mesh,
        normals,
        report: r,
    })
}

impl GlbGeometry {
    /// The step report so far (the surface steps).
    pub fn report(&self) -> &GlbReport {
        &self.report
    }

    /// Bakes `voxels` (the texture decoder's output on the same grid; its `mesh` is not read)
    /// onto the unwrapped surface.
    pub fn bake(self, voxels: &MeshWithVoxel) -> Result<(TexturedMesh, GlbReport), MeshError> {
        check_voxels(voxels)?;
        if voxels.resolution != self.resolution {
            return Err(MeshError::InvalidParameter {
                name: "resolution",
                reason: format!(
                    "the voxels are on a {}³ grid, the surface was decoded at {}³",
                    voxels.resolution, self.resolution
                ),
            });
        }
        let GlbGeometry {
            params: p,
            index,
            bake_plan,
            uv_mesh,
            normals,
            report: mut r,
            ..
        } = self;
        let baked = r.time("bake", || match (bake_plan, &index) {
            (Some(plan), SurfaceIndex::Cuda(g)) => bake::bake_planned(plan, g, voxels),
            _ => bake::bake_on(&uv_mesh, index.as_surface(), voxels, p.texture_size),
        })?;
        r.covered_texels = baked.covered;
        r.bake_phases = baked.phases;
        r.output_faces = uv_mesh.faces.len();
        r.output_vertices = uv_mesh.positions.len();
        let out = TexturedMesh {
            positions: uv_mesh.positions,
            normals,
            uvs: uv_mesh.uvs,
            faces: uv_mesh.faces,
            base_color: baked.base_color,
            metallic_roughness: baked.metallic_roughness,
            double_sided: !p.remesh,
        };
        Ok((out, r))
    }

    /// [`bake`](Self::bake), then the GLB bytes in the requested texture format.
    pub fn bake_glb(
        self,
        voxels: &MeshWithVoxel,
    ) -> Result<(Vec<u8>, TexturedMesh, GlbReport), MeshError> {
        let format = self.params.texture_format;
        let (tm, mut r) = self.bake(voxels)?;
        let glb = r.time("glb", || write_glb(&tm, format))?;
        Ok((glb, tm, r))
    }
}

/// The reference's non-remesh branch: simplify to 3× target, clean, simplify to target, clean,
/// unify orientation. Hole filling can add a few faces back; a last decimation keeps the target.
fn non_remesh_path(
    original: &TriMesh,
    target: usize,
    gpu: Option<&t2_tensor::cuda::CudaDevice>,
    r: &mut GlbReport,
) -> Result<TriMesh, MeshError> {
    let (mut m, _) = r.time("decimate_3x", || {
        decimate_on(original, target.saturating_mul(3), gpu)
    })?;
    r.time("cleanup", || -> Result<(), MeshError> {
        cleanup(&mut m, MIN_COMPONENT_AREA, false)?;
        fill_holes(&mut m, DEFAULT_MAX_HOLE_PERIMETER)?;
        Ok(())
    })?;
    let (mut m, d) = r.time("decimate", || decimate_on(&m, target, gpu))?;
    r.decimate = Some(d);
    r.time("cleanup_final", || -> Result<(), MeshError> {
        cleanup(&mut m, MIN_COMPONENT_AREA, false)?;
        fill_holes(&mut m, DEFAULT_MAX_HOLE_PERIMETER)?;
        if m.faces.len() > target {
            m = decimate_on(&m, target, gpu)?.0;
            cleanup(&mut m, MIN_COMPONENT_AREA, false)?;
        }
        crate::cleanup::unify_face_orientations(&mut m);
        Ok(())
    })?;
    Ok(m)
}

/// The whole flow to GLB bytes.
pub fn to_glb(
    input: &MeshWithVoxel,
    p: &GlbParams,
) -> Result<(Vec<u8>, TexturedMesh, GlbReport), MeshError> {
    to_glb_timed(input, p, None)
}

/// [`to_glb`], also recording CPU seconds per step with `cpu_clock`.
pub fn to_glb_timed(
    input: &MeshWithVoxel,
    p: &GlbParams,
    cpu_clock: Option<CpuClock>,
) -> Result<(Vec<u8>, TexturedMesh, GlbReport), MeshError> {
    to_glb_on(input, p, &Device::Cpu, cpu_clock)
}

/// [`to_glb_timed`] with the heavy steps on `device` (see [`to_textured_mesh_on`]).
pub fn to_glb_on(
    input: &MeshWithVoxel,
    p: &GlbParams,
    device: &Device,
    cpu_clock: Option<CpuClock>,
) -> Result<(Vec<u8>, TexturedMesh, GlbReport), MeshError> {
    check_voxels(input)?;
    prepare_geometry(&input.mesh, input.resolution, p, device, cpu_clock)?.bake_glb(input)
}
