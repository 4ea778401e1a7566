//! `trellis2-loadtest`: a bounded, loopback-only load test of a trellis2 gateway.
//!
//! N clients run a weighted mix of `/generate`, `/v1/jobs` (submit, poll, download) and cheap
//! endpoints for at most M seconds (and at most K operations). The run reports throughput,
//! latency percentiles, answers by status and code, the server's memory over time and how
//! often backpressure (`overloaded` + `Retry-After`) answered; and it checks the invariants:
//! every request got exactly one answer, carrying its own request id; every accepted job
//! reached a terminal state and is in the job store exactly once; the server counted exactly
//! the requests the clients sent (when this run started the server, so nobody else talked to
//! it).

pub mod report;
pub mod server;
pub mod workload;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub use report::Report;
pub use server::{ServeOptions, ServerUnderTest, Target};
pub use workload::{LoadConfig, Mix, OpKind};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("server under test: {0}")]
    Server(String),
    #[error("only loopback targets are allowed, not {0}")]
    NotLoopback(String),
    #[error("RELIABILITY.md: {0}")]
    Report(String),
}

/// Refuses anything but a loopback URL: this tool generates load and must never point at a
/// shared service by accident.
pub fn check_loopback(url: &str) -> Result<(), LoadError> {
    let host = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split(['/', '?']).next())
        .map(|authority| match authority.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => authority,
        });
    let loopback = host.is_some_and(|h| {
        h == "localhost"
            || h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    if loopback {
        Ok(())
    } else {
        Err(LoadError::NotLoopback(url.to_string()))
    }
}

/// Memory samples of the server during the run: (seconds since the start, RSS bytes).
type RssSamples = Vec<(f64, u64)>;

/// Runs the workload against `target` and checks what can be checked from outside.
/// `setup_requests` are requests already sent to a server this run started (its readiness
/// polls), so the server-side count can be compared.
pub async fn run(target: Target, config: LoadConfig, setup_requests: u64) -> Report {
    let pid = target.pid;
    let run = Arc::new(workload::Run::new(target, config));

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let sampler = {
        let run = run.clone();
        tokio::spawn(async move {
            let mut samples: RssSamples = Vec::new();
            let Some(pid) = pid else { return samples };
            loop {
                if let Some(b) = server::rss_bytes(pid) {
                    samples.push((run.start.elapsed().as_secs_f64(), b));
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = stop_rx.changed() => break,
                }
            }
            samples
        })
    };

    let mut clients = Vec::new();
    for no in 0..run.config.clients {
        let run = run.clone();
        clients.push(tokio::spawn(async move { run.client(no).run().await }));
    }
    for c in clients {
        if let Err(e) = c.await {
            run.rec.violation(format!("a client task failed: {e}"));
        }
    }
    let load_wall = run.start.elapsed();

    // Jobs whose client stopped polling (it gave up at the drain deadline) get a last look.
    let unfinished: Vec<String> = run
        .rec
        .jobs
        .lock()
        .expect("jobs lock")
        .iter()
        .filter(|(_, end)| end.is_none())
        .map(|(id, _)| id.clone())
        .collect();
    let mut checker = run.client(run.config.clients);
    for id in &unfinished {
        if checker.poll_job(id, run.drain_deadline()).await.is_none() {
            run.rec
                .violation(format!("job {id} did not reach a terminal state in time"));
        }
    }
    let _ = stop_tx.send(true);
    let rss = sampler.await.unwrap_or_default();

    let store = job_store_check(&run);
    let server_count = if run.target.owned {
        server_count_check(&run, setup_requests).await
    } else {
        None
    };
    report::build(&run, load_wall, rss, store, server_count)
}

/// What the job database says about the jobs this run submitted.
#[derive(Debug, Clone, Default)]
pub struct StoreCheck {
    /// Rows in the `jobs` table.
    pub rows: usize,
    /// Accepted jobs missing from the table.
    pub missing: usize,
    /// Rows no accepted job accounts for (only counted for a server this run started).
    pub extra: usize,
    /// Accepted jobs whose row is not terminal.
    pub not_terminal: usize,
}

fn job_store_check(run: &workload::Run) -> Option<StoreCheck> {
    let path = run.target.data_dir.as_ref()?.join("jobs.sqlite3");
    let accepted: BTreeSet<String> = run
        .rec
        .jobs
        .lock()
        .expect("jobs lock")
        .keys()
        .cloned()
        .collect();
    let rows = (|| -> rusqlite::Result<Vec<(String, String)>> {
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let mut st = conn.prepare("SELECT id, status FROM jobs")?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
    })();
    let rows = match rows {
        Ok(r) => r,
        Err(e) => {
            run.rec
                .violation(format!("job database {}: {e}", path.display()));
            return None;
        }
    };
    let mut check = StoreCheck {
        rows: rows.len(),
        ..Default::default()
    };
    let ids: BTreeSet<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
    for id in &accepted {
        if !ids.contains(id.as_str()) {
            check.missing += 1;
            run.rec
                .violation(format!("job {id} was accepted but is not in the job store"));
        }
    }
    for (id, status) in &rows {
        if accepted.contains(id) && !matches!(status.as_str(), "succeeded" | "failed" | "cancelled")
        {
            check.not_terminal += 1;
            run.rec.violation(format!(
                "job {id} is {status} in the job store after the run"
            ));
        }
        if run.target.owned && !accepted.contains(id) {
            check.extra += 1;
            run.rec
                .violation(format!("job {id} is in the store but was never accepted"));
        }
    }
    Some(check)
}

/// Requests the server counted (its latency histogram's `_count` over every series) against
/// requests the clients sent before asking for it.
async fn server_count_check(run: &workload::Run, setup_requests: u64) -> Option<(u64, u64)> {
    let sent = run.rec.sent.load(Ordering::SeqCst) + setup_requests;
    let text = reqwest::get(format!("{}/metrics", run.target.base))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let counted: f64 = text
        .lines()
        .filter(|l| l.starts_with("trellis2_http_request_duration_seconds_count"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    let counted = counted as u64;
    if counted != sent {
        run.rec.violation(format!(
            "the server counted {counted} requests, the clients sent {sent}"
        ));
    }
    Some((counted, sent))
}

/// How long a bounded run may last at most, whatever the flags say.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
pub const MAX_CLIENTS: usize = 64;

impl LoadConfig {
    /// Clamps the bounds into what this tool allows.
    pub fn bounded(mut self) -> Self {
        self.clients = self.clients.clamp(1, MAX_CLIENTS);
        self.duration = self.duration.min(MAX_DURATION);
        self.drain = self.drain.min(MAX_DURATION);
        self
    }
}

/// Seconds since `t`, for logs.
pub fn since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_accepted() {
        for ok in [
            "http://127.0.0.1:8000",
            "http://127.0.0.1",
            "http://localhost:8000/",
            "http://[::1]:8000",
            "http://127.1.2.3:80/x",
        ] {
            assert!(check_loopback(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1:8000",
            "https://127.0.0.1:8000",
            "http://example.com",
            "http://127.0.0.1.evil.com:80",
            "http://localhost.evil.com",
            "127.0.0.1:8000",
        ] {
            assert!(check_loopback(bad).is_err(), "{bad}");
        }
    }
}
