//! Prometheus metrics of the gateway (text exposition at `/metrics`).

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Latency buckets from milliseconds (health, validation errors) to ten minutes (a 1536
/// cascade with video on a busy GPU), so P50/P95/P99 are meaningful at both ends.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

pub struct Metrics {
    registry: Registry,
    pub latency: HistogramVec,
    pub errors: IntCounterVec,
    pub in_flight: IntGauge,
    pub queue_depth: IntGauge,
    pub jobs_running: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "trellis2_http_request_duration_seconds",
                "HTTP request latency by endpoint",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["endpoint", "method", "status"],
        )
        .expect("valid histogram");
        let errors = IntCounterVec::new(
            Opts::new(
                "trellis2_http_errors_total",
                "Error responses by public error code",
            ),
            &["code"],
        )
        .expect("valid counter");
        let in_flight = IntGauge::new(
            "trellis2_http_requests_in_flight",
            "HTTP requests being served",
        )
        .expect("valid gauge");
        let queue_depth = IntGauge::new("trellis2_jobs_queue_depth", "Jobs waiting for a worker")
            .expect("valid gauge");
        let jobs_running =
            IntGauge::new("trellis2_jobs_running", "Jobs being executed").expect("valid gauge");
        for c in [
            Box::new(latency.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(errors.clone()),
            Box::new(in_flight.clone()),
            Box::new(queue_depth.clone()),
            Box::new(jobs_running.clone()),
        ] {
            registry.register(c).expect("unique metric names");
        }
        Self {
            registry,
            latency,
            errors,
            in_flight,
            queue_depth,
            jobs_running,
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
