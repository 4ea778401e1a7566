//! Jobs: records persist across gateway restarts (unfinished ones are failed with a reason),
//! artifacts stream back byte-exact, owners are isolated, cancellation works, and the
//! /generate → /extract_glb state round trip holds. Compute comes from test doubles
//! (`common::doubles`) or is not built (503 `unavailable`).

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use base64::Engine;
use common::doubles::{Doubles, GLB_BYTES, MP4_BYTES};
use common::*;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use t2_gateway::Backends;
use t2_gateway::jobs::{JobStatus, JobStore, SqliteJobStore};

async fn wait_terminal(g: &TestGateway, id: &str) -> Value {
    for _ in 0..200 {
        let v = g.get(&format!("/v1/jobs/{id}")).await.json();
        if ["succeeded", "failed", "cancelled"].contains(&v["status"].as_str().unwrap()) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("job {id} did not finish");
}

/// Submits a job of `job_body()` and waits for its end: (id, final record).
async fn run_job(g: &TestGateway) -> (String, Value) {
    let id = g.post_json("/v1/jobs", &job_body()).await.json()["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = wait_terminal(g, &id).await;
    (id, done)
}

fn job_body() -> Value {
    json!({ "image": b64(&png(8, 8)), "export": {"texture_size": 1024} })
}

#[tokio::test]
async fn a_job_survives_a_gateway_restart_as_a_record() {
    let g = gateway().await;
    let r = g.post_json("/v1/jobs", &job_body()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json());
    let id = r.json()["job_id"].as_str().unwrap().to_string();
    assert_eq!(r.headers["location"], format!("/v1/jobs/{id}").as_str());
    // Compute is not built: the job fails with the public code, and says why.
    let done = wait_terminal(&g, &id).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["error"]["code"], "unavailable");
    assert!(
        done["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not built")
    );

    // A job that was running when the process died.
    let db = g.dir.path().join(t2_gateway::JOBS_DB);
    let store = SqliteJobStore::open(&db).unwrap();
    store.create("00aa", "tester").await.unwrap();
    store
        .transition("00aa", JobStatus::Running, None, &[])
        .await
        .unwrap();
    drop(store);

    let TestGateway {
        dir,
        token,
        app,
        state,
    } = g;
    drop((app, state));
    let mut g = gateway_with(Backends::not_built(), dir).await;
    g.token = token;
    let again = g.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json()["status"], "failed");
    assert_eq!(again.json()["error"], done["error"]);
    let interrupted = g.get("/v1/jobs/00aa").await.json();
    assert_eq!(interrupted["status"], "failed");
    assert_eq!(interrupted["error"]["message"], t2_gateway::RESTART_REASON);
}

#[tokio::test]
async fn artifacts_of_a_finished_job_stream_back_byte_exact() {
    let d = Doubles::ready();
    let g = gateway_with(d.backends(), tempfile::tempdir().unwrap()).await;
    let (id, done) = run_job(&g).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let names: Vec<&str> = done["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["state.bin", "model.glb", "preview.mp4"]);
    assert_eq!(done["progress"]["stage"], "bake");
    // The mesh service got the shape ahead of the texture latents.
    assert_eq!(d.staged_extracts.load(Ordering::SeqCst), 1);

    let glb = g.get(&format!("/v1/jobs/{id}/artifacts/model.glb")).await;
    assert_eq!(glb.status, StatusCode::OK);
    assert_eq!(glb.headers["content-type"], "model/gltf-binary");
    assert_eq!(&glb.body[..], GLB_BYTES);
    let mp4 = g.get(&format!("/v1/jobs/{id}/artifacts/preview.mp4")).await;
    assert_eq!(
        (&mp4.body[..], &mp4.headers["content-type"]),
        (MP4_BYTES, &"video/mp4".parse().unwrap())
    );
    // The stored state is a valid signed state of this server.
    let state = g.get(&format!("/v1/jobs/{id}/artifacts/state.bin")).await;
    t2_state::decode(&state.body, &g.state.state_key).unwrap();

    g.get(&format!("/v1/jobs/{id}/artifacts/other.glb"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    g.get(&format!("/v1/jobs/{id}/artifacts/%2E%2E"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "validation_error");
    g.get("/v1/jobs/ffff")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    // Another token's owner sees nothing.
    let other = t2_gateway::auth::TokenStore::new(g.dir.path())
        .add("other")
        .unwrap();
    let req = http::Request::get(format!("/v1/jobs/{id}"))
        .header("authorization", format!("Bearer {other}"))
        .body(Body::empty())
        .unwrap();
    g.send(req)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

/// A flow that fails after streaming the shape: the job fails with the flow's error (the
/// staged extraction it started is only stopped), and no artifact is stored.
#[tokio::test]
async fn a_flow_failing_after_the_shape_fails_the_job_with_its_own_error() {
    let d = Doubles::ready();
    d.fail_flow_after_shape.store(true, Ordering::SeqCst);
    let g = gateway_with(d.backends(), tempfile::tempdir().unwrap()).await;
    let (_, done) = run_job(&g).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error"]["code"], "generation_error", "{done}");
    assert!(
        done["error"]["message"]
            .as_str()
            .unwrap()
            .contains("texture stage"),
        "{done}"
    );
    assert_eq!(d.staged_extracts.load(Ordering::SeqCst), 1);
    assert_eq!(
        done["artifacts"].as_array().map_or(0, |a| a.len()),
        0,
        "{done}"
    );
}

/// A mesh service without the staged call (an older version): the job still makes its GLB,
/// with the plain extraction after the flow.
#[tokio::test]
async fn a_mesh_service_without_staged_extraction_still_serves_jobs() {
    let d = Doubles::ready();
    d.no_staged_extract.store(true, Ordering::SeqCst);
    let g = gateway_with(d.backends(), tempfile::tempdir().unwrap()).await;
    let (id, done) = run_job(&g).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(d.staged_extracts.load(Ordering::SeqCst), 1);
    let glb = g.get(&format!("/v1/jobs/{id}/artifacts/model.glb")).await;
    assert_eq!(&glb.body[..], GLB_BYTES);
}

/// A staged extraction that fails while the texture flow still runs fails the job at once
/// (the flow call is dropped, which cancels it), instead of after the flow.
#[tokio::test]
async fn a_failed_staged_extraction_fails_the_job_without_waiting_for_the_flow() {
    let d = Doubles::ready();
    d.hang_texture_flow.store(true, Ordering::SeqCst);
    d.fail_staged_extract.store(true, Ordering::SeqCst);
    let g = gateway_with(d.backends(), tempfile::tempdir().unwrap()).await;
    // wait_terminal gives up after 5 s; the texture flow never ends.
    let (_, done) = run_job(&g).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error"]["code"], "extraction_error", "{done}");
}

#[tokio::test]
async fn a_running_job_can_be_cancelled() {
    let d = Doubles::ready();
    d.hang_flow.store(true, Ordering::SeqCst);
    let g = gateway_with(d.backends(), tempfile::tempdir().unwrap()).await;
    let id = g.post_json("/v1/jobs", &job_body()).await.json()["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..200 {
        if g.get(&format!("/v1/jobs/{id}")).await.json()["status"] == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = g
        .send(
            g.request(Method::DELETE, &format!("/v1/jobs/{id}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "cancelled");
    // Cancelling again is harmless and keeps the status.
    let r = g
        .send(
            g.request(Method::DELETE, &format!("/v1/jobs/{id}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.json()["status"], "cancelled");
}

#[tokio::test]
async fn generate_then_extract_round_trips_the_signed_state() {
    let d = Doubles::ready();
    let g = gateway_with(d.backends(), tempfile::tempdir().unwrap()).await;
    let r = g
        .post_json("/generate", &json!({"image": b64(&png(8, 8)), "seed": 9}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    let v = r.json();
    assert_eq!(v["seed"], 9);
    assert_eq!(v["pipeline_type"], "1024_cascade");
    assert_eq!(v["stats"]["num_tokens"], 2);
    assert_eq!(v["request_id"], r.headers["x-request-id"].to_str().unwrap());
    let video = base64::engine::general_purpose::STANDARD
        .decode(v["video"].as_str().unwrap())
        .unwrap();
    assert_eq!(video, MP4_BYTES);

    let r = g
        .post_json(
            "/extract_glb",
            &json!({"state": v["state"], "texture_size": 2048}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    let out = r.json();
    let glb = base64::engine::general_purpose::STANDARD
        .decode(out["glb"].as_str().unwrap())
        .unwrap();
    assert_eq!(glb, GLB_BYTES);
    assert_eq!(out["stats"]["texture_size"], 2048);
}

#[tokio::test]
async fn a_slow_upstream_is_a_504_and_a_busy_gateway_a_429() {
    let d = Doubles::ready();
    d.hang_flow.store(true, Ordering::SeqCst);
    let g = gateway_with_config(d.backends(), tempfile::tempdir().unwrap(), |c| {
        c.request_timeout = Duration::from_millis(300);
        c.max_inflight = 1;
        c.max_queued_jobs = 0;
    })
    .await;
    let body = json!({"image": b64(&png(8, 8)), "preview_video": false});
    let r = g.post_json("/generate", &body).await;
    let v = r.assert_error(StatusCode::GATEWAY_TIMEOUT, "timeout");
    assert!(v["error"]["message"].as_str().unwrap().contains("within"));

    // While one generation holds the only slot, the next is refused with Retry-After.
    let app = g.app.clone();
    let token = g.token.clone();
    let first = tokio::spawn(async move {
        let req = http::Request::post("/generate")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        tower::ServiceExt::oneshot(app, req).await.unwrap().status()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = g
        .post_json(
            "/generate",
            &json!({"image": b64(&png(8, 8)), "preview_video": false}),
        )
        .await;
    r.assert_error(StatusCode::TOO_MANY_REQUESTS, "overloaded");
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(first.await.unwrap(), StatusCode::GATEWAY_TIMEOUT);

    // No room in the job queue.
    let r = g.post_json("/v1/jobs", &job_body()).await;
    r.assert_error(StatusCode::TOO_MANY_REQUESTS, "overloaded");
}
