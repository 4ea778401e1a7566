//! `ModulatedTransformerCrossBlock` / `ModulatedSparseTransformerCrossBlock` (share_mod) and
//! their attention and MLP sub-modules. Tokens are `[N, C]` (batch 1; a sparse sequence and a
//! dense grid are the same thing here), in the block dtype (bf16 for the real checkpoints).

use t2_tensor::{DType, Device, Tensor, Weights, ops};

use super::rope::RopeTables;
use crate::error::Result;
use crate::nn::{LayerNorm, Linear, Probe, cols, tap};

/// The reference's `MultiHeadRMSNorm`: `F.normalize(x.float()) · gamma · sqrt(D)`, cast back.
#[derive(Clone, Debug)]
struct HeadRmsNorm {
    gamma: Tensor,
}

impl HeadRmsNorm {
    fn load(ws: &Weights, prefix: &str, heads: usize, dim: usize, dev: &Device) -> Result<Self> {
        Ok(HeadRmsNorm {
            gamma: ws.get(&format!("{prefix}.gamma"), &[heads, dim], DType::F32, dev)?,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(ops::rms_norm_heads(x, &self.gamma)?)
    }
}

/// Shapes shared by the attention modules.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AttnDims {
    pub channels: usize,
    pub heads: usize,
    pub head_dim: usize,
}

impl AttnDims {
    fn scale(&self) -> f32 {
        1.0 / (self.head_dim as f32).sqrt()
    }
    /// `[N, C]` → `[1, N, H, D]`, `[B, N, C]` → `[B, N, H, D]` (free).
    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let b = if x.rank() == 3 { x.dim(0) } else { 1 };
        let n = x.numel() / self.channels / b;
        Ok(x.reshape(&[b, n, self.heads, self.head_dim])?)
    }
    /// `[B, N, H, D]` back to the token layout of `like` (`[N, C]` or `[B, N, C]`).
    fn merge_heads(&self, h: &Tensor, like: &Tensor) -> Result<Tensor> {
        let mut shape = like.shape().to_vec();
        *shape.last_mut().expect("rank ≥ 1") = self.channels;
        Ok(h.reshape(&shape)?)
    }
}

/// Self-attention with q/k RMS norm and 3-D RoPE.
#[derive(Clone, Debug)]
struct SelfAttention {
    dims: AttnDims,
    to_qkv: Linear,
    norms: Option<(HeadRmsNorm, HeadRmsNorm)>,
    use_rope: bool,
    to_out: Linear,
}

impl SelfAttention {
    fn load(
        ws: &Weights,
        p: &str,
        dims: AttnDims,
        qk_rms_norm: bool,
        use_rope: bool,
        dtype: DType,
        dev: &Device,
    ) -> Result<Self> {
        let c = dims.channels;
        let norms = if qk_rms_norm {
            Some((
                HeadRmsNorm::load(
                    ws,
                    &format!("{p}.q_rms_norm"),
                    dims.heads,
                    dims.head_dim,
                    dev,
                )?,
                HeadRmsNorm::load(
                    ws,
                    &format!("{p}.k_rms_norm"),
                    dims.heads,
                    dims.head_dim,
                    dev,
                )?,
            ))
        } else {
            None
        };
        Ok(SelfAttention {
            dims,
            to_qkv: Linear::load(ws, &format!("{p}.to_qkv"), c, 3 * c, true, dtype, dev)?,
            norms,
            use_rope,
            to_out: Linear::load(ws, &format!("{p}.to_out"), c, c, true, dtype, dev)?,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        rope: &RopeTables,
        name: &str,
        probe: &mut Probe,
    ) -> Result<Tensor> {
        let c = self.dims.channels;
        let qkv = self.to_qkv.forward(x)?; // [N, 3C], q | k | v
        tap(probe, &format!("{name}.to_qkv"), &qkv);
        let mut q = self.dims.split_heads(&cols(&qkv, 0, c)?)?;
        let mut k = self.dims.split_heads(&cols(&qkv, c, c)?)?;
        let v = self.dims.split_heads(&cols(&qkv, 2 * c, c)?)?;
        if let Some((qn, kn)) = &self.norms {
            q = qn.forward(&q)?;
            k = kn.forward(&k)?;
            tap(probe, &format!("{name}.q_rms_norm"), &q);
            tap(probe, &format!("{name}.k_rms_norm"), &k);
        }
        if self.use_rope {
            q = ops::rope_interleaved(&q, &rope.cos, &rope.sin)?;
            k = ops::rope_interleaved(&k, &rope.cos, &rope.sin)?;
        }
        let h = ops::attention(&q, &k, &v, self.dims.scale())?;
        let h = self.dims.merge_heads(&h, x)?;
        tap(probe, &format!("pre:{name}.to_out"), &h);
        self.to_out.forward(&h)
    }
}

/// The cross-attention keys (RMS-normed) and values of the condition tokens, `[B, L, H, D]`
/// each: constant across sampler steps, so they are computed once per sampling run.
#[derive(Clone, Debug)]
pub(crate) struct CrossKv {
    pub k: Tensor,
    pub v: Tensor,
}

/// Where a block's cross-attention gets its keys and values.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Context<'a> {
    /// Condition tokens `[1, L, Cc]` (projected in the block, as the reference does).
    Tokens(&'a Tensor),
    /// Precomputed by `CrossAttention::kv` (batch of the tokens).
    Cached(&'a CrossKv),
}

/// Cross-attention from the tokens to the condition tokens (no RoPE).
#[derive(Clone, Debug)]
struct CrossAttention {
    dims: AttnDims,
    to_q: Linear,
    to_kv: Linear,
    norms: Option<(HeadRmsNorm, HeadRmsNorm)>,
    to_out: Linear,
}

impl CrossAttention {
    #[allow(clippy::too_many_arguments)]
    fn load(
        ws: &Weights,
        p: &str,
        dims: AttnDims,
        ctx_channels: usize,
        qk_rms_norm: bool,
        dtype: DType,
        dev: &Device,
    ) -> Result<Self> {
        let c = dims.channels;
        let norms = if qk_rms_norm {
            Some((
                HeadRmsNorm::load(
                    ws,
                    &format!("{p}.q_rms_norm"),
                    dims.heads,
                    dims.head_dim,
                    dev,
                )?,
                HeadRmsNorm::load(
                    ws,
                    &format!("{p}.k_rms_norm"),
                    dims.heads,
                    dims.head_dim,
                    dev,
                )?,
            ))
        } else {
            None
        };
        Ok(CrossAttention {
            dims,
            to_q: Linear::load(ws, &format!("{p}.to_q"), c, c, true, dtype, dev)?,
            to_kv: Linear::load(
                ws,
                &format!("{p}.to_kv"),
                ctx_channels,
                2 * c,
                true,
                dtype,
                dev,
            )?,
            norms,
            to_out: Linear::load(ws, &format!("{p}.to_out"), c, c, true, dtype, dev)?,
        })
    }

    /// Keys and values of condition tokens `cond [B, L, Cc]`.
    fn kv(&self, cond: &Tensor, name: &str, probe: &mut Probe) -> Result<CrossKv> {
        let c = self.dims.channels;
        let kv = self.to_kv.forward(cond)?; // [B, L, 2C], k | v
        tap(probe, &format!("{name}.to_kv"), &kv);
        let mut k = self.dims.split_heads(&cols(&kv, 0, c)?)?;
        let v = self.dims.split_heads(&cols(&kv, c, c)?)?;
        if let Some((_, kn)) = &self.norms {
            k = kn.forward(&k)?;
            tap(probe, &format!("{name}.k_rms_norm"), &k);
        }
        Ok(CrossKv { k, v })
    }

    /// `x [N, C]` (or `[B, N, C]`) with the condition's keys and values → same shape.
    fn forward(&self, x: &Tensor, ctx: Context, name: &str, probe: &mut Probe) -> Result<Tensor> {
        let q = self.to_q.forward(x)?;
        tap(probe, &format!("{name}.to_q"), &q);
        let computed;
        let kv = match ctx {
            Context::Tokens(cond) => {
                computed = self.kv(cond, name, probe)?;
                &computed
            }
            Context::Cached(kv) => kv,
        };
        let mut q = self.dims.split_heads(&q)?;
        if let Some((qn, _)) = &self.norms {
            q = qn.forward(&q)?;
            tap(probe, &format!("{name}.q_rms_norm"), &q);
        }
        let h = ops::attention(&q, &kv.k, &kv.v, self.dims.scale())?;
        let h = self.dims.merge_heads(&h, x)?;
        tap(probe, &format!("pre:{name}.to_out"), &h);
        self.to_out.forward(&h)
    }
}

/// `FeedForwardNet`: Linear → GELU(tanh) → Linear.
#[derive(Clone, Debug)]
struct FeedForward {
    fc1: Linear,
    fc2: Linear,
}

impl FeedForward {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.fc1.forward(x)?;
        let h = ops::unary(&h, ops::Unary::GeluTanh)?;
        self.fc2.forward(&h)
    }
}

/// Construction parameters of a block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockSpec {
    pub dims: AttnDims,
    pub ctx_channels: usize,
    pub mlp_hidden: usize,
    pub qk_rms_norm: bool,
    pub qk_rms_norm_cross: bool,
    pub use_rope: bool,
    /// The block dtype (residual stream, Linear weights, attention I/O).
    pub dtype: DType,
}

/// One modulated cross block with a shared adaLN (`share_mod`): its own `modulation` offset.
#[derive(Clone, Debug)]
pub(crate) struct ModulatedCrossBlock {
    modulation: Tensor,
    norm1: LayerNorm,
    self_attn: SelfAttention,
    norm2: LayerNorm,
    cross_attn: CrossAttention,
    norm3: LayerNorm,
    mlp: FeedForward,
    channels: usize,
    dtype: DType,
}

impl ModulatedCrossBlock {
    pub fn load(ws: &Weights, p: &str, s: &BlockSpec, dev: &Device) -> Result<Self> {
        let c = s.dims.channels;
        Ok(ModulatedCrossBlock {
            modulation: ws.get(&format!("{p}.modulation"), &[6 * c], DType::F32, dev)?,
            norm1: LayerNorm::plain(1e-6),
            self_attn: SelfAttention::load(
                ws,
                &format!("{p}.self_attn"),
                s.dims,
                s.qk_rms_norm,
                s.use_rope,
                s.dtype,
                dev,
            )?,
            norm2: LayerNorm::load_affine(ws, &format!("{p}.norm2"), c, 1e-6, dev)?,
            cross_attn: CrossAttention::load(
                ws,
                &format!("{p}.cross_attn"),
                s.dims,
                s.ctx_channels,
                s.qk_rms_norm_cross,
                s.dtype,
                dev,
            )?,
            norm3: LayerNorm::plain(1e-6),
            mlp: FeedForward {
                fc1: Linear::load(
                    ws,
                    &format!("{p}.mlp.mlp.0"),
                    c,
                    s.mlp_hidden,
                    true,
                    s.dtype,
                    dev,
                )?,
                fc2: Linear::load(
                    ws,
                    &format!("{p}.mlp.mlp.2"),
                    s.mlp_hidden,
                    c,
                    true,
                    s.dtype,
                    dev,
                )?,
            },
            channels: c,
            dtype: s.dtype,
        })
    }

    /// The cross-attention keys and values of `cond [B, L, Cc]` (block dtype) for this block.
    pub fn cross_kv(&self, cond: &Tensor) -> Result<CrossKv> {
        self.cross_attn.kv(cond, "", &mut None)
    }

    /// `x [N, C]` (or `[B, N, C]`, one sequence per condition) and `mod_ [6C]` in the block
    /// dtype; the condition as tokens `[1, L, Cc]` in the block dtype or as cached keys/values.
    pub fn forward(
        &self,
        x: &Tensor,
        mod_: &Tensor,
        ctx: Context,
        rope: &RopeTables,
        name: &str,
        probe: &mut Probe,
    ) -> Result<Tensor> {
        let c = self.channels;
        // (modulation[f32] + mod[block dtype]) computed in f32, then cast to the block dtype.
        let m = ops::to_dtype(
            &ops::add(&self.modulation, &mod_.reshape(&[6 * c])?)?,
            self.dtype,
        )?;
        let chunk = |i: usize| ops::narrow(&m, 0, i * c, c);
        let (shift_msa, scale_msa, gate_msa) = (chunk(0)?, chunk(1)?, chunk(2)?);
        let (shift_mlp, scale_mlp, gate_mlp) = (chunk(3)?, chunk(4)?, chunk(5)?);

        let h = self.norm1.forward(x)?;
        tap(probe, &format!("{name}.norm1"), &h);
        let h = ops::modulate(&h, &shift_msa, &scale_msa)?;
        let h = self
            .self_attn
            .forward(&h, rope, &format!("{name}.self_attn"), probe)?;
        tap(probe, &format!("{name}.self_attn"), &h);
        let x = ops::gated_residual(x, &h, &gate_msa)?;
        let h = self.norm2.forward(&x)?;
        tap(probe, &format!("{name}.norm2"), &h);
        let h = self
            .cross_attn
            .forward(&h, ctx, &format!("{name}.cross_attn"), probe)?;
        tap(probe, &format!("{name}.cross_attn"), &h);
        let x = ops::add(&x, &h)?;
        let h = self.norm3.forward(&x)?;
        tap(probe, &format!("{name}.norm3"), &h);
        let h = ops::modulate(&h, &shift_mlp, &scale_mlp)?;
        let h = self.mlp.forward(&h)?;
        tap(probe, &format!("{name}.mlp"), &h);
        let x = ops::gated_residual(&x, &h, &gate_mlp)?;
        tap(probe, name, &x);
        Ok(x)
    }
}
