//! Asynchronous jobs: records in a [`JobStore`] (SQLite by default), artifacts in an
//! [`ArtifactStore`] (a local directory by default, any `object_store` backend in production),
//! and the runner that executes them one at a time per GPU.

pub mod artifacts;
pub mod runner;
pub mod store;

pub use artifacts::{ArtifactError, ArtifactStore};
pub use store::{JobError, JobRecord, JobStatus, JobStore, SqliteJobStore, StoreError};
