//! The clients: `clients` concurrent loops, each picking operations from a weighted mix until
//! the run's deadline or request cap, and checking every answer as it arrives.
//!
//! Every request carries its own `x-request-id` (`lt-<run>-<client>-<seq>`); the gateway echoes
//! it in the response header and in error envelopes. An answer carrying another id would be a
//! response crossed between requests (or one request answered twice on a kept-alive
//! connection); a request with no answer is lost. Both are recorded as violations.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};

use crate::server::Target;

/// What one client iteration does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    /// `POST /generate` (small demo settings).
    Generate,
    /// `POST /v1/jobs`, polling to a terminal state, then the GLB download.
    Job,
    /// One of `/health`, `/ready`, `/metrics`, `/v1/status`, an unknown job (404) and a
    /// request without a token (401).
    Cheap,
}

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Generate => "generate",
            Self::Job => "job",
            Self::Cheap => "cheap",
        }
    }
}

/// Relative weights of the operations.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    pub generate: u32,
    pub job: u32,
    pub cheap: u32,
}

impl Mix {
    fn pick(&self, rng: &mut impl Rng) -> OpKind {
        let total = (self.generate + self.job + self.cheap).max(1);
        let x = rng.random_range(0..total);
        if x < self.generate {
            OpKind::Generate
        } else if x < self.generate + self.job {
            OpKind::Job
        } else {
            OpKind::Cheap
        }
    }
}

/// Bounds and shape of one run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub clients: usize,
    /// No operation starts after this much time.
    pub duration: Duration,
    /// No operation starts once this many have started (all clients together).
    pub max_ops: u64,
    pub mix: Mix,
    /// Sampling steps of every flow stage in generate and job requests.
    pub steps: u32,
    /// A request unanswered within this is lost.
    pub request_timeout: Duration,
    /// After the deadline, how long accepted jobs may take to reach a terminal state.
    pub drain: Duration,
    pub seed: u64,
}

/// The decisive answer of one exchange: a status and the envelope's code, or no answer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Answer {
    Status(u16, String),
    Lost,
}

/// One finished operation.
#[derive(Debug, Clone)]
pub struct OpSample {
    pub kind: OpKind,
    /// The operation did what it was asked (e.g. a job succeeded and its GLB downloaded).
    pub ok: bool,
    /// Refused with `overloaded` (backpressure working, not a failure).
    pub overloaded: bool,
    pub latency: Duration,
}

/// Everything observed, shared by the clients.
#[derive(Default)]
pub struct Recorder {
    pub sent: AtomicU64,
    pub answered: AtomicU64,
    pub lost: AtomicU64,
    /// Answers whose `x-request-id` (header or envelope) was not the request's own.
    pub crossed: AtomicU64,
    pub overloaded: AtomicU64,
    /// `overloaded` answers that carried `Retry-After`.
    pub overloaded_retry_after: AtomicU64,
    ops_started: AtomicU64,
    pub answers: Mutex<BTreeMap<(u16, String), u64>>,
    pub samples: Mutex<Vec<OpSample>>,
    /// Accepted job ids and the terminal state each was seen in (with its error code).
    pub jobs: Mutex<BTreeMap<String, Option<(String, String)>>>,
    /// The seed each accepted job was submitted with, to reproduce a failure.
    pub job_seeds: Mutex<BTreeMap<String, u64>>,
    /// `job <id> (seed <s>): <code>: <message>` of failed jobs.
    pub job_failures: Mutex<Vec<String>>,
    pub violations: Mutex<Vec<String>>,
}

/// Violations kept verbatim; beyond this only their count grows.
const MAX_VIOLATIONS_KEPT: usize = 50;

impl Recorder {
    pub fn violation(&self, v: String) {
        let mut vs = self.violations.lock().expect("violations lock");
        if vs.len() < MAX_VIOLATIONS_KEPT {
            vs.push(v);
        } else if vs.len() == MAX_VIOLATIONS_KEPT {
            vs.push("… more violations not kept".into());
        }
    }
}

/// A response, read whole.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// One client: its own connection pool (one keep-alive connection in practice), ids and
/// random stream.
pub struct Client<'a> {
    pub no: usize,
    run: &'a Run,
    http: reqwest::Client,
    seq: u64,
    rng: rand::rngs::StdRng,
}

/// What the clients share for one run.
pub struct Run {
    pub target: Target,
    pub config: LoadConfig,
    pub rec: Recorder,
    /// Tag in every request id, distinct per run.
    pub run_tag: String,
    pub start: Instant,
    image_b64: String,
}

impl Run {
    pub fn new(target: Target, config: LoadConfig) -> Self {
        Self {
            target,
            run_tag: format!("{:08x}", config.seed as u32 ^ std::process::id()),
            config,
            rec: Recorder::default(),
            start: Instant::now(),
            image_b64: base64::engine::general_purpose::STANDARD.encode(photo_jpeg()),
        }
    }

    pub fn deadline(&self) -> Instant {
        self.start + self.config.duration
    }

    pub fn drain_deadline(&self) -> Instant {
        self.deadline() + self.config.drain
    }

    pub fn client(&self, no: usize) -> Client<'_> {
        Client {
            no,
            run: self,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("a plain HTTP client builds"),
            seq: 0,
            rng: rand::rngs::StdRng::seed_from_u64(self.config.seed ^ ((no as u64 + 1) * 0x9e37)),
        }
    }

    fn generate_body(&self, seed: u64) -> Value {
        let s = self.config.steps;
        json!({
            "image": self.image_b64,
            "seed": seed,
            "pipeline_type": "512",
            "ss_sampling_steps": s,
            "shape_slat_sampling_steps": s,
            "tex_slat_sampling_steps": s,
            "preview_video": false,
        })
    }
}

/// The demo models turn this photo (a red-dominant gradient disc on blue, no alpha, so the
/// background-removal stage runs) into a non-empty mesh.
pub fn photo_jpeg() -> Vec<u8> {
    let (w, h) = (160u32, 120u32);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let (cx, cy, r) = (w as f32 * 0.5, h as f32 * 0.5, h as f32 * 0.4);
        let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
        if (dx * dx + dy * dy).sqrt() < r {
            let (u, v) = ((dx / r + 1.0) / 2.0, (dy / r + 1.0) / 2.0);
            [200 + (u * 55.0) as u8, (v * 150.0) as u8, 128].into()
        } else {
            [40, 160, 200].into()
        }
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut out),
            image::ImageFormat::Jpeg,
        )
        .expect("encoding a JPEG in memory");
    out
}

fn is_terminal(status: &str) -> bool {
    matches!(status, "succeeded" | "failed" | "cancelled")
}

impl Client<'_> {
    /// Runs operations until the deadline or the cap.
    pub async fn run(mut self) {
        let run = self.run;
        while Instant::now() < run.deadline() {
            let n = run.rec.ops_started.fetch_add(1, Ordering::SeqCst);
            if n >= run.config.max_ops {
                break;
            }
            let kind = run.config.mix.pick(&mut self.rng);
            let t = Instant::now();
            let (ok, overloaded) = match kind {
                OpKind::Generate => self.generate().await,
                OpKind::Job => self.job().await,
                OpKind::Cheap => (self.cheap().await, false),
            };
            run.rec
                .samples
                .lock()
                .expect("samples lock")
                .push(OpSample {
                    kind,
                    ok,
                    overloaded,
                    latency: t.elapsed(),
                });
            if overloaded {
                // What a well-behaved client does with Retry-After, shortened: the run is
                // about the server holding its bounds, not about waiting 30 s.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// One exchange with every per-answer check; `None` when no answer came.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        auth: bool,
        expect: &[u16],
    ) -> Option<Reply> {
        let run = self.run;
        self.seq += 1;
        let id = format!("lt-{}-{:02}-{:06}", run.run_tag, self.no, self.seq);
        let mut rb = self
            .http
            .request(method.clone(), format!("{}{path}", run.target.base))
            .header("x-request-id", &id)
            .timeout(run.config.request_timeout);
        if auth {
            rb = rb.bearer_auth(&run.target.token);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        run.rec.sent.fetch_add(1, Ordering::SeqCst);
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => return self.lost(&id, &method, path, &e),
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = match resp.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) => return self.lost(&id, &method, path, &e),
        };
        run.rec.answered.fetch_add(1, Ordering::SeqCst);
        let reply = Reply {
            status,
            headers,
            body,
        };
        self.check(&id, &method, path, &reply, expect);
        Some(reply)
    }

    fn lost(&self, id: &str, method: &Method, path: &str, e: &reqwest::Error) -> Option<Reply> {
        let rec = &self.run.rec;
        rec.lost.fetch_add(1, Ordering::SeqCst);
        *rec.answers
            .lock()
            .expect("answers lock")
            .entry((0, "no answer".into()))
            .or_default() += 1;
        rec.violation(format!("{method} {path} ({id}): no answer: {e}"));
        None
    }

    fn check(&self, id: &str, method: &Method, path: &str, r: &Reply, expect: &[u16]) {
        let rec = &self.run.rec;
        let header_id = r
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut code = String::new();
        let mut message = String::new();
        let mut body_id = None;
        if r.status >= 400 {
            let v = r.json();
            code = v["error"]["code"].as_str().unwrap_or("").to_string();
            message = v["error"]["message"].as_str().unwrap_or("").to_string();
            body_id = Some(v["error"]["request_id"].as_str().unwrap_or("").to_string());
            if code.is_empty() {
                rec.violation(format!(
                    "{method} {path} ({id}): {} without the error envelope",
                    r.status
                ));
            }
        }
        if header_id != id || body_id.as_deref().is_some_and(|b| b != id) {
            rec.crossed.fetch_add(1, Ordering::SeqCst);
            rec.violation(format!(
                "{method} {path} ({id}): answered with request id {header_id:?} / {body_id:?}"
            ));
        }
        if code == "overloaded" {
            rec.overloaded.fetch_add(1, Ordering::SeqCst);
            if r.headers.contains_key("retry-after") {
                rec.overloaded_retry_after.fetch_add(1, Ordering::SeqCst);
            } else {
                rec.violation(format!(
                    "{method} {path} ({id}): overloaded without Retry-After"
                ));
            }
        }
        *rec.answers
            .lock()
            .expect("answers lock")
            .entry((r.status, code.clone()))
            .or_default() += 1;
        if !expect.contains(&r.status) {
            rec.violation(format!(
                "{method} {path} ({id}): {} {code}: {message}",
                r.status
            ));
        }
    }

    async fn generate(&mut self) -> (bool, bool) {
        let body = self.run.generate_body(self.rng.random_range(0..1 << 31));
        let Some(r) = self
            .call(Method::POST, "/generate", Some(&body), true, &[200, 429])
            .await
        else {
            return (false, false);
        };
        if r.status == 429 {
            return (false, true);
        }
        let v = r.json();
        let ok = r.status == 200 && v["state"].as_str().is_some_and(|s| !s.is_empty());
        if r.status == 200 && !ok {
            self.run
                .rec
                .violation(format!("/generate answered 200 without a state: {v}"));
        }
        (ok, false)
    }

    async fn job(&mut self) -> (bool, bool) {
        let seed = self.rng.random_range(0..1 << 31);
        let mut body = self.run.generate_body(seed);
        body["export"] = json!({"texture_size": 512, "decimation_target": 20000});
        let Some(r) = self
            .call(Method::POST, "/v1/jobs", Some(&body), true, &[202, 429])
            .await
        else {
            return (false, false);
        };
        if r.status == 429 {
            return (false, true);
        }
        if r.status != 202 {
            return (false, false);
        }
        let Some(id) = r.json()["job_id"].as_str().map(str::to_string) else {
            self.run
                .rec
                .violation("/v1/jobs answered 202 without a job_id".into());
            return (false, false);
        };
        let fresh = self
            .run
            .rec
            .jobs
            .lock()
            .expect("jobs lock")
            .insert(id.clone(), None)
            .is_none();
        if !fresh {
            self.run
                .rec
                .violation(format!("job id {id} was handed out twice"));
        }
        self.run
            .rec
            .job_seeds
            .lock()
            .expect("seeds lock")
            .insert(id.clone(), seed);
        let Some((status, _)) = self.poll_job(&id, self.run.drain_deadline()).await else {
            return (false, false);
        };
        if status != "succeeded" {
            return (false, false);
        }
        let path = format!("/v1/jobs/{id}/artifacts/model.glb");
        let glb = self.call(Method::GET, &path, None, true, &[200]).await;
        let ok = glb.is_some_and(|g| g.status == 200 && g.body.starts_with(b"glTF"));
        if !ok {
            self.run
                .rec
                .violation(format!("job {id} succeeded but its GLB did not download"));
        }
        (ok, false)
    }

    /// Polls a job until it is terminal (recording its state) or `until` passes.
    pub async fn poll_job(&mut self, id: &str, until: Instant) -> Option<(String, String)> {
        let path = format!("/v1/jobs/{id}");
        loop {
            if let Some(r) = self.call(Method::GET, &path, None, true, &[200]).await {
                let v = r.json();
                let status = v["status"].as_str().unwrap_or("").to_string();
                if is_terminal(&status) {
                    let code = v["error"]["code"].as_str().unwrap_or("").to_string();
                    if status == "failed" {
                        let rec = &self.run.rec;
                        let seed = rec.job_seeds.lock().expect("seeds lock").get(id).copied();
                        let message = v["error"]["message"].as_str().unwrap_or("");
                        rec.job_failures
                            .lock()
                            .expect("failures lock")
                            .push(format!(
                                "job {id} (seed {}): {code}: {message}",
                                seed.map_or("?".into(), |s| s.to_string())
                            ));
                    }
                    let done = (status, code);
                    self.run
                        .rec
                        .jobs
                        .lock()
                        .expect("jobs lock")
                        .insert(id.to_string(), Some(done.clone()));
                    return Some(done);
                }
            }
            if Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn cheap(&mut self) -> bool {
        let unknown = format!("/v1/jobs/{:032x}", self.rng.random::<u128>());
        let (path, auth, want): (&str, bool, u16) = match self.rng.random_range(0..6) {
            0 => ("/health", false, 200),
            1 => ("/ready", false, 200),
            2 => ("/metrics", false, 200),
            3 => ("/v1/status", true, 200),
            4 => (&unknown, true, 404),
            _ => ("/v1/status", false, 401),
        };
        let path = path.to_string();
        self.call(Method::GET, &path, None, auth, &[want])
            .await
            .is_some_and(|r| r.status == want)
    }
}
