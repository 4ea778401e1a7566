//! Trilinear sampling of sparse voxel attributes, as FlexGEMM `grid_sample_3d(..., 'trilinear')`
//! (spec §3.5): voxel centres at integer + 0.5, the 8 voxels around the query, weights
//! `Π(1 − |g − (c + 0.5)|)` over the voxels that exist, renormalised by their sum (floor 1e-12);
//! no voxel present gives 0.

use crate::error::MeshError;
use crate::types::MeshWithVoxel;
use crate::voxel_hash::VoxelHash;

/// Renormalisation floor of the reference kernel.
const WEIGHT_FLOOR: f32 = 1e-12;

pub struct VoxelField<'a> {
    hash: VoxelHash,
    attrs: &'a [[f32; 6]],
    voxel_size: f32,
}

impl<'a> VoxelField<'a> {
    pub fn new(m: &'a MeshWithVoxel) -> Result<Self, MeshError> {
        if m.coords.len() != m.attrs.len() {
            return Err(MeshError::LengthMismatch {
                what: "voxel attrs",
                expected: m.coords.len(),
                got: m.attrs.len(),
            });
        }
        if m.resolution == 0 || m.resolution > crate::fdg::MAX_GRID_SIZE {
            return Err(MeshError::InvalidParameter {
                name: "resolution",
                reason: format!(
                    "{} is not in 1..={}",
                    m.resolution,
                    crate::fdg::MAX_GRID_SIZE
                ),
            });
        }
        Ok(VoxelField {
            hash: VoxelHash::cubic(&m.coords, m.resolution),
            attrs: &m.attrs,
            voxel_size: m.voxel_size(),
        })
    }

    pub(crate) fn hash(&self) -> &VoxelHash {
        &self.hash
    }
    pub(crate) fn attrs(&self) -> &[[f32; 6]] {
        self.attrs
    }
    pub(crate) fn voxel_size(&self) -> f32 {
        self.voxel_size
    }

    /// Attributes at world point `p` (AABB `[-0.5, 0.5]³`).
    pub fn sample(&self, p: [f32; 3]) -> [f32; 6] {
        let g: [f32; 3] = std::array::from_fn(|a| (p[a] - (-0.5)) / self.voxel_size);
        let base: [i32; 3] = std::array::from_fn(|a| (g[a] - 0.5).floor() as i32);
        let mut acc = [0.0f32; 6];
        let mut wsum = 0.0f32;
        for k in 0..8 {
            // Wrapping: a saturated far-away base stays out of the grid instead of overflowing.
            let c = [
                base[0].wrapping_add(k & 1),
                base[1].wrapping_add((k >> 1) & 1),
                base[2].wrapping_add(k >> 2),
            ];
            let Some(row) = self.hash.get(c) else {
                continue;
            };
            let w: f32 = (0..3)
                .map(|a| 1.0 - (g[a] - (c[a] as f32 + 0.5)).abs())
                .product();
            let at = &self.attrs[row as usize];
            for ch in 0..6 {
                acc[ch] += w * at[ch];
            }
            wsum += w;
        }
        let d = wsum.max(WEIGHT_FLOOR);
        acc.map(|x| x / d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renormalises_over_present_voxels() {
        let m = MeshWithVoxel {
            coords: vec![[1, 1, 1], [2, 1, 1]],
            attrs: vec![[0.0; 6], [1.0; 6]],
            resolution: 4,
            ..Default::default()
        };
        let f = VoxelField::new(&m).unwrap();
        // Centre of voxel (1,1,1) is g = 1.5 → world 1.5/4 − 0.5.
        let at = |g: [f32; 3]| f.sample(g.map(|x| x / 4.0 - 0.5));
        assert_eq!(at([1.5, 1.5, 1.5])[0], 0.0);
        assert!((at([2.0, 1.5, 1.5])[0] - 0.5).abs() < 1e-6);
        // Off-centre in y: the y+1 row is absent, so the weights renormalise to the same 0.5.
        assert!((at([2.0, 1.8, 1.5])[0] - 0.5).abs() < 1e-6);
        assert_eq!(at([3.9, 3.9, 3.9]), [0.0; 6]);
    }
}
