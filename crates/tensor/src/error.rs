//! The runtime's error type: every failure names the op and the shapes/dtypes involved.

use crate::DType;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op}: shape mismatch: {msg}")]
    Shape { op: &'static str, msg: String },
    #[error("{op}: unsupported dtype {dtype:?}")]
    DType { op: &'static str, dtype: DType },
    #[error("{op}: tensors are on different devices ({a} vs {b})")]
    DeviceMismatch {
        op: &'static str,
        a: String,
        b: String,
    },
    #[error("{op}: not supported on {device}: {msg}")]
    Unsupported {
        op: &'static str,
        device: String,
        msg: String,
    },
    #[error("CUDA is unavailable: {0}")]
    CudaUnavailable(String),
    #[error("CUDA error in {op}: {msg}")]
    Cuda { op: &'static str, msg: String },
    /// A device allocation failed: the caller should free what the request holds and report
    /// `cuda_oom`; the device stays usable.
    #[error("out of device memory allocating {bytes} bytes")]
    OutOfMemory { bytes: usize },
    #[error("kernel compilation failed for {kernel}: {log}")]
    KernelCompile { kernel: String, log: String },
    #[error("weights {file}: {msg}")]
    Weights { file: String, msg: String },
    #[error("weights {file}: missing key `{key}`")]
    MissingKey { file: String, key: String },
    #[error("weights {file}: key `{key}` has shape {actual:?}, expected {expected:?}")]
    KeyShape {
        file: String,
        key: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("weights {file}: unexpected keys not used by the model: {keys:?}")]
    UnusedKeys { file: String, keys: Vec<String> },
    #[error("io error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn shape(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Shape {
            op,
            msg: msg.into(),
        }
    }
    pub fn is_oom(&self) -> bool {
        matches!(self, Error::OutOfMemory { .. })
    }
}
