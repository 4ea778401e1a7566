//! Launchers for unary.cu (16-byte vectors per thread, so the grid covers n / (16 / size)).

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

/// One thread per 16-byte vector.
fn vec_dims(x: &Tensor, n: usize) -> Dims {
    Dims::elementwise(n.div_ceil(16 / x.dtype().size_in_bytes()))
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
            vec_dims(x, n),
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
            vec_dims(x, n),
            &mut a,
        )?;
    }
    Ok(out)
}
