//! The crate's error type. Every variant says what was being done; tensor-runtime errors keep
//! their op, shapes and weight keys.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A runtime op or weight-loading failure (names the op / key / shapes).
    #[error(transparent)]
    Tensor(#[from] t2_tensor::Error),
    /// A config file that is missing a field, has a wrong value or cannot be parsed.
    #[error("config {path}: {msg}")]
    Config { path: String, msg: String },
    #[error("io error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A model variant or option the reference has but this port does not implement.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Caller input that does not fit the model (shapes, sizes, empty structures).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Mesh extraction from the decoded flexible dual grid failed.
    #[error(transparent)]
    Mesh(#[from] t2_mesh::MeshError),
    /// Image preprocessing (crop / premultiply) refused the input.
    #[error(transparent)]
    Image(#[from] t2_imageops::ImageError),
    /// A stage needs a model this pipeline instance did not load.
    #[error("model `{0}` is not loaded (not listed in pipeline.json, or not requested)")]
    NotLoaded(String),
    /// The caller's cancellation check asked to stop between sampler steps.
    #[error("cancelled")]
    Cancelled,
}

pub type Result<T> = std::result::Result<T, ModelError>;

impl ModelError {
    pub fn config(path: &Path, msg: impl Into<String>) -> Self {
        ModelError::Config {
            path: path.display().to_string(),
            msg: msg.into(),
        }
    }
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.display().to_string(),
            source,
        }
    }
    pub fn invalid(msg: impl Into<String>) -> Self {
        ModelError::InvalidInput(msg.into())
    }
    /// True when the device ran out of memory (the request should be failed, the server kept).
    pub fn is_oom(&self) -> bool {
        matches!(self, ModelError::Tensor(e) if e.is_oom())
    }
}
