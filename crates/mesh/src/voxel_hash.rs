//! An open-addressing hash from integer voxel coordinates to a row index: the CPU twin of the
//! o_voxel / CuMesh CUDA hashmap (linear probing, capacity 2N). Lookups of coordinates outside
//! the `[0, size)³` grid miss, as the CUDA kernel's bounds check makes them miss.

const EMPTY: u64 = u64::MAX;

pub struct VoxelHash {
    keys: Vec<u64>,
    vals: Vec<u32>,
    mask: usize,
    size: [i64; 3],
}

impl VoxelHash {
    /// Builds the table; on duplicate coordinates the last row wins (as sequential inserts do).
    pub fn new(coords: &[[i32; 3]], size: [u32; 3]) -> Self {
        let capacity = (coords.len() * 2).next_power_of_two().max(16);
        let mut table = VoxelHash {
            keys: vec![EMPTY; capacity],
            vals: vec![0; capacity],
            mask: capacity - 1,
            size: [size[0] as i64, size[1] as i64, size[2] as i64],
        };
        for (row, c) in coords.iter().enumerate() {
            if let Some(key) = table.key(*c) {
                table.insert(key, row as u32);
            }
        }
        table
    }

    /// Cubic grid convenience.
    pub fn cubic(coords: &[[i32; 3]], size: u32) -> Self {
        Self::new(coords, [size; 3])
    }

    #[inline]
    fn key(&self, c: [i32; 3]) -> Option<u64> {
        let [x, y, z] = [c[0] as i64, c[1] as i64, c[2] as i64];
        if x < 0 || y < 0 || z < 0 || x >= self.size[0] || y >= self.size[1] || z >= self.size[2] {
            return None;
        }
        Some(((x * self.size[1] + y) * self.size[2] + z) as u64)
    }

    #[inline]
    fn slot(&self, key: u64) -> usize {
        // A multiplicative mix: flat voxel keys are highly regular, so spread them.
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17) as usize & self.mask
    }

    fn insert(&mut self, key: u64, val: u32) {
        let mut s = self.slot(key);
        loop {
            if self.keys[s] == EMPTY || self.keys[s] == key {
                self.keys[s] = key;
                self.vals[s] = val;
                return;
            }
            s = (s + 1) & self.mask;
        }
    }

    /// The table as the CUDA lookup reads it (`gpu/closest.cu` `voxel_row`, same slot function):
    /// keys (`u64::MAX` = empty), rows, the slot mask and the grid size.
    pub(crate) fn raw(&self) -> (&[u64], &[u32], u64, [i64; 3]) {
        (&self.keys, &self.vals, self.mask as u64, self.size)
    }

    /// The row stored for `c`, or `None` when absent or out of the grid.
    #[inline]
    pub fn get(&self, c: [i32; 3]) -> Option<u32> {
        let key = self.key(c)?;
        let mut s = self.slot(key);
        loop {
            let k = self.keys[s];
            if k == key {
                return Some(self.vals[s]);
            }
            if k == EMPTY {
                return None;
            }
            s = (s + 1) & self.mask;
        }
    }
}
