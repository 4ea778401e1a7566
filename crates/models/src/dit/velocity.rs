//! The flow models as the sampler calls them (`VelocityModel`): the host latent goes up, the
//! velocity comes back. The condition pair (`cond`, `neg_cond = zeros_like(cond)`) and the
//! RoPE tables are prepared once per sampling run.

use t2_tensor::{Tensor, ops};

use super::rope::RopeTables;
use super::{SLatFlowModel, SparseStructureFlowModel};
use crate::error::{ModelError, Result};
use crate::sampler::{Cond, VelocityModel};

/// Condition tokens in the model's block dtype, and their all-zero negative.
pub struct CondPair {
    pub pos: Tensor,
    pub neg: Tensor,
}

impl CondPair {
    fn new(prepared: Tensor) -> Result<CondPair> {
        let neg = Tensor::zeros(prepared.shape(), prepared.dtype(), prepared.device())?;
        Ok(CondPair { pos: prepared, neg })
    }
    fn get(&self, c: Cond) -> &Tensor {
        match c {
            Cond::Positive => &self.pos,
            Cond::Negative => &self.neg,
        }
    }
}

/// The SS flow over a dense `[1, C, R, R, R]` latent.
pub struct DenseVelocity<'a> {
    model: &'a SparseStructureFlowModel,
    cond: CondPair,
}

impl<'a> DenseVelocity<'a> {
    pub fn new(model: &'a SparseStructureFlowModel, cond: &Tensor) -> Result<Self> {
        Ok(DenseVelocity {
            model,
            cond: CondPair::new(model.prepare_cond(cond)?)?,
        })
    }
    /// The latent's shape `[1, in_channels, R, R, R]`.
    pub fn shape(&self) -> [usize; 5] {
        let r = self.model.resolution();
        [1, self.model.in_channels(), r, r, r]
    }
}

impl VelocityModel for DenseVelocity<'_> {
    fn velocity(&mut self, x_t: &[f32], t: f32, cond: Cond) -> Result<Vec<f32>> {
        let x = Tensor::from_slice(x_t, &self.shape(), self.model.device())?;
        let y = self.model.forward(&x, t, self.cond.get(cond), &mut None)?;
        Ok(y.to_vec_f32()?)
    }
}

/// An SLat flow over `[N, C]` voxel features (plus the texture stage's `concat_cond`).
pub struct SparseVelocity<'a> {
    model: &'a SLatFlowModel,
    rope: RopeTables,
    cond: CondPair,
    concat: Option<Tensor>,
    rows: usize,
    channels: usize,
}

impl<'a> SparseVelocity<'a> {
    /// `coords` are the voxels `(b, x, y, z)`; `concat` is `[N, in − out]` f32 host data.
    pub fn new(
        model: &'a SLatFlowModel,
        coords: &[[i32; 4]],
        cond: &Tensor,
        concat: Option<&[f32]>,
    ) -> Result<Self> {
        let rows = coords.len();
        let channels = model.out_channels();
        let extra = model.in_channels().saturating_sub(channels);
        let concat = match concat {
            Some(c) => {
                if extra == 0 || c.len() != rows * extra {
                    return Err(ModelError::invalid(format!(
                        "concat_cond of {} values for {rows} voxels × {extra} channels",
                        c.len()
                    )));
                }
                Some(Tensor::from_slice(c, &[rows, extra], model.device())?)
            }
            None if extra != 0 => {
                return Err(ModelError::invalid(format!(
                    "this SLat flow takes {extra} concat_cond channels"
                )));
            }
            None => None,
        };
        Ok(SparseVelocity {
            model,
            rope: model.rope_tables(coords)?,
            cond: CondPair::new(model.prepare_cond(cond)?)?,
            concat,
            rows,
            channels,
        })
    }
}

impl VelocityModel for SparseVelocity<'_> {
    fn velocity(&mut self, x_t: &[f32], t: f32, cond: Cond) -> Result<Vec<f32>> {
        let x = Tensor::from_slice(x_t, &[self.rows, self.channels], self.model.device())?;
        let y = self.model.forward(
            &x,
            self.concat.as_ref(),
            &self.rope,
            t,
            self.cond.get(cond),
            &mut None,
        )?;
        Ok(ops::to_dtype(&y, t2_tensor::DType::F32)?.to_vec_f32()?)
    }
}
