//! The error every service returns, and its mapping onto gRPC statuses and back.
//!
//! The public error code (`validation_error`, `cuda_oom`, …, see product.md §2) travels in the
//! `trellis2-error-code` metadata entry so the gateway can answer with the exact code and status.

use tonic::{Code, Status};

/// Metadata key carrying the public error code of a failed call.
pub const ERROR_CODE_METADATA: &str = "trellis2-error-code";

/// Public error codes (the HTTP envelope's `error.code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    ValidationError,
    Unauthorized,
    NotFound,
    PayloadTooLarge,
    Overloaded,
    CudaOom,
    GenerationError,
    RenderingError,
    ExtractionError,
    Unavailable,
    Timeout,
    Cancelled,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 13] = [
        Self::ValidationError,
        Self::Unauthorized,
        Self::NotFound,
        Self::PayloadTooLarge,
        Self::Overloaded,
        Self::CudaOom,
        Self::GenerationError,
        Self::RenderingError,
        Self::ExtractionError,
        Self::Unavailable,
        Self::Timeout,
        Self::Cancelled,
        Self::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidationError => "validation_error",
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Overloaded => "overloaded",
            Self::CudaOom => "cuda_oom",
            Self::GenerationError => "generation_error",
            Self::RenderingError => "rendering_error",
            Self::ExtractionError => "extraction_error",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::Cancelled => "cancelled",
            Self::Internal => "internal_error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The gRPC code a service answers with for this error.
    pub fn grpc_code(self) -> Code {
        match self {
            Self::ValidationError => Code::InvalidArgument,
            Self::Unauthorized => Code::Unauthenticated,
            Self::NotFound => Code::NotFound,
            Self::PayloadTooLarge => Code::OutOfRange,
            Self::Overloaded | Self::CudaOom => Code::ResourceExhausted,
            Self::GenerationError | Self::RenderingError | Self::ExtractionError => Code::Internal,
            Self::Unavailable => Code::Unavailable,
            Self::Timeout => Code::DeadlineExceeded,
            Self::Cancelled => Code::Cancelled,
            Self::Internal => Code::Internal,
        }
    }
}

/// The failure of a service call, in terms the gateway can turn into the public envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// The compute behind this call is not part of this build (or not loaded): never fake output.
    #[error("not implemented: {0}")]
    NotImplemented(String),
    /// The service cannot serve right now (models not loaded, upstream down).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The request is invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A classified failure with a public error code.
    #[error("{code:?}: {message}")]
    Failed { code: ErrorCode, message: String },
    /// The caller went away or the deadline passed.
    #[error("cancelled: {0}")]
    Cancelled(String),
}

impl ServiceError {
    pub fn failed(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Failed {
            code,
            message: message.into(),
        }
    }

    /// The public error code this failure maps to. Compute that is not built yet is a 503
    /// `unavailable` to HTTP clients: the service exists, it cannot do this yet.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotImplemented(_) | Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::InvalidArgument(_) => ErrorCode::ValidationError,
            Self::Failed { code, .. } => *code,
            Self::Cancelled(_) => ErrorCode::Cancelled,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Self::NotImplemented(m)
            | Self::Unavailable(m)
            | Self::InvalidArgument(m)
            | Self::Cancelled(m)
            | Self::Failed { message: m, .. } => m,
        }
    }
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Status {
        let grpc = match &e {
            ServiceError::NotImplemented(_) => Code::Unimplemented,
            other => other.code().grpc_code(),
        };
        let mut status = Status::new(grpc, e.message().to_string());
        if let Ok(v) = e.code().as_str().parse() {
            status.metadata_mut().insert(ERROR_CODE_METADATA, v);
        }
        status
    }
}

impl From<Status> for ServiceError {
    fn from(s: Status) -> ServiceError {
        let message = s.message().to_string();
        let code = s
            .metadata()
            .get(ERROR_CODE_METADATA)
            .and_then(|v| v.to_str().ok())
            .and_then(ErrorCode::parse);
        match (s.code(), code) {
            (Code::Unimplemented, _) => ServiceError::NotImplemented(message),
            (_, Some(ErrorCode::Unavailable)) | (Code::Unavailable, None) => {
                ServiceError::Unavailable(message)
            }
            (_, Some(ErrorCode::ValidationError)) | (Code::InvalidArgument, None) => {
                ServiceError::InvalidArgument(message)
            }
            (_, Some(ErrorCode::Cancelled)) | (Code::Cancelled, None) => {
                ServiceError::Cancelled(message)
            }
            (_, Some(code)) => ServiceError::Failed { code, message },
            (Code::DeadlineExceeded, None) => ServiceError::failed(ErrorCode::Timeout, message),
            (Code::ResourceExhausted, None) => ServiceError::failed(ErrorCode::Overloaded, message),
            (_, None) => ServiceError::failed(ErrorCode::Internal, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_survive_the_status_round_trip() {
        let cases = [
            ServiceError::NotImplemented("flow sampling is not built yet".into()),
            ServiceError::Unavailable("models loading".into()),
            ServiceError::InvalidArgument("bad".into()),
            ServiceError::Cancelled("client went away".into()),
            ServiceError::failed(ErrorCode::CudaOom, "out of memory"),
            ServiceError::failed(ErrorCode::ExtractionError, "no surface"),
        ];
        for e in cases {
            let status: Status = e.clone().into();
            assert_eq!(ServiceError::from(status), e);
        }
    }

    #[test]
    fn not_implemented_is_grpc_unimplemented_and_public_unavailable() {
        let e = ServiceError::NotImplemented("x".into());
        assert_eq!(Status::from(e.clone()).code(), Code::Unimplemented);
        assert_eq!(e.code(), ErrorCode::Unavailable);
    }

    #[test]
    fn codes_parse_back() {
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(c.as_str()), Some(c));
        }
    }
}
