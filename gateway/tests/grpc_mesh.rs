//! The gateway in front of the four services over real gRPC on loopback ports: `/ready`
//! follows each service's gRPC health (and flips when one stops), and a `traceparent` sent to
//! the gateway arrives in every service's span context. Service computations are test doubles
//! (`common::doubles`); the transport, health, tracing layers and streaming are the real ones.

mod common;

use std::time::Duration;

use axum::body::Body;
use common::doubles::Doubles;
use common::*;
use http::StatusCode;
use serde_json::{Value, json};
use t2_gateway::{Backends, UpstreamUrls};
use tokio::sync::oneshot;

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";

async fn listener() -> (tokio::net::TcpListener, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

fn stopper() -> (oneshot::Sender<()>, impl Future<Output = ()> + Send) {
    let (tx, rx) = oneshot::channel::<()>();
    (tx, async {
        let _ = rx.await;
    })
}

async fn ready(g: &TestGateway) -> (StatusCode, Value) {
    let r = g
        .send(http::Request::get("/ready").body(Body::empty()).unwrap())
        .await;
    (r.status, r.json())
}

async fn wait_ready(g: &TestGateway, want: StatusCode) -> Value {
    // Health follows readiness within READINESS_POLL (500 ms); allow several periods.
    for _ in 0..100 {
        let (status, v) = ready(g).await;
        if status == want {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/ready never became {want}: {:?}", ready(g).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_over_grpc_health_readiness_and_trace_propagation() {
    let exporter = telemetry();
    let d = Doubles::ready();
    let (l1, rmbg) = listener().await;
    let (l2, dinov3) = listener().await;
    let (l3, flow) = listener().await;
    let (l4, mesh) = listener().await;
    let (stop_rmbg, s1) = stopper();
    let (_stop2, s2) = stopper();
    let (_stop3, s3) = stopper();
    let (_stop4, s4) = stopper();
    let rmbg_server = tokio::spawn(t2_svc_rmbg::serve(d.clone(), l1, s1));
    tokio::spawn(t2_svc_dinov3::serve(d.clone(), l2, s2));
    tokio::spawn(t2_svc_flow::serve(d.clone(), l3, s3));
    tokio::spawn(t2_svc_mesh::serve(d.clone(), l4, s4));

    let backends = Backends::grpc(&UpstreamUrls {
        rmbg: vec![rmbg],
        dinov3: vec![dinov3],
        flow: vec![flow],
        mesh: vec![mesh],
    })
    .unwrap();
    let g = gateway_with(backends, tempfile::tempdir().unwrap()).await;

    // 1. Every upstream SERVING → ready.
    let v = wait_ready(&g, StatusCode::OK).await;
    assert_eq!(v["ready"], true);
    assert_eq!(v["services"].as_array().unwrap().len(), 4);

    // 2. One request, one trace: the caller's trace id reaches every service over gRPC.
    let req = g
        .request(http::Method::POST, "/generate")
        .header("content-type", "application/json")
        .header("traceparent", format!("00-{TRACE_ID}-b7ad6b7169203331-01"))
        .body(Body::from(
            json!({"image": b64(&png(8, 8)), "preview_video": true}).to_string(),
        ))
        .unwrap();
    let r = g.send(req).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert!(
        r.headers["traceparent"]
            .to_str()
            .unwrap()
            .contains(TRACE_ID)
    );
    let seen = d.trace_ids.lock().unwrap().clone();
    assert_eq!(
        seen.len(),
        4,
        "rmbg, dinov3, flow and mesh each saw one call: {seen:?}"
    );
    assert!(seen.iter().all(|t| t == TRACE_ID), "{seen:?}");
    // The exported server spans (created by the services' tower layer from gRPC metadata).
    let spans = exporter.get_finished_spans().unwrap();
    let services: Vec<String> = spans
        .iter()
        .filter(|s| s.name == "grpc.server" && s.span_context.trace_id().to_string() == TRACE_ID)
        .filter_map(|s| {
            s.attributes
                .iter()
                .find(|kv| kv.key.as_str() == "rpc.method")
                .map(|kv| kv.value.to_string())
        })
        .collect();
    for method in [
        "/trellis2.rmbg.v1.BackgroundRemoval/RemoveBackground",
        "/trellis2.dinov3.v1.Dinov3/Features",
        "/trellis2.flow.v1.Flow/Generate",
        "/trellis2.mesh.v1.Mesh/Extract",
    ] {
        assert!(
            services.iter().any(|m| m == method),
            "{method} not in {services:?}"
        );
    }

    // 3. A service stops → /ready flips to 503 and names it.
    stop_rmbg.send(()).unwrap();
    rmbg_server.await.unwrap().unwrap();
    let v = wait_ready(&g, StatusCode::SERVICE_UNAVAILABLE).await;
    let by_name = |n: &str| {
        v["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_name("rmbg")["ready"], false, "{v}");
    assert!(!by_name("rmbg")["detail"].as_str().unwrap().is_empty());
    assert_eq!(by_name("flow")["ready"], true, "{v}");

    // 4. Readiness also follows a service that is up but whose models are not loaded.
    d.ready.store(false, std::sync::atomic::Ordering::SeqCst);
    let v = wait_ready(&g, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(
        v["services"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["ready"] == false)
    );
}

/// Two flow replicas behind one gateway: generations are spread over both, `/ready` stays
/// ready while one is down (and says so), and generations keep succeeding on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_flow_replicas_share_the_work_and_cover_for_each_other() {
    let d = Doubles::ready();
    let flows = [Doubles::ready(), Doubles::ready()];
    let mut urls = Vec::new();
    let mut stops = Vec::new();
    let mut flow_servers = Vec::new();
    for i in 0..5 {
        let (l, url) = listener().await;
        let (stop, s) = stopper();
        let server = match i {
            0 => tokio::spawn(t2_svc_rmbg::serve(d.clone(), l, s)),
            1 => tokio::spawn(t2_svc_dinov3::serve(d.clone(), l, s)),
            2 | 3 => tokio::spawn(t2_svc_flow::serve(flows[i - 2].clone(), l, s)),
            _ => tokio::spawn(t2_svc_mesh::serve(d.clone(), l, s)),
        };
        if (2..4).contains(&i) {
            flow_servers.push(server);
        }
        urls.push(url);
        stops.push(stop);
    }
    let backends = Backends::grpc(&UpstreamUrls {
        rmbg: vec![urls[0].clone()],
        dinov3: vec![urls[1].clone()],
        flow: vec![urls[2].clone(), urls[3].clone()],
        mesh: vec![urls[4].clone()],
    })
    .unwrap();
    assert_eq!(backends.replicas.flow, 2);
    let g = gateway_with(backends, tempfile::tempdir().unwrap()).await;
    wait_ready(&g, StatusCode::OK).await;

    let generate = || {
        g.request(http::Method::POST, "/generate")
            .header("content-type", "application/json")
            .body(Body::from(json!({"image": b64(&png(8, 8))}).to_string()))
            .unwrap()
    };
    let served = || {
        flows
            .each_ref()
            .map(|f| f.flow_calls.load(std::sync::atomic::Ordering::SeqCst))
    };
    for _ in 0..4 {
        let r = g.send(generate()).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    }
    assert_eq!(served(), [2, 2], "an idle pool alternates");

    // Replica 0 stops: the gateway stays ready, names it, and serves from replica 1.
    stops.remove(2).send(()).unwrap();
    flow_servers.remove(0).await.unwrap().unwrap();
    let v = wait_ready(&g, StatusCode::OK).await;
    let flow = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "flow")
        .cloned()
        .unwrap();
    assert_eq!(flow["ready"], true, "{v}");
    for _ in 0..3 {
        let r = g.send(generate()).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    }
    assert_eq!(served(), [2, 5]);
    // /ready's probe marked replica 0 down, or a failed call did; either way it says which.
    let v = ready(&g).await.1;
    let detail = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "flow")
        .unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.starts_with("1 of 2 replicas ready") && detail.contains(&urls[2]),
        "{detail}"
    );
}

/// A job over real gRPC: the flow streams the shape latents ahead, the gateway opens the mesh
/// service's staged extraction with them and sends the texture latents on the same call when
/// the flow is done; the job's GLB comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_over_grpc_extracts_in_stages() {
    let d = Doubles::ready();
    let mut urls = Vec::new();
    let mut stops = Vec::new();
    for i in 0..4 {
        let (l, url) = listener().await;
        let (stop, s) = stopper();
        match i {
            0 => drop(tokio::spawn(t2_svc_rmbg::serve(d.clone(), l, s))),
            1 => drop(tokio::spawn(t2_svc_dinov3::serve(d.clone(), l, s))),
            2 => drop(tokio::spawn(t2_svc_flow::serve(d.clone(), l, s))),
            _ => drop(tokio::spawn(t2_svc_mesh::serve(d.clone(), l, s))),
        }
        urls.push(url);
        stops.push(stop);
    }
    let backends = Backends::grpc(&UpstreamUrls {
        rmbg: vec![urls[0].clone()],
        dinov3: vec![urls[1].clone()],
        flow: vec![urls[2].clone()],
        mesh: vec![urls[3].clone()],
    })
    .unwrap();
    let g = gateway_with(backends, tempfile::tempdir().unwrap()).await;
    wait_ready(&g, StatusCode::OK).await;
    let r = g
        .post_json(
            "/v1/jobs",
            &json!({"image": b64(&png(8, 8)), "preview_video": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json());
    let id = r.json()["job_id"].as_str().unwrap().to_string();
    let mut done = Value::Null;
    for _ in 0..400 {
        done = g.get(&format!("/v1/jobs/{id}")).await.json();
        if ["succeeded", "failed", "cancelled"].contains(&done["status"].as_str().unwrap()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        d.staged_extracts.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    let glb = g.get(&format!("/v1/jobs/{id}/artifacts/model.glb")).await;
    assert_eq!(&glb.body[..], common::doubles::GLB_BYTES);
    drop(stops);
}
