//! Starts the real `trellis2-flow` binary on a loopback port and checks its gRPC surface: health
//! NOT_SERVING until its models (the demo set) are loaded, then SERVING; reflection; and
//! typed INVALID_ARGUMENTs for requests its models cannot take.

use t2_proto::common::v1::GetInfoRequest;
use t2_proto::flow::v1::flow_client::FlowClient;
use t2_proto::flow::v1::{GenerateRequest, PipelineType};

#[path = "../../shared/process_testing.rs"]
mod process_testing;

use process_testing::Proc;

fn start() -> (Proc, String) {
    let models = process_testing::demo_models(t2_svc_flow::shared::model_dir::write_demo_set);
    let args = ["--models".as_ref(), models.as_os_str()];
    process_testing::start(env!("CARGO_BIN_EXE_trellis2-flow"), &args)
}

async fn wait_serving(channel: &tonic::transport::Channel) {
    process_testing::wait_serving(channel, t2_proto::service_names::FLOW).await
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

    let mut client = FlowClient::new(channel.clone());
    let info = client
        .get_info(GetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(info.ready, "{info:?}");
    assert!(info.load_time_seconds > 0.0, "{info:?}");

    let cond = t2_proto::tensor::dense_f32(&[1, 2, 4], &[0.0; 8]);
    let valid = GenerateRequest {
        cond_512: Some(cond.clone()),
        cond_1024: Some(cond),
        pipeline_type: PipelineType::PipelineType1024Cascade as i32,
        max_num_tokens: 49_152,
        ..Default::default()
    };
    // A streamed call fails either before or as its first message.
    let err = match client.generate(valid.clone()).await {
        Err(e) => e,
        Ok(r) => r.into_inner().message().await.unwrap_err(),
    };
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("cond_channels"), "{}", err.message());

    let err = client
        .generate(GenerateRequest {
            pipeline_type: 99,
            ..valid
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    let services = t2_proto::client::reflection_services(channel)
        .await
        .unwrap();
    assert!(
        services.contains(&t2_proto::service_names::FLOW.to_string()),
        "{services:?}"
    );
    assert!(
        services.contains(&"grpc.health.v1.Health".to_string()),
        "{services:?}"
    );
}
