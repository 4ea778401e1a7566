//! Tracing for every trellis2 process: one subscriber (JSON or text logs + the OpenTelemetry
//! bridge), OTLP export configured by the standard `OTEL_*` variables (off when unset), and the
//! W3C trace-context propagation that makes one HTTP request one trace across processes:
//!
//! - [`http`]: extract the caller's `traceparent` at the gateway, write it back on responses;
//! - [`grpc`]: inject it into gRPC metadata on every client call ([`grpc::TraceContextInjector`])
//!   and extract it in every service ([`grpc::GrpcServerTraceLayer`]).
//!
//! A tracer provider is installed even when no exporter is configured, so trace ids exist,
//! propagate and appear in logs whether or not spans leave the process.

pub mod grpc;
pub mod http;
mod init;
mod request_id;

pub use init::{LogFormat, TelemetryError, TelemetryGuard, init_from_env, install};
pub use request_id::{REQUEST_ID_HEADER, current_request_id, with_request_id};

use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C trace id (32 hex digits) of `span`, when it has a valid OpenTelemetry context.
pub fn trace_id_of(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}
