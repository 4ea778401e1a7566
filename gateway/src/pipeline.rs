//! Orchestration of one request across the services: image → rmbg → dinov3 → flow → latents
//! (→ mesh for the preview video), and state → mesh → GLB.

use std::time::Instant;

use bytes::Bytes;
use serde::Serialize;
use t2_proto::common::v1::Latents;
use t2_proto::flow::v1::{GenerateRequest, PipelineType};
use t2_proto::mesh::v1::{ExportParams, ExtractRequest};
use t2_proto::{ErrorCode, ProgressSink, ServiceError};
use t2_svc_mesh::ExtractOutput;

use crate::backends::Backends;
use crate::image_check::CheckedImage;

pub const GLB_ARTIFACT: &str = "model.glb";
pub const VIDEO_ARTIFACT: &str = "preview.mp4";
pub const STATE_ARTIFACT: &str = "state.bin";

/// Wall time of each stage, in seconds.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Timings {
    pub remove_background_s: f64,
    pub features_s: f64,
    pub flow_s: f64,
    pub video_s: f64,
    pub total_s: f64,
}

/// A validated generate request.
#[derive(Debug, Clone)]
pub struct GeneratePlan {
    pub image: CheckedImage,
    /// The flow request without conditioning (filled in from the features).
    pub flow: GenerateRequest,
    pub preview_video: bool,
    /// Export parameters (jobs only; also used to render the preview).
    pub export: ExportParams,
}

pub struct Generated {
    pub latents: Latents,
    pub video: Option<Bytes>,
    pub timings: Timings,
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

pub async fn generate(
    b: &Backends,
    plan: GeneratePlan,
    progress: ProgressSink,
) -> Result<Generated, ServiceError> {
    let start = Instant::now();
    let mut timings = Timings::default();

    let t = Instant::now();
    progress.report("remove_background", 0, 1);
    let cut = b.rmbg.remove_background(plan.image.to_proto()).await?;
    let crop = cut
        .crop
        .ok_or_else(|| ServiceError::failed(ErrorCode::GenerationError, "rmbg returned no crop"))?;
    timings.remove_background_s = secs(t);

    let t = Instant::now();
    progress.report("features", 0, 1);
    let pipeline = PipelineType::try_from(plan.flow.pipeline_type).unwrap_or_default();
    let resolutions = if t2_svc_flow::params::needs_cond_1024(pipeline) {
        vec![512, 1024]
    } else {
        vec![512]
    };
    let maps = b.dinov3.features(crop, resolutions).await?;
    let cond = |r: u32| {
        maps.iter()
            .find(|m| m.resolution == r)
            .map(|m| m.tokens.clone())
    };
    let mut flow = plan.flow;
    flow.cond_512 = cond(512);
    flow.cond_1024 = cond(1024);
    timings.features_s = secs(t);

    let t = Instant::now();
    let latents = b.flow.generate(flow, progress.clone()).await?;
    timings.flow_s = secs(t);

    let mut video = None;
    if plan.preview_video {
        let t = Instant::now();
        let out = extract(b, latents.clone(), plan.export, true, progress).await?;
        video = out
            .artifacts
            .into_iter()
            .find(|a| a.name == VIDEO_ARTIFACT)
            .map(|a| a.data);
        if video.is_none() {
            return Err(ServiceError::failed(
                ErrorCode::RenderingError,
                "the mesh service returned no preview video",
            ));
        }
        timings.video_s = secs(t);
    }
    timings.total_s = secs(start);
    Ok(Generated {
        latents,
        video,
        timings,
    })
}

pub async fn extract(
    b: &Backends,
    latents: Latents,
    params: ExportParams,
    preview_video: bool,
    progress: ProgressSink,
) -> Result<ExtractOutput, ServiceError> {
    let req = ExtractRequest {
        latents: Some(latents),
        params: Some(params),
        preview_video,
    };
    b.mesh.extract(req, progress).await
}

fn bad_latents(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::failed(
        ErrorCode::GenerationError,
        format!("flow returned malformed latents: {e}"),
    )
}

/// Signs latents into the state format.
pub fn seal(latents: &Latents, key: &t2_state::StateKey) -> Result<Vec<u8>, ServiceError> {
    let missing = || bad_latents("a tensor is missing");
    let coords = latents.coords.as_ref().ok_or_else(missing)?;
    let shape = latents.shape_slat.as_ref().ok_or_else(missing)?;
    let tex = latents.tex_slat.as_ref().ok_or_else(missing)?;
    let channels = |t: &t2_proto::common::v1::DenseTensor| {
        t.shape
            .get(1)
            .copied()
            .unwrap_or(0)
            .try_into()
            .map_err(bad_latents)
    };
    let state = t2_state::Latents {
        model_id: latents.model_id.clone(),
        resolution: latents.resolution,
        coords: t2_proto::tensor::to_i32(coords, 2).map_err(bad_latents)?,
        shape_channels: channels(shape)?,
        shape: t2_proto::tensor::to_f32(shape, 2).map_err(bad_latents)?,
        tex_channels: channels(tex)?,
        tex: t2_proto::tensor::to_f32(tex, 2).map_err(bad_latents)?,
    };
    t2_state::encode(&state, key).map_err(bad_latents)
}

/// Verifies a state and turns it back into wire latents.
pub fn open(bytes: &[u8], key: &t2_state::StateKey) -> Result<Latents, t2_state::StateError> {
    let l = t2_state::decode(bytes, key)?;
    let n = l.num_tokens() as u64;
    Ok(Latents {
        model_id: l.model_id,
        resolution: l.resolution,
        coords: Some(t2_proto::tensor::dense_i32(&[n, 4], &l.coords)),
        shape_slat: Some(t2_proto::tensor::dense_f32(
            &[n, l.shape_channels as u64],
            &l.shape,
        )),
        tex_slat: Some(t2_proto::tensor::dense_f32(
            &[n, l.tex_channels as u64],
            &l.tex,
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latents_seal_and_open_round_trip() {
        let key = t2_state::StateKey::generate();
        let l = Latents {
            model_id: "m".into(),
            resolution: 512,
            coords: Some(t2_proto::tensor::dense_i32(
                &[2, 4],
                &[0, 1, 2, 3, 0, 4, 5, 6],
            )),
            shape_slat: Some(t2_proto::tensor::dense_f32(&[2, 1], &[0.5, 1.5])),
            tex_slat: Some(t2_proto::tensor::dense_f32(&[2, 2], &[1.0, 2.0, 3.0, 4.0])),
        };
        let bytes = seal(&l, &key).unwrap();
        assert_eq!(open(&bytes, &key).unwrap(), l);
    }
}
