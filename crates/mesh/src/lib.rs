//! The mesh side of TRELLIS.2: flexible-dual-grid extraction, hole filling, narrow-band remesh,
//! decimation, cleanup, UV unwrapping, texture baking, GLB/OBJ/PLY export and preview rendering.
//! Pure geometry on plain Rust types (no tensors), so it runs anywhere and is testable alone.

pub mod bvh;
pub mod error;
pub mod export;
pub mod fdg;
pub mod geom;
pub mod holes;
pub mod remesh;
pub mod render;
pub mod topology;
pub mod types;
mod voxel_hash;

pub use error::MeshError;
pub use types::{MeshWithVoxel, Texture, TexturedMesh, TriMesh};
