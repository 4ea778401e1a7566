//! A sparse cubic grid stored as dense bricks of 4³ cells, found through a small hash of brick
//! coordinates. The remesher keeps its corner values and voxel rows here instead of in one hash
//! table over every corner: a narrow band of 7 M voxels occupies ~300 k bricks, so the brick
//! table stays small and the 8 corners of a voxel sit in the same few bricks, where a cell-level
//! hash sends each lookup to a random cache line.

use rayon::prelude::*;

use crate::voxel_hash::VoxelHash;

/// log2 of the brick side. 4³ bricks hold a narrow band with ~1.9 slots per cell used (8³:
/// ~3, same speed); the brick table is still small.
const SHIFT: u32 = 2;
const SIDE: i32 = 1 << SHIFT;
/// Cells per brick.
pub(crate) const BRICK_CELLS: usize = 1 << (3 * SHIFT);
/// Items per chunk deduplicated locally in `covering`.
const CHUNK: usize = 1 << 12;

pub(crate) struct BrickGrid {
    /// Brick coordinates → brick id (ids follow the bricks' sorted flat keys).
    bricks: VoxelHash,
    /// Brick coordinates by id.
    origins: Vec<[i32; 3]>,
    size: u32,
}

impl BrickGrid {
    /// The bricks of a `size`³ grid that contain any of the `cells` of any of the `items`
    /// (cell coordinates in the grid). Neighbouring items mostly share bricks, so each chunk
    /// drops its repeats before the global sort.
    pub(crate) fn covering<T: Sync, const K: usize>(
        items: &[T],
        cells: impl Fn(&T) -> [[i32; 3]; K] + Sync,
        size: u32,
    ) -> Self {
        let nb = (size as u64).div_ceil(SIDE as u64).max(1);
        let key = |c: [i32; 3]| {
            let b = c.map(|v| (v >> SHIFT) as u64);
            (b[0] * nb + b[1]) * nb + b[2]
        };
        let mut keys: Vec<u64> = items
            .par_chunks(CHUNK)
            .flat_map_iter(|chunk| {
                let mut local: Vec<u64> = chunk.iter().flat_map(&cells).map(key).collect();
                local.sort_unstable();
                local.dedup();
                local
            })
            .collect();
        keys.par_sort_unstable();
        keys.dedup();
        let origins: Vec<[i32; 3]> = keys
            .iter()
            .map(|&k| {
                [
                    (k / (nb * nb)) as i32,
                    ((k / nb) % nb) as i32,
                    (k % nb) as i32,
                ]
            })
            .collect();
        BrickGrid {
            bricks: VoxelHash::cubic(&origins, nb as u32),
            origins,
            size,
        }
    }

    /// Number of cell slots (bricks × 4³).
    pub(crate) fn slots(&self) -> usize {
        self.origins.len() * BRICK_CELLS
    }

    /// The slot of cell `c`, or `None` when `c` is outside the grid or its brick is absent.
    #[inline]
    pub(crate) fn slot(&self, c: [i32; 3]) -> Option<usize> {
        if c.iter().any(|&v| v < 0 || v as u32 >= self.size) {
            return None;
        }
        let brick = self.bricks.get(c.map(|v| v >> SHIFT))? as usize;
        let l = c.map(|v| (v & (SIDE - 1)) as usize);
        Some(brick * BRICK_CELLS + (((l[0] << SHIFT) | l[1]) << SHIFT) + l[2])
    }

    /// The cell at `slot` (the inverse of [`slot`](Self::slot)).
    pub(crate) fn cell(&self, slot: usize) -> [i32; 3] {
        let o = self.origins[slot / BRICK_CELLS];
        let l = slot % BRICK_CELLS;
        let m = SIDE as usize - 1;
        let local = [l >> (2 * SHIFT), (l >> SHIFT) & m, l & m];
        std::array::from_fn(|a| (o[a] << SHIFT) + local[a] as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip_and_absent_cells_miss() {
        let n = SIDE;
        let size = 2 * n + 5;
        let cells = vec![
            [0, 0, 0],
            [n - 1, n - 1, n - 1],
            [n, 0, n - 1],
            [2 * n + 4, 2 * n + 1, 1],
            [2 * n + 4, 2 * n + 1, 2],
        ];
        let g = BrickGrid::covering(&cells, |&c| [c], size as u32);
        // Bricks (0,0,0), (1,0,0), (2,2,0).
        assert_eq!(g.slots(), 3 * BRICK_CELLS);
        let mut seen = std::collections::HashSet::new();
        for c in &cells {
            let s = g.slot(*c).expect("covered cell has a slot");
            assert_eq!(g.cell(s), *c);
            assert!(seen.insert(s));
        }
        // Same brick as a listed cell: present; other bricks and outside the grid: absent.
        assert!(g.slot([1, 1, 0]).is_some());
        assert_eq!(g.slot([0, n, 0]), None);
        assert_eq!(g.slot([-1, 0, 0]), None);
        assert_eq!(g.slot([size, 2 * n + 1, 1]), None);
    }
}
