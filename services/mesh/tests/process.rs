//! Starts the real `trellis2-mesh` binary on a loopback port and checks its gRPC surface: health
//! NOT_SERVING until its models (the demo set) are loaded, then SERVING; reflection; and
//! typed INVALID_ARGUMENTs for requests its models cannot take.

use t2_proto::common::v1::GetInfoRequest;
use t2_proto::mesh::v1::mesh_client::MeshClient;
use t2_proto::mesh::v1::{ExportParams, ExtractRequest, TextureFormat};

#[path = "../../shared/process_testing.rs"]
mod process_testing;

use process_testing::Proc;

fn start() -> (Proc, String) {
    let models = process_testing::demo_models(t2_svc_mesh::shared::model_dir::write_demo_set);
    let args = ["--models".as_ref(), models.as_os_str()];
    process_testing::start(env!("CARGO_BIN_EXE_trellis2-mesh"), &args)
}

async fn wait_serving(channel: &tonic::transport::Channel) {
    process_testing::wait_serving(channel, t2_proto::service_names::MESH).await
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

    let mut client = MeshClient::new(channel.clone());
    let info = client
        .get_info(GetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(info.ready, "{info:?}");
    assert!(info.load_time_seconds > 0.0, "{info:?}");

    let t = t2_proto::tensor::dense_f32(&[1, 2], &[0.0; 2]);
    let valid = ExtractRequest {
        latents: Some(t2_proto::common::v1::Latents {
            model_id: "m".into(),
            resolution: 1024,
            coords: Some(t2_proto::tensor::dense_i32(&[1, 4], &[0; 4])),
            shape_slat: Some(t.clone()),
            tex_slat: Some(t),
        }),
        params: Some(ExportParams {
            decimation_target: 100_000,
            texture_size: 1024,
            remesh: true,
            remesh_band: 1.0,
            remesh_project: 0.0,
            texture_format: TextureFormat::Png as i32,
        }),
        preview_video: false,
    };
    // A streamed call fails either before or as its first message.
    let err = match client.extract(valid.clone()).await {
        Err(e) => e,
        Ok(r) => r.into_inner().message().await.unwrap_err(),
    };
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("made by model"), "{}", err.message());

    let err = client
        .extract(ExtractRequest {
            latents: None,
            ..valid
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    let services = t2_proto::client::reflection_services(channel)
        .await
        .unwrap();
    assert!(
        services.contains(&t2_proto::service_names::MESH.to_string()),
        "{services:?}"
    );
    assert!(
        services.contains(&"grpc.health.v1.Health".to_string()),
        "{services:?}"
    );
}
