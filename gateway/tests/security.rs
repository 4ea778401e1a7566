//! Security properties of the gateway, each from the outside:
//! - no operation but `/health`, `/ready` and `/metrics` answers without a token — the
//!   operations are enumerated from the gateway's own OpenAPI document, so a new route is
//!   covered the day it is added (and the document's own `security` must agree);
//! - tokens never appear in logs or traces: the real `trellis2-gateway` binary at its most
//!   verbose, its stdout/stderr and every span it exports over OTLP grepped for the token,
//!   after requests that carry it in every place a client might put it;
//! - forged states are refused with `validation_error`;
//! - size limits hold before the body is read: over a real socket, a huge `Content-Length`
//!   is answered 413 (401 without a token) while the client has sent no body byte; huge
//!   headers are refused;
//! - path traversal in artifact names and job ids never reaches the file system.
//!
//! (The constant-time token comparison is unit-tested next to it, in `src/auth.rs`.)

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use common::doubles::Doubles;
use common::*;
use http::{Method, Request, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use serde_json::{Value, json};

/// Public operations per product.md §2 (`/openapi.json` is not among them: it is served
/// behind auth).
const PUBLIC: [&str; 3] = ["/health", "/ready", "/metrics"];

/// Every (method, path template) of the document.
fn operations(doc: &Value) -> Vec<(Method, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (m, _) in item.as_object().expect("path item") {
            if let Ok(method) = m.to_ascii_uppercase().parse::<Method>() {
                ops.push((method, path.clone()));
            }
        }
    }
    ops
}

/// A concrete URI for a template: ids and names that would exist.
fn concrete(template: &str) -> String {
    template
        .replace("{id}", "0123456789abcdef0123456789abcdef")
        .replace("{name}", "model.glb")
}

#[tokio::test]
async fn only_health_ready_and_metrics_answer_without_a_token() {
    let g = gateway().await;
    let doc = g.get("/openapi.json").await.json();
    let ops = operations(&doc);
    assert!(ops.len() >= 12, "too few operations documented: {ops:?}");
    let mut public_seen = BTreeSet::new();
    for (method, template) in &ops {
        let uri = concrete(template);
        // No credentials, wrong credentials of every accepted shape, and a plausible body.
        let attempts: [&[(&str, &str)]; 5] = [
            &[],
            &[(
                "authorization",
                "Bearer t2_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            )],
            &[("authorization", "Bearer ")],
            &[("authorization", &format!("Basic {}", g.token))],
            &[("modal-key", "tester"), ("modal-secret", "t2_wrong")],
        ];
        for headers in attempts {
            let mut req = Request::builder()
                .method(method.clone())
                .uri(&uri)
                .header("content-type", "application/json");
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let r = g.send(req.body(Body::from("{}")).unwrap()).await;
            if PUBLIC.contains(&template.as_str()) {
                assert!(
                    r.status == StatusCode::OK || r.status == StatusCode::SERVICE_UNAVAILABLE,
                    "{method} {uri} (public): {}",
                    r.status
                );
                public_seen.insert(template.clone());
            } else {
                r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
            }
        }
        // The document says the same: only the public operations waive security.
        let op = &doc["paths"][template][method.as_str().to_ascii_lowercase()];
        let waived = op["security"].as_array().is_some_and(|reqs| {
            reqs.iter()
                .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
        });
        assert_eq!(
            waived,
            PUBLIC.contains(&template.as_str()),
            "{method} {template}: documented security disagrees with the server"
        );
    }
    assert_eq!(public_seen, PUBLIC.iter().map(|s| s.to_string()).collect());

    // Undocumented methods on documented paths are refused too (no hidden handler).
    for (_, template) in &ops {
        let r = g
            .send(
                Request::builder()
                    .method(Method::PATCH)
                    .uri(concrete(template))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert!(
            r.status == StatusCode::METHOD_NOT_ALLOWED || r.status == StatusCode::UNAUTHORIZED,
            "PATCH {template}: {}",
            r.status
        );
    }
}

struct Receiver(tokio::sync::mpsc::UnboundedSender<ExportTraceServiceRequest>);

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

/// One blocking HTTP/1.1 exchange with `Connection: close`: the status and the raw response.
fn raw_http(addr: &str, head: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let status = std::str::from_utf8(&raw[..raw.len().min(12)])
        .ok()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, raw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_appear_in_logs_or_traces() {
    telemetry();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = format!("http://{}", listener.local_addr().unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Receiver(tx)))
            .serve_with_incoming(t2_proto::server::incoming(listener)),
    );
    let data = tempfile::tempdir().unwrap();
    let token = t2_gateway::auth::TokenStore::new(data.path())
        .add("leaktest")
        .unwrap();
    // Upstreams that refuse connections: the requests still pass auth, routing, validation,
    // the orchestrator and the error paths, which is where a token could be logged.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_trellis2-gateway"))
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .args(["--rmbg-url", &closed, "--dinov3-url", &closed])
        .args(["--flow-url", &closed, "--mesh-url", &closed])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector)
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .env_remove("OTEL_SDK_DISABLED")
        .env_remove("OTEL_TRACES_EXPORTER")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        // Everything every crate logs, in both formats over two runs would be nicer; the JSON
        // format carries span fields on every line, so it is the wider net.
        .env("RUST_LOG", "trace")
        .env("TRELLIS2_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let out_reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(a) = line.trim().strip_prefix("listening on ") {
                let _ = addr_tx.send(a.to_string());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let err_reader = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut all);
        all
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the gateway printed no `listening on` line");

    let png = b64(&png(8, 8));
    let generate = json!({"image": png, "preview_video": false}).to_string();
    let requests: Vec<(String, String, String)> = vec![
        // Accepted token, on an endpoint that reaches the (unreachable) upstreams.
        (
            "POST /generate".into(),
            format!("Authorization: Bearer {token}\r\n"),
            generate.clone(),
        ),
        (
            "GET /v1/status".into(),
            format!("Authorization: Bearer {token}\r\n"),
            String::new(),
        ),
        (
            "POST /v1/jobs".into(),
            format!("Authorization: Bearer {token}\r\n"),
            generate.clone(),
        ),
        // Legacy pair, right and swapped (a client that mixes the headers up).
        (
            "GET /v1/status".into(),
            format!("Modal-Key: leaktest\r\nModal-Secret: {token}\r\n"),
            String::new(),
        ),
        (
            "GET /v1/status".into(),
            format!("Modal-Key: {token}\r\nModal-Secret: leaktest\r\n"),
            String::new(),
        ),
        // Rejected variants of the real token.
        (
            "GET /v1/status".into(),
            format!("Authorization: Bearer {token}x\r\n"),
            String::new(),
        ),
        (
            "GET /v1/status".into(),
            format!("Authorization: bearer {token}\r\n"),
            String::new(),
        ),
        (
            "GET /v1/status".into(),
            format!("Authorization: Token {token}\r\n"),
            String::new(),
        ),
        // In the query string, where some clients put access tokens (the path and the body
        // are the client's data: a token pasted there is not presented as a credential and
        // may be echoed like any other value).
        (
            format!("GET /v1/status?access_token={token}"),
            String::new(),
            String::new(),
        ),
        (
            format!("POST /generate?token={token}"),
            format!("Authorization: Bearer {token}\r\n"),
            generate.clone(),
        ),
    ];
    let mut statuses = Vec::new();
    for (line, headers, body) in &requests {
        let head = format!(
            "{line} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n{headers}\r\n",
            body.len()
        );
        let (status, _) = raw_http(&addr, &head, body.as_bytes());
        statuses.push((
            line.split(' ').take(2).collect::<Vec<_>>().join(" "),
            status,
        ));
    }
    // The accepted ones were accepted (so the authenticated paths really ran).
    assert_eq!(statuses[1].1, 200, "{statuses:?}");
    assert_eq!(statuses[3].1, 200, "{statuses:?}");
    assert_eq!(statuses[4].1, 401, "{statuses:?}");

    // Let the batch exporter flush, then stop the gateway (SIGKILL: no graceful path needed).
    let mut spans_text = String::new();
    let mut spans = 0usize;
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Some(batch)) = tokio::time::timeout_at(until, rx.recv()).await {
        spans += batch
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum::<usize>();
        spans_text.push_str(&format!("{batch:?}\n"));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let logs = format!(
        "{}\n{}",
        out_reader.join().unwrap(),
        err_reader.join().unwrap()
    );
    assert!(
        spans > 0,
        "no span was exported: the trace check would be vacuous"
    );
    assert!(
        logs.lines().count() > 20,
        "too little was logged for the check to mean anything:\n{logs}"
    );
    // The random part after the fixed `t2_` prefix and the 4 characters a mask may show.
    let secret = &token[7..];
    for (what, text) in [("logs", &logs), ("exported spans", &spans_text)] {
        for (i, line) in text.lines().enumerate() {
            assert!(
                !line.contains(secret),
                "the token appears in the {what}, line {i}: {line}"
            );
        }
    }
}

#[tokio::test]
async fn forged_states_are_refused() {
    let g = gateway().await;
    let key = &g.state.state_key;
    let latents = t2_state::Latents {
        model_id: "microsoft/TRELLIS.2-4B".into(),
        resolution: 512,
        coords: vec![0, 1, 2, 3, 0, 4, 5, 6],
        shape_channels: 1,
        shape: vec![0.5, 1.5],
        tex_channels: 1,
        tex: vec![0.25, 0.75],
    };
    let good = t2_state::encode(&latents, key).unwrap();
    let mac_at = good.len() - t2_state::MAC_BYTES;
    let mut forgeries: Vec<(&str, Vec<u8>)> = Vec::new();
    // Payload changed, signature kept: another model id, another resolution, other latents.
    let mut f = good.clone();
    f[24] ^= 0x20;
    forgeries.push(("model id edited", f));
    let mut f = good.clone();
    f[12..16].copy_from_slice(&1536u32.to_le_bytes());
    forgeries.push(("resolution edited", f));
    let mut f = good.clone();
    f[mac_at - 1] ^= 0x80;
    forgeries.push(("latent edited", f));
    // Signatures that are not ours.
    let mut f = good.clone();
    f[mac_at..].fill(0);
    forgeries.push(("zero signature", f));
    let mut f = good.clone();
    f[mac_at] ^= 1;
    forgeries.push(("signature bit flip", f));
    forgeries.push((
        "signed with a zero key",
        t2_state::encode(&latents, &t2_state::StateKey::from_bytes([0; 32])).unwrap(),
    ));
    forgeries.push((
        "signed with another server's key",
        t2_state::encode(&latents, &t2_state::StateKey::generate()).unwrap(),
    ));
    // Structure games around a valid signature.
    let mut f = good.clone();
    f.extend_from_slice(b"trailing");
    forgeries.push(("bytes appended", f));
    let mut f = good[..mac_at].to_vec();
    f.extend_from_slice(&good[..t2_state::MAC_BYTES]);
    forgeries.push(("signature replaced by header bytes", f));
    forgeries.push(("signature alone", good[mac_at..].to_vec()));
    forgeries.push(("body without signature", good[..mac_at].to_vec()));
    let mut f = good.clone();
    f[8..10].copy_from_slice(&2u16.to_le_bytes());
    forgeries.push(("future version", f));
    forgeries.push(("empty", Vec::new()));
    for (what, state) in forgeries {
        let r = g
            .post_json("/extract_glb", &json!({"state": b64(&state)}))
            .await;
        let v = r.assert_error(StatusCode::BAD_REQUEST, "validation_error");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("state"),
            "{what}: {v}"
        );
    }
    // The genuine one passes verification (and reaches the unbuilt mesh service).
    let r = g
        .post_json("/extract_glb", &json!({"state": b64(&good)}))
        .await;
    r.assert_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
}

/// Serves `app` on a loopback port (the raw-socket tests need real HTTP framing).
async fn serve(g: &TestGateway) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = g.app.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Sends a request head only (no body byte follows) and returns the status the server answers
/// with while the body is still missing.
async fn status_without_body(addr: &str, head: String) -> u16 {
    let addr = addr.to_string();
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        let mut buf = [0u8; 512];
        let n = s
            .read(&mut buf)
            .expect("no answer while the body was still unsent: the server waited for it");
        std::str::from_utf8(&buf[..n])
            .ok()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_limits_hold_before_the_body_is_read() {
    let g = gateway().await;
    let addr = serve(&g).await;
    let doc = g.get("/openapi.json").await.json();
    let posts: Vec<String> = operations(&doc)
        .into_iter()
        .filter(|(m, _)| m == Method::POST)
        .map(|(_, p)| concrete(&p))
        .collect();
    assert!(posts.len() >= 4, "{posts:?}");
    for path in &posts {
        // 100 GB declared: answered at once, nothing read or allocated for it.
        let head = |auth: &str| {
            format!(
                "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
                 Content-Length: 100000000000\r\n{auth}\r\n"
            )
        };
        let t = Instant::now();
        let with_token = status_without_body(
            &addr,
            head(&format!("Authorization: Bearer {}\r\n", g.token)),
        )
        .await;
        assert_eq!(with_token, 413, "POST {path} with a token");
        let without = status_without_body(&addr, head("")).await;
        assert_eq!(without, 401, "POST {path} without a token");
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    // Headers: a 1 MiB header is refused (431) or the connection closed, never served.
    let big = "a".repeat(1 << 20);
    let head = format!(
        "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nX-Big: {big}\r\n\r\n"
    );
    let a = addr.clone();
    let (status, _) = tokio::task::spawn_blocking(move || raw_http(&a, &head, b""))
        .await
        .unwrap();
    assert!(status == 431 || status == 0, "a 1 MiB header got {status}");
    // And the server is still there.
    let a = addr.clone();
    let (status, _) = tokio::task::spawn_blocking(move || {
        raw_http(
            &a,
            &format!("GET /health HTTP/1.1\r\nHost: {a}\r\nConnection: close\r\n\r\n"),
            b"",
        )
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn traversal_in_artifact_names_and_job_ids_never_reaches_the_file_system() {
    let d = Doubles::ready();
    let g = gateway_with(d.backends(), tempfile::tempdir().unwrap()).await;
    let r = g
        .post_json(
            "/v1/jobs",
            &json!({"image": b64(&png(8, 8)), "preview_video": false}),
        )
        .await;
    let id = r.json()["job_id"].as_str().unwrap().to_string();
    let t = Instant::now();
    loop {
        let v = g.get(&format!("/v1/jobs/{id}")).await.json();
        if v["status"] == "succeeded" {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{v}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Secrets a traversal would be after, next to the artifacts directory.
    let data = g.dir.path();
    let key_hex = std::fs::read_to_string(data.join(t2_gateway::STATE_KEY_FILE)).unwrap();
    let tokens = std::fs::read(data.join(t2_gateway::auth::TOKENS_FILE)).unwrap();
    assert!(
        data.join("artifacts/jobs")
            .join(&id)
            .join("model.glb")
            .is_file()
    );
    let secrets = |body: &[u8]| {
        let text = String::from_utf8_lossy(body);
        text.contains(key_hex.trim()) || body.windows(tokens.len()).any(|w| w == tokens)
    };
    let names = [
        "..",
        "...",
        ".",
        "..%2F..%2F..%2Fstate.key",
        "%2e%2e%2f%2e%2e%2f%2e%2e%2fstate.key",
        "..%5C..%5C..%5Cstate.key",
        "%2Fetc%2Fpasswd",
        ".model.glb",
        "model.glb%00",
        "model.glb%2F..",
        "state.key",
        "tokens.json",
        "model.glb.",
        &"a".repeat(5000),
    ];
    for name in names {
        let r = g.get(&format!("/v1/jobs/{id}/artifacts/{name}")).await;
        assert!(
            r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::NOT_FOUND,
            "artifact {name:?}: {}",
            r.status
        );
        assert!(!secrets(&r.body), "artifact {name:?} leaked a secret");
    }
    // Unnormalised paths never match a route.
    for path in [
        format!("/v1/jobs/{id}/artifacts/../../../state.key"),
        format!("/v1/jobs/{id}/artifacts/model.glb/../../../../tokens.json"),
        "/v1/jobs/../../state.key/artifacts/model.glb".to_string(),
        "/v1/jobs/..%2F..%2F/artifacts/state.key".to_string(),
        "/v1/jobs/%2e%2e/artifacts/state.key".to_string(),
        "/v1/jobs/.%2e/artifacts/tokens.json".to_string(),
    ] {
        let r = g.get(&path).await;
        assert!(
            r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::NOT_FOUND,
            "{path}: {}",
            r.status
        );
        assert!(!secrets(&r.body), "{path} leaked a secret");
    }
    // The real artifact is served, so the rejections above are not a broken route.
    let r = g.get(&format!("/v1/jobs/{id}/artifacts/model.glb")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], common::doubles::GLB_BYTES);
    assert!(Path::new(&data.join("artifacts")).is_dir());
}
