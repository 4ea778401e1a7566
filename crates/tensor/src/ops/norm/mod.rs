//! Normalisations, computed in f32 and rounded once to the input dtype.

mod cpu;
mod cuda;

use super::{float_only, same_device};
use crate::{Device, Error, Result, Tensor};

/// LayerNorm over the last dim: `(x - mean) / sqrt(var + eps) * w + b` with the population
/// variance, all in f32 (the reference's LayerNorm32 / `F.layer_norm` on `x.float()`), the affine
/// part optional (`w`, `b` of shape `[C]`, any float dtype).
pub fn layer_norm(x: &Tensor, w: Option<&Tensor>, b: Option<&Tensor>, eps: f32) -> Result<Tensor> {
    const OP: &str = "layer_norm";
    float_only(OP, x)?;
    if x.rank() == 0 {
        return Err(Error::shape(OP, "x is a scalar (want [..., C])"));
    }
    let c = x.dim(-1);
    for p in [w, b].into_iter().flatten() {
        float_only(OP, p)?;
        same_device(OP, &[x, p])?;
        if p.shape() != [c] {
            return Err(Error::shape(
                OP,
                format!("param {:?} for x {:?}", p.shape(), x.shape()),
            ));
        }
    }
    match x.device() {
        Device::Cpu => cpu::layer_norm(x, w, b, eps),
        Device::Cuda(d) => cuda::layer_norm(d, x, w, b, eps),
    }
}

/// The reference's multi-head RMS norm: `x [..., H, D]`, `gamma [H, D]` →
/// `(x / max(‖x‖₂, 1e-12)) * gamma * sqrt(D)` per head vector, in f32 (it is `F.normalize` based,
/// not `rsqrt(mean(x²) + eps)`).
pub fn rms_norm_heads(x: &Tensor, gamma: &Tensor) -> Result<Tensor> {
    const OP: &str = "rms_norm_heads";
    float_only(OP, x)?;
    float_only(OP, gamma)?;
    same_device(OP, &[x, gamma])?;
    if x.rank() < 2 || gamma.shape() != [x.dim(-2), x.dim(-1)] {
        return Err(Error::shape(
            OP,
            format!("x {:?} with gamma {:?}", x.shape(), gamma.shape()),
        ));
    }
    match x.device() {
        Device::Cpu => cpu::rms_norm_heads(x, gamma),
        Device::Cuda(d) => cuda::rms_norm_heads(d, x, gamma),
    }
}
