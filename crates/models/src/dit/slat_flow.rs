//! `SLatFlowModel`: the sparse DiT over structured-latent voxels, with the texture stage's
//! `concat_cond` (the normalised shape latent appended to the input channels).

use t2_tensor::{Device, Tensor, Weights, ops};

use super::rope::RopeTables;
use super::{CrossKvCache, FlowTransformer};
use crate::config::{CheckpointConfig, FlowConfig, ModelFiles};
use crate::error::{ModelError, Result};
use crate::nn::{Precision, Probe};

pub struct SLatFlowModel {
    core: FlowTransformer,
}

impl SLatFlowModel {
    pub const CLASS: &'static str = "SLatFlowModel";

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
        Ok(SLatFlowModel {
            core: FlowTransformer::load(ws, cfg, precision, device)?,
        })
    }

    pub fn config(&self) -> &FlowConfig {
        &self.core.cfg
    }
    pub fn in_channels(&self) -> usize {
        self.core.cfg.in_channels
    }
    pub fn out_channels(&self) -> usize {
        self.core.cfg.out_channels
    }
    pub fn device(&self) -> &Device {
        self.core.device()
    }

    /// See `FlowTransformer::prepare_cond`.
    pub fn prepare_cond(&self, cond: &Tensor) -> Result<Tensor> {
        self.core.prepare_cond(cond)
    }

    /// RoPE phases for voxels `coords` `(b, x, y, z)` (built once per sampling run).
    pub fn rope_tables(&self, coords: &[[i32; 4]]) -> Result<RopeTables> {
        self.core
            .rope_tables(coords.iter().map(|c| [c[1], c[2], c[3]]))
    }

    /// The cross-attention keys and values of conditions from `prepare_cond` (see
    /// `FlowTransformer::cross_kv`).
    pub fn cross_kv(&self, conds: &[&Tensor]) -> Result<CrossKvCache> {
        self.core.cross_kv(conds)
    }

    /// `forward` against every condition of `kv` in one batched pass → `[B·N, out]` f32, the
    /// rows of condition 0 first.
    pub fn forward_cached(
        &self,
        feats: &Tensor,
        concat: Option<&Tensor>,
        rope: &RopeTables,
        t: f32,
        kv: &CrossKvCache,
    ) -> Result<Tensor> {
        let x = self.input(feats, concat, rope)?;
        self.core.forward_cached(&x, rope, t, kv)
    }

    fn input(&self, feats: &Tensor, concat: Option<&Tensor>, rope: &RopeTables) -> Result<Tensor> {
        let x = match concat {
            Some(c) => ops::cat(&[feats, c], 1)?,
            None => feats.clone(),
        };
        let n = rope.cos.dim(0);
        if x.rank() != 2 || x.dim(1) != self.core.cfg.in_channels || x.dim(0) != n {
            return Err(ModelError::invalid(format!(
                "SLat input {:?} for {n} voxels, expected [{n}, {}]",
                x.shape(),
                self.core.cfg.in_channels
            )));
        }
        Ok(x)
    }

    /// `feats [N, C]` f32 (plus `concat [N, in − C]` when given) → `[N, out]` f32.
    pub fn forward(
        &self,
        feats: &Tensor,
        concat: Option<&Tensor>,
        rope: &RopeTables,
        t: f32,
        cond: &Tensor,
        probe: &mut Probe,
    ) -> Result<Tensor> {
        let x = self.input(feats, concat, rope)?;
        self.core.forward(&x, rope, t, cond, probe)
    }
}
