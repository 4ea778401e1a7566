//! The demo model set (`write_demo_models`): written in the real layout, deterministic, and
//! exercising every path of the pipeline (non-empty structure, subdivisions at every level,
//! faces). These are properties of the demo set, not parity checks (there is no reference for
//! random demo weights).

use t2_models::demo::{self, write_demo_models};
use t2_models::nn::Precision;
use t2_models::pipeline::{
    LoadOptions, PipelineType, Residency, RunOptions, SamplerOverrides, Trellis2Pipeline,
};
use t2_tensor::Device;

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("t2-models-demo-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A run of `ty` with `steps` sampler steps in every stage (few, to stay fast).
fn few_steps(ty: PipelineType, seed: u64, steps: usize) -> RunOptions {
    let steps = SamplerOverrides {
        steps: Some(steps),
        ..Default::default()
    };
    RunOptions {
        seed,
        pipeline_type: Some(ty),
        sparse_structure: steps.clone(),
        shape_slat: steps.clone(),
        tex_slat: steps,
        ..Default::default()
    }
}

#[test]
fn demo_set_is_real_layout_deterministic_and_calibrated() {
    let a = tmp("a");
    let m = write_demo_models(&a, 7).expect("write demo");
    for rel in [
        demo::SS_FLOW,
        demo::SS_DECODER,
        demo::SHAPE_FLOW_512,
        demo::SHAPE_FLOW_1024,
        demo::TEX_FLOW_512,
        demo::TEX_FLOW_1024,
        demo::SHAPE_DECODER,
        demo::TEX_DECODER,
    ] {
        assert!(a.join(format!("{rel}.json")).is_file(), "{rel}.json");
        assert!(
            a.join(format!("{rel}.safetensors")).is_file(),
            "{rel}.safetensors"
        );
    }
    assert!(a.join(demo::DINOV3).join("config.json").is_file());
    assert!(a.join(demo::DINOV3).join("model.safetensors").is_file());
    assert!(!a.join("briaai").exists(), "RMBG is not part of this set");
    let c = &m.calibration;
    eprintln!("{c:?}");
    // The shifts moved the decisions into the non-degenerate range.
    assert!(c.ss_bias_shift != 0.0 && c.ss_tokens > 0, "structure");
    assert_eq!(c.subdiv_fractions.len(), 4);
    for f in &c.subdiv_fractions {
        assert!((0.2..=0.6).contains(f), "subdivision fraction {f}");
    }
    assert!(
        (0.2..=0.5).contains(&c.flag_fraction),
        "flag fraction {}",
        c.flag_fraction
    );
    assert!(c.flag_bias_shifts.iter().all(|s| *s != 0.0));
    // Deterministic: a second write is byte-identical.
    let b = tmp("b");
    write_demo_models(&b, 7).expect("write demo again");
    for entry in walk(&a) {
        let rel = entry.strip_prefix(&a).unwrap();
        let x = std::fs::read(&entry).unwrap();
        let y = std::fs::read(b.join(rel)).unwrap_or_else(|_| panic!("{} missing", rel.display()));
        assert!(x == y, "{} differs between two writes", rel.display());
    }
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}

fn walk(d: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}

/// The whole pipeline on the demo set (real dtypes: bf16 DiTs, f16 decoders), '512' and
/// '1024_cascade', with few steps to stay fast: every path produces output.
#[test]
fn demo_pipeline_runs_every_path() {
    let dir = tmp("run");
    write_demo_models(&dir, 1).expect("write demo");
    let dev = Device::from_env().expect("device");
    let pipe =
        Trellis2Pipeline::load(&dir, &LoadOptions::all(Precision::Reference, dev)).expect("load");
    let image = pipe
        .preprocess_image(&demo::demo_image(64))
        .expect("preprocess");
    // 1536 with a token cap below the HR count forces the back-off (1536 → 1408 → …).
    for (ty, cap) in [
        (PipelineType::P512, None),
        (PipelineType::P1024, None),
        (PipelineType::Cascade1024, None),
        (PipelineType::Cascade1536, Some(200)),
    ] {
        let opts = RunOptions {
            max_num_tokens: cap.unwrap_or(t2_models::pipeline::MAX_NUM_TOKENS),
            ..few_steps(ty, 3, 3)
        };
        let t0 = std::time::Instant::now();
        let out = pipe.run(&image, &opts, &mut |_, _, _| Ok(())).expect("run");
        eprintln!(
            "{}: {} SS tokens, {} latent tokens, {} fine voxels, {} faces, res {} ({:.1}s)",
            ty.as_str(),
            out.ss_coords.len(),
            out.shape_slat.len(),
            out.mesh.coords.len(),
            out.mesh.mesh.faces.len(),
            out.resolution,
            t0.elapsed().as_secs_f64()
        );
        assert!(!out.ss_coords.is_empty());
        assert_eq!(out.subs.len(), 4);
        for (i, s) in out.subs.iter().enumerate() {
            let kept = s.mask().iter().filter(|&&m| m).count();
            assert!(
                kept > 0 && kept < s.logits.len(),
                "level {i}: {kept} of {} kept",
                s.logits.len()
            );
        }
        assert!(!out.mesh.mesh.faces.is_empty(), "no faces");
        assert_eq!(out.mesh.coords.len(), out.mesh.attrs.len());
        assert!(out.mesh.attrs.iter().flatten().all(|v| v.is_finite()));
        if ty == PipelineType::Cascade1024 {
            assert_eq!(out.resolution, 1024);
            assert!(
                out.shape_slat.len() > out.ss_coords.len(),
                "the cascade refines the tokens"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The low-VRAM mode (each network loaded for its stage and freed) computes exactly what the
/// all-resident pipeline computes: same weights, same kernels, so bit-identical output.
#[test]
fn low_vram_mode_matches_all_resident() {
    let dir = tmp("lowvram");
    write_demo_models(&dir, 2).expect("write demo");
    let dev = Device::from_env().expect("device");
    let resident =
        Trellis2Pipeline::load(&dir, &LoadOptions::all(Precision::Reference, dev.clone()))
            .expect("load resident");
    let low = Trellis2Pipeline::load(
        &dir,
        &LoadOptions {
            residency: Residency::OneAtATime,
            ..LoadOptions::all(Precision::Reference, dev)
        },
    )
    .expect("load low-VRAM");
    assert_eq!(low.residency(), Residency::OneAtATime);
    assert!(
        low.networks().shape_flow_1024.is_none(),
        "nothing stays resident"
    );
    let image = resident
        .preprocess_image(&demo::demo_image(64))
        .expect("preprocess");
    let opts = few_steps(PipelineType::Cascade1024, 5, 2);
    let a = resident
        .run(&image, &opts, &mut |_, _, _| Ok(()))
        .expect("resident run");
    let b = low
        .run(&image, &opts, &mut |_, _, _| Ok(()))
        .expect("low-VRAM run");
    assert_eq!(a.ss_coords, b.ss_coords);
    assert_eq!(a.shape_slat.coords, b.shape_slat.coords);
    assert!(
        a.shape_slat.feats == b.shape_slat.feats,
        "shape latents differ"
    );
    assert!(
        a.tex_slat.feats == b.tex_slat.feats,
        "texture latents differ"
    );
    assert_eq!(a.mesh.mesh.faces, b.mesh.mesh.faces);
    assert!(a.mesh.attrs == b.mesh.attrs, "voxel attributes differ");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The start-up warm-up (`Trellis2Pipeline::run_warm_up`) runs every resident network on the
/// demo set without error, and leaves no state behind: a job after it is bit-identical to the
/// same job on a freshly loaded pipeline.
#[test]
fn warm_up_runs_every_network_and_changes_no_result() {
    let dir = tmp("warm");
    write_demo_models(&dir, 1).expect("write demo");
    let dev = Device::from_env().expect("device");
    let load = || {
        Trellis2Pipeline::load(&dir, &LoadOptions::all(Precision::Reference, dev.clone()))
            .expect("load")
    };
    let opts = few_steps(PipelineType::P512, 5, 2);
    let run = |pipe: &Trellis2Pipeline| {
        let image = pipe
            .preprocess_image(&demo::demo_image(64))
            .expect("preprocess");
        pipe.run(&image, &opts, &mut |_, _, _| Ok(())).expect("run")
    };
    let fresh = run(&load());
    let warmed = load();
    let seconds = warmed.run_warm_up().expect("warm-up");
    assert!(seconds > 0.0, "every network is resident: the warm-up ran");
    let after = run(&warmed);
    assert_eq!(after.shape_slat.feats, fresh.shape_slat.feats);
    assert_eq!(after.tex_slat.feats, fresh.tex_slat.feats);
    assert_eq!(after.mesh.mesh, fresh.mesh.mesh);
    assert_eq!(after.mesh.attrs, fresh.mesh.attrs);
    let _ = std::fs::remove_dir_all(&dir);
}
