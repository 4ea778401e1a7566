//! `trellis2`: serve the mesh, call a gateway, manage tokens.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{Value, json};
use t2_cli::client::Client;
use t2_cli::credentials::{self, CredentialFlags};
use t2_gateway::{AppState, Backends, GatewayConfig};

#[derive(Debug, Parser)]
#[command(
    name = "trellis2",
    version,
    about = "TRELLIS.2 image-to-3D serving mesh"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway and the four services in one process (no network hops).
    Serve(ServeArgs),
    /// Image → GLB, through a gateway (`--url`) or in this process (`--local`).
    Generate(GenerateArgs),
    /// Signed state (from /generate) → GLB through a gateway.
    Extract(ExtractArgs),
    /// Inspect, wait for, cancel or download jobs.
    Jobs(JobsArgs),
    /// Liveness and readiness of a gateway.
    Health(HealthArgs),
    /// Manage API tokens in a data directory.
    Tokens(TokensArgs),
    // `models` (download/verify model directories) is added by the model tooling.
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[arg(long, env = "TRELLIS2_LISTEN", default_value = "127.0.0.1:8000")]
    listen: String,
    /// Model directory (Hugging Face layout) or `demo` for the small random-weight models.
    #[arg(long, env = "TRELLIS2_MODELS", default_value = "demo")]
    models: String,
    /// Tokens, job database, artifacts and the state key.
    #[arg(long, env = "TRELLIS2_DATA", default_value = "./data")]
    data: PathBuf,
    #[arg(long, env = "TRELLIS2_JOB_CONCURRENCY", default_value_t = 1)]
    job_concurrency: usize,
}

#[derive(Debug, Args, Clone)]
struct ClientArgs {
    /// Gateway URL.
    #[arg(long, env = "TRELLIS2_URL", default_value = "http://127.0.0.1:8000")]
    url: String,
    /// API token (else TRELLIS2_API_KEY, the legacy Modal pair, then the secrets file).
    #[arg(long)]
    token: Option<String>,
    #[arg(long)]
    modal_key: Option<String>,
    #[arg(long)]
    modal_secret: Option<String>,
    /// `KEY=VALUE` file with TRELLIS2_API_KEY or TRELLIS2_MODAL_KEY/SECRET
    /// (default ~/.config/trellis2/credentials).
    #[arg(long)]
    secrets_file: Option<PathBuf>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Retries on connection errors (exponential backoff).
    #[arg(long, default_value_t = 4)]
    retries: u32,
}

impl ClientArgs {
    fn client(&self) -> anyhow::Result<Client> {
        let flags = CredentialFlags {
            token: self.token.clone(),
            modal_key: self.modal_key.clone(),
            modal_secret: self.modal_secret.clone(),
            secrets_file: self.secrets_file.clone(),
        };
        let creds = credentials::resolve(&flags, &|k| std::env::var(k).ok());
        Ok(Client::new(
            &self.url,
            creds,
            Duration::from_secs(self.timeout),
            self.retries,
        )?)
    }
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// Input image (PNG, JPEG or WebP).
    image: PathBuf,
    /// Output GLB.
    #[arg(short, long)]
    output: PathBuf,
    /// Run in this process instead of calling a gateway.
    #[arg(long, conflicts_with = "url")]
    local: bool,
    /// With --local: model directory or `demo`.
    #[arg(long, default_value = "demo")]
    models: String,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value = "1024_cascade")]
    pipeline_type: String,
    #[arg(long)]
    texture_size: Option<u32>,
    #[arg(long)]
    decimation_target: Option<u32>,
    /// Also save the preview video here.
    #[arg(long)]
    video: Option<PathBuf>,
    /// Also save the signed state here (for `trellis2 extract`).
    #[arg(long)]
    state: Option<PathBuf>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Args)]
struct ExtractArgs {
    /// State file written by `generate --state`.
    state: PathBuf,
    #[arg(short, long)]
    output: PathBuf,
    #[arg(long)]
    texture_size: Option<u32>,
    #[arg(long)]
    decimation_target: Option<u32>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Args)]
struct JobsArgs {
    #[command(subcommand)]
    action: JobsAction,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Subcommand)]
enum JobsAction {
    /// Print a job's record.
    Status { id: String },
    /// Follow a job to its end with a progress bar.
    Wait { id: String },
    /// Cancel a queued or running job.
    Cancel { id: String },
    /// Save one artifact of a job.
    Download {
        id: String,
        name: String,
        #[arg(short, long)]
        output: PathBuf,
    },
}

#[derive(Debug, Args)]
struct HealthArgs {
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Args)]
struct TokensArgs {
    #[command(subcommand)]
    action: TokensAction,
}

#[derive(Debug, Subcommand)]
enum TokensAction {
    /// Create a token; it is printed once, as the last line.
    Add {
        name: String,
        #[arg(long, env = "TRELLIS2_DATA", default_value = "./data")]
        data: PathBuf,
    },
    /// List token names and masked prefixes.
    List {
        #[arg(long, env = "TRELLIS2_DATA", default_value = "./data")]
        data: PathBuf,
    },
    /// Revoke a token by name.
    Revoke {
        name: String,
        #[arg(long, env = "TRELLIS2_DATA", default_value = "./data")]
        data: PathBuf,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let code = match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve(a) => serve(a).await,
        Command::Generate(a) if a.local => generate_local(a).await,
        Command::Generate(a) => generate_remote(a).await,
        Command::Extract(a) => extract(a).await,
        Command::Jobs(a) => jobs(a).await,
        Command::Health(a) => health(a).await,
        Command::Tokens(a) => tokens(a),
    }
}

/// The services that run in this process. Their compute crates are not part of this build
/// yet, so every call answers "not built" and readiness says so.
fn in_process_backends(models: &str) -> anyhow::Result<Backends> {
    if models != "demo" && !Path::new(models).is_dir() {
        bail!("--models must be `demo` or a model directory; {models:?} is neither");
    }
    Ok(Backends::not_built())
}

async fn serve(a: ServeArgs) -> anyhow::Result<i32> {
    let _telemetry = t2_telemetry::init_from_env("trellis2")?;
    let backends = in_process_backends(&a.models)?;
    let config = GatewayConfig {
        job_concurrency: a.job_concurrency,
        ..GatewayConfig::new(a.data)
    };
    let state = AppState::open(&config, backends).await?;
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .with_context(|| format!("binding {}", a.listen))?;
    let addr = listener.local_addr()?;
    println!("listening on {addr}");
    tracing::info!(%addr, models = %a.models, "trellis2 serve (embedded mesh) starting");
    axum::serve(listener, t2_gateway::app(state))
        .with_graceful_shutdown(t2_proto::server::shutdown_signal())
        .await?;
    Ok(0)
}

fn read_image_b64(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

async fn generate_local(a: GenerateArgs) -> anyhow::Result<i32> {
    let backends = in_process_backends(&a.models)?;
    let body: t2_gateway::types::GenerateBody = serde_json::from_value(json!({
        "image": read_image_b64(&a.image)?,
        "seed": a.seed,
        "pipeline_type": a.pipeline_type,
        "preview_video": a.video.is_some(),
        "export": { "texture_size": a.texture_size, "decimation_target": a.decimation_target },
    }))?;
    let plan = body
        .into_plan(true)
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let export = plan.export;
    let preview = plan.preview_video;
    let generated = t2_gateway::pipeline::generate(
        &backends,
        t2_gateway::pipeline::GeneratePlan {
            preview_video: false,
            ..plan
        },
        t2_proto::ProgressSink::none(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    let out = t2_gateway::pipeline::extract(
        &backends,
        generated.latents,
        export,
        preview,
        t2_proto::ProgressSink::none(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    for art in out.artifacts {
        match art.name.as_str() {
            "model.glb" => write(&a.output, &art.data)?,
            "preview.mp4" => {
                if let Some(v) = &a.video {
                    write(v, &art.data)?
                }
            }
            _ => {}
        }
    }
    Ok(0)
}

async fn follow(client: &Client, id: &str) -> anyhow::Result<Value> {
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:<24} [{bar:30}] {pos}/{len} {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    loop {
        let v = client
            .json(Method::GET, &format!("/v1/jobs/{id}"), None)
            .await?;
        let status = v["status"].as_str().unwrap_or("").to_string();
        if let Some(p) = v["progress"].as_object() {
            bar.set_length(p["total"].as_u64().unwrap_or(1).max(1));
            bar.set_position(p["step"].as_u64().unwrap_or(0));
            bar.set_message(p["stage"].as_str().unwrap_or("").to_string());
        } else {
            bar.set_message(status.clone());
        }
        bar.tick();
        if ["succeeded", "failed", "cancelled"].contains(&status.as_str()) {
            bar.finish_and_clear();
            return Ok(v);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn job_outcome(v: &Value) -> anyhow::Result<()> {
    match v["status"].as_str() {
        Some("succeeded") => Ok(()),
        Some(s) => bail!(
            "job {} {s}: {} ({})",
            v["job_id"].as_str().unwrap_or("?"),
            v["error"]["message"].as_str().unwrap_or("no reason given"),
            v["error"]["code"].as_str().unwrap_or("-"),
        ),
        None => bail!("unexpected job record: {v}"),
    }
}

async fn generate_remote(a: GenerateArgs) -> anyhow::Result<i32> {
    let client = a.client.client()?;
    let body = json!({
        "image": read_image_b64(&a.image)?,
        "seed": a.seed,
        "pipeline_type": a.pipeline_type,
        "preview_video": a.video.is_some(),
        "export": { "texture_size": a.texture_size, "decimation_target": a.decimation_target },
    });
    let created = client.json(Method::POST, "/v1/jobs", Some(&body)).await?;
    let id = created["job_id"]
        .as_str()
        .context("no job_id in the answer")?
        .to_string();
    eprintln!("job {id} queued");
    let done = follow(&client, &id).await?;
    job_outcome(&done)?;
    let art = |name: &str| format!("/v1/jobs/{id}/artifacts/{name}");
    write(&a.output, &client.bytes(&art("model.glb")).await?)?;
    if let Some(v) = &a.video {
        write(v, &client.bytes(&art("preview.mp4")).await?)?;
    }
    if let Some(s) = &a.state {
        write(s, &client.bytes(&art("state.bin")).await?)?;
    }
    eprintln!("wrote {}", a.output.display());
    Ok(0)
}

async fn extract(a: ExtractArgs) -> anyhow::Result<i32> {
    let client = a.client.client()?;
    let state = read_image_b64(&a.state)?;
    let body = json!({
        "state": state,
        "texture_size": a.texture_size,
        "decimation_target": a.decimation_target,
    });
    let v = client
        .json(Method::POST, "/extract_glb", Some(&body))
        .await?;
    let glb = base64::engine::general_purpose::STANDARD
        .decode(v["glb"].as_str().context("no glb in the answer")?)
        .context("glb is not base64")?;
    write(&a.output, &glb)?;
    Ok(0)
}

async fn jobs(a: JobsArgs) -> anyhow::Result<i32> {
    let client = a.client.client()?;
    match a.action {
        JobsAction::Status { id } => {
            let v = client
                .json(Method::GET, &format!("/v1/jobs/{id}"), None)
                .await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        JobsAction::Wait { id } => {
            let v = follow(&client, &id).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            job_outcome(&v)?;
        }
        JobsAction::Cancel { id } => {
            let v = client
                .json(Method::DELETE, &format!("/v1/jobs/{id}"), None)
                .await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        JobsAction::Download { id, name, output } => {
            let bytes = client
                .bytes(&format!("/v1/jobs/{id}/artifacts/{name}"))
                .await?;
            write(&output, &bytes)?;
        }
    }
    Ok(0)
}

/// Exit status: 0 live and ready, 2 live but not ready, 1 unreachable.
async fn health(a: HealthArgs) -> anyhow::Result<i32> {
    let client = a.client.client()?;
    let live = client.json(Method::GET, "/health", None).await?;
    println!("health: {live}");
    let ready = client.json(Method::GET, "/ready", None).await?;
    println!("ready: {}", serde_json::to_string_pretty(&ready)?);
    Ok(if ready["ready"] == true { 0 } else { 2 })
}

fn tokens(a: TokensArgs) -> anyhow::Result<i32> {
    use t2_gateway::auth::TokenStore;
    match a.action {
        TokensAction::Add { name, data } => {
            let token = TokenStore::new(&data).add(&name)?;
            println!(
                "token {name:?} created in {}; it is shown only once:",
                data.display()
            );
            println!("{token}");
        }
        TokensAction::List { data } => {
            for t in TokenStore::new(&data).list()? {
                println!("{}\t{}\tcreated {}", t.name, t.prefix, t.created_at);
            }
        }
        TokensAction::Revoke { name, data } => {
            TokenStore::new(&data).revoke(&name)?;
            println!("token {name:?} revoked");
        }
    }
    Ok(0)
}
