//! Liveness, readiness, status, metrics and the OpenAPI document.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::AppState;
use crate::error::ErrorEnvelope;
use crate::types::{
    HealthResponse, ReadyResponse, ServiceStatus, StatusResponse, UpstreamReadiness,
};

/// Liveness: answers without touching any upstream or GPU.
#[utoipa::path(get, path = "/health", tag = "system", security(()),
    responses((status = 200, body = HealthResponse)))]
pub async fn health() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".into(),
        service: "trellis2-api".into(),
    })
}

/// Readiness: 200 only when every upstream is SERVING with its models loaded.
#[utoipa::path(get, path = "/ready", tag = "system", security(()),
    responses((status = 200, body = ReadyResponse), (status = 503, body = ReadyResponse)))]
pub async fn ready(State(s): State<AppState>) -> impl IntoResponse {
    let services: Vec<UpstreamReadiness> = s
        .backends
        .infos()
        .await
        .into_iter()
        .map(|i| UpstreamReadiness {
            service: i.service,
            ready: i.ready,
            detail: i.detail,
        })
        .collect();
    let ready = services.iter().all(|u| u.ready);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(ReadyResponse { ready, services }))
}

const GB: f64 = (1u64 << 30) as f64;

/// Detailed per-service health.
#[utoipa::path(get, path = "/v1/status", tag = "system",
    responses((status = 200, body = StatusResponse), (status = 401, body = ErrorEnvelope)))]
pub async fn status(State(s): State<AppState>) -> Json<StatusResponse> {
    let services = s
        .backends
        .infos()
        .await
        .into_iter()
        .map(|i| ServiceStatus {
            service: i.service,
            status: if i.ready { "healthy" } else { "unhealthy" }.into(),
            detail: i.detail,
            gpu: i.gpu,
            vram_allocated_gb: i.vram_allocated_bytes as f64 / GB,
            vram_total_gb: i.vram_total_bytes as f64 / GB,
            load_time_seconds: i.load_time_seconds,
            models: i.models,
        })
        .collect();
    Json(StatusResponse { services })
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "system", security(()),
    responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

/// This API's OpenAPI 3 document.
#[utoipa::path(get, path = "/openapi.json", tag = "system",
    responses((status = 200, content_type = "application/json", body = Object)))]
pub async fn openapi(
    Extension(doc): Extension<Arc<utoipa::openapi::OpenApi>>,
) -> Json<utoipa::openapi::OpenApi> {
    Json((*doc).clone())
}
