//! CPU neighbour map (a hash map) and submanifold conv.

use super::NO_NEIGHBOR;
use crate::sparse::SparseCoords;
use crate::{Device, Result, Tensor};

pub(super) fn neighbor_map(coords: &SparseCoords) -> Result<Tensor> {
    use std::collections::HashMap;
    let host = coords.host();
    let index: HashMap<[i32; 4], u32> = host
        .iter()
        .enumerate()
        .map(|(i, c)| (*c, i as u32))
        .collect();
    let mut nbr = vec![NO_NEIGHBOR; host.len() * 27];
    for (i, c) in host.iter().enumerate() {
        for v in 0..27 {
            let (ix, iy, iz) = (
                (v / 9) as i32 - 1,
                ((v / 3) % 3) as i32 - 1,
                (v % 3) as i32 - 1,
            );
            if let Some(&j) = index.get(&[c[0], c[1] + ix, c[2] + iy, c[3] + iz]) {
                nbr[i * 27 + v] = j;
            }
        }
    }
    Tensor::from_vec(nbr, &[host.len(), 27], &Device::Cpu)
}

/// `feats [N, Ci]`, `nbr` U32 `[N, 27]`, `w [Co, 3, 3, 3, Ci]`, `b [Co]` → `[N, Co]`.
pub(super) fn submanifold_conv3d(
    feats: &Tensor,
    _nbr: &Tensor,
    _w: &Tensor,
    _b: Option<&Tensor>,
) -> Result<Tensor> {
    Err(crate::ops::pending("submanifold_conv3d", feats.device()))
}
