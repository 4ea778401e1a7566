//! Neighbour maps and the submanifold 3×3×3 convolution (FlexGEMM's semantics).

mod cpu;
mod cuda;

use super::{SparseCoords, SparseTensor};
use crate::ops::{float_only, same_device};
use crate::{Device, Error, Result, Tensor};

/// Marks a missing neighbour in a neighbour map.
pub const NO_NEIGHBOR: u32 = u32::MAX;

/// U32 `[N, 27]`: `nbr[i, v]` is the row of the voxel at `coords[i] + (ix−1, iy−1, iz−1)` in the
/// same batch item, with `v = ix·9 + iy·3 + iz` (x outermost), or `NO_NEIGHBOR`.
pub fn neighbor_map_3x3x3(coords: &SparseCoords) -> Result<Tensor> {
    match coords.device() {
        Device::Cpu => cpu::neighbor_map(coords),
        Device::Cuda(d) => cuda::neighbor_map(d, coords),
    }
}

/// Submanifold conv: `out[i, co] = b[co] + Σ_v Σ_ci W[co, v, ci] · x[nbr[i, v], ci]` over present
/// neighbours (a cross-correlation, no kernel flip), f32 accumulation, output in x's dtype.
/// `w` is the reference layout `[Co, 3, 3, 3, Ci]`.
pub fn submanifold_conv3d(
    x: &SparseTensor,
    w: &Tensor,
    b: Option<&Tensor>,
) -> Result<SparseTensor> {
    const OP: &str = "submanifold_conv3d";
    float_only(OP, &x.feats)?;
    float_only(OP, w)?;
    same_device(OP, &[&x.feats, w])?;
    let ci = x.channels();
    if w.rank() != 5 || w.shape() != [w.dim(0), 3, 3, 3, ci] {
        return Err(Error::shape(
            OP,
            format!("w {:?} for {ci} input channels", w.shape()),
        ));
    }
    if let Some(b) = b {
        float_only(OP, b)?;
        same_device(OP, &[&x.feats, b])?;
        if b.shape() != [w.dim(0)] {
            return Err(Error::shape(
                OP,
                format!("bias {:?} for w {:?}", b.shape(), w.shape()),
            ));
        }
    }
    let nbr = x.coords.neighbor_map()?;
    let out = match x.feats.device() {
        Device::Cpu => cpu::submanifold_conv3d(&x.feats, nbr, w, b)?,
        Device::Cuda(d) => cuda::submanifold_conv3d(d, &x.feats, nbr, w, b)?,
    };
    x.replace(out)
}
