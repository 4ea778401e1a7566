//! `trellis2`: serve the mesh, run one service, call a gateway, manage tokens and models.

mod run_client;
mod run_models;
mod run_serve;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use t2_cli::client::Client;
use t2_cli::credentials::{self, CredentialFlags};

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
    /// Run the gateway and the four services in one process (no network hops), or the gateway
    /// alone in front of remote services (all four `--*-url`).
    Serve(ServeArgs),
    /// Run one gRPC service (the same code as the `trellis2-<name>` binaries).
    Service(ServiceArgs),
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
    /// Write, check or download model directories.
    Models(ModelsArgs),
}

/// Where the models are and how they compute (shared by `serve`, `service`, `generate --local`).
#[derive(Debug, Args, Clone)]
struct ComputeArgs {
    /// Model directory (Hugging Face layout) or `demo` (small random-weight models, written once
    /// under `<data>/models/demo`).
    #[arg(long, env = "TRELLIS2_MODELS", default_value = "demo")]
    models: String,
    /// Where DINOv3, the flows and the decoders run: `auto` (CUDA device 0 when usable, else
    /// the CPU), `cpu`, `cuda` or `cuda:N`.
    #[arg(long, env = "TRELLIS2_DEVICE", default_value = "auto")]
    device: String,
    /// ONNX Runtime execution provider of background removal.
    #[arg(
        long,
        env = "TRELLIS2_RMBG_PROVIDER",
        value_enum,
        default_value = "auto"
    )]
    rmbg_provider: ProviderArg,
    /// Frames of the turntable preview video (the reference renders 120).
    #[arg(long, env = "TRELLIS2_PREVIEW_FRAMES", default_value_t = t2_svc_mesh::PreviewSettings::default().frames)]
    preview_frames: u32,
    /// Side of one preview view in pixels (a multiple of 4; a frame is 2R × 1.5R).
    #[arg(long, env = "TRELLIS2_PREVIEW_RESOLUTION", default_value_t = t2_svc_mesh::PreviewSettings::default().resolution)]
    preview_resolution: u32,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProviderArg {
    /// CUDA when ONNX Runtime has it and a GPU is usable, else CPU.
    Auto,
    Cpu,
    Cuda,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[arg(long, env = "TRELLIS2_LISTEN", default_value = "127.0.0.1:8000")]
    listen: String,
    /// Tokens, job database, artifacts, the state key and the demo models.
    #[arg(long, env = "TRELLIS2_DATA", default_value = "./data")]
    data: PathBuf,
    #[arg(long, env = "TRELLIS2_JOB_CONCURRENCY", default_value_t = 1)]
    job_concurrency: usize,
    /// Seconds before a synchronous call is answered 504 `timeout`.
    #[arg(long, env = "TRELLIS2_REQUEST_TIMEOUT", default_value_t = t2_gateway::DEFAULT_REQUEST_TIMEOUT.as_secs())]
    request_timeout: u64,
    /// Synchronous generations (`/generate`, `/extract_glb`) running at once; more get 429
    /// `overloaded` with Retry-After.
    #[arg(long, env = "TRELLIS2_MAX_INFLIGHT", default_value_t = t2_gateway::DEFAULT_MAX_INFLIGHT)]
    max_inflight: usize,
    /// Jobs waiting for a worker before new ones get 429 `overloaded`.
    #[arg(long, env = "TRELLIS2_MAX_QUEUED_JOBS", default_value_t = t2_gateway::DEFAULT_MAX_QUEUED_JOBS)]
    max_queued_jobs: usize,
    /// Remote services instead of in-process ones (give all four). Each takes a
    /// comma-separated list of replicas (`--flow-url http://gpu0:50053,http://gpu1:50053`):
    /// calls go to the least loaded; gates and `--job-concurrency` should grow with them.
    #[arg(long, env = "TRELLIS2_RMBG_URL", value_delimiter = ',', requires_all = ["dinov3_url", "flow_url", "mesh_url"])]
    rmbg_url: Option<Vec<String>>,
    #[arg(
        long,
        env = "TRELLIS2_DINOV3_URL",
        value_delimiter = ',',
        requires = "rmbg_url"
    )]
    dinov3_url: Option<Vec<String>>,
    #[arg(
        long,
        env = "TRELLIS2_FLOW_URL",
        value_delimiter = ',',
        requires = "rmbg_url"
    )]
    flow_url: Option<Vec<String>>,
    #[arg(
        long,
        env = "TRELLIS2_MESH_URL",
        value_delimiter = ',',
        requires = "rmbg_url"
    )]
    mesh_url: Option<Vec<String>>,
    #[command(flatten)]
    compute: ComputeArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ServiceName {
    Rmbg,
    Dinov3,
    Flow,
    Mesh,
}

#[derive(Debug, Args)]
struct ServiceArgs {
    /// Which service.
    #[arg(value_enum)]
    name: ServiceName,
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Where `--models demo` is written (`<data>/models/demo`).
    #[arg(long, env = "TRELLIS2_DATA", default_value = "./data")]
    data: PathBuf,
    #[command(flatten)]
    compute: ComputeArgs,
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
    /// With --local: where `--models demo` is written (`<data>/models/demo`).
    #[arg(long, env = "TRELLIS2_DATA", default_value = "./data")]
    data: PathBuf,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value = "1024_cascade")]
    pipeline_type: String,
    /// Sampling steps of every flow stage (default: the pipeline's, 12).
    #[arg(long)]
    steps: Option<u32>,
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
    #[command(flatten)]
    compute: ComputeArgs,
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

#[derive(Debug, Args)]
struct ModelsArgs {
    #[command(subcommand)]
    action: ModelsAction,
}

#[derive(Debug, Subcommand)]
enum ModelsAction {
    /// Write the demo set (tiny random-weight models in the real layout, deterministic, and
    /// the RMBG-shaped ONNX fixture) into a directory.
    Demo {
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a random-weight model set with the real checkpoints' names, shapes and dtypes
    /// (~16 GB with --full-size; a width-scaled variant with the same names otherwise), for
    /// full-size benchmarks without the gated download. Not for generating assets.
    Random {
        #[arg(long)]
        out: PathBuf,
        /// The real sizes (bf16 DiTs, f16 decoders, f32 DINOv3).
        #[arg(long)]
        full_size: bool,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Say exactly which files of the model set a directory lacks.
    Check { dir: PathBuf },
    /// Download the real model set from Hugging Face (resumable, every file verified).
    Fetch {
        #[arg(long)]
        out: PathBuf,
        /// Hugging Face token of an account that accepted the gated repos' licences.
        #[arg(long, env = "HF_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// The Hub (or a mirror).
        #[arg(long, env = "HF_ENDPOINT", default_value = t2_cli::models::fetch::DEFAULT_ENDPOINT)]
        endpoint: String,
        /// Resumes per file after a dropped connection.
        #[arg(long, default_value_t = t2_cli::models::fetch::DEFAULT_RETRIES)]
        retries: u32,
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
        Command::Serve(a) => run_serve::serve(a).await,
        Command::Service(a) => run_serve::service(a).await,
        Command::Generate(a) if a.local => run_client::generate_local(a).await,
        Command::Generate(a) => run_client::generate_remote(a).await,
        Command::Extract(a) => run_client::extract(a).await,
        Command::Jobs(a) => run_client::jobs(a).await,
        Command::Health(a) => run_client::health(a).await,
        Command::Tokens(a) => tokens(a),
        Command::Models(a) => run_models::models(a).await,
    }
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
