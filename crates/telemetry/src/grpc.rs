//! W3C trace context over gRPC metadata: injected by clients, extracted by servers.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use opentelemetry::global;
use opentelemetry::propagation::{Extractor, Injector};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::request_id::{REQUEST_ID_HEADER, current_request_id};

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(k, v);
        }
    }
}

/// Reads propagation fields from a gRPC metadata map (used by callers that hold a tonic request).
pub struct MetadataExtractor<'a>(pub &'a MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

/// Writes the current span's context (`traceparent`, `tracestate`) and the current request id
/// into outgoing metadata.
pub fn inject_current(metadata: &mut MetadataMap) {
    let cx = tracing::Span::current().context();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut MetadataInjector(metadata)));
    if let Some(id) = current_request_id()
        && let Ok(v) = MetadataValue::try_from(id.as_str())
    {
        metadata.insert(REQUEST_ID_HEADER, v);
    }
}

/// A tonic client interceptor: `Client::with_interceptor(channel, TraceContextInjector)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextInjector;

impl tonic::service::Interceptor for TraceContextInjector {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        inject_current(req.metadata_mut());
        Ok(req)
    }
}

/// A tower layer for `tonic::transport::Server::builder().layer(..)`: every call runs inside a
/// `grpc.server` span whose parent is the caller's trace (from `traceparent`), carrying the
/// method, the request id and the trace id as fields (so JSON logs show them).
#[derive(Debug, Clone, Copy)]
pub struct GrpcServerTraceLayer {
    service: &'static str,
}

impl GrpcServerTraceLayer {
    pub fn new(service: &'static str) -> Self {
        Self { service }
    }
}

impl<S> tower::Layer<S> for GrpcServerTraceLayer {
    type Service = GrpcServerTrace<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcServerTrace {
            inner,
            service: self.service,
        }
    }
}

#[derive(Debug, Clone)]
pub struct GrpcServerTrace<S> {
    inner: S,
    service: &'static str,
}

impl<S, B> tower::Service<::http::Request<B>> for GrpcServerTrace<S>
where
    S: tower::Service<::http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: ::http::Request<B>) -> Self::Future {
        let headers = req.headers();
        let request_id = headers
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let span = tracing::info_span!(
            "grpc.server",
            otel.kind = "server",
            service = self.service,
            rpc.method = %req.uri().path(),
            request_id = %request_id,
            trace_id = tracing::field::Empty,
        );
        crate::http::set_remote_parent(&span, headers);
        if let Some(id) = crate::trace_id_of(&span) {
            span.record("trace_id", id.as_str());
        }
        let fut = self.inner.call(req);
        let fut = async move {
            if request_id.is_empty() {
                fut.await
            } else {
                crate::with_request_id(request_id, fut).await
            }
        };
        Box::pin(fut.instrument(span))
    }
}
