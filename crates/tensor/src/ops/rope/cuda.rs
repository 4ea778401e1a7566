use crate::cuda::CudaDevice;
use crate::{Result, Tensor};

pub(super) fn rope_interleaved(
    _d: &CudaDevice,
    x: &Tensor,
    _cos: &Tensor,
    _sin: &Tensor,
) -> Result<Tensor> {
    Err(crate::ops::pending("rope_interleaved", x.device()))
}

pub(super) fn rope_half_split(
    _d: &CudaDevice,
    x: &Tensor,
    _cos: &Tensor,
    _sin: &Tensor,
    _prefix: usize,
) -> Result<Tensor> {
    Err(crate::ops::pending("rope_half_split", x.device()))
}
