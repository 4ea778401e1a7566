//! Starts the real `trellis2-rmbg` binary on a loopback port and checks its gRPC surface:
//! health NOT_SERVING until the model is loaded then SERVING, reflection, a real cut-out, clear
//! INVALID_ARGUMENTs, and a wrong model file named in `GetInfo` while health stays NOT_SERVING.

use std::path::Path;
use std::time::Duration;

use t2_proto::common::v1::{GetInfoRequest, Image};
use t2_proto::rmbg::v1::RemoveBackgroundRequest;
use t2_proto::rmbg::v1::background_removal_client::BackgroundRemovalClient;
use t2_svc_rmbg::shared::model_dir::RMBG_ONNX;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;

#[path = "../../shared/process_testing.rs"]
mod process_testing;

use process_testing::Proc;

fn model_dir(onnx: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join(RMBG_ONNX);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/birefnet/tests/fixtures")
        .join(onnx);
    std::fs::copy(src, &p).unwrap();
    d
}

fn start(models: &Path) -> (Proc, String) {
    let args = [
        "--provider".as_ref(),
        "cpu".as_ref(),
        "--models".as_ref(),
        models.as_os_str(),
    ];
    process_testing::start(env!("CARGO_BIN_EXE_trellis2-rmbg"), &args)
}

async fn health(channel: &Channel) -> ServingStatus {
    process_testing::health(channel, t2_proto::service_names::RMBG).await
}

#[tokio::test]
async fn binary_turns_serving_once_loaded_and_cuts_out() {
    let dir = model_dir("rmbg_fixture.onnx");
    let (_proc, url) = start(dir.path());
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    // Health follows readiness within READINESS_POLL.
    let mut status = health(&channel).await;
    for _ in 0..100 {
        if status == ServingStatus::Serving {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = health(&channel).await;
    }
    assert_eq!(status, ServingStatus::Serving);

    let mut client = BackgroundRemovalClient::new(channel.clone());
    let info = client
        .get_info(GetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(info.ready, "{info:?}");
    assert!(info.load_time_seconds > 0.0, "{info:?}");

    let mut png = Vec::new();
    image::RgbImage::from_fn(40, 30, |x, _| {
        if (10..30).contains(&x) {
            [230, 20, 20].into()
        } else {
            [240, 240, 240].into()
        }
    })
    .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
    .unwrap();
    let out = client
        .remove_background(RemoveBackgroundRequest {
            image: Some(Image {
                data: png.into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!out.kept_input_alpha);
    assert_eq!(
        (
            out.cutout.unwrap().width,
            out.crop.unwrap().media_type.as_str()
        ),
        (40, "image/png")
    );

    let err = client
        .remove_background(RemoveBackgroundRequest {
            image: Some(Image {
                data: vec![1, 2, 3].into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("unsupported image format"),
        "{}",
        err.message()
    );
    let err = client
        .remove_background(RemoveBackgroundRequest { image: None })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    let services = t2_proto::client::reflection_services(channel)
        .await
        .unwrap();
    assert!(
        services.contains(&t2_proto::service_names::RMBG.to_string()),
        "{services:?}"
    );
    assert!(
        services.contains(&"grpc.health.v1.Health".to_string()),
        "{services:?}"
    );
}

#[tokio::test]
async fn a_wrong_model_file_keeps_it_not_serving_and_says_why() {
    let dir = model_dir("rmbg_wrong_size.onnx");
    let (_proc, url) = start(dir.path());
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = BackgroundRemovalClient::new(channel.clone());
    let mut info = client
        .get_info(GetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    for _ in 0..100 {
        if info.detail.contains("failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        info = client
            .get_info(GetInfoRequest {})
            .await
            .unwrap()
            .into_inner();
    }
    assert!(!info.ready);
    assert!(
        info.detail.contains(RMBG_ONNX) && info.detail.contains("1024"),
        "names the file and what was expected: {}",
        info.detail
    );
    tokio::time::sleep(t2_proto::server::READINESS_POLL * 2).await;
    assert_eq!(health(&channel).await, ServingStatus::NotServing);
}
