//! Test support shared by the services' process tests (each includes this file with
//! `#[path]`): start a service binary on a loopback port, wait for its health to turn SERVING.

#![allow(dead_code)] // each test binary uses its own subset

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A child process killed (and reaped) when dropped, so a failing test leaves none behind.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One demo model set per test binary, written by `write` on first use.
pub fn demo_models<E: std::fmt::Debug>(write: fn(&Path) -> Result<(), E>) -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("t2-svc-process-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        write(&d).unwrap();
        d
    })
}

/// Starts `bin --listen 127.0.0.1:0 <args…>` and returns it with the URL of the address its
/// first stdout line (`listening on ADDR`) names.
pub fn start(bin: &str, args: &[&std::ffi::OsStr]) -> (Proc, String) {
    let child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    listening(child, bin)
}

/// Takes a spawned service (stdout piped) and returns it with the URL of the address its first
/// stdout line, `listening on ADDR`, names.
pub fn listening(mut child: Child, what: &str) -> (Proc, String) {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{what} printed {line:?}, not `listening on ADDR`"))
        .to_string();
    (Proc(child), format!("http://{addr}"))
}

/// The service's gRPC health status.
pub async fn health(channel: &tonic::transport::Channel, service: &str) -> ServingStatus {
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status()
}

/// Polls health until SERVING (30 s at most: the demo models load in well under a second).
pub async fn wait_serving(channel: &tonic::transport::Channel, service: &str) {
    for _ in 0..300 {
        if health(channel, service).await == ServingStatus::Serving {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{service} never SERVING");
}
