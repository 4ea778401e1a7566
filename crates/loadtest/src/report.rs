//! The figures of one run: a Markdown table for the terminal and for the `loadtest` block of
//! RELIABILITY.md.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::workload::{LoadConfig, OpKind, Run};
use crate::{LoadError, StoreCheck};

/// One operation kind's figures.
#[derive(Debug, Clone)]
pub struct OpRow {
    pub kind: OpKind,
    pub count: usize,
    pub ok: usize,
    pub overloaded: usize,
    pub failed: usize,
    /// Successful operations per second of load.
    pub throughput: f64,
    /// P50, P95, P99 and max latency of the successful operations.
    pub latency: Option<[Duration; 4]>,
}

/// Server memory during the run.
#[derive(Debug, Clone, Copy)]
pub struct RssSummary {
    pub start: u64,
    pub mid: u64,
    pub end: u64,
    pub peak: u64,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub config: LoadConfig,
    /// Start of the first operation to the end of the last (with the jobs' drain).
    pub wall: Duration,
    pub ops: Vec<OpRow>,
    pub sent: u64,
    pub answered: u64,
    pub lost: u64,
    pub crossed: u64,
    pub overloaded: u64,
    pub overloaded_retry_after: u64,
    /// Answers by (status, error code); status 0 is "no answer".
    pub answers: BTreeMap<(u16, String), u64>,
    /// Accepted jobs by terminal state (and error code); `unfinished` for none.
    pub jobs: BTreeMap<String, usize>,
    pub accepted_jobs: usize,
    /// Why jobs failed (id, seed, code, message).
    pub job_failures: Vec<String>,
    pub store: Option<StoreCheck>,
    /// (requests the server counted, requests sent).
    pub server_count: Option<(u64, u64)>,
    pub rss: Option<RssSummary>,
    pub violations: Vec<String>,
    /// Free text about the server (how it was started, its bounds), set by the caller.
    pub server_note: String,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub(crate) fn build(
    run: &Run,
    wall: Duration,
    rss: Vec<(f64, u64)>,
    store: Option<StoreCheck>,
    server_count: Option<(u64, u64)>,
) -> Report {
    let rec = &run.rec;
    let samples = rec.samples.lock().expect("samples lock").clone();
    let secs = wall.as_secs_f64().max(1e-9);
    let ops = [OpKind::Generate, OpKind::Job, OpKind::Cheap]
        .into_iter()
        .map(|kind| {
            let of_kind: Vec<_> = samples.iter().filter(|s| s.kind == kind).collect();
            let mut ok: Vec<Duration> =
                of_kind.iter().filter(|s| s.ok).map(|s| s.latency).collect();
            ok.sort();
            let overloaded = of_kind.iter().filter(|s| s.overloaded).count();
            OpRow {
                kind,
                count: of_kind.len(),
                ok: ok.len(),
                overloaded,
                failed: of_kind.len() - ok.len() - overloaded,
                throughput: ok.len() as f64 / secs,
                latency: (!ok.is_empty()).then(|| {
                    [
                        percentile(&ok, 50.0),
                        percentile(&ok, 95.0),
                        percentile(&ok, 99.0),
                        *ok.last().expect("non-empty"),
                    ]
                }),
            }
        })
        .collect();
    let mut jobs = BTreeMap::new();
    let accepted = rec.jobs.lock().expect("jobs lock").clone();
    for end in accepted.values() {
        let key = match end {
            None => "unfinished".to_string(),
            Some((status, code)) if code.is_empty() => status.clone(),
            Some((status, code)) => format!("{status} ({code})"),
        };
        *jobs.entry(key).or_default() += 1;
    }
    // Memory at the start of the load, half-way and at the end: growth after the first half
    // (caches and model working sets are warm by then) is what a leak would show as.
    let rss = (!rss.is_empty()).then(|| {
        let at = |t: f64| {
            rss.iter()
                .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()))
                .map(|s| s.1)
                .unwrap_or(0)
        };
        let last = rss.last().map(|s| s.0).unwrap_or(0.0);
        RssSummary {
            start: rss[0].1,
            mid: at(last / 2.0),
            end: rss.last().map(|s| s.1).unwrap_or(0),
            peak: rss.iter().map(|s| s.1).max().unwrap_or(0),
        }
    });
    Report {
        config: run.config.clone(),
        wall,
        ops,
        sent: rec.sent.load(Ordering::SeqCst),
        answered: rec.answered.load(Ordering::SeqCst),
        lost: rec.lost.load(Ordering::SeqCst),
        crossed: rec.crossed.load(Ordering::SeqCst),
        overloaded: rec.overloaded.load(Ordering::SeqCst),
        overloaded_retry_after: rec.overloaded_retry_after.load(Ordering::SeqCst),
        answers: rec.answers.lock().expect("answers lock").clone(),
        jobs,
        accepted_jobs: accepted.len(),
        job_failures: rec.job_failures.lock().expect("failures lock").clone(),
        store,
        server_count,
        rss,
        violations: rec.violations.lock().expect("violations lock").clone(),
        server_note: String::new(),
    }
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1e3)
    } else {
        format!("{ms:.0} ms")
    }
}

fn mib(b: u64) -> String {
    format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64)
}

fn signed_mib(a: u64, b: u64) -> String {
    let d = (b as f64 - a as f64) / (1u64 << 20) as f64;
    format!("{d:+.0} MiB")
}

impl Report {
    /// True when every invariant held.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The figures as Markdown (tables and a short list).
    pub fn markdown(&self) -> String {
        let c = &self.config;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} clients for {} s (at most {} operations; mix generate:job:cheap = {}:{}:{}; \
             {} sampling steps per stage, pipeline `512`, no preview), {:.1} s of load \
             including the jobs' drain.{}",
            c.clients,
            c.duration.as_secs(),
            c.max_ops,
            c.mix.generate,
            c.mix.job,
            c.mix.cheap,
            c.steps,
            self.wall.as_secs_f64(),
            if self.server_note.is_empty() {
                String::new()
            } else {
                format!(" {}", self.server_note)
            }
        );
        s.push('\n');
        s.push_str(
            "| operation | count | ok | overloaded (429) | failed | ok/s | P50 | P95 | P99 | max |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.ops {
            let lat = r
                .latency
                .map(|l| l.map(ms))
                .unwrap_or_else(|| ["–".into(), "–".into(), "–".into(), "–".into()]);
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {:.2} | {} | {} | {} | {} |",
                r.kind.name(),
                r.count,
                r.ok,
                r.overloaded,
                r.failed,
                r.throughput,
                lat[0],
                lat[1],
                lat[2],
                lat[3]
            );
        }
        s.push_str("\n| answers (status, code) | count |\n|---|---:|\n");
        for ((status, code), n) in &self.answers {
            let what = match (status, code.as_str()) {
                (0, _) => "no answer".to_string(),
                (st, "") => st.to_string(),
                (st, code) => format!("{st} `{code}`"),
            };
            let _ = writeln!(s, "| {what} | {n} |");
        }
        s.push('\n');
        let _ = writeln!(
            s,
            "- Requests: {} sent, {} answered, {} lost, {} answered with another request's id.",
            self.sent, self.answered, self.lost, self.crossed
        );
        if let Some((counted, sent)) = self.server_count {
            let _ = writeln!(
                s,
                "- Server-side count (`trellis2_http_request_duration_seconds_count`, all \
                 series): {counted}, for {sent} requests sent including readiness polls — {}.",
                if counted == sent {
                    "equal"
                } else {
                    "**different**"
                }
            );
        }
        let _ = writeln!(
            s,
            "- Backpressure: {} `overloaded` answers, {} with `Retry-After`.",
            self.overloaded, self.overloaded_retry_after
        );
        let jobs: Vec<String> = self.jobs.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let _ = writeln!(
            s,
            "- Jobs: {} accepted → {}.",
            self.accepted_jobs,
            if jobs.is_empty() {
                "none".into()
            } else {
                jobs.join(", ")
            }
        );
        for f in self.job_failures.iter().take(10) {
            let _ = writeln!(s, "  - {}", f.chars().take(300).collect::<String>());
        }
        if let Some(st) = &self.store {
            let _ = writeln!(
                s,
                "- Job store (`jobs.sqlite3` read after the run): {} rows; accepted jobs \
                 missing {}, not terminal {}; rows never accepted {}.",
                st.rows, st.missing, st.not_terminal, st.extra
            );
        }
        if let Some(m) = self.rss {
            let _ = writeln!(
                s,
                "- Server RSS: {} at the start of the load, {} half-way, {} at the end \
                 (peak {}); growth over the second half {}.",
                mib(m.start),
                mib(m.mid),
                mib(m.end),
                mib(m.peak),
                signed_mib(m.mid, m.end)
            );
        }
        if self.violations.is_empty() {
            let _ = writeln!(s, "- Invariants: all held.");
        } else {
            let _ = writeln!(s, "- Invariants: **{} violated**:", self.violations.len());
            for v in &self.violations {
                let _ = writeln!(s, "  - {v}");
            }
        }
        s
    }
}

const BEGIN: &str = "<!-- loadtest:begin";
const END: &str = "<!-- loadtest:end -->";

/// Replaces the `loadtest` block of a RELIABILITY.md text with `body`.
pub fn replace_block(text: &str, body: &str) -> Result<String, LoadError> {
    let start = text
        .find(BEGIN)
        .ok_or_else(|| LoadError::Report(format!("no `{BEGIN} … -->` marker")))?;
    let end = text[start..]
        .find(END)
        .map(|i| start + i)
        .ok_or_else(|| LoadError::Report(format!("no `{END}` marker")))?;
    Ok(format!(
        "{}{BEGIN} (written by trellis2-loadtest; edits inside are overwritten) -->\n{}\n{}",
        &text[..start],
        body.trim_end(),
        &text[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&v, 95.0), Duration::from_millis(95));
        assert_eq!(percentile(&v, 99.0), Duration::from_millis(99));
        let one = [Duration::from_millis(7)];
        assert_eq!(percentile(&one, 99.0), Duration::from_millis(7));
    }

    #[test]
    fn the_block_is_replaced_and_the_rest_kept() {
        let text =
            "# T\nbefore\n<!-- loadtest:begin (old) -->\nold\n<!-- loadtest:end -->\nafter\n";
        let out = replace_block(text, "new figures\n").unwrap();
        assert_eq!(
            out,
            "# T\nbefore\n<!-- loadtest:begin (written by trellis2-loadtest; edits inside are \
             overwritten) -->\nnew figures\n<!-- loadtest:end -->\nafter\n"
        );
        assert!(replace_block("no markers", "x").is_err());
    }
}
