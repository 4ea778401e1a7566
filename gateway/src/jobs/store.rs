//! Job records behind [`JobStore`]; [`SqliteJobStore`] is the embedded default. The trait speaks
//! in whole records and guarded transitions so a Postgres implementation is a drop-in.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// Why a job failed, in the public error vocabulary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobError {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub id: String,
    /// The token name that created the job; only it may see the job.
    pub owner: String,
    pub status: JobStatus,
    pub created_at: u64,
    pub updated_at: u64,
    pub stage: Option<String>,
    pub step: u32,
    pub total: u32,
    pub error: Option<JobError>,
    pub artifacts: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("job database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error(
        "job database {0} is read-only: the gateway needs to write its data directory (check its permissions and that its filesystem is mounted read-write)"
    )]
    ReadOnly(String),
    #[error("job database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("job database: {0}")]
    Io(#[from] std::io::Error),
    #[error("job database holds an unknown status {0:?}")]
    Corrupt(String),
}

/// Persistence of job records.
#[async_trait::async_trait]
pub trait JobStore: Send + Sync + 'static {
    async fn create(&self, id: &str, owner: &str) -> Result<JobRecord, StoreError>;
    async fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError>;
    /// Moves a job that is not finished yet to `status`; returns false if it had finished
    /// (so a cancelled job is never revived by a runner that lost the race).
    async fn transition(
        &self,
        id: &str,
        status: JobStatus,
        error: Option<JobError>,
        artifacts: &[String],
    ) -> Result<bool, StoreError>;
    async fn set_progress(
        &self,
        id: &str,
        stage: &str,
        step: u32,
        total: u32,
    ) -> Result<(), StoreError>;
    /// Marks every unfinished job failed with `reason` (called at startup: their runner died
    /// with the previous process). Returns how many were marked.
    async fn fail_unfinished(&self, reason: &str) -> Result<usize, StoreError>;
    async fn count(&self, status: JobStatus) -> Result<u64, StoreError>;
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// SQLite-backed job records (WAL mode). Calls are short single-row statements, so they run on
/// the async worker under a mutex rather than hopping to a blocking thread.
pub struct SqliteJobStore {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id          TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    stage       TEXT,
    step        INTEGER NOT NULL DEFAULT 0,
    total       INTEGER NOT NULL DEFAULT 0,
    error_code  TEXT,
    error_msg   TEXT,
    artifacts   TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
";

impl SqliteJobStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let shown = || path.display().to_string();
        let at = |source| StoreError::Open {
            path: shown(),
            source,
        };
        let conn = Connection::open(path).map_err(at)?;
        // SQLite silently falls back to read-only when it cannot write the file; every write
        // would then fail later with a message that names no file. Refuse at once instead.
        if conn.is_readonly(rusqlite::MAIN_DB).map_err(at)? {
            return Err(StoreError::ReadOnly(shown()));
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(at)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(at)?;
        conn.execute_batch(SCHEMA).map_err(at)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent: recover the guard.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<(JobRecord, String)> {
    let status: String = row.get("status")?;
    let code: Option<String> = row.get("error_code")?;
    let msg: Option<String> = row.get("error_msg")?;
    let artifacts: String = row.get("artifacts")?;
    Ok((
        JobRecord {
            id: row.get("id")?,
            owner: row.get("owner")?,
            status: JobStatus::Queued,
            created_at: row.get::<_, i64>("created_at")? as u64,
            updated_at: row.get::<_, i64>("updated_at")? as u64,
            stage: row.get("stage")?,
            step: row.get("step")?,
            total: row.get("total")?,
            error: code.map(|code| JobError {
                code,
                message: msg.unwrap_or_default(),
            }),
            artifacts: serde_json::from_str(&artifacts).unwrap_or_default(),
        },
        status,
    ))
}

#[async_trait::async_trait]
impl JobStore for SqliteJobStore {
    async fn create(&self, id: &str, owner: &str) -> Result<JobRecord, StoreError> {
        let t = now();
        self.conn().execute(
            "INSERT INTO jobs (id, owner, status, created_at, updated_at) VALUES (?1, ?2, 'queued', ?3, ?3)",
            params![id, owner, t as i64],
        )?;
        Ok(JobRecord {
            id: id.into(),
            owner: owner.into(),
            status: JobStatus::Queued,
            created_at: t,
            updated_at: t,
            stage: None,
            step: 0,
            total: 0,
            error: None,
            artifacts: vec![],
        })
    }

    async fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let found = self
            .conn()
            .query_row(
                "SELECT * FROM jobs WHERE id = ?1",
                params![id],
                row_to_record,
            )
            .optional()?;
        match found {
            None => Ok(None),
            Some((mut rec, status)) => {
                rec.status = JobStatus::parse(&status).ok_or(StoreError::Corrupt(status))?;
                Ok(Some(rec))
            }
        }
    }

    async fn transition(
        &self,
        id: &str,
        status: JobStatus,
        error: Option<JobError>,
        artifacts: &[String],
    ) -> Result<bool, StoreError> {
        let (code, msg) = error.map(|e| (e.code, e.message)).unzip();
        let n = self.conn().execute(
            "UPDATE jobs SET status = ?2, error_code = ?3, error_msg = ?4, artifacts = ?5, updated_at = ?6
             WHERE id = ?1 AND status IN ('queued', 'running')",
            params![
                id,
                status.as_str(),
                code,
                msg,
                serde_json::to_string(artifacts).expect("names serialise"),
                now() as i64
            ],
        )?;
        Ok(n == 1)
    }

    async fn set_progress(
        &self,
        id: &str,
        stage: &str,
        step: u32,
        total: u32,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE jobs SET stage = ?2, step = ?3, total = ?4, updated_at = ?5
             WHERE id = ?1 AND status = 'running'",
            params![id, stage, step, total, now() as i64],
        )?;
        Ok(())
    }

    async fn fail_unfinished(&self, reason: &str) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "UPDATE jobs SET status = 'failed', error_code = 'unavailable', error_msg = ?1, updated_at = ?2
             WHERE status IN ('queued', 'running')",
            params![reason, now() as i64],
        )?)
    }

    async fn count(&self, status: JobStatus) -> Result<u64, StoreError> {
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM jobs WHERE status = ?1",
            params![status.as_str()],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_survive_reopening_and_unfinished_jobs_fail_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.sqlite3");
        {
            let s = SqliteJobStore::open(&path).unwrap();
            s.create("a", "alice").await.unwrap();
            s.create("b", "alice").await.unwrap();
            s.create("c", "bob").await.unwrap();
            assert!(
                s.transition("a", JobStatus::Running, None, &[])
                    .await
                    .unwrap()
            );
            s.set_progress("a", "shape_slat", 3, 12).await.unwrap();
            let done = vec!["model.glb".to_string()];
            assert!(
                s.transition("c", JobStatus::Succeeded, None, &done)
                    .await
                    .unwrap()
            );
            // A finished job cannot be moved again.
            assert!(
                !s.transition("c", JobStatus::Cancelled, None, &[])
                    .await
                    .unwrap()
            );
        }
        let s = SqliteJobStore::open(&path).unwrap();
        assert_eq!(s.fail_unfinished("gateway restarted").await.unwrap(), 2);
        let a = s.get("a").await.unwrap().unwrap();
        assert_eq!(a.status, JobStatus::Failed);
        assert_eq!(a.stage.as_deref(), Some("shape_slat"));
        assert_eq!((a.step, a.total), (3, 12));
        assert_eq!(a.error.unwrap().message, "gateway restarted");
        let c = s.get("c").await.unwrap().unwrap();
        assert_eq!(c.status, JobStatus::Succeeded);
        assert_eq!(c.artifacts, vec!["model.glb"]);
        assert_eq!(c.owner, "bob");
        assert!(s.get("zzz").await.unwrap().is_none());
        assert_eq!(s.count(JobStatus::Failed).await.unwrap(), 2);
    }
}
