//! Random-weight model sets in the real layout, at full size (`write_full_size`, ~16 GB: five
//! bf16 DiTs, two f16 SC-VAE decoders, the SS decoder with its f32/f16 mix, f32 DINOv3 ViT-L/16
//! in HF naming), so full-size runs need no gated download; and voxelised analytic shapes
//! ([`shape`]) that fix the sparse structure in benchmarks, since random weights decode none.
//!
//! The file names, key names, shapes, dtypes, configs and `pipeline.json` (real sampler values
//! and Appendix A normalisation) are those of `demo`, only at the real widths (spec §2.5, §5).
//! Values are uniform with the spec's mean and std (see `spec`), generated in parallel from
//! keyed SplitMix64 streams: the same seed gives the same bytes on any machine and thread count.

pub mod shape;
pub mod spec;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde_json::json;

use crate::config::{Dinov3Config, FlowConfig, ScVaeDecoderConfig, SsDecoderConfig};
use crate::demo::{self, pipeline_json, write_json};
use crate::error::{ModelError, Result};
use spec::CheckpointSpec;

/// The widths and depths of a model set.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSetSize {
    /// DiT width, blocks and heads (1536, 30, 12).
    pub dit_channels: usize,
    pub dit_blocks: usize,
    pub dit_heads: usize,
    /// The SS flow's dense grid (16).
    pub ss_resolution: usize,
    /// DINOv3 width, layers, heads and MLP width (1024, 24, 16, 4096); its width is the DiTs'
    /// `cond_channels`.
    pub dino_hidden: usize,
    pub dino_layers: usize,
    pub dino_heads: usize,
    pub dino_intermediate: usize,
    /// SC-VAE decoder channels and ConvNeXt blocks per level.
    pub scvae_channels: Vec<usize>,
    pub scvae_blocks: Vec<usize>,
    /// SS decoder channels (one upsampling between consecutive entries) and res blocks.
    pub ss_decoder_channels: Vec<usize>,
    pub ss_decoder_res_blocks: usize,
}

impl ModelSetSize {
    /// The real TRELLIS.2-4B image-to-3D set (spec §2).
    pub fn full() -> ModelSetSize {
        ModelSetSize {
            dit_channels: 1536,
            dit_blocks: 30,
            dit_heads: 12,
            ss_resolution: 16,
            dino_hidden: 1024,
            dino_layers: 24,
            dino_heads: 16,
            dino_intermediate: 4096,
            scvae_channels: vec![1024, 512, 256, 128, 64],
            scvae_blocks: vec![4, 16, 8, 4, 0],
            ss_decoder_channels: vec![512, 128, 32],
            ss_decoder_res_blocks: 2,
        }
    }

    /// The same layout scaled down for CPU tests (every key of the full set, tiny widths; the SS
    /// flow on an 8³ grid with one more decoder upsampling, so the decoder still outputs 64³).
    pub fn scaled() -> ModelSetSize {
        ModelSetSize {
            dit_channels: 64,
            dit_blocks: 2,
            dit_heads: 2,
            ss_resolution: 8,
            dino_hidden: 64,
            dino_layers: 2,
            dino_heads: 2,
            dino_intermediate: 256,
            scvae_channels: vec![32, 16, 16, 8, 8],
            scvae_blocks: vec![1, 2, 1, 1, 0],
            ss_decoder_channels: vec![32, 16, 8, 8],
            ss_decoder_res_blocks: 2,
        }
    }
}

/// One written file.
#[derive(Clone, Debug)]
pub struct WrittenFile {
    pub path: PathBuf,
    pub tensors: usize,
    pub parameters: usize,
    pub bytes: u64,
}

/// What `write_model_set` wrote.
#[derive(Clone, Debug)]
pub struct WrittenSet {
    pub dir: PathBuf,
    pub files: Vec<WrittenFile>,
    pub seconds: f64,
}

impl WrittenSet {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// The `{"name", "args"}` configs of the flows as the HF JSONs carry them.
fn flow_args(s: &ModelSetSize, resolution: usize, i: usize, o: usize) -> serde_json::Value {
    json!({
        "resolution": resolution, "in_channels": i, "out_channels": o,
        "model_channels": s.dit_channels, "cond_channels": s.dino_hidden,
        "num_blocks": s.dit_blocks, "num_heads": s.dit_heads, "mlp_ratio": 5.3334,
        "pe_mode": "rope", "rope_freq": [1.0, 10000.0], "dtype": "bfloat16",
        "share_mod": true, "initialization": "scaled", "qk_rms_norm": true,
        "qk_rms_norm_cross": true
    })
}

fn sc_vae_args(s: &ModelSetSize, fdg: bool) -> serde_json::Value {
    let n = s.scvae_channels.len();
    let mut a = json!({
        "model_channels": s.scvae_channels, "latent_channels": 32,
        "num_blocks": s.scvae_blocks,
        "block_type": vec!["SparseConvNeXtBlock3d"; n],
        "up_block_type": vec!["SparseResBlockC2S3d"; n - 1],
        "block_args": vec![json!({}); n], "use_fp16": true
    });
    let m = a.as_object_mut().expect("object");
    if fdg {
        m.insert("resolution".into(), json!(256));
        m.insert("voxel_margin".into(), json!(0.5));
    } else {
        m.insert("out_channels".into(), json!(6));
        m.insert("pred_subdiv".into(), json!(false));
    }
    a
}

fn dinov3_config(s: &ModelSetSize) -> serde_json::Value {
    json!({
        "architectures": ["DINOv3ViTModel"], "model_type": "dinov3_vit",
        "hidden_size": s.dino_hidden, "num_hidden_layers": s.dino_layers,
        "num_attention_heads": s.dino_heads, "intermediate_size": s.dino_intermediate,
        "hidden_act": "gelu", "layer_norm_eps": 1e-5, "patch_size": 16, "num_channels": 3,
        "num_register_tokens": 4, "rope_theta": 100.0, "query_bias": true, "key_bias": false,
        "value_bias": true, "proj_bias": true, "mlp_bias": true, "use_gated_mlp": false,
        "layerscale_value": 1.0, "image_size": 224, "initializer_range": 0.02,
        "attention_dropout": 0.0, "drop_path_rate": 0.0, "pos_embed_shift": null,
        "pos_embed_jitter": null, "pos_embed_rescale": 2.0, "torch_dtype": "float32"
    })
}

fn parse<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Result<T> {
    serde_json::from_value(v.clone())
        .map_err(|e| ModelError::invalid(format!("random model config: {e}")))
}

/// One file to write: its path relative to the set, its config (if a `.json` goes beside it)
/// and its tensors.
struct Planned {
    weights: PathBuf,
    config: Option<(PathBuf, serde_json::Value)>,
    spec: CheckpointSpec,
}

/// Every file of the set at `size`, with the real names.
fn plan(out: &Path, size: &ModelSetSize) -> Result<Vec<Planned>> {
    let ckpt = |rel: &str, class: &str, args: serde_json::Value, spec: CheckpointSpec| Planned {
        weights: out.join(format!("{rel}.safetensors")),
        config: Some((
            out.join(format!("{rel}.json")),
            json!({"name": class, "args": args}),
        )),
        spec,
    };
    let mut files = Vec::new();
    let dino = dinov3_config(size);
    let dino_cfg: Dinov3Config = parse(&dino)?;
    files.push(Planned {
        weights: out.join(demo::DINOV3).join("model.safetensors"),
        config: Some((out.join(demo::DINOV3).join("config.json"), dino)),
        spec: spec::dinov3(&dino_cfg),
    });
    for (rel, res, i, o, class) in [
        (
            demo::SS_FLOW,
            size.ss_resolution,
            8,
            8,
            "SparseStructureFlowModel",
        ),
        (demo::SHAPE_FLOW_512, 32, 32, 32, "SLatFlowModel"),
        (demo::SHAPE_FLOW_1024, 64, 32, 32, "SLatFlowModel"),
        (demo::TEX_FLOW_512, 32, 64, 32, "SLatFlowModel"),
        (demo::TEX_FLOW_1024, 32, 64, 32, "SLatFlowModel"),
    ] {
        let args = flow_args(size, res, i, o);
        let cfg: FlowConfig = parse(&args)?;
        files.push(ckpt(rel, class, args, spec::flow(&cfg)));
    }
    let ss_args = json!({"out_channels": 1, "latent_channels": 8,
        "num_res_blocks": size.ss_decoder_res_blocks, "num_res_blocks_middle": 2,
        "channels": size.ss_decoder_channels, "norm_type": "layer", "use_fp16": true});
    let ss_cfg: SsDecoderConfig = parse(&ss_args)?;
    files.push(ckpt(
        demo::SS_DECODER,
        "SparseStructureDecoder",
        ss_args,
        spec::ss_decoder(&ss_cfg),
    ));
    for (rel, fdg, out_ch, class) in [
        (demo::SHAPE_DECODER, true, 7, "FlexiDualGridVaeDecoder"),
        (demo::TEX_DECODER, false, 6, "SparseUnetVaeDecoder"),
    ] {
        let args = sc_vae_args(size, fdg);
        let cfg: ScVaeDecoderConfig = parse(&args)?;
        files.push(ckpt(rel, class, args, spec::sc_vae(&cfg, out_ch)));
    }
    Ok(files)
}

/// The tensor lists of the set at `size` (for size checks without writing anything).
pub fn plan_specs(size: &ModelSetSize) -> Result<Vec<(PathBuf, CheckpointSpec)>> {
    Ok(plan(Path::new(""), size)?
        .into_iter()
        .map(|p| (p.weights, p.spec))
        .collect())
}

/// Writes a random model set of `size` to `out` (created if needed): configs, `pipeline.json`
/// and every checkpoint, the files in parallel.
pub fn write_model_set(out: &Path, seed: u64, size: &ModelSetSize) -> Result<WrittenSet> {
    let start = Instant::now();
    std::fs::create_dir_all(out).map_err(|e| ModelError::io(out, e))?;
    write_json(&out.join("pipeline.json"), &pipeline_json())?;
    let files = plan(out, size)?;
    for f in &files {
        if let Some((path, cfg)) = &f.config {
            write_json(path, cfg)?;
        }
    }
    // Largest first, so the long files start early.
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(files[i].spec.bytes()));
    let mut written = order
        .par_iter()
        .map(|&i| {
            let f = &files[i];
            let key = writer::SplitMix64::key(&[seed, i as u64]);
            let bytes = writer::write_checkpoint(&f.weights, &f.spec, key)?;
            Ok((
                i,
                WrittenFile {
                    path: f.weights.clone(),
                    tensors: f.spec.tensors.len(),
                    parameters: f.spec.numel(),
                    bytes,
                },
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    written.sort_by_key(|(i, _)| *i);
    Ok(WrittenSet {
        dir: out.to_path_buf(),
        files: written.into_iter().map(|(_, f)| f).collect(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The real image-to-3D set at full size with random weights (~16 GB).
pub fn write_full_size(out: &Path, seed: u64) -> Result<WrittenSet> {
    write_model_set(out, seed, &ModelSetSize::full())
}
