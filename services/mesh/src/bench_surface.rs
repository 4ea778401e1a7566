//! Benchmark mode's stand-in surface (`TRELLIS2_BENCH_STRUCTURE`, random weights only): the
//! GLB steps run on the analytic sphere's surface, as t2-bench's do. Random decoder weights
//! put the dual vertices anywhere in their voxels, a noise surface no trained model produces;
//! through the gateway at 1024 its UV unwrap took 125 s and cut 727,818 charts, more than a
//! 4096² page holds.
//!
//! The sphere is benchmark set-up, not work a request does, so it is built once per
//! resolution on a background thread when the models load (t2-bench builds it before its
//! clock too), as are the surface's subdivision decisions the shape decoder takes. Built
//! inside the request, the 1024 grid alone put 0.89 s (2 host cores) on the gateway's
//! image → GLB clock.

use std::sync::{Arc, OnceLock};

use t2_mesh::TriMesh;
use t2_models::pipeline::Trellis2Pipeline;

/// The resolutions the synthetic grid can build (powers of two); 1536 keeps the decoder's
/// surface.
const RESOLUTIONS: [u32; 2] = [512, 1024];

/// Sphere surfaces per resolution, each built at most once.
#[derive(Default)]
pub struct BenchSurfaces {
    slots: [OnceLock<Option<Arc<TriMesh>>>; RESOLUTIONS.len()],
}

impl BenchSurfaces {
    /// Starts building every resolution's surface on a background thread, and the decoder's
    /// benchmark subdivisions (`Trellis2Pipeline::prepare_bench_subdivisions`) with them.
    pub fn prepare_in_background(self: &Arc<Self>, pipe: Arc<Trellis2Pipeline>) {
        let surfaces = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("bench-surface".into())
            .spawn(move || {
                for r in RESOLUTIONS {
                    surfaces.get(r);
                }
                if let Err(e) = pipe.prepare_bench_subdivisions() {
                    tracing::warn!(%e, "benchmark mode: subdivisions left to the first job");
                }
            });
        if let Err(e) = spawned {
            // Not fatal: each is made on first use instead.
            tracing::warn!(%e, "benchmark mode: could not start the surface builder");
        }
    }

    /// The sphere's surface at `resolution`, or `None` where the synthetic grid cannot make
    /// one. Waits for the background build when it is under way.
    pub fn get(&self, resolution: u32) -> Option<Arc<TriMesh>> {
        let slot = RESOLUTIONS.iter().position(|&r| r == resolution)?;
        self.slots[slot]
            .get_or_init(|| {
                let radius = t2_models::random::shape::RADIUS as f32;
                match t2_mesh::synth::sphere_surface(radius, resolution) {
                    Ok(sphere) => Some(Arc::new(sphere)),
                    Err(e) => {
                        tracing::warn!(%e, resolution, "benchmark mode: no sphere surface");
                        None
                    }
                }
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_surface_is_built_once_and_only_for_powers_of_two() {
        let s = Arc::new(BenchSurfaces::default());
        assert!(s.get(1536).is_none());
        let a = s.get(512).expect("512 is a power of two");
        let b = s.get(512).unwrap();
        assert!(
            Arc::ptr_eq(&a, &b),
            "the second request reuses the first build"
        );
        assert!(!a.faces.is_empty());
    }
}
