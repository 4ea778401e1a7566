//! The gateway under test: either `trellis2 serve --models demo` started here on loopback with a
//! fresh data directory and token (so the run can check the job database and the server's own
//! request count), or an existing gateway given by URL.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::LoadError;

/// What the workload talks to.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub token: String,
    /// The server process, for its memory (`/proc/<pid>/status`).
    pub pid: Option<u32>,
    /// The server's data directory, for the job database check.
    pub data_dir: Option<PathBuf>,
    /// True when this run started the server: its counters saw no other client.
    pub owned: bool,
}

/// How to start `trellis2 serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The `trellis2` binary.
    pub trellis2: PathBuf,
    /// A fresh data directory (tokens, jobs, artifacts, demo models).
    pub data_dir: PathBuf,
    /// Extra arguments after `serve` (e.g. queue bounds).
    pub extra_args: Vec<String>,
    /// Environment for the server (e.g. `TRELLIS2_DEVICE=cpu`).
    pub env: Vec<(String, String)>,
    /// Longest wait for `/ready` (the demo models are written and loaded first).
    pub ready_timeout: Duration,
}

impl ServeOptions {
    pub fn new(trellis2: PathBuf, data_dir: PathBuf) -> Self {
        Self {
            trellis2,
            data_dir,
            extra_args: Vec::new(),
            env: vec![
                ("TRELLIS2_DEVICE".into(), "cpu".into()),
                ("RUST_LOG".into(), "warn".into()),
            ],
            ready_timeout: Duration::from_secs(300),
        }
    }
}

/// The `trellis2` binary next to the running executable (`target/<profile>/`), where cargo
/// puts the workspace's binaries; test executables live one level down, in `deps/`.
pub fn sibling_trellis2() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?;
    if dir.ends_with("deps") {
        dir = dir.parent()?;
    }
    let bin = dir.join(format!("trellis2{}", std::env::consts::EXE_SUFFIX));
    bin.is_file().then_some(bin)
}

/// A running `trellis2 serve`; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct ServerUnderTest {
    child: Option<Child>,
    pub target: Target,
    /// The server's stderr (its logs).
    pub log: PathBuf,
    /// Process start to `/ready` answering 200.
    pub ready_after: Duration,
    /// Requests sent to the server before the workload (readiness polls).
    pub setup_requests: u64,
}

fn spawn_err(what: &str, e: impl std::fmt::Display) -> LoadError {
    LoadError::Server(format!("{what}: {e}"))
}

impl ServerUnderTest {
    /// Creates a token, starts the server on a free loopback port and waits until it is ready.
    pub async fn start(o: &ServeOptions) -> Result<Self, LoadError> {
        std::fs::create_dir_all(&o.data_dir).map_err(|e| spawn_err("data directory", e))?;
        let out = Command::new(&o.trellis2)
            .args(["tokens", "add", "loadtest", "--data"])
            .arg(&o.data_dir)
            .output()
            .map_err(|e| spawn_err(&format!("running {}", o.trellis2.display()), e))?;
        if !out.status.success() {
            return Err(spawn_err(
                "trellis2 tokens add",
                String::from_utf8_lossy(&out.stderr),
            ));
        }
        // The token is printed once, as the last line.
        let token = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string();

        let log = o.data_dir.join("server.log");
        let log_file = std::fs::File::create(&log).map_err(|e| spawn_err("server log", e))?;
        let started = Instant::now();
        let mut child = Command::new(&o.trellis2)
            .args([
                "serve",
                "--models",
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--data",
            ])
            .arg(&o.data_dir)
            .args(&o.extra_args)
            .envs(o.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|e| spawn_err("starting trellis2 serve", e))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the `listening on ADDR` line, then keeps draining stdout so the server never
        // blocks on a full pipe.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref().map_while(Result::ok) {
                if let Some(addr) = line.trim().strip_prefix("listening on ") {
                    let _ = tx.send(addr.to_string());
                    break;
                }
            }
            for _ in lines {}
        });
        let mut server = Self {
            child: Some(child),
            target: Target {
                base: String::new(),
                token,
                pid: None,
                data_dir: Some(o.data_dir.clone()),
                owned: true,
            },
            log,
            ready_after: Duration::ZERO,
            setup_requests: 0,
        };
        server.target.pid = server.child.as_ref().map(Child::id);
        let addr = loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(addr) => break addr,
                Err(_) if started.elapsed() > o.ready_timeout => {
                    return Err(server.died("no `listening on` line"));
                }
                Err(_) => {
                    if server.exited() {
                        return Err(server.died("exited before listening"));
                    }
                }
            }
        };
        server.target.base = format!("http://{addr}");

        let client = reqwest::Client::new();
        loop {
            server.setup_requests += 1;
            let ready = client
                .get(format!("{}/ready", server.target.base))
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                break;
            }
            if server.exited() {
                return Err(server.died("exited before ready"));
            }
            if started.elapsed() > o.ready_timeout {
                return Err(server.died("not ready in time"));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        server.ready_after = started.elapsed();
        Ok(server)
    }

    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    fn died(&mut self, why: &str) -> LoadError {
        self.kill();
        let tail = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        LoadError::Server(format!("trellis2 serve {why}; log:\n{}", tail.join("\n")))
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Graceful stop: SIGTERM (the server drains in-flight requests), SIGKILL after `grace`.
    /// Returns whether it exited by itself within `grace`.
    pub fn stop(&mut self, grace: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        // `kill -TERM` from procps: no libc binding needed for one signal.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let t = Instant::now();
        while t.elapsed() < grace {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for ServerUnderTest {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Resident memory of a process in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// A fresh data directory under `parent` named for this run.
pub fn fresh_data_dir(parent: &Path) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    parent.join(format!("t2-loadtest-{}-{stamp}", std::process::id()))
}
