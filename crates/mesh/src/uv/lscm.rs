//! Least-squares conformal maps (Lévy et al. 2002) of one chart, solved directly: the normal
//! equations of the chart's free vertices, ordered by reverse Cuthill–McKee so their envelope
//! is narrow, then an envelope Cholesky. A chart of a few hundred vertices costs well under a
//! millisecond this way; the iterative solve it replaces (CGLS, then ARAP's ten more solves)
//! was most of the unwrap's time.

use std::collections::VecDeque;

use super::v3::{V3, cross, dot, len, scale, sub};

/// Largest envelope (stored lower-triangle entries) solved here; above it the chart is left to
/// the fallback flattener. ~2 M doubles = 16 MB, far above any bounded-area chart.
const MAX_ENVELOPE: usize = 2_000_000;

/// Conformal UVs of a chart (`positions` and `faces` in the chart's own vertex numbering), with
/// the two extreme vertices of its planar projection pinned there. `None` when the chart can't
/// be solved here: fewer than three vertices, no usable triangle, a singular system (the free
/// vertices not all connected to the pins through triangles) or an envelope over the cap.
pub fn lscm(positions: &[[f32; 3]], faces: &[[u32; 3]]) -> Option<Vec<[f64; 2]>> {
    let n = positions.len();
    if n < 3 {
        return None;
    }
    let p: Vec<V3> = positions.iter().map(|q| q.map(f64::from)).collect();
    let planar = planar_projection(&p, faces)?;
    let axis = {
        let ext = |a: usize| {
            let (lo, hi) = planar.iter().fold((f64::MAX, f64::MIN), |(lo, hi), q| {
                (lo.min(q[a]), hi.max(q[a]))
            });
            hi - lo
        };
        if ext(0) >= ext(1) { 0 } else { 1 }
    };
    let pin_a = (0..n).min_by(|&a, &b| planar[a][axis].total_cmp(&planar[b][axis]))?;
    let pin_b = (0..n).max_by(|&a, &b| planar[a][axis].total_cmp(&planar[b][axis]))?;
    if pin_a == pin_b {
        return None;
    }
    let pinned = |v: usize| v == pin_a || v == pin_b;

    // Two rows per triangle: real and imaginary parts of Σ_j W_j U_j / √(2A), W_j the
    // triangle's opposite edge in its own frame (complex), U_j = u_j + i v_j. A similarity of
    // the frame has zero residual; a mirror image does not, so charts come out unflipped.
    let mut rows: Vec<[(u32, f64, f64); 3]> = Vec::with_capacity(faces.len());
    for f in faces {
        let [a, b, c] = f.map(|i| p[i as usize]);
        let (e1, e2) = (sub(b, a), sub(c, a));
        let nrm = cross(e1, e2);
        let two_area = len(nrm);
        let x1 = len(e1);
        if !(two_area > 1e-30) || !(x1 > 0.0) {
            continue;
        }
        let ax = scale(e1, 1.0 / x1);
        let ay = cross(scale(nrm, 1.0 / two_area), ax);
        let z = [(0.0, 0.0), (x1, 0.0), (dot(e2, ax), dot(e2, ay))];
        let w = 1.0 / two_area.sqrt();
        // W_0 = z2 − z1, W_1 = z0 − z2, W_2 = z1 − z0.
        let edge = |j: usize, k: usize| ((z[j].0 - z[k].0) * w, (z[j].1 - z[k].1) * w);
        let ws = [edge(2, 1), edge(0, 2), edge(1, 0)];
        rows.push(std::array::from_fn(|j| (f[j], ws[j].0, ws[j].1)));
    }
    if rows.is_empty() {
        return None;
    }

    // Free vertices in reverse Cuthill–McKee order; each has dofs 2k (u) and 2k + 1 (v).
    let order = rcm_order(n, faces, &pinned);
    let mut pos = vec![u32::MAX; n];
    for (k, &v) in order.iter().enumerate() {
        pos[v as usize] = k as u32;
    }
    let m = 2 * order.len();
    if m == 0 {
        return None;
    }
    // Envelope: row r stores columns first[r]..=r.
    let mut first: Vec<usize> = (0..m).collect();
    for f in faces {
        let ks: Vec<usize> = f
            .iter()
            .filter(|&&v| !pinned(v as usize))
            .map(|&v| pos[v as usize] as usize)
            .collect();
        let lo = ks.iter().copied().min().unwrap_or(usize::MAX);
        for &k in &ks {
            first[2 * k] = first[2 * k].min(2 * lo);
            first[2 * k + 1] = first[2 * k + 1].min(2 * lo);
        }
    }
    let mut offset = Vec::with_capacity(m + 1);
    offset.push(0usize);
    for r in 0..m {
        offset.push(offset[r] + r - first[r] + 1);
    }
    if offset[m] > MAX_ENVELOPE {
        return None;
    }
    let mut env = vec![0.0f64; offset[m]];
    let mut rhs = vec![0.0f64; m];
    let pin_uv = |v: usize| planar[v];

    // Normal equations: for each row, its (dof, coefficient) entries and the pinned part.
    let mut acc = |entries: &[(usize, f64)], fixed: f64| {
        for &(r, cr) in entries {
            rhs[r] -= cr * fixed;
            for &(c, cc) in entries {
                if c <= r {
                    env[offset[r] + c - first[r]] += cr * cc;
                }
            }
        }
    };
    for row in &rows {
        // Real part: a u − b v; imaginary part: b u + a v.
        for part in 0..2 {
            let mut entries = [(0usize, 0.0f64); 6];
            let mut len = 0;
            let mut fixed = 0.0;
            for &(v, a, b) in row {
                let (cu, cv) = if part == 0 { (a, -b) } else { (b, a) };
                let v = v as usize;
                if pinned(v) {
                    fixed += cu * pin_uv(v)[0] + cv * pin_uv(v)[1];
                } else {
                    let k = pos[v] as usize;
                    entries[len] = (2 * k, cu);
                    entries[len + 1] = (2 * k + 1, cv);
                    len += 2;
                }
            }
            acc(&entries[..len], fixed);
        }
    }
    cholesky_envelope(&mut env, &first, &offset)?;
    solve_envelope(&env, &first, &offset, &mut rhs);

    let mut uv: Vec<[f64; 2]> = vec![[0.0; 2]; n];
    for (v, out) in uv.iter_mut().enumerate() {
        *out = if pinned(v) {
            pin_uv(v)
        } else {
            let k = pos[v] as usize;
            [rhs[2 * k], rhs[2 * k + 1]]
        };
    }
    uv.iter()
        .all(|q| q[0].is_finite() && q[1].is_finite())
        .then_some(uv)
}

/// Orthographic projection onto the plane of the chart's area-weighted normal.
fn planar_projection(p: &[V3], faces: &[[u32; 3]]) -> Option<Vec<[f64; 2]>> {
    let mut nrm = [0.0; 3];
    for f in faces {
        let [a, b, c] = f.map(|i| p[i as usize]);
        let t = cross(sub(b, a), sub(c, a));
        nrm = [nrm[0] + t[0], nrm[1] + t[1], nrm[2] + t[2]];
    }
    let l = len(nrm);
    if !(l > 0.0) {
        return None;
    }
    let nrm = scale(nrm, 1.0 / l);
    // Any vector not parallel to the normal seeds the in-plane basis.
    let seed = if nrm[0].abs() < 0.9 {
        [1.0, 0.0, 0.0]
    } else {
        [0.0, 1.0, 0.0]
    };
    let t1 = cross(nrm, seed);
    let t1 = scale(t1, 1.0 / len(t1));
    let t2 = cross(nrm, t1);
    Some(p.iter().map(|&q| [dot(q, t1), dot(q, t2)]).collect())
}

/// Reverse Cuthill–McKee order of the vertices that `keep` (BFS from a low-degree vertex of
/// each component, neighbours by increasing degree, then reversed): a narrow envelope for the
/// normal equations.
fn rcm_order(n: usize, faces: &[[u32; 3]], pinned: &dyn Fn(usize) -> bool) -> Vec<u32> {
    let mut adj: Vec<Vec<u32>> = vec![Vec::new(); n];
    for f in faces {
        for k in 0..3 {
            let (a, b) = (f[k] as usize, f[(k + 1) % 3] as usize);
            if a != b && !pinned(a) && !pinned(b) {
                adj[a].push(b as u32);
                adj[b].push(a as u32);
            }
        }
    }
    for a in &mut adj {
        a.sort_unstable();
        a.dedup();
    }
    let mut by_degree: Vec<u32> = (0..n as u32).filter(|&v| !pinned(v as usize)).collect();
    by_degree.sort_by_key(|&v| (adj[v as usize].len(), v));
    let mut seen = vec![false; n];
    let mut order = Vec::with_capacity(by_degree.len());
    let mut queue = VecDeque::new();
    for &start in &by_degree {
        if seen[start as usize] {
            continue;
        }
        seen[start as usize] = true;
        queue.push_back(start);
        while let Some(v) = queue.pop_front() {
            order.push(v);
            let mut next: Vec<u32> = adj[v as usize]
                .iter()
                .copied()
                .filter(|&w| !seen[w as usize])
                .collect();
            next.sort_by_key(|&w| (adj[w as usize].len(), w));
            for w in next {
                seen[w as usize] = true;
                queue.push_back(w);
            }
        }
    }
    order.reverse();
    order
}

/// In-place Cholesky `A = L Lᵀ` of a symmetric positive definite matrix stored by rows of its
/// lower envelope. `None` on a pivot that is not clearly positive (a singular system).
fn cholesky_envelope(env: &mut [f64], first: &[usize], offset: &[usize]) -> Option<()> {
    let m = first.len();
    let max_diag = (0..m)
        .map(|r| env[offset[r] + r - first[r]])
        .fold(0.0f64, f64::max);
    let tiny = max_diag * 1e-13;
    for r in 0..m {
        let (fr, or) = (first[r], offset[r]);
        for c in fr..=r {
            let (fc, oc) = (first[c], offset[c]);
            let k0 = fr.max(fc);
            let mut s = env[or + c - fr];
            for k in k0..c {
                s -= env[or + k - fr] * env[oc + k - fc];
            }
            if c < r {
                env[or + c - fr] = s / env[oc + c - fc];
            } else {
                if !(s > tiny) {
                    return None;
                }
                env[or + r - fr] = s.sqrt();
            }
        }
    }
    Some(())
}

/// Solves `L Lᵀ x = b` in place after [`cholesky_envelope`].
fn solve_envelope(env: &[f64], first: &[usize], offset: &[usize], b: &mut [f64]) {
    let m = first.len();
    for r in 0..m {
        let (fr, or) = (first[r], offset[r]);
        let mut s = b[r];
        for k in fr..r {
            s -= env[or + k - fr] * b[k];
        }
        b[r] = s / env[or + r - fr];
    }
    for r in (0..m).rev() {
        let (fr, or) = (first[r], offset[r]);
        b[r] /= env[or + r - fr];
        let x = b[r];
        for k in fr..r {
            b[k] -= env[or + k - fr] * x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uv::grid_faces;
    use crate::uv::v3::signed_area;

    #[test]
    fn envelope_cholesky_solves_a_banded_system() {
        // A tridiagonal-plus SPD matrix with a wider entry, solved against a known x.
        let m = 7;
        let mut a = vec![vec![0.0; m]; m];
        for i in 0..m {
            a[i][i] = 4.0 + i as f64;
            if i > 0 {
                a[i][i - 1] = -1.0;
                a[i - 1][i] = -1.0;
            }
        }
        a[5][2] = 0.5;
        a[2][5] = 0.5;
        let x: Vec<f64> = (0..m).map(|i| (i as f64 * 0.7).sin()).collect();
        let mut b: Vec<f64> = (0..m)
            .map(|i| (0..m).map(|j| a[i][j] * x[j]).sum())
            .collect();
        let first: Vec<usize> = (0..m)
            .map(|r| (0..=r).find(|&c| a[r][c] != 0.0).unwrap())
            .collect();
        let mut offset = vec![0];
        for r in 0..m {
            offset.push(offset[r] + r - first[r] + 1);
        }
        let mut env = vec![0.0; offset[m]];
        for r in 0..m {
            for c in first[r]..=r {
                env[offset[r] + c - first[r]] = a[r][c];
            }
        }
        cholesky_envelope(&mut env, &first, &offset).unwrap();
        solve_envelope(&env, &first, &offset, &mut b);
        for (got, want) in b.iter().zip(&x) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }

    /// A flat grid in a tilted plane: LSCM must give back its shape up to a similarity, so
    /// every triangle keeps its area ratio and none flips.
    #[test]
    fn flat_chart_is_reproduced() {
        let (w, h) = (9u32, 6u32);
        let tilt = |x: f32, y: f32| [x, 0.6 * y, 0.8 * y + 0.1 * x];
        let positions: Vec<[f32; 3]> = (0..=h)
            .flat_map(|y| (0..=w).map(move |x| tilt(x as f32 * 0.1, y as f32 * 0.13)))
            .collect();
        let faces = grid_faces(w, h);
        let uv = lscm(&positions, &faces).unwrap();
        let area3 = |f: &[u32; 3]| {
            let [a, b, c] = f.map(|i| positions[i as usize].map(f64::from));
            0.5 * len(cross(sub(b, a), sub(c, a)))
        };
        let area2 = |f: &[u32; 3]| {
            let [a, b, c] = f.map(|i| uv[i as usize]);
            signed_area(a, b, c)
        };
        let k = area2(&faces[0]) / area3(&faces[0]);
        assert!(k > 0.0, "flipped");
        for f in &faces {
            let r = area2(f) / area3(f) / k;
            assert!((r - 1.0).abs() < 1e-9, "area ratio {r}");
        }
    }

    /// A bent strip (a quarter cylinder) flattens without flipping any triangle.
    #[test]
    fn curved_chart_has_no_flips() {
        let (nu, nv) = (16u32, 5u32);
        let positions: Vec<[f32; 3]> = (0..=nv)
            .flat_map(|j| {
                (0..=nu).map(move |i| {
                    let t = i as f32 / nu as f32 * std::f32::consts::FRAC_PI_2;
                    [t.cos(), t.sin(), j as f32 * 0.1]
                })
            })
            .collect();
        let faces = grid_faces(nu, nv);
        let uv = lscm(&positions, &faces).unwrap();
        let signs: Vec<bool> = faces
            .iter()
            .map(|f| {
                let [a, b, c] = f.map(|i| uv[i as usize]);
                signed_area(a, b, c) > 0.0
            })
            .collect();
        assert!(signs.iter().all(|&s| s) || signs.iter().all(|&s| !s));
    }

    #[test]
    fn unsolvable_charts_are_refused() {
        assert!(lscm(&[[0.0; 3], [1.0, 0.0, 0.0]], &[]).is_none());
        // Three collinear points: no usable triangle.
        let line = [[0.0; 3], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0]];
        assert!(lscm(&line, &[[0, 1, 2]]).is_none());
    }
}
