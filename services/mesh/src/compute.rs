//! The real mesh service: the reference's `decode_latent` (SC-VAE shape decoder → flexible dual
//! grid mesh, texture decoder guided by the shape decoder's subdivisions → `MeshWithVoxel`,
//! `t2-models`), then `o_voxel.postprocess.to_glb` (`t2-mesh`: fill holes, remesh, decimate,
//! UV unwrap, bake, GLB) and the optional turntable preview (`t2-mesh::render`, MP4).
//!
//! The latents are checked before any model runs: they must come from the same model set
//! (model id), sit on the latent grid of their resolution, be sorted and unique, have the
//! decoders' channel count and finite values. Cancellation is checked between stages (decode,
//! GLB, video); a stage itself runs to its end.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use t2_mesh::render::{RenderOptions, VideoOptions};
use t2_mesh::{GlbParams, MeshError, MeshWithVoxel, TextureFormat as MeshTextureFormat, TriMesh};
use t2_models::config::CheckpointConfig;
use t2_models::decoders::Subdivide;
use t2_models::nn::Precision;
use t2_models::pipeline::{LoadOptions, Residency, SparseLatent, Trellis2Pipeline};
use t2_proto::common::v1::{DenseTensor, Latents, ServiceInfo};
use t2_proto::mesh::v1::{ExportParams, ExtractRequest, Stats, TextureFormat};
use t2_proto::{ErrorCode, ProgressSink, ServiceError};
use t2_tensor::Device;

use crate::bench_surface::BenchSurfaces;
use crate::shared::lane::{Cancel, Lane, service_info};
use crate::shared::loading::Loaded;
use crate::shared::model_dir;
use crate::shared::model_error::model_error;
use crate::shared::warm_up::warm_up;
use crate::{Artifact, ExtractOutput, MeshExtractor, SERVICE, TexLatents, tex_never_came};

/// The `pipeline.json` models the mesh service decodes with.
pub const MESH_MODELS: [&str; 2] = ["shape_slat_decoder", "tex_slat_decoder"];
/// Output resolutions the pipelines produce: 512, 1024, and the 1536 cascade's back-off steps.
pub const RESOLUTIONS: [u32; 6] = [512, 1024, 1152, 1280, 1408, 1536];
/// The state format's token bound (twice the 1536 cascade's budget, with room).
pub const MAX_TOKENS: usize = 1 << 20;

/// Turntable preview settings.
#[derive(Clone, Debug, PartialEq)]
pub struct PreviewSettings {
    /// Frames of the turntable (the reference renders 120).
    pub frames: u32,
    /// Side of one rendered view in pixels (a frame is 2R × 1.5R); a multiple of 4.
    pub resolution: u32,
}

impl Default for PreviewSettings {
    /// The reference's 120 frames at t2-mesh's default 512-px views (measured ~27 CPU-s for a
    /// 1M-face asset; the reference's 1024 costs 4× that on a CPU).
    fn default() -> Self {
        let v = VideoOptions::default();
        Self {
            frames: v.num_frames,
            resolution: v.render.resolution,
        }
    }
}

impl PreviewSettings {
    fn video_options(&self) -> VideoOptions {
        VideoOptions {
            num_frames: self.frames,
            render: RenderOptions {
                resolution: self.resolution,
                ..RenderOptions::default()
            },
            ..VideoOptions::default()
        }
    }
}

/// Loaded decoders.
pub struct MeshModels {
    pipe: Arc<Trellis2Pipeline>,
    /// Where the GLB steps' heavy kernels run (BVH queries, remesh band, bake): the decoders'
    /// GPU, or the CPU when they are on the CPU or `TRELLIS2_MESH_GPU=0`.
    mesh_device: Device,
    model_id: String,
    shape_channels: usize,
    tex_channels: usize,
    dir: PathBuf,
    /// Benchmark mode only: the stand-in surface for the GLB steps.
    bench_surfaces: Option<Arc<BenchSurfaces>>,
}

fn latent_channels(pipe: &Trellis2Pipeline, key: &str) -> Result<usize, String> {
    let files = pipe
        .config
        .model_files(key)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("pipeline.json lists no {key}"))?;
    let ckpt = CheckpointConfig::load(&files.config).map_err(|e| e.to_string())?;
    ckpt.args
        .get("latent_channels")
        .and_then(|v| v.as_u64())
        .map(|c| c as usize)
        .ok_or_else(|| format!("{}: no latent_channels", files.config.display()))
}

/// Environment switch for the CUDA path of the GLB steps, on by default with a GPU: on the
/// H200 its textures are byte-identical to the CPU path's and remesh/bake run 4.2×/2.4× faster
/// (BENCHMARKS.md, "Mesh on the H200"). `0` keeps them on the CPU (the numerical reference).
pub const MESH_GPU_ENV: &str = "TRELLIS2_MESH_GPU";

fn mesh_device(decoders: &Device) -> Result<Device, String> {
    let on = match std::env::var(MESH_GPU_ENV).as_deref().map(str::trim) {
        Err(_) | Ok("" | "1" | "true") => true,
        Ok("0" | "false") => false,
        Ok(v) => return Err(format!("{MESH_GPU_ENV}={v:?}: want 1/true or 0/false")),
    };
    match decoders {
        Device::Cuda(c) if on => {
            // Compile/load the mesh kernels now, not on the first request.
            t2_mesh::gpu::warm_up(c).map_err(|e| e.to_string())?;
            Ok(decoders.clone())
        }
        _ => Ok(Device::Cpu),
    }
}

impl MeshModels {
    pub fn load(dir: &Path, device: &Device) -> Result<Self, String> {
        let opts = LoadOptions {
            precision: Precision::Reference,
            device: device.clone(),
            models: Some(MESH_MODELS.iter().map(|s| s.to_string()).collect()),
            image_cond: false,
            // `TRELLIS2_LOW_VRAM=1`: one network on the GPU at a time.
            residency: Residency::from_env().map_err(|e| e.to_string())?,
        };
        let pipe = Trellis2Pipeline::load(dir, &opts).map_err(|e| e.to_string())?;
        if let Device::Cuda(d) = device {
            d.warm_up().map_err(|e| e.to_string())?;
        }
        Self::from_pipeline(Arc::new(pipe), dir)
    }

    /// Wraps an already loaded pipeline (in-process mode shares one between services).
    pub fn from_pipeline(pipe: Arc<Trellis2Pipeline>, dir: &Path) -> Result<Self, String> {
        let bench_surfaces = pipe.bench_structure().then(|| {
            let s = Arc::new(BenchSurfaces::default());
            s.prepare_in_background(Arc::clone(&pipe));
            s
        });
        Ok(Self {
            bench_surfaces,
            mesh_device: mesh_device(pipe.device())?,
            model_id: model_dir::model_id(dir).map_err(|e| e.to_string())?,
            shape_channels: latent_channels(&pipe, "shape_slat_decoder")?,
            tex_channels: latent_channels(&pipe, "tex_slat_decoder")?,
            pipe,
            dir: dir.to_path_buf(),
        })
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }
}

/// Decoding and export over loaded (or loading) decoders.
pub struct MeshService {
    models: Arc<Loaded<MeshModels>>,
    lane: Lane,
    device: Device,
    preview: PreviewSettings,
}

impl MeshService {
    /// Starts loading the decoders of `dir` on `device`; NOT_SERVING until loaded.
    pub fn start(dir: &Path, device: Device, preview: PreviewSettings) -> Arc<Self> {
        let (m, d) = (dir.to_path_buf(), device.clone());
        Arc::new(Self {
            models: Loaded::spawn("mesh", move || {
                let models = MeshModels::load(&m, &d)?;
                warm_up("mesh", &models.pipe);
                Ok(models)
            }),
            lane: Lane::for_device(SERVICE, &device),
            device,
            preview,
        })
    }

    pub fn with_models(
        models: MeshModels,
        load_time_seconds: f64,
        preview: PreviewSettings,
    ) -> Arc<Self> {
        let device = models.pipe.device().clone();
        Arc::new(Self {
            models: Loaded::ready(models, load_time_seconds),
            lane: Lane::for_device(SERVICE, &device),
            device,
            preview,
        })
    }

    pub fn running(&self) -> usize {
        self.lane.running()
    }
}

#[async_trait::async_trait]
impl MeshExtractor for MeshService {
    async fn info(&self) -> ServiceInfo {
        let models = match self.models.get() {
            Ok(m) => vec![format!("{} ({})", m.model_id, m.dir.display())],
            Err(_) => vec![],
        };
        service_info(SERVICE, self.models.status(), models, &self.device)
    }

    async fn extract(
        &self,
        request: ExtractRequest,
        progress: ProgressSink,
    ) -> Result<ExtractOutput, ServiceError> {
        crate::validate_request(&request)?;
        let models = self.models.get()?;
        let latents = request.latents.as_ref().expect("validated");
        let (shape, resolution) = checked_shape(latents, &models)?;
        let tex = checked_tex(
            latents.tex_slat.as_ref().expect("validated"),
            &shape,
            &models,
        )?;
        self.run_export(models, shape, resolution, &request, progress, |_, _, _| {
            Ok(tex)
        })
        .await
    }

    /// Decodes the shape and runs the GLB's surface steps while the texture latents are still
    /// being sampled; in low-VRAM mode (one network on the device at a time) it waits for them
    /// first, as `extract`.
    async fn extract_staged(
        &self,
        request: ExtractRequest,
        tex: TexLatents,
        progress: ProgressSink,
    ) -> Result<ExtractOutput, ServiceError> {
        crate::validate_staged_request(&request)?;
        let models = self.models.get()?;
        if models.pipe.residency() == Residency::OneAtATime {
            let request = crate::with_tex(request, tex).await?;
            return self.extract(request, progress).await;
        }
        let latents = request.latents.as_ref().expect("validated");
        let (shape, resolution) = checked_shape(latents, &models)?;
        self.run_export(
            models,
            shape,
            resolution,
            &request,
            progress,
            |m, shape, cancel| checked_tex(&wait_for(tex, cancel)?, shape, m),
        )
        .await
    }
}

impl MeshService {
    /// `export` of `request` on the lane, the texture latents from `tex` (called on the lane's
    /// thread once the shape is decoded).
    async fn run_export(
        &self,
        models: Arc<MeshModels>,
        shape: SparseLatent,
        resolution: u32,
        request: &ExtractRequest,
        progress: ProgressSink,
        tex: impl FnOnce(&MeshModels, &SparseLatent, &Cancel) -> Result<SparseLatent, ServiceError>
        + Send
        + 'static,
    ) -> Result<ExtractOutput, ServiceError> {
        let params = glb_params(request.params.as_ref().expect("validated"))?;
        let video = request.preview_video.then(|| self.preview.video_options());
        self.lane
            .run(move |cancel| {
                export(
                    &models,
                    &shape,
                    |cancel| tex(&models, &shape, cancel),
                    resolution,
                    &params,
                    video.as_ref(),
                    cancel,
                    &progress,
                )
            })
            .await
    }
}

/// The texture latents of a staged extraction, waited for on the lane's thread (checking for
/// cancellation meanwhile).
fn wait_for(mut tex: TexLatents, cancel: &Cancel) -> Result<DenseTensor, ServiceError> {
    use tokio::sync::oneshot::error::TryRecvError;
    loop {
        match tex.try_recv() {
            Ok(t) => return t,
            Err(TryRecvError::Closed) => return Err(tex_never_came()),
            Err(TryRecvError::Empty) => {
                cancel.check()?;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }
}

fn invalid(msg: impl Into<String>) -> ServiceError {
    ServiceError::InvalidArgument(msg.into())
}

/// The shape latents as decoder input and their resolution, after every check of the module
/// docs.
fn checked_shape(l: &Latents, m: &MeshModels) -> Result<(SparseLatent, u32), ServiceError> {
    if l.model_id != m.model_id {
        return Err(invalid(format!(
            "the latents were made by model {:?}; this mesh service decodes {:?}",
            l.model_id, m.model_id
        )));
    }
    if !RESOLUTIONS.contains(&l.resolution) {
        return Err(invalid(format!(
            "resolution {} is not one of {RESOLUTIONS:?}",
            l.resolution
        )));
    }
    let coords = t2_proto::tensor::to_i32(l.coords.as_ref().expect("validated"), 2)
        .map_err(tensor_err("coords"))?;
    let shape_t = l.shape_slat.as_ref().expect("validated");
    let shape = t2_proto::tensor::to_f32(shape_t, 2).map_err(tensor_err("shape_slat"))?;
    let n = coords.len() / 4;
    if l.coords.as_ref().is_some_and(|c| c.shape[1] != 4) {
        return Err(invalid("latents.coords must be [N, 4]"));
    }
    if n == 0 || n > MAX_TOKENS {
        return Err(invalid(format!(
            "latents have {n} tokens; expected 1..={MAX_TOKENS}"
        )));
    }
    if shape_t.shape != [n as u64, m.shape_channels as u64] {
        return Err(invalid(format!(
            "latents.shape_slat is {:?}; the decoder needs [{n}, {}]",
            shape_t.shape, m.shape_channels
        )));
    }
    if !shape.iter().all(|v| v.is_finite()) {
        return Err(invalid("latents contain NaN or infinite values"));
    }
    let grid = (l.resolution / 16) as i32;
    let coords: Vec<[i32; 4]> = coords
        .chunks_exact(4)
        .map(|c| [c[0], c[1], c[2], c[3]])
        .collect();
    for (i, c) in coords.iter().enumerate() {
        if c[0] != 0 || c[1..].iter().any(|&v| !(0..grid).contains(&v)) {
            return Err(invalid(format!(
                "latents.coords[{i}] = {c:?} is outside batch 0 of the {grid}³ latent grid"
            )));
        }
        if i > 0 && coords[i - 1] >= *c {
            return Err(invalid(format!(
                "latents.coords must be sorted and unique; row {i} is {c:?} after {:?}",
                coords[i - 1]
            )));
        }
    }
    let latent = SparseLatent {
        coords,
        feats: shape,
        channels: m.shape_channels,
    };
    Ok((latent, l.resolution))
}

/// The texture latents of `shape`'s tokens as decoder input, after the same checks.
fn checked_tex(
    t: &DenseTensor,
    shape: &SparseLatent,
    m: &MeshModels,
) -> Result<SparseLatent, ServiceError> {
    t2_proto::tensor::validate(t).map_err(|e| invalid(format!("latents.tex_slat: {e}")))?;
    let n = shape.len();
    let tex = t2_proto::tensor::to_f32(t, 2).map_err(tensor_err("tex_slat"))?;
    if t.shape != [n as u64, m.tex_channels as u64] {
        return Err(invalid(format!(
            "latents.tex_slat is {:?}; the decoder needs [{n}, {}]",
            t.shape, m.tex_channels
        )));
    }
    if !tex.iter().all(|v| v.is_finite()) {
        return Err(invalid("latents contain NaN or infinite values"));
    }
    Ok(SparseLatent {
        coords: shape.coords.clone(),
        feats: tex,
        channels: m.tex_channels,
    })
}

fn tensor_err(name: &'static str) -> impl Fn(t2_proto::tensor::TensorError) -> ServiceError {
    move |e| invalid(format!("latents.{name}: {e}"))
}

fn glb_params(p: &ExportParams) -> Result<GlbParams, ServiceError> {
    let g = GlbParams {
        decimation_target: p.decimation_target as usize,
        texture_size: p.texture_size,
        remesh: p.remesh,
        remesh_band: p.remesh_band,
        remesh_project: p.remesh_project,
        texture_format: match TextureFormat::try_from(p.texture_format) {
            Ok(TextureFormat::Webp) => MeshTextureFormat::Webp,
            _ => MeshTextureFormat::Png,
        },
    };
    g.validate().map_err(|e| invalid(e.to_string()))?;
    Ok(g)
}

fn mesh_error(e: MeshError) -> ServiceError {
    match e {
        MeshError::InvalidParameter { .. } => invalid(e.to_string()),
        MeshError::GpuOutOfMemory { .. } => ServiceError::failed(ErrorCode::CudaOom, e.to_string()),
        e => ServiceError::failed(ErrorCode::ExtractionError, e.to_string()),
    }
}

#[allow(clippy::too_many_arguments)]
fn export(
    m: &MeshModels,
    shape: &SparseLatent,
    tex: impl FnOnce(&Cancel) -> Result<SparseLatent, ServiceError> + Send,
    resolution: u32,
    params: &GlbParams,
    video: Option<&VideoOptions>,
    cancel: &Cancel,
    progress: &ProgressSink,
) -> Result<ExtractOutput, ServiceError> {
    // Seconds since the call began at each milestone, logged once at the end: where an
    // export's time goes (the texture latents may arrive long after the shape's).
    let t0 = Instant::now();
    let at = || t0.elapsed().as_secs_f64();
    progress.report("decode", 0, 1);
    // (Urgent on a shared device: see `Trellis2Pipeline::decode_shape`.)
    let (mesh, subs) = m
        .pipe
        .decode_shape(shape, resolution, Subdivide::Predict)
        .map_err(|e| model_error(e, ErrorCode::ExtractionError))?;
    let shape_decoded = at();
    cancel.check()?;
    // Benchmark mode: the GLB steps run on the analytic sphere (see `bench_surface`).
    let mesh = match m.bench_surfaces.as_ref().map(|s| s.get(resolution)) {
        Some(Some(sphere)) => TriMesh::clone(&sphere),
        Some(None) => {
            tracing::warn!(resolution, "benchmark mode: keeping the decoder's surface");
            mesh
        }
        None => mesh,
    };
    if mesh.faces.is_empty() {
        // The latents decode to no surface (e.g. an empty sparse structure); say so plainly
        // rather than letting the first mesh step fail on its empty input.
        return Err(ServiceError::failed(
            ErrorCode::ExtractionError,
            format!(
                "the generated shape has no surface: the shape decoder produced {} vertices \
                 and no faces, so there is nothing to export (another seed may give a shape)",
                mesh.vertices.len()
            ),
        ));
    }
    // The GLB's surface steps (remesh, decimate, UV unwrap: mostly CPU) need only the mesh, so
    // they run on their own thread while the texture latents arrive (staged) and the texture
    // decoder runs on the device.
    let (mut tex_arrived, mut tex_decoded) = (f64::NAN, f64::NAN);
    let ((geometry, geometry_ready), voxels) = std::thread::scope(|s| {
        let geometry = s.spawn(|| {
            let g = t2_mesh::prepare_geometry(&mesh, resolution, params, &m.mesh_device, None);
            (g, at())
        });
        let voxels = tex(cancel).and_then(|tex| {
            tex_arrived = at();
            let v = m
                .pipe
                .decode_texture(&tex, &subs)
                .map_err(|e| model_error(e, ErrorCode::ExtractionError));
            tex_decoded = at();
            v
        });
        let geometry = geometry
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (geometry, voxels)
    });
    let (coords, attrs) = voxels?;
    let fine_voxels = coords.len();
    progress.report("decode", 1, 1);
    cancel.check()?;
    progress.report("glb", 0, 1);
    let voxels = MeshWithVoxel {
        mesh,
        coords,
        attrs,
        resolution,
    };
    let (glb, textured, report) = geometry
        .and_then(|g| g.bake_glb(&voxels))
        .map_err(mesh_error)?;
    drop(voxels);
    progress.report("glb", 1, 1);
    let steps: Vec<String> = report
        .steps
        .iter()
        .map(|st| format!("{} {:.3}", st.name, st.wall.as_secs_f64()))
        .collect();
    if report.charts > 0 && report.chart_padding < t2_mesh::uv::CHART_PADDING {
        tracing::warn!(
            charts = report.charts,
            padding = report.chart_padding,
            "the UV charts fit the texture only with less padding; seams may bleed slightly"
        );
    }
    tracing::info!(
        faces = report.output_faces,
        vertices = report.output_vertices,
        texture_size = params.texture_size,
        fine_voxels,
        shape_decoded_s = shape_decoded,
        geometry_ready_s = geometry_ready,
        texture_latents_s = tex_arrived,
        texture_decoded_s = tex_decoded,
        baked_s = at(),
        steps = %steps.join(", "),
        "GLB exported"
    );
    let mut artifacts = vec![Artifact {
        name: "model.glb".into(),
        media_type: "model/gltf-binary".into(),
        data: Bytes::from(glb),
    }];
    if let Some(opts) = video {
        cancel.check()?;
        progress.report("video", 0, 1);
        let mp4 = t2_mesh::render::turntable_mp4(&textured, opts)
            .map_err(|e| ServiceError::failed(ErrorCode::RenderingError, e.to_string()))?;
        progress.report("video", 1, 1);
        artifacts.push(Artifact {
            name: "preview.mp4".into(),
            media_type: "video/mp4".into(),
            data: Bytes::from(mp4),
        });
    }
    Ok(ExtractOutput {
        artifacts,
        stats: Stats {
            vertices: report.output_vertices as u64,
            faces: report.output_faces as u64,
            texture_size: params.texture_size,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_out_of_memory_is_cuda_oom_and_bad_parameters_are_invalid() {
        let oom = MeshError::GpuOutOfMemory {
            step: "bake",
            msg: "out of device memory".into(),
        };
        assert_eq!(mesh_error(oom).code(), ErrorCode::CudaOom);
        let fault = MeshError::Gpu {
            step: "bake",
            msg: "illegal address".into(),
        };
        assert_eq!(mesh_error(fault).code(), ErrorCode::ExtractionError);
        let bad = MeshError::InvalidParameter {
            name: "texture_size",
            reason: "0".into(),
        };
        assert_eq!(mesh_error(bad).code(), ErrorCode::ValidationError);
    }
}
