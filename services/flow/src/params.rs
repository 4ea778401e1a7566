//! Pipeline types, per-stage sampler defaults and the valid ranges of every parameter: one
//! source of truth for the gateway's validation and the service's own.

use t2_proto::flow::v1::{GenerateRequest, PipelineType, SamplerParams};

/// Steps per stage: at least one Euler step; past 100 the sampler only burns GPU time.
pub const STEPS: std::ops::RangeInclusive<u32> = 1..=100;
/// Classifier-free guidance strength: 1.0 disables CFG; beyond 30 outputs saturate.
pub const GUIDANCE_STRENGTH: std::ops::RangeInclusive<f32> = 0.0..=30.0;
/// CFG rescale blends the guided prediction's std back towards the conditional one's.
pub const GUIDANCE_RESCALE: std::ops::RangeInclusive<f32> = 0.0..=1.0;
/// Time shift `t' = r t / (1 + (r - 1) t)`: r must be positive; the reference uses 3–5.
pub const RESCALE_T: std::ops::RangeInclusive<f32> = 0.01..=20.0;
/// The interval bounds are times in [0, 1].
pub const GUIDANCE_INTERVAL: std::ops::RangeInclusive<f32> = 0.0..=1.0;
/// Cascade token budget: the reference default is 49,152; the floor keeps the 1024 stage usable.
pub const MAX_NUM_TOKENS: std::ops::RangeInclusive<u32> = 1024..=262_144;
pub const DEFAULT_MAX_NUM_TOKENS: u32 = 49_152;
pub const DEFAULT_SEED: u64 = 42;

/// The reference pipeline's sampler defaults of one stage (pipeline.json of TRELLIS.2-4B).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageDefaults {
    pub steps: u32,
    pub guidance_strength: f32,
    pub guidance_rescale: f32,
    pub guidance_interval: [f32; 2],
    pub rescale_t: f32,
}

pub const SPARSE_STRUCTURE_DEFAULTS: StageDefaults = StageDefaults {
    steps: 12,
    guidance_strength: 7.5,
    guidance_rescale: 0.7,
    guidance_interval: [0.6, 1.0],
    rescale_t: 5.0,
};
pub const SHAPE_SLAT_DEFAULTS: StageDefaults = StageDefaults {
    steps: 12,
    guidance_strength: 7.5,
    guidance_rescale: 0.5,
    guidance_interval: [0.6, 1.0],
    rescale_t: 3.0,
};
pub const TEX_SLAT_DEFAULTS: StageDefaults = StageDefaults {
    steps: 12,
    guidance_strength: 1.0,
    guidance_rescale: 0.0,
    guidance_interval: [0.6, 0.9],
    rescale_t: 3.0,
};

/// The public names of the pipeline types.
pub fn pipeline_name(p: PipelineType) -> &'static str {
    match p {
        PipelineType::Unspecified => "unspecified",
        PipelineType::PipelineType512 => "512",
        PipelineType::PipelineType1024 => "1024",
        PipelineType::PipelineType1024Cascade => "1024_cascade",
        PipelineType::PipelineType1536Cascade => "1536_cascade",
    }
}

pub const PIPELINE_NAMES: [&str; 4] = ["512", "1024", "1024_cascade", "1536_cascade"];
pub const DEFAULT_PIPELINE: &str = "1024_cascade";

pub fn parse_pipeline(s: &str) -> Option<PipelineType> {
    match s {
        "512" => Some(PipelineType::PipelineType512),
        "1024" => Some(PipelineType::PipelineType1024),
        "1024_cascade" => Some(PipelineType::PipelineType1024Cascade),
        "1536_cascade" => Some(PipelineType::PipelineType1536Cascade),
        _ => None,
    }
}

/// Output resolution of a pipeline type.
pub fn pipeline_resolution(p: PipelineType) -> u32 {
    match p {
        PipelineType::PipelineType512 => 512,
        PipelineType::PipelineType1536Cascade => 1536,
        _ => 1024,
    }
}

/// Whether the pipeline conditions on 1024-px features too.
pub fn needs_cond_1024(p: PipelineType) -> bool {
    p != PipelineType::PipelineType512
}

fn check_range<T: PartialOrd + std::fmt::Display + Copy>(
    errors: &mut Vec<String>,
    field: &str,
    v: Option<T>,
    range: &std::ops::RangeInclusive<T>,
) {
    if let Some(v) = v
        && !range.contains(&v)
    {
        errors.push(format!(
            "{field} = {v} is outside [{}, {}]",
            range.start(),
            range.end()
        ));
    }
}

/// Every out-of-range parameter of one stage (`prefix` names the stage in messages).
pub fn check_sampler(prefix: &str, p: &SamplerParams, errors: &mut Vec<String>) {
    check_range(errors, &format!("{prefix}_sampling_steps"), p.steps, &STEPS);
    let finite = |field: &str, v: Option<f32>, errors: &mut Vec<String>| {
        if v.is_some_and(|v| !v.is_finite()) {
            errors.push(format!("{prefix}_{field} must be a finite number"));
        }
    };
    finite("guidance_strength", p.guidance_strength, errors);
    finite("guidance_rescale", p.guidance_rescale, errors);
    finite("rescale_t", p.rescale_t, errors);
    check_range(
        errors,
        &format!("{prefix}_guidance_strength"),
        p.guidance_strength,
        &GUIDANCE_STRENGTH,
    );
    check_range(
        errors,
        &format!("{prefix}_guidance_rescale"),
        p.guidance_rescale,
        &GUIDANCE_RESCALE,
    );
    check_range(
        errors,
        &format!("{prefix}_rescale_t"),
        p.rescale_t,
        &RESCALE_T,
    );
    let field = format!("{prefix}_guidance_interval");
    check_range(
        errors,
        &field,
        p.guidance_interval_start,
        &GUIDANCE_INTERVAL,
    );
    check_range(errors, &field, p.guidance_interval_end, &GUIDANCE_INTERVAL);
    if let (Some(a), Some(b)) = (p.guidance_interval_start, p.guidance_interval_end)
        && a > b
    {
        errors.push(format!("{field} start {a} is after its end {b}"));
    }
}

/// All problems of a generate request at once (empty when valid).
pub fn request_problems(req: &GenerateRequest) -> Vec<String> {
    let mut errors = Vec::new();
    let pipeline = PipelineType::try_from(req.pipeline_type).unwrap_or(PipelineType::Unspecified);
    if pipeline == PipelineType::Unspecified {
        errors.push(format!("pipeline_type must be one of {PIPELINE_NAMES:?}"));
    }
    let tokens =
        |name: &str, t: &Option<t2_proto::common::v1::DenseTensor>, errors: &mut Vec<String>| {
            match t {
                None => errors.push(format!("{name} is required")),
                Some(t) => match t2_proto::tensor::validate(t) {
                    Err(e) => errors.push(format!("{name}: {e}")),
                    Ok(_) if t.shape.len() != 3 || t.shape[0] != 1 => {
                        errors.push(format!("{name} must be [1, L, C], got {:?}", t.shape))
                    }
                    Ok(_) => {}
                },
            }
        };
    tokens("cond_512", &req.cond_512, &mut errors);
    if needs_cond_1024(pipeline) && pipeline != PipelineType::Unspecified {
        tokens("cond_1024", &req.cond_1024, &mut errors);
    }
    let none = SamplerParams::default();
    check_sampler(
        "ss",
        req.sparse_structure.as_ref().unwrap_or(&none),
        &mut errors,
    );
    check_sampler(
        "shape_slat",
        req.shape_slat.as_ref().unwrap_or(&none),
        &mut errors,
    );
    check_sampler(
        "tex_slat",
        req.tex_slat.as_ref().unwrap_or(&none),
        &mut errors,
    );
    if !MAX_NUM_TOKENS.contains(&req.max_num_tokens) {
        errors.push(format!(
            "max_num_tokens = {} is outside [{}, {}]",
            req.max_num_tokens,
            MAX_NUM_TOKENS.start(),
            MAX_NUM_TOKENS.end()
        ));
    }
    errors
}
