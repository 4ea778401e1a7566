//! The decoders: the dense sparse-structure decoder and the two SC-VAE decoders, with the
//! heads the pipeline applies to their outputs.

mod sc_vae;
pub mod ss;

pub use sc_vae::{Decoded, ScVaeDecoder, Subdivide, Subdivision};
pub use ss::{SparseStructureDecoder, occupied_coords};

use t2_tensor::{Device, Tensor};

use crate::config::ModelFiles;
use crate::error::{ModelError, Result};
use crate::nn::{Precision, Probe};

/// The shape decoder's head output (`FlexiDualGridVaeDecoder.forward`, inference branch): one
/// dual vertex, three edge flags and a split weight per fine voxel, what
/// `flexible_dual_grid_to_mesh` consumes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FlexiDualGrid {
    /// Fine voxel coords `(x, y, z)` on the `resolution³` grid, in decoder emission order.
    pub coords: Vec<[i32; 3]>,
    /// `(1 + 2m)·sigmoid(f[0:3]) − m` with margin m (voxel-local units).
    pub dual_vertices: Vec<[f32; 3]>,
    /// `f[3:6] > 0`: intersection flags of the x / y / z edges at the voxel's max corner.
    pub intersected: Vec<[bool; 3]>,
    /// `softplus(f[6])`.
    pub split_weight: Vec<f32>,
    pub resolution: u32,
}

impl FlexiDualGrid {
    /// The head on raw 7-channel features `[M, 7]` (f32, row-major).
    pub fn from_features(
        coords: &[[i32; 4]],
        feats: &[f32],
        resolution: u32,
        voxel_margin: f64,
    ) -> Result<FlexiDualGrid> {
        if feats.len() != coords.len() * 7 {
            return Err(ModelError::invalid(format!(
                "{} head values for {} voxels × 7",
                feats.len(),
                coords.len()
            )));
        }
        use t2_tensor::ops::Unary;
        // As the reference's f32 tensor ops round: (1 + 2m)·σ(f) rounded, then − m rounded.
        let (scale, margin) = ((1.0 + 2.0 * voxel_margin) as f32, voxel_margin as f32);
        let mut g = FlexiDualGrid {
            resolution,
            ..Default::default()
        };
        for (c, f) in coords.iter().zip(feats.chunks_exact(7)) {
            g.coords.push([c[1], c[2], c[3]]);
            g.dual_vertices
                .push([0, 1, 2].map(|k| scale * Unary::Sigmoid.apply(f[k]) - margin));
            g.intersected.push([f[3] > 0.0, f[4] > 0.0, f[5] > 0.0]);
            g.split_weight.push(Unary::Softplus.apply(f[6]));
        }
        Ok(g)
    }
}

/// `FlexiDualGridVaeDecoder`: the shape SC-VAE decoder.
pub struct ShapeDecoder {
    inner: ScVaeDecoder,
}

/// What `decode` returns: the mesh inputs, the raw features and the subdivisions (`subs`).
pub struct ShapeDecoded {
    pub grid: FlexiDualGrid,
    pub decoded: Decoded,
}

impl ShapeDecoder {
    pub fn load(files: &ModelFiles, precision: Precision, device: &Device) -> Result<Self> {
        let (name, inner) = ScVaeDecoder::load(files, precision, device)?;
        if name != ScVaeDecoder::FDG {
            return Err(ModelError::config(
                &files.config,
                format!(
                    "shape decoder class `{name}`, expected {}",
                    ScVaeDecoder::FDG
                ),
            ));
        }
        Ok(ShapeDecoder { inner })
    }

    pub fn inner(&self) -> &ScVaeDecoder {
        &self.inner
    }

    /// `set_resolution(resolution)` then the forward with `return_subs=True`.
    pub fn decode(
        &self,
        coords: Vec<[i32; 4]>,
        feats: &Tensor,
        resolution: u32,
        subdivide: Subdivide<'_>,
        probe: &mut Probe,
    ) -> Result<ShapeDecoded> {
        let decoded = self.inner.run(coords, feats, subdivide, None, probe)?;
        let grid = FlexiDualGrid::from_features(
            &decoded.coords,
            &decoded.feats.to_vec_f32()?,
            resolution,
            self.inner.config().voxel_margin,
        )?;
        Ok(ShapeDecoded { grid, decoded })
    }

    /// `upsample(slat, upsample_times)`: the voxel coords after that many predicted C2S levels.
    pub fn upsample(
        &self,
        coords: Vec<[i32; 4]>,
        feats: &Tensor,
        times: usize,
    ) -> Result<Vec<[i32; 4]>> {
        Ok(self
            .inner
            .run(coords, feats, Subdivide::Predict, Some(times), &mut None)?
            .coords)
    }
}

/// `SparseUnetVaeDecoder` with `pred_subdiv = false`: the texture SC-VAE decoder.
pub struct TexDecoder {
    inner: ScVaeDecoder,
}

impl TexDecoder {
    pub fn load(files: &ModelFiles, precision: Precision, device: &Device) -> Result<Self> {
        let (name, inner) = ScVaeDecoder::load(files, precision, device)?;
        if name != ScVaeDecoder::UNET || inner.predicts_subdivision() {
            return Err(ModelError::config(
                &files.config,
                format!(
                    "texture decoder must be {} with pred_subdiv false",
                    ScVaeDecoder::UNET
                ),
            ));
        }
        Ok(TexDecoder { inner })
    }

    pub fn inner(&self) -> &ScVaeDecoder {
        &self.inner
    }

    /// The pipeline's `decode_tex_slat`: `decoder(slat, guide_subs) * 0.5 + 0.5`, returned as
    /// `(fine coords, [M, out] attributes)` on the host.
    pub fn decode(
        &self,
        coords: Vec<[i32; 4]>,
        feats: &Tensor,
        guide: &[Subdivision],
        probe: &mut Probe,
    ) -> Result<(Vec<[i32; 4]>, Vec<f32>)> {
        let d = self
            .inner
            .run(coords, feats, Subdivide::Guide(guide), None, probe)?;
        let attrs = d
            .feats
            .to_vec_f32()?
            .into_iter()
            .map(|v| v * 0.5 + 0.5)
            .collect();
        Ok((d.coords, attrs))
    }
}
