//! Prometheus metrics of the gateway (text exposition at `/metrics`). Dashboards and alert rules
//! in `observability/` use these names; `tests/observability_dashboards.rs` checks that every
//! name a dashboard panel queries is exported here.
//!
//! The same registry carries the process's GPU and model-load metrics (`t2-gpumon`), so the
//! all-in-one process (`trellis2 serve`) exposes everything at one `/metrics`; separate service
//! processes serve theirs with `t2_gpumon::spawn_metrics_endpoint`.

use std::sync::Arc;
use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use t2_proto::ErrorCode;
use t2_proto::common::v1::ServiceInfo;

use crate::backends::Backends;

/// Latency buckets from milliseconds (health, validation errors) to ten minutes (a 1536
/// cascade with video on a busy GPU), so P50/P95/P99 are meaningful at both ends.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Pipeline stages timed by [`Metrics::observe_stage`]: one per upstream call of a generation
/// (`remove_background` → rmbg, `features` → dinov3, `flow` → flow, `video` → mesh preview) and
/// `extract` (mesh: state → GLB).
pub const STAGES: &[&str] = &["remove_background", "features", "flow", "video", "extract"];

/// The upstream services, as labelled in `trellis2_upstream_ready` and the model-load histogram.
pub const SERVICES: &[&str] = &[
    t2_svc_rmbg::SERVICE,
    t2_svc_dinov3::SERVICE,
    t2_svc_flow::SERVICE,
    t2_svc_mesh::SERVICE,
];

/// How often [`Metrics::spawn_upstream_refresh`] asks the services for their info.
pub const UPSTREAM_REFRESH: Duration = Duration::from_secs(15);

pub struct Metrics {
    registry: Registry,
    pub latency: HistogramVec,
    pub errors: IntCounterVec,
    pub in_flight: IntGauge,
    pub queue_depth: IntGauge,
    pub jobs_running: IntGauge,
    /// Wall time of each pipeline stage (label `stage`, one of [`STAGES`]).
    pub stage_latency: HistogramVec,
    /// Jobs that ended in an error, by public error code (label `code`).
    pub jobs_failed: IntCounterVec,
    /// 1 while an upstream reports ready (models loaded, SERVING), 0 otherwise (label
    /// `service`). No sample until the first [`Metrics::observe_upstreams`].
    pub upstream_ready: IntGaugeVec,
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
        let stage_latency = HistogramVec::new(
            HistogramOpts::new(
                "trellis2_stage_duration_seconds",
                "Wall time of one pipeline stage (one upstream call) by stage",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["stage"],
        )
        .expect("valid histogram");
        let jobs_failed = IntCounterVec::new(
            Opts::new(
                "trellis2_jobs_failed_total",
                "Jobs that ended in an error, by public error code",
            ),
            &["code"],
        )
        .expect("valid counter");
        let upstream_ready = IntGaugeVec::new(
            Opts::new(
                "trellis2_upstream_ready",
                "1 while the upstream service reports ready (models loaded), else 0",
            ),
            &["service"],
        )
        .expect("valid gauge");
        for c in [
            Box::new(latency.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(errors.clone()),
            Box::new(in_flight.clone()),
            Box::new(queue_depth.clone()),
            Box::new(jobs_running.clone()),
            Box::new(stage_latency.clone()),
            Box::new(jobs_failed.clone()),
            Box::new(upstream_ready.clone()),
        ] {
            registry.register(c).expect("unique metric names");
        }
        // Counters and histograms start at zero for every known label value, so an error rate or
        // a stage's quantile reads "none yet" instead of "no such series" (and `increase()` over
        // the first error of a kind counts it).
        for code in ErrorCode::ALL {
            errors.with_label_values(&[code.as_str()]);
            jobs_failed.with_label_values(&[code.as_str()]);
        }
        for stage in STAGES {
            stage_latency.with_label_values(&[stage]);
        }
        let gpu = t2_gpumon::global();
        gpu.expect_services(SERVICES);
        gpu.register(&registry)
            .expect("the GPU metrics' names are distinct from the gateway's");
        Self {
            registry,
            latency,
            errors,
            in_flight,
            queue_depth,
            jobs_running,
            stage_latency,
            jobs_failed,
            upstream_ready,
        }
    }

    /// Records that `stage` (one of [`STAGES`]) took `seconds`.
    pub fn observe_stage(&self, stage: &str, seconds: f64) {
        self.stage_latency
            .with_label_values(&[stage])
            .observe(seconds);
    }

    /// Records that a job ended with `code` (HTTP errors are counted by the middleware; a job
    /// fails after its 202, so the job runner reports it here).
    pub fn observe_job_failure(&self, code: ErrorCode) {
        self.jobs_failed.with_label_values(&[code.as_str()]).inc();
    }

    /// Records each service's readiness from its self-description (as `/ready` fetches it).
    pub fn observe_upstreams(&self, infos: &[ServiceInfo]) {
        for i in infos {
            self.upstream_ready
                .with_label_values(&[i.service.as_str()])
                .set(i64::from(i.ready));
        }
    }

    /// Keeps `trellis2_upstream_ready` current without waiting for someone to call `/ready`:
    /// asks `backends` every `every` until the returned task is aborted (or the runtime stops).
    pub fn spawn_upstream_refresh(
        self: &Arc<Self>,
        backends: Backends,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                me.observe_upstreams(&backends.infos().await);
            }
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn known_codes_and_stages_start_at_zero() {
        let text = Metrics::new().render();
        assert_eq!(
            sample(&text, "trellis2_http_errors_total{code=\"cuda_oom\"}"),
            Some(0.0),
            "{text}"
        );
        for s in STAGES {
            let series = format!("trellis2_stage_duration_seconds_count{{stage=\"{s}\"}}");
            assert_eq!(sample(&text, &series), Some(0.0), "{series} in {text}");
        }
        // Readiness is unknown until observed: no sample rather than a false 0.
        assert!(!text.contains("trellis2_upstream_ready{"), "{text}");
    }

    #[test]
    fn stages_and_upstreams_are_recorded() {
        let m = Metrics::new();
        m.observe_stage("flow", 42.0);
        m.observe_upstreams(&[
            ServiceInfo {
                service: "flow".into(),
                ready: true,
                ..Default::default()
            },
            ServiceInfo {
                service: "mesh".into(),
                ready: false,
                ..Default::default()
            },
        ]);
        let text = m.render();
        assert_eq!(
            sample(&text, "trellis2_stage_duration_seconds_sum{stage=\"flow\"}"),
            Some(42.0)
        );
        assert_eq!(
            sample(&text, "trellis2_upstream_ready{service=\"flow\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "trellis2_upstream_ready{service=\"mesh\"}"),
            Some(0.0)
        );
    }
}
