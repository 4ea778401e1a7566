//! `trellis2 serve` (the whole mesh in one process, or the gateway alone in front of remote
//! services) and `trellis2 service <name>` (one gRPC service): the same library code as the
//! `trellis2-gateway` and `trellis2-<name>` binaries.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use t2_gateway::{AppState, Backends, GatewayConfig, InProcessOptions, UpstreamUrls};
use t2_tensor::Device;

use crate::{ComputeArgs, ProviderArg, ServeArgs, ServiceArgs, ServiceName};

/// `--models` as a directory: `demo` is written under `<data>/models/demo` the first time.
pub(crate) fn model_dir(compute: &ComputeArgs, data: &Path) -> anyhow::Result<PathBuf> {
    let demo = data.join("models").join("demo");
    if compute.models == t2_cli::models::DEMO && !t2_cli::models::is_current_demo(&demo) {
        eprintln!("writing the demo models into {} (once)", demo.display());
    }
    Ok(t2_svc_flow::shared::model_dir::resolve(
        &compute.models,
        &demo,
    )?)
}

pub(crate) fn device(compute: &ComputeArgs) -> anyhow::Result<Device> {
    Device::parse(&compute.device).with_context(|| format!("--device {}", compute.device))
}

pub(crate) fn in_process_options(
    compute: &ComputeArgs,
    models: &Path,
) -> anyhow::Result<InProcessOptions> {
    Ok(InProcessOptions {
        models: models.to_path_buf(),
        device: device(compute)?,
        rmbg_provider: provider(compute.rmbg_provider),
        preview: preview(compute),
    })
}

fn provider(p: ProviderArg) -> t2_svc_rmbg::Provider {
    match p {
        ProviderArg::Auto => t2_svc_rmbg::Provider::Auto,
        ProviderArg::Cpu => t2_svc_rmbg::Provider::Cpu,
        ProviderArg::Cuda => t2_svc_rmbg::Provider::Cuda,
    }
}

fn preview(compute: &ComputeArgs) -> t2_svc_mesh::PreviewSettings {
    t2_svc_mesh::PreviewSettings {
        frames: compute.preview_frames,
        resolution: compute.preview_resolution,
    }
}

pub(crate) async fn serve(a: ServeArgs) -> anyhow::Result<i32> {
    let _telemetry = t2_telemetry::init_from_env("trellis2")?;
    let backends = match (a.rmbg_url, a.dinov3_url, a.flow_url, a.mesh_url) {
        (Some(rmbg), Some(dinov3), Some(flow), Some(mesh)) => {
            tracing::info!("gateway in front of remote services");
            Backends::grpc(&UpstreamUrls {
                rmbg,
                dinov3,
                flow,
                mesh,
            })
            .context("upstream URLs")?
        }
        (None, None, None, None) => {
            let models = model_dir(&a.compute, &a.data)?;
            let opts = in_process_options(&a.compute, &models)?;
            tracing::info!(models = %models.display(), device = %opts.device, "embedded mesh");
            Backends::start_in_process(&opts)
        }
        _ => anyhow::bail!("give all four of --rmbg-url, --dinov3-url, --flow-url, --mesh-url"),
    };
    let config = GatewayConfig {
        job_concurrency: a.job_concurrency,
        request_timeout: std::time::Duration::from_secs(a.request_timeout),
        max_inflight: a.max_inflight,
        max_queued_jobs: a.max_queued_jobs,
        ..GatewayConfig::new(a.data)
    };
    let state = AppState::open(&config, backends.clone()).await?;
    state
        .metrics
        .spawn_upstream_refresh(backends, t2_gateway::metrics::UPSTREAM_REFRESH);
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .with_context(|| format!("binding {}", a.listen))?;
    let addr = listener.local_addr()?;
    println!("listening on {addr}");
    tracing::info!(%addr, "trellis2 serve starting");
    axum::serve(listener, t2_gateway::app(state))
        .with_graceful_shutdown(t2_proto::server::shutdown_signal())
        .await?;
    Ok(0)
}

pub(crate) async fn service(a: ServiceArgs) -> anyhow::Result<i32> {
    let name = match a.name {
        ServiceName::Rmbg => "trellis2-rmbg",
        ServiceName::Dinov3 => "trellis2-dinov3",
        ServiceName::Flow => "trellis2-flow",
        ServiceName::Mesh => "trellis2-mesh",
    };
    let _telemetry = t2_telemetry::init_from_env(name)?;
    let models = model_dir(&a.compute, &a.data)?;
    let dev = device(&a.compute)?;
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .with_context(|| format!("binding {}", a.listen))?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this line to learn the port.
    println!("listening on {addr}");
    tracing::info!(%addr, models = %models.display(), device = %dev, "{name} starting");
    let stop = t2_proto::server::shutdown_signal();
    match a.name {
        ServiceName::Rmbg => {
            let imp = t2_svc_rmbg::RmbgService::start(&models, provider(a.compute.rmbg_provider));
            t2_svc_rmbg::serve(imp, listener, stop).await?
        }
        ServiceName::Dinov3 => {
            let imp = t2_svc_dinov3::Dinov3Service::start(&models, dev);
            t2_svc_dinov3::serve(imp, listener, stop).await?
        }
        ServiceName::Flow => {
            let imp = t2_svc_flow::FlowService::start(&models, dev);
            t2_svc_flow::serve(imp, listener, stop).await?
        }
        ServiceName::Mesh => {
            let imp: Arc<dyn t2_svc_mesh::MeshExtractor> =
                t2_svc_mesh::MeshService::start(&models, dev, preview(&a.compute));
            t2_svc_mesh::serve(imp, listener, stop).await?
        }
    }
    Ok(0)
}
