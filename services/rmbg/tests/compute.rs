//! The real background-removal service on the RMBG-shaped ONNX fixture (CPU, ONNX Runtime from
//! `scripts/setup-onnxruntime.sh`): the JPEG path through the model, the RGBA pass-through, the
//! ≤ 1024 px downscale, clear errors for bad images and for a wrong model file.
//!
//! The model's numerics against Pillow/onnxruntime are `t2-birefnet`'s and `t2-imageops`' tests;
//! here the service must produce exactly what those libraries compose to.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use image::{DynamicImage, ImageFormat, RgbImage, RgbaImage};
use t2_birefnet::{BiRefNet, Provider};
use t2_proto::common::v1::Image;
use t2_proto::{ErrorCode, ServiceError};
use t2_svc_rmbg::shared::model_dir::RMBG_ONNX;
use t2_svc_rmbg::{BackgroundRemover, RmbgService};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/birefnet/tests/fixtures")
        .join(name)
}

/// A model directory holding `onnx` as RMBG-2.0's model file.
fn model_dir(onnx: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join(RMBG_ONNX);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::copy(fixture(onnx), &p).unwrap();
    d
}

async fn ready(dir: &Path) -> Arc<RmbgService> {
    let svc = RmbgService::start(dir, Provider::Cpu);
    for _ in 0..400 {
        let info = svc.info().await;
        if info.ready {
            return svc;
        }
        assert!(!info.detail.contains("failed"), "{info:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("never ready");
}

fn encode(img: DynamicImage, format: ImageFormat) -> Image {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), format)
        .unwrap();
    Image {
        data: out.into(),
        ..Default::default()
    }
}

/// A red disk on a pale background: the fixture model keys on red.
fn photo(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as f32 - w as f32 * 0.55, y as f32 - h as f32 * 0.45);
        if (dx * dx + dy * dy).sqrt() < 0.3 * w.min(h) as f32 {
            [220, 30 + (x % 40) as u8, 40].into()
        } else {
            [235, 235, 225].into()
        }
    })
}

fn decode(img: &Image) -> DynamicImage {
    image::load_from_memory(&img.data).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jpeg_goes_through_the_model_and_is_downscaled_cropped_and_premultiplied() {
    let dir = model_dir("rmbg_fixture.onnx");
    let svc = ready(dir.path()).await;
    let info = svc.info().await;
    assert!(info.gpu.contains("CPUExecutionProvider"), "{info:?}");
    assert!(info.models[0].contains("briaai/RMBG-2.0"), "{info:?}");

    let jpeg = encode(DynamicImage::ImageRgb8(photo(1200, 900)), ImageFormat::Jpeg);
    let out = svc.remove_background(jpeg.clone()).await.unwrap();
    assert!(!out.kept_input_alpha);
    let cutout = decode(out.cutout.as_ref().unwrap()).to_rgba8();
    assert_eq!(
        cutout.dimensions(),
        (1024, 768),
        "≤ 1024 px LANCZOS downscale"
    );

    // Exactly what the libraries compose to: decode → prepare → BiRefNet → crop/premultiply.
    let lib = BiRefNet::load_with(
        fixture("rmbg_fixture.onnx"),
        &t2_birefnet::LoadOptions {
            provider: Provider::Cpu,
            dylib: t2_svc_rmbg::compute::onnxruntime_library(),
            ..Default::default()
        },
    )
    .unwrap();
    let pil = t2_imageops::decode_pil_with_limits(&jpeg.data, &Default::default()).unwrap();
    let t2_imageops::Prepared::NeedsBackgroundRemoval(rgb) = t2_imageops::prepare(&pil).unwrap()
    else {
        panic!("a JPEG has no alpha")
    };
    let want_cutout = lib.remove_background(&rgb).unwrap();
    assert_eq!(cutout, want_cutout);
    let want_crop = t2_imageops::crop_premultiply(&want_cutout).unwrap();
    let crop = decode(out.crop.as_ref().unwrap());
    assert_eq!(crop.color(), image::ColorType::Rgb8, "the crop drops alpha");
    assert_eq!(crop.to_rgb8(), want_crop);
    let alpha: Vec<u8> = cutout.pixels().map(|p| p[3]).collect();
    assert!(alpha.iter().any(|&a| a > 204) && alpha.iter().any(|&a| a < 50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rgba_with_real_alpha_passes_through_without_the_model() {
    let dir = model_dir("rmbg_fixture.onnx");
    let svc = ready(dir.path()).await;
    let rgba = RgbaImage::from_fn(96, 64, |x, y| {
        let inside = (20..70).contains(&x) && (10..50).contains(&y);
        [x as u8 * 2, y as u8 * 3, 90, if inside { 255 } else { 0 }].into()
    });
    let out = svc
        .remove_background(encode(
            DynamicImage::ImageRgba8(rgba.clone()),
            ImageFormat::Png,
        ))
        .await
        .unwrap();
    assert!(out.kept_input_alpha);
    assert_eq!(decode(out.cutout.as_ref().unwrap()).to_rgba8(), rgba);
    let crop = decode(out.crop.as_ref().unwrap()).to_rgb8();
    assert_eq!(crop, t2_imageops::crop_premultiply(&rgba).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_unsupported_and_empty_images_are_clear_invalid_arguments() {
    let dir = model_dir("rmbg_fixture.onnx");
    let svc = ready(dir.path()).await;
    let jpeg = encode(DynamicImage::ImageRgb8(photo(64, 48)), ImageFormat::Jpeg);
    let truncated = Image {
        data: jpeg.data.slice(..40),
        ..Default::default()
    };
    let gif = Image {
        data: b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec().into(),
        ..Default::default()
    };
    let transparent = encode(
        DynamicImage::ImageRgba8(RgbaImage::from_pixel(16, 16, [9, 9, 9, 0].into())),
        ImageFormat::Png,
    );
    let blank = encode(
        DynamicImage::ImageRgb8(RgbImage::from_pixel(32, 32, [240, 240, 240].into())),
        ImageFormat::Png,
    );
    for (img, needle) in [
        (truncated, "corrupt or truncated JPEG"),
        (gif, "unsupported image format"),
        (transparent, "no opaque pixel"),
        (blank, "found no object"),
    ] {
        let err = svc.remove_background(img).await.unwrap_err();
        assert!(
            matches!(&err, ServiceError::InvalidArgument(m) if m.contains(needle)),
            "{needle}: {err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_model_file_is_named_and_never_ready() {
    for (dir, needle) in [
        (model_dir("rmbg_wrong_size.onnx"), "wrong signature"),
        (tempfile::tempdir().unwrap(), "does not exist"),
    ] {
        let svc = RmbgService::start(dir.path(), Provider::Cpu);
        let mut info = svc.info().await;
        for _ in 0..400 {
            if info.detail.contains("failed") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            info = svc.info().await;
        }
        assert!(!info.ready);
        assert!(info.detail.contains(needle), "{info:?}");
        assert!(info.detail.contains(RMBG_ONNX), "names the file: {info:?}");
        let err = svc
            .remove_background(Image {
                data: vec![1].into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unavailable);
        let err = RmbgService::load(dir.path(), Provider::Cpu).err().unwrap();
        assert!(err.message().contains(needle), "{err:?}");
    }
}
