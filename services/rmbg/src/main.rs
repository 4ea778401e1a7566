//! `trellis2-rmbg`: the background-removal gRPC service.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use t2_svc_rmbg::shared::model_dir;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ProviderArg {
    /// CUDA when ONNX Runtime has it and a GPU is usable, else CPU.
    Auto,
    Cpu,
    Cuda,
}

#[derive(Debug, Parser)]
#[command(
    name = "trellis2-rmbg",
    version,
    about = "trellis2 background-removal gRPC service"
)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, env = "TRELLIS2_RMBG_LISTEN", default_value = "127.0.0.1:50051")]
    listen: String,
    /// Model directory (Hugging Face layout) or `demo`.
    #[arg(long, env = "TRELLIS2_MODELS", default_value = "demo")]
    models: String,
    /// ONNX Runtime execution provider.
    #[arg(
        long,
        env = "TRELLIS2_RMBG_PROVIDER",
        value_enum,
        default_value = "auto"
    )]
    provider: ProviderArg,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = t2_telemetry::init_from_env("trellis2-rmbg")?;
    let models = model_dir::resolve(&args.models, &model_dir::default_demo_dir())?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this line to learn the port.
    println!("listening on {addr}");
    tracing::info!(%addr, models = %models.display(), "trellis2-rmbg starting");
    let provider = match args.provider {
        ProviderArg::Auto => t2_birefnet::Provider::Auto,
        ProviderArg::Cpu => t2_birefnet::Provider::Cpu,
        ProviderArg::Cuda => t2_birefnet::Provider::Cuda,
    };
    let imp: Arc<dyn t2_svc_rmbg::BackgroundRemover> =
        t2_svc_rmbg::RmbgService::start(&models, provider);
    t2_svc_rmbg::serve(imp, listener, t2_proto::server::shutdown_signal()).await?;
    Ok(())
}
