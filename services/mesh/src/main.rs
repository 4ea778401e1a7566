//! `trellis2-mesh`: the mesh gRPC service.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use t2_svc_mesh::PreviewSettings;
use t2_svc_mesh::shared::model_dir;

#[derive(Debug, Parser)]
#[command(name = "trellis2-mesh", version, about = "trellis2 mesh gRPC service")]
struct Args {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, env = "TRELLIS2_MESH_LISTEN", default_value = "127.0.0.1:50054")]
    listen: String,
    /// Model directory (Hugging Face layout) or `demo`.
    #[arg(long, env = "TRELLIS2_MODELS", default_value = "demo")]
    models: String,
    /// Frames of the turntable preview video.
    #[arg(long, env = "TRELLIS2_PREVIEW_FRAMES", default_value_t = PreviewSettings::default().frames)]
    preview_frames: u32,
    /// Side of one preview view in pixels (a multiple of 4; a frame is 2R × 1.5R).
    #[arg(long, env = "TRELLIS2_PREVIEW_RESOLUTION", default_value_t = PreviewSettings::default().resolution)]
    preview_resolution: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = t2_telemetry::init_from_env("trellis2-mesh")?;
    let models = model_dir::resolve(&args.models, &model_dir::default_demo_dir())?;
    let device = t2_tensor::Device::from_env().context("TRELLIS2_DEVICE")?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this line to learn the port.
    println!("listening on {addr}");
    tracing::info!(%addr, models = %models.display(), %device, "trellis2-mesh starting");
    let preview = PreviewSettings {
        frames: args.preview_frames,
        resolution: args.preview_resolution,
    };
    let imp: Arc<dyn t2_svc_mesh::MeshExtractor> =
        t2_svc_mesh::MeshService::start(&models, device, preview);
    t2_svc_mesh::serve(imp, listener, t2_proto::server::shutdown_signal()).await?;
    Ok(())
}
