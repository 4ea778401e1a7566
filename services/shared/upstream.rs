//! Classifying the status of a failed call to a remote service.
//!
//! (Shared source: included by each service crate with `#[path]`.)
//!
//! A trellis2 service always tags its own failures with the public error code
//! (`trellis2-error-code` metadata), so a status WITHOUT that tag was made by the transport:
//! the process died mid-call, the connection was refused or reset, the HTTP/2 stream broke.
//! Those are `unavailable` to the gateway (503, retry later), never an opaque 500.

use t2_proto::ServiceError;
use t2_proto::error::ERROR_CODE_METADATA;
use tonic::{Code, Status};

/// The [`ServiceError`] of a failed call to the `service` service.
pub fn from_status(service: &str, status: Status) -> ServiceError {
    let tagged = status.metadata().contains_key(ERROR_CODE_METADATA);
    let transport = matches!(
        status.code(),
        Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled
    );
    if !tagged && transport {
        return ServiceError::Unavailable(format!(
            "the {service} service is unreachable or the connection to it broke: {}",
            status.message()
        ));
    }
    ServiceError::from(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use t2_proto::ErrorCode;

    #[test]
    fn untagged_transport_failures_are_unavailable_and_service_answers_keep_their_code() {
        for code in [
            Code::Unknown,
            Code::Internal,
            Code::Unavailable,
            Code::Cancelled,
        ] {
            let e = from_status("flow", Status::new(code, "h2 protocol error: broken pipe"));
            assert_eq!(e.code(), ErrorCode::Unavailable, "{code:?}");
            assert!(e.message().contains("flow service"), "{e:?}");
        }
        let ours: Status = ServiceError::failed(ErrorCode::GenerationError, "empty").into();
        assert_eq!(from_status("flow", ours).code(), ErrorCode::GenerationError);
        let ours: Status = ServiceError::Cancelled("gone".into()).into();
        assert_eq!(from_status("flow", ours).code(), ErrorCode::Cancelled);
        let bad = Status::invalid_argument("cond_512 is required");
        assert_eq!(from_status("flow", bad).code(), ErrorCode::ValidationError);
        let late = Status::deadline_exceeded("deadline");
        assert_eq!(from_status("flow", late).code(), ErrorCode::Timeout);
    }
}
