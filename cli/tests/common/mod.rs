//! Helpers shared by the CLI's process tests: child processes that die with the test, the
//! `listening on ADDR` handshake, ONNX Runtime for children, and the test photo.
#![allow(dead_code)] // each test binary uses its own subset

use std::io::{BufRead, BufReader};
use std::process::Child;

/// A child process killed (and reaped) when dropped, so a failing test leaves none behind.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Takes a spawned `trellis2` (stdout piped) and returns it with the address of its first
/// stdout line, `listening on ADDR`.
pub fn listening(mut child: Child, what: &str) -> (Proc, String) {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout piped"))
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{what} printed {line:?}"))
        .to_string();
    (Proc(child), addr)
}

/// ONNX Runtime for a child process (whose HOME may hide the default install).
pub fn ort() -> String {
    t2_svc_rmbg::compute::onnxruntime_library()
        .expect("ONNX Runtime: run `eval \"$(scripts/setup-onnxruntime.sh)\"`")
        .display()
        .to_string()
}

/// The photo the demo models turn into a mesh through the background-removal path (the load
/// test's workload photo).
#[allow(unused_imports)] // not every test binary sends it
pub use t2_loadtest::workload::photo_jpeg;

/// Prepares a mesh under `dir` with `trellis2` at `bin`: the demo models in `dir/models` and a
/// token in `dir/data`. Returns (models, data, token).
pub fn demo_models_and_token(
    bin: &str,
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let models = dir.join("models");
    let data = dir.join("data");
    let out = std::process::Command::new(bin)
        .args(["models", "demo", "--out"])
        .arg(&models)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(bin)
        .args(["tokens", "add", "ci", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let token = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .to_string();
    (models, data, token)
}
