//! The real flow sampler: the stages of `Trellis2ImageTo3DPipeline.run` from the conditioning
//! tokens to the latents (`t2-models`), without decoding (the mesh service owns that):
//! `manual_seed(seed)` → sparse structure (flow + SS decoder) → shape latent (single stage, or
//! the cascade with the shape decoder's `upsample` and the token back-off) → texture latent.
//!
//! Progress: every sampler step is reported as `(stage, step, total)` with the stages
//! `sparse_structure`, `shape_slat_lr` (the cascade's low-resolution pass), `shape_slat` and
//! `tex_slat`. The same callback checks the cancel token, so a caller that goes away stops the
//! run at the next sampler step.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use t2_models::config::{CheckpointConfig, SamplerParams as ConfigParams};
use t2_models::nn::Precision;
use t2_models::pipeline::{
    FlowRes, LoadOptions, PipelineType, Residency, SamplerOverrides, SparseLatent, Stage,
    Trellis2Pipeline,
};
use t2_models::rng::TorchGenerator;
use t2_proto::common::v1::{Latents, ServiceInfo};
use t2_proto::flow::v1::{GenerateRequest, PipelineType as WirePipeline, SamplerParams};
use t2_proto::{ErrorCode, ProgressSink, ServiceError};
use t2_tensor::{Device, Tensor};

use crate::shared::lane::{Cancel, Lane, service_info};
use crate::shared::loading::Loaded;
use crate::shared::model_dir;
use crate::shared::model_error::model_error;
use crate::shared::warm_up::warm_up;
use crate::{FlowSampler, SERVICE, ShapeLatentsSink};

/// The `pipeline.json` models the flow stages use (the shape decoder for the cascade's
/// `upsample`).
pub const FLOW_MODELS: [&str; 7] = [
    "sparse_structure_flow_model",
    "sparse_structure_decoder",
    "shape_slat_flow_model_512",
    "shape_slat_flow_model_1024",
    "tex_slat_flow_model_512",
    "tex_slat_flow_model_1024",
    "shape_slat_decoder",
];

/// Loaded flow models.
pub struct FlowModels {
    pipe: Arc<Trellis2Pipeline>,
    model_id: String,
    /// Width of the conditioning tokens the DiTs cross-attend to.
    cond_channels: usize,
    dir: PathBuf,
}

impl FlowModels {
    /// Loads the flow stages' models from `dir` on `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, String> {
        let opts = LoadOptions {
            precision: Precision::Reference,
            device: device.clone(),
            models: Some(FLOW_MODELS.iter().map(|s| s.to_string()).collect()),
            image_cond: false,
            // `TRELLIS2_LOW_VRAM=1`: one network on the GPU at a time.
            residency: Residency::from_env().map_err(|e| e.to_string())?,
        };
        let pipe = Trellis2Pipeline::load(dir, &opts).map_err(|e| e.to_string())?;
        if let Device::Cuda(d) = device {
            d.warm_up().map_err(|e| e.to_string())?;
        }
        Self::from_pipeline(Arc::new(pipe), dir)
    }

    /// Wraps an already loaded pipeline (in-process mode shares one between services).
    pub fn from_pipeline(pipe: Arc<Trellis2Pipeline>, dir: &Path) -> Result<Self, String> {
        let model_id = model_dir::model_id(dir).map_err(|e| e.to_string())?;
        let files = pipe
            .config
            .model_files("sparse_structure_flow_model")
            .map_err(|e| e.to_string())?
            .ok_or("pipeline.json lists no sparse_structure_flow_model")?;
        let ckpt = CheckpointConfig::load(&files.config).map_err(|e| e.to_string())?;
        let cond_channels = ckpt
            .args
            .get("cond_channels")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| format!("{}: no cond_channels", files.config.display()))?
            as usize;
        Ok(Self {
            pipe,
            model_id,
            cond_channels,
            dir: dir.to_path_buf(),
        })
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }
}

/// Flow sampling over loaded (or loading) models.
pub struct FlowService {
    models: Arc<Loaded<FlowModels>>,
    lane: Lane,
    device: Device,
}

impl FlowService {
    /// Starts loading the flow models of `dir` on `device`; NOT_SERVING until loaded.
    pub fn start(dir: &Path, device: Device) -> Arc<Self> {
        let (m, d) = (dir.to_path_buf(), device.clone());
        Arc::new(Self {
            models: Loaded::spawn("flow", move || {
                let models = FlowModels::load(&m, &d)?;
                warm_up("flow", &models.pipe);
                Ok(models)
            }),
            lane: Lane::for_device(SERVICE, &device),
            device,
        })
    }

    /// A service over models loaded by the caller.
    pub fn with_models(models: FlowModels, load_time_seconds: f64) -> Arc<Self> {
        let device = models.pipe.device().clone();
        Arc::new(Self {
            models: Loaded::ready(models, load_time_seconds),
            lane: Lane::for_device(SERVICE, &device),
            device,
        })
    }

    async fn run(
        &self,
        request: GenerateRequest,
        progress: ProgressSink,
        shape: Option<ShapeLatentsSink>,
    ) -> Result<Latents, ServiceError> {
        crate::validate_request(&request)?;
        let models = self.models.get()?;
        let inputs = Inputs::new(&request, &models)?;
        self.lane
            .run(move |cancel| sample(&models, inputs, cancel, &progress, shape))
            .await
    }

    /// Sampling runs executing now (a cancelled run counts until it has stopped).
    pub fn running(&self) -> usize {
        self.lane.running()
    }
}

#[async_trait::async_trait]
impl FlowSampler for FlowService {
    async fn info(&self) -> ServiceInfo {
        let models = match self.models.get() {
            Ok(m) => vec![format!("{} ({})", m.model_id, m.dir.display())],
            Err(_) => vec![],
        };
        service_info(SERVICE, self.models.status(), models, &self.device)
    }

    async fn generate(
        &self,
        request: GenerateRequest,
        progress: ProgressSink,
    ) -> Result<Latents, ServiceError> {
        self.run(request, progress, None).await
    }

    async fn generate_staged(
        &self,
        request: GenerateRequest,
        progress: ProgressSink,
        shape: ShapeLatentsSink,
    ) -> Result<Latents, ServiceError> {
        self.run(request, progress, Some(shape)).await
    }
}

/// A validated request in the model's terms.
struct Inputs {
    seed: u64,
    ty: PipelineType,
    cond_512: (Vec<f32>, [usize; 3]),
    cond_1024: Option<(Vec<f32>, [usize; 3])>,
    ss: SamplerOverrides,
    shape: SamplerOverrides,
    tex: SamplerOverrides,
    max_num_tokens: usize,
}

/// The f64 a client meant by an f32 parameter: the shortest decimal that round-trips (0.6f32 is
/// 0.6, not 0.6000000238). The guidance interval is compared with the f64 schedule, where the
/// shape stage's t₈ is exactly 0.6: widening 0.6 to 0.6000000238 would drop CFG on that step.
fn f64_of(x: f32) -> f64 {
    format!("{x}").parse().unwrap_or(x as f64)
}

fn overrides(p: Option<&SamplerParams>, base: &ConfigParams) -> SamplerOverrides {
    let Some(p) = p else {
        return SamplerOverrides::default();
    };
    let interval = match (p.guidance_interval_start, p.guidance_interval_end) {
        (None, None) => None,
        (a, b) => Some([
            a.map(f64_of).unwrap_or(base.guidance_interval[0]),
            b.map(f64_of).unwrap_or(base.guidance_interval[1]),
        ]),
    };
    SamplerOverrides {
        steps: p.steps.map(|s| s as usize),
        guidance_strength: p.guidance_strength.map(f64_of),
        guidance_rescale: p.guidance_rescale.map(f64_of),
        guidance_interval: interval,
        rescale_t: p.rescale_t.map(f64_of),
    }
}

fn cond(
    name: &str,
    t: &Option<t2_proto::common::v1::DenseTensor>,
    channels: usize,
) -> Result<(Vec<f32>, [usize; 3]), ServiceError> {
    let t = t
        .as_ref()
        .ok_or_else(|| ServiceError::InvalidArgument(format!("{name} is required")))?;
    let values = t2_proto::tensor::to_f32(t, 3)
        .map_err(|e| ServiceError::InvalidArgument(format!("{name}: {e}")))?;
    let shape = [
        t.shape[0] as usize,
        t.shape[1] as usize,
        t.shape[2] as usize,
    ];
    if shape[0] != 1 || shape[1] == 0 || shape[2] != channels {
        return Err(ServiceError::InvalidArgument(format!(
            "{name} must be f32 [1, L, {channels}] (the flow models' cond_channels), got {shape:?}"
        )));
    }
    Ok((values, shape))
}

impl Inputs {
    fn new(req: &GenerateRequest, m: &FlowModels) -> Result<Self, ServiceError> {
        let wire = WirePipeline::try_from(req.pipeline_type).unwrap_or_default();
        let ty: PipelineType = crate::params::pipeline_name(wire)
            .parse()
            .map_err(|e: t2_models::ModelError| ServiceError::InvalidArgument(e.to_string()))?;
        let cond_1024 = if ty.needs_cond_1024() {
            Some(cond("cond_1024", &req.cond_1024, m.cond_channels)?)
        } else {
            None
        };
        let a = &m.pipe.config.args;
        Ok(Self {
            seed: req.seed,
            ty,
            cond_512: cond("cond_512", &req.cond_512, m.cond_channels)?,
            cond_1024,
            ss: overrides(
                req.sparse_structure.as_ref(),
                &a.sparse_structure_sampler.params,
            ),
            shape: overrides(req.shape_slat.as_ref(), &a.shape_slat_sampler.params),
            tex: overrides(req.tex_slat.as_ref(), &a.tex_slat_sampler.params),
            max_num_tokens: req.max_num_tokens as usize,
        })
    }
}

/// The wire name of a progress stage.
pub fn stage_name(s: Stage) -> &'static str {
    match s {
        Stage::SparseStructure => "sparse_structure",
        Stage::ShapeSlatLowRes => "shape_slat_lr",
        Stage::ShapeSlat => "shape_slat",
        Stage::TexSlat => "tex_slat",
    }
}

fn sample(
    m: &FlowModels,
    inputs: Inputs,
    cancel: &Cancel,
    progress: &ProgressSink,
    shape_sink: Option<ShapeLatentsSink>,
) -> Result<Latents, ServiceError> {
    let fail = |e| model_error(e, ErrorCode::GenerationError);
    let pipe = &m.pipe;
    let device = pipe.device();
    let tensor = |(v, s): (Vec<f32>, [usize; 3])| Tensor::from_vec(v, &s, device);
    let cond_512 = tensor(inputs.cond_512).map_err(|e| fail(e.into()))?;
    let cond_1024 = match inputs.cond_1024 {
        Some(c) => Some(tensor(c).map_err(|e| fail(e.into()))?),
        None => None,
    };
    // Seconds since the call began at the end of each stage, logged once at the end.
    let t0 = Instant::now();
    let stage_ends = RefCell::new(Vec::new());
    let mut report = |stage: Stage, done: usize, total: usize| {
        // Between steps, let urgent work on a shared device go first (a job's shape decode
        // in the mesh service while this flow samples its texture: `t2_tensor::urgency`).
        device.yield_to_urgent(&|| cancel.is_cancelled());
        if cancel.is_cancelled() {
            return Err(t2_models::ModelError::Cancelled);
        }
        progress.report(stage_name(stage), done as u32, total as u32);
        if done == total {
            let t = t0.elapsed().as_secs_f64();
            stage_ends
                .borrow_mut()
                .push(format!("{} {t:.3}", stage_name(stage)));
        }
        Ok(())
    };
    // The reference seeds after preprocessing; all noise of the run comes from this generator.
    let mut rng = TorchGenerator::manual_seed(inputs.seed);
    let ty = inputs.ty;
    let ss = pipe
        .sample_sparse_structure(
            &cond_512,
            ty.ss_resolution(),
            &mut rng,
            &inputs.ss,
            &mut report,
        )
        .map_err(fail)?;
    let (shape, resolution, tex_cond, tex_res) = match (ty, &cond_1024) {
        (PipelineType::P512, _) => {
            let s = pipe
                .sample_shape_slat(
                    &cond_512,
                    FlowRes::R512,
                    &ss.coords,
                    &mut rng,
                    &inputs.shape,
                    &mut report,
                )
                .map_err(fail)?;
            (s, 512, &cond_512, FlowRes::R512)
        }
        (PipelineType::P1024, Some(c)) => {
            let s = pipe
                .sample_shape_slat(
                    c,
                    FlowRes::R1024,
                    &ss.coords,
                    &mut rng,
                    &inputs.shape,
                    &mut report,
                )
                .map_err(fail)?;
            (s, 1024, c, FlowRes::R1024)
        }
        (PipelineType::Cascade1024 | PipelineType::Cascade1536, Some(c)) => {
            let target = if ty == PipelineType::Cascade1024 {
                1024
            } else {
                1536
            };
            let (s, res) = pipe
                .sample_shape_slat_cascade(
                    &cond_512,
                    c,
                    &ss.coords,
                    target,
                    inputs.max_num_tokens,
                    &mut rng,
                    &inputs.shape,
                    &mut report,
                )
                .map_err(fail)?;
            (s, res, c, FlowRes::R1024)
        }
        _ => {
            return Err(ServiceError::InvalidArgument(format!(
                "pipeline {} needs cond_1024",
                ty.as_str()
            )));
        }
    };
    if let Some(sink) = shape_sink {
        // The caller may start decoding the shape while the texture flow runs; a caller that
        // has gone away just drops it.
        let _ = sink.send(to_wire(&m.model_id, &shape, None, resolution));
        let t = t0.elapsed().as_secs_f64();
        stage_ends
            .borrow_mut()
            .push(format!("shape_latents_sent {t:.3}"));
    }
    let tex = pipe
        .sample_tex_slat(
            tex_cond,
            tex_res,
            &shape,
            &mut rng,
            &inputs.tex,
            &mut report,
        )
        .map_err(fail)?;
    tracing::info!(
        pipeline = ty.as_str(),
        tokens = shape.len(),
        resolution,
        stage_ends_s = %stage_ends.borrow().join(", "),
        "latents sampled"
    );
    Ok(to_wire(&m.model_id, &shape, Some(&tex), resolution))
}

/// The latents as the wire (and the state) carry them; without `tex`, the shape latents the
/// flow streams ahead of the texture flow.
pub fn to_wire(
    model_id: &str,
    shape: &SparseLatent,
    tex: Option<&SparseLatent>,
    resolution: u32,
) -> Latents {
    let n = shape.len() as u64;
    let coords: Vec<i32> = shape.coords.iter().flatten().copied().collect();
    Latents {
        model_id: model_id.to_string(),
        resolution,
        coords: Some(t2_proto::tensor::dense_i32(&[n, 4], &coords)),
        shape_slat: Some(t2_proto::tensor::dense_f32(
            &[n, shape.channels as u64],
            &shape.feats,
        )),
        tex_slat: tex.map(|t| t2_proto::tensor::dense_f32(&[n, t.channels as u64], &t.feats)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_parameters_mean_their_decimal() {
        assert_eq!(f64_of(0.6), 0.6);
        assert_eq!(f64_of(0.7), 0.7);
        assert_eq!(f64_of(7.5), 7.5);
        assert_ne!(0.6f32 as f64, 0.6, "the trap this guards against");
    }
}
