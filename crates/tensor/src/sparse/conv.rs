//! Neighbour maps and the submanifold 3×3×3 convolution (FlexGEMM's semantics).

use super::{SparseCoords, SparseTensor};
use crate::ops::float_only;
use crate::{Device, Error, Result, Tensor};

/// Marks a missing neighbour in a neighbour map.
pub const NO_NEIGHBOR: u32 = u32::MAX;

/// U32 `[N, 27]`: `nbr[i, v]` is the row of the voxel at `coords[i] + (ix−1, iy−1, iz−1)` in the
/// same batch item, with `v = ix·9 + iy·3 + iz` (x outermost), or `NO_NEIGHBOR`.
pub fn neighbor_map_3x3x3(coords: &SparseCoords) -> Result<Tensor> {
    match coords.device() {
        Device::Cpu => cpu_neighbor_map(coords),
        Device::Cuda(_) => Err(crate::ops::pending("neighbor_map_3x3x3", coords.device())),
    }
}

fn cpu_neighbor_map(coords: &SparseCoords) -> Result<Tensor> {
    use std::collections::HashMap;
    let host = coords.host();
    let index: HashMap<[i32; 4], u32> = host.iter().enumerate().map(|(i, c)| (*c, i as u32)).collect();
    let mut nbr = vec![NO_NEIGHBOR; host.len() * 27];
    for (i, c) in host.iter().enumerate() {
        for v in 0..27 {
            let (ix, iy, iz) = ((v / 9) as i32 - 1, ((v / 3) % 3) as i32 - 1, (v % 3) as i32 - 1);
            if let Some(&j) = index.get(&[c[0], c[1] + ix, c[2] + iy, c[3] + iz]) {
                nbr[i * 27 + v] = j;
            }
        }
    }
    Tensor::from_vec(nbr, &[host.len(), 27], &Device::Cpu)
}

/// Submanifold conv: `out[i, co] = b[co] + Σ_v Σ_ci W[co, v, ci] · x[nbr[i, v], ci]` over present
/// neighbours (a cross-correlation, no kernel flip), f32 accumulation, output in x's dtype.
/// `w` is the reference layout `[Co, 3, 3, 3, Ci]`.
pub fn submanifold_conv3d(x: &SparseTensor, w: &Tensor, b: Option<&Tensor>) -> Result<SparseTensor> {
    const OP: &str = "submanifold_conv3d";
    float_only(OP, &x.feats)?;
    float_only(OP, w)?;
    let ci = x.channels();
    if w.shape() != [w.dim(0), 3, 3, 3, ci] {
        return Err(Error::shape(OP, format!("w {:?} for {ci} input channels", w.shape())));
    }
    if let Some(b) = b {
        if b.shape() != [w.dim(0)] {
            return Err(Error::shape(OP, format!("bias {:?} for w {:?}", b.shape(), w.shape())));
        }
    }
    let nbr = x.coords.neighbor_map()?;
    let out = match x.feats.device() {
        Device::Cpu => Err(crate::ops::pending(OP, x.feats.device())),
        Device::Cuda(_) => Err(crate::ops::pending(OP, x.feats.device())),
    };
    let _ = nbr;
    x.replace(out?)
}
