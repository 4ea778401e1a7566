//! Flexible-dual-grid → triangle mesh, as `o_voxel.convert.flexible_dual_grid_to_mesh`
//! (`train=False`, with split weights). Parity with the reference is exact: the `mesh/` goldens
//! check vertices to 1e-6 and faces bit for bit.
//!
//! One vertex per voxel, `(coords + dual_vertex) * (1/grid_size) + (-0.5)` in float32 (a multiply
//! by the rounded reciprocal, as the reference's `voxel_size` tensor is). For each voxel and each
//! axis whose max-corner edge is flagged, the 4 voxels around that edge make a quad; a quad with
//! any voxel missing (or outside the grid) is dropped. Triangles come out voxel-major, axis-minor,
//! the reference's boolean-mask order.

use rayon::prelude::*;

use crate::error::{MeshError, check_u32};
use crate::types::TriMesh;
use crate::voxel_hash::VoxelHash;

/// Largest grid accepted: keeps flat voxel keys (`x·G² + y·G + z`) far inside 64 bits.
pub const MAX_GRID_SIZE: u32 = 1 << 20;

/// The 4 voxels around the max-corner edge along x, y, z (the reference's table, in its order).
pub(crate) const EDGE_NEIGHBOURS: [[[i32; 3]; 4]; 3] = [
    [[0, 0, 0], [0, 0, 1], [0, 1, 1], [0, 1, 0]],
    [[0, 0, 0], [1, 0, 0], [1, 0, 1], [0, 0, 1]],
    [[0, 0, 0], [0, 1, 0], [1, 1, 0], [1, 0, 0]],
];

/// Splits the quad along q0–q2 when `γ0·γ2 > γ1·γ3` (float32 products), else along q1–q3.
#[inline]
fn split_quad(q: [u32; 4], gamma: &[f32]) -> [[u32; 3]; 2] {
    let g = |i: usize| gamma[q[i] as usize];
    if g(0) * g(2) > g(1) * g(3) {
        [[q[0], q[1], q[2]], [q[0], q[2], q[3]]]
    } else {
        [[q[0], q[1], q[3]], [q[3], q[1], q[2]]]
    }
}

/// Extracts the mesh of a flexible dual grid on a `grid_size³` grid in the AABB `[-0.5, 0.5]³`.
pub fn flexible_dual_grid_to_mesh(
    coords: &[[i32; 3]],
    dual_vertices: &[[f32; 3]],
    intersected: &[[bool; 3]],
    split_weight: &[f32],
    grid_size: u32,
) -> Result<TriMesh, MeshError> {
    let n = coords.len();
    for (what, got) in [
        ("dual_vertices", dual_vertices.len()),
        ("intersected", intersected.len()),
        ("split_weight", split_weight.len()),
    ] {
        if got != n {
            return Err(MeshError::LengthMismatch {
                what,
                expected: n,
                got,
            });
        }
    }
    if grid_size == 0 || grid_size > MAX_GRID_SIZE {
        return Err(MeshError::InvalidParameter {
            name: "grid_size",
            reason: format!("{grid_size} is not in 1..={MAX_GRID_SIZE}"),
        });
    }
    check_u32(n, "voxels")?;

    let voxel_size = 1.0f32 / grid_size as f32;
    let vertices: Vec<[f32; 3]> = coords
        .par_iter()
        .zip(dual_vertices.par_iter())
        .map(|(c, v)| std::array::from_fn(|a| (c[a] as f32 + v[a]) * voxel_size + (-0.5f32)))
        .collect();

    let hash = VoxelHash::cubic(coords, grid_size);
    let faces: Vec<[u32; 3]> = (0..n)
        .into_par_iter()
        .flat_map_iter(|i| {
            let c = coords[i];
            let hash = &hash;
            (0..3)
                .filter(move |&axis| intersected[i][axis])
                .filter_map(move |axis| {
                    let mut q = [0u32; 4];
                    for (k, off) in EDGE_NEIGHBOURS[axis].iter().enumerate() {
                        q[k] = hash.get([
                            // Wrapping: i32::MAX + 1 becomes negative, which the
                            // bounds check rejects, instead of overflowing.
                            c[0].wrapping_add(off[0]),
                            c[1].wrapping_add(off[1]),
                            c[2].wrapping_add(off[2]),
                        ])?;
                    }
                    Some(split_quad(q, split_weight))
                })
                .flatten()
        })
        .collect();

    Ok(TriMesh { vertices, faces })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_mismatched_lengths() {
        let err = flexible_dual_grid_to_mesh(&[[0, 0, 0]], &[], &[[false; 3]], &[1.0], 4);
        assert!(matches!(err, Err(MeshError::LengthMismatch { .. })));
    }

    #[test]
    fn extreme_coords_and_grid_sizes_are_handled() {
        let coords = [[i32::MAX, i32::MAX, i32::MAX], [-5, 0, 0]];
        let m = flexible_dual_grid_to_mesh(&coords, &[[0.5; 3]; 2], &[[true; 3]; 2], &[1.0; 2], 8)
            .unwrap();
        assert!(m.faces.is_empty());
        assert!(flexible_dual_grid_to_mesh(&[], &[], &[], &[], 0).is_err());
        assert!(flexible_dual_grid_to_mesh(&[], &[], &[], &[], u32::MAX).is_err());
    }

    #[test]
    fn single_quad_tie_takes_second_split() {
        // Voxels around (0,0,0)'s x edge: (0,0,0), (0,0,1), (0,1,1), (0,1,0).
        let coords = [[0, 0, 0], [0, 0, 1], [0, 1, 1], [0, 1, 0]];
        let dv = [[0.5; 3]; 4];
        let flags = [[true, false, false], [false; 3], [false; 3], [false; 3]];
        let m = flexible_dual_grid_to_mesh(&coords, &dv, &flags, &[1.0; 4], 4).unwrap();
        assert_eq!(m.faces, vec![[0, 1, 3], [3, 1, 2]]);
        assert_eq!(m.vertices[0], [-0.375; 3]);
    }
}
