//! UV unwrapping: charts, flattening and packing into one atlas page, all ours in production:
//! segmentation (`charts`), a direct LSCM solve per chart (`lscm`; a chart that flips, distorts
//! or overlaps itself is halved and solved again) and shelf packing of the charts' smallest
//! rectangles (`pack`). The pure-Rust `uvunwrap` crate stays as the comparison: it can do the
//! whole job (`Flattening::Uvunwrap`; its iterative LSCM + ARAP solves were 61 % of a whole
//! mesh-bench run's CPU samples) or validate and pack our charts
//! (`Flattening::DirectLscmCratePacking`; its packing trials were most of what was left:
//! BENCHMARKS.md, "Mesh on the H200 host"). Seam vertices are duplicated; `xref` maps each
//! output vertex back to its input vertex (the reference's `vmaps`) so normals can be carried
//! over.

mod charts;
mod lscm;
mod overlap;
mod pack;
mod v3;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use uvunwrap::{Density, MeshInput, Options, Packing, Progress, Stage};

use crate::error::{MeshError, check_faces, check_finite};
use crate::spatial;
use crate::types::TriMesh;

/// Largest normal deviation inside one chart, degrees. uvunwrap requires < 90; the reference
/// clusters with a 90° half-angle cone and then lets xatlas split further, so a wide cone with
/// the crate's distortion-driven splitting is the closest match.
pub const MAX_CHART_ANGLE_DEG: f32 = 70.0;
/// Empty texels around each chart so bilinear filtering and mip levels don't bleed.
pub const CHART_PADDING: u32 = 2;
/// Above this many faces charts are packed row by row (`Packing::Fast`), much faster than
/// shape packing on thousands of charts at a small cost in atlas density.
pub const FAST_PACKING_MIN_FACES: usize = 50_000;
/// Largest chart as a fraction of the total surface area: our charts' area budget, and the
/// crate's when it segments. Bounding chart size keeps each LSCM/ARAP solve small: on a 250k-face remeshed asset, 1e-3 unwraps in 7.5 s instead of
/// 65+ s for unbounded charts with the crate's iterative solver (its `direct-solver` feature,
/// faer 0.22.6, is faster but panicked intermittently in its AMD ordering here, so it is off).
pub const MAX_CHART_AREA_FRACTION: f32 = 1e-3;

/// Faces per independently segmented piece of a large mesh. The unwrapper segments each input
/// mesh on one thread (charts are then flattened in parallel), so a 1 M-face mesh spent most of
/// its unwrap on one core; cut into spatially coherent pieces of this many faces, the pieces
/// segment in parallel and pack into one atlas. A piece boundary is one more seam among
/// thousands of chart boundaries. The piece count depends only on the face count, so the
/// atlas does not depend on the machine's core count.
pub const UNWRAP_PIECE_FACES: usize = 65_536;

/// A UV-mapped mesh: the same faces as the input, in order, over seam-split vertices.
#[derive(Clone, Debug, Default)]
pub struct UvMesh {
    pub positions: Vec<[f32; 3]>,
    /// In `[0, 1]²`; `v` grows with the texture row (row 0 at `v = 0`).
    pub uvs: Vec<[f32; 2]>,
    pub faces: Vec<[u32; 3]>,
    /// Input vertex of each output vertex.
    pub xref: Vec<u32>,
    /// Chart of each output vertex (the crate's paths: `u32::MAX` for vertices of uncharted
    /// degenerate faces).
    pub chart: Vec<u32>,
    pub chart_count: u32,
    /// Fraction of the atlas covered by charts.
    pub utilization: f32,
    /// Empty texels around each chart: `CHART_PADDING`, or fewer where the charts fit one
    /// page only that way (ours; the crate's paths always use `CHART_PADDING`).
    pub padding: u32,
    /// Wall seconds of the stages: our charts + LSCM (0 with `Flattening::Uvunwrap`), the
    /// crate's segmentation (islands, with ours) and flattening (validation and re-flattening,
    /// with ours) (both 0 with `DirectLscm`), then packing and output (ours or the crate's).
    pub stage_seconds: [f64; 5],
    /// Charts our LSCM could not flatten whole (still flipped, too distorted, overlapping or
    /// unsolvable after `MAX_SPLIT_DEPTH` halvings): cut into single triangles
    /// (`DirectLscm`) or handed to the crate (`DirectLscmCratePacking`).
    pub handed_off_charts: u32,
}

/// Who makes, flattens and packs the charts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flattening {
    /// Ours end to end: segmentation, direct LSCM (charts it cannot flatten are cut into
    /// single triangles) and shelf packing (`pack`).
    DirectLscm,
    /// Our segmentation and direct LSCM; the crate validates, re-flattens what we gave up on
    /// and packs (the production path before `pack`; kept to compare against).
    DirectLscmCratePacking,
    /// The crate alone (its segmentation, iterative LSCM and ARAP, its packing).
    Uvunwrap,
}

/// Largest area-weighted mean of max(r, 1/r) over a chart's faces (r: a face's share of the
/// chart's UV area over its share of its surface area) kept from our LSCM; above it the chart
/// is halved and each half solved again. Bounded-area charts on a decoded surface are nearly
/// flat and rarely come near it (whole atlas: 1.004, BENCHMARKS.md).
pub const MAX_MEAN_AREA_DISTORTION: f64 = 1.25;

/// Unwraps `mesh` into one `texture_size²` atlas page.
pub fn unwrap(mesh: &TriMesh, texture_size: u32) -> Result<UvMesh, MeshError> {
    unwrap_with(
        mesh,
        texture_size,
        UNWRAP_PIECE_FACES,
        Flattening::DirectLscm,
    )
}

/// `unwrap` with meshes above `piece_faces` faces cut into pieces of about that many faces,
/// and the charts made and flattened by `flattening`.
pub fn unwrap_with(
    mesh: &TriMesh,
    texture_size: u32,
    piece_faces: usize,
    flattening: Flattening,
) -> Result<UvMesh, MeshError> {
    if mesh.faces.is_empty() {
        return Err(MeshError::Empty("uv unwrap needs at least one face"));
    }
    if texture_size <= 4 * CHART_PADDING {
        return Err(MeshError::InvalidParameter {
            name: "texture_size",
            reason: format!("{texture_size} leaves no room inside the chart padding"),
        });
    }
    check_faces(&mesh.faces, mesh.vertices.len())?;
    check_finite(&mesh.vertices, "uv unwrap vertices")?;
    let total_area: f32 = mesh
        .faces
        .iter()
        .map(|f| {
            let [a, b, c] = f.map(|i| mesh.vertices[i as usize]);
            crate::geom::tri_area(a, b, c)
        })
        .sum();
    let options = Options {
        max_chart_area: total_area * MAX_CHART_AREA_FRACTION,
        max_chart_angle: MAX_CHART_ANGLE_DEG,
        density: Density::Auto {
            page_size: texture_size,
        },
        padding: CHART_PADDING,
        packing: if mesh.faces.len() >= FAST_PACKING_MIN_FACES {
            Packing::Fast
        } else {
            Packing::Shape
        },
        ..Options::default()
    };
    let pieces = split_into_pieces(mesh, piece_faces);
    if flattening == Flattening::DirectLscm {
        let max_area = (total_area * MAX_CHART_AREA_FRACTION) as f64;
        return unwrap_direct(mesh, texture_size, &pieces, max_area);
    }
    let start = Instant::now();
    let prepared: Vec<Option<Prepared>> = match flattening {
        Flattening::Uvunwrap => pieces.iter().map(|_| None).collect(),
        Flattening::DirectLscm | Flattening::DirectLscmCratePacking => {
            let max_area = (total_area * MAX_CHART_AREA_FRACTION) as f64;
            pieces
                .par_iter()
                .map(|p| Some(Prepared::new(p, max_area)))
                .collect()
        }
    };
    let ours = start.elapsed();
    let handed_off_charts = prepared.iter().flatten().map(|p| p.handed_off).sum();
    let input: Vec<MeshInput> = pieces
        .iter()
        .zip(&prepared)
        .map(|(piece, prep)| match prep {
            None => MeshInput::new(&piece.positions, &piece.indices),
            Some(p) => MeshInput {
                existing_uvs: Some(&p.uvs),
                ..MeshInput::new(&p.positions, &p.indices)
            },
        })
        .collect();
    // The crate forbids unsafe code, so a panic would be a bug in it: report it as an error
    // rather than take the service down.
    // Each stage's end = its last progress report (the stages run one after another).
    let start = Instant::now();
    let ends = Mutex::new([Duration::ZERO; 4]);
    let progress = |p: Progress| {
        let stage = match p.stage {
            Stage::Segmenting => 0,
            Stage::Parameterizing => 1,
            Stage::Packing => 2,
            _ => 3,
        };
        ends.lock().unwrap_or_else(|e| e.into_inner())[stage] = start.elapsed();
        true
    };
    let atlas =
        std::panic::catch_unwind(|| uvunwrap::generate_with_progress(&input, &options, progress))
            .map_err(|_| MeshError::Unwrap("the unwrapper panicked".into()))?
            .map_err(|e| MeshError::Unwrap(e.to_string()))?;
    if atlas.page_count > 1 {
        return Err(MeshError::Unwrap(format!(
            "charts need {} pages of {texture_size}²; one is supported",
            atlas.page_count
        )));
    }
    if atlas.meshes.len() != pieces.len() {
        return Err(MeshError::Unwrap(format!(
            "{} output meshes for {} pieces",
            atlas.meshes.len(),
            pieces.len()
        )));
    }
    let mut ends = ends.into_inner().unwrap_or_else(|e| e.into_inner());
    ends[3] = start.elapsed();
    let mut stage_seconds = [ours.as_secs_f64(), 0.0, 0.0, 0.0, 0.0];
    let mut prev = Duration::ZERO;
    for (secs, &end) in stage_seconds[1..].iter_mut().zip(&ends) {
        let end = end.max(prev);
        *secs = (end - prev).as_secs_f64();
        prev = end;
    }
    // Back to one mesh: piece-local vertices to input vertices, faces to their input order.
    let mut xref = Vec::new();
    let mut uvs = Vec::new();
    let mut chart = Vec::new();
    let mut faces = vec![[0u32; 3]; mesh.faces.len()];
    for ((piece, prep), out) in pieces.iter().zip(&prepared).zip(atlas.meshes) {
        let base = xref.len() as u32;
        for v in &out.vertices {
            // Our input had a copy of each vertex per chart: back to the piece's vertex.
            let local = prep
                .as_ref()
                .map_or(v.xref, |p| p.vertex_of[v.xref as usize]);
            xref.push(piece.vertex_ids[local as usize]);
            uvs.push(v.uv);
            chart.push(v.chart.unwrap_or(u32::MAX));
        }
        for (k, tri) in out.indices.chunks_exact(3).enumerate() {
            faces[piece.face_ids[k] as usize] = [tri[0] + base, tri[1] + base, tri[2] + base];
        }
    }
    Ok(UvMesh {
        positions: xref.iter().map(|&i| mesh.vertices[i as usize]).collect(),
        uvs,
        faces,
        xref,
        chart,
        chart_count: atlas.chart_count,
        utilization: atlas.utilization,
        padding: CHART_PADDING,
        stage_seconds,
        handed_off_charts,
    })
}

/// `Flattening::DirectLscm`: each piece's charts made and flattened in parallel, every chart
/// scaled to its surface area (even texel density) and turned to its smallest rectangle, the
/// rectangles shelf-packed, then the pieces put back together in input face order.
fn unwrap_direct(
    mesh: &TriMesh,
    texture_size: u32,
    pieces: &[Piece],
    max_area: f64,
) -> Result<UvMesh, MeshError> {
    let start = Instant::now();
    let charted: Vec<(Vec<Flat>, u32)> = pieces
        .par_iter()
        .map(|piece| {
            let (faces, flats) = flattened_charts(piece, max_area);
            let handed_off = flats.iter().filter(|f| f.uv.is_none()).count() as u32;
            let flats = flats
                .into_iter()
                .flat_map(|f| match f.uv {
                    Some(_) => vec![f],
                    None => single_triangles(&piece.positions, &faces, &f),
                })
                .map(|mut f| {
                    to_world_scale(&piece.positions, &faces, &mut f);
                    f
                })
                .collect();
            (flats, handed_off)
        })
        .collect();
    let ours = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let frames: Vec<pack::ChartFrame> = charted
        .par_iter()
        .zip(pieces)
        .flat_map_iter(|((flats, _), piece)| {
            flats.iter().map(|f| {
                let uv = f.uv.as_deref().expect("flattened");
                pack::ChartFrame::fit_outline(uv, &outline(f, &piece.indices))
            })
        })
        .collect();
    let packing = pack::pack_or_tighten(&frames, texture_size, CHART_PADDING)?;
    let pack_s = start.elapsed().as_secs_f64();
    // Charts into the page; pieces back into one mesh: seam vertices are per-chart copies,
    // faces go back to their input positions.
    let start = Instant::now();
    let s = packing.texels_per_unit;
    let page = texture_size as f64;
    let mut out = UvMesh {
        faces: vec![[0u32; 3]; mesh.faces.len()],
        ..UvMesh::default()
    };
    let mut covered = 0.0f64;
    let mut c = 0usize;
    for (piece, (flats, _)) in pieces.iter().zip(&charted) {
        let mut slot = vec![u32::MAX; piece.positions.len()];
        for flat in flats {
            let frame = &frames[c];
            let uv = flat.uv.as_deref().expect("flattened");
            let base = out.xref.len() as u32;
            for (k, (&v, &p)) in flat.verts.iter().zip(uv).enumerate() {
                if slot[v as usize] == u32::MAX || (slot[v as usize] as usize) < base as usize {
                    slot[v as usize] = base + k as u32;
                }
                let q = packing.to_page(c, frame, frame.local(p));
                out.xref.push(piece.vertex_ids[v as usize]);
                out.uvs.push([(q[0] / page) as f32, (q[1] / page) as f32]);
                out.chart.push(c as u32);
            }
            for &f in &flat.faces {
                let t = &piece.indices[3 * f as usize..3 * f as usize + 3];
                out.faces[piece.face_ids[f as usize] as usize] =
                    [t[0], t[1], t[2]].map(|v| slot[v as usize]);
                let [a, b, cc] = [t[0], t[1], t[2]].map(|v| uv[(slot[v as usize] - base) as usize]);
                covered += v3::signed_area(a, b, cc).abs();
            }
            c += 1;
        }
    }
    out.positions = out
        .xref
        .iter()
        .map(|&i| mesh.vertices[i as usize])
        .collect();
    out.chart_count = c as u32;
    out.utilization = (covered * s * s / (page * page)) as f32;
    out.padding = packing.padding;
    out.handed_off_charts = charted.iter().map(|(_, h)| h).sum();
    out.stage_seconds = [ours, 0.0, 0.0, pack_s, start.elapsed().as_secs_f64()];
    Ok(out)
}

/// A chart's boundary edges (used by one of its faces), as pairs of its UV slots.
fn outline(flat: &Flat, indices: &[u32]) -> Vec<[u32; 2]> {
    let slot = flat.slots();
    let mut edges: Vec<[u32; 2]> = flat
        .faces
        .iter()
        .flat_map(|&f| {
            let t: [u32; 3] = std::array::from_fn(|j| slot[&indices[3 * f as usize + j]]);
            [[t[0], t[1]], [t[1], t[2]], [t[2], t[0]]].map(|[a, b]| [a.min(b), a.max(b)])
        })
        .collect();
    edges.sort_unstable();
    let mut out = Vec::new();
    let mut i = 0;
    while i < edges.len() {
        let j = edges[i..].iter().take_while(|&&e| e == edges[i]).count();
        if j == 1 {
            out.push(edges[i]);
        }
        i += j;
    }
    out
}

/// Each triangle of a chart our LSCM gave up on as a chart of its own, laid flat with its
/// true edge lengths (a triangle can neither flip nor overlap itself).
fn single_triangles(positions: &[[f32; 3]], faces: &[[u32; 3]], chart: &Flat) -> Vec<Flat> {
    chart
        .faces
        .iter()
        .map(|&f| {
            let t = faces[f as usize];
            let [a, b, c] = t.map(|v| positions[v as usize].map(f64::from));
            let (e1, e2) = (v3::sub(b, a), v3::sub(c, a));
            let x1 = v3::len(e1);
            let n = v3::cross(e1, e2);
            let uv = if x1 > 0.0 && v3::len(n) > 0.0 {
                let ax = v3::scale(e1, 1.0 / x1);
                let ay = v3::cross(v3::scale(n, 1.0 / v3::len(n)), ax);
                vec![[0.0, 0.0], [x1, 0.0], [v3::dot(e2, ax), v3::dot(e2, ay)]]
            } else {
                // No area: a point (it covers no texel either way).
                vec![[0.0, 0.0]; 3]
            };
            // A triangle with a repeated vertex still gets three UV slots; `verts` keeps the
            // corners in order and duplicates are harmless (each corner maps to its slot).
            Flat {
                faces: vec![f],
                verts: t.to_vec(),
                uv: Some(uv),
            }
        })
        .collect()
}

/// Scales a flattened chart's UVs so its UV area equals its surface area: every chart then
/// gets the same texels per unit of surface. (LSCM pins two vertices at their planar
/// distance, so this is close to 1; a chart with no UV or surface area keeps its scale.)
fn to_world_scale(positions: &[[f32; 3]], faces: &[[u32; 3]], flat: &mut Flat) {
    let slot = flat.slots();
    let Some(uv) = flat.uv.as_mut() else {
        return;
    };
    let (mut surface, mut flat_area) = (0.0f64, 0.0f64);
    for &f in &flat.faces {
        let t = faces[f as usize];
        let [a, b, c] = t.map(|v| positions[v as usize]);
        surface += crate::geom::tri_area(a, b, c) as f64;
        let [p, q, r] = t.map(|v| uv[slot[&v] as usize]);
        flat_area += v3::signed_area(p, q, r).abs();
    }
    if surface > 0.0 && flat_area > 0.0 {
        let k = (surface / flat_area).sqrt();
        for p in uv.iter_mut() {
            *p = [p[0] * k, p[1] * k];
        }
    }
}

/// A piece's charts made and flattened by us, as the crate's repacking input: each chart has
/// its own copy of its vertices (so charts meet only at seams), with its LSCM UVs. A chart we
/// could not flatten gets every vertex at one point of its own: degenerate, so the crate
/// flattens it itself (and, being distinct per chart, never merges it with a neighbour).
struct Prepared {
    positions: Vec<[f32; 3]>,
    /// The piece's faces in piece order, over the copies.
    indices: Vec<u32>,
    uvs: Vec<[f32; 2]>,
    /// Piece vertex of each copy.
    vertex_of: Vec<u32>,
    handed_off: u32,
}

impl Prepared {
    fn new(piece: &Piece, max_area: f64) -> Prepared {
        let (faces, flats) = flattened_charts(piece, max_area);
        let mut out = Prepared {
            positions: Vec::new(),
            indices: vec![0; piece.indices.len()],
            uvs: Vec::new(),
            vertex_of: Vec::new(),
            handed_off: 0,
        };
        let mut copy_of = vec![u32::MAX; piece.positions.len()];
        for (c, flat) in flats.iter().enumerate() {
            let base = out.positions.len() as u32;
            for (k, &v) in flat.verts.iter().enumerate() {
                copy_of[v as usize] = base + k as u32;
                out.positions.push(piece.positions[v as usize]);
                out.vertex_of.push(v);
                out.uvs.push(match &flat.uv {
                    Some(uv) => uv[k].map(|x| x as f32),
                    None => [c as f32, -1.0e6],
                });
            }
            out.handed_off += flat.uv.is_none() as u32;
            for &f in &flat.faces {
                let t = faces[f as usize];
                for j in 0..3 {
                    out.indices[3 * f as usize + j] = copy_of[t[j] as usize];
                }
            }
        }
        out
    }
}

/// A piece's faces, and its charts (segmented with at most `max_area` each) flattened by our
/// LSCM, charts in parallel.
fn flattened_charts(piece: &Piece, max_area: f64) -> (Vec<[u32; 3]>, Vec<Flat>) {
    let faces: Vec<[u32; 3]> = piece
        .indices
        .chunks_exact(3)
        .map(|t| [t[0], t[1], t[2]])
        .collect();
    let charts = charts::segment(&piece.positions, &faces, MAX_CHART_ANGLE_DEG, max_area);
    let flats = charts
        .into_par_iter()
        .flat_map_iter(|chart| flatten(&piece.positions, &faces, chart, 0))
        .collect();
    (faces, flats)
}

/// A chart flattened by our LSCM (`uv`) or left to the crate (`None`): its faces (piece face
/// indices) and its vertices (piece numbering; `uv` follows this order).
struct Flat {
    faces: Vec<u32>,
    verts: Vec<u32>,
    uv: Option<Vec<[f64; 2]>>,
}

impl Flat {
    /// The UV slot of each of the chart's vertices (its first, where a vertex repeats).
    fn slots(&self) -> std::collections::HashMap<u32, u32> {
        let mut slot = std::collections::HashMap::with_capacity(self.verts.len());
        for (k, &v) in self.verts.iter().enumerate() {
            slot.entry(v).or_insert(k as u32);
        }
        slot
    }
}

/// Halvings a chart may go through before what is left of it goes to the crate.
const MAX_SPLIT_DEPTH: u32 = 6;

/// LSCM of `chart`; a result that flips, distorts too much or overlaps itself is cut in two
/// and each part flattened again (as uvunwrap does, but with a direct solve per part).
fn flatten(positions: &[[f32; 3]], faces: &[[u32; 3]], chart: Vec<u32>, depth: u32) -> Vec<Flat> {
    let mut verts = Vec::new();
    let mut local = std::collections::HashMap::new();
    let tris: Vec<[u32; 3]> = chart
        .iter()
        .map(|&f| {
            faces[f as usize].map(|v| {
                *local.entry(v).or_insert_with(|| {
                    verts.push(v);
                    (verts.len() - 1) as u32
                })
            })
        })
        .collect();
    let pos: Vec<[f32; 3]> = verts.iter().map(|&v| positions[v as usize]).collect();
    let uv = lscm::lscm(&pos, &tris)
        .filter(|uv| keeps(&pos, &tris, uv) && !overlap::overlaps(&tris, uv));
    if uv.is_none() && depth < MAX_SPLIT_DEPTH && chart.len() > 1 {
        return overlap::split(&tris, &pos)
            .into_iter()
            .flat_map(|part| {
                let part = part.iter().map(|&k| chart[k as usize]).collect();
                flatten(positions, faces, part, depth + 1)
            })
            .collect();
    }
    vec![Flat {
        faces: chart,
        verts,
        uv,
    }]
}

/// Whether a chart's LSCM UVs are worth keeping: no triangle flipped against the chart's
/// orientation and mean area distortion within [`MAX_MEAN_AREA_DISTORTION`].
fn keeps(pos: &[[f32; 3]], tris: &[[u32; 3]], uv: &[[f64; 2]]) -> bool {
    let uv_areas: Vec<f64> = tris
        .iter()
        .map(|t| {
            let [a, b, c] = t.map(|i| uv[i as usize]);
            v3::signed_area(a, b, c)
        })
        .collect();
    let areas: Vec<f64> = tris
        .iter()
        .map(|t| {
            let [a, b, c] = t.map(|i| pos[i as usize]);
            crate::geom::tri_area(a, b, c) as f64
        })
        .collect();
    let (uv_total, total): (f64, f64) = (uv_areas.iter().sum(), areas.iter().sum());
    if !(uv_total.abs() > 0.0) || !(total > 0.0) {
        return false;
    }
    let sign = uv_total.signum();
    if uv_areas
        .iter()
        .zip(&areas)
        .any(|(&u, &a)| a > 0.0 && !(u * sign > 0.0))
    {
        return false;
    }
    let mean: f64 = uv_areas
        .iter()
        .zip(&areas)
        .filter(|&(_, &a)| a > 0.0)
        .map(|(&u, &a)| {
            let r = (u * sign / uv_total.abs()) / (a / total);
            a * r.max(1.0 / r)
        })
        .sum::<f64>()
        / total;
    mean <= MAX_MEAN_AREA_DISTORTION
}

/// One piece of a mesh, with its own compact vertex numbering.
struct Piece {
    positions: Vec<[f32; 3]>,
    indices: Vec<u32>,
    /// Input vertex of each piece vertex.
    vertex_ids: Vec<u32>,
    /// Input face of each piece face, in piece order.
    face_ids: Vec<u32>,
}

/// Cuts `mesh` into `⌈faces / piece_faces⌉` pieces of consecutive faces along a Morton curve of
/// the face centroids (so each piece is a compact region); one piece when it is small.
fn split_into_pieces(mesh: &TriMesh, piece_faces: usize) -> Vec<Piece> {
    let n = mesh.faces.len();
    let order: Vec<u32> = if n > piece_faces {
        spatial::morton_face_order(mesh)
    } else {
        (0..n as u32).collect()
    };
    order
        .chunks(spatial::piece_len(n, piece_faces))
        .map(|face_ids| {
            let mut local = std::collections::HashMap::new();
            let mut vertex_ids = Vec::new();
            let indices = face_ids
                .iter()
                .flat_map(|&f| mesh.faces[f as usize])
                .map(|v| {
                    *local.entry(v).or_insert_with(|| {
                        vertex_ids.push(v);
                        (vertex_ids.len() - 1) as u32
                    })
                })
                .collect();
            Piece {
                positions: vertex_ids
                    .iter()
                    .map(|&v| mesh.vertices[v as usize])
                    .collect(),
                indices,
                vertex_ids,
                face_ids: face_ids.to_vec(),
            }
        })
        .collect()
}

/// A `w` × `h` grid of quads, two triangles each, over `(w + 1) × (h + 1)` vertices numbered
/// row by row (tests).
#[cfg(test)]
fn grid_faces(w: u32, h: u32) -> Vec<[u32; 3]> {
    (0..h)
        .flat_map(|y| {
            (0..w).flat_map(move |x| {
                let v = |dx, dy| (y + dy) * (w + 1) + x + dx;
                [[v(0, 0), v(1, 0), v(1, 1)], [v(0, 0), v(1, 1), v(0, 1)]]
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_every_face_once_with_compact_vertices() {
        // A 40 × 30 quad sheet, two triangles per quad.
        let (w, h) = (40u32, 30u32);
        let vertices = (0..=h)
            .flat_map(|y| (0..=w).map(move |x| [x as f32, y as f32, 0.0]))
            .collect();
        let m = TriMesh {
            vertices,
            faces: grid_faces(w, h),
        };
        let pieces = split_into_pieces(&m, 500);
        assert_eq!(pieces.len(), m.faces.len().div_ceil(500));
        let mut seen = vec![0u8; m.faces.len()];
        for p in &pieces {
            assert!(p.face_ids.len() <= 500);
            for (k, &f) in p.face_ids.iter().enumerate() {
                seen[f as usize] += 1;
                let local = &p.indices[3 * k..3 * k + 3];
                for (&l, &v) in local.iter().zip(&m.faces[f as usize]) {
                    assert_eq!(p.vertex_ids[l as usize], v);
                }
            }
            assert_eq!(p.positions.len(), p.vertex_ids.len());
        }
        assert!(seen.iter().all(|&s| s == 1));
    }
}
