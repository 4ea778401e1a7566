//! The flow models as the sampler calls them (`VelocityModel`): the host latent goes up, the
//! velocity comes back. Per sampling run, the condition pair (`cond`, `neg_cond =
//! zeros_like(cond)`), its cross-attention keys and values and the RoPE tables are prepared
//! once; a CFG step runs the pair as one batch-2 forward.

use std::cell::OnceCell;

use t2_tensor::{DType, Tensor, ops};

use super::rope::RopeTables;
use super::{CrossKvCache, SLatFlowModel, SparseStructureFlowModel};
use crate::error::{ModelError, Result};
use crate::sampler::{Cond, VelocityModel};

/// Condition tokens in the model's block dtype, their all-zero negative, and the cross-attention
/// keys/values of each (built on first use: the texture stage never needs the pair).
struct CondCache {
    pos: Tensor,
    neg: Tensor,
    kv_pos: OnceCell<CrossKvCache>,
    kv_neg: OnceCell<CrossKvCache>,
    kv_pair: OnceCell<CrossKvCache>,
}

impl CondCache {
    fn new(prepared: Tensor) -> Result<CondCache> {
        let neg = Tensor::zeros(prepared.shape(), prepared.dtype(), prepared.device())?;
        Ok(CondCache {
            pos: prepared,
            neg,
            kv_pos: OnceCell::new(),
            kv_neg: OnceCell::new(),
            kv_pair: OnceCell::new(),
        })
    }

    /// The cache for one condition, or for the `(positive, negative)` pair when `cond` is None.
    fn get(
        &self,
        cond: Option<Cond>,
        build: impl Fn(&[&Tensor]) -> Result<CrossKvCache>,
    ) -> Result<&CrossKvCache> {
        let (cell, conds): (_, Vec<&Tensor>) = match cond {
            Some(Cond::Positive) => (&self.kv_pos, vec![&self.pos]),
            Some(Cond::Negative) => (&self.kv_neg, vec![&self.neg]),
            None => (&self.kv_pair, vec![&self.pos, &self.neg]),
        };
        if cell.get().is_none() {
            let _ = cell.set(build(&conds)?);
        }
        Ok(cell.get().expect("set above"))
    }
}

/// Splits a `[2·n]` pair output into its halves.
fn halves(mut v: Vec<f32>) -> Result<(Vec<f32>, Vec<f32>)> {
    if !v.len().is_multiple_of(2) {
        return Err(ModelError::invalid("odd-sized CFG pair output"));
    }
    let neg = v.split_off(v.len() / 2);
    Ok((v, neg))
}

/// The SS flow over a dense `[1, C, R, R, R]` latent.
pub struct DenseVelocity<'a> {
    model: &'a SparseStructureFlowModel,
    cond: CondCache,
}

impl<'a> DenseVelocity<'a> {
    pub fn new(model: &'a SparseStructureFlowModel, cond: &Tensor) -> Result<Self> {
        Ok(DenseVelocity {
            model,
            cond: CondCache::new(model.prepare_cond(cond)?)?,
        })
    }
    /// The latent's shape `[1, in_channels, R, R, R]`.
    pub fn shape(&self) -> [usize; 5] {
        let r = self.model.resolution();
        [1, self.model.in_channels(), r, r, r]
    }

    fn run(&self, x_t: &[f32], t: f32, cond: Option<Cond>) -> Result<Vec<f32>> {
        let x = Tensor::from_slice(x_t, &self.shape(), self.model.device())?;
        let kv = self.cond.get(cond, |c| self.model.cross_kv(c))?;
        Ok(self.model.forward_cached(&x, t, kv)?.to_vec_f32()?)
    }
}

impl VelocityModel for DenseVelocity<'_> {
    fn velocity(&mut self, x_t: &[f32], t: f32, cond: Cond) -> Result<Vec<f32>> {
        self.run(x_t, t, Some(cond))
    }
    fn velocity_pair(&mut self, x_t: &[f32], t: f32) -> Result<(Vec<f32>, Vec<f32>)> {
        halves(self.run(x_t, t, None)?)
    }
}

/// An SLat flow over `[N, C]` voxel features (plus the texture stage's `concat_cond`).
pub struct SparseVelocity<'a> {
    model: &'a SLatFlowModel,
    rope: RopeTables,
    cond: CondCache,
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
            cond: CondCache::new(model.prepare_cond(cond)?)?,
            concat,
            rows,
            channels,
        })
    }

    fn run(&self, x_t: &[f32], t: f32, cond: Option<Cond>) -> Result<Vec<f32>> {
        let x = Tensor::from_slice(x_t, &[self.rows, self.channels], self.model.device())?;
        let kv = self.cond.get(cond, |c| self.model.cross_kv(c))?;
        let y = self
            .model
            .forward_cached(&x, self.concat.as_ref(), &self.rope, t, kv)?;
        Ok(ops::to_dtype(&y, DType::F32)?.to_vec_f32()?)
    }
}

impl VelocityModel for SparseVelocity<'_> {
    fn velocity(&mut self, x_t: &[f32], t: f32, cond: Cond) -> Result<Vec<f32>> {
        self.run(x_t, t, Some(cond))
    }
    fn velocity_pair(&mut self, x_t: &[f32], t: f32) -> Result<(Vec<f32>, Vec<f32>)> {
        halves(self.run(x_t, t, None)?)
    }
}
