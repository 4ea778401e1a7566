//! Starts the real `trellis2-flow` binary on a loopback port and checks its gRPC surface: health
//! NOT_SERVING until its models (the demo set) are loaded, then SERVING; reflection; and
//! typed INVALID_ARGUMENTs for requests its models cannot take.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use t2_proto::common::v1::GetInfoRequest;
use t2_proto::flow::v1::flow_client::FlowClient;
use t2_proto::flow::v1::{GenerateRequest, PipelineType};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One demo model set per test binary.
fn demo() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("t2-svc-process-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        t2_svc_flow::shared::model_dir::write_demo_set(&d).unwrap();
        d
    })
}

async fn wait_serving(channel: &tonic::transport::Channel) {
    for _ in 0..300 {
        let status = HealthClient::new(channel.clone())
            .check(HealthCheckRequest {
                service: t2_proto::service_names::FLOW.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        if status == ServingStatus::Serving {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("never SERVING");
}

fn start() -> (Proc, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trellis2-flow"))
        .args(["--listen", "127.0.0.1:0", "--models"])
        .arg(demo())
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    (Proc(child), format!("http://{addr}"))
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
