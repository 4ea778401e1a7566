//! The ops the TRELLIS.2 networks need. Each op group is a folder: `mod.rs` validates shapes and
//! dtypes and dispatches on the device; `cpu.rs` is the reference implementation; `cuda.rs`
//! launches the kernel in the `.cu` file beside it, following the CPU formula.
//!
//! Precision contract (shared by both backends): inputs may be f32, f16 or bf16; every op
//! computes in f32 (f32 accumulation in reductions and GEMMs) and rounds its output once to the
//! output dtype, which is the input's dtype unless stated. Composite ops that the reference runs
//! as several PyTorch ops (e.g. `modulate`) round after each step, as PyTorch does.
//!
//! The pipeline runs batch 1 (the reference cannot run more), which several ops rely on.

pub mod attention;
pub mod binary;
pub mod conv;
pub mod layout;
pub mod linear;
pub mod norm;
pub mod rope;
pub mod unary;

pub use attention::attention;
pub use binary::{add, gated_residual, modulate, mul, sub};
pub use conv::{conv3d, max_pool3d_2, patch_embed2d, pixel_shuffle_3d};
pub use layout::{cat, index_rows, narrow, permute, repeat_interleave, to_dtype};
pub use linear::linear;
pub use norm::{layer_norm, rms_norm_heads};
pub use rope::{rope_half_split, rope_interleaved};
pub use unary::{Unary, affine, unary};

use crate::{Error, Result, Tensor};

/// Fails unless every tensor is on the same device as the first.
pub(crate) fn same_device(op: &'static str, ts: &[&Tensor]) -> Result<()> {
    let d0 = ts[0].device();
    for t in &ts[1..] {
        if !t.device().same(d0) {
            return Err(Error::DeviceMismatch {
                op,
                a: d0.name(),
                b: t.device().name(),
            });
        }
    }
    Ok(())
}

/// Fails unless the tensor has a float dtype.
pub(crate) fn float_only(op: &'static str, t: &Tensor) -> Result<()> {
    if t.dtype().is_float() {
        Ok(())
    } else {
        Err(Error::DType {
            op,
            dtype: t.dtype(),
        })
    }
}

/// Placeholder result for an op whose backend implementation is still being written (unused
/// while every op has both backends; kept for the next op group's `cuda.rs`).
#[allow(dead_code)]
pub(crate) fn pending(op: &'static str, device: &crate::Device) -> Error {
    Error::Unsupported {
        op,
        device: device.name(),
        msg: "implementation pending".into(),
    }
}
