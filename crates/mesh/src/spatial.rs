//! Spatially coherent face orders, for cutting a large mesh into compact pieces that are then
//! processed in parallel (UV unwrap segmentation, the decimation's first pass).

use rayon::prelude::*;

use crate::types::TriMesh;

/// The faces of `mesh` sorted along a Morton curve of their centroids (10 bits per axis over
/// the bounding box), ties broken by face index so the order never depends on the run. Keys
/// and sort are parallel: on a 12 M-face remesh this is on the decimation's critical path.
pub fn morton_face_order(mesh: &TriMesh) -> Vec<u32> {
    let (lo, hi) = bounds(&mesh.vertices);
    let mut keyed: Vec<(u32, u32)> = (0..mesh.faces.len() as u32)
        .into_par_iter()
        .map(|f| {
            let c = mesh.faces[f as usize].map(|i| mesh.vertices[i as usize]);
            let q: [u32; 3] = std::array::from_fn(|a| {
                let centre = (c[0][a] + c[1][a] + c[2][a]) / 3.0;
                let t = (centre - lo[a]) / (hi[a] - lo[a]).max(f32::MIN_POSITIVE);
                (t.clamp(0.0, 1.0) * 1023.0) as u32
            });
            (morton3(q), f)
        })
        .collect();
    // (key, face) pairs are distinct, so an unstable sort gives one order.
    keyed.par_sort_unstable();
    keyed.into_iter().map(|(_, f)| f).collect()
}

/// `⌈n / piece⌉` chunks of about equal size (at least one), so the piece count depends only on
/// `n`, never on the machine's thread count.
pub fn piece_len(n: usize, piece: usize) -> usize {
    let count = n.div_ceil(piece.max(1)).max(1);
    n.div_ceil(count).max(1)
}

fn bounds(v: &[[f32; 3]]) -> ([f32; 3], [f32; 3]) {
    v.iter().fold(
        ([f32::INFINITY; 3], [f32::NEG_INFINITY; 3]),
        |(lo, hi), p| {
            (
                std::array::from_fn(|a| lo[a].min(p[a])),
                std::array::from_fn(|a| hi[a].max(p[a])),
            )
        },
    )
}

/// Interleaves the low 10 bits of each coordinate (x in the lowest bit).
pub(crate) fn morton3(q: [u32; 3]) -> u32 {
    let spread = |mut x: u32| {
        x &= 0x3ff;
        x = (x | (x << 16)) & 0x030000ff;
        x = (x | (x << 8)) & 0x0300f00f;
        x = (x | (x << 4)) & 0x030c30c3;
        (x | (x << 2)) & 0x09249249
    };
    spread(q[0]) | (spread(q[1]) << 1) | (spread(q[2]) << 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn morton_interleaves() {
        assert_eq!(morton3([1, 0, 0]), 1);
        assert_eq!(morton3([0, 1, 0]), 2);
        assert_eq!(morton3([0, 0, 1]), 4);
        assert_eq!(morton3([1023, 1023, 1023]), (1 << 30) - 1);
    }

    #[test]
    fn pieces_are_balanced() {
        assert_eq!(piece_len(10, 4), 4); // 3 pieces: 4, 4, 2
        assert_eq!(piece_len(12, 4), 4);
        assert_eq!(piece_len(13, 4), 4); // 4 pieces: 4, 4, 4, 1
        assert_eq!(piece_len(3, 100), 3);
        assert_eq!(piece_len(0, 100), 1);
    }
}
