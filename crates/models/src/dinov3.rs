//! DINOv3 ViT (HF `DINOv3ViTModel`) as TRELLIS.2's `DinoV3FeatureExtractor` calls it:
//! embeddings (patch conv, CLS, registers; no absolute position embedding) → 2-D RoPE tables →
//! every layer → a parameter-free `F.layer_norm` (eps 1e-5). All tokens are returned
//! (`[1, 1 + registers + patches, D]`); the model's own final `norm` is not applied. f32
//! throughout, like the reference (the checkpoint is f32).
//!
//! Layer: `x + ls1·o(attn(rope(q, k), v))` on `norm1(x)`, then `x + ls2·down(gelu(up(norm2(x))))`
//! (exact erf GELU); RoPE rotates the patch tokens only, NeoX half-split convention.

use image::RgbImage;
use t2_tensor::{DType, Device, Tensor, Weights, ops};

use crate::config::{Dinov3Config, ModelFiles, read_json};
use crate::error::{ModelError, Result};
use crate::nn::{LayerNorm, Linear, Probe, tap};

#[derive(Clone, Debug)]
struct Layer {
    norm1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ls1: Tensor,
    norm2: LayerNorm,
    gate: Option<Linear>,
    up: Linear,
    down: Linear,
    ls2: Tensor,
}

/// The image-conditioning feature extractor.
pub struct Dinov3 {
    cfg: Dinov3Config,
    patch_w: Tensor,
    patch_b: Tensor,
    /// `[1, 1 + registers, D]`: CLS then the register tokens.
    prefix: Tensor,
    layers: Vec<Layer>,
    act: ops::Unary,
    device: Device,
}

impl Dinov3 {
    /// Loads an HF model directory (`config.json` + `model.safetensors`).
    pub fn load(files: &ModelFiles, device: &Device) -> Result<Dinov3> {
        let cfg: Dinov3Config = read_json(&files.config)?;
        let ws = Weights::open(&files.weights)?;
        let m = Self::from_weights(&ws, cfg, device)?;
        ws.finish()?;
        Ok(m)
    }

    pub fn from_weights(ws: &Weights, cfg: Dinov3Config, device: &Device) -> Result<Dinov3> {
        let d = cfg.hidden_size;
        let heads = cfg.num_attention_heads;
        if heads == 0 || !d.is_multiple_of(heads) || !(d / heads).is_multiple_of(4) {
            return Err(ModelError::Unsupported(format!(
                "DINOv3 width {d} over {heads} heads (head dim must be a multiple of 4)"
            )));
        }
        let act = match cfg.hidden_act.as_str() {
            "gelu" => ops::Unary::GeluErf,
            "gelu_pytorch_tanh" => ops::Unary::GeluTanh,
            "silu" | "swish" => ops::Unary::Silu,
            a => return Err(ModelError::Unsupported(format!("DINOv3 hidden_act `{a}`"))),
        };
        let f = DType::F32;
        let p = cfg.patch_size;
        let patch_w = ws.get(
            "embeddings.patch_embeddings.weight",
            &[d, cfg.num_channels, p, p],
            f,
            device,
        )?;
        let patch_b = ws.get("embeddings.patch_embeddings.bias", &[d], f, device)?;
        let cls = ws.get("embeddings.cls_token", &[1, 1, d], f, device)?;
        let reg = ws.get(
            "embeddings.register_tokens",
            &[1, cfg.num_register_tokens, d],
            f,
            device,
        )?;
        let prefix = ops::cat(&[&cls, &reg], 1)?;
        // In the checkpoint but unused by the extractor: the masked-image-modelling token and
        // the model's own final norm (TRELLIS.2 applies an affine-free layer norm instead).
        // They are read (shape-checked) so that `finish()` stays strict about unknown keys.
        ws.get("embeddings.mask_token", &[1, 1, d], f, &Device::Cpu)?;
        ws.get("norm.weight", &[d], f, &Device::Cpu)?;
        ws.get("norm.bias", &[d], f, &Device::Cpu)?;
        let eps = cfg.layer_norm_eps as f32;
        let inter = cfg.intermediate_size;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| {
                let l = format!("layer.{i}");
                let lin = |name: &str, i_: usize, o_: usize, bias: bool| {
                    Linear::load(ws, &format!("{l}.{name}"), i_, o_, bias, f, device)
                };
                Ok(Layer {
                    norm1: LayerNorm::load_affine(ws, &format!("{l}.norm1"), d, eps, device)?,
                    q: lin("attention.q_proj", d, d, cfg.query_bias)?,
                    k: lin("attention.k_proj", d, d, cfg.key_bias)?,
                    v: lin("attention.v_proj", d, d, cfg.value_bias)?,
                    o: lin("attention.o_proj", d, d, cfg.proj_bias)?,
                    ls1: ws.get(&format!("{l}.layer_scale1.lambda1"), &[d], f, device)?,
                    norm2: LayerNorm::load_affine(ws, &format!("{l}.norm2"), d, eps, device)?,
                    gate: if cfg.use_gated_mlp {
                        Some(lin("mlp.gate_proj", d, inter, cfg.mlp_bias)?)
                    } else {
                        None
                    },
                    up: lin("mlp.up_proj", d, inter, cfg.mlp_bias)?,
                    down: lin("mlp.down_proj", inter, d, cfg.mlp_bias)?,
                    ls2: ws.get(&format!("{l}.layer_scale2.lambda1"), &[d], f, device)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Dinov3 {
            cfg,
            patch_w,
            patch_b,
            prefix,
            layers,
            act,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &Dinov3Config {
        &self.cfg
    }
    pub fn hidden_size(&self) -> usize {
        self.cfg.hidden_size
    }
    /// Tokens for a `size²` input: CLS + registers + `(size / patch)²` patches.
    pub fn num_tokens(&self, size: usize) -> usize {
        let n = size / self.cfg.patch_size;
        1 + self.cfg.num_register_tokens + n * n
    }

    /// The RoPE `(cos, sin)` tables, f32 `[patches, head_dim]`, as HF computes them in f32:
    /// `inv_freq = 1 / θ^(4j/D)`, patch centres `2·(i + 0.5)/n − 1`, angles
    /// `2π·coord·inv_freq` laid out `[y (D/4) | x (D/4)]` and tiled twice.
    pub fn rope_tables(&self, nh: usize, nw: usize) -> (Vec<f32>, Vec<f32>) {
        let hd = self.cfg.hidden_size / self.cfg.num_attention_heads;
        let quarter = hd / 4;
        let theta = self.cfg.rope_theta as f32;
        let inv_freq: Vec<f32> = (0..quarter)
            .map(|j| {
                let e = (j as f64 * (4.0 / hd as f64)) as f32;
                1.0 / ((theta as f64).powf(e as f64) as f32)
            })
            .collect();
        let centre = |i: usize, n: usize| 2.0f32 * ((i as f32 + 0.5) / n as f32) - 1.0;
        let two_pi = (2.0 * std::f64::consts::PI) as f32;
        let mut cos = Vec::with_capacity(nh * nw * hd);
        let mut sin = Vec::with_capacity(nh * nw * hd);
        for y in 0..nh {
            for x in 0..nw {
                let (cy, cx) = (centre(y, nh), centre(x, nw));
                let angles: Vec<f32> = [cy, cx]
                    .iter()
                    .flat_map(|&c| inv_freq.iter().map(move |&f| two_pi * c * f))
                    .collect();
                for _ in 0..2 {
                    cos.extend(angles.iter().map(|a| a.cos()));
                    sin.extend(angles.iter().map(|a| a.sin()));
                }
            }
        }
        (cos, sin)
    }

    /// `pixels [1, C, H, W]` (ImageNet-normalised, f32) → tokens `[1, T, D]` f32.
    pub fn forward(&self, pixels: &Tensor, probe: &mut Probe) -> Result<Tensor> {
        let (d, heads) = (self.cfg.hidden_size, self.cfg.num_attention_heads);
        let hd = d / heads;
        let ps = self.cfg.patch_size;
        if pixels.rank() != 4
            || pixels.dim(0) != 1
            || pixels.dim(1) != self.cfg.num_channels
            || pixels.dim(2) < ps
            || pixels.dim(3) < ps
        {
            return Err(ModelError::invalid(format!(
                "DINOv3 input {:?}, expected [1, {}, H >= {ps}, W >= {ps}]",
                pixels.shape(),
                self.cfg.num_channels
            )));
        }
        let pixels = ops::to_dtype(&pixels.to_device(&self.device)?, DType::F32)?;
        let patches = ops::patch_embed2d(&pixels, &self.patch_w, Some(&self.patch_b))?;
        tap(probe, "embeddings.patch_embeddings", &patches);
        let (nh, nw) = (patches.dim(2), patches.dim(3));
        let np = nh * nw;
        let patches = ops::permute(&patches.reshape(&[1, d, np])?, &[0, 2, 1])?;
        let mut h = ops::cat(&[&self.prefix, &patches], 1)?;
        tap(probe, "embeddings", &h);
        let tokens = h.dim(1);
        let n_prefix = tokens - np;
        let (cos, sin) = self.rope_tables(nh, nw);
        tap(
            probe,
            "rope_embeddings.0",
            &Tensor::from_slice(&cos, &[np, hd], &Device::Cpu)?,
        );
        tap(
            probe,
            "rope_embeddings.1",
            &Tensor::from_slice(&sin, &[np, hd], &Device::Cpu)?,
        );
        let cos = Tensor::from_vec(cos, &[np, hd], &self.device)?;
        let sin = Tensor::from_vec(sin, &[np, hd], &self.device)?;
        let scale = 1.0 / (hd as f32).sqrt();
        for (i, l) in self.layers.iter().enumerate() {
            let name = format!("layer.{i}");
            let x = l.norm1.forward(&h)?;
            tap(probe, &format!("{name}.norm1"), &x);
            let split = |t: Tensor| t.reshape(&[1, tokens, heads, hd]);
            let (q, k, v) = (l.q.forward(&x)?, l.k.forward(&x)?, l.v.forward(&x)?);
            tap(probe, &format!("{name}.attention.q_proj"), &q);
            tap(probe, &format!("{name}.attention.k_proj"), &k);
            tap(probe, &format!("{name}.attention.v_proj"), &v);
            let (q, k, v) = (split(q)?, split(k)?, split(v)?);
            let q = ops::rope_half_split(&q, &cos, &sin, n_prefix)?;
            let k = ops::rope_half_split(&k, &cos, &sin, n_prefix)?;
            let a = ops::attention(&q, &k, &v, scale)?.reshape(&[1, tokens, d])?;
            tap(probe, &format!("pre:{name}.attention.o_proj"), &a);
            let a = l.o.forward(&a)?;
            tap(probe, &format!("{name}.attention.o_proj"), &a);
            tap(probe, &format!("{name}.attention.0"), &a);
            let a = ops::mul(&a, &l.ls1)?;
            tap(probe, &format!("{name}.layer_scale1"), &a);
            h = ops::add(&a, &h)?;
            let x = l.norm2.forward(&h)?;
            tap(probe, &format!("{name}.norm2"), &x);
            let m = match &l.gate {
                Some(g) => {
                    let gate = ops::unary(&g.forward(&x)?, self.act)?;
                    l.down.forward(&ops::mul(&gate, &l.up.forward(&x)?)?)?
                }
                None => {
                    let up = l.up.forward(&x)?;
                    tap(probe, &format!("{name}.mlp.up_proj"), &up);
                    l.down.forward(&ops::unary(&up, self.act)?)?
                }
            };
            tap(probe, &format!("{name}.mlp"), &m);
            let m = ops::mul(&m, &l.ls2)?;
            tap(probe, &format!("{name}.layer_scale2"), &m);
            h = ops::add(&m, &h)?;
            tap(probe, &name, &h);
        }
        LayerNorm::plain(1e-5).forward(&h)
    }

    /// The extractor on a PIL-style RGB image: `pixel_values`, then `forward`.
    pub fn extract(&self, image: &RgbImage, size: u32) -> Result<Tensor> {
        let pixels = self.pixel_values(image, size)?;
        self.forward(&pixels, &mut None)
    }

    /// The extractor's input for an RGB image: LANCZOS resize to `size²` (Pillow-exact),
    /// `/255`, ImageNet normalisation → `[1, 3, size, size]` f32 on the model's device.
    pub fn pixel_values(&self, image: &RgbImage, size: u32) -> Result<Tensor> {
        if size < self.cfg.patch_size as u32 || image.width() == 0 || image.height() == 0 {
            return Err(ModelError::invalid(format!(
                "DINOv3 input of {}x{} resized to {size}²",
                image.width(),
                image.height()
            )));
        }
        let resized = t2_imageops::resize_rgb(image, size, size, t2_imageops::Filter::Lanczos);
        let chw = t2_imageops::to_normalized_chw(
            &resized,
            t2_imageops::IMAGENET_MEAN,
            t2_imageops::IMAGENET_STD,
        );
        let s = size as usize;
        Ok(Tensor::from_vec(chw, &[1, 3, s, s], &self.device)?)
    }
}
