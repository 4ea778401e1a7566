//! The flow DiTs: `SparseStructureFlowModel` (dense 3-D grid) and `SLatFlowModel` (sparse
//! voxels, optional `concat_cond`). Both are the same transformer over `[N, C]` tokens with 3-D
//! RoPE from integer voxel coordinates; they differ only in how tokens and coordinates are laid
//! out, so the shared body lives here and the two wrappers in their own files.

mod block;
pub mod rope;
mod slat_flow;
mod ss_flow;
pub mod velocity;

pub use slat_flow::SLatFlowModel;
pub use ss_flow::SparseStructureFlowModel;

use t2_tensor::{DType, Device, Tensor, Weights, ops};

use self::block::{AttnDims, BlockSpec, Context, CrossKv, ModulatedCrossBlock};
use self::rope::{RopeFreqs, RopeTables};
use crate::config::FlowConfig;
use crate::error::{ModelError, Result};
use crate::nn::{LayerNorm, Linear, Precision, Probe, parse_dtype, silu, tap};

/// Width of the sinusoidal timestep features (`frequency_embedding_size`).
const TIMESTEP_FEATURES: usize = 256;

/// `TimestepEmbedder`: sinusoid(256, `[cos | sin]`, max_period 1e4) → Linear → SiLU → Linear.
#[derive(Clone, Debug)]
struct TimestepEmbedder {
    fc1: Linear,
    fc2: Linear,
}

impl TimestepEmbedder {
    /// The sinusoid on the host, rounded as the reference's f32 tensor ops round it.
    fn features(t: f32) -> Vec<f32> {
        let half = TIMESTEP_FEATURES / 2;
        let c = (-(10000f64.ln())) as f32;
        let args: Vec<f32> = (0..half)
            .map(|k| t * ((c * k as f32) / half as f32).exp())
            .collect();
        args.iter()
            .map(|a| a.cos())
            .chain(args.iter().map(|a| a.sin()))
            .collect()
    }

    fn forward(&self, t: f32, device: &Device) -> Result<Tensor> {
        let f = Tensor::from_vec(Self::features(t), &[1, TIMESTEP_FEATURES], device)?;
        let h = silu(&self.fc1.forward(&f)?)?;
        self.fc2.forward(&h)
    }
}

/// The transformer shared by both flow models.
#[derive(Clone, Debug)]
pub(crate) struct FlowTransformer {
    pub cfg: FlowConfig,
    t_embedder: TimestepEmbedder,
    ada_ln: Linear,
    input_layer: Linear,
    blocks: Vec<ModulatedCrossBlock>,
    out_layer: Linear,
    rope: RopeFreqs,
    block_dtype: DType,
    device: Device,
}

impl FlowTransformer {
    pub fn load(
        ws: &Weights,
        cfg: &FlowConfig,
        precision: Precision,
        device: &Device,
    ) -> Result<FlowTransformer> {
        if cfg.pe_mode != "rope" {
            return Err(ModelError::Unsupported(format!(
                "flow model pe_mode `{}` (the TRELLIS.2 checkpoints use rope)",
                cfg.pe_mode
            )));
        }
        if !cfg.share_mod {
            return Err(ModelError::Unsupported(
                "flow model with per-block adaLN (share_mod = false)".into(),
            ));
        }
        let c = cfg.model_channels;
        let heads = cfg.num_heads();
        if heads == 0 || !c.is_multiple_of(heads) || !(c / heads).is_multiple_of(2) {
            return Err(ModelError::Unsupported(format!(
                "{c} channels over {heads} heads"
            )));
        }
        let head_dim = c / heads;
        let block_dtype = precision.body_dtype(parse_dtype(&cfg.dtype)?);
        let f32_ = DType::F32;
        let spec = BlockSpec {
            dims: AttnDims {
                channels: c,
                heads,
                head_dim,
            },
            ctx_channels: cfg.cond_channels,
            mlp_hidden: cfg.mlp_hidden(),
            qk_rms_norm: cfg.qk_rms_norm,
            qk_rms_norm_cross: cfg.qk_rms_norm_cross,
            use_rope: true,
            dtype: block_dtype,
        };
        let blocks = (0..cfg.num_blocks)
            .map(|i| ModulatedCrossBlock::load(ws, &format!("blocks.{i}"), &spec, device))
            .collect::<Result<Vec<_>>>()?;
        Ok(FlowTransformer {
            cfg: cfg.clone(),
            t_embedder: TimestepEmbedder {
                fc1: Linear::load(
                    ws,
                    "t_embedder.mlp.0",
                    TIMESTEP_FEATURES,
                    c,
                    true,
                    f32_,
                    device,
                )?,
                fc2: Linear::load(ws, "t_embedder.mlp.2", c, c, true, f32_, device)?,
            },
            ada_ln: Linear::load(ws, "adaLN_modulation.1", c, 6 * c, true, f32_, device)?,
            input_layer: Linear::load(ws, "input_layer", cfg.in_channels, c, true, f32_, device)?,
            blocks,
            out_layer: Linear::load(ws, "out_layer", c, cfg.out_channels, true, f32_, device)?,
            rope: RopeFreqs::new(head_dim, cfg.rope_freq),
            block_dtype,
            device: device.clone(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Phase tables for tokens at integer `coords`.
    pub fn rope_tables(
        &self,
        coords: impl ExactSizeIterator<Item = [i32; 3]>,
    ) -> Result<RopeTables> {
        Ok(RopeTables::new(&self.rope, coords, &self.device)?)
    }

    /// Casts condition tokens `[1, L, cond_channels]` to the block dtype (do it once per run).
    pub fn prepare_cond(&self, cond: &Tensor) -> Result<Tensor> {
        if cond.rank() != 3 || cond.dim(0) != 1 || cond.dim(2) != self.cfg.cond_channels {
            return Err(ModelError::invalid(format!(
                "condition tokens {:?}, expected [1, L, {}]",
                cond.shape(),
                self.cfg.cond_channels
            )));
        }
        Ok(ops::to_dtype(
            &cond.to_device(&self.device)?,
            self.block_dtype,
        )?)
    }

    /// `tokens [N, in_channels]` f32 at timestep `t` (`1000·t` as f32) → `[N, out_channels]` f32.
    /// `cond` comes from `prepare_cond`.
    pub fn forward(
        &self,
        tokens: &Tensor,
        rope: &RopeTables,
        t: f32,
        cond: &Tensor,
        probe: &mut Probe,
    ) -> Result<Tensor> {
        self.run(tokens, rope, t, 1, |_| Context::Tokens(cond), probe)
    }

    /// The cross-attention keys and values of every block for the conditions `conds` (each
    /// `[1, L, Cc]` from `prepare_cond`), stacked as a batch: they are the same at every
    /// sampler step, so a sampling run computes them once (the reference recomputes them).
    pub fn cross_kv(&self, conds: &[&Tensor]) -> Result<CrossKvCache> {
        let cond = match conds {
            [one] => (*one).clone(),
            many => ops::cat(many, 0)?,
        };
        Ok(CrossKvCache {
            batch: conds.len(),
            blocks: self
                .blocks
                .iter()
                .map(|b| b.cross_kv(&cond))
                .collect::<Result<_>>()?,
        })
    }

    /// `forward` for every condition of `kv` at once: the same `tokens [N, in]` against each
    /// condition as one batch (the CFG pair in one pass) → `[B·N, out_channels]` f32, rows of
    /// condition 0 first. Per row it computes exactly what `forward` does.
    pub fn forward_cached(
        &self,
        tokens: &Tensor,
        rope: &RopeTables,
        t: f32,
        kv: &CrossKvCache,
    ) -> Result<Tensor> {
        if kv.blocks.len() != self.blocks.len() {
            return Err(ModelError::invalid(format!(
                "cross-attention cache of {} blocks for a model of {}",
                kv.blocks.len(),
                self.blocks.len()
            )));
        }
        let y = self.run(
            tokens,
            rope,
            t,
            kv.batch,
            |i| Context::Cached(&kv.blocks[i]),
            &mut None,
        )?;
        let n = y.numel() / self.cfg.out_channels;
        Ok(y.reshape(&[n, self.cfg.out_channels])?)
    }

    fn run<'a>(
        &self,
        tokens: &Tensor,
        rope: &RopeTables,
        t: f32,
        batch: usize,
        ctx: impl Fn(usize) -> Context<'a>,
        probe: &mut Probe,
    ) -> Result<Tensor> {
        let h = self.input_layer.forward(tokens)?;
        tap(probe, "input_layer", &h);
        let t_emb = self.t_embedder.forward(t, &self.device)?;
        tap(probe, "t_embedder", &t_emb);
        let m = self.ada_ln.forward(&silu(&t_emb)?)?;
        tap(probe, "adaLN_modulation", &m);
        let m = ops::to_dtype(&m, self.block_dtype)?;
        let mut h = ops::to_dtype(&h, self.block_dtype)?;
        if batch > 1 {
            // One sequence per condition: the input tokens are the same for each.
            let (n, c) = (h.dim(0), h.dim(1));
            h = ops::cat(&vec![&h; batch], 0)?.reshape(&[batch, n, c])?;
        }
        for (i, b) in self.blocks.iter().enumerate() {
            h = b.forward(&h, &m, ctx(i), rope, &format!("blocks.{i}"), probe)?;
        }
        let h = LayerNorm::plain(1e-5).forward(&ops::to_dtype(&h, DType::F32)?)?;
        tap(probe, "pre:out_layer", &h);
        let y = self.out_layer.forward(&h)?;
        tap(probe, "out_layer", &y);
        Ok(y)
    }
}

/// Per block, the cross-attention keys and values of a batch of conditions (see
/// `FlowTransformer::cross_kv`).
#[derive(Clone, Debug)]
pub struct CrossKvCache {
    batch: usize,
    blocks: Vec<CrossKv>,
}

impl CrossKvCache {
    /// How many conditions (sequences per forward) it holds.
    pub fn batch(&self) -> usize {
        self.batch
    }
}
