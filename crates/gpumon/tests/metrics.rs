//! Without a GPU (this CI machine), the monitor builds, runs and says so: NVML absent with the
//! reason, no CUDA device, the always-present families exported; model loads are recorded; a
//! service's `/metrics` endpoint serves it over HTTP.

use std::sync::Arc;

use prometheus::Registry;
use t2_gpumon::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A library that cannot exist, so the test means "absent" even on a GPU machine.
const NO_NVML: &str = "/nonexistent/libnvidia-ml.so.1";

fn sample_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split([' ', '{']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn nvml_absent_is_reported_with_the_reason() {
    let m = GpuMonitor::with_nvml_library(NO_NVML);
    let snap = m.snapshot();
    match &snap.nvml {
        NvmlStatus::Absent(why) => assert!(why.contains(NO_NVML), "{why}"),
        NvmlStatus::Present(g) => panic!("NVML cannot load from {NO_NVML}, got {g:?}"),
    }
    assert!(snap.cuda.is_empty(), "nothing was watched");
}

#[test]
fn the_cpu_device_is_not_watched() {
    let m = GpuMonitor::with_nvml_library(NO_NVML);
    m.watch(&t2_tensor::Device::Cpu);
    assert!(m.snapshot().cuda.is_empty());
}

#[test]
fn scrape_exports_presence_gauges_and_model_loads() {
    let m = Arc::new(GpuMonitor::with_nvml_library(NO_NVML));
    let r = Registry::new();
    m.register(&r).unwrap();
    m.expect_services(&["rmbg", "flow"]);
    m.record_model_load("flow", 2.0);
    m.record_model_load("flow", 4.0);
    let text = render(&r);

    assert_eq!(sample_value(&text, NVML_AVAILABLE), Some(0.0), "{text}");
    assert_eq!(sample_value(&text, CUDA_DEVICES), Some(0.0), "{text}");
    assert!(sample_value(&text, SCRAPE_SECONDS).is_some(), "{text}");
    // No device: no per-device sample at all (not a fake zero).
    for name in CUDA_DEVICE_METRICS.iter().chain(NVML_METRICS) {
        assert!(sample_value(&text, name).is_none(), "{name} in {text}");
    }
    assert!(
        text.contains("trellis2_model_load_seconds_count{service=\"flow\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("trellis2_model_load_seconds_sum{service=\"flow\"} 6"),
        "{text}"
    );
    // Expected but not loaded yet: present with no observations.
    assert!(
        text.contains("trellis2_model_load_seconds_count{service=\"rmbg\"} 0"),
        "{text}"
    );
}

#[test]
fn one_monitor_in_two_registries() {
    let m = Arc::new(GpuMonitor::with_nvml_library(NO_NVML));
    let (a, b) = (Registry::new(), Registry::new());
    m.register(&a).unwrap();
    m.register(&b).unwrap();
    assert!(m.register(&a).is_err(), "twice in one registry is refused");
    assert_eq!(sample_value(&render(&b), NVML_AVAILABLE), Some(0.0));
}

/// On a machine with CUDA (the lent GPU), a watched device reports real allocator counters.
#[test]
fn a_cuda_device_reports_allocator_memory_when_present() {
    let Ok(dev) = t2_tensor::Device::cuda(0) else {
        eprintln!("no CUDA device: allocator path not exercised here");
        return;
    };
    let m = Arc::new(GpuMonitor::with_nvml_library(NO_NVML));
    m.watch(&dev);
    m.watch(&dev);
    let x = t2_tensor::Tensor::zeros(&[1 << 20], t2_tensor::DType::F32, &dev).unwrap();
    let snap = m.snapshot();
    assert_eq!(snap.cuda.len(), 1, "watching twice keeps one");
    let s = snap.cuda[0].stats;
    assert!(s.allocated >= 4 << 20, "{s:?}");
    assert!(s.device_total > s.device_free, "{s:?}");
    drop(x);
    let r = Registry::new();
    m.register(&r).unwrap();
    let text = render(&r);
    assert_eq!(sample_value(&text, CUDA_DEVICES), Some(1.0));
    for name in CUDA_DEVICE_METRICS {
        assert!(sample_value(&text, name).is_some(), "{name} in {text}");
    }
}

#[tokio::test]
async fn metrics_endpoint_serves_the_text_format() {
    let addr = spawn_metrics_endpoint("127.0.0.1:0").await.unwrap();
    record_model_load("rmbg", 1.5);
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("text/plain; version=0.0.4"), "{resp}");
    assert!(
        resp.contains(&format!("# TYPE {NVML_AVAILABLE} gauge")),
        "{resp}"
    );
    assert!(
        resp.contains("trellis2_model_load_seconds_count{service=\"rmbg\"} 1"),
        "{resp}"
    );
}

#[test]
fn binding_a_bad_address_is_a_typed_error() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt
        .block_on(spawn_metrics_endpoint("not-an-address"))
        .unwrap_err();
    assert!(matches!(err, GpumonError::Bind { .. }), "{err}");
}
