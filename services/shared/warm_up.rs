//! Warm-up of a service's networks right after they load, before the service reports
//! SERVING (`Trellis2Pipeline::warm_up`): the first request then runs as fast as the next.

use t2_models::pipeline::Trellis2Pipeline;

/// Warms `pipe` up; a failure (e.g. out of device memory) is logged, not fatal: the service
/// still serves, and its first request pays for first use.
pub fn warm_up(service: &'static str, pipe: &Trellis2Pipeline) {
    match pipe.warm_up() {
        Ok(seconds) if seconds > 0.0 => tracing::info!(service, seconds, "networks warmed up"),
        Ok(_) => {} // nothing to warm (CPU, low-VRAM mode)
        Err(e) => tracing::warn!(service, error = %e, "warm-up failed; serving without it"),
    }
}
