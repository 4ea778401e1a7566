//! The whole pipeline over HTTP with the real services in process, on the demo models (CPU):
//! a JPEG without alpha (background removal path) and an RGBA PNG → `/generate` → `/extract_glb`
//! → a GLB the Khronos validator accepts; the same through `/v1/jobs` with polling and artifact
//! download; seeds reproduce the state byte for byte; cancelling a running job stops the
//! sampler within seconds; a state from another model set is refused.
//!
//! Small texture sizes, face targets, step counts and a 4-frame preview keep it fast: the
//! code paths are the production ones.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use common::demo::{assert_valid_glb, cutout_png, demo_models, photo_jpeg};
use common::*;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use t2_gateway::Backends;
use t2_svc_flow::FlowService;
use t2_svc_mesh::PreviewSettings;
use t2_tensor::Device;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The four real services, in process, with a handle on the flow service (to watch it stop).
async fn real_gateway() -> (TestGateway, Arc<FlowService>) {
    let dir = demo_models();
    let flow = FlowService::start(dir, Device::Cpu);
    let backends = Backends {
        rmbg: t2_svc_rmbg::RmbgService::start(dir, t2_svc_rmbg::Provider::Cpu),
        dinov3: t2_svc_dinov3::Dinov3Service::start(dir, Device::Cpu),
        flow: flow.clone(),
        mesh: t2_svc_mesh::MeshService::start(
            dir,
            Device::Cpu,
            PreviewSettings {
                frames: 4,
                resolution: 64,
            },
        ),
        replicas: Default::default(),
    };
    let g = gateway_with(backends, tempfile::tempdir().unwrap()).await;
    let t = Instant::now();
    loop {
        let r = g
            .send(
                http::Request::get("/ready")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await;
        if r.status == StatusCode::OK {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(120), "{}", r.json());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (g, flow)
}

fn generate_body(image: &[u8], seed: u64) -> Value {
    json!({
        "image": b64(image),
        "seed": seed,
        "pipeline_type": "512",
        "ss_sampling_steps": 3,
        "shape_slat_sampling_steps": 3,
        "tex_slat_sampling_steps": 3,
        "preview_video": false,
    })
}

fn export() -> Value {
    json!({"texture_size": 512, "decimation_target": 20000})
}

async fn generate_and_extract(g: &TestGateway, image: &[u8], name: &str) -> String {
    let r = g.post_json("/generate", &generate_body(image, 42)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    let v = r.json();
    assert_eq!(v["resolution"], 512);
    assert!(v["stats"]["num_tokens"].as_u64().unwrap() > 0, "{v}");
    let mut body = export();
    body["state"] = v["state"].clone();
    let r = g.post_json("/extract_glb", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    let out = r.json();
    let glb = B64.decode(out["glb"].as_str().unwrap()).unwrap();
    assert!(out["stats"]["faces"].as_u64().unwrap() > 0, "{out}");
    assert_eq!(out["stats"]["texture_size"], 512);
    assert_valid_glb(&glb, name);
    v["state"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_become_valid_glbs_and_seeds_reproduce_the_state() {
    let (g, _) = real_gateway().await;
    let status = g.get("/v1/status").await.json();
    for s in status["services"].as_array().unwrap() {
        assert_eq!(s["status"], "healthy", "{status}");
        assert!(s["load_time_seconds"].as_f64().unwrap() > 0.0, "{status}");
    }

    let jpeg = photo_jpeg();
    let state_a = generate_and_extract(&g, &jpeg, "jpeg").await;
    generate_and_extract(&g, &cutout_png(), "rgba").await;

    // Same seed → the same state, byte for byte; another seed → another state.
    let again = g
        .post_json("/generate", &generate_body(&jpeg, 42))
        .await
        .json();
    assert_eq!(again["state"].as_str().unwrap(), state_a);
    let other = g
        .post_json("/generate", &generate_body(&jpeg, 43))
        .await
        .json();
    assert_ne!(other["state"].as_str().unwrap(), state_a);

    // The preview video comes back with /generate when asked.
    let mut body = generate_body(&jpeg, 42);
    body["preview_video"] = json!(true);
    let v = g.post_json("/generate", &body).await.json();
    let mp4 = B64.decode(v["video"].as_str().expect("a video")).unwrap();
    assert_eq!(&mp4[4..8], b"ftyp");
    assert!(v["timings"]["video_s"].as_f64().unwrap() > 0.0);
}

async fn wait_terminal(g: &TestGateway, id: &str, within: Duration) -> Value {
    let t = Instant::now();
    loop {
        let v = g.get(&format!("/v1/jobs/{id}")).await.json();
        if ["succeeded", "failed", "cancelled"].contains(&v["status"].as_str().unwrap()) {
            return v;
        }
        assert!(t.elapsed() < within, "job {id} still {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_to_artifacts_and_a_cancelled_job_stops_the_sampler() {
    let (g, flow) = real_gateway().await;
    let mut body = generate_body(&photo_jpeg(), 42);
    body["preview_video"] = json!(true);
    body["export"] = export();
    let r = g.post_json("/v1/jobs", &body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json());
    let id = r.json()["job_id"].as_str().unwrap().to_string();
    // Poll: the progress moves through the stages.
    let mut stages = Vec::new();
    let t = Instant::now();
    let done = loop {
        let v = g.get(&format!("/v1/jobs/{id}")).await.json();
        if let Some(s) = v["progress"]["stage"].as_str()
            && stages.last().map(String::as_str) != Some(s)
        {
            stages.push(s.to_string());
        }
        if ["succeeded", "failed", "cancelled"].contains(&v["status"].as_str().unwrap()) {
            break v;
        }
        assert!(t.elapsed() < Duration::from_secs(300), "{v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(stages.len() >= 2, "progress seen: {stages:?}");
    let glb = g.get(&format!("/v1/jobs/{id}/artifacts/model.glb")).await;
    assert_eq!(glb.status, StatusCode::OK);
    assert_eq!(glb.headers["content-type"], "model/gltf-binary");
    assert_valid_glb(&glb.body, "job");
    let mp4 = g.get(&format!("/v1/jobs/{id}/artifacts/preview.mp4")).await;
    assert_eq!(&mp4.body[4..8], b"ftyp");
    let state = g.get(&format!("/v1/jobs/{id}/artifacts/state.bin")).await;
    t2_state::decode(&state.body, &g.state.state_key).unwrap();

    // A long job (100 steps per stage on the 1024 cascade), cancelled while it samples.
    let mut long = generate_body(&cutout_png(), 5);
    long["pipeline_type"] = json!("1024_cascade");
    for stage in ["ss", "shape_slat", "tex_slat"] {
        long[format!("{stage}_sampling_steps")] = json!(100);
    }
    let id = g.post_json("/v1/jobs", &long).await.json()["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = Instant::now();
    loop {
        let v = g.get(&format!("/v1/jobs/{id}")).await.json();
        if v["progress"]["stage"] == "sparse_structure" && v["progress"]["step"].as_u64() >= Some(1)
        {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "never sampled: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(flow.running(), 1);
    let r = g
        .send(
            g.request(Method::DELETE, &format!("/v1/jobs/{id}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.json()["status"], "cancelled");
    // The sampler checks between steps: it stops within a step (well under a second here).
    let t = Instant::now();
    while flow.running() > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the flow service kept sampling after the cancel"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let v = wait_terminal(&g, &id, Duration::from_secs(5)).await;
    assert_eq!(v["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_of_another_model_set_is_a_validation_error() {
    let (g, _) = real_gateway().await;
    // Signed by this server, but made by other decoders: the mesh service refuses it.
    let n = 2;
    let foreign = t2_state::Latents {
        model_id: "microsoft/TRELLIS.2-4B@0123456789ab".into(),
        resolution: 512,
        coords: vec![0, 1, 2, 3, 0, 1, 2, 4],
        shape_channels: 32,
        shape: vec![0.0; n * 32],
        tex_channels: 32,
        tex: vec![0.0; n * 32],
    };
    let state = t2_state::encode(&foreign, &g.state.state_key).unwrap();
    let mut body = export();
    body["state"] = json!(B64.encode(state));
    let r = g.post_json("/extract_glb", &body).await;
    let v = r.assert_error(StatusCode::BAD_REQUEST, "validation_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("made by model"),
        "{v}"
    );
}
