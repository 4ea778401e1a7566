//! `trellis2-dinov3`: the DINOv3 feature gRPC service.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use t2_svc_dinov3::shared::model_dir;

#[derive(Debug, Parser)]
#[command(
    name = "trellis2-dinov3",
    version,
    about = "trellis2 DINOv3 feature gRPC service"
)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(
        long,
        env = "TRELLIS2_DINOV3_LISTEN",
        default_value = "127.0.0.1:50052"
    )]
    listen: String,
    /// Model directory (Hugging Face layout) or `demo`.
    #[arg(long, env = "TRELLIS2_MODELS", default_value = "demo")]
    models: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = t2_telemetry::init_from_env("trellis2-dinov3")?;
    let models = model_dir::resolve(&args.models, &model_dir::default_demo_dir())?;
    let device = t2_tensor::Device::from_env().context("TRELLIS2_DEVICE")?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this line to learn the port.
    println!("listening on {addr}");
    tracing::info!(%addr, models = %models.display(), %device, "trellis2-dinov3 starting");
    let imp: Arc<dyn t2_svc_dinov3::FeatureExtractor> =
        t2_svc_dinov3::Dinov3Service::start(&models, device);
    t2_svc_dinov3::serve(imp, listener, t2_proto::server::shutdown_signal()).await?;
    Ok(())
}
