//! Installing the global subscriber, propagator and tracer provider.

use opentelemetry::global;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line with the current span's fields (request_id, trace_id).
    Json,
    /// Human-readable, for terminals.
    Text,
}

impl LogFormat {
    /// `TRELLIS2_LOG_FORMAT=text|json`; JSON by default (production logs are parsed, not read).
    pub fn from_env() -> Self {
        match std::env::var("TRELLIS2_LOG_FORMAT").as_deref() {
            Ok("text") => LogFormat::Text,
            _ => LogFormat::Json,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("building the OTLP exporter: {0}")]
    Exporter(String),
    #[error("a global tracing subscriber is already installed: {0}")]
    AlreadyInstalled(String),
}

/// Flushes and shuts the tracer provider down when dropped (call before the process exits).
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl TelemetryGuard {
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.provider.force_flush();
        let _ = self.provider.shutdown();
    }
}

/// True when the standard variables ask for OTLP trace export.
fn otlp_requested() -> bool {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.trim().is_empty());
    if std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
        return false;
    }
    match std::env::var("OTEL_TRACES_EXPORTER").as_deref() {
        Ok("none") => false,
        Ok("otlp") => true,
        _ => set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
    }
}

/// Builds the provider from the `OTEL_*` variables (OTLP/gRPC batch export when requested, none
/// otherwise) and installs everything globally. Must run inside a tokio runtime when exporting.
pub fn init_from_env(service_name: &str) -> Result<TelemetryGuard, TelemetryError> {
    let mut resource = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name(service_name.to_string());
    }
    let mut builder = SdkTracerProvider::builder().with_resource(resource.build());
    if otlp_requested() {
        // The builder reads OTEL_EXPORTER_OTLP_{,TRACES_}ENDPOINT / _TIMEOUT / _HEADERS itself.
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        builder = builder.with_batch_exporter(exporter);
    }
    install(builder.build(), service_name, LogFormat::from_env())
}

/// Installs `provider`, the W3C propagator and the subscriber: logs filtered by `RUST_LOG`
/// (default `info`), spans by `TRELLIS2_TRACE_FILTER` (default `info`). Tests pass a provider with an in-memory exporter.
pub fn install(
    provider: SdkTracerProvider,
    service_name: &str,
    format: LogFormat,
) -> Result<TelemetryGuard, TelemetryError> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    global::set_tracer_provider(provider.clone());
    let tracer = provider.tracer(service_name.to_string());
    // Logs and spans are filtered separately: quieting logs with RUST_LOG=warn must not drop
    // the request spans that carry trace context across processes.
    // ONNX Runtime's own INFO lines (arena growth, device discovery) say nothing an operator
    // acts on; they stay reachable with RUST_LOG=ort=info.
    let log_filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,ort=warn"));
    let span_filter = std::env::var("TRELLIS2_TRACE_FILTER")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(span_filter);
    let registry = tracing_subscriber::registry().with(otel);
    let result = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr)
                    .with_filter(log_filter),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(log_filter),
            )
            .try_init(),
    };
    result.map_err(|e| TelemetryError::AlreadyInstalled(e.to_string()))?;
    Ok(TelemetryGuard { provider })
}
