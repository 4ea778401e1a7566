//! Triangle rasterisation into a visibility buffer (face id + perspective-correct barycentrics).
//!
//! Triangles are set up in parallel, binned into horizontal bands of `BAND` rows, and each band is
//! rasterised by one rayon task into its own disjoint slice of the buffers (no locks). Edge
//! functions are evaluated exactly in 64-bit fixed point (8 sub-pixel bits), so two triangles that
//! share an edge agree on it bit for bit: no cracks, whatever the orientation. Both windings are
//! drawn (the meshes have no consistent orientation, and the reference culls nothing).

use rayon::prelude::*;

/// Sentinel face id of an empty sample.
pub(crate) const EMPTY: u32 = u32::MAX;

/// Rows per binning band: small enough for load balance on many cores, large enough that most
/// triangles fall into one band.
const BAND: usize = 16;

/// Sub-pixel precision of the fixed-point vertex positions.
const SUBPIXEL_BITS: u32 = 8;
const ONE: i64 = 1 << SUBPIXEL_BITS;

/// Projected vertices further than this from the origin (in pixels) are dropped: with 8 sub-pixel
/// bits, edge-function products stay well inside i64. A mesh inside the unit box seen from the
/// reference's distance 2 projects to about one screen width, far from this guard band.
const GUARD_PX: f32 = (1u32 << 22) as f32;

/// The visibility buffer of one view, `size × size` samples, rows top to bottom.
pub(crate) struct VisBuffer {
    /// Face index per sample, or [`EMPTY`].
    pub face: Vec<u32>,
    /// Perspective-correct barycentrics `(b1, b2)` of the face's vertices 1 and 2 (b0 = 1 − b1 − b2).
    pub bary: Vec<[f32; 2]>,
    /// 1 / camera depth, 0 where empty.
    pub inv_z: Vec<f32>,
}

/// A triangle in screen space. `orig` holds, per screen vertex, its barycentrics `(b1, b2)` in the
/// original face; it differs from the identity only for pieces produced by near-plane clipping.
#[derive(Clone, Copy)]
struct ScreenTri {
    p: [[i64; 2]; 3],
    inv_z: [f32; 3],
    orig: [[f32; 2]; 3],
    face: u32,
    /// Inclusive sample-index bounds.
    x0: u32,
    x1: u32,
    y0: u32,
    y1: u32,
}

const IDENTITY_BARY: [[f32; 2]; 3] = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]];

/// Rasterises `faces` over camera-space vertices (x right, y down, z forward). `focal` is the
/// normalised focal length; samples are at pixel centres. Face indices must be in range
/// (validated by the caller).
pub(crate) fn rasterize(
    cam: &[[f32; 3]],
    faces: &[[u32; 3]],
    focal: f32,
    size: usize,
    near: f32,
    far: f32,
) -> VisBuffer {
    let tris = setup_triangles(cam, faces, focal, size, near);
    let bands = size.div_ceil(BAND);
    let (offsets, items) = bin_by_band(&tris, bands);

    let mut buf = VisBuffer {
        face: vec![EMPTY; size * size],
        bary: vec![[0.0; 2]; size * size],
        inv_z: vec![0.0; size * size],
    };
    let (min_iz, max_iz) = (1.0 / far, 1.0 / near);
    buf.face
        .par_chunks_mut(BAND * size)
        .zip(buf.bary.par_chunks_mut(BAND * size))
        .zip(buf.inv_z.par_chunks_mut(BAND * size))
        .enumerate()
        .for_each(|(band, ((face, bary), inv_z))| {
            let row0 = band * BAND;
            let rows = face.len() / size;
            let mut out = BandOut {
                size,
                row0,
                face,
                bary,
                inv_z,
            };
            for &t in &items[offsets[band]..offsets[band + 1]] {
                draw(&tris[t as usize], &mut out, rows, min_iz, max_iz);
            }
        });
    buf
}

struct BandOut<'a> {
    size: usize,
    row0: usize,
    face: &'a mut [u32],
    bary: &'a mut [[f32; 2]],
    inv_z: &'a mut [f32],
}

fn draw(t: &ScreenTri, out: &mut BandOut<'_>, rows: usize, min_iz: f32, max_iz: f32) {
    let y_lo = (t.y0 as usize).max(out.row0);
    let y_hi = (t.y1 as usize).min(out.row0 + rows - 1);
    if y_lo > y_hi {
        return;
    }
    let [a, b, c] = t.p;
    let area = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
    // Edge i is opposite vertex i; w_i(p) = edge(v_{i+1}, v_{i+2}, p).
    let edges = [(b, c), (c, a), (a, b)];
    let sign = area.signum();
    let inv_area = 1.0 / area as f64;
    // d w / d x and d w / d y per whole pixel, and w at the first sample of the box.
    let mut dx = [0i64; 3];
    let mut row_w = [0i64; 3];
    let sx = t.x0 as i64 * ONE + ONE / 2;
    let sy = y_lo as i64 * ONE + ONE / 2;
    let mut dy = [0i64; 3];
    for (i, (p, q)) in edges.iter().enumerate() {
        dx[i] = -(q[1] - p[1]) * ONE * sign;
        dy[i] = (q[0] - p[0]) * ONE * sign;
        row_w[i] = ((q[0] - p[0]) * (sy - p[1]) - (q[1] - p[1]) * (sx - p[0])) * sign;
    }
    let inv_area = inv_area * sign as f64;
    for y in y_lo..=y_hi {
        let mut w = row_w;
        let row = (y - out.row0) * out.size;
        for x in t.x0 as usize..=t.x1 as usize {
            if (w[0] | w[1] | w[2]) >= 0 {
                let l = [
                    (w[0] as f64 * inv_area) as f32,
                    (w[1] as f64 * inv_area) as f32,
                    (w[2] as f64 * inv_area) as f32,
                ];
                let q = [l[0] * t.inv_z[0], l[1] * t.inv_z[1], l[2] * t.inv_z[2]];
                let iz = q[0] + q[1] + q[2];
                let idx = row + x;
                if iz > out.inv_z[idx] && iz >= min_iz && iz <= max_iz * 1.0001 {
                    let r = 1.0 / iz;
                    let b1 = (q[0] * t.orig[0][0] + q[1] * t.orig[1][0] + q[2] * t.orig[2][0]) * r;
                    let b2 = (q[0] * t.orig[0][1] + q[1] * t.orig[1][1] + q[2] * t.orig[2][1]) * r;
                    out.inv_z[idx] = iz;
                    out.face[idx] = t.face;
                    out.bary[idx] = [b1, b2];
                }
            }
            w[0] += dx[0];
            w[1] += dx[1];
            w[2] += dx[2];
        }
        row_w[0] += dy[0];
        row_w[1] += dy[1];
        row_w[2] += dy[2];
    }
}

/// Projects every face, clipping the ones that cross the near plane, and drops those that cover
/// no sample centre.
fn setup_triangles(
    cam: &[[f32; 3]],
    faces: &[[u32; 3]],
    focal: f32,
    size: usize,
    near: f32,
) -> Vec<ScreenTri> {
    let project = |v: [f32; 3]| -> Option<[i64; 2]> {
        let px = (focal * v[0] / v[2] + 0.5) * size as f32;
        let py = (focal * v[1] / v[2] + 0.5) * size as f32;
        (px.abs() < GUARD_PX && py.abs() < GUARD_PX).then(|| {
            [
                (px * ONE as f32).round() as i64,
                (py * ONE as f32).round() as i64,
            ]
        })
    };
    let make = |face: u32, v: [[f32; 3]; 3], orig: [[f32; 2]; 3]| -> Option<ScreenTri> {
        let p = [project(v[0])?, project(v[1])?, project(v[2])?];
        let (mut lo, mut hi) = ([i64::MAX; 2], [i64::MIN; 2]);
        for q in &p {
            for k in 0..2 {
                lo[k] = lo[k].min(q[k]);
                hi[k] = hi[k].max(q[k]);
            }
        }
        // Sample (x, y) sits at (x + ½, y + ½) px: first sample ≥ lo, last ≤ hi.
        let first = |m: i64| (m - ONE / 2 + ONE - 1).div_euclid(ONE).max(0);
        let last = |m: i64| (m - ONE / 2).div_euclid(ONE).min(size as i64 - 1);
        let (x0, x1, y0, y1) = (first(lo[0]), last(hi[0]), first(lo[1]), last(hi[1]));
        let area =
            (p[1][0] - p[0][0]) * (p[2][1] - p[0][1]) - (p[1][1] - p[0][1]) * (p[2][0] - p[0][0]);
        if x0 > x1 || y0 > y1 || area == 0 {
            return None;
        }
        Some(ScreenTri {
            p,
            inv_z: [1.0 / v[0][2], 1.0 / v[1][2], 1.0 / v[2][2]],
            orig,
            face,
            x0: x0 as u32,
            x1: x1 as u32,
            y0: y0 as u32,
            y1: y1 as u32,
        })
    };
    let corners = |f: &[u32; 3]| [cam[f[0] as usize], cam[f[1] as usize], cam[f[2] as usize]];

    let mut tris: Vec<ScreenTri> = faces
        .par_iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let v = corners(f);
            v.iter()
                .all(|p| p[2] >= near)
                .then(|| make(i as u32, v, IDENTITY_BARY))
                .flatten()
        })
        .collect();

    // Faces straddling the near plane are rare (the camera is outside the object), so they are
    // clipped sequentially.
    let straddling: Vec<usize> = faces
        .par_iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let v = corners(f);
            let inside = v.iter().filter(|p| p[2] >= near).count();
            (inside == 1 || inside == 2).then_some(i)
        })
        .collect();
    for i in straddling {
        let poly = clip_near(corners(&faces[i]), near);
        for k in 1..poly.len().saturating_sub(1) {
            let (a, b, c) = (poly[0], poly[k], poly[k + 1]);
            if let Some(t) = make(i as u32, [a.0, b.0, c.0], [a.1, b.1, c.1]) {
                tris.push(t);
            }
        }
    }
    tris
}

/// Sutherland–Hodgman against `z ≥ near`, carrying original-face barycentrics (b1, b2).
fn clip_near(v: [[f32; 3]; 3], near: f32) -> Vec<([f32; 3], [f32; 2])> {
    let verts: [([f32; 3], [f32; 2]); 3] = [
        (v[0], IDENTITY_BARY[0]),
        (v[1], IDENTITY_BARY[1]),
        (v[2], IDENTITY_BARY[2]),
    ];
    let mut out = Vec::with_capacity(4);
    for i in 0..3 {
        let (a, b) = (verts[i], verts[(i + 1) % 3]);
        let (ia, ib) = (a.0[2] >= near, b.0[2] >= near);
        if ia {
            out.push(a);
        }
        if ia != ib {
            let t = (near - a.0[2]) / (b.0[2] - a.0[2]);
            let lerp = |x: f32, y: f32| x + (y - x) * t;
            let p = [lerp(a.0[0], b.0[0]), lerp(a.0[1], b.0[1]), near];
            out.push((p, [lerp(a.1[0], b.1[0]), lerp(a.1[1], b.1[1])]));
        }
    }
    out
}

/// Counting sort of triangle indices into the bands their row range touches.
fn bin_by_band(tris: &[ScreenTri], bands: usize) -> (Vec<usize>, Vec<u32>) {
    let mut counts = vec![0usize; bands + 1];
    for t in tris {
        for b in t.y0 as usize / BAND..=t.y1 as usize / BAND {
            counts[b] += 1;
        }
    }
    let mut offsets = vec![0usize; bands + 1];
    for b in 0..bands {
        offsets[b + 1] = offsets[b] + counts[b];
    }
    let mut cursor = offsets.clone();
    let mut items = vec![0u32; offsets[bands]];
    for (i, t) in tris.iter().enumerate() {
        for b in t.y0 as usize / BAND..=t.y1 as usize / BAND {
            items[cursor[b]] = i as u32;
            cursor[b] += 1;
        }
    }
    (offsets, items)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two triangles tiling a square in front of the camera, with opposite windings: every
    /// sample inside the square is covered (no crack along the shared diagonal).
    #[test]
    fn shared_edge_has_no_cracks_and_depth_is_exact() {
        let z = 3.0;
        let cam = vec![
            [-0.5, -0.5, z],
            [0.5, -0.5, z],
            [0.5, 0.5, z],
            [-0.5, 0.5, z],
        ];
        let faces = vec![[0, 1, 2], [0, 3, 2]];
        let size = 64;
        let vb = rasterize(&cam, &faces, 1.0, size, 1.0, 100.0);
        // The square spans (±0.5 / 3 + 0.5) · 64 = [21.33, 42.67] px.
        for y in 0..size {
            for x in 0..size {
                let (cx, cy) = (x as f32 + 0.5, y as f32 + 0.5);
                let inside = cx > 21.34 && cx < 42.66 && cy > 21.34 && cy < 42.66;
                let i = y * size + x;
                if inside {
                    assert_ne!(vb.face[i], EMPTY, "crack at {x},{y}");
                    assert!((vb.inv_z[i] - 1.0 / z).abs() < 1e-6);
                } else if !(cx > 21.0 && cx < 43.0 && cy > 21.0 && cy < 43.0) {
                    assert_eq!(vb.face[i], EMPTY, "overdraw at {x},{y}");
                }
            }
        }
    }

    #[test]
    fn nearer_triangle_wins_and_barycentrics_are_perspective_correct() {
        // A far full-screen triangle and a nearer slanted one.
        let cam = vec![
            [-10.0, -10.0, 10.0],
            [30.0, -10.0, 10.0],
            [-10.0, 30.0, 10.0],
            [-1.0, -1.0, 2.0],
            [1.0, -1.0, 2.0],
            [0.0, 1.0, 4.0],
        ];
        let faces = vec![[0, 1, 2], [3, 4, 5]];
        let vb = rasterize(&cam, &faces, 0.5, 128, 1.0, 100.0);
        let centre = 64 * 128 + 64;
        assert_eq!(vb.face[centre], 1);
        // Reconstruct the 3-D point from the barycentrics: it must lie on the camera ray.
        let [b1, b2] = vb.bary[centre];
        let b0 = 1.0 - b1 - b2;
        let p: Vec<f32> = (0..3)
            .map(|k| b0 * cam[3][k] + b1 * cam[4][k] + b2 * cam[5][k])
            .collect();
        let (u, v) = (0.5 * p[0] / p[2] + 0.5, 0.5 * p[1] / p[2] + 0.5);
        assert!(
            (u * 128.0 - 64.5).abs() < 1e-3 && (v * 128.0 - 64.5).abs() < 1e-3,
            "{u} {v}"
        );
        assert!((1.0 / p[2] - vb.inv_z[centre]).abs() < 1e-5);
    }

    #[test]
    fn near_plane_clipping_keeps_the_visible_part() {
        // A floor-like triangle reaching behind the camera: only z ≥ near may be drawn.
        let cam = vec![[-2.0, 0.5, -1.0], [2.0, 0.5, -1.0], [0.0, 0.5, 5.0]];
        let vb = rasterize(&cam, &[[0, 1, 2]], 0.5, 64, 1.0, 100.0);
        let covered = vb.face.iter().filter(|&&f| f != EMPTY).count();
        assert!(covered > 0);
        assert!(vb.inv_z.iter().all(|&iz| iz <= 1.0 + 1e-4));
    }
}
