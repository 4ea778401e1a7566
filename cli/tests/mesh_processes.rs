//! The mesh as separate processes on loopback — `trellis2 service rmbg|dinov3|flow|mesh` and
//! `trellis2 serve --*-url …` as the gateway — on the demo models (CPU):
//! - JPEG → `/generate` (with preview, so every service is reached) → `/extract_glb` → a GLB
//!   the Khronos validator accepts, and one trace id across all five processes (each exports
//!   its spans over OTLP to a receiver in this test);
//! - the same through `/v1/jobs` with polling and artifact download;
//! - killing the flow process mid-job fails that job with `unavailable`, the gateway keeps
//!   serving, and nothing is lost from the job store.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

mod common;

use common::{Proc, listening, ort, photo_jpeg};

const BIN: &str = env!("CARGO_BIN_EXE_trellis2");
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

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

/// Starts `trellis2 <args>` and returns it with the address of its `listening on` line.
fn start(args: &[&str], collector: &str) -> (Proc, String) {
    let child = Command::new(BIN)
        .args(args)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env_remove("OTEL_SERVICE_NAME")
        .env_remove("OTEL_SDK_DISABLED")
        .env_remove("OTEL_TRACES_EXPORTER")
        .env("RUST_LOG", "warn")
        .env("TRELLIS2_DEVICE", "cpu")
        .env("TRELLIS2_PREVIEW_FRAMES", "4")
        .env("TRELLIS2_PREVIEW_RESOLUTION", "64")
        .env("ORT_DYLIB_PATH", ort())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    listening(child, &format!("{args:?}"))
}

fn assert_valid_glb(glb: &[u8], name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/mesh/tests/validator");
    assert!(
        dir.join("node_modules/gltf-validator").is_dir(),
        "gltf-validator is not installed: run `npm ci --prefix {}`",
        dir.display()
    );
    let path = std::env::temp_dir().join(format!("t2-cli-{}-{name}.glb", std::process::id()));
    std::fs::write(&path, glb).unwrap();
    let out = Command::new("node")
        .arg(dir.join("validate.js"))
        .arg(&path)
        .output()
        .expect("`node` must be installed to run the glTF validator");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["issues"]["numErrors"], 0,
        "{name}: {}",
        report["issues"]["messages"]
    );
}

struct Http {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Http {
    async fn call(
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
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    async fn bytes(&self, path: &str) -> Vec<u8> {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.bytes().await.unwrap().to_vec()
    }
    async fn wait_job(&self, id: &str) -> Value {
        let t = Instant::now();
        loop {
            let (_, v) = self.get(&format!("/v1/jobs/{id}")).await;
            if ["succeeded", "failed", "cancelled"].contains(&v["status"].as_str().unwrap_or("")) {
                return v;
            }
            assert!(t.elapsed() < Duration::from_secs(300), "{v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn generate_body(image: &[u8]) -> Value {
    json!({
        "image": B64.encode(image),
        "seed": 42,
        "pipeline_type": "512",
        "ss_sampling_steps": 3,
        "shape_slat_sampling_steps": 3,
        "tex_slat_sampling_steps": 3,
        "preview_video": true,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mesh_as_separate_processes() {
    // The OTLP receiver every process exports to.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = format!("http://{}", listener.local_addr().unwrap());
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Receiver(tx)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let dir = tempfile::tempdir().unwrap();
    let (models, data, token) = common::demo_models_and_token(BIN, dir.path());

    let m = models.to_str().unwrap();
    let mut services = Vec::new();
    let mut urls = Vec::new();
    for name in ["rmbg", "dinov3", "flow", "mesh"] {
        let (p, addr) = start(&["service", name, "--models", m], &collector);
        services.push(p);
        urls.push(format!("http://{addr}"));
    }
    let (_gateway, addr) = start(
        &[
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
        ],
        &collector,
    );
    let http = Http {
        base: format!("http://{addr}"),
        token,
        client: reqwest::Client::new(),
    };
    let t = Instant::now();
    loop {
        let (status, v) = http.get("/ready").await;
        if status == 200 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(120), "{v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 1. /generate (with preview: all four services) → /extract_glb, in one trace.
    let r = http
        .client
        .post(format!("{}/generate", http.base))
        .bearer_auth(&http.token)
        .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
        .json(&generate_body(&photo_jpeg()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["traceparent"]
            .to_str()
            .unwrap()
            .contains(TRACE_ID)
    );
    let v: Value = r.json().await.unwrap();
    assert!(v["video"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    let (status, out) = http
        .post(
            "/extract_glb",
            &json!({"state": v["state"], "texture_size": 512, "decimation_target": 20000}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_valid_glb(
        &B64.decode(out["glb"].as_str().unwrap()).unwrap(),
        "processes",
    );

    let want: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&TRACE_ID[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let expected: BTreeSet<&str> = [
        "trellis2",
        "trellis2-rmbg",
        "trellis2-dinov3",
        "trellis2-flow",
        "trellis2-mesh",
    ]
    .into();
    let mut seen = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < expected.len() {
        let batch = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("spans of trace {TRACE_ID} came only from {seen:?}"))
            .unwrap();
        for rs in batch.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(
                        opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s),
                    ) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            if rs
                .scope_spans
                .iter()
                .flat_map(|s| s.spans.iter())
                .any(|s| s.trace_id == want)
            {
                seen.insert(service);
            }
        }
    }
    assert_eq!(
        seen.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        expected
    );

    // 2. The same through /v1/jobs: poll, then download the artifacts.
    let mut body = generate_body(&photo_jpeg());
    body["export"] = json!({"texture_size": 512, "decimation_target": 20000});
    let (status, created) = http.post("/v1/jobs", &body).await;
    assert_eq!(status, 202, "{created}");
    let done_id = created["job_id"].as_str().unwrap().to_string();
    let done = http.wait_job(&done_id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let glb = http
        .bytes(&format!("/v1/jobs/{done_id}/artifacts/model.glb"))
        .await;
    assert_valid_glb(&glb, "processes-job");
    let mp4 = http
        .bytes(&format!("/v1/jobs/{done_id}/artifacts/preview.mp4"))
        .await;
    assert_eq!(&mp4[4..8], b"ftyp");

    // 3. Kill the flow process while it samples a long job.
    let mut long = generate_body(&photo_jpeg());
    long["preview_video"] = json!(false);
    long["pipeline_type"] = json!("1024_cascade");
    for stage in ["ss", "shape_slat", "tex_slat"] {
        long[format!("{stage}_sampling_steps")] = json!(100);
    }
    let (_, created) = http.post("/v1/jobs", &long).await;
    let id = created["job_id"].as_str().unwrap().to_string();
    let t = Instant::now();
    loop {
        let (_, v) = http.get(&format!("/v1/jobs/{id}")).await;
        if v["progress"]["stage"] == "sparse_structure" && v["progress"]["step"].as_u64() >= Some(1)
        {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "never sampled: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let flow = &mut services[2].0;
    flow.kill().unwrap();
    flow.wait().unwrap();
    let failed = http.wait_job(&id).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], "unavailable", "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("flow"),
        "{failed}"
    );
    // The gateway keeps serving, says which service is gone, and its job store is intact.
    let (status, _) = http.get("/health").await;
    assert_eq!(status, 200);
    let (status, ready) = http.get("/ready").await;
    assert_eq!(status, 503, "{ready}");
    let flow_ready = ready["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "flow")
        .unwrap()
        .clone();
    assert_eq!(flow_ready["ready"], false, "{ready}");
    let (_, again) = http.get(&format!("/v1/jobs/{done_id}")).await;
    assert_eq!(again["status"], "succeeded");
    let glb_again = http
        .bytes(&format!("/v1/jobs/{done_id}/artifacts/model.glb"))
        .await;
    assert_eq!(glb_again, glb);
    let (status, _) = http.post("/v1/jobs", &body).await;
    assert_eq!(status, 202, "new jobs are still accepted");
}
