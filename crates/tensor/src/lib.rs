//! The compute core of trellis2: contiguous tensors in f32/f16/bf16 (and integer index types)
//! on a CPU or CUDA device, the ops the TRELLIS.2 networks need, sparse voxel machinery, and
//! safetensors loading with exact key/shape checks.
//!
//! Layout rules that every op relies on:
//! - A tensor is always contiguous, row-major; ops return new tensors (no strided views).
//!   `reshape` is free, `permute`/`narrow` copy.
//! - Float ops compute in f32 and round their result once to the output dtype. Chaining ops
//!   therefore rounds after every op, which is exactly what PyTorch does for bf16/f16 tensors:
//!   this is how the reference's mixed-precision policy is reproduced (see `ops` docs).
//! - The CPU backend is the numerical reference; each CUDA kernel follows its CPU twin's formula.
//! - Unsupported dtype/device combinations are a typed `Error`, never a panic.

pub mod cpu;
pub mod cuda;
pub mod device;
pub mod dtype;
pub mod error;
pub mod ops;
pub mod safetensors_io;
pub mod sparse;
pub mod storage;
pub mod tensor;
pub mod testing;
pub mod urgency;

pub use device::Device;
pub use dtype::{DType, Element};
pub use error::{Error, Result};
pub use half::{bf16, f16};
pub use safetensors_io::Weights;
pub use tensor::Tensor;
