//! Golden set `dinov3` (reference commit 5565d240c4a4, transformers 4.57.6): HF `DINOv3ViTModel`
//! (tiny, random) through TRELLIS.2's `DinoV3FeatureExtractor.__call__` at two sizes, with
//! layer/sub-module hooks, plus one PIL-list input (the pipeline's path: LANCZOS resize, /255,
//! ImageNet normalisation).
//!
//! Tolerances (README): intermediates of the first layer 1e-5 (fp32 vs fp32, summation order
//! only); later layers and the output tokens 3e-5 (attention softmax order differs between
//! backends). RoPE tables 1e-6 (one f32 cos/sin each). The PIL path's input tensor 1e-6: the
//! resize is Pillow-exact (uint8), so only the normalisation's f32 rounding could differ.

mod common;

use t2_models::dinov3::Dinov3;
use t2_tensor::{Device, Tensor};

fn tol(key: &str) -> f64 {
    if key.starts_with("rope_embeddings") {
        1e-6
    } else if key == "embeddings" || key.starts_with("layer.0") {
        1e-5
    } else {
        3e-5
    }
}

#[test]
fn dinov3_tokens() {
    let Some(dir) = common::set_dir("dinov3") else {
        return;
    };
    let dev = Device::from_env().expect("device");
    let io = common::Io::open(&dir);
    let model = Dinov3::load(&common::model_files(&dir), &dev).expect("load dinov3");
    // Cases are the `<case>.in.pixel_values_normalized` tensors with an `out.tokens` output.
    let mut cases: Vec<String> = io
        .names()
        .iter()
        .filter_map(|n| {
            n.strip_suffix(".in.pixel_values_normalized")
                .map(str::to_string)
        })
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "dinov3 set has no cases");
    for case in &cases {
        let px = io.f32(&format!("{case}.in.pixel_values_normalized"));
        let pixels = Tensor::from_vec(px.data.clone(), &px.shape, &dev).unwrap();
        let mut cap = common::Captured::default();
        let out = {
            let mut p = cap.probe();
            model.forward(&pixels, &mut Some(&mut p)).expect("forward")
        };
        let n = cap.check_hooks(&io, &format!("{case}."), tol);
        common::check(
            &format!("{case}.out.tokens"),
            &out.to_vec_f32().unwrap(),
            &io.f32(&format!("{case}.out.tokens")).data,
            3e-5,
        );
        // Normalisation of the [0,1] input (`<case>.in.pixel_values_01`, when given).
        if io.has(&format!("{case}.in.pixel_values_01")) {
            let raw = io.f32(&format!("{case}.in.pixel_values_01"));
            let plane = raw.data.len() / 3;
            let norm: Vec<f32> = raw
                .data
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let c = i / plane;
                    (v - t2_imageops::IMAGENET_MEAN[c]) / t2_imageops::IMAGENET_STD[c]
                })
                .collect();
            common::check(&format!("{case} normalisation"), &norm, &px.data, 1e-6);
        }
        // The PIL path: uint8 image → extractor (resize + normalise + forward).
        if io.has(&format!("{case}.in.image_uint8_hwc")) {
            let img = io.u8(&format!("{case}.in.image_uint8_hwc"));
            let (h, w) = (img.shape[0] as u32, img.shape[1] as u32);
            let rgb = image::RgbImage::from_raw(w, h, img.data).expect("image");
            let size = px.shape[2] as u32;
            let pv = model.pixel_values(&rgb, size).expect("pixel values");
            common::check(
                &format!("{case} PIL resize + normalise"),
                &pv.to_vec_f32().unwrap(),
                &px.data,
                1e-6,
            );
            let tokens = model.extract(&rgb, size).expect("extract");
            common::check(
                &format!("{case}.out.tokens (PIL path)"),
                &tokens.to_vec_f32().unwrap(),
                &io.f32(&format!("{case}.out.tokens")).data,
                3e-5,
            );
        }
        eprintln!("dinov3 {case}: {n} intermediates checked");
    }
}
