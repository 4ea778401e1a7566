//! Decimation by parallel edge collapse: the reference's own algorithm (CuMesh `simplify`),
//! on the CPU (rayon) and on the GPU (`gpu::collapse`), step for step the same.
//!
//! Each step, on the current mesh: every edge gets a collapse cost (plane-distance error of
//! the collapsed position against both endpoints' faces, `+ λ_len·len²`, `+ λ_skinny·skinny·
//! len²`, infinite when a face would flip); every edge under the threshold writes its
//! `(cost, edge id)` key into the faces around both endpoints with an atomic min; an edge
//! whose key is the minimum at all of them collapses (its endpoints merge at the midpoint, or
//! at the boundary endpoint when exactly one is on the boundary). Collapses of one step touch
//! disjoint faces, so they run in parallel without conflicts, and the atomic min makes the
//! choice independent of thread order: the output is deterministic, and the CPU and CUDA
//! steps repeat each other's float operations in the same order, so they give the same mesh.
//! The threshold starts at 1e-8 and grows ×10 after a step that removes < 1 % of the faces;
//! the loop ends after the step that reaches the target (so, like the reference, it can land
//! somewhat under it).
//!
//! Two deliberate differences from the reference, both where it misbehaves:
//! - The plane error is summed from each face's plane distance to the collapsed point
//!   (`n̂·(v − a)`, small numbers) instead of evaluating summed f32 quadrics (`vᵀQv` of terms
//!   ~1 cancelling to ~1e-8: rounding noise of ~1e-7 there is larger than the 1e-8 start
//!   threshold, and can even make a cost negative). Same quantity, without the cancellation.
//! - A collapse that would break the manifold (the endpoints share a neighbour that is not
//!   opposite their shared edge, or both are on a boundary the edge is not part of) is vetoed
//!   like a flip. The reference does not check this; our UV unwrap needs a manifold mesh.

mod cpu;

use crate::error::{MeshError, check_faces, check_finite};
use crate::types::TriMesh;

/// The reference's settings (`CuMesh.simplify` options).
#[derive(Clone, Copy, Debug)]
pub struct CollapseParams {
    pub lambda_edge_length: f32,
    pub lambda_skinny: f32,
    /// Cost threshold of the first step (mesh units squared).
    pub start_threshold: f32,
}

impl Default for CollapseParams {
    fn default() -> Self {
        CollapseParams {
            lambda_edge_length: 1e-2,
            lambda_skinny: 1e-3,
            start_threshold: 1e-8,
        }
    }
}

/// How a decimation by collapse went.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CollapseReport {
    pub steps: usize,
    pub final_threshold: f32,
    /// False when every remaining collapse was vetoed before the target was reached.
    pub reached_target: bool,
}

/// One step's implementation: the CPU one here, the CUDA one in `gpu::collapse`.
pub(crate) trait CollapseStepper {
    /// Runs one step at `threshold`; returns the number of faces left.
    fn step(&mut self, threshold: f32) -> Result<usize, MeshError>;
    fn faces(&self) -> usize;
    /// The mesh as it stands (every vertex kept, including ones no face uses any more).
    fn into_mesh(self) -> Result<TriMesh, MeshError>;
}

/// Steps `stepper` until at most `target_faces` faces are left (the reference's loop).
pub(crate) fn run<S: CollapseStepper>(
    mut stepper: S,
    target_faces: usize,
    params: &CollapseParams,
) -> Result<(TriMesh, CollapseReport), MeshError> {
    let mut threshold = params.start_threshold;
    let mut faces = stepper.faces();
    let mut steps = 0;
    let mut reached_target = faces <= target_faces;
    while !reached_target {
        let left = stepper.step(threshold)?;
        steps += 1;
        if left <= target_faces {
            reached_target = true;
            break;
        }
        if ((faces - left) as f64) < 0.01 * faces as f64 {
            threshold *= 10.0;
            // Past f32::MAX every finite cost was already allowed: what is left is vetoed.
            if !threshold.is_finite() {
                break;
            }
        }
        faces = left;
    }
    let mesh = stepper.into_mesh()?;
    Ok((
        mesh,
        CollapseReport {
            steps,
            final_threshold: threshold,
            reached_target,
        },
    ))
}

/// Simplifies `mesh` towards `target_faces` on the CPU (vertices no face uses are kept;
/// `decimate` compacts them).
pub fn collapse_cpu(
    mesh: &TriMesh,
    target_faces: usize,
    params: &CollapseParams,
) -> Result<(TriMesh, CollapseReport), MeshError> {
    check_input(mesh, target_faces)?;
    run(cpu::CpuStepper::new(mesh, params), target_faces, params)
}

pub(crate) fn check_input(mesh: &TriMesh, target_faces: usize) -> Result<(), MeshError> {
    if target_faces == 0 {
        return Err(MeshError::InvalidParameter {
            name: "target_faces",
            reason: "must be positive".into(),
        });
    }
    if mesh.vertices.len() >= u32::MAX as usize || mesh.faces.len() >= (u32::MAX / 3) as usize {
        return Err(MeshError::InvalidParameter {
            name: "mesh",
            reason: "too many vertices or faces for 32-bit ids".into(),
        });
    }
    check_faces(&mesh.faces, mesh.vertices.len())?;
    check_finite(&mesh.vertices, "collapse vertices")
}

#[cfg(test)]
pub(crate) mod tests;
