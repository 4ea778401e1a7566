use crate::cuda::CudaDevice;
use crate::{DType, Result, Tensor};

pub(super) fn to_dtype(_d: &CudaDevice, x: &Tensor, _dtype: DType) -> Result<Tensor> {
    Err(crate::ops::pending("to_dtype", x.device()))
}
pub(super) fn permute(_d: &CudaDevice, x: &Tensor, _dims: &[usize]) -> Result<Tensor> {
    Err(crate::ops::pending("permute", x.device()))
}
pub(super) fn narrow(
    _d: &CudaDevice,
    x: &Tensor,
    _dim: usize,
    _start: usize,
    _len: usize,
) -> Result<Tensor> {
    Err(crate::ops::pending("narrow", x.device()))
}
pub(super) fn cat(_d: &CudaDevice, xs: &[&Tensor], _dim: usize) -> Result<Tensor> {
    Err(crate::ops::pending("cat", xs[0].device()))
}
pub(super) fn index_rows(_d: &CudaDevice, x: &Tensor, _idx: &Tensor) -> Result<Tensor> {
    Err(crate::ops::pending("index_rows", x.device()))
}
pub(super) fn repeat_interleave(
    _d: &CudaDevice,
    x: &Tensor,
    _dim: usize,
    _repeats: usize,
) -> Result<Tensor> {
    Err(crate::ops::pending("repeat_interleave", x.device()))
}
