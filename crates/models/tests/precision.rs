//! The reference's mixed precision (spec Appendix B) on the golden models: DiT blocks in bf16
//! (`dtype: bfloat16`, as the real checkpoints), decoder bodies in f16 (`use_fp16: true`), run on
//! the same weights and inputs as the fp32 goldens and compared with the fp32 reference outputs.
//! This checks that the low-precision paths run and stay close; it is not a parity test (the
//! goldens are fp32 only).
//!
//! Tolerances: bf16 keeps 8 significant bits (each op rounds at 2⁻⁹ ≈ 2e-3 relative) and a DiT
//! block chains ~15 rounding ops, whose errors add up partly at random: 3e-2 of the output
//! range. f16 keeps 11 bits (2⁻¹² ≈ 2.4e-4 per op) over ~10 ops per block and a few blocks:
//! 5e-3 for the decoder bodies (every block's output is checked). The SC-VAE outputs get 3e-2:
//! the final affine-free LayerNorm over only 8 channels divides by each voxel's spread and
//! amplifies the body's ~1.5e-3 error about tenfold where a voxel's features are nearly equal
//! (measured: 1.2e-2 after a 1.5e-3 body). Subdivisions are teacher-forced (their logits'
//! margins are ~1e-3, below f16 noise).

mod common;

use t2_models::config::{CheckpointConfig, FlowConfig, ScVaeDecoderConfig, SsDecoderConfig};
use t2_models::decoders::{ScVaeDecoder, SparseStructureDecoder, Subdivide, Subdivision};
use t2_models::dit::{SLatFlowModel, SparseStructureFlowModel};
use t2_models::nn::Precision;
use t2_tensor::{Device, Tensor, Weights};

const BF16_TOL: f64 = 3e-2;
const F16_TOL: f64 = 5e-3;
const F16_AFTER_LN_TOL: f64 = 3e-2;

fn tensor(io: &common::Io, name: &str, dev: &Device) -> Tensor {
    let t = io.f32(name);
    Tensor::from_vec(t.data, &t.shape, dev).expect("upload")
}

fn flow_cfg(dir: &std::path::Path, class: &str) -> FlowConfig {
    let path = dir.join("config.json");
    let mut cfg: FlowConfig = CheckpointConfig::load(&path)
        .unwrap()
        .args_as(&path, &[class])
        .unwrap();
    cfg.dtype = "bfloat16".into();
    cfg
}

#[test]
fn dit_bf16_blocks_track_fp32() {
    let dev = Device::from_env().expect("device");
    if let Some(dir) = common::set_dir("ss_flow") {
        let io = common::Io::open(&dir);
        let ws = Weights::open(dir.join("model.safetensors")).unwrap();
        let cfg = flow_cfg(&dir, "SparseStructureFlowModel");
        let m =
            SparseStructureFlowModel::from_weights(&ws, &cfg, Precision::Reference, &dev).unwrap();
        let cond = m.prepare_cond(&tensor(&io, "in.cond", &dev)).unwrap();
        assert_eq!(cond.dtype(), t2_tensor::DType::BF16);
        let y = m
            .forward(
                &tensor(&io, "in.x", &dev),
                io.f32("in.t").data[0],
                &cond,
                &mut None,
            )
            .unwrap();
        assert_eq!(y.dtype(), t2_tensor::DType::F32, "the output layer is fp32");
        common::check(
            "ss_flow bf16 vs fp32",
            &y.to_vec_f32().unwrap(),
            &io.f32("out.y").data,
            BF16_TOL,
        );
    }
    for set in ["slat_flow_shape", "slat_flow_tex"] {
        let Some(dir) = common::set_dir(set) else {
            continue;
        };
        let io = common::Io::open(&dir);
        let ws = Weights::open(dir.join("model.safetensors")).unwrap();
        let m = SLatFlowModel::from_weights(
            &ws,
            &flow_cfg(&dir, "SLatFlowModel"),
            Precision::Reference,
            &dev,
        )
        .unwrap();
        let rope = m.rope_tables(&io.coords4("in.coords")).unwrap();
        let cond = m.prepare_cond(&tensor(&io, "in.cond", &dev)).unwrap();
        let concat = io
            .has("in.concat_cond_feats")
            .then(|| tensor(&io, "in.concat_cond_feats", &dev));
        let y = m
            .forward(
                &tensor(&io, "in.x_feats", &dev),
                concat.as_ref(),
                &rope,
                io.f32("in.t").data[0],
                &cond,
                &mut None,
            )
            .unwrap();
        common::check(
            &format!("{set} bf16 vs fp32"),
            &y.to_vec_f32().unwrap(),
            &io.f32("out.y_feats").data,
            BF16_TOL,
        );
    }
}

#[test]
fn decoders_fp16_bodies_track_fp32() {
    let dev = Device::from_env().expect("device");
    if let Some(dir) = common::set_dir("ss_decoder") {
        let io = common::Io::open(&dir);
        let path = dir.join("config.json");
        let mut cfg: SsDecoderConfig = CheckpointConfig::load(&path)
            .unwrap()
            .args_as(&path, &["SparseStructureDecoder"])
            .unwrap();
        cfg.use_fp16 = true;
        let ws = Weights::open(dir.join("model.safetensors")).unwrap();
        let d = SparseStructureDecoder::from_weights(&ws, cfg, Precision::Reference, &dev).unwrap();
        let y = d.forward(&tensor(&io, "in.z", &dev), &mut None).unwrap();
        common::check(
            "ss_decoder f16 vs fp32",
            &y.to_vec_f32().unwrap(),
            &io.f32("out.logits").data,
            F16_TOL,
        );
    }
    for (set, class, subs_prefix, out) in [
        (
            "shape_decoder",
            "FlexiDualGridVaeDecoder",
            "out.subs",
            "out.feats",
        ),
        (
            "tex_decoder",
            "SparseUnetVaeDecoder",
            "in.guide_subs",
            "out.feats_raw",
        ),
    ] {
        let Some(dir) = common::set_dir(set) else {
            continue;
        };
        let io = common::Io::open(&dir);
        let path = dir.join("config.json");
        let mut cfg: ScVaeDecoderConfig = CheckpointConfig::load(&path)
            .unwrap()
            .args_as(&path, &[class])
            .unwrap();
        cfg.use_fp16 = true;
        if class == "FlexiDualGridVaeDecoder" {
            cfg.out_channels = Some(7);
        }
        let ws = Weights::open(dir.join("model.safetensors")).unwrap();
        let d = ScVaeDecoder::from_weights(&ws, cfg, Precision::Reference, &dev).unwrap();
        let mut subs = Vec::new();
        while io.has(&format!("{subs_prefix}.{}", subs.len())) {
            let i = subs.len();
            subs.push(Subdivision {
                parents: io.coords4(&format!("{subs_prefix}.{i}.coords")),
                logits: io.f32(&format!("{subs_prefix}.{i}")).data,
            });
        }
        let mut cap = common::Captured::default();
        let r = {
            let mut p = cap.probe();
            d.run(
                io.coords4("in.coords"),
                &tensor(&io, "in.feats", &dev),
                Subdivide::Guide(&subs),
                None,
                &mut Some(&mut p),
            )
            .unwrap()
        };
        cap.check_hooks(&io, "", |k| {
            if k.starts_with("pre:") {
                F16_AFTER_LN_TOL
            } else {
                F16_TOL
            }
        });
        common::check(
            &format!("{set} f16 vs fp32"),
            &r.feats.to_vec_f32().unwrap(),
            &io.f32(out).data,
            F16_AFTER_LN_TOL,
        );
    }
}
