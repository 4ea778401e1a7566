//! `GET /metrics` for a service process (its gRPC port speaks only gRPC).

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};

#[derive(Debug, thiserror::Error)]
pub enum GpumonError {
    #[error("binding the metrics endpoint {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("registering the GPU metrics: {0}")]
    Register(#[from] prometheus::Error),
}

/// `registry` in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut buf)
        .expect("text encoding into a Vec cannot fail");
    String::from_utf8(buf).expect("prometheus text is UTF-8")
}

/// Serves `GET /metrics` from `registry` on `listener` until `shutdown` resolves.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    registry: Registry,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move {
                // NVML and driver queries block briefly; keep them off the async workers.
                let text = tokio::task::spawn_blocking(move || render(&registry))
                    .await
                    .unwrap_or_else(|e| format!("# sampling failed: {e}\n"));
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// For a service's `main`: binds `addr` (e.g. `0.0.0.0:9464`; port 0 picks one) and serves the
/// process-wide monitor's metrics there in a background task, for the life of the runtime.
/// Returns the bound address.
pub async fn spawn_metrics_endpoint(addr: &str) -> Result<SocketAddr, GpumonError> {
    let bind_err = |source| GpumonError::Bind {
        addr: addr.to_string(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_err)?;
    let bound = listener.local_addr().map_err(bind_err)?;
    let registry = Registry::new();
    crate::global().register(&registry)?;
    tokio::spawn(async move {
        if let Err(e) = serve_metrics(listener, registry, std::future::pending()).await {
            tracing::error!(error = %e, "metrics endpoint stopped");
        }
    });
    tracing::info!(%bound, "metrics endpoint listening");
    Ok(bound)
}
