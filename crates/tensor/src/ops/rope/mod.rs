//! Rotary position embeddings, f32 math, rounded once to the input dtype.

mod cpu;
mod cuda;

use super::{float_only, same_device};
use crate::{DType, Device, Error, Result, Tensor};

/// TRELLIS.2's RoPE: interleaved pairs `(x[2i], x[2i+1])` rotated as the complex product
/// `(a + ib)(c + is)` = `(a·c − b·s, a·s + b·c)`.
/// `x [..., N, H, D]`, `cos`/`sin` f32 `[N, D/2]` (one phase per token and pair; identity pairs
/// carry cos 1, sin 0).
pub fn rope_interleaved(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    const OP: &str = "rope_interleaved";
    float_only(OP, x)?;
    same_device(OP, &[x, cos, sin])?;
    if x.rank() < 3 || !x.dim(-1).is_multiple_of(2) {
        return Err(Error::shape(OP, format!("x {:?}", x.shape())));
    }
    let (n, d) = (x.dim(-3), x.dim(-1));
    for t in [cos, sin] {
        if t.dtype() != DType::F32 || t.shape() != [n, d / 2] {
            return Err(Error::shape(
                OP,
                format!(
                    "phase {:?} {:?} for x {:?}",
                    t.shape(),
                    t.dtype(),
                    x.shape()
                ),
            ));
        }
    }
    match x.device() {
        Device::Cpu => cpu::rope_interleaved(x, cos, sin),
        Device::Cuda(dev) => cuda::rope_interleaved(dev, x, cos, sin),
    }
}

/// DINOv3's RoPE (NeoX `rotate_half` convention): `out = x·cos + rotate_half(x)·sin`, where
/// `rotate_half(x) = cat(-x[D/2..], x[..D/2])`. `x [..., N, H, D]`; the first `prefix` tokens are
/// left unrotated (CLS and registers); token `t >= prefix` uses row `t - prefix` of `cos`/`sin`
/// (f32 `[N - prefix, D]`).
pub fn rope_half_split(x: &Tensor, cos: &Tensor, sin: &Tensor, prefix: usize) -> Result<Tensor> {
    const OP: &str = "rope_half_split";
    float_only(OP, x)?;
    same_device(OP, &[x, cos, sin])?;
    if x.rank() < 3 || !x.dim(-1).is_multiple_of(2) || x.dim(-3) < prefix {
        return Err(Error::shape(
            OP,
            format!("x {:?}, prefix {prefix}", x.shape()),
        ));
    }
    let (n, d) = (x.dim(-3), x.dim(-1));
    for t in [cos, sin] {
        if t.dtype() != DType::F32 || t.shape() != [n - prefix, d] {
            return Err(Error::shape(
                OP,
                format!("phase {:?} for x {:?}", t.shape(), x.shape()),
            ));
        }
    }
    match x.device() {
        Device::Cpu => cpu::rope_half_split(x, cos, sin, prefix),
        Device::Cuda(dev) => cuda::rope_half_split(dev, x, cos, sin, prefix),
    }
}
