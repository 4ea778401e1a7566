//! Background-removal service (RMBG-2.0 / BiRefNet through ONNX Runtime).
//!
//! [`BackgroundRemover`] is the service as a Rust trait; [`GrpcAdapter`] serves any implementation
//! over tonic, [`RemoteBackgroundRemover`] calls a remote one through the same trait, so the
//! gateway orchestrates in-process and networked meshes with one code path. The compute is
//! [`compute::RmbgService`] (`t2-birefnet` + `t2-imageops`); [`NotBuilt`] is the stand-in of a
//! gateway configured without compute (every call UNIMPLEMENTED, health NOT_SERVING).

pub mod compute;
pub mod shared;

use std::sync::Arc;

pub use compute::{Provider, RmbgService};
use t2_proto::common::v1::{GetInfoRequest, Image, ServiceInfo};
use t2_proto::limits::MAX_MESSAGE_BYTES;
use t2_proto::rmbg::v1::background_removal_client::BackgroundRemovalClient;
use t2_proto::rmbg::v1::background_removal_server::{self, BackgroundRemovalServer};
use t2_proto::rmbg::v1::{RemoveBackgroundRequest, RemoveBackgroundResponse};
use t2_proto::{ServiceError, service_names};
use t2_telemetry::grpc::{GrpcServerTraceLayer, TraceContextInjector};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

/// The short name used in logs, `/ready` and `/v1/status`.
pub const SERVICE: &str = "rmbg";

/// Background removal as a library trait.
#[async_trait::async_trait]
pub trait BackgroundRemover: Send + Sync + 'static {
    /// Loaded models, device, readiness (drives gRPC health).
    async fn info(&self) -> ServiceInfo;
    /// Cuts the subject out (or keeps a real alpha channel) and returns the cut-out and the
    /// preprocessed crop, both RGBA PNG.
    async fn remove_background(
        &self,
        image: Image,
    ) -> Result<RemoveBackgroundResponse, ServiceError>;
}

/// The implementation used while no background-removal compute is built into this binary.
#[derive(Debug, Clone, Default)]
pub struct NotBuilt;

const NOT_BUILT: &str = "background removal (RMBG-2.0 via ONNX Runtime) is not built into this \
                         binary yet; no output can be produced";

#[async_trait::async_trait]
impl BackgroundRemover for NotBuilt {
    async fn info(&self) -> ServiceInfo {
        ServiceInfo {
            service: SERVICE.into(),
            ready: false,
            detail: NOT_BUILT.into(),
            ..Default::default()
        }
    }

    async fn remove_background(&self, _: Image) -> Result<RemoveBackgroundResponse, ServiceError> {
        Err(ServiceError::NotImplemented(NOT_BUILT.into()))
    }
}

/// Serves a [`BackgroundRemover`] as `trellis2.rmbg.v1.BackgroundRemoval`.
pub struct GrpcAdapter(pub Arc<dyn BackgroundRemover>);

#[tonic::async_trait]
impl background_removal_server::BackgroundRemoval for GrpcAdapter {
    #[tracing::instrument(name = "rmbg.remove_background", skip_all)]
    async fn remove_background(
        &self,
        request: Request<RemoveBackgroundRequest>,
    ) -> Result<Response<RemoveBackgroundResponse>, Status> {
        let image = request
            .into_inner()
            .image
            .filter(|i| !i.data.is_empty())
            .ok_or_else(|| Status::invalid_argument("`image` with encoded bytes is required"))?;
        let out = self.0.remove_background(image).await?;
        Ok(Response::new(out))
    }

    async fn get_info(&self, _: Request<GetInfoRequest>) -> Result<Response<ServiceInfo>, Status> {
        Ok(Response::new(self.0.info().await))
    }
}

/// The tonic service for `imp`, with the explicit message-size limits.
pub fn grpc_service(imp: Arc<dyn BackgroundRemover>) -> BackgroundRemovalServer<GrpcAdapter> {
    BackgroundRemovalServer::new(GrpcAdapter(imp))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Serves `imp` with health, reflection and trace-context extraction on `listener` until
/// `shutdown` resolves.
pub async fn serve(
    imp: Arc<dyn BackgroundRemover>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let probe = imp.clone();
    let (health, reflection) = t2_proto::server::support_services(service_names::RMBG, move || {
        let p = probe.clone();
        async move { p.info().await.ready }
    });
    tonic::transport::Server::builder()
        .layer(GrpcServerTraceLayer::new(SERVICE))
        .add_service(health)
        .add_service(reflection)
        .add_service(grpc_service(imp))
        .serve_with_incoming_shutdown(t2_proto::server::incoming(listener), shutdown)
        .await
}

/// A remote background-removal service behind the same trait (trace context injected).
#[derive(Clone)]
pub struct RemoteBackgroundRemover {
    channel: Channel,
    client: BackgroundRemovalClient<InterceptedService<Channel, TraceContextInjector>>,
}

impl RemoteBackgroundRemover {
    pub fn new(channel: Channel) -> Self {
        let client =
            BackgroundRemovalClient::with_interceptor(channel.clone(), TraceContextInjector)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Self { channel, client }
    }
}

#[async_trait::async_trait]
impl BackgroundRemover for RemoteBackgroundRemover {
    async fn info(&self) -> ServiceInfo {
        t2_proto::client::remote_info(
            SERVICE,
            &self.channel,
            service_names::RMBG,
            self.client.clone().get_info(GetInfoRequest {}),
        )
        .await
    }

    async fn remove_background(
        &self,
        image: Image,
    ) -> Result<RemoveBackgroundResponse, ServiceError> {
        let req = RemoveBackgroundRequest { image: Some(image) };
        self.client
            .clone()
            .remove_background(req)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| shared::upstream::from_status(SERVICE, s))
    }
}
