//! Launchers for unary.cu.

use super::Unary;
use crate::cuda::{CudaDevice, Dims, args, empty, float_suffix, kernels, kname, ptr};
use crate::{Result, Tensor};

/// The function code unary.cu switches on (its `U_*` defines).
fn code(f: Unary) -> i32 {
    match f {
        Unary::Silu => 0,
        Unary::GeluTanh => 1,
        Unary::GeluErf => 2,
        Unary::Sigmoid => 3,
        Unary::Softplus => 4,
    }
}

pub(super) fn unary(d: &CudaDevice, x: &Tensor, f: Unary) -> Result<Tensor> {
    float_suffix(f.name(), x.dtype())?;
    let out = empty(d, x.shape(), x.dtype())?;
    let n = x.numel();
    if n > 0 {
        let mut a = args![ptr(&out)?, ptr(x)?, n as i64, code(f)];
        d.launch(
            &kernels::UNARY,
            &kname("unary", x.dtype()),
            Dims::elementwise(n),
            &mut a,
        )?;
    }
    Ok(out)
}

pub(super) fn affine(d: &CudaDevice, x: &Tensor, mul: f32, add: f32) -> Result<Tensor> {
    float_suffix("affine", x.dtype())?;
    let out = empty(d, x.shape(), x.dtype())?;
    let n = x.numel();
    if n > 0 {
        let mut a = args![ptr(&out)?, ptr(x)?, n as i64, mul, add];
        d.launch(
            &kernels::UNARY,
            &kname("affine", x.dtype()),
            Dims::elementwise(n),
            &mut a,
        )?;
    }
    Ok(out)
}
