//! `SparseStructureFlowModel`: the dense DiT over the `res³` grid of the sparse-structure latent.

use t2_tensor::{Device, Tensor, Weights, ops};

use super::rope::{RopeTables, dense_grid};
use super::{CrossKvCache, FlowTransformer};
use crate::config::{CheckpointConfig, FlowConfig, ModelFiles};
use crate::error::{ModelError, Result};
use crate::nn::{Precision, Probe};

pub struct SparseStructureFlowModel {
    core: FlowTransformer,
    /// The reference's `rope_phases` buffer (computed at construction, not in the checkpoint).
    rope: RopeTables,
}

impl SparseStructureFlowModel {
    pub const CLASS: &'static str = "SparseStructureFlowModel";

    pub fn load(files: &ModelFiles, precision: Precision, device: &Device) -> Result<Self> {
        let cfg: FlowConfig =
            CheckpointConfig::load(&files.config)?.args_as(&files.config, &[Self::CLASS])?;
        let ws = Weights::open(&files.weights)?;
        let m = Self::from_weights(&ws, &cfg, precision, device)?;
        ws.finish()?;
        Ok(m)
    }

    pub fn from_weights(
        ws: &Weights,
        cfg: &FlowConfig,
        precision: Precision,
        device: &Device,
    ) -> Result<Self> {
        let core = FlowTransformer::load(ws, cfg, precision, device)?;
        let rope = core.rope_tables(dense_grid(cfg.resolution))?;
        Ok(SparseStructureFlowModel { core, rope })
    }

    pub fn config(&self) -> &FlowConfig {
        &self.core.cfg
    }
    pub fn resolution(&self) -> usize {
        self.core.cfg.resolution
    }
    pub fn in_channels(&self) -> usize {
        self.core.cfg.in_channels
    }
    pub fn device(&self) -> &Device {
        self.core.device()
    }

    /// See `FlowTransformer::prepare_cond`.
    pub fn prepare_cond(&self, cond: &Tensor) -> Result<Tensor> {
        self.core.prepare_cond(cond)
    }

    /// The grid latent `[1, in, R, R, R]` as tokens `[R³, in]` (token `x·R² + y·R + z`).
    fn tokens(&self, x: &Tensor) -> Result<Tensor> {
        let cfg = &self.core.cfg;
        let r = cfg.resolution;
        if x.shape() != [1, cfg.in_channels, r, r, r] {
            return Err(ModelError::invalid(format!(
                "SS latent {:?}, expected [1, {}, {r}, {r}, {r}]",
                x.shape(),
                cfg.in_channels
            )));
        }
        Ok(ops::permute(
            &x.reshape(&[cfg.in_channels, r * r * r])?,
            &[1, 0],
        )?)
    }

    /// `x [1, in, R, R, R]` f32 → velocity `[1, out, R, R, R]` f32; tokens are `x·R² + y·R + z`.
    pub fn forward(&self, x: &Tensor, t: f32, cond: &Tensor, probe: &mut Probe) -> Result<Tensor> {
        let cfg = &self.core.cfg;
        let r = cfg.resolution;
        let y = self
            .core
            .forward(&self.tokens(x)?, &self.rope, t, cond, probe)?;
        let y = ops::permute(&y, &[1, 0])?;
        Ok(y.reshape(&[1, cfg.out_channels, r, r, r])?)
    }

    /// The cross-attention keys and values of conditions from `prepare_cond` (see
    /// `FlowTransformer::cross_kv`).
    pub fn cross_kv(&self, conds: &[&Tensor]) -> Result<CrossKvCache> {
        self.core.cross_kv(conds)
    }

    /// `forward` against every condition of `kv` in one batched pass → `[B, out, R, R, R]`.
    pub fn forward_cached(&self, x: &Tensor, t: f32, kv: &CrossKvCache) -> Result<Tensor> {
        let cfg = &self.core.cfg;
        let (r, b) = (cfg.resolution, kv.batch());
        let y = self
            .core
            .forward_cached(&self.tokens(x)?, &self.rope, t, kv)?;
        let y = y.reshape(&[b, r * r * r, cfg.out_channels])?;
        let y = ops::permute(&y, &[0, 2, 1])?;
        Ok(y.reshape(&[b, cfg.out_channels, r, r, r])?)
    }
}
