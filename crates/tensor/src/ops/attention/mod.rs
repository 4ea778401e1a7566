//! Softmax attention, fused on the GPU (online softmax, no N×L buffer).

mod cpu;
mod cuda;

use super::{float_only, same_device};
use crate::{Device, Error, Result, Tensor};

/// `q [B, Nq, H, D]`, `k [B, Nk, H, D]`, `v [B, Nk, H, Dv]` → `[B, Nq, H, Dv]` in q's dtype:
/// `softmax(q·kᵀ·scale)·v` per batch item and head, no mask, f32 scores and accumulation.
/// All three must share a dtype. A sparse sequence (batch 1) is `B = 1`; self- and
/// cross-attention are the same call.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f32) -> Result<Tensor> {
    const OP: &str = "attention";
    for t in [q, k, v] {
        float_only(OP, t)?;
        if t.rank() != 4 || t.dtype() != q.dtype() {
            return Err(Error::shape(
                OP,
                format!(
                    "q {:?} k {:?} v {:?} (want [B, N, H, D], one dtype)",
                    q.shape(),
                    k.shape(),
                    v.shape()
                ),
            ));
        }
    }
    same_device(OP, &[q, k, v])?;
    let (b, h, d) = (q.dim(0), q.dim(2), q.dim(3));
    if k.dim(0) != b
        || v.dim(0) != b
        || k.dim(2) != h
        || v.dim(2) != h
        || k.dim(3) != d
        || k.dim(1) != v.dim(1)
    {
        return Err(Error::shape(
            OP,
            format!("q {:?} k {:?} v {:?}", q.shape(), k.shape(), v.shape()),
        ));
    }
    match q.device() {
        Device::Cpu => cpu::attention(q, k, v, scale),
        Device::Cuda(dev) => cuda::attention(dev, q, k, v, scale),
    }
}
