//! Trace context survives HTTP extraction → span → gRPC metadata injection → server-side
//! extraction, and the exported spans carry the caller's trace id.

use std::convert::Infallible;

use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tower::{Layer, Service, ServiceExt};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[tokio::test]
async fn trace_id_flows_from_http_headers_through_grpc_metadata_to_the_server_span() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let _guard = t2_telemetry::install(provider, "test", t2_telemetry::LogFormat::Text).unwrap();

    // HTTP edge: the gateway's span adopts the caller's trace.
    let mut headers = http::HeaderMap::new();
    headers.insert("traceparent", TRACEPARENT.parse().unwrap());
    let edge = tracing::info_span!("http.request");
    t2_telemetry::http::set_remote_parent(&edge, &headers);
    assert_eq!(t2_telemetry::trace_id_of(&edge).as_deref(), Some(TRACE_ID));
    let echoed = t2_telemetry::http::traceparent_of(&edge).unwrap();
    assert!(echoed.starts_with(&format!("00-{TRACE_ID}-")), "{echoed}");

    // Client side: metadata injected inside the edge span names the same trace.
    let mut md = tonic::metadata::MetadataMap::new();
    t2_telemetry::with_request_id("req-1".into(), async {
        let _e = edge.enter();
        t2_telemetry::grpc::inject_current(&mut md);
    })
    .await;
    let tp = md.get("traceparent").unwrap().to_str().unwrap().to_string();
    assert!(tp.contains(TRACE_ID), "{tp}");
    assert_eq!(md.get("x-request-id").unwrap(), "req-1");

    // Server side: the layer extracts it; the handler sees the trace id and the request id.
    let inner = tower::service_fn(|_req: http::Request<()>| async {
        let span = tracing::Span::current();
        Ok::<_, Infallible>((
            t2_telemetry::trace_id_of(&span),
            t2_telemetry::current_request_id(),
        ))
    });
    let mut svc = t2_telemetry::grpc::GrpcServerTraceLayer::new("test").layer(inner);
    let mut req = http::Request::builder()
        .uri("/trellis2.test.v1.T/Call")
        .body(())
        .unwrap();
    *req.headers_mut() = md.into_headers();
    let (seen_trace, seen_request) = svc.ready().await.unwrap().call(req).await.unwrap();
    assert_eq!(seen_trace.as_deref(), Some(TRACE_ID));
    assert_eq!(seen_request.as_deref(), Some("req-1"));

    drop(edge);
    let spans = exporter.get_finished_spans().unwrap();
    let server = spans
        .iter()
        .find(|s| s.name == "grpc.server")
        .expect("server span exported");
    assert_eq!(server.span_context.trace_id().to_string(), TRACE_ID);
}
