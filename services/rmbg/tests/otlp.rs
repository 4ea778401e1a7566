//! Across a process boundary: the real `trellis2-rmbg` binary, configured only by the standard
//! `OTEL_*` variables, exports its server span over OTLP/gRPC to a receiver in this test, in the
//! trace of the `traceparent` the caller put in the gRPC metadata.

use std::process::{Command, Stdio};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use t2_proto::common::v1::Image;
use t2_proto::rmbg::v1::RemoveBackgroundRequest;
use t2_proto::rmbg::v1::background_removal_client::BackgroundRemovalClient;
use tokio::sync::mpsc;

const TRACE_ID: &str = "7a3c1f0e9b8d4c2a1e0f9d8c7b6a5948";

struct Receiver(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[path = "../../shared/process_testing.rs"]
mod process_testing;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_spans_reach_an_otlp_collector_in_the_callers_trace() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Receiver(tx)))
            .serve_with_incoming(t2_proto::server::incoming(listener)),
    );

    // Any model directory will do: the span is made whatever the call's outcome.
    let models = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_trellis2-rmbg"))
        .args(["--listen", "127.0.0.1:0", "--models"])
        .arg(models.path())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}"))
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env_remove("OTEL_SERVICE_NAME")
        .env_remove("OTEL_SDK_DISABLED")
        .env_remove("OTEL_TRACES_EXPORTER")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (_proc, url) = process_testing::listening(child, "trellis2-rmbg");

    let mut client = BackgroundRemovalClient::connect(url).await.unwrap();
    let mut req = tonic::Request::new(RemoveBackgroundRequest {
        image: Some(Image {
            data: vec![1, 2, 3].into(),
            ..Default::default()
        }),
    });
    req.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-53995c3f42cd8ad8-01")
            .parse()
            .unwrap(),
    );
    // No model in that directory: the call is refused, and still traced.
    let err = client.remove_background(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");

    let want = hex_bytes(TRACE_ID);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let batch = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("no span with the caller's trace id reached the collector")
            .unwrap();
        for rs in batch.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .map(|v| format!("{:?}", v.value));
            for span in rs.scope_spans.iter().flat_map(|s| s.spans.iter()) {
                if span.name == "grpc.server" && span.trace_id == want {
                    let service = service.unwrap_or_default();
                    assert!(service.contains("trellis2-rmbg"), "{service}");
                    return;
                }
            }
        }
    }
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
