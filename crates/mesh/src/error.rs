//! The crate's error type: every bad input becomes one of these, never a panic.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum MeshError {
    /// Two inputs that must describe the same elements disagree in length.
    #[error("{what}: expected {expected} entries, got {got}")]
    LengthMismatch {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// A face refers to a vertex that does not exist.
    #[error("face {face} refers to vertex {index}, but there are only {vertices} vertices")]
    FaceIndexOutOfRange {
        face: usize,
        index: u32,
        vertices: usize,
    },
    /// A parameter is outside its valid range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter { name: &'static str, reason: String },
    /// The input has no geometry where some is required.
    #[error("empty input: {0}")]
    Empty(&'static str),
    /// A value that must be finite is NaN or infinite.
    #[error("non-finite value in {0}")]
    NonFinite(&'static str),
    /// More elements than the 32-bit indices used throughout can address.
    #[error("{what}: {count} elements exceed the 32-bit index range")]
    TooLarge { what: &'static str, count: usize },
    /// UV unwrapping failed.
    #[error("uv unwrap failed: {0}")]
    Unwrap(String),
    /// Image encoding failed.
    #[error("texture encoding failed: {0}")]
    Encode(String),
    /// glTF serialisation failed.
    #[error("glTF serialisation failed: {0}")]
    Gltf(String),
    /// A CUDA step failed (device lost, out of memory, kernel fault or compile error).
    #[error("CUDA mesh step {step} failed: {msg}")]
    Gpu { step: &'static str, msg: String },
    /// A CUDA step ran out of device memory (the device stays usable; callers map this to
    /// their out-of-memory status rather than a generic failure).
    #[error("CUDA mesh step {step} ran out of device memory: {msg}")]
    GpuOutOfMemory { step: &'static str, msg: String },
}

/// Checks that every face index is in range.
pub(crate) fn check_faces(faces: &[[u32; 3]], vertices: usize) -> Result<(), MeshError> {
    for (face, f) in faces.iter().enumerate() {
        for &index in f {
            if index as usize >= vertices {
                return Err(MeshError::FaceIndexOutOfRange {
                    face,
                    index,
                    vertices,
                });
            }
        }
    }
    Ok(())
}

/// Checks that every coordinate is finite.
pub(crate) fn check_finite(points: &[[f32; 3]], what: &'static str) -> Result<(), MeshError> {
    if points.iter().flatten().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(MeshError::NonFinite(what))
    }
}

/// Checks that a count fits the u32 indices.
pub(crate) fn check_u32(count: usize, what: &'static str) -> Result<(), MeshError> {
    if count > u32::MAX as usize - 1 {
        Err(MeshError::TooLarge { what, count })
    } else {
        Ok(())
    }
}
