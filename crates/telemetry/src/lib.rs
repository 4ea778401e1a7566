//! Tracing, OpenTelemetry export and W3C trace-context propagation
