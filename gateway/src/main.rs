//! `trellis2-gateway`: the HTTP gateway in front of the four gRPC services.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use t2_gateway::{AppState, Backends, GatewayConfig, UpstreamUrls};

#[derive(Debug, Parser)]
#[command(name = "trellis2-gateway", version, about = "trellis2 HTTP gateway")]
struct Args {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, env = "TRELLIS2_LISTEN", default_value = "127.0.0.1:8000")]
    listen: String,
    /// Data directory: tokens, job database, artifacts, state key.
    #[arg(long, env = "TRELLIS2_DATA", default_value = "./data")]
    data: PathBuf,
    /// The services' gRPC addresses. Each takes a comma-separated list of replicas
    /// (`--flow-url http://gpu0:50053,http://gpu1:50053`): calls go to the least loaded one,
    /// and the per-service gates grow with the count (raise `--job-concurrency` to match).
    #[arg(
        long,
        env = "TRELLIS2_RMBG_URL",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:50051"
    )]
    rmbg_url: Vec<String>,
    #[arg(
        long,
        env = "TRELLIS2_DINOV3_URL",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:50052"
    )]
    dinov3_url: Vec<String>,
    #[arg(
        long,
        env = "TRELLIS2_FLOW_URL",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:50053"
    )]
    flow_url: Vec<String>,
    #[arg(
        long,
        env = "TRELLIS2_MESH_URL",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:50054"
    )]
    mesh_url: Vec<String>,
    /// Jobs executed at once (one per GPU: with two flow replicas, 2).
    #[arg(long, env = "TRELLIS2_JOB_CONCURRENCY", default_value_t = 1)]
    job_concurrency: usize,
    /// Seconds before a synchronous call is answered 504 `timeout`.
    #[arg(long, env = "TRELLIS2_REQUEST_TIMEOUT", default_value_t = t2_gateway::DEFAULT_REQUEST_TIMEOUT.as_secs())]
    request_timeout: u64,
    /// Synchronous generations running at once; more get 429 `overloaded` with Retry-After.
    #[arg(long, env = "TRELLIS2_MAX_INFLIGHT", default_value_t = t2_gateway::DEFAULT_MAX_INFLIGHT)]
    max_inflight: usize,
    /// Jobs waiting for a worker before new ones get 429 `overloaded`.
    #[arg(long, env = "TRELLIS2_MAX_QUEUED_JOBS", default_value_t = t2_gateway::DEFAULT_MAX_QUEUED_JOBS)]
    max_queued_jobs: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = t2_telemetry::init_from_env("trellis2-gateway")?;
    let backends = Backends::grpc(&UpstreamUrls {
        rmbg: args.rmbg_url,
        dinov3: args.dinov3_url,
        flow: args.flow_url,
        mesh: args.mesh_url,
    })
    .context("upstream URLs")?;
    let config = GatewayConfig {
        job_concurrency: args.job_concurrency,
        request_timeout: std::time::Duration::from_secs(args.request_timeout),
        max_inflight: args.max_inflight,
        max_queued_jobs: args.max_queued_jobs,
        ..GatewayConfig::new(args.data)
    };
    let state = AppState::open(&config, backends).await?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("listening on {addr}");
    tracing::info!(%addr, "trellis2-gateway starting");
    axum::serve(listener, t2_gateway::app(state))
        .with_graceful_shutdown(t2_proto::server::shutdown_signal())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_url_takes_a_comma_separated_list_of_replicas() {
        let a = Args::try_parse_from([
            "trellis2-gateway",
            "--flow-url",
            "http://gpu0:50053,http://gpu1:50053",
        ])
        .unwrap();
        assert_eq!(a.flow_url, ["http://gpu0:50053", "http://gpu1:50053"]);
        assert_eq!(a.mesh_url, ["http://127.0.0.1:50054"]);
    }
}
