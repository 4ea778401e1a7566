//! Hole filling, as CuMesh `fill_holes(max_hole_perimeter)`: every closed boundary loop whose
//! world-space perimeter is below the threshold gets one new vertex at the loop's centroid and a
//! fan of triangles to it. Each fan triangle takes the reverse direction of the boundary edge in
//! its face, so it continues that face's winding.

use std::collections::{HashMap, HashSet};

use crate::error::{MeshError, check_faces};
use crate::geom::{add, dist, scale};
use crate::topology::boundary_edges;
use crate::types::TriMesh;

/// The reference's threshold in `decode_latent` and `to_glb` (world units, AABB of size 1).
pub const DEFAULT_MAX_HOLE_PERIMETER: f32 = 3e-2;

/// Boundary loops of the mesh, as vertex sequences (only loops through vertices with exactly two
/// boundary edges; tangled boundaries are left open, as filling them would create
/// non-manifold fans).
pub fn boundary_loops(faces: &[[u32; 3]]) -> Vec<Vec<u32>> {
    boundary_loops_of(&boundary_edges(faces))
}

/// [`boundary_loops`] from the mesh's boundary edges (as [`boundary_edges`] gives them).
fn boundary_loops_of(boundary: &[(u32, u32)]) -> Vec<Vec<u32>> {
    let mut adj: HashMap<u32, Vec<u32>> = HashMap::new();
    for &(a, b) in boundary {
        adj.entry(a).or_default().push(b);
        adj.entry(b).or_default().push(a);
    }
    let mut visited: HashMap<u32, bool> = HashMap::new();
    let mut loops = Vec::new();
    let mut starts: Vec<u32> = adj.keys().copied().collect();
    starts.sort_unstable();
    for start in starts {
        if visited.get(&start).copied().unwrap_or(false) || adj[&start].len() != 2 {
            continue;
        }
        let mut path = vec![start];
        visited.insert(start, true);
        let (mut prev, mut cur) = (start, adj[&start][0]);
        let closed = loop {
            if cur == start {
                break true;
            }
            let n = &adj[&cur];
            if n.len() != 2 || visited.get(&cur).copied().unwrap_or(false) {
                break false;
            }
            visited.insert(cur, true);
            path.push(cur);
            let next = if n[0] == prev { n[1] } else { n[0] };
            prev = cur;
            cur = next;
        };
        if closed && path.len() >= 3 {
            loops.push(path);
        }
    }
    loops
}

/// Fills every boundary loop with perimeter `< max_perimeter`; returns how many were filled.
pub fn fill_holes(mesh: &mut TriMesh, max_perimeter: f32) -> Result<usize, MeshError> {
    if !(max_perimeter >= 0.0) {
        return Err(MeshError::InvalidParameter {
            name: "max_perimeter",
            reason: format!("{max_perimeter} is not a non-negative number"),
        });
    }
    check_faces(&mesh.faces, mesh.vertices.len())?;
    // Directed boundary edges as they appear in their faces, to orient the fans.
    let boundary = boundary_edges(&mesh.faces);
    let loops = boundary_loops_of(&boundary);
    if loops.is_empty() {
        return Ok(0);
    }
    let directed: HashSet<(u32, u32)> = boundary.into_iter().collect();
    let mut filled = 0;
    for l in loops {
        let pts: Vec<[f32; 3]> = l.iter().map(|&v| mesh.vertices[v as usize]).collect();
        let perimeter: f32 = (0..pts.len())
            .map(|i| dist(pts[i], pts[(i + 1) % pts.len()]))
            .sum();
        if !(perimeter < max_perimeter) {
            continue;
        }
        let centroid = scale(
            pts.iter().fold([0.0; 3], |s, &p| add(s, p)),
            1.0 / pts.len() as f32,
        );
        let c = mesh.vertices.len() as u32;
        mesh.vertices.push(centroid);
        for i in 0..l.len() {
            let (a, b) = (l[i], l[(i + 1) % l.len()]);
            // The face has a→b: the fan triangle runs b→a.
            let tri = if directed.contains(&(a, b)) {
                [b, a, c]
            } else {
                [a, b, c]
            };
            mesh.faces.push(tri);
        }
        filled += 1;
    }
    Ok(filled)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::topology::{edge_stats, is_closed_and_oriented};

    /// An open cube (top face missing), consistently oriented outward.
    pub(crate) fn open_cube(size: f32) -> TriMesh {
        let s = size;
        let vertices = vec![
            [0., 0., 0.],
            [s, 0., 0.],
            [s, s, 0.],
            [0., s, 0.],
            [0., 0., s],
            [s, 0., s],
            [s, s, s],
            [0., s, s],
        ];
        let faces = vec![
            [0, 2, 1],
            [0, 3, 2], // bottom (z = 0), normal -z
            [0, 1, 5],
            [0, 5, 4], // y = 0
            [1, 2, 6],
            [1, 6, 5], // x = s
            [2, 3, 7],
            [2, 7, 6], // y = s
            [3, 0, 4],
            [3, 4, 7], // x = 0
        ];
        TriMesh { vertices, faces }
    }

    #[test]
    fn fills_small_hole_consistently() {
        let mut m = open_cube(0.005);
        assert_eq!(fill_holes(&mut m, DEFAULT_MAX_HOLE_PERIMETER).unwrap(), 1);
        assert_eq!(m.faces.len(), 14);
        assert_eq!(edge_stats(&m.faces).0, 0);
        assert!(is_closed_and_oriented(&m.faces));
    }

    #[test]
    fn leaves_large_hole() {
        let mut m = open_cube(1.0);
        assert_eq!(fill_holes(&mut m, DEFAULT_MAX_HOLE_PERIMETER).unwrap(), 0);
        assert_eq!(m.faces.len(), 10);
    }
}
