//! The public error envelope: `{"error": {"code", "message", "request_id"}}` with a real status.
//! Internals are logged, never returned.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use t2_proto::{ErrorCode, ServiceError};

/// `Retry-After` (seconds) sent with overload and unavailability answers.
pub const RETRY_AFTER_SECS: u32 = 30;

/// An error answered to an HTTP client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

/// Marker left on error responses so the middleware can count them by code and recognise
/// responses that already carry the envelope.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCodeTag(pub ErrorCode);

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Serialize, Clone, Debug, utoipa::ToSchema)]
pub struct ErrorBody {
    /// `validation_error`, `unauthorized`, `not_found`, `payload_too_large`, `overloaded`,
    /// `cuda_oom`, `generation_error`, `rendering_error`, `extraction_error`, `unavailable`,
    /// `timeout`.
    pub code: String,
    pub message: String,
    pub request_id: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationError, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::PayloadTooLarge, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    pub fn status(&self) -> StatusCode {
        status_of(self.code)
    }
}

/// The HTTP status of each public code (product.md §2).
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::ValidationError => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Overloaded => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::CudaOom | ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
        // 499 is nginx's "client closed request"; the client rarely sees it.
        ErrorCode::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        ErrorCode::GenerationError
        | ErrorCode::RenderingError
        | ErrorCode::ExtractionError
        | ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        Self::new(e.code(), e.message().to_string())
    }
}

impl From<t2_state::StateError> for ApiError {
    fn from(e: t2_state::StateError) -> Self {
        Self::validation(format!("state rejected: {e}"))
    }
}

/// Renders the envelope for `code`/`message` with the current request id.
pub fn envelope(code: ErrorCode, message: &str) -> Response {
    let request_id = t2_telemetry::current_request_id().unwrap_or_default();
    let status = status_of(code);
    let mut resp = (
        status,
        Json(ErrorEnvelope {
            error: ErrorBody {
                code: code.as_str().to_string(),
                message: message.to_string(),
                request_id,
            },
        }),
    )
        .into_response();
    if matches!(
        code,
        ErrorCode::Overloaded | ErrorCode::Unavailable | ErrorCode::CudaOom
    ) {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    resp.extensions_mut().insert(ErrorCodeTag(code));
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status().is_server_error() {
            tracing::warn!(code = self.code.as_str(), message = %self.message, "request failed");
        } else {
            tracing::info!(code = self.code.as_str(), message = %self.message, "request rejected");
        }
        envelope(self.code, &self.message)
    }
}
