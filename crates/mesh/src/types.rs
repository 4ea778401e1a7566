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

/// An 8-bit texture, rows top to bottom, `channels` interleaved bytes per texel.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Texture {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub data: Vec<u8>,
}

impl Texture {
    /// How many bytes differ from `other`'s, and how many by more than one 8-bit level
    /// (bytes past the shorter of the two are not compared): the parity measure of two bakes.
    pub fn byte_differences(&self, other: &Texture) -> (usize, usize) {
        self.data
            .iter()
            .zip(&other.data)
            .fold((0, 0), |(differ, over_one), (a, b)| {
                (
                    differ + usize::from(a != b),
                    over_one + usize::from(a.abs_diff(*b) > 1),
                )
            })
    }
}

/// The finished asset before serialisation: a UV-mapped mesh with its PBR textures, in the
/// model's own Z-up frame (writers convert to glTF's Y-up).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TexturedMesh {
    pub positions: Vec<[f32; 3]>,
    pub normals: Vec<[f32; 3]>,
    /// UVs with v pointing down the texture rows' order as baked (writers flip as glTF needs).
    pub uvs: Vec<[f32; 2]>,
    pub faces: Vec<[u32; 3]>,
    /// RGBA: base colour with alpha in A.
    pub base_color: Texture,
    /// RGB: R = 0, G = roughness, B = metallic (glTF's metallicRoughness layout).
    pub metallic_roughness: Texture,
    /// The reference sets `doubleSided = not remesh`.
    pub double_sided: bool,
}

#[cfg(test)]
mod tests {
    use super::Texture;

    #[test]
    fn byte_differences_count_any_and_over_one_level() {
        let t = |data: Vec<u8>| Texture {
            width: 2,
            height: 1,
            channels: 2,
            data,
        };
        assert_eq!(
            t(vec![0, 10, 20, 255]).byte_differences(&t(vec![0, 11, 23, 250])),
            (3, 2)
        );
        assert_eq!(t(vec![7; 4]).byte_differences(&t(vec![7; 4])), (0, 0));
    }
}
