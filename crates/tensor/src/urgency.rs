//! Cooperative priority on one device: work marked urgent (`Urgency::urgent`) makes the loops
//! that call `Urgency::yield_to_urgent` between their steps wait until it is done.
//!
//! Why: one CUDA device runs one stream (see `cuda`), so two computations sharing it
//! interleave their kernels in submission order. When services share a GPU in one process, a
//! job's shape decode (on its critical path: the GLB's surface steps wait for it) shares the
//! device with the same job's texture flow (off it: the texture is needed only at the end),
//! and each slows the other; measured, the shape decode took 1.8 s instead of 0.8 s
//! (BENCHMARKS.md). Letting the flow pause between its sampler steps costs it at most the
//! urgent work's time, which it had to share anyway.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Urgent work in progress on a device, and the waiters for it to end.
#[derive(Debug, Default)]
pub struct Urgency {
    running: Mutex<usize>,
    done: Condvar,
}

/// Urgent work in progress; dropping it ends it.
#[must_use = "the work is urgent only while the guard lives"]
pub struct UrgentGuard<'a>(&'a Urgency);

impl Drop for UrgentGuard<'_> {
    fn drop(&mut self) {
        let mut n = self.0.running.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        if *n == 0 {
            self.0.done.notify_all();
        }
    }
}

impl Urgency {
    /// Marks urgent work in progress until the guard is dropped.
    pub fn urgent(&self) -> UrgentGuard<'_> {
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        UrgentGuard(self)
    }

    /// Waits while urgent work is in progress, or until `stop()` (checked every 20 ms, e.g.
    /// the caller's cancellation). Returns at once when there is none.
    pub fn yield_to_urgent(&self, stop: &dyn Fn() -> bool) {
        let mut n = self.running.lock().unwrap_or_else(|e| e.into_inner());
        while *n > 0 && !stop() {
            n = self
                .done
                .wait_timeout(n, Duration::from_millis(20))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    pub fn is_urgent(&self) -> bool {
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    #[test]
    fn a_yielding_loop_waits_for_urgent_work_and_for_nothing_else() {
        let u = Arc::new(Urgency::default());
        // Nothing urgent: no wait.
        let t = Instant::now();
        u.yield_to_urgent(&|| false);
        assert!(t.elapsed() < Duration::from_millis(20));

        let ended = Arc::new(AtomicBool::new(false));
        let guard_ended = ended.clone();
        let u2 = u.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let worker = std::thread::spawn(move || {
            let g = u2.urgent();
            tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(150));
            guard_ended.store(true, Ordering::SeqCst);
            drop(g);
        });
        rx.recv().unwrap();
        assert!(u.is_urgent());
        u.yield_to_urgent(&|| false);
        // Returned only once the urgent work was over.
        assert!(ended.load(Ordering::SeqCst));
        assert!(!u.is_urgent());
        worker.join().unwrap();

        // A stop condition ends the wait even while urgent work goes on.
        let _g = u.urgent();
        let t = Instant::now();
        let stop_at = t + Duration::from_millis(60);
        u.yield_to_urgent(&|| Instant::now() >= stop_at);
        let waited = t.elapsed();
        assert!(waited >= Duration::from_millis(60) && waited < Duration::from_secs(1));
    }
}
