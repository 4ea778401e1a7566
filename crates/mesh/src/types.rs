//! The shared mesh types.

/// A triangle mesh: positions and vertex-index triples (no winding guarantee unless stated).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TriMesh {
    pub vertices: Vec<[f32; 3]>,
    pub faces: Vec<[u32; 3]>,
}

/// What the decoders hand to the mesh stage (the reference's `MeshWithVoxel`): the extracted
/// mesh plus the fine voxels with their PBR attributes, in the AABB `[-0.5, 0.5]³`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MeshWithVoxel {
    pub mesh: TriMesh,
    /// Fine-grid voxel coords `(x, y, z)` on the `resolution³` grid (decoder emission order).
    pub coords: Vec<[i32; 3]>,
    /// Per voxel: base colour (3), metallic, roughness, alpha; not clamped.
    pub attrs: Vec<[f32; 6]>,
    /// Grid resolution `res`; voxel size is `1 / res`, origin `-0.5`.
    pub resolution: u32,
}

impl MeshWithVoxel {
    pub fn voxel_size(&self) -> f32 {
        1.0 / self.resolution as f32
    }
}
