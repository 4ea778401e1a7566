//! One collapse step on the CPU. `gpu/collapse.cu` is this file kernel by kernel: the same
//! adjacency order, edge order, float operations (no contraction) and selection rule.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use rayon::prelude::*;

use super::{CollapseParams, CollapseStepper};
use crate::error::MeshError;
use crate::geom::{cross, dot, sub};
use crate::types::TriMesh;

/// Vertices per parallel task where the work is per vertex.
const VERTEX_CHUNK: usize = 8192;

pub(super) struct CpuStepper {
    vertices: Vec<[f32; 3]>,
    faces: Vec<[u32; 3]>,
    params: CollapseParams,
}

impl CpuStepper {
    pub(super) fn new(mesh: &TriMesh, params: &CollapseParams) -> CpuStepper {
        CpuStepper {
            vertices: mesh.vertices.clone(),
            faces: mesh.faces.clone(),
            params: *params,
        }
    }
}

/// Each vertex's faces, in ascending face order (CSR).
pub(super) struct VertexFaces {
    offsets: Vec<u32>,
    ids: Vec<u32>,
}

impl VertexFaces {
    pub(super) fn build(vertex_count: usize, faces: &[[u32; 3]]) -> VertexFaces {
        let offsets = crate::topology::corner_offsets(vertex_count, faces);
        let total = offsets[vertex_count];
        let cursor: Vec<AtomicU32> = offsets[..vertex_count]
            .iter()
            .map(|&o| AtomicU32::new(o))
            .collect();
        let slots: Vec<AtomicU32> = (0..total).map(|_| AtomicU32::new(0)).collect();
        faces.par_iter().enumerate().for_each(|(i, f)| {
            for &v in f {
                let at = cursor[v as usize].fetch_add(1, Relaxed);
                slots[at as usize].store(i as u32, Relaxed);
            }
        });
        let mut ids: Vec<u32> = slots.into_iter().map(AtomicU32::into_inner).collect();
        // The fill order above depends on the threads; sorting each list makes it the face
        // order (the CUDA step sorts the same way).
        for_each_vertex_chunk(&offsets, &mut ids, |lists, offsets| {
            for v in 0..offsets.len() - 1 {
                let (s, e) = (offsets[v] - offsets[0], offsets[v + 1] - offsets[0]);
                lists[s as usize..e as usize].sort_unstable();
            }
        });
        VertexFaces { offsets, ids }
    }

    pub(super) fn of(&self, v: u32) -> &[u32] {
        &self.ids[self.offsets[v as usize] as usize..self.offsets[v as usize + 1] as usize]
    }
}

/// Runs `f(a chunk's slice of ids, its offsets (len + 1))` over chunks of `VERTEX_CHUNK`
/// vertices in parallel.
fn for_each_vertex_chunk(offsets: &[u32], ids: &mut [u32], f: impl Fn(&mut [u32], &[u32]) + Sync) {
    let n = offsets.len() - 1;
    let mut parts = Vec::new();
    let mut rest = ids;
    for first in (0..n).step_by(VERTEX_CHUNK) {
        let last = (first + VERTEX_CHUNK).min(n);
        let (head, tail) = rest.split_at_mut((offsets[last] - offsets[first]) as usize);
        parts.push((head, &offsets[first..=last]));
        rest = tail;
    }
    parts
        .into_par_iter()
        .for_each(|(slice, offs)| f(slice, offs));
}

/// The other two vertices of face `f` that are not `v`, in face order.
#[inline]
fn others(f: [u32; 3], v: u32) -> [u32; 2] {
    if f[0] == v {
        [f[1], f[2]]
    } else if f[1] == v {
        [f[0], f[2]]
    } else {
        [f[0], f[1]]
    }
}

/// `v`'s distinct neighbours in order of first appearance over its faces (ascending), each
/// with the number of its faces that contain it.
fn neighbours(v: u32, adj: &VertexFaces, faces: &[[u32; 3]], out: &mut Vec<(u32, u32)>) {
    out.clear();
    for &f in adj.of(v) {
        for w in others(faces[f as usize], v) {
            match out.iter_mut().find(|(x, _)| *x == w) {
                Some((_, n)) => *n += 1,
                None => out.push((w, 1)),
            }
        }
    }
}

/// The edges `(v, w)`, `v < w`, grouped by `v` in vertex order, each group in `neighbours`
/// order; and whether each vertex is on a boundary (an edge with exactly one face).
pub(super) fn edges(adj: &VertexFaces, faces: &[[u32; 3]]) -> (Vec<[u32; 2]>, Vec<bool>) {
    let n = adj.offsets.len() - 1;
    let chunks: Vec<(Vec<[u32; 2]>, Vec<bool>)> = (0..n.div_ceil(VERTEX_CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut nb = Vec::new();
            let mut edges = Vec::new();
            let mut boundary = Vec::new();
            for v in (c * VERTEX_CHUNK) as u32..((c + 1) * VERTEX_CHUNK).min(n) as u32 {
                neighbours(v, adj, faces, &mut nb);
                boundary.push(nb.iter().any(|&(_, m)| m == 1));
                edges.extend(nb.iter().filter(|&&(w, _)| w > v).map(|&(w, _)| [v, w]));
            }
            (edges, boundary)
        })
        .collect();
    let mut edges = Vec::with_capacity(chunks.iter().map(|c| c.0.len()).sum());
    let mut boundary = Vec::with_capacity(n);
    for (e, b) in chunks {
        edges.extend(e);
        boundary.extend(b);
    }
    (edges, boundary)
}

/// Where edge `(a, b)` collapses to: the midpoint, or the boundary endpoint when exactly one
/// of them is on the boundary.
#[inline]
pub(super) fn collapsed_position(pa: [f32; 3], pb: [f32; 3], ba: bool, bb: bool) -> [f32; 3] {
    let wa: f32 = match (ba, bb) {
        (true, false) => 1.0,
        (false, true) => 0.0,
        _ => 0.5,
    };
    let wb = 1.0 - wa;
    [
        pa[0] * wa + pb[0] * wb,
        pa[1] * wa + pb[1] * wb,
        pa[2] * wa + pb[2] * wb,
    ]
}

/// The squared distance from `p` to the plane of face `f` (0 for a degenerate face).
#[inline]
fn plane_distance2(verts: &[[f32; 3]], f: [u32; 3], p: [f32; 3]) -> f32 {
    let a = verts[f[0] as usize];
    let n = cross(sub(verts[f[1] as usize], a), sub(verts[f[2] as usize], a));
    let len = dot(n, n).sqrt();
    if len == 0.0 {
        return 0.0;
    }
    let d = dot(n, sub(p, a)) / len;
    d * d
}

/// The reference's flip test and triangle-shape term for one face around the kept vertex
/// `keep` when it moves to `p` (faces that also hold `gone` disappear and are skipped).
/// `None`: the face would flip.
#[inline]
fn shape_term(
    verts: &[[f32; 3]],
    f: [u32; 3],
    keep: u32,
    gone: u32,
    p: [f32; 3],
) -> Option<Option<f32>> {
    if f.contains(&gone) {
        return Some(None);
    }
    let [a, b, c] = f.map(|v| verts[v as usize]);
    let [na, nb, nc] =
        [(f[0], a), (f[1], b), (f[2], c)].map(|(v, x)| if v == keep { p } else { x });
    let old_normal = cross(sub(b, a), sub(c, a));
    let e1 = sub(nb, na);
    let e2 = sub(nc, na);
    let new_normal = cross(e1, e2);
    if dot(old_normal, new_normal) < 0.0 {
        return None;
    }
    let new_area = 0.5 * dot(new_normal, new_normal).sqrt();
    let e0 = sub(nc, nb);
    let denom = (dot(e0, e0) + dot(e1, e1) + dot(e2, e2)).max(1e-12);
    let shape = 4.0f32 * 3.0f32.sqrt() * new_area / denom;
    Some(Some(1.0 - shape.clamp(0.0, 1.0)))
}

/// Whether collapsing `(a, b)` keeps the mesh manifold: their common neighbours are exactly
/// the far corners of the faces they share (the link condition), two boundary vertices only
/// merge along a boundary edge, and no surviving face of `b` becomes a copy of one of `a`'s
/// (what the link condition misses on a tetrahedron).
fn keeps_manifold(
    a: u32,
    b: u32,
    adj: &VertexFaces,
    faces: &[[u32; 3]],
    boundary: &[bool],
) -> bool {
    let shared = adj
        .of(a)
        .iter()
        .filter(|&&f| faces[f as usize].contains(&b))
        .count();
    if shared == 0 || shared > 2 || (shared == 2 && boundary[a as usize] && boundary[b as usize]) {
        return false;
    }
    let touches_b = |x: u32| adj.of(b).iter().any(|&g| faces[g as usize].contains(&x));
    let mut common = 0;
    let fa = adj.of(a);
    for (i, &f) in fa.iter().enumerate() {
        for (j, x) in others(faces[f as usize], a).into_iter().enumerate() {
            let seen_before = fa[..i].iter().any(|&g| faces[g as usize].contains(&x))
                || (j == 1 && others(faces[f as usize], a)[0] == x);
            if x != b && !seen_before && touches_b(x) {
                common += 1;
            }
        }
    }
    if common != shared {
        return false;
    }
    let sorted = |mut f: [u32; 3]| {
        f.sort_unstable();
        f
    };
    adj.of(b).iter().all(|&f| {
        let fb = faces[f as usize];
        fb.contains(&a) || {
            let moved = sorted(fb.map(|v| if v == b { a } else { v }));
            adj.of(a)
                .iter()
                .all(|&g| sorted(faces[g as usize]) != moved)
        }
    })
}

/// The reference's collapse cost of edge `(a, b)` (with our plane error and manifold veto;
/// see the module notes); `f32::INFINITY` when vetoed. Over `threshold` the value is only
/// some cost over it (the edge is no candidate either way): the sums stop early and the
/// manifold test is skipped.
#[allow(clippy::too_many_arguments)]
pub(super) fn edge_cost(
    a: u32,
    b: u32,
    verts: &[[f32; 3]],
    faces: &[[u32; 3]],
    adj: &VertexFaces,
    boundary: &[bool],
    params: &CollapseParams,
    threshold: f32,
) -> f32 {
    let (pa, pb) = (verts[a as usize], verts[b as usize]);
    let p = collapsed_position(pa, pb, boundary[a as usize], boundary[b as usize]);
    // Every term is ≥ 0, so once a partial sum is over the threshold the edge is no
    // candidate, whatever the rest adds: return early (only candidates' costs are used).
    let edge = sub(pb, pa);
    let len2 = dot(edge, edge);
    let length_cost = params.lambda_edge_length * len2;
    if !(length_cost <= threshold) {
        return length_cost;
    }
    let mut plane = 0.0f32;
    for &f in adj.of(a).iter().chain(adj.of(b)) {
        plane += plane_distance2(verts, faces[f as usize], p);
        if !(plane + length_cost <= threshold) {
            return plane + length_cost;
        }
    }
    let mut cost = plane + length_cost;
    let mut skinny = 0.0f32;
    let mut counted = 0u32;
    for (keep, gone) in [(a, b), (b, a)] {
        for &f in adj.of(keep) {
            match shape_term(verts, faces[f as usize], keep, gone, p) {
                None => return f32::INFINITY,
                Some(Some(t)) => {
                    skinny += t;
                    counted += 1;
                }
                Some(None) => {}
            }
        }
    }
    if counted > 0 {
        skinny /= counted as f32;
    }
    cost += params.lambda_skinny * skinny * len2;
    if cost.is_nan() || (cost <= threshold && !keeps_manifold(a, b, adj, faces, boundary)) {
        return f32::INFINITY;
    }
    cost
}

/// `(cost bits, edge id)`: costs are ≥ 0, so the u64 order is the cost order, ties by id.
#[inline]
pub(super) fn key(cost: f32, edge: usize) -> u64 {
    ((cost.to_bits() as u64) << 32) | edge as u64
}

impl CollapseStepper for CpuStepper {
    fn faces(&self) -> usize {
        self.faces.len()
    }

    fn step(&mut self, threshold: f32) -> Result<usize, MeshError> {
        let (verts, faces) = (&self.vertices, &self.faces);
        let adj = VertexFaces::build(verts.len(), faces);
        let (edges, boundary) = edges(&adj, faces);
        let costs: Vec<f32> = edges
            .par_iter()
            .map(|&[a, b]| edge_cost(a, b, verts, faces, &adj, &boundary, &self.params, threshold))
            .collect();
        // Edges over the threshold cannot win against one under it, so only those propagate.
        let face_keys: Vec<AtomicU64> =
            (0..faces.len()).map(|_| AtomicU64::new(u64::MAX)).collect();
        let candidate = |e: usize| costs[e] <= threshold;
        (0..edges.len())
            .into_par_iter()
            .filter(|&e| candidate(e))
            .for_each(|e| {
                let k = key(costs[e], e);
                for &f in adj.of(edges[e][0]).iter().chain(adj.of(edges[e][1])) {
                    face_keys[f as usize].fetch_min(k, Relaxed);
                }
            });
        let chosen: Vec<usize> = (0..edges.len())
            .into_par_iter()
            .filter(|&e| {
                candidate(e) && {
                    let k = key(costs[e], e);
                    adj.of(edges[e][0])
                        .iter()
                        .chain(adj.of(edges[e][1]))
                        .all(|&f| face_keys[f as usize].load(Relaxed) == k)
                }
            })
            .collect();
        // The chosen collapses touch disjoint faces; applied in edge order.
        let mut vertex_kept = vec![true; verts.len()];
        let mut face_kept = vec![true; faces.len()];
        let verts = &mut self.vertices;
        let faces = &mut self.faces;
        for e in chosen {
            let [a, b] = edges[e];
            verts[a as usize] = collapsed_position(
                verts[a as usize],
                verts[b as usize],
                boundary[a as usize],
                boundary[b as usize],
            );
            vertex_kept[b as usize] = false;
            for &f in adj.of(a) {
                if faces[f as usize].contains(&b) {
                    face_kept[f as usize] = false;
                }
            }
            for &f in adj.of(b) {
                for v in faces[f as usize].iter_mut() {
                    if *v == b {
                        *v = a;
                    }
                }
            }
        }
        let mut new_id = Vec::with_capacity(verts.len());
        let mut next = 0u32;
        for &k in &vertex_kept {
            new_id.push(next);
            next += k as u32;
        }
        *verts = verts
            .par_iter()
            .zip(&vertex_kept)
            .filter(|(_, k)| **k)
            .map(|(v, _)| *v)
            .collect();
        *faces = faces
            .par_iter()
            .zip(&face_kept)
            .filter(|(_, k)| **k)
            .map(|(f, _)| f.map(|v| new_id[v as usize]))
            .collect();
        Ok(faces.len())
    }

    fn into_mesh(self) -> Result<TriMesh, MeshError> {
        Ok(TriMesh {
            vertices: self.vertices,
            faces: self.faces,
        })
    }
}
