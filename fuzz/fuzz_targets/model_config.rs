//! Model config JSON (`pipeline.json`, `ckpts/<name>.json`, HF `config.json`) as the loaders
//! read it: each input is a config for one model, loaded with `load(files, …)` against the
//! matching weights of the demo model set (tiny, deterministic), so a mutated config that
//! still agrees with the weights goes as deep as the constructors go (head splits, RoPE
//! tables, block types, …). Every outcome must be `Ok` or a typed `ModelError`.
//!
//! Input: byte 0 picks the model (bits 0-2) and the precision (bit 3); the rest is the JSON.
//! The demo set is written once per machine into the temp dir (`write_demo_models`).
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use t2_models::config::{ModelFiles, PipelineConfig};
use t2_models::decoders::{ScVaeDecoder, SparseStructureDecoder};
use t2_models::demo;
use t2_models::dinov3::Dinov3;
use t2_models::dit::{SLatFlowModel, SparseStructureFlowModel};
use t2_models::nn::Precision;
use t2_tensor::Device;

/// Bump when the demo set's layout changes, so a stale cache is not reused.
const DEMO_CACHE: &str = "t2-fuzz-demo-models-v1";

fn demo_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(DEMO_CACHE);
        let done = dir.join(".complete");
        if !done.exists() {
            demo::write_demo_models(&dir, 0).expect("demo models");
            std::fs::write(&done, b"").expect("marker");
        }
        dir
    })
}

fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

/// Config from the fuzz input, weights of the demo checkpoint `rel`.
fn files(json: &[u8], weights: PathBuf) -> ModelFiles {
    let config = scratch().join("config.json");
    std::fs::write(&config, json).expect("write config");
    ModelFiles { config, weights }
}

fn ckpt(rel: &str) -> PathBuf {
    demo_dir().join(format!("{rel}.safetensors"))
}

fuzz_target!(
    // Writing the demo set takes tens of seconds under ASan: not part of any input's time.
    init: {
        demo_dir();
    },
    |data: &[u8]| {
    let Some((&selector, json)) = data.split_first() else {
        return;
    };
    let precision = if selector & 8 == 0 {
        Precision::Reference
    } else {
        Precision::F32
    };
    let dev = Device::Cpu;
    match selector & 7 {
        0 => {
            // pipeline.json beside the demo checkpoints, so its model paths resolve.
            let path = demo_dir().join("fuzz-pipeline.json");
            std::fs::write(&path, json).expect("write pipeline.json");
            if let Ok(cfg) = PipelineConfig::load(&path) {
                for key in cfg.args.models.keys() {
                    let _ = cfg.model_files(key);
                }
                let _ = cfg.image_cond_files();
            }
        }
        1 => {
            let weights = demo_dir().join(demo::DINOV3).join("model.safetensors");
            let _ = Dinov3::load(&files(json, weights), &dev);
        }
        2 => {
            let _ = SparseStructureFlowModel::load(&files(json, ckpt(demo::SS_FLOW)), precision, &dev);
        }
        3 => {
            let f = files(json, ckpt(demo::SHAPE_FLOW_512));
            let _ = SLatFlowModel::load(&f, precision, &dev);
        }
        4 => {
            let f = files(json, ckpt(demo::TEX_FLOW_512));
            let _ = SLatFlowModel::load(&f, precision, &dev);
        }
        5 => {
            let f = files(json, ckpt(demo::SS_DECODER));
            let _ = SparseStructureDecoder::load(&f, precision, &dev);
        }
        6 => {
            let _ = ScVaeDecoder::load(&files(json, ckpt(demo::SHAPE_DECODER)), precision, &dev);
        }
        _ => {
            let _ = ScVaeDecoder::load(&files(json, ckpt(demo::TEX_DECODER)), precision, &dev);
        }
    }
});
