//! Chart segmentation for the UV unwrap: charts grown face by face from seeds, flattest
//! neighbour first, while each face joins within a normal cone of the chart's average normal
//! (and of its seed's) and the chart stays within an area budget. Bounded, nearly height-field charts are what the
//! direct LSCM (`lscm`) flattens without flips and with little area distortion.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::v3::{V3, cross, dot, len, scale, sub};
use crate::topology::{edge_groups, sorted_half_edges};

const NONE: u32 = u32::MAX;

/// The charts of `faces`: each a list of face indices, every face in exactly one chart.
/// Seeds are taken in face order (callers hand in spatially sorted faces, so neighbouring
/// charts are grown one after another). Faces only join across edges shared by exactly two
/// faces, so each chart is edge-connected and manifold.
pub fn segment(
    positions: &[[f32; 3]],
    faces: &[[u32; 3]],
    max_angle_deg: f32,
    max_area: f64,
) -> Vec<Vec<u32>> {
    let nf = faces.len();
    let (normals, areas): (Vec<[f64; 3]>, Vec<f64>) = faces
        .iter()
        .map(|f| {
            let [a, b, c] = f.map(|i| positions[i as usize].map(f64::from));
            let n = cross(sub(b, a), sub(c, a));
            let l = len(n);
            if l > 0.0 {
                (scale(n, 1.0 / l), 0.5 * l)
            } else {
                ([0.0; 3], 0.0)
            }
        })
        .unzip();
    let adjacency = face_adjacency(faces);
    let cos_max = (max_angle_deg as f64).to_radians().cos();

    let mut chart_of = vec![NONE; nf];
    let mut charts = Vec::new();
    let mut heap: BinaryHeap<Reverse<(u64, u32)>> = BinaryHeap::new();
    for seed in 0..nf {
        if chart_of[seed] != NONE {
            continue;
        }
        let c = charts.len() as u32;
        let mut members = vec![seed as u32];
        chart_of[seed] = c;
        let mut sum = normals[seed].map(|x| x * areas[seed]);
        let mut axis = normals[seed];
        let mut area = areas[seed];
        heap.clear();
        // Degenerate faces (no normal) stay single-face charts.
        let grows = areas[seed] > 0.0;
        let push = |heap: &mut BinaryHeap<_>, f: u32, axis: [f64; 3], chart_of: &[u32]| {
            for &g in &adjacency[f as usize] {
                if g != NONE && chart_of[g as usize] == NONE && areas[g as usize] > 0.0 {
                    // Deviation 1 − cos ≥ 0: its bits order like the value.
                    let dev = (1.0 - dot(normals[g as usize], axis)).max(0.0);
                    heap.push(Reverse((dev.to_bits(), g)));
                }
            }
        };
        if grows {
            push(&mut heap, seed as u32, axis, &chart_of);
        }
        while let Some(Reverse((_, f))) = heap.pop() {
            let fu = f as usize;
            if chart_of[fu] != NONE || area + areas[fu] > max_area {
                continue;
            }
            // Within the cone of the average normal and of the seed's: the average moves as
            // the chart grows, the seed's does not, so no member strays far from either
            // (checking every member against the moving average would be quadratic).
            let n = normals[fu];
            if dot(n, axis) < cos_max {
                continue;
            }
            sum = std::array::from_fn(|k| sum[k] + n[k] * areas[fu]);
            axis = scale(sum, 1.0 / len(sum));
            chart_of[fu] = c;
            members.push(f);
            area += areas[fu];
            push(&mut heap, f, axis, &chart_of);
        }
        charts.push(members);
    }
    merge_small(
        charts, &chart_of, &adjacency, &normals, &areas, cos_max, max_area,
    )
}

/// Charts under this fraction of the area budget are merged into a neighbour.
const SMALL_CHART_FRACTION: f64 = 0.1;
/// A merge may take a chart this far over the area budget (the budget bounds solve cost,
/// which slivers barely add to).
const MERGED_AREA_LIMIT: f64 = 1.25;

/// Greedy growth leaves slivers between full charts (faces every chart had turned away by
/// the time they were reached); each is many more charts to validate, pack and pad. Merges
/// every chart under [`SMALL_CHART_FRACTION`] of the budget, smallest first, into the
/// neighbour it shares the most edges with, when their average normals are within the cone
/// and the merged area within [`MERGED_AREA_LIMIT`] of the budget.
fn merge_small(
    charts: Vec<Vec<u32>>,
    chart_of: &[u32],
    adjacency: &[[u32; 3]],
    normals: &[[f64; 3]],
    areas: &[f64],
    cos_max: f64,
    max_area: f64,
) -> Vec<Vec<u32>> {
    let n = charts.len();
    let mut sum: Vec<[f64; 3]> = vec![[0.0; 3]; n];
    let mut area = vec![0.0f64; n];
    for (c, members) in charts.iter().enumerate() {
        for &f in members {
            let (nf, af) = (normals[f as usize], areas[f as usize]);
            sum[c] = std::array::from_fn(|k| sum[c][k] + nf[k] * af);
            area[c] += af;
        }
    }
    // Union-find over charts: `parent[c] == c` for a chart still standing.
    let mut parent: Vec<u32> = (0..n as u32).collect();
    fn root(parent: &mut [u32], mut c: u32) -> u32 {
        while parent[c as usize] != c {
            parent[c as usize] = parent[parent[c as usize] as usize];
            c = parent[c as usize];
        }
        c
    }
    let unit = |v: V3| {
        let l = len(v);
        if l > 0.0 { scale(v, 1.0 / l) } else { [0.0; 3] }
    };
    let mut small: Vec<u32> = (0..n as u32)
        .filter(|&c| area[c as usize] > 0.0 && area[c as usize] < SMALL_CHART_FRACTION * max_area)
        .collect();
    small.sort_by(|&a, &b| {
        area[a as usize]
            .total_cmp(&area[b as usize])
            .then(a.cmp(&b))
    });
    let mut shared: Vec<(u32, u32)> = Vec::new();
    for c in small {
        shared.clear();
        for &f in &charts[c as usize] {
            for &g in &adjacency[f as usize] {
                if g != NONE {
                    let d = root(&mut parent, chart_of[g as usize]);
                    if d != c {
                        shared.push((d, 1));
                    }
                }
            }
        }
        shared.sort_unstable();
        let axis = unit(sum[c as usize]);
        let best = shared
            .chunk_by(|a, b| a.0 == b.0)
            .map(|run| (run.len(), run[0].0))
            .filter(|&(_, d)| {
                dot(axis, unit(sum[d as usize])) >= cos_max
                    && area[d as usize] + area[c as usize] <= MERGED_AREA_LIMIT * max_area
            })
            .max();
        if let Some((_, d)) = best {
            parent[c as usize] = d;
            let sc = sum[c as usize];
            sum[d as usize] = std::array::from_fn(|k| sum[d as usize][k] + sc[k]);
            area[d as usize] += area[c as usize];
        }
    }
    // Members of merged charts join their root, in chart order (deterministic).
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (c, members) in charts.into_iter().enumerate() {
        let r = root(&mut parent, c as u32) as usize;
        if out[r].is_empty() {
            out[r] = members;
        } else {
            out[r].extend(members);
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

/// For each face, the face across each of its edges when exactly two faces share that edge.
fn face_adjacency(faces: &[[u32; 3]]) -> Vec<[u32; 3]> {
    let hs = sorted_half_edges(faces);
    let mut adj = vec![[NONE; 3]; faces.len()];
    for g in edge_groups(&hs) {
        if let [a, b] = g
            && a.face != b.face
        {
            adj[a.face as usize][a.corner as usize] = b.face;
            adj[b.face as usize][b.corner as usize] = a.face;
        }
    }
    adj
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A closed octahedron-like sphere: every face in one chart, every chart within the cone
    /// and under the area budget (single faces excepted) and edge-connected.
    #[test]
    fn charts_partition_faces_within_cone_and_budget() {
        // A UV sphere.
        let (nu, nv) = (24u32, 12u32);
        let mut positions = vec![[0.0, 0.0, 1.0]];
        for j in 1..nv {
            let th = j as f32 / nv as f32 * std::f32::consts::PI;
            for i in 0..nu {
                let ph = i as f32 / nu as f32 * std::f32::consts::TAU;
                positions.push([th.sin() * ph.cos(), th.sin() * ph.sin(), th.cos()]);
            }
        }
        positions.push([0.0, 0.0, -1.0]);
        let ring = |j: u32, i: u32| 1 + (j - 1) * nu + (i % nu);
        let south = positions.len() as u32 - 1;
        let mut faces = Vec::new();
        for i in 0..nu {
            faces.push([0, ring(1, i), ring(1, i + 1)]);
            faces.push([south, ring(nv - 1, i + 1), ring(nv - 1, i)]);
        }
        for j in 1..nv - 1 {
            for i in 0..nu {
                faces.push([ring(j, i), ring(j + 1, i), ring(j + 1, i + 1)]);
                faces.push([ring(j, i), ring(j + 1, i + 1), ring(j, i + 1)]);
            }
        }
        let total: f64 = faces
            .iter()
            .map(|f| {
                let [a, b, c] = f.map(|i| positions[i as usize]);
                crate::geom::tri_area(a, b, c) as f64
            })
            .sum();
        let charts = segment(&positions, &faces, 60.0, total * 0.05);
        let mut seen = vec![0; faces.len()];
        for ch in &charts {
            for &f in ch {
                seen[f as usize] += 1;
            }
            let area: f64 = ch
                .iter()
                .map(|&f| {
                    let [a, b, c] = faces[f as usize].map(|i| positions[i as usize]);
                    crate::geom::tri_area(a, b, c) as f64
                })
                .sum();
            assert!(ch.len() == 1 || area <= MERGED_AREA_LIMIT * total * 0.05 + 1e-9);
        }
        assert!(seen.iter().all(|&s| s == 1));
        assert!(
            charts.len() >= 20 && charts.len() < faces.len() / 4,
            "{}",
            charts.len()
        );
    }
}
