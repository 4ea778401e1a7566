//! Mesh cleanup for the non-remesh path (CuMesh `remove_degenerate_faces`,
//! `remove_duplicate_faces`, `remove_non_manifold_faces`, `remove_small_connected_components`,
//! `unify_face_orientations`, `remove_unreferenced_vertices`). Each step keeps face order.

use rayon::prelude::*;

use crate::error::{MeshError, check_faces};
use crate::geom::{dot, norm, sub, tri_area, tri_normal};
use crate::topology::{compact_vertices, edge_groups, half_edge_ends, sorted_half_edges};
use crate::types::TriMesh;

/// CuMesh's defaults: a face is degenerate when its doubled area² is ≤ `abs` or ≤ `rel` times
/// its longest edge⁴ (a sliver that is a line in float precision).
pub const DEGENERATE_ABS: f32 = 1e-24;
pub const DEGENERATE_REL: f32 = 1e-12;

fn retain_faces(mesh: &mut TriMesh, keep: &[bool]) -> usize {
    let before = mesh.faces.len();
    let mut i = 0;
    mesh.faces.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    before - mesh.faces.len()
}

/// True when the face repeats an index or has (relatively) zero area.
pub fn is_degenerate(v: &[[f32; 3]], f: [u32; 3]) -> bool {
    if f[0] == f[1] || f[1] == f[2] || f[0] == f[2] {
        return true;
    }
    let [a, b, c] = f.map(|i| v[i as usize]);
    let n = tri_normal(a, b, c);
    let area2 = dot(n, n);
    let longest = [norm(sub(b, a)), norm(sub(c, b)), norm(sub(a, c))]
        .into_iter()
        .fold(0.0f32, f32::max);
    !(area2 > DEGENERATE_ABS) || !(area2 > DEGENERATE_REL * longest.powi(4))
}

/// Removes degenerate faces; returns how many.
pub fn remove_degenerate_faces(mesh: &mut TriMesh) -> usize {
    let keep: Vec<bool> = mesh
        .faces
        .par_iter()
        .map(|&f| !is_degenerate(&mesh.vertices, f))
        .collect();
    retain_faces(mesh, &keep)
}

/// Removes faces over the same vertex set as an earlier face (either winding).
pub fn remove_duplicate_faces(mesh: &mut TriMesh) -> usize {
    let mut keyed: Vec<([u32; 3], u32)> = mesh
        .faces
        .par_iter()
        .enumerate()
        .map(|(i, f)| {
            let mut k = *f;
            k.sort_unstable();
            (k, i as u32)
        })
        .collect();
    keyed.par_sort_unstable();
    let mut keep = vec![true; mesh.faces.len()];
    for w in keyed.windows(2) {
        if w[0].0 == w[1].0 {
            keep[w[1].1 as usize] = false;
        }
    }
    retain_faces(mesh, &keep)
}

/// Makes every edge manifold by keeping only the first two faces (in face order) on each edge
/// with more; returns how many faces were removed.
pub fn remove_non_manifold_faces(mesh: &mut TriMesh) -> usize {
    let hs = sorted_half_edges(&mesh.faces);
    let mut keep = vec![true; mesh.faces.len()];
    for g in edge_groups(&hs) {
        // Groups are sorted by face, so the first two are the earliest faces.
        for h in g.iter().skip(2) {
            keep[h.face as usize] = false;
        }
    }
    retain_faces(mesh, &keep)
}

/// Connected components over shared edges: a component id per face.
pub fn face_components(faces: &[[u32; 3]]) -> (usize, Vec<u32>) {
    let hs = sorted_half_edges(faces);
    let mut parent: Vec<u32> = (0..faces.len() as u32).collect();
    fn find(p: &mut [u32], mut x: u32) -> u32 {
        while p[x as usize] != x {
            p[x as usize] = p[p[x as usize] as usize];
            x = p[x as usize];
        }
        x
    }
    for g in edge_groups(&hs) {
        for h in &g[1..] {
            let (a, b) = (find(&mut parent, g[0].face), find(&mut parent, h.face));
            if a != b {
                parent[a.max(b) as usize] = a.min(b);
            }
        }
    }
    let mut ids = vec![u32::MAX; faces.len()];
    let mut count = 0usize;
    let mut comp = vec![0u32; faces.len()];
    for f in 0..faces.len() {
        let r = find(&mut parent, f as u32) as usize;
        if ids[r] == u32::MAX {
            ids[r] = count as u32;
            count += 1;
        }
        comp[f] = ids[r];
    }
    (count, comp)
}

/// Removes connected components whose total area is below `min_area`.
pub fn remove_small_connected_components(mesh: &mut TriMesh, min_area: f32) -> usize {
    let (count, comp) = face_components(&mesh.faces);
    let mut area = vec![0.0f64; count];
    for (f, &c) in mesh.faces.iter().zip(&comp) {
        let [a, b, c2] = f.map(|i| mesh.vertices[i as usize]);
        area[c as usize] += tri_area(a, b, c2) as f64;
    }
    let keep: Vec<bool> = comp
        .iter()
        .map(|&c| area[c as usize] >= min_area as f64)
        .collect();
    retain_faces(mesh, &keep)
}

/// Flips faces so that neighbours across every manifold edge traverse it in opposite
/// directions (breadth-first from the first face of each component); returns faces flipped.
pub fn unify_face_orientations(mesh: &mut TriMesh) -> usize {
    let hs = sorted_half_edges(&mesh.faces);
    // Neighbour across each manifold edge, with whether the two use it in the same direction.
    let mut adj: Vec<Vec<(u32, bool)>> = vec![Vec::new(); mesh.faces.len()];
    for g in edge_groups(&hs) {
        if let [h0, h1] = g {
            let same = half_edge_ends(&mesh.faces, h0) == half_edge_ends(&mesh.faces, h1);
            adj[h0.face as usize].push((h1.face, same));
            adj[h1.face as usize].push((h0.face, same));
        }
    }
    let n = mesh.faces.len();
    let mut flip = vec![false; n];
    let mut seen = vec![false; n];
    let mut queue = std::collections::VecDeque::new();
    for start in 0..n {
        if seen[start] {
            continue;
        }
        seen[start] = true;
        queue.push_back(start as u32);
        while let Some(f) = queue.pop_front() {
            for &(g, same) in &adj[f as usize] {
                if !seen[g as usize] {
                    seen[g as usize] = true;
                    // Consistent when the directions differ after both flips are applied.
                    flip[g as usize] = flip[f as usize] ^ same;
                    queue.push_back(g);
                }
            }
        }
    }
    let mut flipped = 0;
    for (f, fl) in mesh.faces.iter_mut().zip(&flip) {
        if *fl {
            f.swap(1, 2);
            flipped += 1;
        }
    }
    flipped
}

/// What [`cleanup`] removed or changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleanupReport {
    pub degenerate: usize,
    pub duplicate: usize,
    pub non_manifold: usize,
    pub small_components: usize,
    pub flipped: usize,
    pub unreferenced_vertices: usize,
}

/// The full cleanup of the non-remesh path.
pub fn cleanup(
    mesh: &mut TriMesh,
    min_component_area: f32,
    unify_orientation: bool,
) -> Result<CleanupReport, MeshError> {
    check_faces(&mesh.faces, mesh.vertices.len())?;
    let mut r = CleanupReport {
        degenerate: remove_degenerate_faces(mesh),
        duplicate: remove_duplicate_faces(mesh),
        non_manifold: remove_non_manifold_faces(mesh),
        ..Default::default()
    };
    r.small_components = remove_small_connected_components(mesh, min_component_area);
    if unify_orientation {
        r.flipped = unify_face_orientations(mesh);
    }
    let before = mesh.vertices.len();
    compact_vertices(&mut mesh.vertices, &mut mesh.faces);
    r.unreferenced_vertices = before - mesh.vertices.len();
    Ok(r)
}

/// Area-weighted vertex normals (sum of unnormalised face normals, then normalised), as
/// CuMesh `compute_vertex_normals`. Vertices no face uses get `(0, 0, 1)`.
pub fn vertex_normals(vertices: &[[f32; 3]], faces: &[[u32; 3]]) -> Vec<[f32; 3]> {
    let mut acc = vec![[0.0f32; 3]; vertices.len()];
    for f in faces {
        let [a, b, c] = f.map(|i| vertices[i as usize]);
        let n = tri_normal(a, b, c);
        for &i in f {
            for k in 0..3 {
                acc[i as usize][k] += n[k];
            }
        }
    }
    acc.into_par_iter()
        .map(|n| {
            let l = norm(n);
            if l > 0.0 && l.is_finite() {
                n.map(|x| x / l)
            } else {
                [0.0, 0.0, 1.0]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::edge_stats;

    #[test]
    fn removes_bad_faces_and_orients() {
        let vertices = vec![
            [0., 0., 0.],
            [1., 0., 0.],
            [0., 1., 0.],
            [1., 1., 0.],
            [2., 2., 0.],
            [5., 5., 5.],
        ];
        let faces = vec![
            [0, 1, 2],
            [2, 1, 0], // duplicate, reversed
            [2, 3, 1], // same direction on edge 1-2 as face 0: must be flipped
            [0, 0, 1], // repeated index
            [0, 3, 4], // collinear: zero area
            [1, 2, 5], // third face on edge 1-2: non-manifold
        ];
        let mut m = TriMesh { vertices, faces };
        let r = cleanup(&mut m, 0.0, true).unwrap();
        assert_eq!(
            (r.degenerate, r.duplicate, r.non_manifold),
            (2, 1, 1),
            "{r:?}"
        );
        assert_eq!(m.faces.len(), 2);
        assert_eq!(r.flipped, 1);
        assert_eq!(edge_stats(&m.faces), (4, 1, 0));
        assert!(m.faces.iter().all(|&f| !is_degenerate(&m.vertices, f)));
    }
}
