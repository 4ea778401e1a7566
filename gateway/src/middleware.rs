//! The layer every request passes: request id, trace span (child of the caller's
//! `traceparent`), the envelope on every error, metrics, and the `x-request-id` and
//! `traceparent` response headers.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use t2_proto::ErrorCode;
use t2_telemetry::REQUEST_ID_HEADER;
use tracing::Instrument;

use crate::error::{ErrorCodeTag, envelope};
use crate::metrics::Metrics;

/// The matched route, handed from the inner route layer to the outer observer.
#[derive(Clone)]
struct RouteLabel(String);

/// Inner layer (`route_layer`): records which route matched, for the metrics label.
pub async fn label_route(req: Request, next: Next) -> Response {
    let label = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let mut resp = next.run(req).await;
    if let Some(l) = label {
        resp.extensions_mut().insert(RouteLabel(l));
    }
    resp
}

/// A client-supplied request id is kept if it is short and plain; otherwise a new one is made.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| {
            (8..=64).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_string)
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 16]>()))
}

/// Gives framework-generated errors (unknown route, wrong method, …) the envelope too.
fn ensure_envelope(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    // Tagged errors already are envelopes; JSON error bodies (e.g. /ready's 503) are answers.
    if !(status.is_client_error() || status.is_server_error())
        || resp.extensions().get::<ErrorCodeTag>().is_some()
        || is_json
    {
        return resp;
    }
    let (code, message) = match status {
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, "no such endpoint"),
        StatusCode::METHOD_NOT_ALLOWED => (ErrorCode::ValidationError, "method not allowed"),
        StatusCode::PAYLOAD_TOO_LARGE => (ErrorCode::PayloadTooLarge, "request body too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            (ErrorCode::ValidationError, "unsupported content type")
        }
        s if s.is_client_error() => (ErrorCode::ValidationError, "invalid request"),
        _ => (ErrorCode::Internal, "internal error"),
    };
    let mut out = envelope(code, message);
    *out.status_mut() = status;
    out
}

/// Outer layer (`layer`): wraps every request, routed or not.
pub async fn observe(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let id = request_id(&req);
    let method = req.method().clone();
    let span = tracing::info_span!(
        "http.request",
        otel.kind = "server",
        http.method = %method,
        http.target = %req.uri().path(),
        http.status = tracing::field::Empty,
        request_id = %id,
        trace_id = tracing::field::Empty,
    );
    t2_telemetry::http::set_remote_parent(&span, req.headers());
    if let Some(t) = t2_telemetry::trace_id_of(&span) {
        span.record("trace_id", t.as_str());
    }
    metrics.in_flight.inc();
    let start = Instant::now();
    let resp =
        t2_telemetry::with_request_id(id.clone(), async { ensure_envelope(next.run(req).await) })
            .instrument(span.clone())
            .await;
    metrics.in_flight.dec();

    let mut resp = resp;
    let status = resp.status();
    span.record("http.status", status.as_u16());
    let endpoint = resp
        .extensions()
        .get::<RouteLabel>()
        .map(|l| l.0.clone())
        .unwrap_or_else(|| "unmatched".to_string());
    metrics
        .latency
        .with_label_values(&[endpoint.as_str(), method.as_str(), status.as_str()])
        .observe(start.elapsed().as_secs_f64());
    if let Some(ErrorCodeTag(code)) = resp.extensions().get::<ErrorCodeTag>() {
        metrics.errors.with_label_values(&[code.as_str()]).inc();
    }
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert(REQUEST_ID_HEADER, v);
    }
    if let Some(tp) = t2_telemetry::http::traceparent_of(&span)
        && let Ok(v) = HeaderValue::from_str(&tp)
    {
        headers.insert("traceparent", v);
    }
    resp
}
