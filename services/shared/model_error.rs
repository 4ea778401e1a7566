//! Model failures in the public error vocabulary.
//!
//! (Shared source: included by each service crate with `#[path]`.)

use t2_models::ModelError;
use t2_proto::{ErrorCode, ServiceError};

/// Maps a `t2-models` error: device out of memory → `cuda_oom` (the lane then frees the
/// cache), a cancelled run → `cancelled`, a model that is not loaded or a broken model
/// directory → `unavailable`, anything else → `failure` (the stage's own 500 code). Callers
/// validate their inputs BEFORE calling the model, so an `InvalidInput` from inside a run is
/// the model's failure, not the caller's.
pub fn model_error(e: ModelError, failure: ErrorCode) -> ServiceError {
    if e.is_oom() {
        return ServiceError::failed(ErrorCode::CudaOom, e.to_string());
    }
    match e {
        ModelError::Cancelled => {
            ServiceError::Cancelled("the caller went away; sampling stopped".into())
        }
        ModelError::NotLoaded(_) | ModelError::Config { .. } | ModelError::Io { .. } => {
            ServiceError::Unavailable(e.to_string())
        }
        e => ServiceError::failed(failure, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allocation_failure_is_cuda_oom_and_cancellation_is_cancelled() {
        let oom = ModelError::Tensor(t2_tensor::Error::OutOfMemory { bytes: 1 << 30 });
        let e = model_error(oom, ErrorCode::GenerationError);
        assert_eq!(e.code(), ErrorCode::CudaOom);
        assert!(e.message().contains("out of device memory"), "{e:?}");
        assert_eq!(
            model_error(ModelError::Cancelled, ErrorCode::GenerationError).code(),
            ErrorCode::Cancelled
        );
        let empty = ModelError::invalid("the sparse structure is empty");
        assert_eq!(
            model_error(empty, ErrorCode::GenerationError).code(),
            ErrorCode::GenerationError
        );
        let missing = ModelError::NotLoaded("tex_slat_decoder".into());
        assert_eq!(
            model_error(missing, ErrorCode::ExtractionError).code(),
            ErrorCode::Unavailable
        );
    }
}
