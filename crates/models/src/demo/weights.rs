//! Random weights for the demo models, under the real checkpoints' key names and storage
//! dtypes (DiTs bf16, SC-VAE decoders f16, SS decoder f16 body with f32 norms and outer convs,
//! DINOv3 f32). Values come from the PyTorch-exact generator, so they are the same everywhere.
//! Scales keep activations O(1): weights ~ N(0, 1/fan_in), norm gains ~ 1 ± 0.1, small biases.

use std::collections::HashMap;

use half::{bf16, f16};
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use t2_tensor::DType;

use crate::config::{Dinov3Config, FlowConfig, ScVaeDecoderConfig, SsDecoderConfig};
use crate::error::{ModelError, Result};
use crate::rng::TorchGenerator;

/// One tensor of a checkpoint (values kept in f32, stored in `dtype`).
pub(super) struct Entry {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub data: Vec<f32>,
}

/// A checkpoint being built: key → tensor, in insertion order.
#[derive(Default)]
pub(super) struct Checkpoint {
    order: Vec<String>,
    entries: HashMap<String, Entry>,
}

impl Checkpoint {
    fn put(&mut self, name: String, shape: Vec<usize>, dtype: DType, data: Vec<f32>) {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        self.order.push(name.clone());
        self.entries.insert(name, Entry { shape, dtype, data });
    }

    fn normal(
        &mut self,
        g: &mut TorchGenerator,
        name: String,
        shape: Vec<usize>,
        dtype: DType,
        mean: f32,
        std: f32,
    ) {
        let n = shape.iter().product();
        let data = g.randn(n).into_iter().map(|v| mean + std * v).collect();
        self.put(name, shape, dtype, data);
    }

    fn linear(
        &mut self,
        g: &mut TorchGenerator,
        p: &str,
        i: usize,
        o: usize,
        bias: bool,
        dtype: DType,
    ) {
        self.normal(
            g,
            format!("{p}.weight"),
            vec![o, i],
            dtype,
            0.0,
            1.0 / (i as f32).sqrt(),
        );
        if bias {
            self.normal(g, format!("{p}.bias"), vec![o], dtype, 0.0, 0.1);
        }
    }

    fn norm(&mut self, g: &mut TorchGenerator, p: &str, c: usize, dtype: DType) {
        self.normal(g, format!("{p}.weight"), vec![c], dtype, 1.0, 0.1);
        self.normal(g, format!("{p}.bias"), vec![c], dtype, 0.0, 0.1);
    }

    /// A conv with fan-in `ci·27` in the given layout (`[Co, Ci, 3,3,3]` or `[Co, 3,3,3, Ci]`).
    fn conv(
        &mut self,
        g: &mut TorchGenerator,
        p: &str,
        shape: Vec<usize>,
        ci: usize,
        dtype: DType,
        wdtype_bias: DType,
    ) {
        let co = shape[0];
        self.normal(
            g,
            format!("{p}.weight"),
            shape,
            dtype,
            0.0,
            1.0 / ((ci * 27) as f32).sqrt(),
        );
        self.normal(g, format!("{p}.bias"), vec![co], wdtype_bias, 0.0, 0.1);
    }

    pub fn get_mut(&mut self, name: &str) -> Result<&mut Entry> {
        self.entries
            .get_mut(name)
            .ok_or_else(|| ModelError::invalid(format!("demo checkpoint has no `{name}`")))
    }

    /// The safetensors file bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let bufs: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = self
            .order
            .iter()
            .map(|k| {
                let e = &self.entries[k];
                let (dt, bytes): (Dtype, Vec<u8>) = match e.dtype {
                    DType::BF16 => (
                        Dtype::BF16,
                        e.data
                            .iter()
                            .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
                            .collect(),
                    ),
                    DType::F16 => (
                        Dtype::F16,
                        e.data
                            .iter()
                            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                            .collect(),
                    ),
                    _ => (
                        Dtype::F32,
                        e.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                    ),
                };
                (k.clone(), dt, e.shape.clone(), bytes)
            })
            .collect();
        let views = bufs
            .iter()
            .map(|(k, dt, s, b)| Ok((k.as_str(), TensorView::new(*dt, s.clone(), b)?)))
            .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()
            .map_err(|e| ModelError::invalid(format!("demo safetensors: {e}")))?;
        safetensors::tensor::serialize(views, None)
            .map_err(|e| ModelError::invalid(format!("demo safetensors: {e}")))
    }
}

/// A flow DiT (`SparseStructureFlowModel` / `SLatFlowModel`), every tensor bf16 as shipped.
pub(super) fn flow(cfg: &FlowConfig, g: &mut TorchGenerator) -> Checkpoint {
    let d = DType::BF16;
    let c = cfg.model_channels;
    let (h, hd) = (cfg.num_heads(), c / cfg.num_heads());
    let mut ck = Checkpoint::default();
    ck.linear(g, "t_embedder.mlp.0", 256, c, true, d);
    ck.linear(g, "t_embedder.mlp.2", c, c, true, d);
    ck.linear(g, "adaLN_modulation.1", c, 6 * c, true, d);
    ck.linear(g, "input_layer", cfg.in_channels, c, true, d);
    for i in 0..cfg.num_blocks {
        let b = format!("blocks.{i}");
        ck.normal(
            g,
            format!("{b}.modulation"),
            vec![6 * c],
            d,
            0.0,
            1.0 / (c as f32).sqrt(),
        );
        ck.norm(g, &format!("{b}.norm2"), c, d);
        ck.linear(g, &format!("{b}.self_attn.to_qkv"), c, 3 * c, true, d);
        for n in ["q", "k"] {
            ck.normal(
                g,
                format!("{b}.self_attn.{n}_rms_norm.gamma"),
                vec![h, hd],
                d,
                1.0,
                0.1,
            );
        }
        ck.linear(g, &format!("{b}.self_attn.to_out"), c, c, true, d);
        ck.linear(g, &format!("{b}.cross_attn.to_q"), c, c, true, d);
        ck.linear(
            g,
            &format!("{b}.cross_attn.to_kv"),
            cfg.cond_channels,
            2 * c,
            true,
            d,
        );
        for n in ["q", "k"] {
            ck.normal(
                g,
                format!("{b}.cross_attn.{n}_rms_norm.gamma"),
                vec![h, hd],
                d,
                1.0,
                0.1,
            );
        }
        ck.linear(g, &format!("{b}.cross_attn.to_out"), c, c, true, d);
        ck.linear(g, &format!("{b}.mlp.mlp.0"), c, cfg.mlp_hidden(), true, d);
        ck.linear(g, &format!("{b}.mlp.mlp.2"), cfg.mlp_hidden(), c, true, d);
    }
    ck.linear(g, "out_layer", c, cfg.out_channels, true, d);
    ck
}

/// The TRELLIS v1 SS decoder: f16 body convs, f32 norms, input and output convs.
pub(super) fn ss_decoder(cfg: &SsDecoderConfig, g: &mut TorchGenerator) -> Checkpoint {
    let (h, f) = (DType::F16, DType::F32);
    let ch = &cfg.channels;
    let mut ck = Checkpoint::default();
    ck.conv(
        g,
        "input_layer",
        vec![ch[0], cfg.latent_channels, 3, 3, 3],
        cfg.latent_channels,
        f,
        f,
    );
    let res = |ck: &mut Checkpoint, g: &mut TorchGenerator, p: &str, c: usize| {
        ck.norm(g, &format!("{p}.norm1"), c, f);
        ck.norm(g, &format!("{p}.norm2"), c, f);
        ck.conv(g, &format!("{p}.conv1"), vec![c, c, 3, 3, 3], c, h, h);
        ck.conv(g, &format!("{p}.conv2"), vec![c, c, 3, 3, 3], c, h, h);
    };
    for i in 0..cfg.num_res_blocks_middle {
        res(&mut ck, g, &format!("middle_block.{i}"), ch[0]);
    }
    let mut k = 0;
    for (i, &c) in ch.iter().enumerate() {
        for _ in 0..cfg.num_res_blocks {
            res(&mut ck, g, &format!("blocks.{k}"), c);
            k += 1;
        }
        if let Some(&next) = ch.get(i + 1) {
            ck.conv(
                g,
                &format!("blocks.{k}.conv"),
                vec![next * 8, c, 3, 3, 3],
                c,
                h,
                h,
            );
            k += 1;
        }
    }
    let last = *ch.last().expect("channels");
    ck.norm(g, "out_layer.0", last, f);
    ck.conv(
        g,
        "out_layer.2",
        vec![cfg.out_channels, last, 3, 3, 3],
        last,
        f,
        f,
    );
    ck
}

/// An SC-VAE decoder, every tensor f16 as shipped; `to_subdiv` only when it predicts.
pub(super) fn sc_vae(cfg: &ScVaeDecoderConfig, out: usize, g: &mut TorchGenerator) -> Checkpoint {
    let h = DType::F16;
    let ch = &cfg.model_channels;
    let mut ck = Checkpoint::default();
    ck.linear(
        g,
        "output_layer",
        *ch.last().expect("channels"),
        out,
        true,
        h,
    );
    ck.linear(g, "from_latent", cfg.latent_channels, ch[0], true, h);
    for (i, &c) in ch.iter().enumerate() {
        for j in 0..cfg.num_blocks[i] {
            let p = format!("blocks.{i}.{j}");
            ck.conv(g, &format!("{p}.conv"), vec![c, 3, 3, 3, c], c, h, h);
            ck.norm(g, &format!("{p}.norm"), c, h);
            ck.linear(g, &format!("{p}.mlp.0"), c, 4 * c, true, h);
            ck.linear(g, &format!("{p}.mlp.2"), 4 * c, c, true, h);
        }
        if let Some(&co) = ch.get(i + 1) {
            let p = format!("blocks.{i}.{}", cfg.num_blocks[i]);
            ck.norm(g, &format!("{p}.norm1"), c, h);
            ck.conv(g, &format!("{p}.conv1"), vec![8 * co, 3, 3, 3, c], c, h, h);
            ck.conv(g, &format!("{p}.conv2"), vec![co, 3, 3, 3, co], co, h, h);
            if cfg.pred_subdiv {
                // The 8 rows share one direction (plus 20 % noise), so that a voxel's children
                // are mostly kept or dropped together, as in a real surface refinement: with
                // independent rows the kept children scatter and no quad closes.
                let std = 1.0 / (c as f32).sqrt();
                let common = g.randn(c);
                let noise = g.randn(8 * c);
                let w = (0..8 * c)
                    .map(|i| std * (common[i % c] + 0.2 * noise[i]))
                    .collect();
                ck.put(format!("{p}.to_subdiv.weight"), vec![8, c], h, w);
                ck.normal(g, format!("{p}.to_subdiv.bias"), vec![8], h, 0.0, 0.1);
            }
        }
    }
    ck
}

/// HF `DINOv3ViTModel` weights (f32).
pub(super) fn dinov3(cfg: &Dinov3Config, g: &mut TorchGenerator) -> Checkpoint {
    let f = DType::F32;
    let (d, p, inter) = (cfg.hidden_size, cfg.patch_size, cfg.intermediate_size);
    let mut ck = Checkpoint::default();
    ck.normal(
        g,
        "embeddings.cls_token".into(),
        vec![1, 1, d],
        f,
        0.0,
        0.02,
    );
    ck.put(
        "embeddings.mask_token".into(),
        vec![1, 1, d],
        f,
        vec![0.0; d],
    );
    ck.normal(
        g,
        "embeddings.register_tokens".into(),
        vec![1, cfg.num_register_tokens, d],
        f,
        0.0,
        0.02,
    );
    let fan = (cfg.num_channels * p * p) as f32;
    ck.normal(
        g,
        "embeddings.patch_embeddings.weight".into(),
        vec![d, cfg.num_channels, p, p],
        f,
        0.0,
        1.0 / fan.sqrt(),
    );
    ck.normal(
        g,
        "embeddings.patch_embeddings.bias".into(),
        vec![d],
        f,
        0.0,
        0.1,
    );
    for i in 0..cfg.num_hidden_layers {
        let l = format!("layer.{i}");
        ck.norm(g, &format!("{l}.norm1"), d, f);
        ck.linear(g, &format!("{l}.attention.q_proj"), d, d, cfg.query_bias, f);
        ck.linear(g, &format!("{l}.attention.k_proj"), d, d, cfg.key_bias, f);
        ck.linear(g, &format!("{l}.attention.v_proj"), d, d, cfg.value_bias, f);
        ck.linear(g, &format!("{l}.attention.o_proj"), d, d, cfg.proj_bias, f);
        ck.normal(g, format!("{l}.layer_scale1.lambda1"), vec![d], f, 0.5, 0.1);
        ck.norm(g, &format!("{l}.norm2"), d, f);
        ck.linear(g, &format!("{l}.mlp.up_proj"), d, inter, cfg.mlp_bias, f);
        ck.linear(g, &format!("{l}.mlp.down_proj"), inter, d, cfg.mlp_bias, f);
        ck.normal(g, format!("{l}.layer_scale2.lambda1"), vec![d], f, 0.5, 0.1);
    }
    ck.put("norm.weight".into(), vec![d], f, vec![1.0; d]);
    ck.put("norm.bias".into(), vec![d], f, vec![0.0; d]);
    ck
}
