//! Linear layers: `y = x @ w^T + b`, f32 accumulation (cuBLASLt on CUDA).

mod cpu;
mod cuda;

use super::{float_only, same_device};
use crate::{Device, Error, Result, Tensor};

/// `x [..., K]`, `w [M, K]`, `b [M]` → `[..., M]` in x's dtype. The weight and bias may have
/// another float dtype than x (e.g. bf16-valued weights in an fp32 layer): their values are used
/// exactly, products are accumulated in f32, the bias is added in f32, and the sum is rounded once.
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    const OP: &str = "linear";
    float_only(OP, x)?;
    float_only(OP, w)?;
    if x.rank() == 0 || w.rank() != 2 || w.dim(1) != x.dim(-1) {
        return Err(Error::shape(
            OP,
            format!("x {:?} with w {:?}", x.shape(), w.shape()),
        ));
    }
    if let Some(b) = b {
        float_only(OP, b)?;
        same_device(OP, &[x, w, b])?;
        if b.shape() != [w.dim(0)] {
            return Err(Error::shape(
                OP,
                format!("bias {:?} for w {:?}", b.shape(), w.shape()),
            ));
        }
    } else {
        same_device(OP, &[x, w])?;
    }
    match x.device() {
        Device::Cpu => cpu::linear(x, w, b),
        Device::Cuda(d) => cuda::linear(d, x, w, b),
    }
}
