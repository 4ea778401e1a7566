//! Faults the gateway must survive, each with the real component that fails:
//! - a stuck upstream: a real gRPC dinov3 server in this test that never answers → the
//!   per-stage deadline fires → 504 `timeout` (and a job fails with `timeout`), the call is
//!   dropped and the server sees the cancellation; a slow-but-in-time upstream still succeeds;
//! - a client disconnecting mid-`/generate` over a real socket: the flow sampler (real, demo
//!   models, CPU) stops within seconds;
//! - the data directory read-only at startup: the real `trellis2-gateway` binary refuses to
//!   start with an error naming the file, without a panic, and the job database is intact;
//! - the disk full while serving: the gateway binary under `RLIMIT_FSIZE` (set by `ulimit -f`
//!   in a shell that ignores SIGXFSZ, so writes past the limit fail with EFBIG the way a full
//!   disk fails them with ENOSPC — an unprivileged stand-in for a small filesystem, which
//!   would need root to mount): new jobs are refused with 503 `unavailable`, reads keep
//!   working, and after a restart without the limit the database passes SQLite's integrity
//!   check and holds every accepted job in a terminal state.
//!
//! The upstreams of the process tests are the test doubles served over real gRPC.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::demo::{demo_models, photo_jpeg};
use common::doubles::{Doubles, GLB_BYTES};
use common::*;
use http::StatusCode;
use serde_json::{Value, json};
use t2_gateway::{Backends, StageDeadlines};
use t2_proto::ServiceError;
use t2_proto::common::v1::{Image, ServiceInfo};
use t2_svc_dinov3::{FeatureExtractor, FeatureMap};
use t2_tensor::Device;
use tokio::sync::oneshot;

// --- a slow upstream -----------------------------------------------------------------------

/// A DINOv3 service that takes `delay` per call and records calls that were dropped before
/// they finished (the server side of a cancellation).
struct SlowFeatures {
    delay: Duration,
    started: AtomicUsize,
    dropped: AtomicUsize,
}

struct DropCounter<'a>(&'a AtomicUsize, bool);
impl Drop for DropCounter<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[async_trait::async_trait]
impl FeatureExtractor for SlowFeatures {
    async fn info(&self) -> ServiceInfo {
        ServiceInfo {
            service: "dinov3".into(),
            ready: true,
            ..Default::default()
        }
    }
    async fn features(
        &self,
        _: Image,
        resolutions: Vec<u32>,
    ) -> Result<Vec<FeatureMap>, ServiceError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let mut guard = DropCounter(&self.dropped, false);
        tokio::time::sleep(self.delay).await;
        guard.1 = true;
        Ok(resolutions
            .into_iter()
            .map(|r| FeatureMap {
                resolution: r,
                tokens: t2_proto::tensor::dense_f32(&[1, 4, 8], &[0.5; 32]),
            })
            .collect())
    }
}

async fn loopback() -> (tokio::net::TcpListener, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

/// Serves `imp` as a gRPC dinov3 service until the returned sender is dropped.
async fn serve_features(imp: Arc<dyn FeatureExtractor>) -> (String, oneshot::Sender<()>) {
    let (listener, url) = loopback().await;
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(t2_svc_dinov3::serve(imp, listener, async {
        let _ = rx.await;
    }));
    (url, tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_upstream_hits_the_stage_deadline_and_its_call_is_cancelled() {
    let d = Doubles::ready();
    let slow = Arc::new(SlowFeatures {
        delay: Duration::from_secs(3600),
        started: AtomicUsize::new(0),
        dropped: AtomicUsize::new(0),
    });
    let (url, _stop) = serve_features(slow.clone()).await;
    let mut backends = d.backends();
    backends.dinov3 = Arc::new(t2_svc_dinov3::RemoteFeatureExtractor::new(
        t2_proto::client::lazy_channel(&url).unwrap(),
    ));
    let g = gateway_with_config(backends, tempfile::tempdir().unwrap(), |c| {
        c.stage_deadlines = StageDeadlines {
            features: Duration::from_millis(1500),
            ..StageDeadlines::default()
        };
    })
    .await;
    let body = json!({"image": b64(&png(8, 8)), "preview_video": false});
    let t = Instant::now();
    let r = g.post_json("/generate", &body).await;
    let v = r.assert_error(StatusCode::GATEWAY_TIMEOUT, "timeout");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("features") && msg.contains("dinov3"), "{msg}");
    // The deadline, not the 15-minute request timeout, answered (bound generous for CI).
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    // The call was dropped on the gateway side and the server saw the cancellation.
    let t = Instant::now();
    while slow.dropped.load(Ordering::SeqCst) < 1 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the stuck call kept running on the server ({} started)",
            slow.started.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The same stage in a job: the job fails with `timeout`.
    let r = g.post_json("/v1/jobs", &body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json());
    let id = r.json()["job_id"].as_str().unwrap().to_string();
    let job = wait_job(&g, &id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "timeout", "{job}");

    // A slow upstream that answers within the deadline is not a timeout.
    let ok = Arc::new(SlowFeatures {
        delay: Duration::from_millis(300),
        started: AtomicUsize::new(0),
        dropped: AtomicUsize::new(0),
    });
    let (url, _stop2) = serve_features(ok.clone()).await;
    let mut backends = d.backends();
    backends.dinov3 = Arc::new(t2_svc_dinov3::RemoteFeatureExtractor::new(
        t2_proto::client::lazy_channel(&url).unwrap(),
    ));
    let g = gateway_with_config(backends, tempfile::tempdir().unwrap(), |c| {
        c.stage_deadlines.features = Duration::from_millis(1500);
    })
    .await;
    let r = g.post_json("/generate", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(ok.dropped.load(Ordering::SeqCst), 0);
}

async fn wait_job(g: &TestGateway, id: &str, within: Duration) -> Value {
    let t = Instant::now();
    loop {
        let v = g.get(&format!("/v1/jobs/{id}")).await.json();
        if ["succeeded", "failed", "cancelled"].contains(&v["status"].as_str().unwrap_or("")) {
            return v;
        }
        assert!(t.elapsed() < within, "job never ended: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// --- a client that goes away ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_disconnecting_mid_generate_stops_the_sampler() {
    // Real DINOv3 and flow on the demo models; the doubles cut out (no ONNX Runtime needed)
    // and would mesh.
    let models = demo_models();
    let flow = t2_svc_flow::FlowService::start(models, Device::Cpu);
    let d = Doubles::ready();
    let backends = Backends {
        rmbg: d.clone(),
        dinov3: t2_svc_dinov3::Dinov3Service::start(models, Device::Cpu),
        flow: flow.clone(),
        mesh: d.clone(),
        replicas: Default::default(),
    };
    let g = gateway_with(backends, tempfile::tempdir().unwrap()).await;
    let t = Instant::now();
    while g
        .send(
            http::Request::get("/ready")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .status
        != StatusCode::OK
    {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "models never loaded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = g.app.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });

    // A long generation: 100 steps per stage on the cascade.
    let mut body = json!({
        "image": b64(&photo_jpeg()),
        "pipeline_type": "1024_cascade",
        "preview_video": false,
    });
    for stage in ["ss", "shape_slat", "tex_slat"] {
        body[format!("{stage}_sampling_steps")] = json!(100);
    }
    let body = body.to_string();
    let mut socket = std::net::TcpStream::connect(&addr).unwrap();
    let head = format!(
        "POST /generate HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        g.token,
        body.len()
    );
    socket.write_all(head.as_bytes()).unwrap();
    socket.write_all(body.as_bytes()).unwrap();
    let t = Instant::now();
    while flow.running() == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the sampler never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Sampling now; the client goes away.
    socket.shutdown(std::net::Shutdown::Both).unwrap();
    drop(socket);
    let t = Instant::now();
    while flow.running() > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "the flow service kept sampling after the client disconnected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The gateway recorded it as cancelled, not as a failure.
    let metrics = g
        .send(
            http::Request::get("/metrics")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    let text = String::from_utf8_lossy(&metrics.body).to_string();
    assert!(
        !text.contains("status=\"500\""),
        "a disconnect was counted as a server error:\n{text}"
    );
}

// --- the job database's directory read-only, or full -----------------------------------------

/// The four test doubles served over real gRPC on loopback (the stop senders end them).
async fn doubles_mesh(d: &Arc<Doubles>) -> (Vec<String>, Vec<oneshot::Sender<()>>) {
    let mut urls = Vec::new();
    let mut stops = Vec::new();
    for i in 0..4 {
        let (listener, url) = loopback().await;
        let (tx, rx) = oneshot::channel::<()>();
        let stop = async {
            let _ = rx.await;
        };
        match i {
            0 => drop(tokio::spawn(t2_svc_rmbg::serve(d.clone(), listener, stop))),
            1 => drop(tokio::spawn(t2_svc_dinov3::serve(
                d.clone(),
                listener,
                stop,
            ))),
            2 => drop(tokio::spawn(t2_svc_flow::serve(d.clone(), listener, stop))),
            _ => drop(tokio::spawn(t2_svc_mesh::serve(d.clone(), listener, stop))),
        }
        urls.push(url);
        stops.push(tx);
    }
    (urls, stops)
}

/// A `trellis2-gateway` process; killed when dropped.
struct GatewayProc {
    child: Child,
    addr: String,
    stderr: Arc<Mutex<String>>,
}

impl Drop for GatewayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the gateway binary is run.
enum Launch {
    Plain,
    /// As another user (uid/gid 65534) so that file permissions bind even when the tests run
    /// as root.
    Unprivileged,
    /// Under `RLIMIT_FSIZE` of this many KiB, with SIGXFSZ ignored.
    FileSizeLimit(u64),
}

fn gateway_bin() -> &'static str {
    env!("CARGO_BIN_EXE_trellis2-gateway")
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Starts the gateway on `data` in front of `urls`; `Err` holds the exit status and stderr
/// of a gateway that exited instead of listening.
fn start_gateway(
    data: &Path,
    urls: &[String],
    launch: Launch,
    bin_dir: &Path,
) -> Result<GatewayProc, (std::process::ExitStatus, String)> {
    let args: Vec<String> = [
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
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut cmd = match launch {
        Launch::Plain => {
            let mut c = Command::new(gateway_bin());
            c.args(&args);
            c
        }
        Launch::Unprivileged => {
            // The binary must be reachable by that user: a copy in a world-readable folder.
            let bin = bin_dir.join("trellis2-gateway");
            if !bin.exists() {
                std::fs::copy(gateway_bin(), &bin).unwrap();
            }
            let mut c = Command::new(&bin);
            c.args(&args);
            if is_root() {
                use std::os::unix::process::CommandExt;
                c.uid(65534).gid(65534);
            }
            c
        }
        Launch::FileSizeLimit(kib) => {
            let mut c = Command::new("bash");
            c.arg("-c")
                .arg(format!("trap '' XFSZ; ulimit -f {kib}; exec \"$0\" \"$@\""))
                .arg(gateway_bin())
                .args(&args);
            c
        }
    };
    let mut child = cmd
        .env("RUST_LOG", "info")
        .env("OTEL_SDK_DISABLED", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr_pipe = child.stderr.take().unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let sink = stderr.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(a) = line.trim().strip_prefix("listening on ") {
                let _ = tx.send(a.to_string());
            }
        }
    });
    let t = Instant::now();
    loop {
        if let Ok(addr) = rx.recv_timeout(Duration::from_millis(100)) {
            return Ok(GatewayProc {
                child,
                addr,
                stderr,
            });
        }
        if let Ok(Some(status)) = child.try_wait() {
            std::thread::sleep(Duration::from_millis(100));
            let err = stderr.lock().unwrap().clone();
            return Err((status, err));
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the gateway neither listened nor exited"
        );
    }
}

/// One blocking HTTP/1.1 exchange with `Connection: close`: status and JSON body (or Null).
fn call(addr: &str, method: &str, path: &str, token: &str, body: Option<&Value>) -> (u16, Value) {
    let (status, raw) = call_raw(addr, method, path, token, body);
    (status, serde_json::from_slice(&raw).unwrap_or(Value::Null))
}

fn call_raw(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, Vec<u8>) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response head");
    let status = std::str::from_utf8(&raw[..split])
        .unwrap()
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap();
    (status, raw[split + 4..].to_vec())
}

fn wait_job_at(addr: &str, token: &str, id: &str, within: Duration) -> Value {
    let t = Instant::now();
    loop {
        let (_, v) = call(addr, "GET", &format!("/v1/jobs/{id}"), token, None);
        if ["succeeded", "failed", "cancelled"].contains(&v["status"].as_str().unwrap_or("")) {
            return v;
        }
        if t.elapsed() > within {
            return v;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn job_body() -> Value {
    json!({"image": b64(&png(8, 8)), "preview_video": false})
}

/// SQLite's own integrity check and the jobs table, read directly.
fn inspect_db(data: &Path) -> (String, Vec<(String, String)>) {
    let conn = rusqlite::Connection::open(data.join(t2_gateway::JOBS_DB)).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    let mut st = conn.prepare("SELECT id, status FROM jobs").unwrap();
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<Vec<(String, String)>, _>>()
        .unwrap();
    (integrity, rows)
}

fn set_read_only(path: &Path, read_only: bool) {
    let mode = |dir: bool| match (dir, read_only) {
        (true, true) => 0o555,
        (false, true) => 0o444,
        (true, false) => 0o755,
        (false, false) => 0o644,
    };
    use std::os::unix::fs::PermissionsExt;
    for entry in walk(path) {
        let dir = entry.is_dir();
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(mode(dir))).unwrap();
    }
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = vec![p.to_path_buf()];
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            out.extend(walk(&e.unwrap().path()));
        }
    }
    out
}

/// A scratch folder any user may enter (the unprivileged gateway needs to reach its data).
fn shared_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_data_directory_is_refused_at_startup_and_left_intact() {
    let d = Doubles::ready();
    let (urls, _stops) = doubles_mesh(&d).await;
    let scratch = shared_tempdir();
    let data = scratch.path().join("data");
    let token = t2_gateway::auth::TokenStore::new(&data)
        .add("tester")
        .unwrap();

    // A normal run leaves a database with one finished job and its artifacts.
    let (gw, id) = tokio::task::spawn_blocking({
        let (data, urls, token, dir) = (
            data.clone(),
            urls.clone(),
            token.clone(),
            scratch.path().to_path_buf(),
        );
        move || {
            let gw = start_gateway(&data, &urls, Launch::Plain, &dir).unwrap();
            let (status, created) = call(&gw.addr, "POST", "/v1/jobs", &token, Some(&job_body()));
            assert_eq!(status, 202, "{created}");
            let id = created["job_id"].as_str().unwrap().to_string();
            let done = wait_job_at(&gw.addr, &token, &id, Duration::from_secs(30));
            assert_eq!(done["status"], "succeeded", "{done}");
            (gw, id)
        }
    })
    .await
    .unwrap();
    drop(gw);
    let (integrity, before) = inspect_db(&data);
    assert_eq!(integrity, "ok");

    // Read-only: the gateway must refuse to start, say why and where, and not panic.
    set_read_only(&data, true);
    let refused = {
        let (data, urls, dir) = (data.clone(), urls.clone(), scratch.path().to_path_buf());
        tokio::task::spawn_blocking(move || {
            start_gateway(&data, &urls, Launch::Unprivileged, &dir).err()
        })
        .await
        .unwrap()
    };
    set_read_only(&data, false);
    let (status, stderr) = refused.expect("the gateway started on a read-only data directory");
    assert!(!status.success());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains(t2_gateway::JOBS_DB) || stderr.contains(t2_gateway::STATE_KEY_FILE),
        "the error does not name the file: {stderr}"
    );
    assert!(
        stderr.to_lowercase().contains("read") || stderr.contains("ermission"),
        "the error does not say the file is not writable: {stderr}"
    );

    // A fresh, empty read-only directory: refused the same way.
    let empty = scratch.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    set_read_only(&empty, true);
    let refused = {
        let (empty, urls, dir) = (empty.clone(), urls.clone(), scratch.path().to_path_buf());
        tokio::task::spawn_blocking(move || {
            start_gateway(&empty, &urls, Launch::Unprivileged, &dir).err()
        })
        .await
        .unwrap()
    };
    set_read_only(&empty, false);
    let (status, stderr) = refused.expect("the gateway started on a read-only empty directory");
    assert!(
        !status.success() && !stderr.contains("panicked"),
        "{stderr}"
    );

    // Nothing was damaged: same rows, integrity ok, and the job and its GLB are served again.
    let (integrity, after) = inspect_db(&data);
    assert_eq!(integrity, "ok");
    assert_eq!(before, after);
    let (data2, urls2, dir2) = (data.clone(), urls.clone(), scratch.path().to_path_buf());
    tokio::task::spawn_blocking(move || {
        let gw = start_gateway(&data2, &urls2, Launch::Plain, &dir2).unwrap();
        let (status, v) = call(&gw.addr, "GET", &format!("/v1/jobs/{id}"), &token, None);
        assert_eq!(
            (status, v["status"].as_str()),
            (200, Some("succeeded")),
            "{v}"
        );
        let (status, glb) = call_raw(
            &gw.addr,
            "GET",
            &format!("/v1/jobs/{id}/artifacts/model.glb"),
            &token,
            None,
        );
        assert_eq!(status, 200);
        assert_eq!(glb, GLB_BYTES);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_new_jobs_clearly_and_corrupts_nothing() {
    let d = Doubles::ready();
    let (urls, _stops) = doubles_mesh(&d).await;
    let scratch = shared_tempdir();
    let dir = scratch.path().to_path_buf();
    // Which write meets the limit first (a job's insert or its final-state update) depends on
    // where SQLite's pages and WAL frames fall, which the random job ids and timestamps move
    // from run to run. The defect under test is the final-state path, so fill fresh stores
    // under a few limits until one run has to keep a job's outcome in memory; every run
    // checks the refusal, the reads and the absence of panics.
    let mut hit_final_state = None;
    for (attempt, limit_kib) in [160u64, 168, 176, 184, 192, 200, 208, 216]
        .into_iter()
        .enumerate()
    {
        let data = scratch.path().join(format!("data-{attempt}"));
        let token = t2_gateway::auth::TokenStore::new(&data)
            .add("tester")
            .unwrap();
        let (accepted, refusal, kept_in_memory) = tokio::task::spawn_blocking({
            let (data, urls, token, dir) = (data.clone(), urls.clone(), token.clone(), dir.clone());
            move || fill_until_refused(&data, &urls, &token, &dir, limit_kib)
        })
        .await
        .unwrap();
        if kept_in_memory {
            hit_final_state = Some((data, token, accepted, refusal));
            break;
        }
        println!("limit {limit_kib} KiB: the limit hit a new job's insert first; next limit");
    }
    let (data, token, accepted, refusal) = hit_final_state
        .expect("in no run did a job's final state meet the full disk (8 limits tried)");
    let (status, body) = refusal;
    assert_eq!(
        status, 503,
        "a full job store must be `unavailable`: {body}"
    );
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(!accepted.is_empty(), "the limit hit before any job ran");

    // Restart without the limit: integrity ok, every accepted job present once and terminal.
    let (data2, urls2, token2, dir2) = (
        data.clone(),
        urls.clone(),
        token.clone(),
        scratch.path().to_path_buf(),
    );
    let accepted2 = accepted.clone();
    tokio::task::spawn_blocking(move || {
        let gw = start_gateway(&data2, &urls2, Launch::Plain, &dir2).unwrap();
        let (integrity, rows) = inspect_db(&data2);
        assert_eq!(integrity, "ok");
        for id in &accepted2 {
            let matching: Vec<_> = rows.iter().filter(|(r, _)| r == id).collect();
            assert_eq!(
                matching.len(),
                1,
                "job {id} in the store {} times",
                matching.len()
            );
            assert!(
                ["succeeded", "failed", "cancelled"].contains(&matching[0].1.as_str()),
                "job {id} is {} after the restart",
                matching[0].1
            );
        }
        // Jobs recorded as succeeded serve their GLB; outcomes that could not be recorded
        // before the process ended are failed with the restart reason.
        let mut recorded_ok = 0;
        for (id, status) in rows.iter().filter(|(id, _)| accepted2.contains(id)) {
            let (_, v) = call(&gw.addr, "GET", &format!("/v1/jobs/{id}"), &token2, None);
            if status == "succeeded" {
                recorded_ok += 1;
                let (code, glb) = call_raw(
                    &gw.addr,
                    "GET",
                    &format!("/v1/jobs/{id}/artifacts/model.glb"),
                    &token2,
                    None,
                );
                assert_eq!((code, glb.as_slice()), (200, GLB_BYTES));
            } else {
                let msg = v["error"]["message"].as_str().unwrap_or("");
                assert_eq!(msg, t2_gateway::RESTART_REASON, "job {id}: {v}");
            }
        }
        assert!(
            recorded_ok >= 1,
            "no job was recorded before the disk filled"
        );
        // And the gateway works again.
        let (status, created) = call(&gw.addr, "POST", "/v1/jobs", &token2, Some(&job_body()));
        assert_eq!(status, 202, "{created}");
        let id = created["job_id"].as_str().unwrap();
        let done = wait_job_at(&gw.addr, &token2, id, Duration::from_secs(30));
        assert_eq!(done["status"], "succeeded", "{done}");
    })
    .await
    .unwrap();
}

/// Starts a gateway under a `limit_kib` file-size limit and creates jobs one at a time until
/// one is refused. Returns the accepted ids, the refusal, and whether some job's outcome had
/// to be kept in memory (its final-state write met the limit).
fn fill_until_refused(
    data: &Path,
    urls: &[String],
    token: &str,
    dir: &Path,
    limit_kib: u64,
) -> (Vec<String>, (u16, Value), bool) {
    let gw = start_gateway(data, urls, Launch::FileSizeLimit(limit_kib), dir)
        .unwrap_or_else(|(s, e)| panic!("did not start under the limit ({s}): {e}"));
    let mut accepted = Vec::new();
    let mut last_good = None;
    let mut refusal = None;
    for _ in 0..500 {
        let (status, v) = call(&gw.addr, "POST", "/v1/jobs", token, Some(&job_body()));
        if status != 202 {
            refusal = Some((status, v));
            break;
        }
        let id = v["job_id"].as_str().unwrap().to_string();
        accepted.push(id.clone());
        // Even when its record cannot be updated any more, a job ends for its poller.
        let end = wait_job_at(&gw.addr, token, &id, Duration::from_secs(10));
        let status = end["status"].as_str().unwrap_or("").to_string();
        assert!(
            ["succeeded", "failed"].contains(&status.as_str()),
            "job {id} is {status} on a full disk: {end}"
        );
        println!("job {}: {status} {}", accepted.len(), end["error"]);
        if end["status"] == "succeeded" {
            last_good = Some(id);
        }
    }
    let refusal = refusal.expect("the file size limit never hit");
    // Reads keep working on a full disk.
    let (status, _) = call(&gw.addr, "GET", "/health", token, None);
    assert_eq!(status, 200);
    if let Some(id) = &last_good {
        let (status, v) = call(&gw.addr, "GET", &format!("/v1/jobs/{id}"), token, None);
        assert_eq!(
            (status, v["status"].as_str()),
            (200, Some("succeeded")),
            "{v}"
        );
    }
    let stderr = gw.stderr.lock().unwrap().clone();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let kept_in_memory = stderr.contains("retrying the job's final state");
    drop(gw);
    (accepted, refusal, kept_in_memory)
}
