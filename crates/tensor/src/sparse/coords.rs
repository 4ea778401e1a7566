//! Voxel coordinates on the host, their device copy and cached neighbour map.

use std::sync::OnceLock;

use crate::{Device, Result, Tensor};

/// Int coords `(b, x, y, z)` of one sparse tensor. The host copy is the source of truth (the
/// pipeline's threshold and sorting logic runs there); the device copy and the 3×3×3 neighbour
/// map are built on first use and cached.
#[derive(Debug)]
pub struct SparseCoords {
    host: Vec<[i32; 4]>,
    device: Device,
    on_device: OnceLock<Tensor>,
    nbr: OnceLock<Tensor>,
}

impl SparseCoords {
    pub fn new(host: Vec<[i32; 4]>, device: &Device) -> SparseCoords {
        SparseCoords {
            host,
            device: device.clone(),
            on_device: OnceLock::new(),
            nbr: OnceLock::new(),
        }
    }
    pub fn host(&self) -> &[[i32; 4]] {
        &self.host
    }
    pub fn len(&self) -> usize {
        self.host.len()
    }
    pub fn is_empty(&self) -> bool {
        self.host.is_empty()
    }
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The coords as an I32 `[N, 4]` tensor on this device.
    pub fn tensor(&self) -> Result<&Tensor> {
        if let Some(t) = self.on_device.get() {
            return Ok(t);
        }
        let flat: Vec<i32> = self.host.iter().flatten().copied().collect();
        let t = Tensor::from_vec(flat, &[self.host.len(), 4], &self.device)?;
        Ok(self.on_device.get_or_init(|| t))
    }

    /// The U32 `[N, 27]` neighbour map (see `neighbor_map_3x3x3`), built once.
    pub fn neighbor_map(&self) -> Result<&Tensor> {
        if let Some(t) = self.nbr.get() {
            return Ok(t);
        }
        let t = super::conv::neighbor_map_3x3x3(self)?;
        Ok(self.nbr.get_or_init(|| t))
    }
}

/// `argwhere` of a dense boolean volume `[D, H, W]` for batch 0, in row-major order (as
/// `torch.argwhere`, so the result is sorted lexicographically).
pub fn argwhere_3d(mask: &[bool], dims: [usize; 3]) -> Vec<[i32; 4]> {
    let [_, h, w] = dims;
    mask.iter()
        .enumerate()
        .filter(|(_, m)| **m)
        .map(|(i, _)| {
            [
                0,
                (i / (h * w)) as i32,
                ((i / w) % h) as i32,
                (i % w) as i32,
            ]
        })
        .collect()
}

/// `unique(dim=0)` of coordinate rows: sorted lexicographically, duplicates removed.
pub fn unique_sorted(mut coords: Vec<[i32; 4]>) -> Vec<[i32; 4]> {
    coords.sort_unstable();
    coords.dedup();
    coords
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn argwhere_is_row_major() {
        let mut m = vec![false; 2 * 3 * 4];
        m[12 + 2 * 4 + 3] = true; // (1, 2, 3): x·12 + y·4 + z
        m[4] = true; // (0, 1, 0)
        assert_eq!(argwhere_3d(&m, [2, 3, 4]), vec![[0, 0, 1, 0], [0, 1, 2, 3]]);
    }
    #[test]
    fn unique_sorts_and_dedups() {
        let u = unique_sorted(vec![[0, 2, 0, 0], [0, 1, 5, 5], [0, 2, 0, 0]]);
        assert_eq!(u, vec![[0, 1, 5, 5], [0, 2, 0, 0]]);
    }
}
