//! Texture baking (spec §4.4 steps 7–8): rasterise every face in UV space at `texture_size²`,
//! interpolate the 3-D position per texel, snap it to the closest point of the original
//! (hole-filled) mesh, sample the voxel attributes trilinearly there, quantise to 8 bits
//! (`clip(x·255, 0, 255)` truncated, as numpy's `astype(uint8)`), and fill uncovered texels so
//! seams don't bleed black.
//!
//! Rasterisation runs per band of rows in parallel; within a band faces are drawn in order and
//! later faces win, as the reference's chunked nvdiffrast pass does. A texel is covered when its
//! centre lies inside or on the edge of a face.

use rayon::prelude::*;

use crate::bvh::Bvh;
use crate::error::MeshError;
use crate::gpu::{GpuBvh, GpuField, SnappedPoints};
use crate::inpaint::fill_uncovered;
use crate::sample::VoxelField;
use crate::surface::Surface;
use crate::types::{MeshWithVoxel, Texture};
use crate::uv::UvMesh;

/// Rows per parallel work item.
const BAND_ROWS: usize = 16;
/// First search radius of the closest-point snap, in voxels.
const SNAP_SEARCH_VOXELS: f32 = 4.0;
/// Barycentric slack so that texel centres exactly on a shared edge are never missed.
const EDGE_EPS: f32 = 1e-7;

/// Baked textures plus coverage statistics.
pub struct Baked {
    /// RGBA: base colour, alpha in A.
    pub base_color: Texture,
    /// RGB: (0, roughness, metallic).
    pub metallic_roughness: Texture,
    /// Texels covered by a face before filling.
    pub covered: usize,
    /// Seconds per phase (raster, snap + sample, fill, channels).
    pub phases: Vec<(&'static str, f64)>,
}

/// Bakes the voxel attributes of `voxels` onto `uv_mesh`, snapping through `original`.
pub fn bake(
    uv_mesh: &UvMesh,
    original: &Bvh,
    voxels: &MeshWithVoxel,
    texture_size: u32,
) -> Result<Baked, MeshError> {
    bake_on(uv_mesh, Surface::Cpu(original), voxels, texture_size)
}

/// [`bake`] snapping through `surface`: on a CUDA index the per-texel snap, voxel sampling
/// and quantisation run on the GPU. Rasterisation and the seam fill stay on the CPU: the raster is
/// a small share of the bake, and its output (one surface point per covered texel) is what the
/// GPU needs anyway.
pub fn bake_on(
    uv_mesh: &UvMesh,
    surface: Surface<'_>,
    voxels: &MeshWithVoxel,
    texture_size: u32,
) -> Result<Baked, MeshError> {
    if texture_size == 0 || texture_size > 16384 {
        return Err(MeshError::InvalidParameter {
            name: "texture_size",
            reason: format!("{texture_size} is not in 1..=16384"),
        });
    }
    if uv_mesh.uvs.len() != uv_mesh.positions.len() {
        return Err(MeshError::LengthMismatch {
            what: "uvs",
            expected: uv_mesh.positions.len(),
            got: uv_mesh.uvs.len(),
        });
    }
    crate::error::check_faces(&uv_mesh.faces, uv_mesh.positions.len())?;
    match surface {
        Surface::Cpu(original) => {
            let mut clock = PhaseClock::new();
            let field = VoxelField::new(voxels)?;
            let size = texture_size as usize;
            let snap_radius = SNAP_SEARCH_VOXELS * voxels.voxel_size();
            let binned = bin_faces(uv_mesh, size);
            // Per texel: 6 quantised attributes and coverage.
            let mut texels = vec![[0u8; 6]; size * size];
            let mut mask = vec![false; size * size];
            texels
                .par_chunks_mut(BAND_ROWS * size)
                .zip(mask.par_chunks_mut(BAND_ROWS * size))
                .zip(binned.par_iter())
                .enumerate()
                .for_each(|(band, ((tex, cov), faces))| {
                    let row0 = band * BAND_ROWS;
                    let rows = tex.len() / size;
                    let hit = raster_band(uv_mesh, faces, size, row0, rows);
                    for (k, (face, bary)) in hit.into_iter().enumerate() {
                        if face == u32::MAX {
                            continue;
                        }
                        let p = surface_point(uv_mesh, face, bary);
                        // The baked surface lies within a few voxels of the original (remesh
                        // offset plus decimation error), so a bounded search prunes most of
                        // the tree; fall back to the unbounded query when nothing is that close.
                        let snapped = original
                            .closest_within(p, snap_radius)
                            .unwrap_or_else(|| original.closest(p))
                            .point;
                        let attr = field.sample(snapped);
                        tex[k] = attr.map(quantise);
                        cov[k] = true;
                    }
                });
            clock.lap("raster + snap + sample (CPU)");
            finish(texels, mask, texture_size, clock)
        }
        Surface::Cuda(g) => {
            let plan = plan_on_gpu(uv_mesh, g, texture_size, voxels.resolution)?;
            bake_planned(plan, g, voxels)
        }
    }
}

/// Faces by the bands of `BAND_ROWS` rows their UV bounding boxes touch.
fn bin_faces(uv_mesh: &UvMesh, size: usize) -> Vec<Vec<u32>> {
    let bands = size.div_ceil(BAND_ROWS);
    let mut binned: Vec<Vec<u32>> = vec![Vec::new(); bands];
    for (fi, f) in uv_mesh.faces.iter().enumerate() {
        let vs = f.map(|i| uv_mesh.uvs[i as usize][1] * size as f32);
        let lo = vs.iter().fold(f32::INFINITY, |a, &b| a.min(b));
        let hi = vs.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        if !(lo.is_finite() && hi.is_finite()) {
            continue;
        }
        let r0 = ((lo - 0.5).ceil().max(0.0) as usize).min(size);
        let r1 = ((hi - 0.5).floor().min(size as f32 - 1.0)) as isize;
        if r1 < r0 as isize {
            continue;
        }
        for band in &mut binned[r0 / BAND_ROWS..=(r1 as usize) / BAND_ROWS] {
            band.push(fi as u32);
        }
    }
    binned
}

/// The part of a GPU bake that needs no texture voxels: the covered texels, and their surface
/// points snapped onto the original surface (left on the device). Made during the surface
/// steps, so only the voxel sampling waits for the texture decoder.
pub(crate) struct BakePlan {
    texture_size: u32,
    /// Per band of `BAND_ROWS` rows, its covered texels (row-major index), in order.
    band_texels: Vec<Vec<u32>>,
    snapped: SnappedPoints,
    phases: Vec<(&'static str, f64)>,
}

/// Rasterises `uv_mesh` at `texture_size²` and snaps the covered texels' points onto `g`'s
/// surface (decoded on a `resolution`³ grid: the snap searches 4 of its voxels first).
pub(crate) fn plan_on_gpu(
    uv_mesh: &UvMesh,
    g: &GpuBvh,
    texture_size: u32,
    resolution: u32,
) -> Result<BakePlan, MeshError> {
    let mut clock = PhaseClock::new();
    let size = texture_size as usize;
    let binned = bin_faces(uv_mesh, size);
    // Covered texels (row-major index) and their surface points, band by band.
    let per_band: Vec<(Vec<u32>, Vec<[f32; 3]>)> = binned
        .par_iter()
        .enumerate()
        .map(|(band, faces)| {
            let row0 = band * BAND_ROWS;
            let rows = BAND_ROWS.min(size - row0);
            let hit = raster_band(uv_mesh, faces, size, row0, rows);
            let mut idx = Vec::new();
            let mut pts = Vec::new();
            for (k, (face, bary)) in hit.into_iter().enumerate() {
                if face != u32::MAX {
                    idx.push((row0 * size + k) as u32);
                    pts.push(surface_point(uv_mesh, face, bary));
                }
            }
            (idx, pts)
        })
        .collect();
    clock.lap("raster");
    let points: Vec<[f32; 3]> = per_band
        .par_iter()
        .flat_map_iter(|(_, p)| p.iter().copied())
        .collect();
    let snap_radius = SNAP_SEARCH_VOXELS * (1.0 / resolution as f32);
    let snapped = g.snap(&points, snap_radius)?;
    clock.lap("snap (GPU)");
    Ok(BakePlan {
        texture_size,
        band_texels: per_band.into_iter().map(|(idx, _)| idx).collect(),
        snapped,
        phases: clock.laps,
    })
}

/// Samples `voxels` (on the grid the plan was made for: the caller checks) at the planned
/// points on the GPU and fills the textures.
pub(crate) fn bake_planned(
    plan: BakePlan,
    g: &GpuBvh,
    voxels: &MeshWithVoxel,
) -> Result<Baked, MeshError> {
    let mut clock = PhaseClock::new();
    clock.laps = plan.phases;
    let size = plan.texture_size as usize;
    let field = VoxelField::new(voxels)?;
    let gfield = GpuField::upload(g.device(), &field)?;
    let values = g.sample_snapped(&gfield, &plan.snapped)?;
    clock.lap("sample (GPU)");
    let mut texels = vec![[0u8; 6]; size * size];
    let mut mask = vec![false; size * size];
    // Back into the texture band by band: each band's texels are its own rows.
    let mut first = 0;
    let band_values: Vec<&[[u8; 6]]> = plan
        .band_texels
        .iter()
        .map(|idx| {
            let v = &values[first..first + idx.len()];
            first += idx.len();
            v
        })
        .collect();
    texels
        .par_chunks_mut(BAND_ROWS * size)
        .zip(mask.par_chunks_mut(BAND_ROWS * size))
        .zip(plan.band_texels.par_iter().zip(band_values))
        .enumerate()
        .for_each(|(band, ((tex, cov), (idx, vals)))| {
            let origin = band * BAND_ROWS * size;
            for (&i, v) in idx.iter().zip(vals) {
                tex[i as usize - origin] = *v;
                cov[i as usize - origin] = true;
            }
        });
    clock.lap("scatter");
    finish(texels, mask, plan.texture_size, clock)
}

/// Fills the uncovered texels and splits the channels into the two textures.
fn finish(
    mut texels: Vec<[u8; 6]>,
    mut mask: Vec<bool>,
    texture_size: u32,
    mut clock: PhaseClock,
) -> Result<Baked, MeshError> {
    let size = texture_size as usize;
    let covered = mask.par_iter().filter(|&&m| m).count();
    fill_uncovered(&mut texels, &mut mask, size);
    clock.lap("fill");

    let mut base = vec![0u8; size * size * 4];
    let mut mr = vec![0u8; size * size * 3];
    base.par_chunks_mut(4)
        .zip(mr.par_chunks_mut(3))
        .zip(texels.par_iter())
        .for_each(|((b, m), t)| {
            b.copy_from_slice(&[t[0], t[1], t[2], t[5]]);
            m.copy_from_slice(&[0, t[4], t[3]]);
        });
    clock.lap("channels");
    let tex = |channels: u8, data: Vec<u8>| Texture {
        width: texture_size,
        height: texture_size,
        channels,
        data,
    };
    Ok(Baked {
        base_color: tex(4, base),
        metallic_roughness: tex(3, mr),
        covered,
        phases: clock.laps,
    })
}

/// Wall seconds per named phase.
struct PhaseClock {
    at: std::time::Instant,
    laps: Vec<(&'static str, f64)>,
}

impl PhaseClock {
    fn new() -> Self {
        PhaseClock {
            at: std::time::Instant::now(),
            laps: Vec::new(),
        }
    }
    fn lap(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.laps.push((name, (now - self.at).as_secs_f64()));
        self.at = now;
    }
}

/// Face and barycentrics of every texel of rows `row0..row0 + rows` (`u32::MAX`: uncovered);
/// faces are drawn in order, later ones overwrite.
fn raster_band(
    m: &UvMesh,
    faces: &[u32],
    size: usize,
    row0: usize,
    rows: usize,
) -> Vec<(u32, [f32; 3])> {
    let mut hit: Vec<(u32, [f32; 3])> = vec![(u32::MAX, [0.0; 3]); rows * size];
    for &fi in faces {
        raster_face(m, fi, size, row0, rows, &mut hit);
    }
    hit
}

/// The 3-D point of face `face` at barycentrics `bary`.
#[inline]
fn surface_point(m: &UvMesh, face: u32, bary: [f32; 3]) -> [f32; 3] {
    let f = m.faces[face as usize];
    std::array::from_fn(|a| {
        (0..3)
            .map(|c| bary[c] * m.positions[f[c] as usize][a])
            .sum()
    })
}

/// `clip(x·255, 0, 255)` then truncation (NaN → 0).
#[inline]
pub fn quantise(x: f32) -> u8 {
    (x * 255.0).clamp(0.0, 255.0) as u8
}

/// Draws face `fi` into the band's hit buffer (texel centres at `(x + 0.5, y + 0.5) / size`).
fn raster_face(
    m: &UvMesh,
    fi: u32,
    size: usize,
    row0: usize,
    rows: usize,
    hit: &mut [(u32, [f32; 3])],
) {
    let f = m.faces[fi as usize];
    let p = f.map(|i| {
        let uv = m.uvs[i as usize];
        [uv[0] * size as f32, uv[1] * size as f32]
    });
    let area =
        (p[1][0] - p[0][0]) * (p[2][1] - p[0][1]) - (p[2][0] - p[0][0]) * (p[1][1] - p[0][1]);
    if !(area.abs() > 0.0) {
        return;
    }
    let (xmin, xmax) = (
        p.iter().map(|q| q[0]).fold(f32::INFINITY, f32::min),
        p.iter().map(|q| q[0]).fold(f32::NEG_INFINITY, f32::max),
    );
    let (ymin, ymax) = (
        p.iter().map(|q| q[1]).fold(f32::INFINITY, f32::min),
        p.iter().map(|q| q[1]).fold(f32::NEG_INFINITY, f32::max),
    );
    let x0 = ((xmin - 0.5).ceil().max(0.0)) as usize;
    let x1 = ((xmax - 0.5).floor().min(size as f32 - 1.0)) as isize;
    let y0 = ((ymin - 0.5).ceil().max(row0 as f32)) as usize;
    let y1 = ((ymax - 0.5).floor().min((row0 + rows) as f32 - 1.0)) as isize;
    if x1 < x0 as isize || y1 < y0 as isize {
        return;
    }
    let inv = 1.0 / area;
    for y in y0..=y1 as usize {
        let py = y as f32 + 0.5;
        for x in x0..=x1 as usize {
            let px = x as f32 + 0.5;
            let e = |a: [f32; 2], b: [f32; 2]| {
                (b[0] - a[0]) * (py - a[1]) - (px - a[0]) * (b[1] - a[1])
            };
            let w0 = e(p[1], p[2]) * inv;
            let w1 = e(p[2], p[0]) * inv;
            let w2 = 1.0 - w0 - w1;
            if w0 >= -EDGE_EPS && w1 >= -EDGE_EPS && w2 >= -EDGE_EPS {
                hit[(y - row0) * size + x] = (fi, [w0, w1, w2]);
            }
        }
    }
}
