//! The `trellis2` binary as operators use it: tokens, the embedded `serve`, and the client
//! commands against it (real processes on a loopback port).

use std::path::Path;
use std::process::{Command, Output, Stdio};

mod common;

use common::{Proc, listening, ort, photo_jpeg};

const BIN: &str = env!("CARGO_BIN_EXE_trellis2");

fn trellis2(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("TRELLIS2_API_KEY")
        .env_remove("TRELLIS2_MODAL_KEY")
        .env_remove("TRELLIS2_MODAL_SECRET")
        .env("HOME", "/nonexistent");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

fn serve(data: &Path) -> (Proc, String) {
    serve_logging(data, Stdio::null())
}

fn serve_logging(data: &Path, stderr: impl Into<Stdio>) -> (Proc, String) {
    let child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--models",
            "demo",
            "--data",
        ])
        .arg(data)
        .env("RUST_LOG", "info")
        .env("TRELLIS2_LOG_FORMAT", "json")
        .env("TRELLIS2_DEVICE", "cpu")
        .env("TRELLIS2_PREVIEW_FRAMES", "4")
        .env("TRELLIS2_PREVIEW_RESOLUTION", "64")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let (proc, addr) = listening(child, "trellis2 serve");
    (proc, format!("http://{addr}"))
}

#[test]
fn tokens_add_prints_the_token_last_and_list_never_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = trellis2(&["tokens", "add", "ci", "--data", d], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let token = stdout.lines().last().unwrap().to_string();
    assert!(token.starts_with("t2_") && token.len() > 40, "{stdout}");

    let list = text(&trellis2(&["tokens", "list", "--data", d], &[]).stdout);
    assert!(list.starts_with("ci\tt2_"), "{list}");
    assert!(!list.contains(&token));

    let dup = trellis2(&["tokens", "add", "ci", "--data", d], &[]);
    assert!(!dup.status.success());
    assert!(
        trellis2(&["tokens", "revoke", "ci", "--data", d], &[])
            .status
            .success()
    );
    assert_eq!(
        text(&trellis2(&["tokens", "list", "--data", d], &[]).stdout),
        ""
    );
}

#[test]
fn serve_and_client_commands() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = trellis2(
        &["tokens", "add", "ci", "--data", data.to_str().unwrap()],
        &[],
    );
    let token = text(&out.stdout).lines().last().unwrap().to_string();
    let (_server, url) = serve(&data);

    // Health: live at once; ready (exit 0) once the demo models are loaded, 2 until then.
    let t = std::time::Instant::now();
    loop {
        let h = trellis2(&["health", "--url", &url], &[]);
        assert!(
            text(&h.stdout).contains("trellis2-api"),
            "{}",
            text(&h.stderr)
        );
        match h.status.code() {
            Some(0) => break,
            Some(2) if t.elapsed().as_secs() < 120 => {
                std::thread::sleep(std::time::Duration::from_millis(200))
            }
            c => panic!("health exit {c:?}: {}{}", text(&h.stdout), text(&h.stderr)),
        }
    }

    // Generate through the gateway (a job, followed to its end): a GLB comes back.
    let img = dir.path().join("in.jpg");
    std::fs::write(&img, photo_jpeg()).unwrap();
    let glb = dir.path().join("out.glb");
    let state = dir.path().join("state.bin");
    let args = [
        "generate",
        img.to_str().unwrap(),
        "-o",
        glb.to_str().unwrap(),
        "--url",
        &url,
        "--pipeline-type",
        "512",
        "--steps",
        "3",
        "--texture-size",
        "512",
        "--decimation-target",
        "20000",
        "--state",
        state.to_str().unwrap(),
    ];
    let g = trellis2(&args, &[("TRELLIS2_API_KEY", &token)]);
    assert!(g.status.success(), "{}", text(&g.stderr));
    assert_eq!(&std::fs::read(&glb).unwrap()[..4], b"glTF");
    // The saved state extracts again through /extract_glb.
    let again = dir.path().join("again.glb");
    let e = trellis2(
        &[
            "extract",
            state.to_str().unwrap(),
            "-o",
            again.to_str().unwrap(),
            "--url",
            &url,
            "--texture-size",
            "512",
            "--decimation-target",
            "20000",
        ],
        &[("TRELLIS2_API_KEY", &token)],
    );
    assert!(e.status.success(), "{}", text(&e.stderr));
    assert_eq!(&std::fs::read(&again).unwrap()[..4], b"glTF");

    // Legacy credentials work too; a wrong token is a clear 401.
    std::fs::remove_file(&glb).unwrap();
    let g = trellis2(
        &args,
        &[
            ("TRELLIS2_MODAL_KEY", "ci"),
            ("TRELLIS2_MODAL_SECRET", &token),
        ],
    );
    assert!(g.status.success(), "{}", text(&g.stderr));
    assert!(glb.exists());
    let g = trellis2(&args, &[("TRELLIS2_API_KEY", "t2_wrong")]);
    assert!(
        text(&g.stderr).contains("unauthorized"),
        "{}",
        text(&g.stderr)
    );

    // --local runs the same pipeline in this process.
    let local = dir.path().join("local.glb");
    let g = trellis2(
        &[
            "generate",
            img.to_str().unwrap(),
            "-o",
            local.to_str().unwrap(),
            "--local",
            "--models",
            "demo",
            "--data",
            data.to_str().unwrap(),
            "--pipeline-type",
            "512",
            "--steps",
            "3",
            "--texture-size",
            "512",
            "--decimation-target",
            "20000",
        ],
        &[("TRELLIS2_DEVICE", "cpu"), ("ORT_DYLIB_PATH", &ort())],
    );
    assert!(g.status.success(), "{}", text(&g.stderr));
    assert_eq!(&std::fs::read(&local).unwrap()[..4], b"glTF");

    // A model directory without the models: the error names what is missing.
    let empty = tempfile::tempdir().unwrap();
    let g = trellis2(
        &[
            "generate",
            img.to_str().unwrap(),
            "-o",
            local.to_str().unwrap(),
            "--local",
            "--models",
            empty.path().to_str().unwrap(),
        ],
        &[("TRELLIS2_DEVICE", "cpu")],
    );
    assert_eq!(g.status.code(), Some(1));
    assert!(
        text(&g.stderr).contains("pipeline.json"),
        "{}",
        text(&g.stderr)
    );
}

#[test]
fn an_unreachable_gateway_is_retried_then_reported() {
    // Port 9 (discard) on loopback: nothing listens, connections are refused.
    let h = trellis2(
        &["health", "--url", "http://127.0.0.1:9", "--retries", "2"],
        &[],
    );
    assert_eq!(h.status.code(), Some(1));
    let err = text(&h.stderr);
    assert!(err.contains("after 3 attempts"), "{err}");
}

#[test]
fn logs_are_json_with_request_and_trace_ids_and_never_contain_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("serve.log");
    let (server, url) = serve_logging(&data, std::fs::File::create(&log).unwrap());
    let secret = "t2_this-token-must-never-appear-in-logs-0123456789";
    let trace = "5b8aa5a2d2c872e8321cf37308d69df2";
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["-H", &format!("authorization: Bearer {secret}")])
        .args([
            "-H",
            &format!("traceparent: 00-{trace}-051581bf3cb55c13-01"),
        ])
        .args(["-H", "x-request-id: req-from-the-log-test"])
        .arg(format!("{url}/v1/status"))
        .output();
    let Ok(out) = out else {
        eprintln!("curl not installed: log check skipped");
        return;
    };
    assert_eq!(text(&out.stdout), "401");
    drop(server);
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(!logs.contains(secret), "token leaked into logs:\n{logs}");
    let line = logs
        .lines()
        .find(|l| l.contains("rejected bearer token"))
        .unwrap_or_else(|| panic!("no rejection logged:\n{logs}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["span"]["request_id"], "req-from-the-log-test", "{line}");
    assert_eq!(v["span"]["trace_id"], trace, "{line}");
    assert_eq!(v["fields"]["token"], "t2_t…", "{line}");
}

/// `models random` writes every checkpoint of the real set under its real name (what `models
/// check` and the loaders read), so only the RMBG ONNX model — not a checkpoint — is missing.
#[test]
fn models_random_writes_the_real_checkpoint_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("random");
    let out = out.to_str().unwrap();
    let r = trellis2(&["models", "random", "--out", out], &[]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(text(&r.stdout).contains("(scaled)"), "{}", text(&r.stdout));
    let c = trellis2(&["models", "check", out], &[]);
    let report = text(&c.stdout);
    assert_eq!(c.status.code(), Some(1), "{report}");
    let missing: Vec<&str> = report
        .lines()
        .filter_map(|l| l.trim().strip_prefix("missing: "))
        .collect();
    assert_eq!(missing, ["briaai/RMBG-2.0/onnx/model.onnx"], "{report}");
    assert!(!report.contains("does not load"), "{report}");
}
