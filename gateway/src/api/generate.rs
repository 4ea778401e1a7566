//! `/generate`, `/extract_glb`, `/v1/remove_background`.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use base64::Engine;
use t2_proto::ProgressSink;

use crate::AppState;
use crate::body::{IMAGE_BODY_LIMIT, LimitedJson, STATE_BODY_LIMIT};
use crate::error::{ApiError, ErrorEnvelope};
use crate::pipeline::{self, GLB_ARTIFACT};
use crate::types::{
    ExtractBody, ExtractResponse, GenerateBody, GenerateResponse, GenerateStats, MeshStats,
    RemoveBackgroundBody, export_params,
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Runs one synchronous upstream computation under the in-flight limit (429 `overloaded`
/// beyond it) and the request timeout (504 `timeout`; dropping the future cancels the calls).
async fn guarded<T>(
    s: &AppState,
    work: impl std::future::Future<Output = Result<T, t2_proto::ServiceError>>,
) -> Result<T, ApiError> {
    let _permit = s.inflight.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            t2_proto::ErrorCode::Overloaded,
            "too many generations in progress; retry later",
        )
    })?;
    match tokio::time::timeout(s.request_timeout, work).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(_) => Err(ApiError::new(
            t2_proto::ErrorCode::Timeout,
            format!("no result within {} s", s.request_timeout.as_secs()),
        )),
    }
}

fn request_id() -> String {
    t2_telemetry::current_request_id().unwrap_or_default()
}

/// Image → signed latents (`state`) and, optionally, a preview video.
#[utoipa::path(post, path = "/generate", tag = "generation", request_body = GenerateBody,
    responses(
        (status = 200, body = GenerateResponse),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 429, body = ErrorEnvelope),
        (status = 500, body = ErrorEnvelope), (status = 503, body = ErrorEnvelope),
        (status = 504, body = ErrorEnvelope)))]
pub async fn generate(
    State(s): State<AppState>,
    LimitedJson(body): LimitedJson<GenerateBody, IMAGE_BODY_LIMIT>,
) -> Result<Json<GenerateResponse>, ApiError> {
    let plan = body.into_plan(false)?;
    let (seed, pipeline_type) = (plan.flow.seed, plan.flow.pipeline_type);
    let (width, height, alpha) = (
        plan.image.width,
        plan.image.height,
        plan.image.has_real_alpha,
    );
    let out = guarded(&s, s.orchestrator.generate(plan, ProgressSink::none())).await?;
    let state = pipeline::seal(&out.latents, &s.state_key)?;
    let num_tokens = out
        .latents
        .coords
        .as_ref()
        .and_then(|c| c.shape.first().copied())
        .unwrap_or(0);
    let pipeline = t2_proto::flow::v1::PipelineType::try_from(pipeline_type).unwrap_or_default();
    Ok(Json(GenerateResponse {
        state: B64.encode(state),
        video: out.video.map(|v| B64.encode(v)),
        request_id: request_id(),
        seed,
        pipeline_type: t2_svc_flow::params::pipeline_name(pipeline).to_string(),
        resolution: out.latents.resolution,
        timings: out.timings,
        stats: GenerateStats {
            num_tokens,
            image_width: width,
            image_height: height,
            input_had_alpha: alpha,
        },
    }))
}

/// Signed state → GLB.
#[utoipa::path(post, path = "/extract_glb", tag = "generation", request_body = ExtractBody,
    responses(
        (status = 200, body = ExtractResponse),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 429, body = ErrorEnvelope),
        (status = 500, body = ErrorEnvelope), (status = 503, body = ErrorEnvelope),
        (status = 504, body = ErrorEnvelope)))]
pub async fn extract_glb(
    State(s): State<AppState>,
    LimitedJson(body): LimitedJson<ExtractBody, STATE_BODY_LIMIT>,
) -> Result<Json<ExtractResponse>, ApiError> {
    let (state, opts) = body.split();
    let params = export_params(&opts)?;
    let bytes = crate::image_check::decode_base64("state", &state, STATE_BODY_LIMIT)?;
    let latents = pipeline::open(&bytes, &s.state_key)?;
    let out = guarded(
        &s,
        s.orchestrator
            .extract(latents, params, false, ProgressSink::none()),
    )
    .await?;
    let glb = out
        .artifacts
        .into_iter()
        .find(|a| a.name == GLB_ARTIFACT)
        .ok_or_else(|| {
            ApiError::new(
                t2_proto::ErrorCode::ExtractionError,
                "the mesh service returned no GLB",
            )
        })?;
    Ok(Json(ExtractResponse {
        glb: B64.encode(glb.data),
        request_id: request_id(),
        stats: MeshStats {
            vertices: out.stats.vertices,
            faces: out.stats.faces,
            texture_size: out.stats.texture_size,
        },
    }))
}

/// The RGBA cut-out as PNG, to preview background removal.
#[utoipa::path(post, path = "/v1/remove_background", tag = "generation",
    request_body = RemoveBackgroundBody,
    responses(
        (status = 200, content_type = "image/png", body = Vec<u8>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 503, body = ErrorEnvelope)))]
pub async fn remove_background(
    State(s): State<AppState>,
    LimitedJson(body): LimitedJson<RemoveBackgroundBody, IMAGE_BODY_LIMIT>,
) -> Result<impl IntoResponse, ApiError> {
    let bytes = crate::image_check::decode_base64(
        "image",
        &body.image,
        crate::image_check::MAX_IMAGE_BYTES,
    )?;
    let image = crate::image_check::check_image(bytes)?;
    let out = guarded(&s, s.orchestrator.remove_background(image.to_proto())).await?;
    let cutout = out.cutout.ok_or_else(|| {
        ApiError::new(
            t2_proto::ErrorCode::GenerationError,
            "rmbg returned no cut-out",
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "image/png")], cutout.data))
}
