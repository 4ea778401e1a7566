//! The one error type of this crate.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BiRefNetError {
    #[error(
        "no ONNX Runtime library: set ORT_DYLIB_PATH to libonnxruntime.so (run \
         `eval \"$(scripts/setup-onnxruntime.sh)\"`) or pass its path explicitly"
    )]
    RuntimeNotConfigured,
    #[error("cannot load ONNX Runtime from {path}: {detail}")]
    RuntimeLoad { path: PathBuf, detail: String },
    #[error("RMBG model file {path} does not exist (expected the RMBG-2.0 / BiRefNet ONNX export)")]
    ModelMissing { path: PathBuf },
    #[error("RMBG model file {path} is not a loadable ONNX model: {detail}")]
    ModelInvalid { path: PathBuf, detail: String },
    #[error(
        "RMBG model file {path} has the wrong signature: {detail} (expected one float32 input \
         [1|N, 3, 1024, 1024] and at least one output, the last being float32 mask logits \
         [1|N, 1, 1024, 1024])"
    )]
    Signature { path: PathBuf, detail: String },
    #[error("the CUDA execution provider was required but could not be registered: {detail}")]
    CudaUnavailable { detail: String },
    #[error("background removal inference failed: {detail}")]
    Inference { detail: String },
    #[error("input image is empty ({width}x{height})")]
    EmptyImage { width: u32, height: u32 },
}
