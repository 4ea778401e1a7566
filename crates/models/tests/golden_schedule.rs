//! Golden set `schedule` (reference commit 5565d240c4a4): the reference sampler's t schedule,
//! guidance-interval decisions, per-step forward counts and model t values, recorded over a stub
//! model. Tolerance: EXACT (f64 t bit for bit, decisions and counts equal, f32 model t bit for
//! bit): these are decisions, and the shape stage's t = 0.6 boundary flips in f32.

mod common;

use t2_models::config::SamplerParams;
use t2_models::sampler::{Cond, FlowEulerGuidanceIntervalSampler, StdKind, VelocityModel, plan};

/// A model that returns zeros and records nothing: the sampler's trace records the calls.
struct Zero;
impl VelocityModel for Zero {
    fn velocity(&mut self, x: &[f32], _t: f32, _c: Cond) -> t2_models::Result<Vec<f32>> {
        Ok(vec![0.0; x.len()])
    }
}

#[test]
fn schedule_exact() {
    let Some(dir) = common::set_dir("schedule") else {
        return;
    };
    let io = common::Io::open(&dir);
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("schedule.json")).expect("schedule.json"),
    )
    .expect("schedule.json parses");
    let configs = json.as_object().expect("schedule.json is an object");
    assert!(!configs.is_empty(), "schedule.json lists no configs");
    for (name, c) in configs {
        let f = |k: &str| c[k].as_f64().unwrap_or_else(|| panic!("{name}.{k}"));
        let gi = c["guidance_interval"]
            .as_array()
            .expect("guidance_interval");
        let params = SamplerParams {
            steps: c["steps"].as_u64().expect("steps") as usize,
            guidance_strength: f("guidance_strength"),
            guidance_rescale: f("guidance_rescale"),
            guidance_interval: [gi[0].as_f64().unwrap(), gi[1].as_f64().unwrap()],
            rescale_t: f("rescale_t"),
        };
        let steps = plan(&params);
        let t_seq = io.f64(&format!("{name}.t_seq")).data;
        let t_pairs = io.f64(&format!("{name}.t_pairs")).data;
        assert_eq!(t_seq.len(), params.steps + 1, "{name}: t_seq length");
        for (i, s) in steps.iter().enumerate() {
            assert_eq!(
                s.t.to_bits(),
                t_seq[i].to_bits(),
                "{name}: t[{i}] {} vs {}",
                s.t,
                t_seq[i]
            );
            assert_eq!(
                s.t.to_bits(),
                t_pairs[2 * i].to_bits(),
                "{name}: pair t[{i}]"
            );
            assert_eq!(
                s.t_prev.to_bits(),
                t_pairs[2 * i + 1].to_bits(),
                "{name}: pair t_prev[{i}]"
            );
        }
        let in_interval = io.u8(&format!("{name}.in_interval")).data;
        let cfg_applied = io.u8(&format!("{name}.cfg_applied")).data;
        let per_step = io.i32(&format!("{name}.forwards_per_step")).data;
        for (i, s) in steps.iter().enumerate() {
            assert_eq!(
                s.in_interval,
                in_interval[i] != 0,
                "{name}: in_interval[{i}]"
            );
            assert_eq!(
                s.forwards() == 2,
                cfg_applied[i] != 0,
                "{name}: cfg_applied[{i}]"
            );
            assert_eq!(s.forwards() as i32, per_step[i], "{name}: forwards[{i}]");
        }
        // Run the real sampler loop and compare its call log with the reference's.
        let mut trace = t2_models::sampler::SampleTrace::default();
        FlowEulerGuidanceIntervalSampler::new(1e-5)
            .sample(
                &mut Zero,
                vec![0.5; 16],
                &params,
                StdKind::DenseUnbiased,
                &mut |_, _| Ok(()),
                Some(&mut trace),
            )
            .expect("sample");
        let call_step = io.i32(&format!("{name}.model_call_step")).data;
        let call_neg = io.u8(&format!("{name}.model_call_uses_neg_cond")).data;
        let call_t = io.f32(&format!("{name}.model_t")).data;
        assert_eq!(
            trace.calls.len(),
            call_step.len(),
            "{name}: number of model calls"
        );
        for (k, (step, t, cond)) in trace.calls.iter().enumerate() {
            assert_eq!(*step as i32, call_step[k], "{name}: call {k} step");
            assert_eq!(
                *cond == Cond::Negative,
                call_neg[k] != 0,
                "{name}: call {k} cond"
            );
            assert_eq!(
                t.to_bits(),
                call_t[k].to_bits(),
                "{name}: call {k} t {t} vs {}",
                call_t[k]
            );
        }
        eprintln!(
            "schedule {name}: {} steps, {} calls exact",
            params.steps,
            trace.calls.len()
        );
    }
}
