//! Golden set `sampler` (reference commit 5565d240c4a4): full 4-step runs of the reference
//! `FlowEulerGuidanceIntervalSampler` for the SS (dense), shape (sparse) and texture (concat_cond,
//! no CFG) stages, every model call recorded.
//!
//! `sampler_teacher_forced`: the model is replaced by the recorded `calls.out`, so only the
//! sampler math runs (interval test, CFG mix, CFG rescale with the dense/sparse std, Euler).
//! Tolerance 1e-6: both sides are f32 with the same op order; what remains is the std
//! accumulation order (double Welford vs our two-pass f64) at the last ulp.
//! The end-to-end run with the real tiny models lives in `golden_flow.rs`.

mod common;

use t2_models::config::SamplerParams;
use t2_models::sampler::{
    Cond, FlowEulerGuidanceIntervalSampler, SampleTrace, StdKind, VelocityModel, latent_std,
};

const TOL: f64 = 1e-6;

/// Replays the reference's recorded model outputs, checking each call's t and condition.
struct Replay {
    outs: Vec<f32>,
    per_call: usize,
    t: Vec<f32>,
    neg: Vec<u8>,
    next: usize,
}

impl VelocityModel for Replay {
    fn velocity(&mut self, x: &[f32], t: f32, cond: Cond) -> t2_models::Result<Vec<f32>> {
        let k = self.next;
        assert!(k < self.t.len(), "more model calls than the reference made");
        assert_eq!(x.len(), self.per_call);
        assert_eq!(
            t.to_bits(),
            self.t[k].to_bits(),
            "call {k}: t {t} vs {}",
            self.t[k]
        );
        assert_eq!(
            cond == Cond::Negative,
            self.neg[k] != 0,
            "call {k}: condition"
        );
        self.next += 1;
        Ok(self.outs[k * self.per_call..(k + 1) * self.per_call].to_vec())
    }
}

/// The recorded run's parameters for `stage` (the set's `info` metadata).
pub fn stage_params(io: &common::Io, stage: &str) -> SamplerParams {
    let info = io.info();
    let p = &info["params"][stage];
    let f = |k: &str| {
        p[k].as_f64()
            .unwrap_or_else(|| panic!("info.params.{stage}.{k}"))
    };
    let gi = p["guidance_interval"]
        .as_array()
        .expect("guidance_interval");
    SamplerParams {
        steps: info["steps"].as_u64().expect("info.steps") as usize,
        guidance_strength: f("guidance_strength"),
        guidance_rescale: f("guidance_rescale"),
        guidance_interval: [gi[0].as_f64().unwrap(), gi[1].as_f64().unwrap()],
        rescale_t: f("rescale_t"),
    }
}

#[test]
fn sampler_teacher_forced() {
    let Some(dir) = common::set_dir("sampler") else {
        return;
    };
    let io = common::Io::open(&dir);
    for stage in ["ss", "shape", "tex"] {
        let noise = if stage == "ss" {
            io.f32("ss.in.noise")
        } else {
            io.f32(&format!("{stage}.in.noise_feats"))
        };
        let n = noise.data.len();
        let std_kind = if stage == "ss" {
            StdKind::DenseUnbiased
        } else {
            StdKind::SparsePopulation {
                channels: *noise.shape.last().unwrap(),
            }
        };
        let samples = io.f32(&format!("{stage}.out.samples"));
        let pred_v = io.f32(&format!("{stage}.out.pred_v"));
        let steps = pred_v.shape[0];
        let params = stage_params(&io, stage);
        assert_eq!(params.steps, steps, "{stage}: steps in info vs recorded");
        let calls = io.f32(&format!("{stage}.calls.out"));
        let mut model = Replay {
            outs: calls.data,
            per_call: n,
            t: io.f32(&format!("{stage}.calls.t")).data,
            neg: io.u8(&format!("{stage}.calls.uses_neg_cond")).data,
            next: 0,
        };
        let mut trace = SampleTrace::default();
        let out = FlowEulerGuidanceIntervalSampler::new(1e-5)
            .sample(
                &mut model,
                noise.data,
                &params,
                std_kind,
                &mut |_, _| Ok(()),
                Some(&mut trace),
            )
            .expect("sample");
        assert_eq!(model.next, model.t.len(), "{stage}: number of model calls");
        let x0 = io.f32(&format!("{stage}.out.pred_x_0")).data;
        let xt = io.f32(&format!("{stage}.out.pred_x_t")).data;
        for s in 0..steps {
            let r = s * n..(s + 1) * n;
            common::check(
                &format!("{stage}.pred_v[{s}]"),
                &trace.pred_v[s],
                &pred_v.data[r.clone()],
                TOL,
            );
            common::check(
                &format!("{stage}.pred_x_0[{s}]"),
                &trace.pred_x_0[s],
                &x0[r.clone()],
                TOL,
            );
            common::check(
                &format!("{stage}.pred_x_t[{s}]"),
                &trace.pred_x_t[s],
                &xt[r],
                TOL,
            );
        }
        common::check(&format!("{stage}.samples"), &out, &samples.data, TOL);
        if io.has(&format!("{stage}.rescale.t")) {
            let rt = io.f64(&format!("{stage}.rescale.t")).data;
            let sp = io.f32(&format!("{stage}.rescale.std_pos")).data;
            let sc = io.f32(&format!("{stage}.rescale.std_cfg")).data;
            let xp = io.f32(&format!("{stage}.rescale.x0_pos")).data;
            let xc = io.f32(&format!("{stage}.rescale.x0_cfg")).data;
            assert_eq!(
                trace.rescale.len(),
                rt.len(),
                "{stage}: number of CFG-rescale steps"
            );
            for (k, r) in trace.rescale.iter().enumerate() {
                assert_eq!(r.t.to_bits(), rt[k].to_bits(), "{stage}: rescale t[{k}]");
                common::check(
                    &format!("{stage}.std_pos[{k}]"),
                    &[r.std_pos],
                    &[sp[k]],
                    TOL,
                );
                common::check(
                    &format!("{stage}.std_cfg[{k}]"),
                    &[r.std_cfg],
                    &[sc[k]],
                    TOL,
                );
                common::check(
                    &format!("{stage}.x0_pos[{k}]"),
                    &r.x0_pos,
                    &xp[k * n..(k + 1) * n],
                    TOL,
                );
                common::check(
                    &format!("{stage}.x0_cfg[{k}]"),
                    &r.x0_cfg,
                    &xc[k * n..(k + 1) * n],
                    TOL,
                );
            }
        } else {
            assert!(
                trace.rescale.is_empty(),
                "{stage}: the port rescaled, the reference did not"
            );
        }
    }
}

/// The two std definitions against torch (`stdcheck.*`). Tolerance 1e-6 (one f32 value).
#[test]
fn sampler_std_definitions() {
    let Some(dir) = common::set_dir("sampler") else {
        return;
    };
    let io = common::Io::open(&dir);
    let dense = io.f32("stdcheck.dense_in").data;
    let want = io.f32("stdcheck.dense_torch_std").data[0];
    let got = latent_std(&dense, StdKind::DenseUnbiased).unwrap();
    common::check("dense unbiased std", &[got], &[want], TOL);
    let sparse = io.f32("stdcheck.sparse_in_feats");
    let want = io.f32("stdcheck.sparse_varlen_std").data[0];
    let got = latent_std(
        &sparse.data,
        StdKind::SparsePopulation {
            channels: sparse.shape[1],
        },
    )
    .unwrap();
    common::check("sparse population std", &[got], &[want], TOL);
}
