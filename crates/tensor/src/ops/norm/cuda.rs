//! Launchers for norm.cu: one warp per normalised vector, 8 warps per block.

use crate::cuda::{CudaDevice, Dims, args, as_f32, empty, float_suffix, kernels, kname, ptr};
use crate::{Result, Tensor};

/// Warps per block (norm.cu's NORM_WARPS).
const NORM_WARPS: usize = 8;

fn dims(vectors: usize) -> Dims {
    Dims {
        grid: (vectors.div_ceil(NORM_WARPS).max(1) as u32, 1, 1),
        block: (32 * NORM_WARPS as u32, 1, 1),
        smem: 0,
    }
}

pub(super) fn layer_norm(
    d: &CudaDevice,
    x: &Tensor,
    w: Option<&Tensor>,
    b: Option<&Tensor>,
    eps: f32,
) -> Result<Tensor> {
    float_suffix("layer_norm", x.dtype())?;
    let c = x.dim(-1);
    let rows = x.numel().checked_div(c).unwrap_or(0);
    // Affine params in f32 (exact upcast), as the f32 compute uses them.
    let w = w.map(as_f32).transpose()?;
    let b = b.map(as_f32).transpose()?;
    let out = empty(d, x.shape(), x.dtype())?;
    if rows > 0 {
        let wp = w.as_ref().map(ptr).transpose()?.unwrap_or(0);
        let bp = b.as_ref().map(ptr).transpose()?.unwrap_or(0);
        let mut a = args![ptr(&out)?, ptr(x)?, wp, bp, rows as i64, c as i32, eps];
        d.launch(
            &kernels::NORM,
            &kname("layer_norm", x.dtype()),
            dims(rows),
            &mut a,
        )?;
    }
    Ok(out)
}

pub(super) fn rms_norm_heads(d: &CudaDevice, x: &Tensor, gamma: &Tensor) -> Result<Tensor> {
    float_suffix("rms_norm_heads", x.dtype())?;
    let (h, dd) = (x.dim(-2), x.dim(-1));
    let vecs = x.numel().checked_div(dd).unwrap_or(0);
    let g = as_f32(gamma)?;
    let out = empty(d, x.shape(), x.dtype())?;
    if vecs > 0 {
        let mut a = args![
            ptr(&out)?,
            ptr(x)?,
            ptr(&g)?,
            vecs as i64,
            h as i32,
            dd as i32
        ];
        d.launch(
            &kernels::NORM,
            &kname("rms_norm_heads", x.dtype()),
            dims(vecs),
            &mut a,
        )?;
    }
    Ok(out)
}
