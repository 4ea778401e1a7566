//! The real DINOv3 service on the demo models (CPU): tokens exactly as the model computes them
//! at 512 and 1024 px, clear errors for bad images and a broken model file.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use t2_proto::common::v1::Image;
use t2_proto::{ErrorCode, ServiceError};
use t2_svc_dinov3::shared::model_dir;
use t2_svc_dinov3::{Dinov3Service, FeatureExtractor};
use t2_tensor::Device;

fn demo() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        model_dir::write_demo_set(d.path()).unwrap();
        d
    })
    .path()
}

async fn ready(dir: &Path) -> Arc<Dinov3Service> {
    let svc = Dinov3Service::start(dir, Device::Cpu);
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

/// The preprocessed crop of the demo image, as the rmbg service returns it (RGB PNG).
fn crop() -> (image::RgbImage, Image) {
    let rgba = t2_models::demo::demo_image(64);
    let rgb = t2_imageops::crop_premultiply(&rgba).unwrap();
    let mut png = Vec::new();
    rgb.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    (
        rgb,
        Image {
            data: png.into(),
            media_type: "image/png".into(),
            ..Default::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_at_both_resolutions_are_the_models_own() {
    let svc = ready(demo()).await;
    let info = svc.info().await;
    assert_eq!(info.gpu, "cpu");
    assert!(info.models[0].contains("dinov3-vitl16"), "{info:?}");
    let (rgb, png) = crop();
    let maps = svc.features(png, vec![1024, 512]).await.unwrap();
    assert_eq!(
        maps.iter().map(|m| m.resolution).collect::<Vec<_>>(),
        [1024, 512]
    );
    // The demo DINOv3 is 64 wide; 1 CLS + 4 registers + (S/16)² patches.
    assert_eq!(maps[0].tokens.shape, [1, 1 + 4 + 64 * 64, 64]);
    assert_eq!(maps[1].tokens.shape, [1, 1 + 4 + 32 * 32, 64]);

    let files = t2_models::config::PipelineConfig::load(demo())
        .unwrap()
        .image_cond_files()
        .unwrap();
    let net = t2_models::dinov3::Dinov3::load(&files, &Device::Cpu).unwrap();
    for m in &maps {
        let want = net
            .extract(&rgb, m.resolution)
            .unwrap()
            .to_vec_f32()
            .unwrap();
        let got = t2_proto::tensor::to_f32(&m.tokens, 3).unwrap();
        assert!(
            got == want,
            "{} px tokens differ from the model's",
            m.resolution
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_and_unsupported_images_and_bad_resolutions_are_invalid_arguments() {
    let svc = ready(demo()).await;
    let (_, png) = crop();
    let truncated = Image {
        data: png.data.slice(..png.data.len() / 2),
        ..Default::default()
    };
    let bmp = Image {
        data: b"BM\x3a\x00\x00\x00\x00\x00\x00\x00\x36\x00"
            .to_vec()
            .into(),
        ..Default::default()
    };
    for (img, res, needle) in [
        (truncated, vec![512], "corrupt or truncated PNG"),
        (bmp, vec![512], "unsupported image format"),
        (png, vec![768], "not one of"),
    ] {
        let err = svc.features(img, res).await.unwrap_err();
        assert!(
            matches!(&err, ServiceError::InvalidArgument(m) if m.contains(needle)),
            "{needle}: {err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_model_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    model_dir::write_demo_set(dir.path()).unwrap();
    let weights = dir
        .path()
        .join(model_dir_dinov3())
        .join("model.safetensors");
    // Weights of another network in DINOv3's place: the loader names the key it misses.
    std::fs::copy(
        dir.path()
            .join("ckpts/tex_dec_next_dc_f16c32_fp16.safetensors"),
        &weights,
    )
    .unwrap();
    let err = Dinov3Service::load(dir.path(), Device::Cpu).err().unwrap();
    assert_eq!(err.code(), ErrorCode::Unavailable);
    assert!(
        err.message().contains("model.safetensors") && err.message().contains("missing key"),
        "{err:?}"
    );
    let svc = Dinov3Service::start(dir.path(), Device::Cpu);
    let mut info = svc.info().await;
    for _ in 0..400 {
        if info.detail.contains("failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        info = svc.info().await;
    }
    assert!(
        !info.ready && info.detail.contains("missing key"),
        "{info:?}"
    );
}

fn model_dir_dinov3() -> &'static str {
    t2_models::demo::DINOV3
}
