//! The public HTTP gateway of the trellis2 mesh (product.md §2): axum on tower, validation,
//! auth, jobs, artifacts, metrics, OpenAPI, and orchestration over [`Backends`] (in-process
//! service implementations or gRPC clients).

pub mod api;
pub mod auth;
pub mod backends;
pub mod body;
pub mod error;
pub mod image_check;
pub mod jobs;
pub mod metrics;
pub mod middleware;
pub mod pipeline;
pub mod replicas;
pub mod types;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use backends::{Backends, InProcessOptions, ReplicaCounts, UpstreamUrls};
pub use pipeline::{Orchestrator, ServiceLimit, StageDeadlines};

use crate::jobs::runner::JobRunner;
use crate::jobs::{ArtifactStore, JobStore, SqliteJobStore};

/// File names under the data directory.
pub const JOBS_DB: &str = "jobs.sqlite3";
pub const ARTIFACTS_DIR: &str = "artifacts";
pub const STATE_KEY_FILE: &str = "state.key";
/// Why unfinished jobs are failed at startup.
pub const RESTART_REASON: &str = "the gateway restarted while this job was queued or running";

/// A synchronous call longer than this is answered 504 `timeout` (and its upstream calls are
/// cancelled): a 1536 cascade with preview video on a busy H200 stays well under it.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Synchronous generations/extractions in flight before new ones get 429 `overloaded`: the
/// services serialise GPU work, so more waiting callers only add latency.
pub const DEFAULT_MAX_INFLIGHT: usize = 4;
/// Jobs waiting for a worker before new ones get 429 `overloaded`.
pub const DEFAULT_MAX_QUEUED_JOBS: usize = 64;

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Tokens, job database, artifacts and the state key live here.
    pub data_dir: PathBuf,
    /// Jobs executed at once (one per GPU).
    pub job_concurrency: usize,
    pub request_timeout: Duration,
    pub max_inflight: usize,
    pub max_queued_jobs: usize,
    /// Longest each pipeline stage may take (jobs have no overall timeout).
    pub stage_deadlines: StageDeadlines,
    /// Calls this gateway keeps open to each upstream service.
    pub service_limit: ServiceLimit,
}

impl GatewayConfig {
    /// The defaults above, with data under `data_dir`.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            job_concurrency: 1,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_inflight: DEFAULT_MAX_INFLIGHT,
            max_queued_jobs: DEFAULT_MAX_QUEUED_JOBS,
            stage_deadlines: StageDeadlines::default(),
            service_limit: ServiceLimit::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Jobs(#[from] jobs::StoreError),
    #[error(transparent)]
    Artifacts(#[from] jobs::ArtifactError),
    #[error(transparent)]
    StateKey(#[from] t2_state::KeyError),
    #[error("data directory {0}: {1}")]
    DataDir(String, std::io::Error),
}

/// Everything the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub backends: Backends,
    /// The pipeline's stages over `backends`, with gates and deadlines.
    pub orchestrator: Arc<Orchestrator>,
    pub tokens: auth::TokenStore,
    pub state_key: t2_state::StateKey,
    pub job_store: Arc<dyn JobStore>,
    pub artifacts: ArtifactStore,
    pub jobs: Arc<JobRunner>,
    pub metrics: Arc<metrics::Metrics>,
    pub request_timeout: Duration,
    /// Permits for synchronous generations/extractions in flight.
    pub inflight: Arc<tokio::sync::Semaphore>,
    pub max_queued_jobs: usize,
}

impl AppState {
    /// Opens the data directory (creating what is missing) and fails the jobs a previous
    /// process left unfinished.
    pub async fn open(config: &GatewayConfig, backends: Backends) -> Result<Self, GatewayError> {
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir)
            .map_err(|e| GatewayError::DataDir(dir.display().to_string(), e))?;
        let key = t2_state::StateKey::load_or_create(&dir.join(STATE_KEY_FILE))?;
        let job_store: Arc<dyn JobStore> = Arc::new(SqliteJobStore::open(&dir.join(JOBS_DB))?);
        let failed = job_store.fail_unfinished(RESTART_REASON).await?;
        if failed > 0 {
            tracing::warn!(failed, "marked jobs of the previous process as failed");
        }
        let artifacts = ArtifactStore::local(&dir.join(ARTIFACTS_DIR))?;
        let metrics = Arc::new(metrics::Metrics::new());
        let orchestrator = Arc::new(Orchestrator::new(
            backends.clone(),
            config.stage_deadlines,
            config.service_limit,
            metrics.clone(),
        ));
        let jobs = Arc::new(JobRunner::new(
            job_store.clone(),
            artifacts.clone(),
            orchestrator.clone(),
            key.clone(),
            metrics.clone(),
            config.job_concurrency,
        ));
        Ok(Self {
            backends,
            orchestrator,
            tokens: auth::TokenStore::new(dir),
            state_key: key,
            job_store,
            artifacts,
            jobs,
            metrics,
            request_timeout: config.request_timeout,
            inflight: Arc::new(tokio::sync::Semaphore::new(config.max_inflight.max(1))),
            max_queued_jobs: config.max_queued_jobs,
        })
    }
}

/// The routes and their OpenAPI document, from the same declarations.
pub fn routes(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let public = OpenApiRouter::new()
        .routes(routes!(api::system::health))
        .routes(routes!(api::system::ready))
        .routes(routes!(api::system::metrics));
    let protected = OpenApiRouter::new()
        .routes(routes!(api::system::status))
        .routes(routes!(api::system::openapi))
        .routes(routes!(api::generate::generate))
        .routes(routes!(api::generate::extract_glb))
        .routes(routes!(api::generate::remove_background))
        .routes(routes!(api::jobs::create_job))
        .routes(routes!(api::jobs::get_job, api::jobs::cancel_job))
        .routes(routes!(api::jobs::get_artifact))
        .route_layer(axum::middleware::from_fn_with_state(
            state.tokens.clone(),
            auth::require_auth,
        ));
    OpenApiRouter::with_openapi(api::ApiDoc::openapi())
        .merge(public)
        .merge(protected)
        .split_for_parts()
}

/// The complete application.
pub fn app(state: AppState) -> Router {
    let (router, doc) = routes(&state);
    let metrics = state.metrics.clone();
    router
        .route_layer(axum::middleware::from_fn(middleware::label_route))
        .layer(axum::Extension(Arc::new(doc)))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            middleware::observe,
        ))
}
