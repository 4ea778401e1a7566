//! Edge-level connectivity shared by hole filling, cleanup and the watertightness checks:
//! every face corner's edge, sorted by its undirected key so equal edges are adjacent.

use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::Relaxed;

use rayon::prelude::*;

/// One face's edge `corner → corner+1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HalfEdge {
    /// `min(a, b) << 32 | max(a, b)`: equal for both directions.
    pub key: u64,
    pub face: u32,
    /// 0, 1, 2: the edge from corner `corner` to corner `(corner + 1) % 3`.
    pub corner: u8,
}

#[inline]
pub fn edge_key(a: u32, b: u32) -> u64 {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    ((lo as u64) << 32) | hi as u64
}

#[inline]
pub fn key_vertices(key: u64) -> (u32, u32) {
    ((key >> 32) as u32, key as u32)
}

/// Directed endpoints of a half-edge in its face.
#[inline]
pub fn half_edge_ends(faces: &[[u32; 3]], h: &HalfEdge) -> (u32, u32) {
    let f = faces[h.face as usize];
    (f[h.corner as usize], f[(h.corner as usize + 1) % 3])
}

/// All half-edges sorted by (key, face, corner): groups of equal `key` are one undirected edge.
pub fn sorted_half_edges(faces: &[[u32; 3]]) -> Vec<HalfEdge> {
    let mut hs: Vec<HalfEdge> = faces
        .par_iter()
        .enumerate()
        .flat_map_iter(|(fi, f)| {
            (0..3u8).map(move |c| HalfEdge {
                key: edge_key(f[c as usize], f[(c as usize + 1) % 3]),
                face: fi as u32,
                corner: c,
            })
        })
        .collect();
    hs.par_sort_unstable_by_key(|h| (h.key, h.face, h.corner));
    hs
}

/// Ranges of equal keys in a sorted half-edge list.
pub fn edge_groups(hs: &[HalfEdge]) -> impl Iterator<Item = &[HalfEdge]> {
    hs.chunk_by(|a, b| a.key == b.key)
}

/// Where each vertex's face corners start in a per-vertex list of them (`vertex_count + 1`
/// offsets, the last one the total): counted in parallel, summed in order.
pub(crate) fn corner_offsets(vertex_count: usize, faces: &[[u32; 3]]) -> Vec<u32> {
    let counts: Vec<AtomicU32> = (0..vertex_count).map(|_| AtomicU32::new(0)).collect();
    faces.par_iter().for_each(|f| {
        for &v in f {
            counts[v as usize].fetch_add(1, Relaxed);
        }
    });
    let mut offsets = Vec::with_capacity(vertex_count + 1);
    let mut total = 0u32;
    offsets.push(0);
    for c in &counts {
        total += c.load(Relaxed);
        offsets.push(total);
    }
    offsets
}

/// The directed edges `(a, b)`, as their faces run, of every undirected edge exactly one face
/// uses, ordered by undirected key: the size-one groups of [`edge_groups`], without sorting all
/// 3F half-edges. Each vertex lists the targets of its outgoing half-edges; a half-edge a→b is
/// alone when neither a's list (other copies of a→b) nor b's (b→a) has another use of it.
pub fn boundary_edges(faces: &[[u32; 3]]) -> Vec<(u32, u32)> {
    let vertex_count = faces
        .par_iter()
        .map(|f| f.iter().max().map_or(0, |&m| m as usize + 1))
        .max()
        .unwrap_or(0);
    let first = corner_offsets(vertex_count, faces);
    let total = first[vertex_count];
    // Fill cursors; the order inside a list does not matter (only counts).
    let degree: Vec<AtomicU32> = first[..vertex_count]
        .iter()
        .map(|&f| AtomicU32::new(f))
        .collect();
    let targets: Vec<AtomicU32> = (0..total).map(|_| AtomicU32::new(0)).collect();
    let ends = |f: &[u32; 3], c: usize| (f[c], f[(c + 1) % 3]);
    faces.par_iter().for_each(|f| {
        for c in 0..3 {
            let (a, b) = ends(f, c);
            targets[degree[a as usize].fetch_add(1, Relaxed) as usize].store(b, Relaxed);
        }
    });
    let uses = |from: u32, to: u32| {
        let (lo, hi) = (
            first[from as usize] as usize,
            first[from as usize + 1] as usize,
        );
        targets[lo..hi]
            .iter()
            .filter(|t| t.load(Relaxed) == to)
            .count()
    };
    let mut boundary: Vec<(u32, u32)> = faces
        .par_iter()
        .flat_map_iter(|f| (0..3).map(move |c| ends(f, c)))
        .filter(|&(a, b)| uses(a, b) + uses(b, a) == 1)
        .collect();
    boundary.par_sort_unstable_by_key(|&(a, b)| edge_key(a, b));
    boundary
}

/// Counts: (boundary edges with 1 face, manifold edges with 2, non-manifold with more).
pub fn edge_stats(faces: &[[u32; 3]]) -> (usize, usize, usize) {
    let hs = sorted_half_edges(faces);
    let mut s = (0, 0, 0);
    for g in edge_groups(&hs) {
        match g.len() {
            1 => s.0 += 1,
            2 => s.1 += 1,
            _ => s.2 += 1,
        }
    }
    s
}

/// True when the mesh is closed with a consistent orientation: for every directed edge a→b
/// there are exactly as many faces using b→a (each undirected edge is used an even number of
/// times, half in each direction). This is what "watertight" means for the remesher's output.
pub fn is_closed_and_oriented(faces: &[[u32; 3]]) -> bool {
    let hs = sorted_half_edges(faces);
    edge_groups(&hs).all(|g| {
        let (lo, _) = key_vertices(g[0].key);
        let forward = g
            .iter()
            .filter(|h| half_edge_ends(faces, h).0 == lo)
            .count();
        2 * forward == g.len()
    })
}

/// Drops vertices no face uses, remapping faces; returns the old index of each kept vertex.
pub fn compact_vertices(vertices: &mut Vec<[f32; 3]>, faces: &mut [[u32; 3]]) -> Vec<u32> {
    let mut remap = vec![u32::MAX; vertices.len()];
    let mut kept = Vec::new();
    for f in faces.iter_mut() {
        for v in f.iter_mut() {
            let r = &mut remap[*v as usize];
            if *r == u32::MAX {
                *r = kept.len() as u32;
                kept.push(*v);
            }
            *v = *r;
        }
    }
    *vertices = kept.iter().map(|&i| vertices[i as usize]).collect();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size-one edge groups of the sorted half-edges, directed as in their faces.
    fn boundary_by_sorting(faces: &[[u32; 3]]) -> Vec<(u32, u32)> {
        let hs = sorted_half_edges(faces);
        edge_groups(&hs)
            .filter(|g| g.len() == 1)
            .map(|g| half_edge_ends(faces, &g[0]))
            .collect()
    }

    #[test]
    fn boundary_edges_match_the_sorted_groups() {
        // The open cube of the hole-filling tests (vertices 0–7), a fin on one of its edges
        // (three faces on that edge), a face and its duplicate (each edge used twice in the
        // same direction) and two triangles sharing one edge; vertices 15–20 are unused.
        let mut faces = crate::holes::tests::open_cube(1.0).faces;
        faces.extend([
            [0, 1, 8],
            [9, 10, 11],
            [9, 10, 11],
            [12, 13, 14],
            [21, 14, 13],
        ]);
        let expected = boundary_by_sorting(&faces);
        assert!(expected.len() > 6, "the fixture has boundary edges");
        assert_eq!(boundary_edges(&faces), expected);
        assert!(boundary_edges(&[]).is_empty());
    }
}
