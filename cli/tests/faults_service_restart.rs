//! A service process killed and restarted under load: the mesh as separate processes on
//! loopback (`trellis2 service rmbg|dinov3|flow|mesh`, `trellis2 serve --*-url …` as the
//! gateway) on the demo models (CPU), three clients calling `/generate` in a loop and a long
//! job sampling, then the flow process is SIGKILLed and started again on the same port.
//!
//! Asserted: every request gets exactly one answer, only 200, 503 `unavailable` (with
//! `Retry-After`) or 429 `overloaded`; the job in flight fails cleanly with `unavailable`
//! naming the flow service; `/ready` says flow is down, then ready again once the new process
//! has loaded its models (the gateway reconnects by itself); after that every `/generate`
//! succeeds and a new job runs to the end.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

mod common;

use common::{Proc, listening, photo_jpeg};

const BIN: &str = env!("CARGO_BIN_EXE_trellis2");
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Starts `trellis2 <args>` and returns it with the address of its `listening on` line.
fn start(args: &[&str]) -> (Proc, String) {
    let ort = std::env::var("ORT_DYLIB_PATH")
        .ok()
        .or_else(|| t2_svc_rmbg::compute::onnxruntime_library().map(|p| p.display().to_string()));
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("RUST_LOG", "warn")
        .env("OTEL_SDK_DISABLED", "true")
        .env("TRELLIS2_DEVICE", "cpu")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(ort) = ort {
        cmd.env("ORT_DYLIB_PATH", ort);
    }
    let child = cmd.spawn().unwrap();
    listening(child, &format!("{args:?}"))
}

fn generate_body(steps: u32, pipeline: &str) -> Value {
    json!({
        "image": B64.encode(photo_jpeg()),
        "pipeline_type": pipeline,
        "ss_sampling_steps": steps,
        "shape_slat_sampling_steps": steps,
        "tex_slat_sampling_steps": steps,
        "preview_video": false,
    })
}

/// A job: the generate fields and small export settings.
fn job_body(steps: u32, pipeline: &str) -> Value {
    let mut body = generate_body(steps, pipeline);
    body["export"] = json!({"texture_size": 512, "decimation_target": 20000});
    body
}

/// One answered (or unanswered) `/generate`.
#[derive(Debug, Clone)]
struct Call {
    started: Instant,
    status: u16,
    code: String,
    retry_after: bool,
}

#[derive(Clone)]
struct Http {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Http {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut rb = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = rb.send().await.expect("every request gets an answer");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn ready(&self) -> (u16, Value) {
        self.send(reqwest::Method::GET, "/ready", None).await
    }

    async fn wait_job(&self, id: &str, within: Duration) -> Value {
        let t = Instant::now();
        loop {
            let (_, v) = self
                .send(reqwest::Method::GET, &format!("/v1/jobs/{id}"), None)
                .await;
            if ["succeeded", "failed", "cancelled"].contains(&v["status"].as_str().unwrap_or("")) {
                return v;
            }
            assert!(t.elapsed() < within, "job never ended: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_killed_and_restarted_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let (models, data, token) = common::demo_models_and_token(BIN, dir.path());

    let m = models.to_str().unwrap();
    let flow_listen = format!("127.0.0.1:{}", free_port());
    let start_flow = || start(&["service", "flow", "--models", m, "--listen", &flow_listen]);
    let mut services = Vec::new();
    let mut urls = Vec::new();
    for name in ["rmbg", "dinov3"] {
        let (p, addr) = start(&["service", name, "--models", m]);
        services.push(p);
        urls.push(format!("http://{addr}"));
    }
    let (mut flow, addr) = start_flow();
    urls.push(format!("http://{addr}"));
    let (mesh, addr) = start(&["service", "mesh", "--models", m]);
    services.push(mesh);
    urls.push(format!("http://{addr}"));
    let (_gateway, addr) = start(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data",
        data.to_str().unwrap(),
        "--rmbg-url",
        &urls[0],
        "--dinov3-url",
        &urls[1],
        "--flow-url",
        &urls[2],
        "--mesh-url",
        &urls[3],
    ]);
    let http = Http {
        base: format!("http://{addr}"),
        token,
        client: reqwest::Client::new(),
    };
    let wait_ready = |http: Http| async move {
        let t = Instant::now();
        loop {
            let (status, v) = http.ready().await;
            if status == 200 {
                return Instant::now();
            }
            assert!(t.elapsed() < Duration::from_secs(120), "{v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    wait_ready(http.clone()).await;

    // Three clients calling /generate back to back until told to stop.
    let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (http, calls, stop) = (http.clone(), calls.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let body = generate_body(2, "512");
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let started = Instant::now();
                let r = http
                    .client
                    .post(format!("{}/generate", http.base))
                    .bearer_auth(&http.token)
                    .json(&body)
                    .send()
                    .await
                    .expect("every /generate gets an answer");
                let status = r.status().as_u16();
                let retry_after = r.headers().contains_key("retry-after");
                let v: Value = r.json().await.unwrap_or(Value::Null);
                let code = v["error"]["code"].as_str().unwrap_or("").to_string();
                calls.lock().unwrap().push(Call {
                    started,
                    status,
                    code,
                    retry_after,
                });
                if status != 200 {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }));
    }

    // The flow service runs one computation at a time, first come first served: a long job
    // that reached it before any generation would sample to its end while every generation
    // waited behind it, and never be seen sampling after a success. So the job starts only once
    // a generation has come back.
    let t = Instant::now();
    while !calls.lock().unwrap().iter().any(|c| c.status == 200) {
        assert!(
            t.elapsed() < Duration::from_secs(180),
            "no generation succeeded before the long job: {:?}",
            calls.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A long job (100 steps per stage on the cascade), killed under while it samples.
    let (status, created) = http
        .send(
            reqwest::Method::POST,
            "/v1/jobs",
            Some(&job_body(100, "1024_cascade")),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let long_id = created["job_id"].as_str().unwrap().to_string();
    // Kill only once the mesh is demonstrably serving: the long job is sampling and at least
    // one short generation has come back (checked again: the wait above is for the same).
    let t = Instant::now();
    let ok_before = loop {
        let (_, v) = http
            .send(reqwest::Method::GET, &format!("/v1/jobs/{long_id}"), None)
            .await;
        let ok = calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.status == 200)
            .count();
        // Any sampling stage: all three run in the flow service that is killed.
        let sampling = ["sparse_structure", "shape_slat", "tex_slat"]
            .iter()
            .any(|s| v["progress"]["stage"] == *s)
            && v["progress"]["step"].as_u64() >= Some(1);
        if sampling && ok >= 1 {
            break ok;
        }
        assert!(
            t.elapsed() < Duration::from_secs(180),
            "no generation succeeded ({ok}) or the job never sampled: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    flow.0.kill().unwrap();
    flow.0.wait().unwrap();
    let killed_at = Instant::now();
    let failed = http.wait_job(&long_id, Duration::from_secs(60)).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], "unavailable", "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("flow"),
        "{failed}"
    );
    let (status, ready) = http.ready().await;
    assert_eq!(status, 503, "{ready}");
    let flow_entry = ready["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "flow")
        .cloned()
        .unwrap();
    assert_eq!(flow_entry["ready"], false, "{ready}");
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The same service comes back on the same address; the gateway reconnects by itself.
    let (new_flow, new_addr) = start_flow();
    flow = new_flow;
    assert_eq!(new_addr, flow_listen);
    let ready_at = wait_ready(http.clone()).await;
    // Load continues after the restart until three more generations succeeded.
    let t = Instant::now();
    loop {
        let after = calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.started > ready_at && c.status == 200)
            .count();
        if after >= 3 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(180),
            "generations did not recover after the restart: {:?}",
            calls
                .lock()
                .unwrap()
                .iter()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, created) = http
        .send(reqwest::Method::POST, "/v1/jobs", Some(&job_body(2, "512")))
        .await;
    assert_eq!(status, 202, "{created}");
    let done = http
        .wait_job(
            created["job_id"].as_str().unwrap(),
            Duration::from_secs(180),
        )
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");

    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    drop(flow);
    let calls = calls.lock().unwrap().clone();
    assert!(
        ok_before >= 1
            && calls
                .iter()
                .any(|c| c.status == 200 && c.started < killed_at)
    );
    for c in &calls {
        match (c.status, c.code.as_str()) {
            (200, _) => {}
            (503, "unavailable") | (429, "overloaded") => {
                assert!(c.retry_after, "{c:?} without Retry-After")
            }
            _ => panic!("unexpected answer under a service restart: {c:?}"),
        }
        if c.started > ready_at {
            assert_eq!(
                c.status, 200,
                "a request after the service was ready again: {c:?}"
            );
        }
    }
    let unavailable = calls.iter().filter(|c| c.status == 503).count();
    println!(
        "{} generations: {} ok, {unavailable} unavailable while flow was down",
        calls.len(),
        calls.iter().filter(|c| c.status == 200).count()
    );
    assert!(Path::new(&data).join("jobs.sqlite3").exists());
}
