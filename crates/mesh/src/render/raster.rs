//! Triangle rasterisation into a visibility buffer (face id + perspective-correct barycentrics).
//!
//! Triangles are set up in parallel, binned into horizontal bands of `BAND` rows, and each band is
//! rasterised by one rayon task into its own disjoint slice of the buffers (no locks). Edge
//! functions are evaluated exactly in 64-bit fixed point (8 sub-pixel bits), so two triangles that
//! share an edge agree on it bit for bit: no cracks, whatever the orientation. Both windings are
//! drawn (the meshes have no consistent orientation, and the reference culls nothing).

use rayon::prelude::*;

/// Sentinel face id of an empty sample (and of a face that covers no sample).
pub(crate) const EMPTY: u32 = u32::MAX;

/// Rows per binning band: small enough for load balance on many cores, large enough that most
/// triangles fall into one band.
const BAND: usize = 16;

/// Sub-pixel precision of the fixed-point vertex positions.
const SUBPIXEL_BITS: u32 = 8;
const ONE: i64 = 1 << SUBPIXEL_BITS;

/// Projected vertices further than this from the origin (in pixels) are dropped, so fixed-point
/// coordinates fit an i32 and edge-function products an i64. A mesh inside the unit box seen
/// from the reference's distance 2 projects to about one screen width, far inside this band.
const GUARD_PX: f32 = (1u32 << 22) as f32;

/// The visibility buffer of one view, `size × size` samples, rows top to bottom.
#[derive(Default)]
pub(crate) struct VisBuffer {
    /// Face index per sample, or [`EMPTY`].
    pub face: Vec<u32>,
    /// Perspective-correct barycentrics `(b1, b2)` of the face's vertices 1 and 2 (b0 = 1 − b1 − b2).
    pub bary: Vec<[f32; 2]>,
    /// 1 / camera depth, 0 where empty.
    pub inv_z: Vec<f32>,
}

/// A triangle in screen space (fixed point). `clip` indexes the original-face barycentrics of
/// its corners for pieces cut by the near plane; [`EMPTY`] means the identity.
#[derive(Clone, Copy)]
struct ScreenTri {
    p: [[i32; 2]; 3],
    inv_z: [f32; 3],
    face: u32,
    clip: u32,
}

impl ScreenTri {
    const NONE: Self = Self {
        p: [[0; 2]; 3],
        inv_z: [0.0; 3],
        face: EMPTY,
        clip: EMPTY,
    };

    /// Inclusive sample-index bounds `(x0, x1, y0, y1)`; a sample (x, y) sits at (x + ½, y + ½).
    #[inline]
    fn bounds(&self, size: usize) -> (i64, i64, i64, i64) {
        let [a, b, c] = self.p;
        let lo = |k: usize| a[k].min(b[k]).min(c[k]) as i64;
        let hi = |k: usize| a[k].max(b[k]).max(c[k]) as i64;
        let first = |m: i64| (m - ONE / 2 + ONE - 1).div_euclid(ONE).max(0);
        let last = |m: i64| (m - ONE / 2).div_euclid(ONE).min(size as i64 - 1);
        (first(lo(0)), last(hi(0)), first(lo(1)), last(hi(1)))
    }
}

const IDENTITY_BARY: [[f32; 2]; 3] = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]];

/// Rasteriser state kept across frames: every buffer is reused, so a turntable allocates (and
/// page-faults) once instead of per frame.
#[derive(Default)]
pub(crate) struct Rasterizer {
    /// One slot per face (EMPTY face id when it covers nothing), then near-plane pieces.
    tris: Vec<ScreenTri>,
    clip_bary: Vec<[[f32; 2]; 3]>,
    offsets: Vec<usize>,
    items: Vec<u32>,
    pub vis: VisBuffer,
}

impl Rasterizer {
    /// Rasterises `faces` over camera-space vertices (x right, y down, z forward) into
    /// [`Self::vis`]. `focal` is the normalised focal length; samples are at pixel centres.
    /// Face indices must be in range (validated by the caller).
    pub fn rasterize(
        &mut self,
        cam: &[[f32; 3]],
        faces: &[[u32; 3]],
        focal: f32,
        size: usize,
        near: f32,
        far: f32,
    ) {
        self.setup_triangles(cam, faces, focal, size, near);
        self.bin_by_band(size);
        let n = size * size;
        self.vis.face.resize(n, EMPTY);
        self.vis.bary.resize(n, [0.0; 2]);
        self.vis.inv_z.resize(n, 0.0);
        let (min_iz, max_iz) = (1.0 / far, 1.0 / near);
        let (tris, clip_bary, offsets, items) =
            (&self.tris, &self.clip_bary, &self.offsets, &self.items);
        self.vis
            .face
            .par_chunks_mut(BAND * size)
            .zip(self.vis.bary.par_chunks_mut(BAND * size))
            .zip(self.vis.inv_z.par_chunks_mut(BAND * size))
            .enumerate()
            .for_each(|(band, ((face, bary), inv_z))| {
                face.fill(EMPTY);
                inv_z.fill(0.0);
                let mut out = BandOut {
                    size,
                    row0: band * BAND,
                    face,
                    bary,
                    inv_z,
                };
                for &t in &items[offsets[band]..offsets[band + 1]] {
                    draw(&tris[t as usize], clip_bary, &mut out, min_iz, max_iz);
                }
            });
    }

    /// Projects every face into its slot, then appends the pieces of faces that cross the near
    /// plane (rare: the camera is outside the object), which are clipped sequentially.
    fn setup_triangles(
        &mut self,
        cam: &[[f32; 3]],
        faces: &[[u32; 3]],
        focal: f32,
        size: usize,
        near: f32,
    ) {
        let corners = |f: &[u32; 3]| [cam[f[0] as usize], cam[f[1] as usize], cam[f[2] as usize]];
        self.tris.clear();
        self.tris.resize(faces.len(), ScreenTri::NONE);
        self.tris
            .par_iter_mut()
            .zip(faces.par_iter())
            .enumerate()
            .for_each(|(i, (t, f))| {
                let v = corners(f);
                *t = if v.iter().all(|p| p[2] >= near) {
                    make_tri(i as u32, v, EMPTY, focal, size).unwrap_or(ScreenTri::NONE)
                } else {
                    ScreenTri::NONE
                };
            });
        self.clip_bary.clear();
        let straddling: Vec<usize> = faces
            .par_iter()
            .enumerate()
            .filter(|(_, f)| {
                let inside = corners(f).iter().filter(|p| p[2] >= near).count();
                inside == 1 || inside == 2
            })
            .map(|(i, _)| i)
            .collect();
        for i in straddling {
            let poly = clip_near(corners(&faces[i]), near);
            for k in 1..poly.len().saturating_sub(1) {
                let (a, b, c) = (poly[0], poly[k], poly[k + 1]);
                let clip = self.clip_bary.len() as u32;
                if let Some(t) = make_tri(i as u32, [a.0, b.0, c.0], clip, focal, size) {
                    self.clip_bary.push([a.1, b.1, c.1]);
                    self.tris.push(t);
                }
            }
        }
    }

    /// Counting sort of triangle indices into the bands their row range touches, in parallel
    /// over chunks of triangles. Each chunk writes into its own reserved run of every band, so
    /// the order inside a band is the triangle order whatever the thread count (ties in depth
    /// resolve the same way on every machine).
    fn bin_by_band(&mut self, size: usize) {
        let bands = size.div_ceil(BAND);
        let band_range = |t: &ScreenTri| {
            let (_, _, y0, y1) = t.bounds(size);
            y0 as usize / BAND..=y1 as usize / BAND
        };
        let chunk = self
            .tris
            .len()
            .div_ceil(4 * rayon::current_num_threads())
            .max(4096);
        let chunks: Vec<&[ScreenTri]> = self.tris.chunks(chunk).collect();
        // counts[c * bands + b]: triangles of chunk c touching band b.
        let mut counts = vec![0usize; chunks.len() * bands];
        counts
            .par_chunks_mut(bands)
            .zip(chunks.par_iter())
            .for_each(|(cnt, tris)| {
                for t in tris.iter().filter(|t| t.face != EMPTY) {
                    for b in band_range(t) {
                        cnt[b] += 1;
                    }
                }
            });
        // Band-major layout: band b's items are chunk 0's run, then chunk 1's, ... Carve `items`
        // into those runs and hand each chunk its own (disjoint) set of runs.
        self.offsets.clear();
        self.offsets.resize(bands + 1, 0);
        let total: usize = counts.iter().sum();
        self.items.clear();
        self.items.resize(total, 0);
        let mut runs: Vec<Vec<&mut [u32]>> = (0..chunks.len())
            .map(|_| Vec::with_capacity(bands))
            .collect();
        let mut rest = &mut self.items[..];
        let mut at = 0;
        for b in 0..bands {
            self.offsets[b] = at;
            for (c, chunk_runs) in runs.iter_mut().enumerate() {
                let n = counts[c * bands + b];
                let (run, tail) = std::mem::take(&mut rest).split_at_mut(n);
                chunk_runs.push(run);
                rest = tail;
                at += n;
            }
        }
        self.offsets[bands] = at;
        runs.par_iter_mut()
            .zip(chunks.par_iter())
            .enumerate()
            .for_each(|(c, (runs, tris))| {
                let mut cursor = vec![0usize; bands];
                for (i, t) in tris.iter().enumerate().filter(|(_, t)| t.face != EMPTY) {
                    for b in band_range(t) {
                        runs[b][cursor[b]] = (c * chunk + i) as u32;
                        cursor[b] += 1;
                    }
                }
            });
    }
}

/// Projects a camera-space triangle (all z ≥ near); `None` if it is degenerate, outside the
/// guard band, or covers no sample centre.
#[inline]
fn make_tri(face: u32, v: [[f32; 3]; 3], clip: u32, focal: f32, size: usize) -> Option<ScreenTri> {
    let project = |v: [f32; 3]| -> Option<[i32; 2]> {
        let px = (focal * v[0] / v[2] + 0.5) * size as f32;
        let py = (focal * v[1] / v[2] + 0.5) * size as f32;
        (px.abs() < GUARD_PX && py.abs() < GUARD_PX).then(|| {
            [
                (px * ONE as f32).round() as i32,
                (py * ONE as f32).round() as i32,
            ]
        })
    };
    let p = [project(v[0])?, project(v[1])?, project(v[2])?];
    let t = ScreenTri {
        p,
        inv_z: [1.0 / v[0][2], 1.0 / v[1][2], 1.0 / v[2][2]],
        face,
        clip,
    };
    let (x0, x1, y0, y1) = t.bounds(size);
    (x0 <= x1 && y0 <= y1 && area(&p) != 0).then_some(t)
}

#[inline]
fn area(p: &[[i32; 2]; 3]) -> i64 {
    let q = p.map(|v| [v[0] as i64, v[1] as i64]);
    (q[1][0] - q[0][0]) * (q[2][1] - q[0][1]) - (q[1][1] - q[0][1]) * (q[2][0] - q[0][0])
}

struct BandOut<'a> {
    size: usize,
    row0: usize,
    face: &'a mut [u32],
    bary: &'a mut [[f32; 2]],
    inv_z: &'a mut [f32],
}

fn draw(
    t: &ScreenTri,
    clip_bary: &[[[f32; 2]; 3]],
    out: &mut BandOut<'_>,
    min_iz: f32,
    max_iz: f32,
) {
    let rows = out.face.len() / out.size;
    let (x0, x1, y0, y1) = t.bounds(out.size);
    let y_lo = (y0 as usize).max(out.row0);
    let y_hi = (y1 as usize).min(out.row0 + rows - 1);
    if y_lo > y_hi {
        return;
    }
    let orig = if t.clip == EMPTY {
        &IDENTITY_BARY
    } else {
        &clip_bary[t.clip as usize]
    };
    let q = t.p.map(|v| [v[0] as i64, v[1] as i64]);
    let area = area(&t.p);
    let sign = area.signum();
    // λ_i = w_i / area once w is made positive inside.
    let inv_area = sign as f64 / area as f64;
    // Edge i is opposite vertex i: w_i(p) = edge(v_{i+1}, v_{i+2}, p), scaled by the area's sign
    // so that inside means all w ≥ 0 for either winding.
    let (sx, sy) = (x0 * ONE + ONE / 2, y_lo as i64 * ONE + ONE / 2);
    let mut dx = [0i64; 3];
    let mut dy = [0i64; 3];
    let mut row_w = [0i64; 3];
    for i in 0..3 {
        let (p, r) = (q[(i + 1) % 3], q[(i + 2) % 3]);
        dx[i] = -(r[1] - p[1]) * ONE * sign;
        dy[i] = (r[0] - p[0]) * ONE * sign;
        row_w[i] = ((r[0] - p[0]) * (sy - p[1]) - (r[1] - p[1]) * (sx - p[0])) * sign;
    }
    for y in y_lo..=y_hi {
        let mut w = row_w;
        let row = (y - out.row0) * out.size;
        for x in x0 as usize..=x1 as usize {
            if (w[0] | w[1] | w[2]) >= 0 {
                let l = w.map(|wi| (wi as f64 * inv_area) as f32);
                let q = [l[0] * t.inv_z[0], l[1] * t.inv_z[1], l[2] * t.inv_z[2]];
                let iz = q[0] + q[1] + q[2];
                let idx = row + x;
                if iz > out.inv_z[idx] && iz >= min_iz && iz <= max_iz * 1.0001 {
                    let r = 1.0 / iz;
                    let b1 = (q[0] * orig[0][0] + q[1] * orig[1][0] + q[2] * orig[2][0]) * r;
                    let b2 = (q[0] * orig[0][1] + q[1] * orig[1][1] + q[2] * orig[2][1]) * r;
                    out.inv_z[idx] = iz;
                    out.face[idx] = t.face;
                    out.bary[idx] = [b1, b2];
                }
            }
            for i in 0..3 {
                w[i] += dx[i];
            }
        }
        for i in 0..3 {
            row_w[i] += dy[i];
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rasterize(
        cam: &[[f32; 3]],
        faces: &[[u32; 3]],
        focal: f32,
        size: usize,
        near: f32,
        far: f32,
    ) -> VisBuffer {
        let mut r = Rasterizer::default();
        r.rasterize(cam, faces, focal, size, near, far);
        r.vis
    }

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
    fn reused_buffers_give_the_same_result_as_fresh_ones() {
        let big = vec![[-3.0, -3.0, 4.0], [3.0, -3.0, 4.0], [0.0, 3.0, 4.0]];
        let small = vec![[-0.2, -0.1, 2.0], [0.3, 0.0, 2.5], [0.0, 0.4, 3.0]];
        let mut r = Rasterizer::default();
        r.rasterize(&big, &[[0, 1, 2]], 0.5, 48, 1.0, 100.0);
        r.rasterize(&small, &[[0, 1, 2]], 0.5, 48, 1.0, 100.0);
        let fresh = rasterize(&small, &[[0, 1, 2]], 0.5, 48, 1.0, 100.0);
        assert_eq!(r.vis.face, fresh.face);
        assert_eq!(r.vis.inv_z, fresh.inv_z);
        let covered = fresh.face.iter().filter(|&&f| f != EMPTY).count();
        assert!(covered > 0 && covered < 48 * 48 / 4);
    }

    /// A 100 × 60 grid of quads (12,000 triangles, several binning chunks) with alternating
    /// windings: no cracks anywhere inside, and the same buffer on 1 thread as on many.
    #[test]
    fn dense_grid_is_watertight_and_thread_count_independent() {
        let (nx, ny, z) = (100u32, 60u32, 3.0f32);
        let mut cam = Vec::new();
        for j in 0..=ny {
            for i in 0..=nx {
                cam.push([
                    -1.0 + 2.0 * i as f32 / nx as f32,
                    -0.8 + 1.6 * j as f32 / ny as f32,
                    z,
                ]);
            }
        }
        let mut faces = Vec::new();
        for j in 0..ny {
            for i in 0..nx {
                let (a, b, c, d) = (
                    j * (nx + 1) + i,
                    j * (nx + 1) + i + 1,
                    (j + 1) * (nx + 1) + i,
                    (j + 1) * (nx + 1) + i + 1,
                );
                if (i + j) % 2 == 0 {
                    faces.extend([[a, b, d], [a, d, c]]);
                } else {
                    faces.extend([[a, c, b], [b, c, d]]);
                }
            }
        }
        let size = 160;
        let many = rasterize(&cam, &faces, 1.0, size, 1.0, 100.0);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| rasterize(&cam, &faces, 1.0, size, 1.0, 100.0));
        assert_eq!(many.face, one.face);
        assert_eq!(many.bary, one.bary);
        // The plane spans x ∈ (±1/3 + ½)·160 = [26.7, 133.3], y ∈ (±0.8/3 + ½)·160 = [37.3, 122.7].
        for y in 38..122 {
            for x in 27..133 {
                assert_ne!(many.face[y * size + x], EMPTY, "crack at {x},{y}");
            }
        }
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
