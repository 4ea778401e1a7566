//! The compute lane of a service: where its blocking model work runs, one job at a time per
//! device, behind a bounded admission queue.
//!
//! (Shared source: each service crate includes this file with `#[path]`, so the four crates
//! stay independent of each other while running the same code.)
//!
//! - Admission: at most `concurrency + max_waiting` requests are admitted; the next one is
//!   refused at once with `overloaded` (the caller retries later) instead of queueing without
//!   bound.
//! - Execution: admitted work waits for one of `concurrency` run slots, then runs on a blocking
//!   thread with a [`Cancel`] token. The run slot stays held until the work has really returned,
//!   so a cancelled job never overlaps the next one on the device.
//! - Cancellation: dropping the future returned by [`Lane::run`] (client gone, deadline passed,
//!   job cancelled) sets the token; model code checks it between steps.
//! - Out of memory: when the work fails with `cuda_oom`, its tensors are already dropped (they
//!   lived inside the closure) and the lane calls `release_memory` (the CUDA allocator's
//!   `empty_cache`) before answering, so the next request starts from a clean device.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use t2_proto::{ErrorCode, ServiceError};
use tokio::sync::Semaphore;

/// Requests allowed to wait for a busy device before new ones get `overloaded`: a handful
/// keeps the device fed between requests without piling up minutes of latency.
pub const DEFAULT_MAX_WAITING: usize = 8;

/// Set when the caller of a running job has gone away; checked by the work between steps.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// `Err(cancelled)` once the caller has gone away.
    pub fn check(&self) -> Result<(), ServiceError> {
        if self.is_cancelled() {
            Err(ServiceError::Cancelled(
                "the caller went away; computation stopped".into(),
            ))
        } else {
            Ok(())
        }
    }
}

struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Frees what the device caches after a failed request (no-op on the CPU).
pub type ReleaseMemory = Arc<dyn Fn() + Send + Sync>;

/// See the module docs.
pub struct Lane {
    name: &'static str,
    capacity: usize,
    admitted: Arc<Semaphore>,
    slots: Arc<Semaphore>,
    running: Arc<AtomicUsize>,
    release_memory: ReleaseMemory,
}

impl std::fmt::Debug for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lane")
            .field("name", &self.name)
            .field("capacity", &self.capacity)
            .field("running", &self.running())
            .finish()
    }
}

struct CountRunning(Arc<AtomicUsize>);

impl CountRunning {
    fn new(c: Arc<AtomicUsize>) -> Self {
        c.fetch_add(1, Ordering::SeqCst);
        Self(c)
    }
}

impl Drop for CountRunning {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Lane {
    pub fn new(
        name: &'static str,
        concurrency: usize,
        max_waiting: usize,
        release_memory: ReleaseMemory,
    ) -> Self {
        let concurrency = concurrency.max(1);
        let capacity = concurrency + max_waiting;
        Self {
            name,
            capacity,
            admitted: Arc::new(Semaphore::new(capacity)),
            slots: Arc::new(Semaphore::new(concurrency)),
            running: Arc::new(AtomicUsize::new(0)),
            release_memory,
        }
    }

    /// A lane that frees `device`'s cached memory after an out-of-memory failure.
    pub fn for_device(name: &'static str, device: &t2_tensor::Device) -> Self {
        let device = device.clone();
        let release: ReleaseMemory = Arc::new(move || release_device_memory(&device));
        Self::new(name, 1, DEFAULT_MAX_WAITING, release)
    }

    /// Jobs executing right now (a cancelled job counts until its work has returned).
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Admitted requests (running or waiting).
    pub fn admitted(&self) -> usize {
        self.capacity - self.admitted.available_permits()
    }

    /// Runs `work` on a blocking thread under the lane's limits (see the module docs).
    pub async fn run<T, F>(&self, work: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&Cancel) -> Result<T, ServiceError> + Send + 'static,
    {
        let admit = self.admitted.clone().try_acquire_owned().map_err(|_| {
            ServiceError::failed(
                ErrorCode::Overloaded,
                format!(
                    "the {} service is busy ({} requests admitted); retry later",
                    self.name, self.capacity
                ),
            )
        })?;
        let slot =
            self.slots.clone().acquire_owned().await.map_err(|_| {
                ServiceError::Unavailable(format!("the {} lane is closed", self.name))
            })?;
        let cancel = Cancel::default();
        let _cancel_on_drop = CancelOnDrop(cancel.clone());
        let release = self.release_memory.clone();
        let running = self.running.clone();
        let span = tracing::Span::current();
        let name = self.name;
        let handle = tokio::task::spawn_blocking(move || {
            // Held until the work returns, even when the caller is gone.
            let _slot = slot;
            let _admit = admit;
            let _running = CountRunning::new(running);
            let _entered = span.enter();
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&cancel)))
                .unwrap_or_else(|_| {
                    Err(ServiceError::failed(
                        ErrorCode::Internal,
                        format!("the {name} computation panicked"),
                    ))
                });
            if let Err(e) = &out {
                let code = e.code();
                if code == ErrorCode::CudaOom || code == ErrorCode::Internal {
                    // The request's tensors were dropped with the closure; give the cached
                    // blocks back so the next request does not inherit a fragmented pool.
                    release();
                    tracing::warn!(
                        service = name,
                        code = code.as_str(),
                        "released device memory after a failed request"
                    );
                }
            }
            out
        });
        match handle.await {
            Ok(out) => out,
            Err(e) => Err(ServiceError::failed(
                ErrorCode::Internal,
                format!("the {name} computation failed to run: {e}"),
            )),
        }
    }
}

/// Returns the CUDA allocator's cached blocks to the driver (nothing to do on the CPU).
pub fn release_device_memory(device: &t2_tensor::Device) {
    if let t2_tensor::Device::Cuda(d) = device
        && let Err(e) = d.empty_cache()
    {
        tracing::warn!(error = %e, "emptying the CUDA cache failed");
    }
}

/// `GetInfo` of a service computing on `device`: its load status, the models it serves, the
/// GPU's name (or `cpu`), VRAM held by live tensors and the device's total (for `/v1/status`).
pub fn service_info(
    service: &str,
    status: crate::shared::loading::LoadStatus,
    models: Vec<String>,
    device: &t2_tensor::Device,
) -> t2_proto::common::v1::ServiceInfo {
    let (gpu, vram_allocated_bytes, vram_total_bytes) = match device {
        t2_tensor::Device::Cpu => ("cpu".into(), 0, 0),
        t2_tensor::Device::Cuda(d) => {
            let m = d.memory_stats();
            (
                d.name().to_string(),
                m.allocated as u64,
                m.device_total as u64,
            )
        }
    };
    t2_proto::common::v1::ServiceInfo {
        service: service.into(),
        ready: status.ready,
        detail: status.detail,
        models,
        gpu,
        vram_allocated_bytes,
        vram_total_bytes,
        load_time_seconds: status.load_time_seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    fn counting_lane(max_waiting: usize) -> (Lane, Arc<AtomicUsize>) {
        let released = Arc::new(AtomicUsize::new(0));
        let r = released.clone();
        let lane = Lane::new(
            "test",
            1,
            max_waiting,
            Arc::new(move || {
                r.fetch_add(1, Ordering::SeqCst);
            }),
        );
        (lane, released)
    }

    /// An out-of-memory failure (injected: the work allocates, then fails as the CUDA
    /// allocator would) is answered `cuda_oom`, the device memory is released once, and the
    /// next request runs normally.
    #[tokio::test]
    async fn an_oom_is_cuda_oom_releases_memory_and_the_next_request_succeeds() {
        let (lane, released) = counting_lane(2);
        let err = lane
            .run(|_| -> Result<(), ServiceError> {
                let _activations = vec![0u8; 1 << 20];
                Err(ServiceError::failed(
                    ErrorCode::CudaOom,
                    "out of device memory allocating 1048576 bytes",
                ))
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::CudaOom);
        assert_eq!(released.load(Ordering::SeqCst), 1);
        assert_eq!(lane.run(|_| Ok(41 + 1)).await.unwrap(), 42);
        assert_eq!(
            released.load(Ordering::SeqCst),
            1,
            "no release after success"
        );
        assert_eq!((lane.running(), lane.admitted()), (0, 0));
    }

    #[tokio::test]
    async fn a_full_lane_answers_overloaded_and_a_dropped_caller_cancels_the_work() {
        let (lane, _) = counting_lane(0);
        let lane = Arc::new(lane);
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (stopped_tx, stopped_rx) = std::sync::mpsc::channel();
        let l = lane.clone();
        let first = tokio::spawn(async move {
            l.run(move |cancel| {
                started_tx.send(()).unwrap();
                while !cancel.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(5));
                }
                stopped_tx.send(()).unwrap();
                cancel.check()
            })
            .await
        });
        tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
            .await
            .unwrap();
        let err = lane.run(|_| Ok(())).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Overloaded, "{err:?}");
        first.abort();
        tokio::task::spawn_blocking(move || {
            stopped_rx
                .recv_timeout(Duration::from_secs(5))
                .expect("the work saw the cancellation")
        })
        .await
        .unwrap();
        // Once the cancelled work has returned, the lane takes new work again.
        for _ in 0..200 {
            if lane.running() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(lane.run(|_| Ok(7)).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn a_panic_is_an_internal_error_not_a_crash() {
        let (lane, released) = counting_lane(1);
        let err = lane
            .run(|_| -> Result<(), ServiceError> { panic!("kernel bug") })
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Internal);
        assert_eq!(released.load(Ordering::SeqCst), 1);
        assert_eq!(lane.run(|_| Ok(1)).await.unwrap(), 1);
    }
}
