//! The SC-VAE decoders (`sc_vaes/sparse_unet_vae.py`, `fdg_vae.py`): `SparseUnetVaeDecoder`
//! (texture, `pred_subdiv = false`, subdivision from `guide_subs`) and `FlexiDualGridVaeDecoder`
//! (shape, predicts its subdivisions, 7-channel flexible-dual-grid head, and `upsample(…, n)` for
//! the cascade).
//!
//! `from_latent` (f32) → body dtype → per level: ConvNeXt blocks, then a C2S up-block (all but
//! the last level) → f32 → affine-free LayerNorm (eps 1e-5) → `output_layer` (f32).
//! ConvNeXt: `x + fc2(silu(fc1(ln(subm_conv(x)))))`.
//! C2S (Ci → Co): `sub = to_subdiv(x)`; `h = conv1(silu(ln1(x)))` (Ci → 8·Co); children by
//! `sub > 0` in parent order then sub-index; `h = conv2(silu(ln2(C2S(h)))) +
//! repeat_interleave(C2S(x), Co / (Ci/8))`.

use std::sync::Arc;

use t2_tensor::sparse::{SparseCoords, SparseTensor, c2s_child_index, submanifold_conv3d};
use t2_tensor::{DType, Device, Tensor, Weights, ops};

use crate::config::{CheckpointConfig, ModelFiles, ScVaeDecoderConfig};
use crate::error::{ModelError, Result};
use crate::nn::{LayerNorm, Linear, Precision, Probe, silu, tap};

/// A submanifold 3×3×3 conv in FlexGEMM's `[Co, 3, 3, 3, Ci]` layout.
#[derive(Clone, Debug)]
struct SparseConv {
    w: Tensor,
    b: Tensor,
}

impl SparseConv {
    fn load(
        ws: &Weights,
        p: &str,
        ci: usize,
        co: usize,
        dtype: DType,
        dev: &Device,
    ) -> Result<Self> {
        Ok(SparseConv {
            w: ws.get(&format!("{p}.weight"), &[co, 3, 3, 3, ci], dtype, dev)?,
            b: ws.get(&format!("{p}.bias"), &[co], dtype, dev)?,
        })
    }
    fn forward(&self, x: &SparseTensor) -> Result<SparseTensor> {
        Ok(submanifold_conv3d(x, &self.w, Some(&self.b))?)
    }
}

#[derive(Clone, Debug)]
struct ConvNeXtBlock {
    conv: SparseConv,
    norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl ConvNeXtBlock {
    fn load(
        ws: &Weights,
        p: &str,
        c: usize,
        ratio: f64,
        dtype: DType,
        dev: &Device,
    ) -> Result<Self> {
        let hidden = (c as f64 * ratio) as usize;
        Ok(ConvNeXtBlock {
            conv: SparseConv::load(ws, &format!("{p}.conv"), c, c, dtype, dev)?,
            norm: LayerNorm::load_affine(ws, &format!("{p}.norm"), c, 1e-6, dev)?,
            fc1: Linear::load(ws, &format!("{p}.mlp.0"), c, hidden, true, dtype, dev)?,
            fc2: Linear::load(ws, &format!("{p}.mlp.2"), hidden, c, true, dtype, dev)?,
        })
    }
    fn forward(&self, x: &SparseTensor) -> Result<SparseTensor> {
        let h = self.conv.forward(x)?;
        let h = self.norm.forward(&h.feats)?;
        let h = self.fc2.forward(&silu(&self.fc1.forward(&h)?)?)?;
        Ok(x.replace(ops::add(&h, &x.feats)?)?)
    }
}

/// `SparseResBlockC2S3d`.
#[derive(Clone, Debug)]
struct C2SBlock {
    ci: usize,
    co: usize,
    to_subdiv: Option<Linear>,
    norm1: LayerNorm,
    conv1: SparseConv,
    norm2: LayerNorm,
    conv2: SparseConv,
}

impl C2SBlock {
    fn load(
        ws: &Weights,
        p: &str,
        ci: usize,
        co: usize,
        pred_subdiv: bool,
        dtype: DType,
        dev: &Device,
    ) -> Result<Self> {
        if ci == 0 || !ci.is_multiple_of(8) || !co.is_multiple_of(ci / 8) {
            return Err(ModelError::Unsupported(format!(
                "C2S block {ci} → {co} channels (needs 8 | Ci and Ci/8 | Co)"
            )));
        }
        Ok(C2SBlock {
            ci,
            co,
            to_subdiv: if pred_subdiv {
                Some(Linear::load(
                    ws,
                    &format!("{p}.to_subdiv"),
                    ci,
                    8,
                    true,
                    dtype,
                    dev,
                )?)
            } else {
                None
            },
            norm1: LayerNorm::load_affine(ws, &format!("{p}.norm1"), ci, 1e-6, dev)?,
            conv1: SparseConv::load(ws, &format!("{p}.conv1"), ci, 8 * co, dtype, dev)?,
            norm2: LayerNorm::plain(1e-6),
            conv2: SparseConv::load(ws, &format!("{p}.conv2"), co, co, dtype, dev)?,
        })
    }

    /// The subdivision logits `[N, 8]` this block predicts (in the body dtype).
    fn predict(&self, x: &SparseTensor) -> Result<Option<Tensor>> {
        self.to_subdiv
            .as_ref()
            .map(|l| l.forward(&x.feats))
            .transpose()
    }

    /// Upsamples `x` to the children selected by `mask` (`[N·8]`, row-major `[N, 8]`).
    fn forward(&self, x: &SparseTensor, mask: &[bool]) -> Result<SparseTensor> {
        let n = x.len();
        let (coords, rows) = c2s_child_index(x.coords.host(), mask)?;
        let dev = x.feats.device();
        let idx = Tensor::from_vec(rows, &[coords.len()], dev)?;
        let children = Arc::new(SparseCoords::new(coords, dev));
        let h = self
            .conv1
            .forward(&x.replace(silu(&self.norm1.forward(&x.feats)?)?)?)?;
        let h = ops::index_rows(&h.feats.reshape(&[n * 8, self.co])?, &idx)?;
        let skip = ops::index_rows(&x.feats.reshape(&[n * 8, self.ci / 8])?, &idx)?;
        let skip = ops::repeat_interleave(&skip, 1, self.co / (self.ci / 8))?;
        let h = SparseTensor::new(silu(&self.norm2.forward(&h)?)?, children)?;
        let h = self.conv2.forward(&h)?;
        Ok(h.replace(ops::add(&h.feats, &skip)?)?)
    }
}

#[derive(Clone, Debug)]
struct Level {
    blocks: Vec<ConvNeXtBlock>,
    up: Option<C2SBlock>,
}

/// One level's subdivision decision: the parent voxels and their `[N, 8]` logits (f32 copies of
/// the body-dtype values); child `s = dx + 2dy + 4dz` exists iff its logit is `> 0`.
#[derive(Clone, Debug, PartialEq)]
pub struct Subdivision {
    pub parents: Vec<[i32; 4]>,
    pub logits: Vec<f32>,
}

impl Subdivision {
    pub fn mask(&self) -> Vec<bool> {
        self.logits.iter().map(|&v| v > 0.0).collect()
    }
}

/// Where a decoder's subdivisions come from.
#[derive(Clone, Copy, Debug)]
pub enum Subdivide<'a> {
    /// Its own `to_subdiv` predictions (shape decoder).
    Predict,
    /// Given decisions (`guide_subs` of the texture decoder; teacher forcing in tests). A decoder
    /// with `to_subdiv` still reports its own logits.
    Guide(&'a [Subdivision]),
}

/// A decoder pass: the fine voxels, their raw output features and the subdivisions taken.
pub struct Decoded {
    pub coords: Vec<[i32; 4]>,
    /// `[M, out_channels]` f32, rows in C2S emission order.
    pub feats: Tensor,
    /// Per C2S level; the logits are the predicted ones when the decoder predicts, else the guide.
    pub subs: Vec<Subdivision>,
}

/// `SparseUnetVaeDecoder` / `FlexiDualGridVaeDecoder` (the latter adds its head in `fdg.rs`).
pub struct ScVaeDecoder {
    cfg: ScVaeDecoderConfig,
    out_channels: usize,
    from_latent: Linear,
    levels: Vec<Level>,
    output_layer: Linear,
    body_dtype: DType,
    device: Device,
}

impl ScVaeDecoder {
    pub const UNET: &'static str = "SparseUnetVaeDecoder";
    pub const FDG: &'static str = "FlexiDualGridVaeDecoder";

    /// Loads either class; `FlexiDualGridVaeDecoder` has 7 outputs and always predicts.
    pub fn load(
        files: &ModelFiles,
        precision: Precision,
        device: &Device,
    ) -> Result<(String, Self)> {
        let ck = CheckpointConfig::load(&files.config)?;
        let mut cfg: ScVaeDecoderConfig = ck.args_as(&files.config, &[Self::UNET, Self::FDG])?;
        if ck.name == Self::FDG {
            cfg.out_channels = Some(7);
            cfg.pred_subdiv = true;
        }
        let ws = Weights::open(&files.weights)?;
        let m = Self::from_weights(&ws, cfg, precision, device).map_err(|e| match e {
            ModelError::Unsupported(m) => {
                ModelError::config(&files.config, format!("unsupported: {m}"))
            }
            e => e,
        })?;
        ws.finish()?;
        Ok((ck.name, m))
    }

    pub fn from_weights(
        ws: &Weights,
        cfg: ScVaeDecoderConfig,
        precision: Precision,
        device: &Device,
    ) -> Result<Self> {
        let levels_n = cfg.num_blocks.len();
        let out = cfg
            .out_channels
            .ok_or_else(|| ModelError::Unsupported("SC-VAE decoder without out_channels".into()))?;
        if levels_n == 0
            || cfg.model_channels.len() != levels_n
            || cfg.block_type.len() < levels_n
            || cfg.up_block_type.len() + 1 < levels_n
        {
            return Err(ModelError::Unsupported(format!(
                "SC-VAE decoder with {} levels but {} widths, {} block types, {} up-block types",
                levels_n,
                cfg.model_channels.len(),
                cfg.block_type.len(),
                cfg.up_block_type.len()
            )));
        }
        if let Some(b) = cfg
            .block_type
            .iter()
            .find(|b| *b != "SparseConvNeXtBlock3d")
        {
            return Err(ModelError::Unsupported(format!("SC-VAE block type `{b}`")));
        }
        if let Some(b) = cfg
            .up_block_type
            .iter()
            .find(|b| *b != "SparseResBlockC2S3d")
        {
            return Err(ModelError::Unsupported(format!(
                "SC-VAE up-block type `{b}`"
            )));
        }
        let body = precision.body_dtype(if cfg.use_fp16 { DType::F16 } else { DType::F32 });
        let ch = &cfg.model_channels;
        let mut levels = Vec::with_capacity(levels_n);
        for i in 0..levels_n {
            let ratio = cfg
                .block_args
                .get(i)
                .and_then(|a| a.get("mlp_ratio"))
                .and_then(|v| v.as_f64())
                .unwrap_or(4.0);
            let blocks = (0..cfg.num_blocks[i])
                .map(|j| {
                    ConvNeXtBlock::load(ws, &format!("blocks.{i}.{j}"), ch[i], ratio, body, device)
                })
                .collect::<Result<Vec<_>>>()?;
            let up = if i + 1 < levels_n {
                let p = format!("blocks.{i}.{}", cfg.num_blocks[i]);
                Some(C2SBlock::load(
                    ws,
                    &p,
                    ch[i],
                    ch[i + 1],
                    cfg.pred_subdiv,
                    body,
                    device,
                )?)
            } else {
                None
            };
            levels.push(Level { blocks, up });
        }
        let f = DType::F32;
        Ok(ScVaeDecoder {
            from_latent: Linear::load(
                ws,
                "from_latent",
                cfg.latent_channels,
                ch[0],
                true,
                f,
                device,
            )?,
            output_layer: Linear::load(ws, "output_layer", ch[levels_n - 1], out, true, f, device)?,
            out_channels: out,
            cfg,
            levels,
            body_dtype: body,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &ScVaeDecoderConfig {
        &self.cfg
    }
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }
    /// Number of C2S up-blocks (each doubles the grid).
    pub fn num_upsamplings(&self) -> usize {
        self.levels.len() - 1
    }
    pub fn predicts_subdivision(&self) -> bool {
        self.cfg.pred_subdiv
    }

    /// Runs the decoder on latent voxels `coords` with `feats [N, latent]` f32.
    /// `stop_at_level = Some(k)` is the reference's `upsample(x, k)`: it returns after the first
    /// `k` levels (their C2S included) without the head, with empty `feats`.
    pub fn run(
        &self,
        coords: Vec<[i32; 4]>,
        feats: &Tensor,
        subdivide: Subdivide<'_>,
        stop_at_level: Option<usize>,
        probe: &mut Probe,
    ) -> Result<Decoded> {
        let n = coords.len();
        if feats.shape() != [n, self.cfg.latent_channels] {
            return Err(ModelError::invalid(format!(
                "SC-VAE latent {:?} for {n} voxels, expected [{n}, {}]",
                feats.shape(),
                self.cfg.latent_channels
            )));
        }
        if n == 0 {
            return Err(ModelError::invalid("SC-VAE decoder input has no voxels"));
        }
        if let Some(k) = stop_at_level
            && k >= self.levels.len()
        {
            return Err(ModelError::invalid(format!(
                "upsample({k}) on a decoder with {} levels",
                self.levels.len()
            )));
        }
        if let Subdivide::Guide(g) = subdivide {
            if g.len()
                < self
                    .num_upsamplings()
                    .min(stop_at_level.unwrap_or(usize::MAX))
            {
                return Err(ModelError::invalid(format!(
                    "{} guide subdivisions for {} up-blocks",
                    g.len(),
                    self.num_upsamplings()
                )));
            }
        } else if !self.cfg.pred_subdiv {
            return Err(ModelError::invalid(
                "this decoder does not predict subdivisions: guide_subs are required",
            ));
        }
        let feats = ops::to_dtype(&feats.to_device(&self.device)?, DType::F32)?;
        let h = self.from_latent.forward(&feats)?;
        tap(probe, "from_latent", &h);
        let coords = Arc::new(SparseCoords::new(coords, &self.device));
        let mut h = SparseTensor::new(ops::to_dtype(&h, self.body_dtype)?, coords)?;
        let mut subs = Vec::new();
        for (i, level) in self.levels.iter().enumerate() {
            if stop_at_level == Some(i) {
                return Ok(Decoded {
                    coords: h.coords.host().to_vec(),
                    // No head ran: an empty host tensor (no zero-sized device allocation).
                    feats: Tensor::zeros(&[0, self.out_channels], DType::F32, &Device::Cpu)?,
                    subs,
                });
            }
            for (j, b) in level.blocks.iter().enumerate() {
                h = b.forward(&h)?;
                tap(probe, &format!("blocks.{i}.{j}"), &h.feats);
            }
            let Some(up) = &level.up else { continue };
            let name = format!("blocks.{i}.{}", level.blocks.len());
            let predicted = up.predict(&h)?;
            let sub = match (subdivide, &predicted) {
                (Subdivide::Guide(g), _) => {
                    let s = &g[i];
                    if s.logits.len() != h.len() * 8 {
                        return Err(ModelError::invalid(format!(
                            "guide subdivision {i} has {} logits for {} voxels",
                            s.logits.len(),
                            h.len()
                        )));
                    }
                    if !s.parents.is_empty() && s.parents != h.coords.host() {
                        return Err(ModelError::invalid(format!(
                            "guide subdivision {i} was taken on other voxels than this level's"
                        )));
                    }
                    s.clone()
                }
                (Subdivide::Predict, Some(p)) => Subdivision {
                    parents: h.coords.host().to_vec(),
                    logits: p.to_vec_f32()?,
                },
                (Subdivide::Predict, None) => unreachable!("checked above"),
            };
            let reported = match &predicted {
                Some(p) => Subdivision {
                    parents: h.coords.host().to_vec(),
                    logits: p.to_vec_f32()?,
                },
                None => sub.clone(),
            };
            h = up.forward(&h, &sub.mask())?;
            if let Some(p) = &predicted {
                tap(probe, &format!("{name}.0"), &h.feats);
                tap(probe, &format!("{name}.1"), p);
                tap(probe, &format!("{name}.0.coords"), h.coords.tensor()?);
            } else {
                tap(probe, &name, &h.feats);
            }
            subs.push(reported);
        }
        let out = ops::to_dtype(&h.feats, DType::F32)?;
        let out = LayerNorm::plain(1e-5).forward(&out)?;
        tap(probe, "pre:output_layer", &out);
        let feats = self.output_layer.forward(&out)?;
        tap(probe, "output_layer", &feats);
        Ok(Decoded {
            coords: h.coords.host().to_vec(),
            feats,
            subs,
        })
    }
}
