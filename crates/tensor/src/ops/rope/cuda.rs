//! Launchers for rope.cu.

use crate::cuda::{CudaDevice, Dims, args, empty, float_suffix, kernels, kname, ptr};
use crate::{Result, Tensor};

pub(super) fn rope_interleaved(
    d: &CudaDevice,
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
) -> Result<Tensor> {
    float_suffix("rope_interleaved", x.dtype())?;
    let (n, h, dd) = (x.dim(-3), x.dim(-2), x.dim(-1));
    let out = empty(d, x.shape(), x.dtype())?;
    let pairs = x.numel() / 2;
    if pairs > 0 {
        let mut a = args![
            ptr(&out)?,
            ptr(x)?,
            ptr(cos)?,
            ptr(sin)?,
            pairs as i64,
            n as i32,
            h as i32,
            dd as i32
        ];
        let name = kname("rope_interleaved", x.dtype());
        d.launch(&kernels::ROPE, &name, Dims::elementwise(pairs), &mut a)?;
    }
    Ok(out)
}

pub(super) fn rope_half_split(
    d: &CudaDevice,
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    prefix: usize,
) -> Result<Tensor> {
    float_suffix("rope_half_split", x.dtype())?;
    let (n, h, dd) = (x.dim(-3), x.dim(-2), x.dim(-1));
    let out = empty(d, x.shape(), x.dtype())?;
    let total = x.numel();
    if total > 0 {
        let mut a = args![
            ptr(&out)?,
            ptr(x)?,
            ptr(cos)?,
            ptr(sin)?,
            total as i64,
            n as i32,
            h as i32,
            dd as i32,
            prefix as i32
        ];
        let name = kname("rope_half_split", x.dtype());
        d.launch(&kernels::ROPE, &name, Dims::elementwise(total), &mut a)?;
    }
    Ok(out)
}
