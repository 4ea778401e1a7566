//! `FlowEulerGuidanceIntervalSampler` (= GuidanceIntervalMixin ∘ CFGMixin ∘ FlowEulerSampler),
//! reproducing the reference's number formats exactly:
//! - the t schedule and the guidance-interval test are float64 (numpy / Python floats): the
//!   shape stage's t = 0.6 step is inside the interval only in f64;
//! - the model gets `float32(1000·t)`;
//! - every tensor op is float32 with the Python scalar rounded to f32 first, one rounding per
//!   PyTorch op (`gs·pos + (1−gs)·neg` is three roundings, etc.);
//! - the CFG-rescale std is `torch.std` (unbiased) for the dense SS latent and `VarLenTensor.std`
//!   (population, `sqrt(E[x²] − E[x]²)` over row means) for sparse latents.
//!
//! The latent lives on the host as f32: the sampler math is a few element-wise passes over at
//! most ~1.5 M values per step, negligible next to a DiT forward, and this keeps it bit-exact.

use crate::config::SamplerParams;
use crate::error::{ModelError, Result};

/// Which condition a model call gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    Positive,
    /// `neg_cond` (all-zero tokens in the pipeline).
    Negative,
}

/// A flow model as the sampler sees it: velocity of the flat latent at `t` (already
/// `float32(1000·t)`), with the positive or negative condition.
pub trait VelocityModel {
    fn velocity(&mut self, x_t: &[f32], t: f32, cond: Cond) -> Result<Vec<f32>>;

    /// The CFG pair `(positive, negative)` at the same `x_t` and `t`. The reference runs two
    /// separate forwards; a model may batch them into one (same values per row).
    fn velocity_pair(&mut self, x_t: &[f32], t: f32) -> Result<(Vec<f32>, Vec<f32>)> {
        Ok((
            self.velocity(x_t, t, Cond::Positive)?,
            self.velocity(x_t, t, Cond::Negative)?,
        ))
    }
}

/// How the CFG rescale measures the spread of a latent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdKind {
    /// Dense tensors: `torch.std` over all non-batch elements, unbiased (N − 1).
    DenseUnbiased,
    /// Sparse tensors `[N, channels]`: population std from the mean of row means.
    SparsePopulation { channels: usize },
}

/// `np.linspace(1, 0, steps + 1)` then `t = r·t / (1 + (r − 1)·t)`, in float64.
pub fn t_schedule(steps: usize, rescale_t: f64) -> Vec<f64> {
    let step = (0.0 - 1.0) / steps as f64;
    (0..=steps)
        .map(|i| {
            // numpy: arange · step + start, with the endpoint set exactly.
            let t = if i == steps {
                0.0
            } else {
                i as f64 * step + 1.0
            };
            rescale_t * t / (1.0 + (rescale_t - 1.0) * t)
        })
        .collect()
}

/// One Euler step of the plan.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepPlan {
    pub t: f64,
    pub t_prev: f64,
    /// The guidance interval test (`gi[0] <= t <= gi[1]`, f64).
    pub in_interval: bool,
    /// The guidance strength this step uses (forced to 1 outside the interval).
    pub guidance_strength: f64,
}

impl StepPlan {
    /// Model calls this step makes: 1 when the strength is 0 or 1, else 2 (cond, then neg).
    pub fn forwards(&self) -> usize {
        if self.guidance_strength == 1.0 || self.guidance_strength == 0.0 {
            1
        } else {
            2
        }
    }
    /// The timestep tensor the model receives.
    pub fn model_t(&self) -> f32 {
        (1000.0 * self.t) as f32
    }
}

/// The steps `sample` will run for `params`.
pub fn plan(params: &SamplerParams) -> Vec<StepPlan> {
    let ts = t_schedule(params.steps, params.rescale_t);
    let [lo, hi] = params.guidance_interval;
    (0..params.steps)
        .map(|i| {
            let t = ts[i];
            let in_interval = lo <= t && t <= hi;
            StepPlan {
                t,
                t_prev: ts[i + 1],
                in_interval,
                guidance_strength: if in_interval {
                    params.guidance_strength
                } else {
                    1.0
                },
            }
        })
        .collect()
}

/// Everything the reference records during a run (tests and debugging only).
#[derive(Clone, Debug, Default)]
pub struct SampleTrace {
    /// Per model call: (step index, model t, condition).
    pub calls: Vec<(usize, f32, Cond)>,
    /// Per step: the final velocity, its x0 prediction and the new x.
    pub pred_v: Vec<Vec<f32>>,
    pub pred_x_0: Vec<Vec<f32>>,
    pub pred_x_t: Vec<Vec<f32>>,
    /// Per CFG-rescale step.
    pub rescale: Vec<RescaleTrace>,
}

#[derive(Clone, Debug, Default)]
pub struct RescaleTrace {
    pub t: f64,
    pub std_pos: f32,
    pub std_cfg: f32,
    pub x0_pos: Vec<f32>,
    pub x0_cfg: Vec<f32>,
}

/// The sampler (its only constructor argument is `sigma_min`).
#[derive(Clone, Copy, Debug)]
pub struct FlowEulerGuidanceIntervalSampler {
    pub sigma_min: f64,
}

impl FlowEulerGuidanceIntervalSampler {
    pub fn new(sigma_min: f64) -> Self {
        FlowEulerGuidanceIntervalSampler { sigma_min }
    }

    /// Runs `params.steps` Euler steps from `noise`. `on_step(done, total)` runs before the first
    /// step and after every step: it reports progress and may return `Err(Cancelled)` to stop.
    pub fn sample(
        &self,
        model: &mut dyn VelocityModel,
        noise: Vec<f32>,
        params: &SamplerParams,
        std_kind: StdKind,
        on_step: &mut dyn FnMut(usize, usize) -> Result<()>,
        mut trace: Option<&mut SampleTrace>,
    ) -> Result<Vec<f32>> {
        let steps = plan(params);
        let mut x = noise;
        on_step(0, steps.len())?;
        for (i, step) in steps.iter().enumerate() {
            let v = self.velocity(
                model,
                &x,
                step,
                params.guidance_rescale,
                std_kind,
                i,
                trace.as_deref_mut(),
            )?;
            if v.len() != x.len() {
                return Err(ModelError::invalid(format!(
                    "model returned {} values for a latent of {}",
                    v.len(),
                    x.len()
                )));
            }
            let dt = (step.t - step.t_prev) as f32;
            let next: Vec<f32> = x.iter().zip(&v).map(|(&xi, &vi)| xi - dt * vi).collect();
            if let Some(tr) = trace.as_deref_mut() {
                tr.pred_x_0.push(self.pred_to_xstart(&x, step.t, &v));
                tr.pred_v.push(v);
                tr.pred_x_t.push(next.clone());
            }
            x = next;
            on_step(i + 1, steps.len())?;
        }
        Ok(x)
    }

    /// The guided velocity of one step (interval → CFG → rescale).
    #[allow(clippy::too_many_arguments)]
    fn velocity(
        &self,
        model: &mut dyn VelocityModel,
        x: &[f32],
        step: &StepPlan,
        guidance_rescale: f64,
        std_kind: StdKind,
        index: usize,
        mut trace: Option<&mut SampleTrace>,
    ) -> Result<Vec<f32>> {
        let t_model = step.model_t();
        let mut call = |cond: Cond, trace: Option<&mut SampleTrace>| -> Result<Vec<f32>> {
            if let Some(tr) = trace {
                tr.calls.push((index, t_model, cond));
            }
            model.velocity(x, t_model, cond)
        };
        let gs = step.guidance_strength;
        if gs == 1.0 {
            return call(Cond::Positive, trace);
        }
        if gs == 0.0 {
            return call(Cond::Negative, trace);
        }
        if let Some(tr) = trace.as_deref_mut() {
            tr.calls.push((index, t_model, Cond::Positive));
            tr.calls.push((index, t_model, Cond::Negative));
        }
        let (pos, neg) = model.velocity_pair(x, t_model)?;
        if pos.len() != x.len() || neg.len() != x.len() {
            return Err(ModelError::invalid(
                "model output size differs from the latent",
            ));
        }
        let (g, one_minus_g) = (gs as f32, (1.0 - gs) as f32);
        let pred: Vec<f32> = pos
            .iter()
            .zip(&neg)
            .map(|(&p, &n)| g * p + one_minus_g * n)
            .collect();
        if guidance_rescale <= 0.0 {
            return Ok(pred);
        }
        let x0_pos = self.pred_to_xstart(x, step.t, &pos);
        let x0_cfg = self.pred_to_xstart(x, step.t, &pred);
        let std_pos = latent_std(&x0_pos, std_kind)?;
        let std_cfg = latent_std(&x0_cfg, std_kind)?;
        let ratio = std_pos / std_cfg;
        let (rr, one_minus_rr) = (guidance_rescale as f32, (1.0 - guidance_rescale) as f32);
        let x0: Vec<f32> = x0_cfg
            .iter()
            .map(|&c| rr * (c * ratio) + one_minus_rr * c)
            .collect();
        let out = self.xstart_to_pred(x, step.t, &x0);
        if let Some(tr) = trace {
            tr.rescale.push(RescaleTrace {
                t: step.t,
                std_pos,
                std_cfg,
                x0_pos,
                x0_cfg,
            });
        }
        Ok(out)
    }

    /// `(1 − σ)·x_t − (σ + (1 − σ)·t)·pred`.
    pub fn pred_to_xstart(&self, x: &[f32], t: f64, pred: &[f32]) -> Vec<f32> {
        let a = (1.0 - self.sigma_min) as f32;
        let b = (self.sigma_min + (1.0 - self.sigma_min) * t) as f32;
        x.iter().zip(pred).map(|(&xi, &p)| a * xi - b * p).collect()
    }

    /// `((1 − σ)·x_t − x0) / (σ + (1 − σ)·t)`.
    pub fn xstart_to_pred(&self, x: &[f32], t: f64, x0: &[f32]) -> Vec<f32> {
        let a = (1.0 - self.sigma_min) as f32;
        let b = (self.sigma_min + (1.0 - self.sigma_min) * t) as f32;
        x.iter().zip(x0).map(|(&xi, &z)| (a * xi - z) / b).collect()
    }
}

/// The std the CFG rescale uses (see `StdKind`), as the f32 value PyTorch produces.
pub fn latent_std(x: &[f32], kind: StdKind) -> Result<f32> {
    match kind {
        StdKind::DenseUnbiased => {
            if x.len() < 2 {
                return Err(ModelError::invalid("std of fewer than 2 values"));
            }
            // torch.std accumulates in double (Welford); a two-pass f64 sum gives the same f32.
            let n = x.len() as f64;
            let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
            let ss: f64 = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum();
            Ok((ss / (n - 1.0)).sqrt() as f32)
        }
        StdKind::SparsePopulation { channels } => {
            if channels == 0 || x.is_empty() || !x.len().is_multiple_of(channels) {
                return Err(ModelError::invalid(format!(
                    "sparse std of {} values with {channels} channels",
                    x.len()
                )));
            }
            // VarLenTensor.std: row means (f32), their mean over the rows (f32), the same for
            // the squares (squared in f32), then sqrt(mean2 − mean²) in f32.
            let rows = x.len() / channels;
            let mut mean_sum = 0f64;
            let mut mean2_sum = 0f64;
            for r in x.chunks_exact(channels) {
                let s: f64 = r.iter().map(|&v| v as f64).sum();
                let s2: f64 = r.iter().map(|&v| (v * v) as f64).sum();
                mean_sum += (s / channels as f64) as f32 as f64;
                mean2_sum += (s2 / channels as f64) as f32 as f64;
            }
            let mean = (mean_sum / rows as f64) as f32;
            let mean2 = (mean2_sum / rows as f64) as f32;
            Ok((mean2 - mean * mean).sqrt())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(steps: usize, r: f64, gs: f64, gi: [f64; 2]) -> SamplerParams {
        SamplerParams {
            steps,
            guidance_strength: gs,
            guidance_rescale: 0.5,
            guidance_interval: gi,
            rescale_t: r,
        }
    }

    #[test]
    fn shape_stage_t8_is_exactly_0_6_in_f64() {
        let t = t_schedule(12, 3.0);
        assert_eq!(t[8], 0.6);
        let p = plan(&params(12, 3.0, 7.5, [0.6, 1.0]));
        assert_eq!(p.iter().map(StepPlan::forwards).sum::<usize>(), 21);
        let ss = plan(&params(12, 5.0, 7.5, [0.6, 1.0]));
        assert_eq!(ss.iter().map(StepPlan::forwards).sum::<usize>(), 22);
    }

    #[test]
    fn constant_velocity_integrates_exactly() {
        struct Const;
        impl VelocityModel for Const {
            fn velocity(&mut self, x: &[f32], _t: f32, _c: Cond) -> Result<Vec<f32>> {
                Ok(vec![1.0; x.len()])
            }
        }
        let s = FlowEulerGuidanceIntervalSampler::new(1e-5);
        let p = params(4, 1.0, 1.0, [0.0, 1.0]);
        let out = s
            .sample(
                &mut Const,
                vec![1.0; 4],
                &p,
                StdKind::DenseUnbiased,
                &mut |_, _| Ok(()),
                None,
            )
            .unwrap();
        // x(0) = x(1) − ∫ v dt = 1 − 1 = 0.
        assert!(out.iter().all(|v| v.abs() < 1e-6));
    }

    #[test]
    fn cancellation_stops_between_steps() {
        struct Const;
        impl VelocityModel for Const {
            fn velocity(&mut self, x: &[f32], _t: f32, _c: Cond) -> Result<Vec<f32>> {
                Ok(vec![0.0; x.len()])
            }
        }
        let s = FlowEulerGuidanceIntervalSampler::new(1e-5);
        let p = params(4, 1.0, 1.0, [0.0, 1.0]);
        let mut seen = 0;
        let r = s.sample(
            &mut Const,
            vec![0.0; 4],
            &p,
            StdKind::DenseUnbiased,
            &mut |done, _| {
                seen = done;
                if done == 2 {
                    Err(ModelError::Cancelled)
                } else {
                    Ok(())
                }
            },
            None,
        );
        assert!(matches!(r, Err(ModelError::Cancelled)));
        assert_eq!(seen, 2);
    }
}
