//! The mesh side of TRELLIS.2: flexible-dual-grid extraction, hole filling, narrow-band remesh,
//! decimation, cleanup, UV unwrapping, texture baking, GLB/OBJ/PLY export and preview rendering.
//! Pure geometry on plain Rust types (no tensors), so it runs anywhere and is testable alone.

// `!(x > t)` is deliberate in input checks: unlike `x <= t` it also rejects NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod bake;
mod brick_grid;
pub mod bvh;
pub mod cleanup;
pub mod collapse;
pub mod decimate;
pub mod error;
pub mod export;
pub mod fdg;
pub mod geom;
pub mod glb;
pub mod gpu;
pub mod holes;
mod inpaint;
mod png;
pub mod postprocess;
pub mod remesh;
pub mod render;
pub mod sample;
mod spatial;
pub mod surface;
pub mod synth;
pub mod topology;
pub mod types;
pub mod uv;
mod voxel_hash;

pub use error::MeshError;
pub use glb::TextureFormat;
pub use postprocess::{
    GlbGeometry, GlbParams, GlbReport, prepare_geometry, to_glb, to_glb_on, to_glb_timed,
    to_textured_mesh, to_textured_mesh_on,
};
pub use types::{MeshWithVoxel, Texture, TexturedMesh, TriMesh};
