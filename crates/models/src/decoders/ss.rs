//! `SparseStructureDecoder` (TRELLIS v1's dense 3-D conv decoder, `sparse_structure_vae.py`) and
//! the pipeline glue that turns its logits into occupied voxels (`logits > 0`, optional OR-pool
//! to the requested resolution, `argwhere`).
//!
//! input conv (f32) → body dtype → middle ResBlocks → [ResBlocks, Upsample]… → f32 →
//! ChannelLayerNorm → SiLU → output conv. ResBlock: `conv2(silu(ln2(conv1(silu(ln1(x)))))) + x`,
//! LayerNorm over channels in f32 (eps 1e-5, affine). Upsample: conv to 8·C' then pixel shuffle.

use t2_tensor::{DType, Device, Tensor, Weights, ops};

use crate::config::{CheckpointConfig, ModelFiles, SsDecoderConfig};
use crate::error::{ModelError, Result};
use crate::nn::{LayerNorm, Precision, Probe, silu, tap};

/// A dense 3×3×3 convolution (padding 1) in PyTorch's `[Co, Ci, 3, 3, 3]` layout.
#[derive(Clone, Debug)]
struct Conv3d {
    w: Tensor,
    b: Tensor,
}

impl Conv3d {
    fn load(
        ws: &Weights,
        p: &str,
        ci: usize,
        co: usize,
        dtype: DType,
        dev: &Device,
    ) -> Result<Self> {
        Ok(Conv3d {
            w: ws.get(&format!("{p}.weight"), &[co, ci, 3, 3, 3], dtype, dev)?,
            b: ws.get(&format!("{p}.bias"), &[co], dtype, dev)?,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(ops::conv3d(x, &self.w, Some(&self.b))?)
    }
}

/// `ChannelLayerNorm32` on `[1, C, D, H, W]`: LayerNorm over C at every voxel.
fn channel_layer_norm(ln: &LayerNorm, x: &Tensor) -> Result<Tensor> {
    let y = ln.forward(&ops::permute(x, &[0, 2, 3, 4, 1])?)?;
    Ok(ops::permute(&y, &[0, 4, 1, 2, 3])?)
}

#[derive(Clone, Debug)]
struct ResBlock3d {
    norm1: LayerNorm,
    conv1: Conv3d,
    norm2: LayerNorm,
    conv2: Conv3d,
}

impl ResBlock3d {
    fn load(ws: &Weights, p: &str, c: usize, dtype: DType, dev: &Device) -> Result<Self> {
        Ok(ResBlock3d {
            norm1: LayerNorm::load_affine(ws, &format!("{p}.norm1"), c, 1e-5, dev)?,
            conv1: Conv3d::load(ws, &format!("{p}.conv1"), c, c, dtype, dev)?,
            norm2: LayerNorm::load_affine(ws, &format!("{p}.norm2"), c, 1e-5, dev)?,
            conv2: Conv3d::load(ws, &format!("{p}.conv2"), c, c, dtype, dev)?,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self
            .conv1
            .forward(&silu(&channel_layer_norm(&self.norm1, x)?)?)?;
        let h = self
            .conv2
            .forward(&silu(&channel_layer_norm(&self.norm2, &h)?)?)?;
        Ok(ops::add(&h, x)?)
    }
}

#[derive(Clone, Debug)]
enum Block {
    Res(Box<ResBlock3d>),
    /// `UpsampleBlock3d(mode="conv")`: conv to 8·C', then `pixel_shuffle_3d(2)`.
    Up(Conv3d),
}

pub struct SparseStructureDecoder {
    cfg: SsDecoderConfig,
    input_layer: Conv3d,
    middle: Vec<ResBlock3d>,
    blocks: Vec<Block>,
    out_norm: LayerNorm,
    out_conv: Conv3d,
    body_dtype: DType,
    device: Device,
}

impl SparseStructureDecoder {
    pub const CLASS: &'static str = "SparseStructureDecoder";

    pub fn load(files: &ModelFiles, precision: Precision, device: &Device) -> Result<Self> {
        let cfg: SsDecoderConfig =
            CheckpointConfig::load(&files.config)?.args_as(&files.config, &[Self::CLASS])?;
        let ws = Weights::open(&files.weights)?;
        let m = Self::from_weights(&ws, cfg, precision, device)?;
        ws.finish()?;
        Ok(m)
    }

    pub fn from_weights(
        ws: &Weights,
        cfg: SsDecoderConfig,
        precision: Precision,
        device: &Device,
    ) -> Result<Self> {
        if cfg.norm_type != "layer" {
            return Err(ModelError::Unsupported(format!(
                "SparseStructureDecoder norm_type `{}`",
                cfg.norm_type
            )));
        }
        let ch = &cfg.channels;
        if ch.is_empty() {
            return Err(ModelError::Unsupported(
                "SparseStructureDecoder without channels".into(),
            ));
        }
        let body = precision.body_dtype(if cfg.use_fp16 { DType::F16 } else { DType::F32 });
        let f = DType::F32;
        let input_layer = Conv3d::load(ws, "input_layer", cfg.latent_channels, ch[0], f, device)?;
        let middle = (0..cfg.num_res_blocks_middle)
            .map(|i| ResBlock3d::load(ws, &format!("middle_block.{i}"), ch[0], body, device))
            .collect::<Result<Vec<_>>>()?;
        let mut blocks = Vec::new();
        for (i, &c) in ch.iter().enumerate() {
            for _ in 0..cfg.num_res_blocks {
                let p = format!("blocks.{}", blocks.len());
                blocks.push(Block::Res(Box::new(ResBlock3d::load(
                    ws, &p, c, body, device,
                )?)));
            }
            if let Some(&next) = ch.get(i + 1) {
                let p = format!("blocks.{}.conv", blocks.len());
                blocks.push(Block::Up(Conv3d::load(ws, &p, c, next * 8, body, device)?));
            }
        }
        let last = *ch.last().expect("checked non-empty");
        Ok(SparseStructureDecoder {
            out_norm: LayerNorm::load_affine(ws, "out_layer.0", last, 1e-5, device)?,
            out_conv: Conv3d::load(ws, "out_layer.2", last, cfg.out_channels, f, device)?,
            cfg,
            input_layer,
            middle,
            blocks,
            body_dtype: body,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &SsDecoderConfig {
        &self.cfg
    }
    /// Output grid for an `r³` latent: doubled by every upsampling.
    pub fn output_resolution(&self, r: usize) -> usize {
        r << (self.cfg.channels.len() - 1)
    }

    /// `z [1, latent, R, R, R]` f32 → logits `[1, out, R', R', R']` f32.
    pub fn forward(&self, z: &Tensor, probe: &mut Probe) -> Result<Tensor> {
        if z.rank() != 5 || z.dim(0) != 1 || z.dim(1) != self.cfg.latent_channels {
            return Err(ModelError::invalid(format!(
                "SS latent {:?}, expected [1, {}, R, R, R]",
                z.shape(),
                self.cfg.latent_channels
            )));
        }
        let z = ops::to_dtype(&z.to_device(&self.device)?, DType::F32)?;
        let h = self.input_layer.forward(&z)?;
        tap(probe, "input_layer", &h);
        let mut h = ops::to_dtype(&h, self.body_dtype)?;
        for (i, b) in self.middle.iter().enumerate() {
            h = b.forward(&h)?;
            tap(probe, &format!("middle_block.{i}"), &h);
        }
        tap(probe, "middle_block", &h);
        for (i, b) in self.blocks.iter().enumerate() {
            h = match b {
                Block::Res(r) => r.forward(&h)?,
                Block::Up(c) => ops::pixel_shuffle_3d(&c.forward(&h)?)?,
            };
            tap(probe, &format!("blocks.{i}"), &h);
        }
        let h = ops::to_dtype(&h, DType::F32)?;
        let h = channel_layer_norm(&self.out_norm, &h)?;
        tap(probe, "out_layer.0", &h);
        let h = silu(&h)?;
        tap(probe, "out_layer.1", &h);
        let y = self.out_conv.forward(&h)?;
        tap(probe, "out_layer.2", &y);
        tap(probe, "out_layer", &y);
        Ok(y)
    }
}

/// The pipeline's `sample_sparse_structure` glue on decoder logits `[1, 1, D, D, D]`:
/// `logits > 0`, then (when `resolution < D`) `max_pool3d(ratio) > 0.5` = the OR of each block,
/// then `argwhere` → sorted `(0, x, y, z)` coords on the `resolution³` grid.
pub fn occupied_coords(logits: &[f32], dim: usize, resolution: usize) -> Result<Vec<[i32; 4]>> {
    if logits.len() != dim * dim * dim {
        return Err(ModelError::invalid(format!(
            "{} SS logits for a {dim}³ grid",
            logits.len()
        )));
    }
    if resolution == 0 || resolution > dim || !dim.is_multiple_of(resolution) {
        return Err(ModelError::invalid(format!(
            "SS resolution {resolution} does not divide the decoder grid {dim}"
        )));
    }
    let ratio = dim / resolution;
    let r = resolution;
    let mut occ = vec![false; r * r * r];
    for (i, &v) in logits.iter().enumerate() {
        if v > 0.0 {
            let (x, y, z) = (i / (dim * dim), (i / dim) % dim, i % dim);
            occ[((x / ratio) * r + y / ratio) * r + z / ratio] = true;
        }
    }
    Ok(t2_tensor::sparse::argwhere_3d(&occ, [r, r, r]))
}
