//! Channel-to-space ×2 upsampling with a subdivision mask (`SparseChannel2Spatial(2)`).

use std::sync::Arc;

use super::{SparseCoords, SparseTensor};
use crate::{Error, Result, Tensor};

/// The children of each parent, in the reference's emission order: parents in row order, then
/// sub-index `s = dx + 2·dy + 4·dz` ascending, for the `s` whose mask bit is set. Returns the
/// child coords `2·c + (dx, dy, dz)` and, per child, the row `n·8 + s` of the parent features
/// viewed as `[N·8, Co]`.
pub fn c2s_child_index(parents: &[[i32; 4]], mask: &[bool]) -> Result<(Vec<[i32; 4]>, Vec<u32>)> {
    if mask.len() != parents.len() * 8 {
        return Err(Error::shape(
            "channel_to_space",
            format!("mask of {} for {} parents", mask.len(), parents.len()),
        ));
    }
    let mut coords = Vec::new();
    let mut rows = Vec::new();
    for (n, c) in parents.iter().enumerate() {
        for s in 0..8usize {
            if mask[n * 8 + s] {
                let (dx, dy, dz) = ((s & 1) as i32, ((s >> 1) & 1) as i32, ((s >> 2) & 1) as i32);
                coords.push([c[0], 2 * c[1] + dx, 2 * c[2] + dy, 2 * c[3] + dz]);
                rows.push((n * 8 + s) as u32);
            }
        }
    }
    Ok((coords, rows))
}

/// `x.feats [N, 8·Co]` → children `[M, Co]` on the ×2 grid, where `mask [N·8]` (row-major
/// `[N, 8]`) says which children exist. Child features are channels `[s·Co, (s+1)·Co)`.
pub fn channel_to_space(x: &SparseTensor, mask: &[bool]) -> Result<SparseTensor> {
    let (n, c8) = (x.feats.dim(0), x.feats.dim(1));
    if c8 % 8 != 0 {
        return Err(Error::shape(
            "channel_to_space",
            format!("{c8} channels is not a multiple of 8"),
        ));
    }
    let (coords, rows) = c2s_child_index(x.coords.host(), mask)?;
    let device = x.feats.device();
    let idx = Tensor::from_vec(rows, &[coords.len()], device)?;
    let feats = crate::ops::index_rows(&x.feats.reshape(&[n * 8, c8 / 8])?, &idx)?;
    SparseTensor::new(feats, Arc::new(SparseCoords::new(coords, device)))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn children_in_parent_then_subindex_order() {
        let parents = [[0, 1, 2, 3], [0, 0, 0, 0]];
        let mut mask = vec![false; 16];
        mask[5] = true; // parent 0, s = 5: dx 1, dy 0, dz 1
        mask[1] = true; // parent 0, s = 1: dx 1
        mask[8 + 6] = true; // parent 1, s = 6: dy 1, dz 1
        let (c, r) = c2s_child_index(&parents, &mask).unwrap();
        assert_eq!(c, vec![[0, 3, 4, 6], [0, 3, 4, 7], [0, 0, 1, 1]]);
        assert_eq!(r, vec![1, 5, 14]);
    }
}
