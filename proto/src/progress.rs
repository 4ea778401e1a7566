//! Progress reporting from long calls (flow sampling, mesh export).

use std::sync::Arc;

use crate::common::v1::Progress;

/// Where a long computation reports its progress: a gRPC stream in a server adapter, a job
/// record in the gateway. Calling it must be cheap and must not block.
#[derive(Clone)]
pub struct ProgressSink(Arc<dyn Fn(Progress) + Send + Sync>);

impl ProgressSink {
    pub fn new(f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// A sink that drops every event.
    pub fn none() -> Self {
        Self::new(|_| {})
    }

    pub fn report(&self, stage: &str, step: u32, total: u32) {
        (self.0)(Progress {
            stage: stage.to_string(),
            step,
            total,
        })
    }

    pub fn send(&self, p: Progress) {
        (self.0)(p)
    }
}

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressSink")
    }
}
