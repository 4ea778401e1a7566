//! Decimation to a face target: QEM edge collapse through meshoptimizer (the `meshopt` crate),
//! standing in for CuMesh's parallel `simplify(target_faces)`. meshoptimizer keeps topology
//! (it refuses collapses that would make the mesh non-manifold), so on meshes where that stops
//! it short of the target a second, permissive pass runs, and as a last resort the
//! vertex-clustering "sloppy" simplifier, which always reaches the target. The report says
//! which pass ended it so benches can measure how often the fallbacks are needed.
//!
//! meshoptimizer simplifies on one thread, and the remesh hands it ~6 M faces for a 1 M target
//! (5.2 s of a 15 s `to_glb` on the H200 host). Large meshes therefore first go through a
//! parallel pass: cut into compact pieces (Morton order of face centroids), each piece
//! simplified towards its share of the target with its border vertices locked, so pieces stay
//! stitched together. The global pass then only has the remainder to do, mostly the locked
//! borders, on a mesh a few times smaller.

use meshopt::{SimplifyOptions, VertexDataAdapter};
use rayon::prelude::*;

use crate::error::{MeshError, check_faces, check_finite};
use crate::spatial;
use crate::topology::{compact_vertices, edge_groups, key_vertices, sorted_half_edges};
use crate::types::TriMesh;

/// Faces per piece of the parallel first pass. Meshes under two pieces skip it. Small enough
/// to give a many-core host work for every core on a 6 M-face remesh (~23 pieces), large
/// enough that the locked borders stay a small part of each piece.
pub const DECIMATE_PIECE_FACES: usize = 262_144;

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
    decimate_in_pieces(mesh, target_faces, DECIMATE_PIECE_FACES)
}

/// `decimate` with the parallel first pass on pieces of about `piece_faces` faces, run when
/// the mesh has at least two pieces (`usize::MAX`: never, one serial pass as before).
pub fn decimate_in_pieces(
    mesh: &TriMesh,
    target_faces: usize,
    piece_faces: usize,
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
    let vertices =
        VertexDataAdapter::new(meshopt::typed_to_bytes(&mesh.vertices), 12, 0).map_err(|e| {
            MeshError::InvalidParameter {
                name: "vertices",
                reason: e.to_string(),
            }
        })?;
    let target = target_faces * 3;
    // Errors are absolute (mesh units) so the pieces' and the global pass's compare; reported
    // relative to the mesh extent as meshoptimizer's own relative errors are.
    let scale = meshopt::simplify_scale(&vertices).max(f32::MIN_POSITIVE);
    let (indices, mut error) = if input_faces / 2 >= piece_faces {
        simplify_in_pieces(mesh, &vertices, target_faces, piece_faces)
    } else {
        (mesh.faces.iter().flatten().copied().collect(), 0.0)
    };
    // Error bound = the whole extent: the face count, not the error, is the stop rule.
    let mut run = |input: &[u32], options: SimplifyOptions| {
        let mut e = 0.0f32;
        let out = meshopt::simplify(
            input,
            &vertices,
            target,
            scale,
            options | SimplifyOptions::ErrorAbsolute,
            Some(&mut e),
        );
        error = error.max(e);
        out
    };
    let mut out = if indices.len() > target {
        run(&indices, SimplifyOptions::None)
    } else {
        indices
    };
    let mut pass = DecimatePass::Qem;
    if out.len() > target {
        out = run(&out, SimplifyOptions::Prune | SimplifyOptions::Permissive);
        pass = DecimatePass::QemPrune;
    }
    if out.len() > target {
        let mut e = 0.0f32;
        out = meshopt::simplify_sloppy(&out, &vertices, target, 1.0, Some(&mut e));
        error = error.max(e * scale);
        pass = DecimatePass::Sloppy;
    }
    let error = error / scale;
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

/// The parallel first pass: the faces cut into compact pieces of about `piece_faces`, each
/// simplified towards its share of `target_faces` with its border locked (the pieces index the
/// shared vertex buffer, so locked borders keep them stitched). Returns the concatenated
/// indices (piece order, deterministic) and the largest absolute error of a piece.
fn simplify_in_pieces(
    mesh: &TriMesh,
    vertices: &VertexDataAdapter<'_>,
    target_faces: usize,
    piece_faces: usize,
) -> (Vec<u32>, f32) {
    let n = mesh.faces.len();
    let order = spatial::morton_face_order(mesh);
    let pieces: Vec<(Vec<u32>, f32)> = order
        .par_chunks(spatial::piece_len(n, piece_faces))
        .map(|ids| {
            let faces: Vec<[u32; 3]> = ids.iter().map(|&f| mesh.faces[f as usize]).collect();
            let indices: Vec<u32> = faces.iter().flatten().copied().collect();
            // Rounded down, so the pieces together stay within the target and the global
            // pass only runs where a piece could not get down to its share.
            let share = (faces.len() as f64 * target_faces as f64 / n as f64) as usize;
            // With its border locked, a piece can only meet a share that is small next to its
            // border by collapsing its interior far more than the global pass would: stop at a
            // multiple of the border and leave the rest to the global pass.
            let share = share.max(BORDER_FACTOR * border_vertices(&faces));
            if share >= faces.len() {
                // Nothing for this piece to do (meshoptimizer asserts the target is below
                // the input).
                return (indices, 0.0);
            }
            let mut e = 0.0f32;
            let out = meshopt::simplify(
                &indices,
                vertices,
                share.max(1) * 3,
                f32::MAX,
                SimplifyOptions::LockBorder
                    | SimplifyOptions::Sparse
                    | SimplifyOptions::ErrorAbsolute,
                Some(&mut e),
            );
            (out, e)
        })
        .collect();
    let error = pieces.iter().map(|p| p.1).fold(0.0, f32::max);
    (pieces.into_iter().flat_map(|p| p.0).collect(), error)
}

/// Faces a piece keeps at least, per vertex of its border (see `simplify_in_pieces`).
const BORDER_FACTOR: usize = 4;

/// Vertices on edges that only one face of `faces` uses (a piece's cut and any holes).
fn border_vertices(faces: &[[u32; 3]]) -> usize {
    let hs = sorted_half_edges(faces);
    let mut ends: Vec<u32> = edge_groups(&hs)
        .filter(|g| g.len() == 1)
        .flat_map(|g| {
            let (a, b) = key_vertices(g[0].key);
            [a, b]
        })
        .collect();
    ends.sort_unstable();
    ends.dedup();
    ends.len()
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

    /// A closed torus grid (every edge shared by two faces, consistently oriented).
    fn torus(nu: u32, nv: u32) -> TriMesh {
        let mut vertices = Vec::new();
        for j in 0..nv {
            for i in 0..nu {
                let (u, v) = (
                    i as f32 / nu as f32 * std::f32::consts::TAU,
                    j as f32 / nv as f32 * std::f32::consts::TAU,
                );
                let r = 0.3 + (0.1 + 0.01 * (9.0 * u).sin()) * v.cos();
                vertices.push([r * u.cos(), r * u.sin(), 0.1 * v.sin()]);
            }
        }
        let id = |i: u32, j: u32| (j % nv) * nu + (i % nu);
        let mut faces = Vec::new();
        for j in 0..nv {
            for i in 0..nu {
                faces.push([id(i, j), id(i + 1, j), id(i + 1, j + 1)]);
                faces.push([id(i, j), id(i + 1, j + 1), id(i, j + 1)]);
            }
        }
        TriMesh { vertices, faces }
    }

    /// The parallel first pass must leave the pieces stitched (a closed mesh stays closed and
    /// oriented), meet the target, and cost little quality: meshoptimizer's error estimate
    /// within 1.5× of one serial pass (measured 0.97–1.02×; with pieces that collapse their
    /// interiors to a share below their border, it was 40–70×).
    #[test]
    fn pieces_stay_stitched() {
        let m = torus(240, 80); // 38,400 faces
        assert!(crate::topology::is_closed_and_oriented(&m.faces));
        let (_, serial) = decimate_in_pieces(&m, 3_000, usize::MAX).unwrap();
        for piece_faces in [4_000, 1_500] {
            let (d, r) = decimate_in_pieces(&m, 3_000, piece_faces).unwrap();
            assert!(
                d.faces.len() <= 3_000 && d.faces.len() > 2_000,
                "{piece_faces}: {r:?}"
            );
            assert_eq!(r.pass, DecimatePass::Qem, "{piece_faces}");
            assert!(
                crate::topology::is_closed_and_oriented(&d.faces),
                "{piece_faces}: a seam between pieces opened"
            );
            assert!(
                r.relative_error <= 1.5 * serial.relative_error,
                "{piece_faces}: {r:?} vs serial {serial:?}"
            );
        }
    }
}
