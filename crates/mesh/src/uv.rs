//! UV unwrapping: charts and packing through the pure-Rust `uvunwrap` crate (xatlas-like
//! segmentation by normal cone, LSCM/ARAP flattening, packing), in place of CuMesh's GPU
//! clustering + xatlas. Seam vertices are duplicated; `xref` maps each output vertex back to
//! its input vertex (the reference's `vmaps`) so normals can be carried over.

use std::sync::Mutex;
use std::time::{Duration, Instant};

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
/// Largest chart as a fraction of the total surface area. Bounding chart size keeps each
/// LSCM/ARAP solve small: on a 250k-face remeshed asset, 1e-3 unwraps in 7.5 s instead of
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
    /// Chart of each output vertex (`u32::MAX` for vertices of uncharted degenerate faces).
    pub chart: Vec<u32>,
    pub chart_count: u32,
    /// Fraction of the atlas covered by charts.
    pub utilization: f32,
    /// Wall seconds of the unwrapper's stages: segmentation, flattening, packing, output.
    pub stage_seconds: [f64; 4],
}

/// Unwraps `mesh` into one `texture_size²` atlas page.
pub fn unwrap(mesh: &TriMesh, texture_size: u32) -> Result<UvMesh, MeshError> {
    unwrap_in_pieces(mesh, texture_size, UNWRAP_PIECE_FACES)
}

/// `unwrap` with meshes above `piece_faces` faces cut into pieces of about that many faces.
pub fn unwrap_in_pieces(
    mesh: &TriMesh,
    texture_size: u32,
    piece_faces: usize,
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
    let input: Vec<MeshInput> = pieces
        .iter()
        .map(|p| MeshInput::new(&p.positions, &p.indices))
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
    let mut stage_seconds = [0.0; 4];
    let mut prev = Duration::ZERO;
    for (secs, &end) in stage_seconds.iter_mut().zip(&ends) {
        let end = end.max(prev);
        *secs = (end - prev).as_secs_f64();
        prev = end;
    }
    // Back to one mesh: piece-local vertices to input vertices, faces to their input order.
    let mut xref = Vec::new();
    let mut uvs = Vec::new();
    let mut chart = Vec::new();
    let mut faces = vec![[0u32; 3]; mesh.faces.len()];
    for (piece, out) in pieces.iter().zip(atlas.meshes) {
        let base = xref.len() as u32;
        for v in &out.vertices {
            xref.push(piece.vertex_ids[v.xref as usize]);
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
        stage_seconds,
    })
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
        let faces = (0..h)
            .flat_map(|y| {
                (0..w).flat_map(move |x| {
                    let v = |dx, dy| (y + dy) * (w + 1) + x + dx;
                    [[v(0, 0), v(1, 0), v(1, 1)], [v(0, 0), v(1, 1), v(0, 1)]]
                })
            })
            .collect();
        let m = TriMesh { vertices, faces };
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
