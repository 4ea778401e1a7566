//! Decimation to a face target: QEM edge collapse through meshoptimizer (the `meshopt` crate),
//! standing in for CuMesh's parallel `simplify(target_faces)`. meshoptimizer keeps topology
//! (it refuses collapses that would make the mesh non-manifold), so on meshes where that stops
//! it short of the target a second, permissive pass runs, and as a last resort the
//! vertex-clustering "sloppy" simplifier, which always reaches the target. The report says
//! which pass ended it so benches can measure how often the fallbacks are needed.

use meshopt::SimplifyOptions;

use crate::error::{MeshError, check_faces, check_finite};
use crate::topology::compact_vertices;
use crate::types::TriMesh;

/// Which simplifier produced the final result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecimatePass {
    /// Already at or under the target.
    Unchanged,
    /// Topology-preserving QEM collapse.
    Qem,
    /// QEM collapse allowed to remove small disconnected parts.
    QemPrune,
    /// Vertex clustering.
    Sloppy,
}

#[derive(Clone, Copy, Debug)]
pub struct DecimateReport {
    pub input_faces: usize,
    pub output_faces: usize,
    /// meshoptimizer's error estimate relative to the mesh extent.
    pub relative_error: f32,
    pub pass: DecimatePass,
}

/// Simplifies `mesh` to at most `target_faces` faces (unused vertices dropped).
pub fn decimate(
    mesh: &TriMesh,
    target_faces: usize,
) -> Result<(TriMesh, DecimateReport), MeshError> {
    if target_faces == 0 {
        return Err(MeshError::InvalidParameter {
            name: "target_faces",
            reason: "must be positive".into(),
        });
    }
    check_faces(&mesh.faces, mesh.vertices.len())?;
    check_finite(&mesh.vertices, "decimate vertices")?;
    let input_faces = mesh.faces.len();
    if input_faces <= target_faces {
        let report = DecimateReport {
            input_faces,
            output_faces: input_faces,
            relative_error: 0.0,
            pass: DecimatePass::Unchanged,
        };
        return Ok((mesh.clone(), report));
    }
    let indices: Vec<u32> = mesh.faces.iter().flatten().copied().collect();
    let target = target_faces * 3;
    // Error bound 1.0 = the whole mesh extent: the face count, not the error, is the stop rule.
    let mut error = 0.0f32;
    let mut out = meshopt::simplify_decoder(
        &indices,
        &mesh.vertices,
        target,
        1.0,
        SimplifyOptions::None,
        Some(&mut error),
    );
    let mut pass = DecimatePass::Qem;
    if out.len() > target {
        out = meshopt::simplify_decoder(
            &out,
            &mesh.vertices,
            target,
            1.0,
            SimplifyOptions::Prune | SimplifyOptions::Permissive,
            Some(&mut error),
        );
        pass = DecimatePass::QemPrune;
    }
    if out.len() > target {
        out = meshopt::simplify_sloppy_decoder(&out, &mesh.vertices, target, 1.0, Some(&mut error));
        pass = DecimatePass::Sloppy;
    }
    let mut faces: Vec<[u32; 3]> = out.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
    let mut vertices = mesh.vertices.clone();
    compact_vertices(&mut vertices, &mut faces);
    let report = DecimateReport {
        input_faces,
        output_faces: faces.len(),
        relative_error: error,
        pass,
    };
    Ok((TriMesh { vertices, faces }, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A finely tessellated height field: a bumpy open sheet.
    fn sheet(n: u32) -> TriMesh {
        let mut vertices = Vec::new();
        for j in 0..=n {
            for i in 0..=n {
                let (x, y) = (i as f32 / n as f32, j as f32 / n as f32);
                vertices.push([x, y, 0.05 * (6.0 * x).sin() * (5.0 * y).cos()]);
            }
        }
        let mut faces = Vec::new();
        for j in 0..n {
            for i in 0..n {
                let a = j * (n + 1) + i;
                faces.push([a, a + 1, a + n + 2]);
                faces.push([a, a + n + 2, a + n + 1]);
            }
        }
        TriMesh { vertices, faces }
    }

    #[test]
    fn meets_target() {
        let m = sheet(100);
        let (d, r) = decimate(&m, 2000).unwrap();
        assert!(d.faces.len() <= 2000 && d.faces.len() > 1000, "{r:?}");
        assert!(
            d.faces
                .iter()
                .flatten()
                .all(|&i| (i as usize) < d.vertices.len())
        );
        assert!(decimate(&m, 0).is_err());
    }
}
