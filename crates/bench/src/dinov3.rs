//! DINOv3 ViT-L/16 at full size (issue 6): our forward at 512 and 1024 px on the random
//! full-size weights, timed and dumped for `scripts/gpu/dinov3_ref.py`, which runs HF
//! transformers' `DINOv3ViTModel` the way TRELLIS.2 calls it on the same weights and pixels.

use std::path::Path;

use anyhow::Result;
use t2_models::config::ModelFiles;
use t2_models::demo::{DINOV3, demo_image};
use t2_models::dinov3::Dinov3;
use t2_tensor::Device;

use crate::util::{Dump, time_ms};

pub fn run(models: &Path, dump: &Path, out: &Path, dev: &Device, reps: usize) -> Result<()> {
    let dir = models.join(DINOV3);
    let files = ModelFiles {
        config: dir.join("config.json"),
        weights: dir.join("model.safetensors"),
    };
    let model = Dinov3::load(&files, dev)?;
    std::fs::create_dir_all(dump)?;
    let mut d = Dump::default();
    let mut report = serde_json::Map::new();
    for size in [512u32, 1024] {
        // The demo image (a shaded disc on transparency) as RGB, at a size the resize changes.
        let rgb = image::DynamicImage::ImageRgba8(demo_image(size + size / 4)).to_rgb8();
        let pixels = model.pixel_values(&rgb, size)?;
        let ms = time_ms(dev, 1, reps, || {
            model.forward(&pixels, &mut None)?;
            Ok(())
        })?;
        let tokens = model.forward(&pixels, &mut None)?;
        let shape = tokens.shape().to_vec();
        d.f32(
            &format!("pixels_{size}"),
            pixels.shape(),
            &pixels.to_vec_f32()?,
        );
        d.f32(&format!("tokens_{size}"), &shape, &tokens.to_vec_f32()?);
        println!("dinov3 {size}: tokens {shape:?}, {ms:.2} ms (median of {reps})");
        report.insert(
            size.to_string(),
            serde_json::json!({ "ms": ms, "tokens": shape[1] }),
        );
    }
    d.save(&dump.join("dinov3.safetensors"))?;
    std::fs::write(out, serde_json::to_vec_pretty(&report)?)?;
    Ok(())
}
