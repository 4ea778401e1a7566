//! Narrow-band dual-contouring remesh, as CuMesh `remesh_narrow_band_dc` (spec §4.4 step 3):
//! the iso-surface `UDF − eps = 0` of the original mesh's unsigned distance, extracted with
//! simple dual contouring on a sparse grid that only covers a narrow band around the surface.
//! The result is a closed, consistently oriented shell about `band` voxels outside the input.
//!
//! Why it is watertight: the UDF is 1-Lipschitz, so any voxel with a sign change on one of its
//! edges has `|f(centre)| ≤ √3/2 · cell < 0.87 · cell` and survives every refinement level; hence
//! all 4 voxels around every sign-changing edge exist and no quad is dropped.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU32};

use rayon::prelude::*;

use crate::brick_grid::{BRICK_CELLS, BrickGrid};
use crate::bvh::Bvh;
use crate::error::MeshError;
use crate::fdg::EDGE_NEIGHBOURS;
use crate::geom::{cross, dot, sub};
use crate::gpu::GridFrame;
use crate::gpu::collapse::DeviceMesh;
use crate::surface::Surface;
use crate::types::TriMesh;

/// The coarsest grid the band search starts from (the reference's 32³).
const BASE_RESOLUTION_MAX: u32 = 32;
/// Voxel half-diagonal factor of the band test (√3/2 ≈ 0.866, rounded up as the reference does).
pub(crate) const BAND_RADIUS: f32 = 0.87;

/// Parameters of `remesh_narrow_band_dc`.
#[derive(Clone, Copy, Debug)]
pub struct RemeshParams {
    pub center: [f32; 3],
    /// Edge length of the cubic domain.
    pub scale: f32,
    /// Grid resolution over the domain.
    pub resolution: u32,
    /// Shell offset in voxels.
    pub band: f32,
    /// Fraction (0..=1) by which each output vertex moves back onto the input surface.
    pub project_back: f32,
}

impl RemeshParams {
    /// The reference `to_glb` settings for an O-Voxel grid of `res` (domain `(res + 3·band)/res`).
    pub fn for_grid(res: u32, band: f32, project_back: f32) -> Self {
        RemeshParams {
            center: [0.0; 3],
            scale: (res as f32 + 3.0 * band) / res as f32,
            resolution: res,
            band,
            project_back,
        }
    }

    fn validate(&self) -> Result<u32, MeshError> {
        let bad = |name, reason: String| Err(MeshError::InvalidParameter { name, reason });
        if self.resolution == 0 || self.resolution > 1 << 14 {
            return bad(
                "resolution",
                format!("{} is not in 1..=16384", self.resolution),
            );
        }
        if !(self.scale > 0.0 && self.scale.is_finite()) {
            return bad("scale", format!("{} is not a positive number", self.scale));
        }
        if !(self.band >= 0.0 && self.band.is_finite()) {
            return bad(
                "band",
                format!("{} is not a non-negative number", self.band),
            );
        }
        if !(0.0..=1.0).contains(&self.project_back) {
            return bad(
                "project_back",
                format!("{} is not in [0, 1]", self.project_back),
            );
        }
        if self.center.iter().any(|c| !c.is_finite()) {
            return Err(MeshError::NonFinite("remesh center"));
        }
        let mut base = self.resolution;
        while base > BASE_RESOLUTION_MAX {
            if !base.is_multiple_of(2) {
                return bad(
                    "resolution",
                    format!("{} does not halve down to ≤ 32", self.resolution),
                );
            }
            base /= 2;
        }
        Ok(base)
    }
}

/// Remeshes the surface described by `bvh` (built over the original mesh).
pub fn remesh_narrow_band_dc(bvh: &Bvh, params: &RemeshParams) -> Result<TriMesh, MeshError> {
    remesh_narrow_band_dc_on(Surface::Cpu(bvh), params)
}

/// [`remesh_narrow_band_dc`] of the surface indexed by `surface`: on a CUDA index the
/// whole remesh runs on the GPU (`gpu::remesh`; above a ~2,560 grid only its closest-point
/// queries do, the other phases staying here).
pub fn remesh_narrow_band_dc_on(
    surface: Surface<'_>,
    params: &RemeshParams,
) -> Result<TriMesh, MeshError> {
    remesh_narrow_band_dc_timed(surface, params, &mut Vec::new())
}

/// [`remesh_narrow_band_dc_on`], appending each phase's wall seconds to `phases` (band search,
/// corner grid, corner UDF, dual contouring, quads, output), for the bench.
pub fn remesh_narrow_band_dc_timed(
    surface: Surface<'_>,
    params: &RemeshParams,
    phases: &mut Vec<(&'static str, f64)>,
) -> Result<TriMesh, MeshError> {
    match remesh_narrow_band_dc_staged(surface, params, phases)? {
        Remeshed::Host(mesh) => Ok(mesh),
        Remeshed::Device(mesh) => mesh.download(),
    }
}

/// A remeshed surface where it was made: on the host, or on the device (for its decimation).
pub(crate) enum Remeshed {
    Host(TriMesh),
    Device(DeviceMesh),
}

/// [`remesh_narrow_band_dc_timed`], leaving a GPU-made mesh on the device.
pub(crate) fn remesh_narrow_band_dc_staged(
    surface: Surface<'_>,
    params: &RemeshParams,
    phases: &mut Vec<(&'static str, f64)>,
) -> Result<Remeshed, MeshError> {
    let res = params.validate()?;
    // On a GPU every phase runs there, unless the grid is too large for its brick table.
    if let Surface::Cuda(g) = surface
        && let Some(mesh) = crate::gpu::remesh::remesh_on_device(g, params, res, phases)?
    {
        return Ok(Remeshed::Device(mesh));
    }
    remesh_with_host_phases(surface, params, res, phases).map(Remeshed::Host)
}

/// The remesh with its grid phases on the host (the queries on `surface`), from the validated
/// coarse resolution `res`.
fn remesh_with_host_phases(
    surface: Surface<'_>,
    params: &RemeshParams,
    mut res: u32,
    phases: &mut Vec<(&'static str, f64)>,
) -> Result<TriMesh, MeshError> {
    let mut clock = std::time::Instant::now();
    let mut lap = |name: &'static str| {
        phases.push((name, clock.elapsed().as_secs_f64()));
        clock = std::time::Instant::now();
    };
    let final_res = params.resolution;
    let eps = params.band * params.scale / final_res as f32;
    let to_world = |g: [f32; 3], r: u32| -> [f32; 3] {
        std::array::from_fn(|a| (g[a] / r as f32 - 0.5) * params.scale + params.center[a])
    };

    // 1. Band voxels, refined level by level from the coarse grid (parent order, then child
    //    offset order x fastest, as the reference's expansion).
    let mut coords: Vec<[i32; 3]> = (0..res as i32)
        .flat_map(|x| (0..res as i32).flat_map(move |y| (0..res as i32).map(move |z| [x, y, z])))
        .collect();
    loop {
        let cell = params.scale / res as f32;
        let tol = BAND_RADIUS * cell;
        let reach = eps + tol;
        coords = match surface {
            Surface::Cuda(g) => {
                let frame = GridFrame {
                    res,
                    scale: params.scale,
                    center: params.center,
                };
                let keep = g.band_filter(&coords, frame, eps, tol)?;
                coords
                    .into_iter()
                    .zip(keep)
                    .filter_map(|(c, k)| (k != 0).then_some(c))
                    .collect()
            }
            Surface::Cpu(bvh) => coords
                .into_par_iter()
                .filter(|c| {
                    let p = to_world(std::array::from_fn(|a| c[a] as f32 + 0.5), res);
                    // |UDF − eps| < 0.87·cell  ⇔  eps − 0.87·cell < UDF < eps + 0.87·cell.
                    match bvh.closest_within(p, reach) {
                        Some(hit) => (hit.distance - eps).abs() < tol,
                        None => false,
                    }
                })
                .collect(),
        };
        if res >= final_res {
            break;
        }
        res *= 2;
        coords = coords
            .into_par_iter()
            .flat_map_iter(|c| {
                (0..8).map(move |k| {
                    [
                        2 * c[0] + (k & 1),
                        2 * c[1] + ((k >> 1) & 1),
                        2 * c[2] + (k >> 2),
                    ]
                })
            })
            .collect();
    }
    if coords.is_empty() {
        return Err(MeshError::Empty("remesh: no voxel in the narrow band"));
    }
    lap("band");

    // 2. UDF − eps at every corner of a band voxel. Corners are within √3/2 cell of a band
    //    voxel's centre, so a search radius of eps + 1.75 cells always finds the exact distance.
    //    Corner values and voxel rows live in 4³ bricks of the (res + 1)³ corner grid (a voxel
    //    shares its brick slot with its min corner).
    let grid = BrickGrid::covering(&coords, |&c| cube_corners(c), final_res + 1);
    let needed: Vec<AtomicBool> = (0..grid.slots()).map(|_| AtomicBool::new(false)).collect();
    coords.par_iter().for_each(|&c| {
        for corner in cube_corners(c) {
            needed[grid.slot(corner).expect("corner brick present")].store(true, Relaxed);
        }
    });
    let needed_slots: Vec<usize> = (0..grid.slots())
        .into_par_iter()
        .filter(|&s| needed[s].load(Relaxed))
        .collect();
    let corners: Vec<[i32; 3]> = needed_slots.par_iter().map(|&s| grid.cell(s)).collect();
    lap("corner grid");
    let cell = params.scale / final_res as f32;
    let corner_reach = eps + 1.75 * cell;
    let values: Vec<f32> = match surface {
        Surface::Cuda(g) => {
            let frame = GridFrame {
                res: final_res,
                scale: params.scale,
                center: params.center,
            };
            g.corner_udf(&corners, frame, corner_reach, eps)?
        }
        Surface::Cpu(bvh) => corners
            .par_iter()
            .map(|c| {
                let p = to_world(c.map(|v| v as f32), final_res);
                bvh.closest_within(p, corner_reach)
                    .map_or(corner_reach, |h| h.distance)
                    - eps
            })
            .collect(),
    };
    drop(corners);
    // Values by slot: each brick finds its run of the (sorted) needed slots.
    let mut corner_value = vec![f32::NAN; grid.slots()];
    corner_value
        .par_chunks_mut(BRICK_CELLS)
        .enumerate()
        .for_each(|(b, brick)| {
            let first = b * BRICK_CELLS;
            let lo = needed_slots.partition_point(|&s| s < first);
            let hi = needed_slots.partition_point(|&s| s < first + BRICK_CELLS);
            for (s, v) in needed_slots[lo..hi].iter().zip(&values[lo..hi]) {
                brick[s - first] = *v;
            }
        });
    drop((needed_slots, values));
    lap("corner UDF");

    // 3. Simple dual contouring: mean of the edge crossings, and the sign of each voxel's three
    //    max-corner edges (+1: inside → outside along the axis, −1: the reverse).
    let dc: Vec<([f32; 3], [i8; 3])> = coords
        .par_iter()
        .map(|&c| {
            // Corner k at offset (k & 1, k >> 1 & 1, k >> 2).
            let corner =
                cube_corners(c).map(|p| corner_value[grid.slot(p).expect("corner brick present")]);
            let val = |o: [i32; 3]| corner[(o[0] | (o[1] << 1) | (o[2] << 2)) as usize];
            let mut sum = [0.0f32; 3];
            let mut count = 0u32;
            let mut dirs = [0i8; 3];
            for axis in 0..3 {
                let (a1, a2) = ((axis + 1) % 3, (axis + 2) % 3);
                for u in 0..2 {
                    for v in 0..2 {
                        let mut o = [0i32; 3];
                        o[a1] = u;
                        o[a2] = v;
                        let v1 = val(o);
                        o[axis] = 1;
                        let v2 = val(o);
                        let crossing = (v1 < 0.0 && v2 >= 0.0) || (v1 >= 0.0 && v2 < 0.0);
                        if crossing {
                            let t = -v1 / (v2 - v1);
                            let mut p = [c[0] as f32, c[1] as f32, c[2] as f32];
                            p[a1] += u as f32;
                            p[a2] += v as f32;
                            p[axis] += t;
                            for k in 0..3 {
                                sum[k] += p[k];
                            }
                            count += 1;
                        }
                        if u == 1 && v == 1 {
                            dirs[axis] = if v1 < 0.0 && v2 >= 0.0 {
                                1
                            } else if v1 >= 0.0 && v2 < 0.0 {
                                -1
                            } else {
                                0
                            };
                        }
                    }
                }
            }
            let dual = if count > 0 {
                sum.map(|s| s / count as f32)
            } else {
                [c[0] as f32 + 0.5, c[1] as f32 + 0.5, c[2] as f32 + 0.5]
            };
            (dual, dirs)
        })
        .collect();
    drop(corner_value);
    lap("dual contouring");

    // 4. Quads around every sign-changing max-corner edge, voxel-major, axis-minor.
    let voxel_row: Vec<AtomicU32> = (0..grid.slots())
        .map(|_| AtomicU32::new(u32::MAX))
        .collect();
    coords.par_iter().enumerate().for_each(|(i, &c)| {
        voxel_row[grid.slot(c).expect("voxel brick present")].store(i as u32, Relaxed);
    });
    let row = |c: [i32; 3]| -> Option<u32> {
        let r = voxel_row[grid.slot(c)?].load(Relaxed);
        (r != u32::MAX).then_some(r)
    };
    let quads: Vec<([u32; 4], i8)> = (0..coords.len())
        .into_par_iter()
        .flat_map_iter(|i| {
            let (c, dirs) = (coords[i], dc[i].1);
            (0..3)
                .filter(move |&a| dirs[a] != 0)
                .filter_map(move |axis| {
                    let mut q = [0u32; 4];
                    for (k, off) in EDGE_NEIGHBOURS[axis].iter().enumerate() {
                        q[k] = row([c[0] + off[0], c[1] + off[1], c[2] + off[2]])?;
                    }
                    Some((q, dirs[axis]))
                })
        })
        .collect();
    drop((voxel_row, grid));
    lap("quads");

    // 5. Keep the voxels quads use (in voxel order), map to world space.
    let used: Vec<AtomicBool> = (0..coords.len()).map(|_| AtomicBool::new(false)).collect();
    quads.par_iter().for_each(|(q, _)| {
        for &v in q {
            used[v as usize].store(true, Relaxed);
        }
    });
    let mut remap = vec![u32::MAX; coords.len()];
    let mut kept = 0u32;
    for (r, u) in remap.iter_mut().zip(&used) {
        if u.load(Relaxed) {
            *r = kept;
            kept += 1;
        }
    }
    let mut vertices: Vec<[f32; 3]> = (0..coords.len())
        .into_par_iter()
        .filter(|&i| remap[i] != u32::MAX)
        .map(|i| to_world(dc[i].0, final_res))
        .collect();
    let faces: Vec<[u32; 3]> = quads
        .par_iter()
        .flat_map_iter(|(q, dir)| {
            let q = q.map(|v| remap[v as usize]);
            triangulate(q, *dir, &vertices)
        })
        .collect();

    // 6. Optional projection back onto the input surface.
    if params.project_back > 0.0 {
        let pb = params.project_back;
        let targets: Vec<[f32; 3]> = match surface {
            Surface::Cuda(g) => g
                .closest_within(&vertices, f32::INFINITY)?
                .into_iter()
                .zip(&vertices)
                // The unbounded query finds a face for every finite point (all of them here).
                .map(|(hit, v)| hit.map_or(*v, |h| h.point))
                .collect(),
            Surface::Cpu(bvh) => vertices.par_iter().map(|v| bvh.closest(*v).point).collect(),
        };
        vertices
            .par_iter_mut()
            .zip(targets)
            .for_each(|(v, target)| {
                *v = std::array::from_fn(|a| v[a] - pb * (v[a] - target[a]));
            });
    }
    lap("output");
    Ok(TriMesh { vertices, faces })
}

/// The 8 corners of voxel `c`, corner k at offset `(k & 1, k >> 1 & 1, k >> 2)`.
fn cube_corners(c: [i32; 3]) -> [[i32; 3]; 8] {
    std::array::from_fn(|k| {
        let k = k as i32;
        [c[0] + (k & 1), c[1] + ((k >> 1) & 1), c[2] + (k >> 2)]
    })
}

/// Splits an oriented quad as the reference does. Its "flatter diagonal" test builds both
/// normals from the first triangle plus the next index, so in practice it keeps the q0–q2 split
/// unless that triangle is degenerate; we reproduce the formula rather than "fix" it.
fn triangulate(q: [u32; 4], dir: i8, p: &[[f32; 3]]) -> [[u32; 3]; 2] {
    const SPLIT1_P: [usize; 6] = [0, 2, 1, 0, 3, 2];
    const SPLIT1_N: [usize; 6] = [0, 1, 2, 0, 2, 3];
    const SPLIT2_P: [usize; 6] = [0, 3, 1, 3, 2, 1];
    const SPLIT2_N: [usize; 6] = [0, 1, 3, 3, 1, 2];
    let pick = |s: [usize; 6]| s.map(|k| q[k]);
    let (t0, t1) = if dir == 1 {
        (pick(SPLIT1_P), pick(SPLIT2_P))
    } else {
        (pick(SPLIT1_N), pick(SPLIT2_N))
    };
    let align = |t: [u32; 6]| {
        let v = |k: usize| p[t[k] as usize];
        let n0 = cross(sub(v(1), v(0)), sub(v(2), v(0)));
        let n1 = cross(sub(v(2), v(1)), sub(v(3), v(1)));
        dot(n0, n1).abs()
    };
    let t = if align(t0) > align(t1) { t0 } else { t1 };
    [[t[0], t[1], t[2]], [t[3], t[4], t[5]]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::is_closed_and_oriented;

    #[test]
    fn rejects_bad_resolution() {
        let p = RemeshParams {
            resolution: 66,
            ..RemeshParams::for_grid(64, 1.0, 0.0)
        };
        assert!(p.validate().is_err());
        assert_eq!(RemeshParams::for_grid(64, 1.0, 0.0).validate().unwrap(), 32);
    }

    #[test]
    fn open_triangle_becomes_closed_shell() {
        let v = vec![[-0.2, -0.2, 0.0], [0.2, -0.2, 0.0], [0.0, 0.25, 0.05]];
        let bvh = Bvh::new(&v, &[[0, 1, 2]]).unwrap();
        let m = remesh_narrow_band_dc(&bvh, &RemeshParams::for_grid(64, 1.0, 0.0)).unwrap();
        assert!(!m.faces.is_empty());
        assert!(is_closed_and_oriented(&m.faces));
        // Outward-facing: positive enclosed volume.
        let vol: f32 = m
            .faces
            .iter()
            .map(|f| {
                let [a, b, c] = f.map(|i| m.vertices[i as usize]);
                dot(a, cross(b, c)) / 6.0
            })
            .sum();
        assert!(vol > 0.0, "signed volume {vol}");
    }
}
