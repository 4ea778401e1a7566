use crate::cuda::CudaDevice;
use crate::{Result, Tensor};

pub(super) fn patch_embed2d(
    _d: &CudaDevice,
    x: &Tensor,
    _w: &Tensor,
    _b: Option<&Tensor>,
) -> Result<Tensor> {
    Err(crate::ops::pending("patch_embed2d", x.device()))
}
pub(super) fn conv3d(
    _d: &CudaDevice,
    x: &Tensor,
    _w: &Tensor,
    _b: Option<&Tensor>,
) -> Result<Tensor> {
    Err(crate::ops::pending("conv3d", x.device()))
}
pub(super) fn pixel_shuffle_3d(_d: &CudaDevice, x: &Tensor) -> Result<Tensor> {
    Err(crate::ops::pending("pixel_shuffle_3d", x.device()))
}
pub(super) fn max_pool3d_2(_d: &CudaDevice, x: &Tensor) -> Result<Tensor> {
    Err(crate::ops::pending("max_pool3d_2", x.device()))
}
