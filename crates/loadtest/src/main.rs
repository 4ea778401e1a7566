//! `trellis2-loadtest`: see the library docs. Starts `trellis2 serve --models demo` on loopback
//! (or targets `--url`), runs the bounded workload, prints the figures, optionally writes them
//! into RELIABILITY.md, and exits 1 if an invariant was violated.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use t2_loadtest::{LoadConfig, Mix, ServeOptions, ServerUnderTest, Target};

#[derive(Debug, Parser)]
#[command(
    name = "trellis2-loadtest",
    version,
    about = "Bounded loopback load test of a trellis2 gateway"
)]
struct Args {
    /// Concurrent clients (at most 64).
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Seconds during which operations start (at most 3600).
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// At most this many operations in total.
    #[arg(long, default_value_t = 10_000)]
    max_ops: u64,
    /// Weights `generate:job:cheap`.
    #[arg(long, default_value = "2:1:3")]
    mix: String,
    /// Sampling steps of every flow stage (small: the demo models on a CPU).
    #[arg(long, default_value_t = 2)]
    steps: u32,
    /// Seconds after which an unanswered request counts as lost.
    #[arg(long, default_value_t = 300)]
    request_timeout: u64,
    /// Seconds accepted jobs may take after the deadline to reach a terminal state.
    #[arg(long, default_value_t = 180)]
    drain: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// An already running gateway (loopback only) instead of starting one.
    #[arg(long)]
    url: Option<String>,
    /// Token for `--url` (else TRELLIS2_API_KEY).
    #[arg(long, env = "TRELLIS2_API_KEY", hide_env_values = true)]
    token: Option<String>,
    /// With `--url`: the server's process id, to follow its memory.
    #[arg(long)]
    pid: Option<u32>,
    /// With `--url`: the server's data directory, to check its job database.
    #[arg(long)]
    data: Option<PathBuf>,

    /// The `trellis2` binary to start (default: next to this one, else on PATH).
    #[arg(long, env = "TRELLIS2_BIN")]
    trellis2: Option<PathBuf>,
    /// Extra argument for `trellis2 serve` (repeatable), e.g. a queue bound.
    #[arg(long = "serve-arg", allow_hyphen_values = true)]
    serve_args: Vec<String>,
    /// Keep the started server's data directory (logs, jobs, artifacts).
    #[arg(long)]
    keep_data: bool,

    /// Write the figures into this RELIABILITY.md's `loadtest` block.
    #[arg(long)]
    report: Option<PathBuf>,

    /// Only write the photo every request sends (JPEG) here and exit: with a failed job's
    /// seed, `trellis2 generate --local` reproduces it.
    #[arg(long)]
    write_photo: Option<PathBuf>,
}

fn parse_mix(s: &str) -> anyhow::Result<Mix> {
    let w: Vec<u32> = s
        .split(':')
        .map(|x| x.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("--mix {s:?}: expected three integers like 2:1:3"))?;
    let [generate, job, cheap] = w[..] else {
        bail!("--mix {s:?}: expected generate:job:cheap");
    };
    if generate + job + cheap == 0 {
        bail!("--mix {s:?}: all weights are zero");
    }
    Ok(Mix {
        generate,
        job,
        cheap,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    if let Some(path) = &a.write_photo {
        std::fs::write(path, t2_loadtest::workload::photo_jpeg())
            .with_context(|| format!("writing {}", path.display()))?;
        return Ok(());
    }
    let config = LoadConfig {
        clients: a.clients,
        duration: Duration::from_secs(a.duration),
        max_ops: a.max_ops,
        mix: parse_mix(&a.mix)?,
        steps: a.steps,
        request_timeout: Duration::from_secs(a.request_timeout),
        drain: Duration::from_secs(a.drain),
        seed: a.seed,
    }
    .bounded();

    let mut server = None;
    let (target, setup, note) = match &a.url {
        Some(url) => {
            t2_loadtest::check_loopback(url)?;
            let token = a
                .token
                .clone()
                .context("--url needs --token or TRELLIS2_API_KEY")?;
            let target = Target {
                base: url.trim_end_matches('/').to_string(),
                token,
                pid: a.pid,
                data_dir: a.data.clone(),
                owned: false,
            };
            (target, 0, format!("Target: an existing gateway at {url}."))
        }
        None => {
            let bin = a
                .trellis2
                .clone()
                .or_else(t2_loadtest::server::sibling_trellis2)
                .unwrap_or_else(|| PathBuf::from("trellis2"));
            let data = t2_loadtest::server::fresh_data_dir(&std::env::temp_dir());
            let mut opts = ServeOptions::new(bin, data);
            opts.extra_args = a.serve_args.clone();
            eprintln!("starting {} serve --models demo", opts.trellis2.display());
            let s = ServerUnderTest::start(&opts).await?;
            eprintln!(
                "ready after {:.1} s at {}; load for {} s with {} clients",
                s.ready_after.as_secs_f64(),
                s.target.base,
                config.duration.as_secs(),
                config.clients
            );
            let note = format!(
                "Server: `trellis2 serve --models demo` on loopback (CPU{}), ready {:.1} s \
                 after start.",
                if a.serve_args.is_empty() {
                    ", default bounds".to_string()
                } else {
                    format!(", `{}`", a.serve_args.join(" "))
                },
                s.ready_after.as_secs_f64()
            );
            let out = (s.target.clone(), s.setup_requests, note);
            server = Some(s);
            out
        }
    };

    let mut report = t2_loadtest::run(target, config, setup).await;
    report.server_note = note;
    if let Some(mut s) = server {
        if !s.stop(Duration::from_secs(30)) {
            report
                .violations
                .push("the server did not stop within 30 s of SIGTERM".into());
        }
        if let Some(dir) = s.target.data_dir.clone() {
            if a.keep_data {
                eprintln!("data directory kept: {}", dir.display());
            } else {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    let md = report.markdown();
    println!("{md}");
    if let Some(path) = &a.report {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let date = std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%dT%H:%MZ"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let commit = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let body = format!("Last run: {date}, commit `{commit}`, {cores} cores.\n\n{md}");
        std::fs::write(path, t2_loadtest::report::replace_block(&text, &body)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("{} updated", path.display());
    }
    if !report.passed() {
        std::process::exit(1);
    }
    Ok(())
}
