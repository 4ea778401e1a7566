//! Executes jobs: a bounded number at a time (one per GPU by default), with progress written to
//! the store, artifacts to the artifact store, and cancellation by aborting the task.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// A job's final state that the store could not take yet (disk full, read-only, I/O error).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: JobStatus,
    pub error: Option<JobError>,
    pub artifacts: Vec<String>,
}

/// Longest pause between attempts to record an outcome the store refused.
const RECORD_RETRY_MAX: Duration = Duration::from_secs(30);

pub struct JobRunner {
    store: Arc<dyn JobStore>,
    artifacts: ArtifactStore,
    orchestrator: Arc<Orchestrator>,
    key: t2_state::StateKey,
    metrics: Arc<Metrics>,
    permits: Arc<Semaphore>,
    running: Mutex<HashMap<String, AbortHandle>>,
    /// Outcomes waiting to be written: served to pollers meanwhile, so a job never looks
    /// unfinished just because its record could not be updated (they are lost with the
    /// process, whose restart then fails the record with [`crate::RESTART_REASON`]).
    unrecorded: Arc<Mutex<HashMap<String, Outcome>>>,
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
            unrecorded: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The final state of a job that ended while its record could not be written.
    pub fn unrecorded(&self, id: &str) -> Option<Outcome> {
        self.unrecorded
            .lock()
            .expect("outcome map lock")
            .get(id)
            .cloned()
    }

    /// Writes a job's final state; if the store refuses, keeps it in memory (see
    /// [`Self::unrecorded`]) and retries in the background with backoff until it is written.
    async fn record(&self, id: &str, outcome: Outcome) {
        let write = |store: Arc<dyn JobStore>, id: String, o: Outcome| async move {
            store
                .transition(&id, o.status, o.error.clone(), &o.artifacts)
                .await
        };
        let Err(e) = write(self.store.clone(), id.to_string(), outcome.clone()).await else {
            return;
        };
        tracing::error!(error = %e, "job store failed; retrying the job's final state");
        self.unrecorded
            .lock()
            .expect("outcome map lock")
            .insert(id.to_string(), outcome.clone());
        let (store, pending, id) = (self.store.clone(), self.unrecorded.clone(), id.to_string());
        tokio::spawn(async move {
            let mut pause = Duration::from_millis(500);
            loop {
                tokio::time::sleep(pause).await;
                match write(store.clone(), id.clone(), outcome.clone()).await {
                    Ok(_) => break,
                    Err(e) => tracing::warn!(error = %e, "job store still failing"),
                }
                pause = (pause * 2).min(RECORD_RETRY_MAX);
            }
            pending.lock().expect("outcome map lock").remove(&id);
            tracing::info!("job's final state recorded after the store recovered");
        });
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
                // Not run: nothing about it could be recorded. It ends failed, not queued.
                tracing::error!(error = %e, "job store failed; the job is not run");
                let error = JobError {
                    code: t2_proto::ErrorCode::Unavailable.as_str().to_string(),
                    message: "the job store failed before the job could start".into(),
                };
                self.record(
                    id,
                    Outcome {
                        status: JobStatus::Failed,
                        error: Some(error),
                        artifacts: vec![],
                    },
                )
                .await;
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
        self.record(
            id,
            Outcome {
                status,
                error,
                artifacts: names,
            },
        )
        .await;
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
        // Image → GLB in one go: the mesh service starts on the shape while the texture flow
        // runs (`Orchestrator::generate_and_extract`).
        let (generated, out) = self.orchestrator.generate_and_extract(plan, sink).await?;
        let state = pipeline::seal(&generated.latents, &self.key)?;
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
