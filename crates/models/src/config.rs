//! The reference's own config formats: `pipeline.json`, the `{"name", "args"}` model configs
//! (`ckpts/<name>.json`, or `config.json` in a golden set dir) and HF's DINOv3 `config.json`.
//!
//! Model paths in `pipeline.json` resolve like the reference's `from_pretrained`, relative to the
//! pipeline directory: `P.json` + `P.safetensors` (real checkpoints), else `P/config.json` +
//! `P/model.safetensors` (golden set dirs and HF repos such as
//! `facebook/dinov3-vitl16-pretrain-lvd1689m`). The reference's `<org>/<repo>/<subpath>` fallback
//! is the same lookup under the model directory, e.g. `microsoft/TRELLIS-image-large/ckpts/...`.
//! Defaults below are the reference constructors' defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{ModelError, Result};

/// Where a model's config and weights live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelFiles {
    pub config: PathBuf,
    pub weights: PathBuf,
}

impl ModelFiles {
    /// Resolves model path `rel` against `base` (see the module docs).
    pub fn resolve(base: &Path, rel: &str) -> Result<ModelFiles> {
        let p = base.join(rel);
        let flat = ModelFiles {
            config: PathBuf::from(format!("{}.json", p.display())),
            weights: PathBuf::from(format!("{}.safetensors", p.display())),
        };
        if flat.config.is_file() && flat.weights.is_file() {
            return Ok(flat);
        }
        let dir = ModelFiles {
            config: p.join("config.json"),
            weights: p.join("model.safetensors"),
        };
        if dir.config.is_file() && dir.weights.is_file() {
            return Ok(dir);
        }
        Err(ModelError::config(
            &p,
            format!(
                "model not found: neither {} + {} nor {} + {} exist",
                flat.config.display(),
                flat.weights.display(),
                dir.config.display(),
                dir.weights.display()
            ),
        ))
    }
}

pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| ModelError::config(path, e.to_string()))
}

/// A reference model config: `{"name": <class>, "args": {...}}`.
#[derive(Clone, Debug, Deserialize)]
pub struct CheckpointConfig {
    pub name: String,
    pub args: serde_json::Value,
}

impl CheckpointConfig {
    pub fn load(path: &Path) -> Result<CheckpointConfig> {
        read_json(path)
    }

    /// Parses `args` as `T`, after checking the class name.
    pub fn args_as<T: DeserializeOwned>(&self, path: &Path, expected: &[&str]) -> Result<T> {
        if !expected.contains(&self.name.as_str()) {
            return Err(ModelError::config(
                path,
                format!("model class `{}`, expected one of {expected:?}", self.name),
            ));
        }
        serde_json::from_value(self.args.clone())
            .map_err(|e| ModelError::config(path, format!("args of {}: {e}", self.name)))
    }
}

/// `SparseStructureFlowModel` / `SLatFlowModel` constructor args.
#[derive(Clone, Debug, Deserialize)]
pub struct FlowConfig {
    pub resolution: usize,
    pub in_channels: usize,
    pub model_channels: usize,
    pub cond_channels: usize,
    pub out_channels: usize,
    pub num_blocks: usize,
    #[serde(default)]
    pub num_heads: Option<usize>,
    #[serde(default = "default_head_channels")]
    pub num_head_channels: usize,
    #[serde(default = "default_mlp_ratio")]
    pub mlp_ratio: f64,
    #[serde(default = "default_pe_mode")]
    pub pe_mode: String,
    #[serde(default = "default_rope_freq")]
    pub rope_freq: [f64; 2],
    #[serde(default = "default_dtype")]
    pub dtype: String,
    #[serde(default)]
    pub share_mod: bool,
    #[serde(default)]
    pub qk_rms_norm: bool,
    #[serde(default)]
    pub qk_rms_norm_cross: bool,
}

fn default_head_channels() -> usize {
    64
}
fn default_mlp_ratio() -> f64 {
    4.0
}
fn default_pe_mode() -> String {
    "ape".into()
}
fn default_rope_freq() -> [f64; 2] {
    [1.0, 10000.0]
}
fn default_dtype() -> String {
    "float32".into()
}

impl FlowConfig {
    pub fn num_heads(&self) -> usize {
        self.num_heads
            .unwrap_or(self.model_channels / self.num_head_channels.max(1))
    }
    /// `int(channels * mlp_ratio)` as Python computes it (f64 product, truncation).
    pub fn mlp_hidden(&self) -> usize {
        (self.model_channels as f64 * self.mlp_ratio) as usize
    }
}

/// `SparseStructureDecoder` constructor args (TRELLIS v1).
#[derive(Clone, Debug, Deserialize)]
pub struct SsDecoderConfig {
    pub out_channels: usize,
    pub latent_channels: usize,
    pub num_res_blocks: usize,
    pub channels: Vec<usize>,
    #[serde(default = "default_middle_blocks")]
    pub num_res_blocks_middle: usize,
    #[serde(default = "default_norm_type")]
    pub norm_type: String,
    #[serde(default)]
    pub use_fp16: bool,
}

fn default_middle_blocks() -> usize {
    2
}
fn default_norm_type() -> String {
    "layer".into()
}

/// `SparseUnetVaeDecoder` / `FlexiDualGridVaeDecoder` constructor args.
#[derive(Clone, Debug, Deserialize)]
pub struct ScVaeDecoderConfig {
    /// Absent for `FlexiDualGridVaeDecoder`, which fixes it to 7.
    #[serde(default)]
    pub out_channels: Option<usize>,
    /// `FlexiDualGridVaeDecoder` only; overwritten by `set_resolution` in the pipeline.
    #[serde(default)]
    pub resolution: Option<usize>,
    pub model_channels: Vec<usize>,
    pub latent_channels: usize,
    pub num_blocks: Vec<usize>,
    pub block_type: Vec<String>,
    pub up_block_type: Vec<String>,
    #[serde(default)]
    pub block_args: Vec<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub use_fp16: bool,
    #[serde(default = "default_true")]
    pub pred_subdiv: bool,
    #[serde(default = "default_voxel_margin")]
    pub voxel_margin: f64,
}

fn default_true() -> bool {
    true
}
fn default_voxel_margin() -> f64 {
    0.5
}

/// HF `DINOv3ViTConfig` (the fields the model uses; HF defaults).
#[derive(Clone, Debug, Deserialize)]
pub struct Dinov3Config {
    #[serde(default = "d_hidden")]
    pub hidden_size: usize,
    #[serde(default = "d_layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "d_heads")]
    pub num_attention_heads: usize,
    #[serde(default = "d_inter")]
    pub intermediate_size: usize,
    #[serde(default = "d_act")]
    pub hidden_act: String,
    #[serde(default = "d_ln_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "d_patch")]
    pub patch_size: usize,
    #[serde(default = "d_channels")]
    pub num_channels: usize,
    #[serde(default = "d_registers")]
    pub num_register_tokens: usize,
    #[serde(default = "d_rope_theta")]
    pub rope_theta: f64,
    #[serde(default = "default_true")]
    pub query_bias: bool,
    #[serde(default)]
    pub key_bias: bool,
    #[serde(default = "default_true")]
    pub value_bias: bool,
    #[serde(default = "default_true")]
    pub proj_bias: bool,
    #[serde(default = "default_true")]
    pub mlp_bias: bool,
    #[serde(default)]
    pub use_gated_mlp: bool,
}

fn d_hidden() -> usize {
    384
}
fn d_layers() -> usize {
    12
}
fn d_heads() -> usize {
    6
}
fn d_inter() -> usize {
    1536
}
fn d_act() -> String {
    "gelu".into()
}
fn d_ln_eps() -> f64 {
    1e-5
}
fn d_patch() -> usize {
    16
}
fn d_channels() -> usize {
    3
}
fn d_registers() -> usize {
    0
}
fn d_rope_theta() -> f64 {
    100.0
}

/// A sampler block of `pipeline.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct SamplerConfig {
    pub name: String,
    pub args: SamplerArgs,
    pub params: SamplerParams,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SamplerArgs {
    pub sigma_min: f64,
}

/// `FlowEulerGuidanceIntervalSampler.sample` keyword parameters.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SamplerParams {
    #[serde(default = "default_steps")]
    pub steps: usize,
    #[serde(default = "default_gs")]
    pub guidance_strength: f64,
    #[serde(default)]
    pub guidance_rescale: f64,
    #[serde(default = "default_interval")]
    pub guidance_interval: [f64; 2],
    #[serde(default = "default_rescale_t")]
    pub rescale_t: f64,
}

fn default_steps() -> usize {
    50
}
fn default_gs() -> f64 {
    3.0
}
fn default_interval() -> [f64; 2] {
    [0.0, 1.0]
}
fn default_rescale_t() -> f64 {
    1.0
}

/// Per-channel latent normalisation (`x·std + mean` after sampling).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct NamedModel {
    pub name: String,
    pub args: NamedModelArgs,
}

#[derive(Clone, Debug, Deserialize)]
pub struct NamedModelArgs {
    pub model_name: String,
}

/// The `args` of `pipeline.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct PipelineArgs {
    pub models: BTreeMap<String, String>,
    pub sparse_structure_sampler: SamplerConfig,
    pub shape_slat_sampler: SamplerConfig,
    pub tex_slat_sampler: SamplerConfig,
    pub shape_slat_normalization: Normalization,
    pub tex_slat_normalization: Normalization,
    #[serde(default)]
    pub image_cond_model: Option<NamedModel>,
    #[serde(default)]
    pub rembg_model: Option<NamedModel>,
    #[serde(default = "default_true")]
    pub low_vram: bool,
    #[serde(default = "default_pipeline_type")]
    pub default_pipeline_type: String,
}

fn default_pipeline_type() -> String {
    "1024_cascade".into()
}

#[derive(Clone, Debug, Deserialize)]
struct PipelineFile {
    name: String,
    args: PipelineArgs,
}

/// A parsed `pipeline.json` plus the directory its model paths are relative to.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub dir: PathBuf,
    pub args: PipelineArgs,
}

pub const SAMPLER_NAME: &str = "FlowEulerGuidanceIntervalSampler";

impl PipelineConfig {
    /// Reads `<dir>/pipeline.json` (or the given file) and checks the parts the port relies on.
    pub fn load(path: &Path) -> Result<PipelineConfig> {
        let file = if path.is_dir() {
            path.join("pipeline.json")
        } else {
            path.to_path_buf()
        };
        let parsed: PipelineFile = read_json(&file)?;
        if parsed.name != "Trellis2ImageTo3DPipeline" {
            return Err(ModelError::config(
                &file,
                format!(
                    "pipeline class `{}`, expected Trellis2ImageTo3DPipeline",
                    parsed.name
                ),
            ));
        }
        let args = parsed.args;
        let mut problems = Vec::new();
        for (what, s) in [
            ("sparse_structure_sampler", &args.sparse_structure_sampler),
            ("shape_slat_sampler", &args.shape_slat_sampler),
            ("tex_slat_sampler", &args.tex_slat_sampler),
        ] {
            if s.name != SAMPLER_NAME {
                problems.push(format!(
                    "{what}: sampler `{}` is not {SAMPLER_NAME}",
                    s.name
                ));
            }
            if s.params.steps == 0 {
                problems.push(format!("{what}: steps must be > 0"));
            }
        }
        for (what, n) in [
            ("shape_slat_normalization", &args.shape_slat_normalization),
            ("tex_slat_normalization", &args.tex_slat_normalization),
        ] {
            if n.mean.len() != n.std.len() || n.mean.is_empty() {
                problems.push(format!(
                    "{what}: mean has {} values and std {}",
                    n.mean.len(),
                    n.std.len()
                ));
            }
        }
        if !problems.is_empty() {
            return Err(ModelError::config(&file, problems.join("; ")));
        }
        let dir = file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(PipelineConfig { dir, args })
    }

    /// Files of model `key` (e.g. `sparse_structure_flow_model`), or None when not listed.
    pub fn model_files(&self, key: &str) -> Result<Option<ModelFiles>> {
        match self.args.models.get(key) {
            None => Ok(None),
            Some(rel) => ModelFiles::resolve(&self.dir, rel).map(Some),
        }
    }

    /// The DINOv3 directory (`image_cond_model.args.model_name`).
    pub fn image_cond_files(&self) -> Result<ModelFiles> {
        let m = self.args.image_cond_model.as_ref().ok_or_else(|| {
            ModelError::config(&self.dir.join("pipeline.json"), "no image_cond_model")
        })?;
        if m.name != "DinoV3FeatureExtractor" {
            return Err(ModelError::Unsupported(format!(
                "image_cond_model `{}` (only DinoV3FeatureExtractor)",
                m.name
            )));
        }
        ModelFiles::resolve(&self.dir, &m.args.model_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_defaults_follow_the_reference_constructor() {
        let v = serde_json::json!({"resolution": 16, "in_channels": 8, "model_channels": 1536,
            "cond_channels": 1024, "out_channels": 8, "num_blocks": 30, "num_heads": 12,
            "mlp_ratio": 5.3334, "pe_mode": "rope", "share_mod": true});
        let c: FlowConfig = serde_json::from_value(v).unwrap();
        assert_eq!(c.mlp_hidden(), 8192);
        assert_eq!(c.num_heads(), 12);
        assert_eq!(c.rope_freq, [1.0, 10000.0]);
        assert_eq!(c.dtype, "float32");
        let tiny = FlowConfig {
            model_channels: 64,
            ..c
        };
        assert_eq!(tiny.mlp_hidden(), 341);
    }
}
