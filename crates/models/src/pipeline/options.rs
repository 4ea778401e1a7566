//! The pipeline's value types: pipeline types, stages and progress, sampler overrides, latents,
//! run and load options.

use std::str::FromStr;

use t2_mesh::MeshWithVoxel;
use t2_tensor::{Device, Tensor};

use crate::config::SamplerParams;
use crate::decoders::Subdivision;
use crate::error::{ModelError, Result};
use crate::nn::Precision;
use crate::rng::NormalKernel;

use super::MAX_NUM_TOKENS;

/// `run(pipeline_type=...)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipelineType {
    P512,
    P1024,
    Cascade1024,
    Cascade1536,
}

impl FromStr for PipelineType {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "512" => PipelineType::P512,
            "1024" => PipelineType::P1024,
            "1024_cascade" => PipelineType::Cascade1024,
            "1536_cascade" => PipelineType::Cascade1536,
            _ => {
                return Err(ModelError::invalid(format!(
                    "pipeline type `{s}` (want 512, 1024, 1024_cascade or 1536_cascade)"
                )));
            }
        })
    }
}

impl PipelineType {
    pub fn as_str(self) -> &'static str {
        match self {
            PipelineType::P512 => "512",
            PipelineType::P1024 => "1024",
            PipelineType::Cascade1024 => "1024_cascade",
            PipelineType::Cascade1536 => "1536_cascade",
        }
    }
    /// The sparse-structure grid the SS stage pools to.
    pub fn ss_resolution(self) -> usize {
        if self == PipelineType::P1024 { 64 } else { 32 }
    }
    /// Whether the 1024-px condition is needed (all but `512`).
    pub fn needs_cond_1024(self) -> bool {
        self != PipelineType::P512
    }
}

/// Which stage a progress report belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    SparseStructure,
    /// The cascade's low-resolution shape pass.
    ShapeSlatLowRes,
    ShapeSlat,
    TexSlat,
}

/// Progress `(stage, steps done, steps total)`; returning an error (e.g. `Cancelled`) stops the
/// run between sampler steps.
pub type Progress<'a> = &'a mut dyn FnMut(Stage, usize, usize) -> Result<()>;

/// Per-stage sampler overrides (the reference's `*_sampler_params` dicts).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SamplerOverrides {
    pub steps: Option<usize>,
    pub guidance_strength: Option<f64>,
    pub guidance_rescale: Option<f64>,
    pub guidance_interval: Option<[f64; 2]>,
    pub rescale_t: Option<f64>,
}

impl SamplerOverrides {
    pub fn apply(&self, base: &SamplerParams) -> Result<SamplerParams> {
        let p = SamplerParams {
            steps: self.steps.unwrap_or(base.steps),
            guidance_strength: self.guidance_strength.unwrap_or(base.guidance_strength),
            guidance_rescale: self.guidance_rescale.unwrap_or(base.guidance_rescale),
            guidance_interval: self.guidance_interval.unwrap_or(base.guidance_interval),
            rescale_t: self.rescale_t.unwrap_or(base.rescale_t),
        };
        if p.steps == 0
            || p.rescale_t.is_nan()
            || p.rescale_t <= 0.0
            || !p.guidance_strength.is_finite()
        {
            return Err(ModelError::invalid(format!("sampler parameters {p:?}")));
        }
        Ok(p)
    }
}

/// A sparse latent: voxels `(0, x, y, z)` (sorted) and `[N, channels]` features, de-normalised.
#[derive(Clone, Debug, PartialEq)]
pub struct SparseLatent {
    pub coords: Vec<[i32; 4]>,
    pub feats: Vec<f32>,
    pub channels: usize,
}

impl SparseLatent {
    pub fn len(&self) -> usize {
        self.coords.len()
    }
    pub fn is_empty(&self) -> bool {
        self.coords.is_empty()
    }
    pub(crate) fn tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_slice(
            &self.feats,
            &[self.len(), self.channels],
            device,
        )?)
    }
}

/// Output of the sparse-structure stage.
#[derive(Clone, Debug)]
pub struct SparseStructure {
    /// The sampler's `z_s`, `[1, C, R, R, R]` flat.
    pub latent: Vec<f32>,
    /// Occupied voxels on the requested grid (`logits > 0`, pooled, argwhere).
    pub coords: Vec<[i32; 4]>,
}

/// What `run` returns: the asset and the latents (the API's `state`).
pub struct RunOutput {
    pub mesh: MeshWithVoxel,
    pub shape_slat: SparseLatent,
    pub tex_slat: SparseLatent,
    pub resolution: u32,
    pub ss_coords: Vec<[i32; 4]>,
    /// The shape decoder's subdivision logits per level (`subs`).
    pub subs: Vec<Subdivision>,
}

/// The run-level options of `Trellis2ImageTo3DPipeline.run`.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub seed: u64,
    pub pipeline_type: Option<PipelineType>,
    pub sparse_structure: SamplerOverrides,
    pub shape_slat: SamplerOverrides,
    pub tex_slat: SamplerOverrides,
    pub max_num_tokens: usize,
    /// Which build of PyTorch's Box–Muller to reproduce (AVX2: the reference's GPU hosts).
    pub noise_kernel: NormalKernel,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            seed: 42,
            pipeline_type: None,
            sparse_structure: SamplerOverrides::default(),
            shape_slat: SamplerOverrides::default(),
            tex_slat: SamplerOverrides::default(),
            max_num_tokens: MAX_NUM_TOKENS,
            noise_kernel: NormalKernel::Avx2,
        }
    }
}

/// Which models to load (services load only what their stages use).
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub precision: Precision,
    pub device: Device,
    /// `pipeline.json` model keys to load; `None` loads every listed model.
    pub models: Option<Vec<String>>,
    pub image_cond: bool,
    /// All networks resident, or one at a time (low-VRAM mode).
    pub residency: super::Residency,
}

impl LoadOptions {
    pub fn all(precision: Precision, device: Device) -> LoadOptions {
        LoadOptions {
            precision,
            device,
            models: None,
            image_cond: true,
            residency: super::Residency::AllResident,
        }
    }
}

/// Which resolution's SLat flow a stage uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowRes {
    R512,
    R1024,
}
