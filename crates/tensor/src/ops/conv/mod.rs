//! Dense convolutions and resampling: DINOv3's patch embedding and the SS decoder's 3-D ops.

mod cpu;
mod cuda;

use super::{float_only, same_device};
use crate::{Device, Error, Result, Tensor};

/// Conv2d with kernel = stride = P and no padding (a ViT patch embedding):
/// `x [B, C, H, W]`, `w [O, C, P, P]`, `b [O]` → `[B, O, H/P, W/P]` (floor), f32 accumulation.
pub fn patch_embed2d(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    const OP: &str = "patch_embed2d";
    float_only(OP, x)?;
    float_only(OP, w)?;
    same_device(OP, &[x, w])?;
    if x.rank() != 4 || w.rank() != 4 || w.dim(1) != x.dim(1) || w.dim(2) != w.dim(3) {
        return Err(Error::shape(
            OP,
            format!("x {:?} w {:?}", x.shape(), w.shape()),
        ));
    }
    check_bias(OP, x, w, b)?;
    match x.device() {
        Device::Cpu => cpu::patch_embed2d(x, w, b),
        Device::Cuda(d) => cuda::patch_embed2d(d, x, w, b),
    }
}

/// Conv3d, kernel 3, stride 1, padding 1 (zeros), cross-correlation in PyTorch's weight layout:
/// `x [B, Ci, D, H, W]`, `w [Co, Ci, 3, 3, 3]`, `b [Co]` → `[B, Co, D, H, W]`, f32 accumulation.
pub fn conv3d(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    const OP: &str = "conv3d";
    float_only(OP, x)?;
    float_only(OP, w)?;
    same_device(OP, &[x, w])?;
    if x.rank() != 5 || w.rank() != 5 || w.shape() != [w.dim(0), x.dim(1), 3, 3, 3] {
        return Err(Error::shape(
            OP,
            format!("x {:?} w {:?}", x.shape(), w.shape()),
        ));
    }
    check_bias(OP, x, w, b)?;
    match x.device() {
        Device::Cpu => cpu::conv3d(x, w, b),
        Device::Cuda(d) => cuda::conv3d(d, x, w, b),
    }
}

/// 3-D pixel shuffle ×2: `x [B, 8C, D, H, W]` → `[B, C, 2D, 2H, 2W]`, where output channel `c` at
/// sub-position `(i, j, k)` (i on D/x, j on H/y, k on W/z) reads input channel `c·8 + i·4 + j·2 + k`.
pub fn pixel_shuffle_3d(x: &Tensor) -> Result<Tensor> {
    const OP: &str = "pixel_shuffle_3d";
    if x.rank() != 5 || !x.dim(1).is_multiple_of(8) {
        return Err(Error::shape(OP, format!("x {:?}", x.shape())));
    }
    match x.device() {
        Device::Cpu => cpu::pixel_shuffle_3d(x),
        Device::Cuda(d) => cuda::pixel_shuffle_3d(d, x),
    }
}

/// max_pool3d(kernel 2, stride 2): `x [B, C, D, H, W]` → `[B, C, D/2, H/2, W/2]` (floor).
pub fn max_pool3d_2(x: &Tensor) -> Result<Tensor> {
    const OP: &str = "max_pool3d_2";
    float_only(OP, x)?;
    if x.rank() != 5 {
        return Err(Error::shape(OP, format!("x {:?}", x.shape())));
    }
    match x.device() {
        Device::Cpu => cpu::max_pool3d_2(x),
        Device::Cuda(d) => cuda::max_pool3d_2(d, x),
    }
}

fn check_bias(op: &'static str, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<()> {
    if let Some(b) = b {
        float_only(op, b)?;
        same_device(op, &[x, b])?;
        if b.shape() != [w.dim(0)] {
            return Err(Error::shape(
                op,
                format!("bias {:?} for w {:?}", b.shape(), w.shape()),
            ));
        }
    }
    Ok(())
}
