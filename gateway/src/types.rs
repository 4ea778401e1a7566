//! Request and response bodies of the public API, with their validation. Requests reject
//! unknown fields and wrong JSON types (`"false"` is not a boolean); every range problem is
//! reported at once.

use serde::{Deserialize, Serialize};
use t2_proto::flow::v1::{GenerateRequest as FlowRequest, SamplerParams};
use t2_proto::mesh::v1::{ExportParams, TextureFormat};
use t2_svc_flow::params as fp;
use t2_svc_mesh as mp;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::image_check;
use crate::pipeline::{GeneratePlan, Timings};

/// `POST /generate` (and `POST /v1/jobs`, which also accepts `export`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateBody {
    /// Base64 PNG/JPEG/WebP (a `data:` URI prefix is accepted); ≤ 10 MB, ≤ 4096×4096.
    pub image: String,
    /// Default 42.
    pub seed: Option<u64>,
    /// `512`, `1024`, `1024_cascade` (default), `1536_cascade`.
    pub pipeline_type: Option<String>,
    pub ss_sampling_steps: Option<u32>,
    pub ss_guidance_strength: Option<f32>,
    pub ss_guidance_rescale: Option<f32>,
    pub ss_guidance_interval: Option<[f32; 2]>,
    pub ss_rescale_t: Option<f32>,
    pub shape_slat_sampling_steps: Option<u32>,
    pub shape_slat_guidance_strength: Option<f32>,
    pub shape_slat_guidance_rescale: Option<f32>,
    pub shape_slat_guidance_interval: Option<[f32; 2]>,
    pub shape_slat_rescale_t: Option<f32>,
    pub tex_slat_sampling_steps: Option<u32>,
    pub tex_slat_guidance_strength: Option<f32>,
    pub tex_slat_guidance_rescale: Option<f32>,
    pub tex_slat_guidance_interval: Option<[f32; 2]>,
    pub tex_slat_rescale_t: Option<f32>,
    /// Default 49152.
    pub max_num_tokens: Option<u32>,
    /// Render the turntable preview (default true).
    pub preview_video: Option<bool>,
    /// GLB export options; only for `/v1/jobs`.
    pub export: Option<ExportOptions>,
}

/// GLB export options (the `/extract_glb` fields without `state`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportOptions {
    /// Face target of the decimation, ≥ 1000 (default 1,000,000): the GLB has at most this many
    /// faces; like the reference's parallel decimation it lands a few percent under (0.4–4 % measured).
    pub decimation_target: Option<u32>,
    /// 512, 1024, 2048 or 4096 (default 4096).
    pub texture_size: Option<u32>,
    /// Default true.
    pub remesh: Option<bool>,
    /// Default 1.0.
    pub remesh_band: Option<f32>,
    /// Default 0.0.
    pub remesh_project: Option<f32>,
    /// `png` (default) or `webp`.
    pub texture_format: Option<String>,
}

/// `POST /extract_glb`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtractBody {
    /// The `state` returned by `/generate` (base64).
    pub state: String,
    pub decimation_target: Option<u32>,
    pub texture_size: Option<u32>,
    pub remesh: Option<bool>,
    pub remesh_band: Option<f32>,
    pub remesh_project: Option<f32>,
    pub texture_format: Option<String>,
}

impl ExtractBody {
    pub fn split(self) -> (String, ExportOptions) {
        (
            self.state,
            ExportOptions {
                decimation_target: self.decimation_target,
                texture_size: self.texture_size,
                remesh: self.remesh,
                remesh_band: self.remesh_band,
                remesh_project: self.remesh_project,
                texture_format: self.texture_format,
            },
        )
    }
}

/// `POST /v1/remove_background`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveBackgroundBody {
    /// Base64 PNG/JPEG/WebP.
    pub image: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GenerateStats {
    pub num_tokens: u64,
    pub image_width: u32,
    pub image_height: u32,
    pub input_had_alpha: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GenerateResponse {
    /// Signed latents (base64) to pass to `/extract_glb`.
    pub state: String,
    /// Base64 MP4 turntable, when `preview_video` was requested.
    pub video: Option<String>,
    pub request_id: String,
    pub seed: u64,
    pub pipeline_type: String,
    pub resolution: u32,
    pub timings: Timings,
    pub stats: GenerateStats,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeshStats {
    pub vertices: u64,
    pub faces: u64,
    pub texture_size: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExtractResponse {
    /// Base64 GLB (`model/gltf-binary`).
    pub glb: String,
    pub request_id: String,
    pub stats: MeshStats,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    pub status: String,
    pub service: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UpstreamReadiness {
    pub service: String,
    pub ready: bool,
    pub detail: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyResponse {
    pub ready: bool,
    pub services: Vec<UpstreamReadiness>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceStatus {
    pub service: String,
    /// `healthy` or `unhealthy`.
    pub status: String,
    pub detail: String,
    pub gpu: String,
    pub vram_allocated_gb: f64,
    pub vram_total_gb: f64,
    pub load_time_seconds: f64,
    pub models: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusResponse {
    pub services: Vec<ServiceStatus>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobCreated {
    pub job_id: String,
    pub status: crate::jobs::JobStatus,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobProgress {
    pub stage: String,
    pub step: u32,
    pub total: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ArtifactLink {
    pub name: String,
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub job_id: String,
    pub status: crate::jobs::JobStatus,
    pub created_at: u64,
    pub updated_at: u64,
    pub progress: Option<JobProgress>,
    pub error: Option<crate::jobs::JobError>,
    pub artifacts: Vec<ArtifactLink>,
}

impl From<crate::jobs::JobRecord> for JobView {
    fn from(r: crate::jobs::JobRecord) -> Self {
        let artifacts = r
            .artifacts
            .iter()
            .map(|name| ArtifactLink {
                name: name.clone(),
                url: format!("/v1/jobs/{}/artifacts/{name}", r.id),
            })
            .collect();
        Self {
            job_id: r.id,
            status: r.status,
            created_at: r.created_at,
            updated_at: r.updated_at,
            progress: r.stage.map(|stage| JobProgress {
                stage,
                step: r.step,
                total: r.total,
            }),
            error: r.error,
            artifacts,
        }
    }
}

/// One stage's optional sampler fields as sent by the client.
struct StageFields {
    steps: Option<u32>,
    strength: Option<f32>,
    rescale: Option<f32>,
    interval: Option<[f32; 2]>,
    rescale_t: Option<f32>,
}

/// The stage's sampler parameters with defaults filled in; range problems go to `errors`.
fn stage(
    prefix: &str,
    f: StageFields,
    defaults: fp::StageDefaults,
    errors: &mut Vec<String>,
) -> SamplerParams {
    let [start, end] = f.interval.unwrap_or(defaults.guidance_interval);
    let p = SamplerParams {
        steps: Some(f.steps.unwrap_or(defaults.steps)),
        guidance_strength: Some(f.strength.unwrap_or(defaults.guidance_strength)),
        guidance_rescale: Some(f.rescale.unwrap_or(defaults.guidance_rescale)),
        guidance_interval_start: Some(start),
        guidance_interval_end: Some(end),
        rescale_t: Some(f.rescale_t.unwrap_or(defaults.rescale_t)),
    };
    fp::check_sampler(prefix, &p, errors);
    p
}

impl ExportOptions {
    /// Validated export parameters with defaults filled in.
    pub fn to_params(&self, errors: &mut Vec<String>) -> ExportParams {
        let decimation_target = self
            .decimation_target
            .unwrap_or(mp::DEFAULT_DECIMATION_TARGET);
        if !(mp::MIN_DECIMATION_TARGET..=mp::MAX_DECIMATION_TARGET).contains(&decimation_target) {
            errors.push(format!(
                "decimation_target = {decimation_target} is outside [{}, {}]",
                mp::MIN_DECIMATION_TARGET,
                mp::MAX_DECIMATION_TARGET
            ));
        }
        let texture_size = self.texture_size.unwrap_or(mp::DEFAULT_TEXTURE_SIZE);
        if !mp::TEXTURE_SIZES.contains(&texture_size) {
            errors.push(format!(
                "texture_size = {texture_size} is not one of {:?}",
                mp::TEXTURE_SIZES
            ));
        }
        let remesh_band = self.remesh_band.unwrap_or(1.0);
        if !mp::REMESH_BAND.contains(&remesh_band) {
            errors.push(format!(
                "remesh_band = {remesh_band} is outside [{}, {}]",
                mp::REMESH_BAND.start(),
                mp::REMESH_BAND.end()
            ));
        }
        let remesh_project = self.remesh_project.unwrap_or(0.0);
        if !mp::REMESH_PROJECT.contains(&remesh_project) {
            errors.push(format!(
                "remesh_project = {remesh_project} is outside [{}, {}]",
                mp::REMESH_PROJECT.start(),
                mp::REMESH_PROJECT.end()
            ));
        }
        let texture_format = match self.texture_format.as_deref().unwrap_or("png") {
            "png" => TextureFormat::Png,
            "webp" => TextureFormat::Webp,
            other => {
                errors.push(format!("texture_format {other:?} is not `png` or `webp`"));
                TextureFormat::Unspecified
            }
        };
        ExportParams {
            decimation_target,
            texture_size,
            remesh: self.remesh.unwrap_or(true),
            remesh_band,
            remesh_project,
            texture_format: texture_format as i32,
        }
    }
}

fn validation(errors: Vec<String>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors.join("; ")))
    }
}

impl GenerateBody {
    /// Validates everything; `allow_export` is true for `/v1/jobs`.
    pub fn into_plan(self, allow_export: bool) -> Result<GeneratePlan, ApiError> {
        let mut errors = Vec::new();
        let pipeline_name = self
            .pipeline_type
            .clone()
            .unwrap_or_else(|| fp::DEFAULT_PIPELINE.to_string());
        let pipeline = fp::parse_pipeline(&pipeline_name);
        if pipeline.is_none() {
            errors.push(format!(
                "unknown pipeline_type {pipeline_name:?}; expected one of {:?}",
                fp::PIPELINE_NAMES
            ));
        }
        let ss = stage(
            "ss",
            StageFields {
                steps: self.ss_sampling_steps,
                strength: self.ss_guidance_strength,
                rescale: self.ss_guidance_rescale,
                interval: self.ss_guidance_interval,
                rescale_t: self.ss_rescale_t,
            },
            fp::SPARSE_STRUCTURE_DEFAULTS,
            &mut errors,
        );
        let shape = stage(
            "shape_slat",
            StageFields {
                steps: self.shape_slat_sampling_steps,
                strength: self.shape_slat_guidance_strength,
                rescale: self.shape_slat_guidance_rescale,
                interval: self.shape_slat_guidance_interval,
                rescale_t: self.shape_slat_rescale_t,
            },
            fp::SHAPE_SLAT_DEFAULTS,
            &mut errors,
        );
        let tex = stage(
            "tex_slat",
            StageFields {
                steps: self.tex_slat_sampling_steps,
                strength: self.tex_slat_guidance_strength,
                rescale: self.tex_slat_guidance_rescale,
                interval: self.tex_slat_guidance_interval,
                rescale_t: self.tex_slat_rescale_t,
            },
            fp::TEX_SLAT_DEFAULTS,
            &mut errors,
        );
        let max_num_tokens = self.max_num_tokens.unwrap_or(fp::DEFAULT_MAX_NUM_TOKENS);
        if !fp::MAX_NUM_TOKENS.contains(&max_num_tokens) {
            errors.push(format!(
                "max_num_tokens = {max_num_tokens} is outside [{}, {}]",
                fp::MAX_NUM_TOKENS.start(),
                fp::MAX_NUM_TOKENS.end()
            ));
        }
        if self.export.is_some() && !allow_export {
            errors.push("`export` is only accepted by /v1/jobs; use /extract_glb".into());
        }
        let export = self.export.unwrap_or_default().to_params(&mut errors);
        validation(errors)?;
        // The image last: its checks decode pixels, so cheap field errors are reported first.
        let bytes = image_check::decode_base64("image", &self.image, image_check::MAX_IMAGE_BYTES)?;
        let image = image_check::check_image(bytes)?;
        Ok(GeneratePlan {
            image,
            flow: FlowRequest {
                cond_512: None,
                cond_1024: None,
                seed: self.seed.unwrap_or(fp::DEFAULT_SEED),
                pipeline_type: pipeline.unwrap_or_default() as i32,
                sparse_structure: Some(ss),
                shape_slat: Some(shape),
                tex_slat: Some(tex),
                max_num_tokens,
                // Set by the orchestrator where it uses them (jobs).
                stream_shape_latents: false,
            },
            preview_video: self.preview_video.unwrap_or(true),
            export,
        })
    }
}

/// Validated `/extract_glb` export options.
pub fn export_params(opts: &ExportOptions) -> Result<ExportParams, ApiError> {
    let mut errors = Vec::new();
    let p = opts.to_params(&mut errors);
    validation(errors)?;
    Ok(p)
}
