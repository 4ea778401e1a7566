//! Job artifacts behind the `object_store` abstraction: a local directory by default, and S3,
//! GCS or Azure by swapping the `ObjectStore` (the layout is `jobs/<job id>/<name>`).

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error(
        "invalid artifact name {0:?}: use 1-64 characters of A-Z a-z 0-9 . _ - not starting with a dot"
    )]
    BadName(String),
    #[error("invalid job id {0:?}")]
    BadJobId(String),
    #[error("artifact not found")]
    NotFound,
    #[error("artifact store: {0}")]
    Store(#[from] object_store::Error),
    #[error("artifact store: {0}")]
    Io(#[from] std::io::Error),
}

/// Names are single path segments from a small alphabet: no separators, no `..`, no hidden
/// files, so no name can escape its job's directory.
pub fn valid_artifact_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn valid_job_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// Where job artifacts live.
#[derive(Clone)]
pub struct ArtifactStore {
    store: Arc<dyn ObjectStore>,
}

/// An artifact being read back.
pub struct ArtifactRead {
    pub size: u64,
    pub stream: BoxStream<'static, Result<Bytes, ArtifactError>>,
}

impl ArtifactStore {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// A store rooted at `dir` (created if missing).
    pub fn local(dir: &Path) -> Result<Self, ArtifactError> {
        std::fs::create_dir_all(dir)?;
        Ok(Self::new(Arc::new(LocalFileSystem::new_with_prefix(dir)?)))
    }

    fn path(job: &str, name: &str) -> Result<ObjectPath, ArtifactError> {
        if !valid_job_id(job) {
            return Err(ArtifactError::BadJobId(job.to_string()));
        }
        if !valid_artifact_name(name) {
            return Err(ArtifactError::BadName(name.to_string()));
        }
        Ok(ObjectPath::from_iter(["jobs", job, name]))
    }

    pub async fn put(&self, job: &str, name: &str, data: Bytes) -> Result<(), ArtifactError> {
        let path = Self::path(job, name)?;
        self.store.put(&path, PutPayload::from_bytes(data)).await?;
        Ok(())
    }

    /// Streams an artifact back without loading it whole.
    pub async fn get(&self, job: &str, name: &str) -> Result<ArtifactRead, ArtifactError> {
        let path = Self::path(job, name)?;
        let result = self.store.get(&path).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => ArtifactError::NotFound,
            e => ArtifactError::Store(e),
        })?;
        let size = result.meta.size;
        let stream = result
            .into_stream()
            .map(|r| r.map_err(ArtifactError::from))
            .boxed();
        Ok(ArtifactRead { size, stream })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    #[tokio::test]
    async fn round_trips_bytes_and_refuses_escaping_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::local(dir.path()).unwrap();
        let data: Bytes = (0..3_000_000u32).map(|i| (i * 7) as u8).collect();
        store.put("0a1b", "model.glb", data.clone()).await.unwrap();
        let read = store.get("0a1b", "model.glb").await.unwrap();
        assert_eq!(read.size, data.len() as u64);
        let chunks: Vec<Bytes> = read.stream.try_collect().await.unwrap();
        assert_eq!(chunks.concat(), data.to_vec());
        assert!(dir.path().join("jobs/0a1b/model.glb").exists());

        assert!(matches!(
            store.get("0a1b", "other.glb").await,
            Err(ArtifactError::NotFound)
        ));
        for bad in [
            "../x", "..", ".hidden", "a/b", "a\\b", "", "x%2f..", "é.glb",
        ] {
            assert!(
                matches!(
                    store.put("0a1b", bad, Bytes::new()).await,
                    Err(ArtifactError::BadName(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            store.get("../etc", "passwd").await,
            Err(ArtifactError::BadJobId(_))
        ));
    }
}
