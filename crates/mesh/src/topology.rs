//! Edge-level connectivity shared by hole filling, cleanup and the watertightness checks:
//! every face corner's edge, sorted by its undirected key so equal edges are adjacent.

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
