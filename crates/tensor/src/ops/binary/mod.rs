//! Element-wise ops of two tensors (with broadcasting) and the DiT's fused adaLN steps.

mod cpu;
mod cuda;

use super::{float_only, same_device};
use crate::{DType, Device, Error, Result, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
}

/// NumPy broadcasting of `a` and `b`; the output dtype is PyTorch's promotion (same dtype →
/// that dtype; two different float dtypes → f32).
fn binary(a: &Tensor, b: &Tensor, op: BinaryOp) -> Result<Tensor> {
    const OP: &str = "binary";
    float_only(OP, a)?;
    float_only(OP, b)?;
    same_device(OP, &[a, b])?;
    let shape = broadcast_shape(a.shape(), b.shape()).ok_or_else(|| {
        Error::shape(
            OP,
            format!("{:?} and {:?} do not broadcast", a.shape(), b.shape()),
        )
    })?;
    let dtype = if a.dtype() == b.dtype() {
        a.dtype()
    } else {
        DType::F32
    };
    match a.device() {
        Device::Cpu => cpu::binary(a, b, op, &shape, dtype),
        Device::Cuda(d) => cuda::binary(d, a, b, op, &shape, dtype),
    }
}

pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(a, b, BinaryOp::Add)
}
pub fn sub(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(a, b, BinaryOp::Sub)
}
pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(a, b, BinaryOp::Mul)
}

/// The broadcast result shape, or None.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// adaLN modulation, batch 1: `x [..., C]`, `shift`/`scale` with C elements →
/// `x·(1 + scale) + shift`, rounding to x's dtype after each of the three PyTorch ops
/// (`1 + scale`, the product, the sum), as the reference does on bf16 tensors.
pub fn modulate(x: &Tensor, shift: &Tensor, scale: &Tensor) -> Result<Tensor> {
    const OP: &str = "modulate";
    check_row_params(OP, x, &[shift, scale])?;
    match x.device() {
        Device::Cpu => cpu::modulate(x, shift, scale),
        Device::Cuda(d) => cuda::modulate(d, x, shift, scale),
    }
}

/// Gated residual, batch 1: `x + h·gate` with `gate` of C elements, rounding to x's dtype after
/// the product and after the sum.
pub fn gated_residual(x: &Tensor, h: &Tensor, gate: &Tensor) -> Result<Tensor> {
    const OP: &str = "gated_residual";
    check_row_params(OP, x, &[gate])?;
    float_only(OP, h)?;
    same_device(OP, &[x, h])?;
    if h.shape() != x.shape() || h.dtype() != x.dtype() {
        return Err(Error::shape(
            OP,
            format!(
                "x {:?} {:?}, h {:?} {:?}",
                x.shape(),
                x.dtype(),
                h.shape(),
                h.dtype()
            ),
        ));
    }
    match x.device() {
        Device::Cpu => cpu::gated_residual(x, h, gate),
        Device::Cuda(d) => cuda::gated_residual(d, x, h, gate),
    }
}

fn check_row_params(op: &'static str, x: &Tensor, params: &[&Tensor]) -> Result<()> {
    float_only(op, x)?;
    if x.rank() == 0 {
        return Err(Error::shape(op, "x is a scalar (want [..., C])"));
    }
    for p in params {
        float_only(op, p)?;
        same_device(op, &[x, p])?;
        if p.numel() != x.dim(-1) || p.dtype() != x.dtype() {
            return Err(Error::shape(
                op,
                format!(
                    "param {:?} {:?} for x {:?} {:?}",
                    p.shape(),
                    p.dtype(),
                    x.shape(),
                    x.dtype()
                ),
            ));
        }
    }
    Ok(())
}
