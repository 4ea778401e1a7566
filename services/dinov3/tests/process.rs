//! Starts the real `trellis2-dinov3` binary on a loopback port and checks its gRPC surface: health
//! NOT_SERVING until its models (the demo set) are loaded, then SERVING; reflection; and
//! typed INVALID_ARGUMENTs for requests its models cannot take.

use t2_proto::common::v1::{GetInfoRequest, Image};
use t2_proto::dinov3::v1::FeaturesRequest;
use t2_proto::dinov3::v1::dinov3_client::Dinov3Client;

#[path = "../../shared/process_testing.rs"]
mod process_testing;

use process_testing::Proc;

fn start() -> (Proc, String) {
    let models = process_testing::demo_models(t2_svc_dinov3::shared::model_dir::write_demo_set);
    let args = ["--models".as_ref(), models.as_os_str()];
    process_testing::start(env!("CARGO_BIN_EXE_trellis2-dinov3"), &args)
}

async fn wait_serving(channel: &tonic::transport::Channel) {
    process_testing::wait_serving(channel, t2_proto::service_names::DINOV3).await
}

#[tokio::test]
async fn binary_serves_health_reflection_and_typed_errors() {
    let (_proc, url) = start();
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();

    wait_serving(&channel).await;

    let mut client = Dinov3Client::new(channel.clone());
    let info = client
        .get_info(GetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(info.ready, "{info:?}");
    assert!(info.load_time_seconds > 0.0, "{info:?}");

    let err = client
        .features(FeaturesRequest {
            image: Some(Image {
                data: vec![1, 2, 3].into(),
                ..Default::default()
            }),
            resolutions: vec![512, 1024],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("unsupported image format"),
        "{}",
        err.message()
    );

    // A real call: the feature maps stream in chunks and reassemble.
    let mut png = Vec::new();
    image::RgbImage::from_pixel(48, 40, image::Rgb([120, 60, 30]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    use t2_svc_dinov3::FeatureExtractor;
    let maps = t2_svc_dinov3::RemoteFeatureExtractor::new(channel.clone())
        .features(
            Image {
                data: png.into(),
                ..Default::default()
            },
            vec![512, 1024],
        )
        .await
        .unwrap();
    assert_eq!(maps[0].tokens.shape, [1, 1029, 64]);
    assert_eq!(maps[1].tokens.shape, [1, 4101, 64]);

    let err = client
        .features(FeaturesRequest {
            image: None,
            resolutions: vec![512],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    let services = t2_proto::client::reflection_services(channel)
        .await
        .unwrap();
    assert!(
        services.contains(&t2_proto::service_names::DINOV3.to_string()),
        "{services:?}"
    );
    assert!(
        services.contains(&"grpc.health.v1.Health".to_string()),
        "{services:?}"
    );
}
