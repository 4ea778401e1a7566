//! The process-wide ONNX Runtime environment and execution-provider selection.
//!
//! `ort` is built with `load-dynamic`: `libonnxruntime.so` is opened at run time (from
//! `ORT_DYLIB_PATH` or an explicit path), and ONNX Runtime allows one environment per
//! process, so the first successful load fixes the library for the process.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

use crate::error::BiRefNetError;

/// Which execution provider to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Provider {
    /// CUDA when the library has it and a GPU is usable, otherwise CPU.
    #[default]
    Auto,
    /// CPU only.
    Cpu,
    /// CUDA or an error.
    Cuda,
}

/// The execution provider a session actually runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveProvider {
    Cpu,
    Cuda,
}

impl ActiveProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            ActiveProvider::Cpu => "CPUExecutionProvider",
            ActiveProvider::Cuda => "CUDAExecutionProvider",
        }
    }
}

/// The library path: the explicit one, else `ORT_DYLIB_PATH`.
pub fn resolve_dylib(explicit: Option<&Path>) -> Result<PathBuf, BiRefNetError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => Err(BiRefNetError::RuntimeNotConfigured),
    }
}

static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// The shared environment, loading ONNX Runtime from `dylib` on first use.
pub(crate) fn environment(dylib: &Path) -> Result<Environment, BiRefNetError> {
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env.clone());
    }
    let _guard = INIT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env.clone());
    }
    if !dylib.is_file() {
        return Err(BiRefNetError::RuntimeLoad {
            path: dylib.to_path_buf(),
            detail: "no such file (run scripts/setup-onnxruntime.sh)".into(),
        });
    }
    let load_err = |e: &dyn std::fmt::Display| BiRefNetError::RuntimeLoad {
        path: dylib.to_path_buf(),
        detail: e.to_string(),
    };
    let env = ort::init_from(dylib)
        .map_err(|e| load_err(&e))?
        .with_name("t2-birefnet")
        .build()
        .map_err(|e| load_err(&e))?;
    tracing::info!(library = %dylib.display(), "ONNX Runtime loaded");
    Ok(ENVIRONMENT.get_or_init(|| env).clone())
}
