//! Decimation to a face target. Production: the reference's parallel edge collapse
//! (`crate::collapse`; on the GPU when the mesh stage has one). If every remaining collapse is
//! vetoed before the target (flips, the manifold rule), meshoptimizer finishes the job: a
//! permissive QEM pass, then as a last resort the vertex-clustering "sloppy" simplifier, which
//! always reaches the target. The report says which pass ended it.
//!
//! The meshoptimizer path with a parallel first pass (`decimate_in_pieces`) stays for
//! comparison (`t2-mesh-bench`): meshoptimizer simplifies on one thread, so large meshes are cut
//! into compact pieces (Morton order of face centroids), each simplified towards its share of
//! the target with its border vertices locked so pieces stay stitched, and a global pass does
//! the remainder.

use meshopt::{SimplifyOptions, VertexDataAdapter};
use rayon::prelude::*;

use crate::collapse::{CollapseParams, CollapseReport, collapse_cpu};
use crate::error::{MeshError, check_faces, check_finite};
use crate::gpu::collapse::{DeviceMesh, collapse_gpu, collapse_resident};
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
    /// The parallel edge collapse alone.
    Collapse,
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
    /// meshoptimizer's error estimate relative to the mesh extent, where meshoptimizer ran.
    pub relative_error: Option<f32>,
    pub pass: DecimatePass,
    /// The parallel edge collapse's steps, where it ran.
    pub collapse: Option<CollapseReport>,
}

/// Simplifies `mesh` to at most `target_faces` faces (unused vertices dropped) with the
/// parallel edge collapse, on `gpu` when given (the same mesh either way).
pub fn decimate_on(
    mesh: &TriMesh,
    target_faces: usize,
    gpu: Option<&t2_tensor::cuda::CudaDevice>,
) -> Result<(TriMesh, DecimateReport), MeshError> {
    let input_faces = mesh.faces.len();
    if input_faces <= target_faces && target_faces > 0 {
        check_faces(&mesh.faces, mesh.vertices.len())?;
        return Ok((mesh.clone(), unchanged(input_faces)));
    }
    let params = CollapseParams::default();
    let (collapsed, steps) = match gpu {
        Some(dev) => collapse_gpu(dev, mesh, target_faces, &params)?,
        None => collapse_cpu(mesh, target_faces, &params)?,
    };
    finish_collapse(collapsed, steps, input_faces, target_faces)
}

/// [`decimate_on`] of a mesh on the device (the GPU remesh's output), which never crosses the
/// bus before it is simplified.
pub(crate) fn decimate_resident(
    mesh: DeviceMesh,
    target_faces: usize,
) -> Result<(TriMesh, DecimateReport), MeshError> {
    let input_faces = mesh.face_count();
    if input_faces <= target_faces && target_faces > 0 {
        return Ok((mesh.download()?, unchanged(input_faces)));
    }
    if target_faces == 0 {
        return Err(MeshError::InvalidParameter {
            name: "target_faces",
            reason: "must be positive".into(),
        });
    }
    let params = CollapseParams::default();
    let (collapsed, steps) = collapse_resident(mesh, target_faces, &params)?;
    finish_collapse(collapsed, steps, input_faces, target_faces)
}

/// The collapse's report; meshoptimizer finishes when every collapse was vetoed short of the
/// target.
fn finish_collapse(
    collapsed: TriMesh,
    steps: CollapseReport,
    input_faces: usize,
    target_faces: usize,
) -> Result<(TriMesh, DecimateReport), MeshError> {
    let mut report = DecimateReport {
        input_faces,
        output_faces: collapsed.faces.len(),
        relative_error: None,
        pass: DecimatePass::Collapse,
        collapse: Some(steps),
    };
    let TriMesh {
        mut vertices,
        faces,
    } = collapsed;
    let mut faces = if steps.reached_target {
        faces
    } else {
        let adapter = vertex_adapter(&vertices)?;
        let indices: Vec<u32> = faces.iter().flatten().copied().collect();
        let (out, error, pass) = finish_with_meshopt(indices, &adapter, target_faces, 0.0);
        report.relative_error = Some(error);
        report.pass = pass;
        out.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect()
    };
    compact_vertices(&mut vertices, &mut faces);
    report.output_faces = faces.len();
    Ok((TriMesh { vertices, faces }, report))
}

fn unchanged(faces: usize) -> DecimateReport {
    DecimateReport {
        input_faces: faces,
        output_faces: faces,
        relative_error: Some(0.0),
        pass: DecimatePass::Unchanged,
        collapse: None,
    }
}

fn vertex_adapter(vertices: &[[f32; 3]]) -> Result<VertexDataAdapter<'_>, MeshError> {
    VertexDataAdapter::new(meshopt::typed_to_bytes(vertices), 12, 0).map_err(|e| {
        MeshError::InvalidParameter {
            name: "vertices",
            reason: e.to_string(),
        }
    })
}

/// meshoptimizer from `indices` to `target_faces`: a QEM pass if needed, then a permissive
/// one, then vertex clustering, as far as each is needed. Returns the indices, the relative
/// error (the largest of `error`, absolute, and each pass's) and the pass that ended it.
fn finish_with_meshopt(
    indices: Vec<u32>,
    vertices: &VertexDataAdapter<'_>,
    target_faces: usize,
    mut error: f32,
) -> (Vec<u32>, f32, DecimatePass) {
    let target = target_faces * 3;
    // Errors are absolute (mesh units) so the pieces' and the global pass's compare; reported
    // relative to the mesh extent as meshoptimizer's own relative errors are.
    let scale = meshopt::simplify_scale(vertices).max(f32::MIN_POSITIVE);
    // Error bound = the whole extent: the face count, not the error, is the stop rule.
    let mut run = |input: &[u32], options: SimplifyOptions| {
        let mut e = 0.0f32;
        let out = meshopt::simplify(
            input,
            vertices,
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
        out = meshopt::simplify_sloppy(&out, vertices, target, 1.0, Some(&mut e));
        error = error.max(e * scale);
        pass = DecimatePass::Sloppy;
    }
    (out, error / scale, pass)
}

/// `decimate_on` on the CPU.
pub fn decimate(
    mesh: &TriMesh,
    target_faces: usize,
) -> Result<(TriMesh, DecimateReport), MeshError> {
    decimate_on(mesh, target_faces, None)
}

/// The meshoptimizer path (for comparison): a parallel first pass on pieces of about
/// `piece_faces` faces, run when the mesh has at least two pieces (`usize::MAX`: never, one
/// serial pass), then the global pass.
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
        return Ok((mesh.clone(), unchanged(input_faces)));
    }
    let vertices = vertex_adapter(&mesh.vertices)?;
    let (indices, error) = if input_faces / 2 >= piece_faces {
        simplify_in_pieces(mesh, &vertices, target_faces, piece_faces)
    } else {
        (mesh.faces.iter().flatten().copied().collect(), 0.0)
    };
    let (out, error, pass) = finish_with_meshopt(indices, &vertices, target_faces, error);
    let mut faces: Vec<[u32; 3]> = out.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
    let mut vertices = mesh.vertices.clone();
    compact_vertices(&mut vertices, &mut faces);
    let report = DecimateReport {
        input_faces,
        output_faces: faces.len(),
        relative_error: Some(error),
        pass,
        collapse: None,
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

    use crate::collapse::tests::sheet;

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
        assert_eq!(r.pass, DecimatePass::Collapse);
        assert!(decimate(&m, 0).is_err());
    }

    /// Closed tetrahedra cannot lose a face to a manifold-keeping collapse: meshoptimizer's
    /// permissive passes finish the job, and the report says so.
    #[test]
    fn vetoed_collapse_falls_back_to_meshopt() {
        let mut m = TriMesh {
            vertices: Vec::new(),
            faces: Vec::new(),
        };
        for k in 0..50u32 {
            let o = k as f32 * 2.0;
            m.vertices.extend([
                [o, 0.0, 0.0],
                [o + 1.0, 0.0, 0.0],
                [o, 1.0, 0.0],
                [o, 0.0, 1.0],
            ]);
            let b = 4 * k;
            m.faces.extend([
                [b, b + 2, b + 1],
                [b, b + 1, b + 3],
                [b + 1, b + 2, b + 3],
                [b, b + 3, b + 2],
            ]);
        }
        let (d, r) = decimate(&m, 100).unwrap();
        assert!(d.faces.len() <= 100, "{r:?}");
        assert!(!r.collapse.unwrap().reached_target, "{r:?}");
        assert_ne!(r.pass, DecimatePass::Collapse, "{r:?}");
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
                r.relative_error.unwrap() <= 1.5 * serial.relative_error.unwrap(),
                "{piece_faces}: {r:?} vs serial {serial:?}"
            );
        }
    }
}
