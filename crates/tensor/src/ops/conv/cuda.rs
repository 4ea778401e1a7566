//! Launchers for conv.cu. The convolutions are GEMMs: patch_embed2d = im2col + `linear`
//! (cuBLASLt); conv3d = channels-last permute + a dense neighbour map + the submanifold
//! implicit-GEMM conv (the same tensor-core kernel as the sparse decoders), then back.

use crate::cuda::{
    CudaDevice, Dims, args, empty, float_suffix, implicit_gemm_conv, kernels, kname, ptr,
};
use crate::ops::{linear, permute};
use crate::{DType, Device, Error, Result, Tensor};

fn elem_unit(op: &'static str, d: &CudaDevice, x: &Tensor) -> Result<usize> {
    match x.dtype().size_in_bytes() {
        es @ (1 | 2 | 4) => Ok(es),
        _ => Err(Error::Unsupported {
            op,
            device: Device::Cuda(d.clone()).name(),
            msg: format!("dtype {:?}", x.dtype()),
        }),
    }
}

pub(super) fn patch_embed2d(
    d: &CudaDevice,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
) -> Result<Tensor> {
    let (bn, c, h, wd) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3));
    let (o, p) = (w.dim(0), w.dim(2));
    if p == 0 {
        return Err(Error::shape("patch_embed2d", "patch size 0"));
    }
    let (hp, wp) = (h / p, wd / p);
    let k = c * p * p;
    let cols = empty(d, &[bn * hp * wp, k], x.dtype())?;
    let total = bn * hp * wp * k;
    if total > 0 {
        let es = elem_unit("patch_embed2d", d, x)?;
        let mut a = args![
            ptr(&cols)?,
            ptr(x)?,
            bn as i32,
            c as i32,
            h as i32,
            wd as i32,
            p as i32
        ];
        d.launch(
            &kernels::CONV,
            &format!("patch_im2col_{es}"),
            Dims::elementwise(total),
            &mut a,
        )?;
    }
    let y = linear(&cols, &w.reshape(&[o, k])?, b)?; // [B·Hp·Wp, O]
    permute(&y.reshape(&[bn, hp * wp, o])?, &[0, 2, 1])?.reshape(&[bn, o, hp, wp])
}

pub(super) fn conv3d(d: &CudaDevice, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let (bn, ci, dd, h, wd) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3), x.dim(4));
    let co = w.dim(0);
    let voxels = bn * dd * h * wd;
    // Channels-last features [B·D·H·W, Ci] and weights [Co, 3, 3, 3, Ci] (the sparse layout).
    let feats = permute(x, &[0, 2, 3, 4, 1])?.reshape(&[voxels, ci])?;
    let w27 = permute(w, &[0, 2, 3, 4, 1])?;
    let nbr = empty(d, &[voxels, 27], DType::U32)?;
    if voxels > 0 {
        let mut a = args![ptr(&nbr)?, bn as i32, dd as i32, h as i32, wd as i32];
        d.launch(
            &kernels::CONV,
            "dense_neighbor_map",
            Dims::elementwise(voxels * 27),
            &mut a,
        )?;
    }
    let y = implicit_gemm_conv(d, &feats, &nbr, &w27, b)?; // [B·D·H·W, Co]
    permute(&y.reshape(&[bn, dd, h, wd, co])?, &[0, 4, 1, 2, 3])
}

pub(super) fn pixel_shuffle_3d(d: &CudaDevice, x: &Tensor) -> Result<Tensor> {
    let (bn, c8, dd, h, wd) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3), x.dim(4));
    let c = c8 / 8;
    let out = empty(d, &[bn, c, 2 * dd, 2 * h, 2 * wd], x.dtype())?;
    let n = x.numel();
    if n > 0 {
        let es = elem_unit("pixel_shuffle_3d", d, x)?;
        let mut a = args![
            ptr(&out)?,
            ptr(x)?,
            bn as i32,
            c as i32,
            dd as i32,
            h as i32,
            wd as i32
        ];
        d.launch(
            &kernels::CONV,
            &format!("pixel_shuffle_3d_{es}"),
            Dims::elementwise(n),
            &mut a,
        )?;
    }
    Ok(out)
}

pub(super) fn max_pool3d_2(d: &CudaDevice, x: &Tensor) -> Result<Tensor> {
    float_suffix("max_pool3d_2", x.dtype())?;
    let (bn, c, dd, h, wd) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3), x.dim(4));
    let out = empty(d, &[bn, c, dd / 2, h / 2, wd / 2], x.dtype())?;
    let n = out.numel();
    if n > 0 {
        let mut a = args![
            ptr(&out)?,
            ptr(x)?,
            (bn * c) as i32,
            dd as i32,
            h as i32,
            wd as i32
        ];
        d.launch(
            &kernels::CONV,
            &kname("max_pool3d_2", x.dtype()),
            Dims::elementwise(n),
            &mut a,
        )?;
    }
    Ok(out)
}
