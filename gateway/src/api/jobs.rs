//! `/v1/jobs`: asynchronous image → GLB (+ video, + state).

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::auth::Caller;
use crate::body::{IMAGE_BODY_LIMIT, LimitedJson};
use crate::error::{ApiError, ErrorEnvelope};
use crate::jobs::{ArtifactError, JobRecord, JobStatus};
use crate::types::{GenerateBody, JobCreated, JobView};

/// The job store failing (disk full, read-only, I/O error) is the server's condition, not the
/// client's, and usually passes: 503 `unavailable` with `Retry-After`, the cause logged only.
fn store_error(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "job store failed");
    ApiError::new(
        t2_proto::ErrorCode::Unavailable,
        "job store unavailable; retry later",
    )
}

async fn owned_job(s: &AppState, caller: &Caller, id: &str) -> Result<JobRecord, ApiError> {
    match s.job_store.get(id).await.map_err(store_error)? {
        // Another caller's job is reported exactly like a missing one.
        Some(mut r) if r.owner == caller.0 => {
            // A job that ended while the store refused writes: its outcome, not the stale row.
            if let Some(o) = s.jobs.unrecorded(id) {
                (r.status, r.error, r.artifacts) = (o.status, o.error, o.artifacts);
            }
            Ok(r)
        }
        _ => Err(ApiError::not_found(format!("no job {id:?}"))),
    }
}

/// Queues a job; poll `GET /v1/jobs/{id}`.
#[utoipa::path(post, path = "/v1/jobs", tag = "jobs", request_body = GenerateBody,
    responses(
        (status = 202, body = JobCreated),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 429, body = ErrorEnvelope)))]
pub async fn create_job(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    LimitedJson(body): LimitedJson<GenerateBody, IMAGE_BODY_LIMIT>,
) -> Result<impl IntoResponse, ApiError> {
    let plan = body.into_plan(true)?;
    if s.jobs.queued() >= s.max_queued_jobs {
        return Err(ApiError::new(
            t2_proto::ErrorCode::Overloaded,
            format!("{} jobs are already queued; retry later", s.max_queued_jobs),
        ));
    }
    let id = hex::encode(rand::random::<[u8; 16]>());
    let rec = s
        .job_store
        .create(&id, &caller.0)
        .await
        .map_err(store_error)?;
    s.jobs.submit(id.clone(), plan);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/v1/jobs/{id}"))],
        Json(JobCreated {
            job_id: id,
            status: rec.status,
        }),
    ))
}

/// A job's status, progress, error and artifact links.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "job id")),
    responses(
        (status = 200, body = JobView),
        (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn get_job(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(owned_job(&s, &caller, &id).await?.into()))
}

/// Cancels a queued or running job (a finished job is returned unchanged).
#[utoipa::path(delete, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "job id")),
    responses(
        (status = 200, body = JobView),
        (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn cancel_job(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let rec = owned_job(&s, &caller, &id).await?;
    if !rec.status.is_terminal() {
        s.jobs.cancel(&id).await.map_err(store_error)?;
    }
    let rec = owned_job(&s, &caller, &id).await?;
    debug_assert!(rec.status.is_terminal() || rec.status == JobStatus::Running);
    Ok(Json(rec.into()))
}

fn media_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("glb") => "model/gltf-binary",
        Some("mp4") => "video/mp4",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

/// Streams one artifact of a job.
#[utoipa::path(get, path = "/v1/jobs/{id}/artifacts/{name}", tag = "jobs",
    params(("id" = String, Path, description = "job id"),
           ("name" = String, Path, description = "artifact name, e.g. model.glb")),
    responses(
        (status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub async fn get_artifact(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    if !crate::jobs::artifacts::valid_artifact_name(&name) {
        return Err(ApiError::validation(format!(
            "invalid artifact name {name:?}"
        )));
    }
    let rec = owned_job(&s, &caller, &id).await?;
    if !rec.artifacts.contains(&name) {
        return Err(ApiError::not_found(format!(
            "job {id} has no artifact {name:?}"
        )));
    }
    let read = s.artifacts.get(&id, &name).await.map_err(|e| match e {
        ArtifactError::NotFound => ApiError::not_found(format!("artifact {name:?} is gone")),
        e => store_error(e),
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, media_type(&name).to_string()),
            (header::CONTENT_LENGTH, read.size.to_string()),
        ],
        Body::from_stream(read.stream),
    )
        .into_response())
}
