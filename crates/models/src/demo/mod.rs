//! A deterministic tiny random-weight model set in the REAL layout (`pipeline.json`,
//! `ckpts/<name>.json` + `.safetensors`, the SS decoder under
//! `microsoft/TRELLIS-image-large/ckpts/`, DINOv3 under
//! `facebook/dinov3-vitl16-pretrain-lvd1689m/`), so the whole pipeline runs anywhere in seconds.
//! RMBG's ONNX model comes from another crate; `briaai/` is not written.
//!
//! Random weights alone make degenerate decisions (an empty or full structure, no or all
//! subdivisions, no faces), so, as the goldens do, biases are shifted after a calibration pass:
//! the SS decoder's output bias so that ~`SS_TARGET_POSITIVE` voxels of the 64³ grid are occupied,
//! each `to_subdiv` bias so that `SUBDIV_TARGET` of the children are kept, and the shape
//! decoder's flag biases so that `FLAG_TARGET` of the edges are flagged. The calibration pass is
//! the real pipeline (CPU, reference precision) on `demo_image` with the given seed, and the
//! shifts are taken mid-gap between sorted logits, so the files are the same on every machine.

mod weights;

use std::path::{Path, PathBuf};

use serde_json::json;
use t2_tensor::{Device, Tensor};

use crate::config::{Dinov3Config, FlowConfig, ModelFiles, ScVaeDecoderConfig, SsDecoderConfig};
use crate::decoders::{ScVaeDecoder, SparseStructureDecoder, Subdivide, occupied_coords};
use crate::error::{ModelError, Result};
use crate::nn::Precision;
use crate::pipeline::{FlowRes, LoadOptions, SamplerOverrides, Trellis2Pipeline};
use crate::random::spec;
use crate::rng::TorchGenerator;
use weights::Checkpoint;

/// Occupied voxels wanted on the SS decoder's 64³ grid (≤ that many tokens after pooling to 32³).
pub const SS_TARGET_POSITIVE: usize = 150;
/// Fraction of C2S children kept per level.
pub const SUBDIV_TARGET: f64 = 0.4;
/// Fraction of edge flags set.
pub const FLAG_TARGET: f64 = 0.35;

/// Real model paths (relative to the demo directory), as the HF `pipeline.json` names them.
pub const SS_FLOW: &str = "ckpts/ss_flow_img_dit_1_3B_64_bf16";
pub const SS_DECODER: &str = "microsoft/TRELLIS-image-large/ckpts/ss_dec_conv3d_16l8_fp16";
pub const SHAPE_FLOW_512: &str = "ckpts/slat_flow_img2shape_dit_1_3B_512_bf16";
pub const SHAPE_FLOW_1024: &str = "ckpts/slat_flow_img2shape_dit_1_3B_1024_bf16";
pub const TEX_FLOW_512: &str = "ckpts/slat_flow_imgshape2tex_dit_1_3B_512_bf16";
pub const TEX_FLOW_1024: &str = "ckpts/slat_flow_imgshape2tex_dit_1_3B_1024_bf16";
pub const SHAPE_DECODER: &str = "ckpts/shape_dec_next_dc_f16c32_fp16";
pub const TEX_DECODER: &str = "ckpts/tex_dec_next_dc_f16c32_fp16";
pub const DINOV3: &str = "facebook/dinov3-vitl16-pretrain-lvd1689m";

/// Width of the tiny networks (DINOv3 tokens, DiT channels).
const WIDTH: usize = 64;

/// What calibration chose (the tests assert the decisions are not degenerate).
#[derive(Clone, Debug)]
pub struct Calibration {
    pub ss_bias_shift: f32,
    /// Occupied voxels of the calibration structure, at 64³ and pooled to 32³.
    pub ss_positive: usize,
    pub ss_tokens: usize,
    /// Per level, the 8 child shifts.
    pub subdiv_bias_shifts: Vec<f32>,
    /// Kept-children fraction per level on the calibration latent.
    pub subdiv_fractions: Vec<f64>,
    pub flag_bias_shifts: Vec<f32>,
    pub flag_fraction: f64,
}

/// The written set.
#[derive(Clone, Debug)]
pub struct DemoModels {
    pub dir: PathBuf,
    pub calibration: Calibration,
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(|e| ModelError::io(p, e))?;
    }
    std::fs::write(path, bytes).map_err(|e| ModelError::io(path, e))
}

pub(crate) fn write_json(path: &Path, v: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(v).expect("serialisable");
    write(path, text.as_bytes())
}

/// A `{"name", "args"}` checkpoint at `rel`.
fn write_ckpt(
    dir: &Path,
    rel: &str,
    name: &str,
    args: &serde_json::Value,
    ck: &Checkpoint,
) -> Result<ModelFiles> {
    let files = ModelFiles {
        config: dir.join(format!("{rel}.json")),
        weights: dir.join(format!("{rel}.safetensors")),
    };
    write_json(&files.config, &json!({"name": name, "args": args}))?;
    write(&files.weights, &ck.to_bytes()?)?;
    Ok(files)
}

fn flow_args(resolution: usize, in_ch: usize, out_ch: usize) -> serde_json::Value {
    json!({
        "resolution": resolution, "in_channels": in_ch, "out_channels": out_ch,
        "model_channels": WIDTH, "cond_channels": WIDTH, "num_blocks": 2, "num_heads": 2,
        "mlp_ratio": 5.3334, "pe_mode": "rope", "rope_freq": [1.0, 10000.0],
        "dtype": "bfloat16", "share_mod": true, "initialization": "scaled",
        "qk_rms_norm": true, "qk_rms_norm_cross": true
    })
}

fn sc_vae_args(fdg: bool) -> serde_json::Value {
    let mut a = json!({
        "model_channels": [32, 16, 16, 8, 8], "latent_channels": 32,
        "num_blocks": [1, 1, 1, 1, 0],
        "block_type": vec!["SparseConvNeXtBlock3d"; 5],
        "up_block_type": vec!["SparseResBlockC2S3d"; 4],
        "block_args": [{}, {}, {}, {}, {}], "use_fp16": true
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

fn parse<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> T {
    serde_json::from_value(v.clone()).expect("demo config parses")
}

/// Per column of a row-major `[N, cols]` matrix, the mid-gap threshold keeping `target` of the
/// rows above it; also the overall fraction kept after the shifts.
fn per_column_shifts(v: &[f32], cols: usize, target: f64) -> Result<(Vec<f32>, f64)> {
    let rows = v.len() / cols;
    let k = ((rows as f64 * target).round() as usize).clamp(1, rows.saturating_sub(1).max(1));
    let mut shifts = Vec::with_capacity(cols);
    let mut kept = 0;
    for c in 0..cols {
        let col: Vec<f32> = v.iter().skip(c).step_by(cols).copied().collect();
        let t = threshold_for_top(&col, k)?;
        kept += col.iter().filter(|&&x| x - t > 0.0).count();
        shifts.push(t);
    }
    Ok((shifts, kept as f64 / v.len() as f64))
}

/// Mid-gap threshold that leaves the `k` largest of `v` above it.
fn threshold_for_top(v: &[f32], k: usize) -> Result<f32> {
    if v.len() < 2 || k == 0 || k >= v.len() {
        return Err(ModelError::invalid(format!(
            "calibrating the top {k} of {} values",
            v.len()
        )));
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    Ok(0.5 * (s[k - 1] + s[k]))
}

/// The demo pipeline.json (real format, real sampler values and normalisation).
pub(crate) fn pipeline_json() -> serde_json::Value {
    let sampler = |rr: f64, gs: f64, gi: [f64; 2], r: f64| {
        json!({"name": "FlowEulerGuidanceIntervalSampler", "args": {"sigma_min": 1e-5},
               "params": {"steps": 12, "guidance_strength": gs, "guidance_rescale": rr,
                          "guidance_interval": gi, "rescale_t": r}})
    };
    json!({
        "name": "Trellis2ImageTo3DPipeline",
        "args": {
            "models": {
                "sparse_structure_flow_model": SS_FLOW,
                "sparse_structure_decoder": SS_DECODER,
                "shape_slat_flow_model_512": SHAPE_FLOW_512,
                "shape_slat_flow_model_1024": SHAPE_FLOW_1024,
                "shape_slat_decoder": SHAPE_DECODER,
                "tex_slat_flow_model_512": TEX_FLOW_512,
                "tex_slat_flow_model_1024": TEX_FLOW_1024,
                "tex_slat_decoder": TEX_DECODER
            },
            "sparse_structure_sampler": sampler(0.7, 7.5, [0.6, 1.0], 5.0),
            "shape_slat_sampler": sampler(0.5, 7.5, [0.6, 1.0], 3.0),
            "tex_slat_sampler": sampler(0.0, 1.0, [0.6, 0.9], 3.0),
            "shape_slat_normalization": {"mean": SHAPE_MEAN, "std": SHAPE_STD},
            "tex_slat_normalization": {"mean": TEX_MEAN, "std": TEX_STD},
            "image_cond_model": {"name": "DinoV3FeatureExtractor", "args": {"model_name": DINOV3}},
            "rembg_model": {"name": "BiRefNet", "args": {"model_name": "briaai/RMBG-2.0"}},
            "low_vram": true,
            "default_pipeline_type": "1024_cascade"
        }
    })
}

/// Writes the demo set to `out` (created if needed) and returns its calibration.
pub fn write_demo_models(out: &Path, seed: u64) -> Result<DemoModels> {
    std::fs::create_dir_all(out).map_err(|e| ModelError::io(out, e))?;
    let mut g = TorchGenerator::manual_seed(seed);
    write_json(&out.join("pipeline.json"), &pipeline_json())?;

    let dino_cfg = json!({
        "architectures": ["DINOv3ViTModel"], "model_type": "dinov3_vit",
        "hidden_size": WIDTH, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 4 * WIDTH, "hidden_act": "gelu", "layer_norm_eps": 1e-5,
        "patch_size": 16, "num_channels": 3, "num_register_tokens": 4, "rope_theta": 100.0,
        "query_bias": true, "key_bias": false, "value_bias": true, "proj_bias": true,
        "mlp_bias": true, "use_gated_mlp": false, "layerscale_value": 1.0,
        "image_size": 224, "dtype": "float32"
    });
    let dcfg: Dinov3Config = parse(&dino_cfg);
    write_json(&out.join(DINOV3).join("config.json"), &dino_cfg)?;
    write(
        &out.join(DINOV3).join("model.safetensors"),
        &Checkpoint::from_spec(&spec::dinov3(&dcfg), &mut g).to_bytes()?,
    )?;

    for (rel, res, i, o, name) in [
        (SS_FLOW, 8, 8, 8, "SparseStructureFlowModel"),
        (SHAPE_FLOW_512, 32, 32, 32, "SLatFlowModel"),
        (SHAPE_FLOW_1024, 64, 32, 32, "SLatFlowModel"),
        (TEX_FLOW_512, 32, 64, 32, "SLatFlowModel"),
        (TEX_FLOW_1024, 64, 64, 32, "SLatFlowModel"),
    ] {
        let args = flow_args(res, i, o);
        let cfg: FlowConfig = parse(&args);
        let ck = Checkpoint::from_spec(&spec::flow(&cfg), &mut g);
        write_ckpt(out, rel, name, &args, &ck)?;
    }

    // SS decoder: 8³ latent, three upsamplings → 64³ logits (the real one: 16³, two).
    let ss_args = json!({"out_channels": 1, "latent_channels": 8, "num_res_blocks": 1,
        "channels": [32, 16, 8, 8], "num_res_blocks_middle": 1, "norm_type": "layer",
        "use_fp16": true});
    let ss_cfg: SsDecoderConfig = parse(&ss_args);
    let mut ss_ck = Checkpoint::from_spec(&spec::ss_decoder(&ss_cfg), &mut g);
    let shape_args = sc_vae_args(true);
    let shape_spec = spec::sc_vae(&parse::<ScVaeDecoderConfig>(&shape_args), 7);
    let mut shape_ck = Checkpoint::from_spec(&shape_spec, &mut g);
    let tex_args = sc_vae_args(false);
    let tex_spec = spec::sc_vae(&parse::<ScVaeDecoderConfig>(&tex_args), 6);
    let tex_ck = Checkpoint::from_spec(&tex_spec, &mut g);
    write_ckpt(out, TEX_DECODER, ScVaeDecoder::UNET, &tex_args, &tex_ck)?;

    // Calibration (CPU, reference precision) on a real pipeline pass over `demo_image`: the SS
    // decoder's output bias from the sampled SS latent, then the shape decoder's biases from the
    // sampled shape latent, level by level (each to_subdiv column and each flag axis alone, so
    // that no child index or axis is always or never taken).
    write_ckpt(
        out,
        SS_DECODER,
        SparseStructureDecoder::CLASS,
        &ss_args,
        &ss_ck,
    )?;
    write_ckpt(
        out,
        SHAPE_DECODER,
        ScVaeDecoder::FDG,
        &shape_args,
        &shape_ck,
    )?;
    let cpu = Device::Cpu;
    let pipe = Trellis2Pipeline::load(
        out,
        &LoadOptions {
            models: Some(vec![
                "sparse_structure_flow_model".into(),
                "sparse_structure_decoder".into(),
                "shape_slat_flow_model_512".into(),
            ]),
            ..LoadOptions::all(Precision::Reference, cpu.clone())
        },
    )?;
    let image = pipe.preprocess_image(&demo_image(64))?;
    let cond = pipe.get_cond(&image, 512)?;
    let mut rng = TorchGenerator::manual_seed(seed);
    let defaults = SamplerOverrides::default();
    let z = pipe.sample_ss_latent(&cond, &mut rng, &defaults, &mut |_, _, _| Ok(()))?;
    let logits = pipe.ss_logits(&z)?;
    let dim = logits.dim(2);
    let logits = logits.to_vec_f32()?;
    let ss_shift = threshold_for_top(&logits, SS_TARGET_POSITIVE)?;
    ss_ck.get_mut("out_layer.2.bias")?.data[0] -= ss_shift;
    write_ckpt(
        out,
        SS_DECODER,
        SparseStructureDecoder::CLASS,
        &ss_args,
        &ss_ck,
    )?;
    let shifted: Vec<f32> = logits.iter().map(|v| v - ss_shift).collect();
    let coords = occupied_coords(&shifted, dim, 32)?;
    let shape = pipe.sample_shape_slat(
        &cond,
        FlowRes::R512,
        &coords,
        &mut rng,
        &defaults,
        &mut |_, _, _| Ok(()),
    )?;
    let feats = Tensor::from_slice(&shape.feats, &[shape.len(), shape.channels], &cpu)?;

    let mut sub_shifts = Vec::new();
    let mut sub_fracs = Vec::new();
    for level in 0..4 {
        let files = write_ckpt(
            out,
            SHAPE_DECODER,
            ScVaeDecoder::FDG,
            &shape_args,
            &shape_ck,
        )?;
        let d = load_fdg(&files)?.run(
            coords.clone(),
            &feats,
            Subdivide::Predict,
            Some(level + 1),
            &mut None,
        )?;
        let (shifts, frac) = per_column_shifts(&d.subs[level].logits, 8, SUBDIV_TARGET)?;
        let bias = shape_ck.get_mut(&format!("blocks.{level}.1.to_subdiv.bias"))?;
        bias.data.iter_mut().zip(&shifts).for_each(|(b, t)| *b -= t);
        sub_shifts.extend(shifts);
        sub_fracs.push(frac);
    }
    let files = write_ckpt(
        out,
        SHAPE_DECODER,
        ScVaeDecoder::FDG,
        &shape_args,
        &shape_ck,
    )?;
    let d = load_fdg(&files)?.run(coords.clone(), &feats, Subdivide::Predict, None, &mut None)?;
    let flags: Vec<f32> = d
        .feats
        .to_vec_f32()?
        .chunks_exact(7)
        .flat_map(|r| r[3..6].to_vec())
        .collect();
    let (flag_shifts, flag_fraction) = per_column_shifts(&flags, 3, FLAG_TARGET)?;
    let ob = shape_ck.get_mut("output_layer.bias")?;
    for (c, t) in flag_shifts.iter().enumerate() {
        ob.data[3 + c] -= t;
    }
    write_ckpt(
        out,
        SHAPE_DECODER,
        ScVaeDecoder::FDG,
        &shape_args,
        &shape_ck,
    )?;

    Ok(DemoModels {
        dir: out.to_path_buf(),
        calibration: Calibration {
            ss_bias_shift: ss_shift,
            ss_positive: shifted.iter().filter(|&&v| v > 0.0).count(),
            ss_tokens: coords.len(),
            subdiv_bias_shifts: sub_shifts,
            subdiv_fractions: sub_fracs,
            flag_bias_shifts: flag_shifts,
            flag_fraction,
        },
    })
}

fn load_fdg(files: &ModelFiles) -> Result<ScVaeDecoder> {
    Ok(ScVaeDecoder::load(files, Precision::Reference, &Device::Cpu)?.1)
}

/// A test image for the demo set: an opaque disk with a colour gradient on a transparent
/// background (so no background removal is needed).
pub fn demo_image(size: u32) -> image::RgbaImage {
    let c = size as f32 / 2.0;
    image::RgbaImage::from_fn(size, size, |x, y| {
        let (dx, dy) = (x as f32 + 0.5 - c, y as f32 + 0.5 - c);
        let inside = (dx * dx + dy * dy).sqrt() < 0.4 * size as f32;
        let r = (255.0 * x as f32 / size as f32) as u8;
        let g = (255.0 * y as f32 / size as f32) as u8;
        [r, g, 128, if inside { 255 } else { 0 }].into()
    })
}

/// Appendix A normalisation vectors (the real `pipeline.json`'s, digit for digit).
#[allow(clippy::excessive_precision)]
pub const SHAPE_MEAN: [f32; 32] = [
    0.781296, 0.018091, -0.495192, -0.558457, 1.060530, 0.093252, 1.518149, -0.933218, -0.732996,
    2.604095, -0.118341, -2.143904, 0.495076, -2.179512, -2.130751, -0.996944, 0.261421, -2.217463,
    1.260067, -0.150213, 3.790713, 1.481266, -1.046058, -1.523667, -0.059621, 2.220780, 1.621212,
    0.877230, 0.567247, -3.175944, -3.186688, 1.578665,
];
#[allow(clippy::excessive_precision)]
pub const SHAPE_STD: [f32; 32] = [
    5.972266, 4.706852, 5.445010, 5.209927, 5.320220, 4.547237, 5.020802, 5.444004, 5.226681,
    5.683095, 4.831436, 5.286469, 5.652043, 5.367606, 5.525084, 4.730578, 4.805265, 5.124013,
    5.530808, 5.619001, 5.103930, 5.417670, 5.269677, 5.547194, 5.634698, 5.235274, 6.110351,
    5.511298, 6.237273, 4.879207, 5.347008, 5.405691,
];
#[allow(clippy::excessive_precision)]
pub const TEX_MEAN: [f32; 32] = [
    3.501659, 2.212398, 2.226094, 0.251093, -0.026248, -0.687364, 0.439898, -0.928075, 0.029398,
    -0.339596, -0.869527, 1.038479, -0.972385, 0.126042, -1.129303, 0.455149, -1.209521, 2.069067,
    0.544735, 2.569128, -0.323407, 2.293000, -1.925608, -1.217717, 1.213905, 0.971588, -0.023631,
    0.106750, 2.021786, 0.250524, -0.662387, -0.768862,
];
#[allow(clippy::excessive_precision)]
pub const TEX_STD: [f32; 32] = [
    2.665652, 2.743913, 2.765121, 2.595319, 3.037293, 2.291316, 2.144656, 2.911822, 2.969419,
    2.501689, 2.154811, 3.163343, 2.621215, 2.381943, 3.186697, 3.021588, 2.295916, 3.234985,
    3.233086, 2.260140, 2.874801, 2.810596, 3.292720, 2.674999, 2.680878, 2.372054, 2.451546,
    2.353556, 2.995195, 2.379849, 2.786195, 2.775190,
];
