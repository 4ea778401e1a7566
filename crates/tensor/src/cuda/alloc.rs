//! The caching device allocator: size-bucketed free lists over `cuMemAlloc`.
//!
//! Why: a DiT step allocates and frees thousands of activations of a few dozen sizes; going to
//! the driver each time costs a synchronising `cuMemFree` and tens of microseconds. Freed blocks
//! go back to a free list keyed by their (rounded) size and are handed out again. All work runs
//! on the device's single stream, so a block freed after the launches that read it can be reused
//! by the next launch without a sync: the stream orders them.
//!
//! Rounding: requests up to 1 MiB round up to 512 B (exact-size buckets), larger ones to 2 MiB;
//! a large request may take a cached block up to 1/8 larger. When the driver reports out of
//! memory, every cached block is released and the allocation retried once; a second failure is
//! `Error::OutOfMemory` and the device stays usable.
//!
//! Limit: an optional cap on what the pool holds from the driver (live + cached), so a process
//! can be held to a VRAM budget (another tenant on the GPU, or proving a low-VRAM mode fits).
//! Reaching it releases the cache first, exactly as a driver out-of-memory does.

use std::collections::BTreeMap;
use std::sync::Mutex;

use cudarc::driver::{result, sys};

use crate::{Error, Result};

const SMALL_LIMIT: usize = 1 << 20;
const SMALL_ROUND: usize = 512;
const LARGE_ROUND: usize = 2 << 20;

/// Device-memory counters, in bytes (what the services report as VRAM use).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Held by live tensors (rounded block sizes).
    pub allocated: usize,
    /// The most `allocated` has been since the device was opened (or `reset_peak`).
    pub peak_allocated: usize,
    /// Cached in free lists, ready for reuse (freed by `empty_cache`).
    pub cached: usize,
    /// The most the pool has held from the driver (`allocated + cached`) since the device was
    /// opened (or `reset_peak`): what the process really took, fragmentation included.
    pub peak_reserved: usize,
    /// The pool's cap on `allocated + cached`, if one is set.
    pub limit: Option<usize>,
    /// Device-wide free and total memory as the driver reports them.
    pub device_free: usize,
    pub device_total: usize,
}

#[derive(Default)]
struct PoolState {
    free: BTreeMap<usize, Vec<sys::CUdeviceptr>>,
    allocated: usize,
    peak: usize,
    cached: usize,
    peak_reserved: usize,
    limit: Option<usize>,
}

impl PoolState {
    fn note_peaks(&mut self) {
        self.peak = self.peak.max(self.allocated);
        self.peak_reserved = self.peak_reserved.max(self.allocated + self.cached);
    }
    /// Whether a fresh driver allocation of `want` bytes stays within the limit.
    fn fits(&self, want: usize) -> bool {
        self.limit
            .is_none_or(|l| self.allocated + self.cached + want <= l)
    }
}

pub(crate) struct Pool {
    state: Mutex<PoolState>,
}

pub(crate) fn block_size(bytes: usize) -> usize {
    if bytes <= SMALL_LIMIT {
        bytes.div_ceil(SMALL_ROUND).max(1) * SMALL_ROUND
    } else {
        bytes.div_ceil(LARGE_ROUND) * LARGE_ROUND
    }
}

impl Pool {
    pub(crate) fn new() -> Pool {
        Pool {
            state: Mutex::new(PoolState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A block of at least `bytes`; returns (pointer, block size). The caller's context must be
    /// current. `release_cached` is called (to sync the stream) before cached blocks are freed.
    pub(crate) fn alloc(
        &self,
        bytes: usize,
        sync: impl Fn() -> Result<()>,
    ) -> Result<(sys::CUdeviceptr, usize)> {
        let want = block_size(bytes);
        let mut st = self.lock();
        let hit = if want <= SMALL_LIMIT {
            st.free
                .get(&want)
                .and_then(|v| v.last().copied())
                .map(|p| (p, want))
        } else {
            st.free
                .range(want..=want + want / 8)
                .find(|(_, v)| !v.is_empty())
                .map(|(&size, v)| (*v.last().unwrap_or(&0), size))
        };
        if let Some((ptr, size)) = hit {
            let list = st.free.get_mut(&size).expect("bucket exists");
            list.pop();
            if list.is_empty() {
                st.free.remove(&size);
            }
            st.cached -= size;
            st.allocated += size;
            st.note_peaks();
            return Ok((ptr, size));
        }
        if !st.fits(want) {
            // Over the cap: hand the cache back, then the request must fit in what is left.
            drop(st);
            self.release_cached(&sync)?;
            st = self.lock();
            if !st.fits(want) {
                return Err(Error::OutOfMemory { bytes });
            }
        }
        // SAFETY: plain device allocation in the current context.
        let ptr = match unsafe { result::malloc_sync(want) } {
            Ok(p) => p,
            Err(e) if e.0 == sys::cudaError_enum::CUDA_ERROR_OUT_OF_MEMORY => {
                // Give every cached block back to the driver, then try once more.
                drop(st);
                self.release_cached(&sync)?;
                st = self.lock();
                match unsafe { result::malloc_sync(want) } {
                    Ok(p) => p,
                    Err(e) if e.0 == sys::cudaError_enum::CUDA_ERROR_OUT_OF_MEMORY => {
                        return Err(Error::OutOfMemory { bytes });
                    }
                    Err(e) => return Err(cuda_err("cuMemAlloc", e)),
                }
            }
            Err(e) => return Err(cuda_err("cuMemAlloc", e)),
        };
        st.allocated += want;
        st.note_peaks();
        Ok((ptr, want))
    }

    /// Returns a block to its free list (called from `CudaStorage::drop`).
    pub(crate) fn free(&self, ptr: sys::CUdeviceptr, size: usize) {
        let mut st = self.lock();
        st.free.entry(size).or_default().push(ptr);
        st.allocated -= size;
        st.cached += size;
    }

    /// Frees every cached block to the driver (after `sync`, so no queued kernel still uses one).
    pub(crate) fn release_cached(&self, sync: &dyn Fn() -> Result<()>) -> Result<()> {
        sync()?;
        let mut st = self.lock();
        let free = std::mem::take(&mut st.free);
        st.cached = 0;
        drop(st);
        let mut first_err = None;
        for ptr in free.into_values().flatten() {
            // SAFETY: the pointer came from malloc_sync and is in no live storage.
            if let Err(e) = unsafe { result::free_sync(ptr) } {
                first_err.get_or_insert(cuda_err("cuMemFree", e));
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// `(allocated, peak, cached, peak_reserved, limit)`.
    pub(crate) fn stats(&self) -> (usize, usize, usize, usize, Option<usize>) {
        let st = self.lock();
        (st.allocated, st.peak, st.cached, st.peak_reserved, st.limit)
    }

    pub(crate) fn reset_peak(&self) {
        let mut st = self.lock();
        st.peak = st.allocated;
        st.peak_reserved = st.allocated + st.cached;
    }

    /// Caps `allocated + cached` at `limit` bytes (`None`: no cap). Memory already held above a
    /// new cap stays until it is freed; later allocations must fit.
    pub(crate) fn set_limit(&self, limit: Option<usize>) {
        self.lock().limit = limit;
    }
}

pub(crate) fn cuda_err(op: &'static str, e: result::DriverError) -> Error {
    Error::Cuda {
        op,
        msg: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn blocks_round_to_their_bucket() {
        assert_eq!(block_size(0), 512);
        assert_eq!(block_size(1), 512);
        assert_eq!(block_size(512), 512);
        assert_eq!(block_size(513), 1024);
        assert_eq!(block_size(1 << 20), 1 << 20);
        assert_eq!(block_size((1 << 20) + 1), 2 << 20);
        assert_eq!(block_size((6 << 20) + 5), 8 << 20);
    }
}
