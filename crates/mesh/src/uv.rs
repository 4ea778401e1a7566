//! UV unwrapping: charts and packing through the pure-Rust `uvunwrap` crate (xatlas-like
//! segmentation by normal cone, LSCM/ARAP flattening, packing), in place of CuMesh's GPU
//! clustering + xatlas. Seam vertices are duplicated; `xref` maps each output vertex back to
//! its input vertex (the reference's `vmaps`) so normals can be carried over.

use uvunwrap::{Density, MeshInput, Options, Packing};

use crate::error::{MeshError, check_faces, check_finite};
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
}

/// Unwraps `mesh` into one `texture_size²` atlas page.
pub fn unwrap(mesh: &TriMesh, texture_size: u32) -> Result<UvMesh, MeshError> {
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
    let indices: Vec<u32> = mesh.faces.iter().flatten().copied().collect();
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
    // The crate forbids unsafe code, so a panic would be a bug in it: report it as an error
    // rather than take the service down.
    let input = [MeshInput::new(&mesh.vertices, &indices)];
    let atlas = std::panic::catch_unwind(|| uvunwrap::generate(&input, &options))
        .map_err(|_| MeshError::Unwrap("the unwrapper panicked".into()))?
        .map_err(|e| MeshError::Unwrap(e.to_string()))?;
    if atlas.page_count > 1 {
        return Err(MeshError::Unwrap(format!(
            "charts need {} pages of {texture_size}²; one is supported",
            atlas.page_count
        )));
    }
    let out = atlas
        .meshes
        .into_iter()
        .next()
        .ok_or_else(|| MeshError::Unwrap("no output mesh".into()))?;
    let faces = out
        .indices
        .chunks_exact(3)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    Ok(UvMesh {
        positions: out
            .vertices
            .iter()
            .map(|v| mesh.vertices[v.xref as usize])
            .collect(),
        uvs: out.vertices.iter().map(|v| v.uv).collect(),
        xref: out.vertices.iter().map(|v| v.xref).collect(),
        chart: out
            .vertices
            .iter()
            .map(|v| v.chart.unwrap_or(u32::MAX))
            .collect(),
        faces,
        chart_count: atlas.chart_count,
        utilization: atlas.utilization,
    })
}
