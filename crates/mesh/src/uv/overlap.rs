//! Whether a flattened chart overlaps itself, and how to cut one that does. With no triangle
//! flipped (checked first), a chart overlaps only where its triangles wrap around a vertex
//! more than once or its boundary crosses itself in UV space, so those are what is tested. uvunwrap still validates every chart it is given
//! (all triangle pairs); this test only has to catch overlaps before they reach its slow path.

use crate::topology::{edge_groups, half_edge_ends, sorted_half_edges};

/// Whether a flip-free chart layout overlaps itself: a vertex whose triangles wrap more than
/// once around it in UV (angle sum over 2π: two of its triangles overlap there; at boundary
/// vertices of saddle-shaped regions a conformal map does this), or boundary edges that cross.
pub fn overlaps(tris: &[[u32; 3]], uv: &[[f64; 2]]) -> bool {
    wraps_a_vertex(tris, uv) || boundary_crosses(tris, uv)
}

/// Whether the UV angles of the triangles around some vertex add up to more than 2π.
fn wraps_a_vertex(tris: &[[u32; 3]], uv: &[[f64; 2]]) -> bool {
    let mut sum = vec![0.0f64; uv.len()];
    for t in tris {
        for k in 0..3 {
            let [p, a, b] = [t[k], t[(k + 1) % 3], t[(k + 2) % 3]].map(|v| uv[v as usize]);
            let (u, w) = ([a[0] - p[0], a[1] - p[1]], [b[0] - p[0], b[1] - p[1]]);
            let cross = u[0] * w[1] - u[1] * w[0];
            let dot = u[0] * w[0] + u[1] * w[1];
            sum[t[k] as usize] += cross.abs().atan2(dot);
        }
    }
    sum.iter()
        .any(|&s| s > std::f64::consts::TAU * (1.0 + 1e-6))
}

/// Whether two boundary edges (edges used by one triangle of `tris`) cross in `uv`. Edges
/// that share a vertex are not compared; touching at a point is not a crossing.
fn boundary_crosses(tris: &[[u32; 3]], uv: &[[f64; 2]]) -> bool {
    let hs = sorted_half_edges(tris);
    let edges: Vec<[u32; 2]> = edge_groups(&hs)
        .filter(|g| g.len() == 1)
        .map(|g| {
            let (a, b) = half_edge_ends(tris, &g[0]);
            [a, b]
        })
        .collect();
    if edges.len() < 4 {
        return false;
    }
    let (mut lo, mut hi) = ([f64::MAX; 2], [f64::MIN; 2]);
    let mut total = 0.0;
    for e in &edges {
        let [a, b] = e.map(|v| uv[v as usize]);
        for k in 0..2 {
            lo[k] = lo[k].min(a[k]).min(b[k]);
            hi[k] = hi[k].max(a[k]).max(b[k]);
        }
        total += ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
    }
    // Cells about two mean edge lengths wide, at most 256 a side.
    let span = (hi[0] - lo[0]).max(hi[1] - lo[1]);
    let cell = (2.0 * total / edges.len() as f64).max(span / 256.0);
    if !(cell > 0.0) {
        return true; // a degenerate layout
    }
    let dims = [0, 1].map(|k| ((hi[k] - lo[k]) / cell) as usize + 1);
    let at = |p: f64, k: usize| (((p - lo[k]) / cell) as usize).min(dims[k] - 1);
    let mut cells: Vec<Vec<u32>> = vec![Vec::new(); dims[0] * dims[1]];
    for (i, e) in edges.iter().enumerate() {
        let [a, b] = e.map(|v| uv[v as usize]);
        let (x0, x1) = (at(a[0].min(b[0]), 0), at(a[0].max(b[0]), 0));
        let (y0, y1) = (at(a[1].min(b[1]), 1), at(a[1].max(b[1]), 1));
        for y in y0..=y1 {
            for x in x0..=x1 {
                cells[y * dims[0] + x].push(i as u32);
            }
        }
    }
    cells.iter().any(|c| {
        c.iter().enumerate().any(|(k, &i)| {
            c[k + 1..].iter().any(|&j| {
                let (e, f) = (edges[i as usize], edges[j as usize]);
                e[0] != f[0]
                    && e[0] != f[1]
                    && e[1] != f[0]
                    && e[1] != f[1]
                    && segments_cross(e.map(|v| uv[v as usize]), f.map(|v| uv[v as usize]))
            })
        })
    })
}

/// Proper crossing of segments `p` and `q` (each end strictly on either side of the other).
fn segments_cross(p: [[f64; 2]; 2], q: [[f64; 2]; 2]) -> bool {
    let orient = |a: [f64; 2], b: [f64; 2], c: [f64; 2]| {
        (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    };
    let (d1, d2) = (orient(q[0], q[1], p[0]), orient(q[0], q[1], p[1]));
    let (d3, d4) = (orient(p[0], p[1], q[0]), orient(p[0], p[1], q[1]));
    d1 * d2 < 0.0 && d3 * d4 < 0.0
}

/// Cuts a chart in two at the median of its face centroids along their widest axis, then
/// into edge-connected components (a half can come apart). `tris` in the chart's vertex
/// numbering; returns indices into `tris`.
pub fn split(tris: &[[u32; 3]], pos: &[[f32; 3]]) -> Vec<Vec<u32>> {
    let centroid = |t: &[u32; 3]| {
        let [a, b, c] = t.map(|i| pos[i as usize]);
        [0, 1, 2].map(|k| (a[k] + b[k] + c[k]) / 3.0)
    };
    let cs: Vec<[f32; 3]> = tris.iter().map(centroid).collect();
    let axis = (0..3)
        .max_by(|&a, &b| {
            let ext = |k: usize| {
                let (lo, hi) = cs.iter().fold((f32::MAX, f32::MIN), |(lo, hi), c| {
                    (lo.min(c[k]), hi.max(c[k]))
                });
                hi - lo
            };
            ext(a).total_cmp(&ext(b))
        })
        .unwrap_or(0);
    let mut order: Vec<u32> = (0..tris.len() as u32).collect();
    order.sort_by(|&a, &b| {
        cs[a as usize][axis]
            .total_cmp(&cs[b as usize][axis])
            .then(a.cmp(&b))
    });
    let (left, right) = order.split_at(order.len() / 2);
    [left, right]
        .into_iter()
        .flat_map(|half| components(tris, half))
        .collect()
}

/// The edge-connected components of the faces `subset` of `tris`, each in subset order.
fn components(tris: &[[u32; 3]], subset: &[u32]) -> Vec<Vec<u32>> {
    let faces: Vec<[u32; 3]> = subset.iter().map(|&f| tris[f as usize]).collect();
    let (count, comp) = crate::cleanup::face_components(&faces);
    let mut out = vec![Vec::new(); count];
    for (&f, &c) in subset.iter().zip(&comp) {
        out[c as usize].push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uv::grid_faces;

    #[test]
    fn a_flat_layout_does_not_cross_and_a_wound_one_does() {
        let n = 6u32;
        let tris = grid_faces(n, n);
        let flat: Vec<[f64; 2]> = (0..=n)
            .flat_map(|y| (0..=n).map(move |x| [x as f64, y as f64]))
            .collect();
        assert!(!overlaps(&tris, &flat));
        // A strip one cell wide wound 1.5 turns with a slowly growing radius: no triangle
        // flips, but the second lap runs across the first lap's end.
        let (len, strip) = (90u32, grid_faces(90, 1));
        let wound: Vec<[f64; 2]> = (0..=1u32)
            .flat_map(|y| {
                (0..=len).map(move |x| {
                    let ang = x as f64 / len as f64 * 3.0 * std::f64::consts::PI;
                    let r = 5.0 + 0.2 * y as f64 + 0.1 * ang / std::f64::consts::TAU;
                    [r * ang.cos(), r * ang.sin()]
                })
            })
            .collect();
        assert!(overlaps(&strip, &wound));
        // The first full turn alone does not.
        let turn: Vec<[u32; 3]> = strip[..(2 * len as usize * 2) / 3 - 2].to_vec();
        assert!(!overlaps(&turn, &wound));
    }

    /// A fan of ten triangles around a vertex spanning 1.25 turns: no flips, no
    /// crossing boundary edges away from the vertex, but its first and last triangles overlap.
    #[test]
    fn a_fan_wrapping_past_a_full_turn_overlaps() {
        let k = 10u32;
        let mut uv = vec![[0.0, 0.0]];
        for i in 0..=k {
            let a = i as f64 / k as f64 * 1.25 * std::f64::consts::TAU;
            uv.push([a.cos(), a.sin()]);
        }
        let fan: Vec<[u32; 3]> = (1..=k).map(|i| [0, i, i + 1]).collect();
        assert!(overlaps(&fan, &uv));
        assert!(!overlaps(&fan[..k as usize * 3 / 4], &uv));
    }

    #[test]
    fn split_halves_cover_the_chart() {
        let tris = grid_faces(5, 5);
        let pos: Vec<[f32; 3]> = (0..=5u32)
            .flat_map(|y| (0..=5u32).map(move |x| [x as f32, y as f32 * 0.5, 0.0]))
            .collect();
        let parts = split(&tris, &pos);
        assert!(parts.len() >= 2);
        let mut seen = vec![0; tris.len()];
        for p in &parts {
            for &f in p {
                seen[f as usize] += 1;
            }
        }
        assert!(seen.iter().all(|&s| s == 1));
    }
}
