//! Metric names, shared with dashboards, alert rules and the tests that check them.

/// 1 when NVML answers, 0 when absent. Always exported.
pub const NVML_AVAILABLE: &str = "trellis2_gpu_nvml_available";
/// CUDA devices the process computes on. Always exported.
pub const CUDA_DEVICES: &str = "trellis2_gpu_cuda_devices";
/// Seconds the last GPU sample took. Always exported.
pub const SCRAPE_SECONDS: &str = "trellis2_gpu_scrape_seconds";

/// t2-tensor allocator, per CUDA device this process computes on (label `device="cuda:N"`).
pub const ALLOCATED_BYTES: &str = "trellis2_gpu_allocated_bytes";
pub const PEAK_ALLOCATED_BYTES: &str = "trellis2_gpu_peak_allocated_bytes";
pub const CACHED_BYTES: &str = "trellis2_gpu_cached_bytes";
pub const DEVICE_TOTAL_BYTES: &str = "trellis2_gpu_device_total_bytes";
pub const DEVICE_FREE_BYTES: &str = "trellis2_gpu_device_free_bytes";

/// NVML, per GPU it sees (label `gpu="N"`).
pub const NVML_INFO: &str = "trellis2_gpu_info";
pub const NVML_MEMORY_USED_BYTES: &str = "trellis2_gpu_memory_used_bytes";
pub const NVML_MEMORY_TOTAL_BYTES: &str = "trellis2_gpu_memory_total_bytes";
pub const NVML_UTILIZATION_RATIO: &str = "trellis2_gpu_utilization_ratio";

/// Histogram of model load times, label `service`.
pub const MODEL_LOAD_SECONDS: &str = "trellis2_model_load_seconds";

/// Families with a sample only while the process has a CUDA device (`CUDA_DEVICES` > 0).
pub const CUDA_DEVICE_METRICS: &[&str] = &[
    ALLOCATED_BYTES,
    PEAK_ALLOCATED_BYTES,
    CACHED_BYTES,
    DEVICE_TOTAL_BYTES,
    DEVICE_FREE_BYTES,
];

/// Families with a sample only while NVML is present (`NVML_AVAILABLE` = 1) and sees a GPU.
pub const NVML_METRICS: &[&str] = &[
    NVML_INFO,
    NVML_MEMORY_USED_BYTES,
    NVML_MEMORY_TOTAL_BYTES,
    NVML_UTILIZATION_RATIO,
];
