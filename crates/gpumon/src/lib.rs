//! Metrics a model-serving process exports about itself, for Prometheus:
//!
//! - GPU memory of the CUDA devices the process computes on, from t2-tensor's caching
//!   allocator (`CudaDevice::memory_stats`: live, peak and cached bytes, and the driver's
//!   free/total);
//! - device-wide memory and utilisation from NVML, when `libnvidia-ml.so.1` can be loaded at run
//!   time (dlopen; nothing is linked, so building and running without a GPU works and the
//!   scrape reports NVML as absent);
//! - how long each service took to load its models (a histogram: every load is one event).
//!
//! Values are sampled when Prometheus scrapes, not on a timer, so an idle process costs nothing.
//!
//! Wiring (one process-wide monitor, [`global`]):
//! - where a service opens its device: [`watch`]`(&device)`;
//! - after it has loaded its models: [`record_model_load`]`(SERVICE, seconds)`;
//! - a separate service process serves its metrics with [`spawn_metrics_endpoint`]`(addr)`;
//!   the gateway registers the same monitor in its own registry ([`GpuMonitor::register`]) so
//!   the all-in-one process exposes everything at its `/metrics`.

mod names;
mod nvml;
mod server;

use std::sync::{Arc, Mutex, OnceLock};

use prometheus::core::{Collector, Desc};
use prometheus::{
    Gauge, GaugeVec, HistogramOpts, HistogramVec, IntGauge, IntGaugeVec, Opts, Registry,
};
use t2_tensor::Device;
use t2_tensor::cuda::{CudaDevice, MemoryStats};

pub use names::*;
pub use nvml::NVML_LIBRARY_ENV;
pub use server::{GpumonError, render, serve_metrics, spawn_metrics_endpoint};

/// Model loads take from a fraction of a second (demo models) to minutes (the 4B checkpoint
/// from a cold network volume).
const LOAD_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Memory counters of one CUDA device this process computes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CudaMemory {
    /// `cuda:N` (the CUDA ordinal this process uses).
    pub device: String,
    pub stats: MemoryStats,
}

/// One GPU as NVML sees it (device-wide: every process on it counts).
#[derive(Debug, Clone, PartialEq)]
pub struct NvmlGpu {
    /// NVML index (inside a container: among the GPUs it was given).
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub memory_used: u64,
    pub memory_total: u64,
    /// Fraction of the last sample period a kernel was running (0..=1); `None` where the GPU
    /// does not report it (e.g. a MIG slice).
    pub utilization: Option<f64>,
}

/// What NVML gave, or why it gave nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum NvmlStatus {
    Present(Vec<NvmlGpu>),
    Absent(String),
}

/// One sample of everything the monitor reports about GPUs.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuSnapshot {
    pub cuda: Vec<CudaMemory>,
    pub nvml: NvmlStatus,
}

/// The gauges a scrape refreshes.
struct Gauges {
    nvml_available: IntGauge,
    cuda_devices: IntGauge,
    allocated: IntGaugeVec,
    peak: IntGaugeVec,
    cached: IntGaugeVec,
    device_total: IntGaugeVec,
    device_free: IntGaugeVec,
    info: IntGaugeVec,
    memory_used: IntGaugeVec,
    memory_total: IntGaugeVec,
    utilization: GaugeVec,
    scrape_seconds: Gauge,
}

fn int_gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::with_opts(Opts::new(name, help)).expect("valid gauge")
}

fn int_gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge")
}

impl Gauges {
    fn new() -> Self {
        Self {
            nvml_available: int_gauge(
                NVML_AVAILABLE,
                "1 when NVML (libnvidia-ml.so.1) is loaded and answers, 0 when absent",
            ),
            cuda_devices: int_gauge(
                CUDA_DEVICES,
                "CUDA devices this process computes on (0: CPU only)",
            ),
            allocated: int_gauge_vec(
                ALLOCATED_BYTES,
                "Bytes held by live tensors in this process's CUDA allocator",
                &["device"],
            ),
            peak: int_gauge_vec(
                PEAK_ALLOCATED_BYTES,
                "Most bytes held by live tensors since the device was opened or the peak reset",
                &["device"],
            ),
            cached: int_gauge_vec(
                CACHED_BYTES,
                "Bytes this process's CUDA allocator keeps cached for reuse",
                &["device"],
            ),
            device_total: int_gauge_vec(
                DEVICE_TOTAL_BYTES,
                "Total memory of the device, as the CUDA driver reports it",
                &["device"],
            ),
            device_free: int_gauge_vec(
                DEVICE_FREE_BYTES,
                "Free memory of the device (all processes), as the CUDA driver reports it",
                &["device"],
            ),
            info: int_gauge_vec(
                NVML_INFO,
                "One per GPU NVML sees, with its name and UUID",
                &["gpu", "name", "uuid"],
            ),
            memory_used: int_gauge_vec(
                NVML_MEMORY_USED_BYTES,
                "Device memory in use by all processes (NVML)",
                &["gpu"],
            ),
            memory_total: int_gauge_vec(
                NVML_MEMORY_TOTAL_BYTES,
                "Device memory installed (NVML)",
                &["gpu"],
            ),
            utilization: GaugeVec::new(
                Opts::new(
                    NVML_UTILIZATION_RATIO,
                    "Fraction of the last sample period a kernel ran on the GPU (NVML)",
                ),
                &["gpu"],
            )
            .expect("valid gauge"),
            scrape_seconds: Gauge::with_opts(Opts::new(
                SCRAPE_SECONDS,
                "Time the last GPU sample took",
            ))
            .expect("valid gauge"),
        }
    }

    fn collectors(&self) -> [&dyn Collector; 12] {
        [
            &self.nvml_available,
            &self.cuda_devices,
            &self.allocated,
            &self.peak,
            &self.cached,
            &self.device_total,
            &self.device_free,
            &self.info,
            &self.memory_used,
            &self.memory_total,
            &self.utilization,
            &self.scrape_seconds,
        ]
    }

    /// Replaces every value with `snap` (devices that went away disappear).
    fn write(&self, snap: &GpuSnapshot) {
        for v in [
            &self.allocated,
            &self.peak,
            &self.cached,
            &self.device_total,
            &self.device_free,
            &self.info,
            &self.memory_used,
            &self.memory_total,
        ] {
            v.reset();
        }
        self.utilization.reset();
        self.cuda_devices.set(snap.cuda.len() as i64);
        for c in &snap.cuda {
            let l = [c.device.as_str()];
            let s = &c.stats;
            self.allocated.with_label_values(&l).set(s.allocated as i64);
            self.peak.with_label_values(&l).set(s.peak_allocated as i64);
            self.cached.with_label_values(&l).set(s.cached as i64);
            // 0/0 means the driver query failed: report nothing rather than an empty GPU.
            if s.device_total > 0 {
                self.device_total
                    .with_label_values(&l)
                    .set(s.device_total as i64);
                self.device_free
                    .with_label_values(&l)
                    .set(s.device_free as i64);
            }
        }
        match &snap.nvml {
            NvmlStatus::Absent(_) => self.nvml_available.set(0),
            NvmlStatus::Present(gpus) => {
                self.nvml_available.set(1);
                for g in gpus {
                    let idx = g.index.to_string();
                    let l = [idx.as_str()];
                    self.info
                        .with_label_values(&[idx.as_str(), g.name.as_str(), g.uuid.as_str()])
                        .set(1);
                    self.memory_used
                        .with_label_values(&l)
                        .set(g.memory_used as i64);
                    self.memory_total
                        .with_label_values(&l)
                        .set(g.memory_total as i64);
                    if let Some(u) = g.utilization {
                        self.utilization.with_label_values(&l).set(u);
                    }
                }
            }
        }
    }
}

/// The process's GPU and model-load metrics. Use [`global`] in binaries; tests build their own.
pub struct GpuMonitor {
    devices: Mutex<Vec<CudaDevice>>,
    nvml: nvml::NvmlSource,
    model_load: HistogramVec,
    gauges: Gauges,
    /// One scrape at a time: a scrape resets and refills the gauges.
    scrape: Mutex<()>,
}

impl GpuMonitor {
    /// NVML from `TRELLIS2_NVML_LIBRARY`, else `libnvidia-ml.so.1` (the driver's soname, present
    /// wherever the driver is, unlike the unversioned dev symlink).
    pub fn new() -> Self {
        Self::with_nvml_library(nvml::default_library())
    }

    /// NVML loaded from `library` (a path or soname), on first use.
    pub fn with_nvml_library(library: impl Into<std::ffi::OsString>) -> Self {
        Self {
            devices: Mutex::new(Vec::new()),
            nvml: nvml::NvmlSource::new(library.into()),
            model_load: HistogramVec::new(
                HistogramOpts::new(
                    MODEL_LOAD_SECONDS,
                    "Time a service took to load its models (one observation per load)",
                )
                .buckets(LOAD_BUCKETS.to_vec()),
                &["service"],
            )
            .expect("valid histogram"),
            gauges: Gauges::new(),
            scrape: Mutex::new(()),
        }
    }

    fn devices(&self) -> std::sync::MutexGuard<'_, Vec<CudaDevice>> {
        self.devices.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reports `device`'s memory from now on (a no-op for the CPU and for a device already
    /// watched). Keeps a handle, so the device stays open while the process lives.
    pub fn watch(&self, device: &Device) {
        if let Device::Cuda(d) = device {
            let mut devices = self.devices();
            if !devices.iter().any(|w| w.ordinal() == d.ordinal()) {
                devices.push(d.clone());
            }
        }
    }

    /// Records that `service` loaded its models in `seconds`.
    pub fn record_model_load(&self, service: &str, seconds: f64) {
        self.model_load
            .with_label_values(&[service])
            .observe(seconds);
    }

    /// Makes `services`' load histograms exist (with no observations) before their first load,
    /// so a dashboard or alert sees "no load yet" instead of "no such metric".
    pub fn expect_services(&self, services: &[&str]) {
        for s in services {
            self.model_load.with_label_values(&[s]);
        }
    }

    /// Samples the allocator of every watched device and, when present, NVML.
    pub fn snapshot(&self) -> GpuSnapshot {
        let cuda = self
            .devices()
            .iter()
            .map(|d| CudaMemory {
                device: format!("cuda:{}", d.ordinal()),
                stats: d.memory_stats(),
            })
            .collect();
        GpuSnapshot {
            cuda,
            nvml: self.nvml.sample(),
        }
    }

    /// Adds this monitor to `registry` (any number of registries may hold it).
    pub fn register(self: &Arc<Self>, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(MonitorCollector(self.clone())))
    }

    fn collectors(&self) -> impl Iterator<Item = &dyn Collector> {
        self.gauges
            .collectors()
            .into_iter()
            .chain(std::iter::once(&self.model_load as &dyn Collector))
    }
}

impl Default for GpuMonitor {
    fn default() -> Self {
        Self::new()
    }
}

/// Samples at scrape time.
struct MonitorCollector(Arc<GpuMonitor>);

impl Collector for MonitorCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.0.collectors().flat_map(|c| c.desc()).collect()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let m = &self.0;
        let _one_at_a_time = m.scrape.lock().unwrap_or_else(|p| p.into_inner());
        let start = std::time::Instant::now();
        let snap = m.snapshot();
        m.gauges.write(&snap);
        m.gauges.scrape_seconds.set(start.elapsed().as_secs_f64());
        m.collectors().flat_map(|c| c.collect()).collect()
    }
}

static GLOBAL: OnceLock<Arc<GpuMonitor>> = OnceLock::new();

/// The process-wide monitor.
pub fn global() -> &'static Arc<GpuMonitor> {
    GLOBAL.get_or_init(|| Arc::new(GpuMonitor::new()))
}

/// [`GpuMonitor::watch`] on the process-wide monitor.
pub fn watch(device: &Device) {
    global().watch(device)
}

/// [`GpuMonitor::record_model_load`] on the process-wide monitor.
pub fn record_model_load(service: &str, seconds: f64) {
    global().record_model_load(service, seconds)
}
