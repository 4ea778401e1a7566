//! Executes jobs: a bounded number at a time (one per GPU by default), with progress written to
//! the store, artifacts to the artifact store, and cancellation by aborting the task.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use t2_proto::{ProgressSink, ServiceError};
use tokio::sync::Semaphore;
use tokio::task::AbortHandle;
use tracing::Instrument;

use super::{ArtifactStore, JobError, JobStatus, JobStore};
use crate::metrics::Metrics;
use crate::pipeline::{
    self, GLB_ARTIFACT, GeneratePlan, Orchestrator, STATE_ARTIFACT, VIDEO_ARTIFACT,
};

pub struct JobRunner {
    store: Arc<dyn JobStore>,
    artifacts: ArtifactStore,
    orchestrator: Arc<Orchestrator>,
    key: t2_state::StateKey,
    metrics: Arc<Metrics>,
    permits: Arc<Semaphore>,
    running: Mutex<HashMap<String, AbortHandle>>,
}

impl JobRunner {
    pub fn new(
        store: Arc<dyn JobStore>,
        artifacts: ArtifactStore,
        orchestrator: Arc<Orchestrator>,
        key: t2_state::StateKey,
        metrics: Arc<Metrics>,
        concurrency: usize,
    ) -> Self {
        Self {
            store,
            artifacts,
            orchestrator,
            key,
            metrics,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a queued job in the background.
    pub fn submit(self: &Arc<Self>, id: String, plan: GeneratePlan) {
        let me = self.clone();
        let job_id = id.clone();
        let span = tracing::info_span!("job", job_id = %id);
        let request_id = t2_telemetry::current_request_id().unwrap_or_default();
        // Counted from submission (not from when the task first runs) so admission control
        // sees it at once; the guard uncounts it even if the job is cancelled while queued.
        let queued = QueuedGuard::new(self.metrics.queue_depth.clone());
        let handle = tokio::spawn(
            t2_telemetry::with_request_id(request_id, async move {
                let permit = me.permits.clone().acquire_owned().await;
                drop(queued);
                let Ok(_permit) = permit else { return };
                me.metrics.jobs_running.inc();
                me.run(&job_id, plan).await;
                me.metrics.jobs_running.dec();
                me.running.lock().expect("job map lock").remove(&job_id);
            })
            .instrument(span),
        );
        self.running
            .lock()
            .expect("job map lock")
            .insert(id, handle.abort_handle());
    }

    /// Jobs submitted and still waiting for a worker.
    pub fn queued(&self) -> usize {
        self.metrics.queue_depth.get().max(0) as usize
    }

    /// Cancels a queued or running job; false if it had already finished.
    pub async fn cancel(&self, id: &str) -> Result<bool, super::StoreError> {
        let cancelled = self
            .store
            .transition(id, JobStatus::Cancelled, None, &[])
            .await?;
        if let Some(h) = self.running.lock().expect("job map lock").remove(id) {
            h.abort();
        }
        Ok(cancelled)
    }

    async fn run(&self, id: &str, plan: GeneratePlan) {
        match self
            .store
            .transition(id, JobStatus::Running, None, &[])
            .await
        {
            Ok(true) => {}
            Ok(false) => return, // cancelled while queued
            Err(e) => {
                tracing::error!(error = %e, "job store failed");
                return;
            }
        }
        let outcome = self.execute(id, plan).await;
        let (status, error, names) = match outcome {
            Ok(names) => (JobStatus::Succeeded, None, names),
            Err(e) => {
                tracing::warn!(
                    code = e.code().as_str(),
                    message = e.message(),
                    "job failed"
                );
                let err = JobError {
                    code: e.code().as_str().to_string(),
                    message: e.message().to_string(),
                };
                (JobStatus::Failed, Some(err), vec![])
            }
        };
        if let Err(e) = self.store.transition(id, status, error, &names).await {
            tracing::error!(error = %e, "job store failed");
        }
    }

    async fn execute(&self, id: &str, plan: GeneratePlan) -> Result<Vec<String>, ServiceError> {
        // Progress: the latest event wins; one writer task persists it.
        let (tx, mut rx) = tokio::sync::watch::channel(None);
        let sink = ProgressSink::new(move |p| {
            tx.send_replace(Some(p));
        });
        let store = self.store.clone();
        let job = id.to_string();
        let writer = tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let p = rx.borrow_and_update().clone();
                if let Some(p) = p {
                    let _ = store.set_progress(&job, &p.stage, p.step, p.total).await;
                }
            }
        });
        let export = plan.export;
        let preview = plan.preview_video;
        let generated = self
            .orchestrator
            .generate(
                GeneratePlan {
                    preview_video: false,
                    ..plan
                },
                sink.clone(),
            )
            .await?;
        let state = pipeline::seal(&generated.latents, &self.key)?;
        let out = self
            .orchestrator
            .extract(generated.latents, export, preview, sink)
            .await?;
        drop(writer);

        let store_err = |e: super::ArtifactError| {
            ServiceError::failed(
                t2_proto::ErrorCode::Internal,
                format!("storing artifacts: {e}"),
            )
        };
        let mut names = Vec::new();
        self.artifacts
            .put(id, STATE_ARTIFACT, Bytes::from(state))
            .await
            .map_err(store_err)?;
        names.push(STATE_ARTIFACT.to_string());
        for a in out.artifacts {
            if a.name == GLB_ARTIFACT || a.name == VIDEO_ARTIFACT {
                self.artifacts
                    .put(id, &a.name, a.data)
                    .await
                    .map_err(store_err)?;
                names.push(a.name);
            }
        }
        Ok(names)
    }
}

/// Counts one queued job in the queue-depth gauge for as long as it lives.
struct QueuedGuard(prometheus::IntGauge);

impl QueuedGuard {
    fn new(g: prometheus::IntGauge) -> Self {
        g.inc();
        Self(g)
    }
}

impl Drop for QueuedGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
