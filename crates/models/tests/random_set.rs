//! The random model sets: the full-size tensor lists match the real checkpoints (spec §2.5 and
//! §5 parameter and tensor counts, stored dtypes), and a size-scaled set written to disk loads
//! through the real loaders, which check every key, shape and dtype and refuse unused keys.

use t2_models::nn::Precision;
use t2_models::pipeline::{LoadOptions, Trellis2Pipeline};
use t2_models::random::{ModelSetSize, plan_specs, write_model_set};
use t2_tensor::{DType, Device, Weights};

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("t2-models-random-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn full_size_lists_match_the_real_checkpoints() {
    let specs = plan_specs(&ModelSetSize::full()).unwrap();
    let find = |needle: &str| {
        specs
            .iter()
            .find(|(p, _)| p.to_string_lossy().contains(needle))
            .unwrap_or_else(|| panic!("{needle}"))
            .1
            .clone()
    };
    // Parameter counts from spec §2.2 / §2.4 / §2.3 (exact for the DiTs and SC-VAEs).
    let ss = find("ss_flow_img_dit_1_3B_64_bf16");
    assert_eq!(ss.numel(), 1_292_179_976);
    assert_eq!(ss.tensors.len(), 640, "10 top-level + 30 × 21");
    assert_eq!(
        find("slat_flow_img2shape_dit_1_3B_1024_bf16").numel(),
        1_292_253_728
    );
    assert_eq!(
        find("slat_flow_imgshape2tex_dit_1_3B_512_bf16").numel(),
        1_292_302_880
    );
    let shape_dec = find("shape_dec_next_dc_f16c32_fp16");
    assert_eq!(shape_dec.numel(), 474_231_463);
    assert_eq!(shape_dec.tensors.len(), 292);
    let tex_dec = find("tex_dec_next_dc_f16c32_fp16");
    assert_eq!(tex_dec.numel(), 474_216_006);
    assert_eq!(tex_dec.tensors.len(), 284);
    let ss_dec = find("ss_dec_conv3d_16l8_fp16");
    assert!(
        (73_600_000..73_700_000).contains(&ss_dec.numel()),
        "{}",
        ss_dec.numel()
    );
    let dino = find("dinov3-vitl16");
    assert!(
        (303_000_000..303_200_000).contains(&dino.numel()),
        "{}",
        dino.numel()
    );
    // Stored dtypes (§5): DiTs bf16, SC-VAEs f16, DINOv3 f32, the SS decoder's mix.
    assert!(ss.tensors.iter().all(|t| t.dtype == DType::BF16));
    assert!(shape_dec.tensors.iter().all(|t| t.dtype == DType::F16));
    assert!(dino.tensors.iter().all(|t| t.dtype == DType::F32));
    let dtype_of = |name: &str| {
        ss_dec
            .tensors
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name}"))
            .dtype
    };
    assert_eq!(dtype_of("input_layer.weight"), DType::F32);
    assert_eq!(dtype_of("middle_block.0.norm1.weight"), DType::F32);
    assert_eq!(dtype_of("middle_block.0.conv1.weight"), DType::F16);
    assert_eq!(dtype_of("blocks.2.conv.weight"), DType::F16);
    assert_eq!(dtype_of("out_layer.2.weight"), DType::F32);
    // Key shapes quoted in §5.
    let shape_of = |ck: &t2_models::random::spec::CheckpointSpec, name: &str| {
        ck.tensors
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name}"))
            .shape
            .clone()
    };
    assert_eq!(shape_of(&ss, "adaLN_modulation.1.weight"), [9216, 1536]);
    assert_eq!(
        shape_of(&ss, "blocks.29.cross_attn.to_kv.weight"),
        [3072, 1024]
    );
    assert_eq!(
        shape_of(&ss, "blocks.0.self_attn.q_rms_norm.gamma"),
        [12, 128]
    );
    assert_eq!(shape_of(&ss, "blocks.0.mlp.mlp.0.weight"), [8192, 1536]);
    assert_eq!(
        shape_of(&shape_dec, "blocks.1.16.conv1.weight"),
        [2048, 3, 3, 3, 512]
    );
    assert_eq!(
        shape_of(&shape_dec, "blocks.3.4.to_subdiv.weight"),
        [8, 128]
    );
    assert_eq!(
        shape_of(&ss_dec, "blocks.2.conv.weight"),
        [1024, 512, 3, 3, 3]
    );
    // ~15 GB of TRELLIS weights plus 1.2 GB of DINOv3 (§2.5).
    let gb = specs.iter().map(|(_, s)| s.bytes()).sum::<usize>() as f64 / 1e9;
    assert!((15.9..16.5).contains(&gb), "{gb} GB");
}

#[test]
fn scaled_set_loads_through_the_real_loaders() {
    let dir = tmp("scaled");
    let set = write_model_set(&dir, 3, &ModelSetSize::scaled()).unwrap();
    assert_eq!(set.files.len(), 9);
    // Every file is valid safetensors with the planned tensor count and byte size.
    for f in &set.files {
        let ws = Weights::open(&f.path).unwrap();
        assert_eq!(ws.keys().len(), f.tensors, "{}", f.path.display());
        let len = std::fs::metadata(&f.path).unwrap().len();
        assert_eq!(len, f.bytes);
    }
    // The loaders check every key, shape and dtype and refuse unused keys (`finish`).
    let pipe = Trellis2Pipeline::load(&dir, &LoadOptions::all(Precision::Reference, Device::Cpu))
        .expect("the scaled set loads");
    assert_eq!(
        pipe.default_pipeline_type().unwrap().as_str(),
        "1024_cascade"
    );
    // Same seed, same bytes (the streams are keyed, not scheduled).
    let again = tmp("scaled-again");
    write_model_set(&again, 3, &ModelSetSize::scaled()).unwrap();
    for f in &set.files {
        let rel = f.path.strip_prefix(&dir).unwrap();
        let a = std::fs::read(&f.path).unwrap();
        let b = std::fs::read(again.join(rel)).unwrap();
        assert!(a == b, "{} differs between runs", rel.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&again);
}
