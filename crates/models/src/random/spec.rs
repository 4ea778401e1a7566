//! The tensor lists of every checkpoint in the real layout: key names, shapes, storage dtypes
//! (spec §5: DiTs bf16, SC-VAE decoders f16, the SS decoder's f16 body with f32 norms and outer
//! convs, DINOv3 f32) and how each tensor is initialised. One list per network type, built from
//! its config, so the demo set (PyTorch-exact generator, tiny) and the full-size set (fast
//! parallel generator, ~16 GB) share every name and shape.
//!
//! Scales keep activations O(1) through any depth: Linear/conv weights have std 1/√fan_in, norm
//! gains 1 ± 0.1, small biases; the DiT `modulation` follows the reference's own
//! `randn(6C)/√C`.

use t2_tensor::DType;

use crate::config::{Dinov3Config, FlowConfig, ScVaeDecoderConfig, SsDecoderConfig};

/// How one tensor's values are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Mean and standard deviation (normal for the demo set; uniform with this mean and std
    /// for the full-size set, like PyTorch's own `kaiming_uniform_` default).
    Random {
        mean: f32,
        std: f32,
    },
    Const(f32),
    /// `[rows, cols]` whose rows share one random direction plus `noise` × an independent one,
    /// all scaled by `std` (the shape decoder's `to_subdiv`: a voxel's 8 children are then
    /// mostly kept or dropped together, as in a surface refinement).
    SharedRows {
        std: f32,
        noise: f32,
    },
}

/// One tensor of a checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub init: Init,
}

impl TensorSpec {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn bytes(&self) -> usize {
        self.numel() * self.dtype.size_in_bytes()
    }
}

/// A checkpoint's tensors in file order (the order the demo generator draws them in).
#[derive(Clone, Debug, Default)]
pub struct CheckpointSpec {
    pub tensors: Vec<TensorSpec>,
}

impl CheckpointSpec {
    pub fn numel(&self) -> usize {
        self.tensors.iter().map(TensorSpec::numel).sum()
    }
    pub fn bytes(&self) -> usize {
        self.tensors.iter().map(TensorSpec::bytes).sum()
    }

    fn random(&mut self, name: String, shape: Vec<usize>, dtype: DType, mean: f32, std: f32) {
        self.push(name, shape, dtype, Init::Random { mean, std });
    }

    fn push(&mut self, name: String, shape: Vec<usize>, dtype: DType, init: Init) {
        self.tensors.push(TensorSpec {
            name,
            shape,
            dtype,
            init,
        });
    }

    fn linear(&mut self, p: &str, i: usize, o: usize, bias: bool, dtype: DType) {
        let std = 1.0 / (i as f32).sqrt();
        self.random(format!("{p}.weight"), vec![o, i], dtype, 0.0, std);
        if bias {
            self.random(format!("{p}.bias"), vec![o], dtype, 0.0, 0.1);
        }
    }

    fn norm(&mut self, p: &str, c: usize, dtype: DType) {
        self.random(format!("{p}.weight"), vec![c], dtype, 1.0, 0.1);
        self.random(format!("{p}.bias"), vec![c], dtype, 0.0, 0.1);
    }

    /// A 3³ conv with fan-in `ci·27` in the given layout (`[Co, Ci, 3,3,3]` or `[Co, 3,3,3, Ci]`).
    fn conv(&mut self, p: &str, shape: Vec<usize>, ci: usize, dtype: DType, bias_dtype: DType) {
        let co = shape[0];
        let std = 1.0 / ((ci * 27) as f32).sqrt();
        self.random(format!("{p}.weight"), shape, dtype, 0.0, std);
        self.random(format!("{p}.bias"), vec![co], bias_dtype, 0.0, 0.1);
    }
}

/// A flow DiT (`SparseStructureFlowModel` / `SLatFlowModel`), every tensor bf16 as shipped.
pub fn flow(cfg: &FlowConfig) -> CheckpointSpec {
    let d = DType::BF16;
    let c = cfg.model_channels;
    let (h, hd) = (cfg.num_heads(), c / cfg.num_heads().max(1));
    let mut ck = CheckpointSpec::default();
    ck.linear("t_embedder.mlp.0", 256, c, true, d);
    ck.linear("t_embedder.mlp.2", c, c, true, d);
    ck.linear("adaLN_modulation.1", c, 6 * c, true, d);
    ck.linear("input_layer", cfg.in_channels, c, true, d);
    for i in 0..cfg.num_blocks {
        let b = format!("blocks.{i}");
        let std = 1.0 / (c as f32).sqrt();
        ck.random(format!("{b}.modulation"), vec![6 * c], d, 0.0, std);
        ck.norm(&format!("{b}.norm2"), c, d);
        ck.linear(&format!("{b}.self_attn.to_qkv"), c, 3 * c, true, d);
        for n in ["q", "k"] {
            let name = format!("{b}.self_attn.{n}_rms_norm.gamma");
            ck.random(name, vec![h, hd], d, 1.0, 0.1);
        }
        ck.linear(&format!("{b}.self_attn.to_out"), c, c, true, d);
        ck.linear(&format!("{b}.cross_attn.to_q"), c, c, true, d);
        ck.linear(
            &format!("{b}.cross_attn.to_kv"),
            cfg.cond_channels,
            2 * c,
            true,
            d,
        );
        for n in ["q", "k"] {
            let name = format!("{b}.cross_attn.{n}_rms_norm.gamma");
            ck.random(name, vec![h, hd], d, 1.0, 0.1);
        }
        ck.linear(&format!("{b}.cross_attn.to_out"), c, c, true, d);
        ck.linear(&format!("{b}.mlp.mlp.0"), c, cfg.mlp_hidden(), true, d);
        ck.linear(&format!("{b}.mlp.mlp.2"), cfg.mlp_hidden(), c, true, d);
    }
    ck.linear("out_layer", c, cfg.out_channels, true, d);
    ck
}

/// The TRELLIS v1 SS decoder: f16 body convs, f32 norms, input and output convs.
pub fn ss_decoder(cfg: &SsDecoderConfig) -> CheckpointSpec {
    let (h, f) = (DType::F16, DType::F32);
    let ch = &cfg.channels;
    let mut ck = CheckpointSpec::default();
    let lat = cfg.latent_channels;
    ck.conv("input_layer", vec![ch[0], lat, 3, 3, 3], lat, f, f);
    let res = |ck: &mut CheckpointSpec, p: &str, c: usize| {
        ck.norm(&format!("{p}.norm1"), c, f);
        ck.norm(&format!("{p}.norm2"), c, f);
        ck.conv(&format!("{p}.conv1"), vec![c, c, 3, 3, 3], c, h, h);
        ck.conv(&format!("{p}.conv2"), vec![c, c, 3, 3, 3], c, h, h);
    };
    for i in 0..cfg.num_res_blocks_middle {
        res(&mut ck, &format!("middle_block.{i}"), ch[0]);
    }
    let mut k = 0;
    for (i, &c) in ch.iter().enumerate() {
        for _ in 0..cfg.num_res_blocks {
            res(&mut ck, &format!("blocks.{k}"), c);
            k += 1;
        }
        if let Some(&next) = ch.get(i + 1) {
            ck.conv(
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
    ck.norm("out_layer.0", last, f);
    ck.conv(
        "out_layer.2",
        vec![cfg.out_channels, last, 3, 3, 3],
        last,
        f,
        f,
    );
    ck
}

/// An SC-VAE decoder, every tensor f16 as shipped; `to_subdiv` only when it predicts.
pub fn sc_vae(cfg: &ScVaeDecoderConfig, out: usize) -> CheckpointSpec {
    let h = DType::F16;
    let ch = &cfg.model_channels;
    let mut ck = CheckpointSpec::default();
    ck.linear("output_layer", *ch.last().expect("channels"), out, true, h);
    ck.linear("from_latent", cfg.latent_channels, ch[0], true, h);
    for (i, &c) in ch.iter().enumerate() {
        for j in 0..cfg.num_blocks[i] {
            let p = format!("blocks.{i}.{j}");
            ck.conv(&format!("{p}.conv"), vec![c, 3, 3, 3, c], c, h, h);
            ck.norm(&format!("{p}.norm"), c, h);
            ck.linear(&format!("{p}.mlp.0"), c, 4 * c, true, h);
            ck.linear(&format!("{p}.mlp.2"), 4 * c, c, true, h);
        }
        if let Some(&co) = ch.get(i + 1) {
            let p = format!("blocks.{i}.{}", cfg.num_blocks[i]);
            ck.norm(&format!("{p}.norm1"), c, h);
            ck.conv(&format!("{p}.conv1"), vec![8 * co, 3, 3, 3, c], c, h, h);
            ck.conv(&format!("{p}.conv2"), vec![co, 3, 3, 3, co], co, h, h);
            if cfg.pred_subdiv {
                let std = 1.0 / (c as f32).sqrt();
                let init = Init::SharedRows { std, noise: 0.2 };
                ck.push(format!("{p}.to_subdiv.weight"), vec![8, c], h, init);
                ck.random(format!("{p}.to_subdiv.bias"), vec![8], h, 0.0, 0.1);
            }
        }
    }
    ck
}

/// HF `DINOv3ViTModel` weights (f32).
pub fn dinov3(cfg: &Dinov3Config) -> CheckpointSpec {
    let f = DType::F32;
    let (d, p, inter) = (cfg.hidden_size, cfg.patch_size, cfg.intermediate_size);
    let mut ck = CheckpointSpec::default();
    ck.random("embeddings.cls_token".into(), vec![1, 1, d], f, 0.0, 0.02);
    ck.push(
        "embeddings.mask_token".into(),
        vec![1, 1, d],
        f,
        Init::Const(0.0),
    );
    let regs = vec![1, cfg.num_register_tokens, d];
    ck.random("embeddings.register_tokens".into(), regs, f, 0.0, 0.02);
    let fan = (cfg.num_channels * p * p) as f32;
    ck.random(
        "embeddings.patch_embeddings.weight".into(),
        vec![d, cfg.num_channels, p, p],
        f,
        0.0,
        1.0 / fan.sqrt(),
    );
    ck.random(
        "embeddings.patch_embeddings.bias".into(),
        vec![d],
        f,
        0.0,
        0.1,
    );
    for i in 0..cfg.num_hidden_layers {
        let l = format!("layer.{i}");
        ck.norm(&format!("{l}.norm1"), d, f);
        ck.linear(&format!("{l}.attention.q_proj"), d, d, cfg.query_bias, f);
        ck.linear(&format!("{l}.attention.k_proj"), d, d, cfg.key_bias, f);
        ck.linear(&format!("{l}.attention.v_proj"), d, d, cfg.value_bias, f);
        ck.linear(&format!("{l}.attention.o_proj"), d, d, cfg.proj_bias, f);
        ck.random(format!("{l}.layer_scale1.lambda1"), vec![d], f, 0.5, 0.1);
        ck.norm(&format!("{l}.norm2"), d, f);
        ck.linear(&format!("{l}.mlp.up_proj"), d, inter, cfg.mlp_bias, f);
        ck.linear(&format!("{l}.mlp.down_proj"), inter, d, cfg.mlp_bias, f);
        ck.random(format!("{l}.layer_scale2.lambda1"), vec![d], f, 0.5, 0.1);
    }
    ck.push("norm.weight".into(), vec![d], f, Init::Const(1.0));
    ck.push("norm.bias".into(), vec![d], f, Init::Const(0.0));
    ck
}
