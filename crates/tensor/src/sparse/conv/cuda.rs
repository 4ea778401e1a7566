//! CUDA neighbour map (GPU hash table) and submanifold conv.

use crate::cuda::CudaDevice;
use crate::sparse::SparseCoords;
use crate::{Result, Tensor};

pub(super) fn neighbor_map(_d: &CudaDevice, coords: &SparseCoords) -> Result<Tensor> {
    Err(crate::ops::pending("neighbor_map_3x3x3", coords.device()))
}

pub(super) fn submanifold_conv3d(
    _d: &CudaDevice,
    feats: &Tensor,
    _nbr: &Tensor,
    _w: &Tensor,
    _b: Option<&Tensor>,
) -> Result<Tensor> {
    Err(crate::ops::pending("submanifold_conv3d", feats.device()))
}
