//! Starts the real `trellis2-dinov3` binary on a loopback port and checks its gRPC surface: health
//! NOT_SERVING (no models in this build), reflection, and UNIMPLEMENTED (never fake output).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use t2_proto::common::v1::{GetInfoRequest, Image};
use t2_proto::dinov3::v1::FeaturesRequest;
use t2_proto::dinov3::v1::dinov3_client::Dinov3Client;
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

fn start() -> (Proc, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trellis2-dinov3"))
        .args(["--listen", "127.0.0.1:0"])
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
async fn binary_serves_health_reflection_and_unimplemented() {
    let (_proc, url) = start();
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();

    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: t2_proto::service_names::DINOV3.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::NotServing);

    let mut client = Dinov3Client::new(channel.clone());
    let info = client
        .get_info(GetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!info.ready);
    assert!(info.detail.contains("not built"), "{}", info.detail);

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
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    assert!(err.message().contains("not built"), "{}", err.message());

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
