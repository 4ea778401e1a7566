//! W3C trace context at the HTTP edge.

use opentelemetry::Context;
use opentelemetry::global;
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The remote parent context carried by `traceparent`/`tracestate` headers (empty if none).
pub fn extract_context(headers: &::http::HeaderMap) -> Context {
    global::get_text_map_propagator(|p| p.extract(&opentelemetry_http::HeaderExtractor(headers)))
}

/// Makes `span` a child of the caller's trace, if the request carried one.
pub fn set_remote_parent(span: &tracing::Span, headers: &::http::HeaderMap) {
    let cx = extract_context(headers);
    if cx.span().span_context().is_valid() {
        // Fails only if the span was already started, which a fresh span never is.
        let _ = span.set_parent(cx);
    }
}

/// The `traceparent` header value naming `span` (version 00), when it has a valid context.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}
