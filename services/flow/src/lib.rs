//! Flow-sampling service: sparse-structure flow + decoder, shape (single or cascade) and texture
//! structured-latent flows. Returns latents only; decoding belongs to the mesh service.
//!
//! [`FlowSampler`] is the service as a trait; [`GrpcAdapter`] serves it (progress streamed,
//! then one `Latents` message), [`RemoteFlowSampler`] calls a remote one through the same trait.
//! The compute is [`compute::FlowService`] (the `t2-models` pipeline stages); [`NotBuilt`] is
//! the stand-in of a gateway configured without compute (UNIMPLEMENTED).

pub mod compute;
pub mod params;
pub mod shared;

use std::sync::Arc;

pub use compute::{FlowModels, FlowService};

use t2_proto::common::v1::{GetInfoRequest, Latents, Progress, ServiceInfo};
use t2_proto::flow::v1::flow_client::FlowClient;
use t2_proto::flow::v1::flow_server::{self, FlowServer};
use t2_proto::flow::v1::generate_response::Event;
use t2_proto::flow::v1::{GenerateRequest, GenerateResponse};
use t2_proto::limits::MAX_MESSAGE_BYTES;
use t2_proto::server::EventStream;
use t2_proto::{ErrorCode, ProgressSink, ServiceError, service_names};
use t2_telemetry::grpc::{GrpcServerTraceLayer, TraceContextInjector};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

pub const SERVICE: &str = "flow";

/// Where a staged generation hands its shape latents (`tex_slat` unset) before the texture
/// flow starts.
pub type ShapeLatentsSink = tokio::sync::oneshot::Sender<Latents>;

/// Flow sampling as a library trait.
#[async_trait::async_trait]
pub trait FlowSampler: Send + Sync + 'static {
    async fn info(&self) -> ServiceInfo;
    /// Samples the latents of one asset, reporting progress per stage and step.
    async fn generate(
        &self,
        request: GenerateRequest,
        progress: ProgressSink,
    ) -> Result<Latents, ServiceError>;
    /// `generate`, also handing the shape latents to `shape` as soon as they are sampled, so
    /// the caller can decode the shape during the texture flow. The default never sends them
    /// (the sender is dropped): callers then wait for the whole latents.
    async fn generate_staged(
        &self,
        request: GenerateRequest,
        progress: ProgressSink,
        shape: ShapeLatentsSink,
    ) -> Result<Latents, ServiceError> {
        drop(shape);
        self.generate(request, progress).await
    }
}

/// The implementation used while flow sampling is not built into this binary.
#[derive(Debug, Clone, Default)]
pub struct NotBuilt;

const NOT_BUILT: &str = "flow sampling (sparse-structure, shape and texture flows) is not built into this binary \
     yet; no output can be produced";

#[async_trait::async_trait]
impl FlowSampler for NotBuilt {
    async fn info(&self) -> ServiceInfo {
        ServiceInfo {
            service: SERVICE.into(),
            ready: false,
            detail: NOT_BUILT.into(),
            ..Default::default()
        }
    }

    async fn generate(&self, _: GenerateRequest, _: ProgressSink) -> Result<Latents, ServiceError> {
        Err(ServiceError::NotImplemented(NOT_BUILT.into()))
    }
}

/// Rejects an invalid request with every problem listed.
pub fn validate_request(req: &GenerateRequest) -> Result<(), ServiceError> {
    let problems = params::request_problems(req);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::InvalidArgument(problems.join("; ")))
    }
}

/// Serves a [`FlowSampler`] as `trellis2.flow.v1.Flow`.
pub struct GrpcAdapter(pub Arc<dyn FlowSampler>);

/// The shape latents still to send, if any.
type PendingShape = std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<Latents>>>;

/// Sends the shape latents if they have arrived and are not sent yet; returns the lock, so
/// that a progress event sent while holding it cannot overtake them.
fn forward_shape<'a>(
    pending: &'a PendingShape,
    events: &t2_proto::server::Events<GenerateResponse>,
) -> std::sync::MutexGuard<'a, Option<tokio::sync::oneshot::Receiver<Latents>>> {
    use tokio::sync::oneshot::error::TryRecvError;
    let mut slot = pending.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(rx) = slot.as_mut() {
        match rx.try_recv() {
            Ok(shape) => {
                events.send(GenerateResponse {
                    event: Some(Event::ShapeLatents(shape)),
                });
                *slot = None;
            }
            Err(TryRecvError::Closed) => *slot = None,
            Err(TryRecvError::Empty) => {}
        }
    }
    slot
}

#[tonic::async_trait]
impl flow_server::Flow for GrpcAdapter {
    type GenerateStream = EventStream<GenerateResponse>;

    #[tracing::instrument(name = "flow.generate", skip_all)]
    async fn generate(
        &self,
        request: Request<GenerateRequest>,
    ) -> Result<Response<Self::GenerateStream>, Status> {
        let req = request.into_inner();
        validate_request(&req)?;
        let imp = self.0.clone();
        let stream = t2_proto::server::progress_stream_with_events(
            move |sink, events| async move {
                if !req.stream_shape_latents {
                    return imp.generate(req, sink).await;
                }
                let (tx, rx) = tokio::sync::oneshot::channel();
                // The shape latents go out ahead of every progress event that follows them:
                // each progress event first forwards them if they have arrived (the sampler
                // hands them over before its texture flow reports anything), under one lock
                // so the two sends cannot swap. A poller forwards them meanwhile too (no
                // wait for the next step), and a last check runs before the final latents.
                let pending = Arc::new(std::sync::Mutex::new(Some(rx)));
                let ordered = {
                    let (pending, events) = (pending.clone(), events.clone());
                    ProgressSink::new(move |p| {
                        let _held = forward_shape(&pending, &events);
                        sink.send(p);
                    })
                };
                let poller = {
                    let (pending, events) = (pending.clone(), events.clone());
                    tokio::spawn(async move {
                        while forward_shape(&pending, &events).is_some() {
                            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                        }
                    })
                };
                let out = imp.generate_staged(req, ordered, tx).await;
                drop(forward_shape(&pending, &events));
                poller.abort();
                out
            },
            |p: Progress| GenerateResponse {
                event: Some(Event::Progress(p)),
            },
            |latents| {
                vec![GenerateResponse {
                    event: Some(Event::Latents(latents)),
                }]
            },
        );
        Ok(Response::new(stream))
    }

    async fn get_info(&self, _: Request<GetInfoRequest>) -> Result<Response<ServiceInfo>, Status> {
        Ok(Response::new(self.0.info().await))
    }
}

pub fn grpc_service(imp: Arc<dyn FlowSampler>) -> FlowServer<GrpcAdapter> {
    FlowServer::new(GrpcAdapter(imp))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Serves `imp` with health, reflection and trace-context extraction until `shutdown`.
pub async fn serve(
    imp: Arc<dyn FlowSampler>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let probe = imp.clone();
    let (health, reflection) = t2_proto::server::support_services(service_names::FLOW, move || {
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

/// A remote flow sampler behind the same trait.
#[derive(Clone)]
pub struct RemoteFlowSampler {
    channel: Channel,
    client: FlowClient<InterceptedService<Channel, TraceContextInjector>>,
}

impl RemoteFlowSampler {
    pub fn new(channel: Channel) -> Self {
        let client = FlowClient::with_interceptor(channel.clone(), TraceContextInjector)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Self { channel, client }
    }
}

impl RemoteFlowSampler {
    async fn call(
        &self,
        request: GenerateRequest,
        progress: ProgressSink,
        mut shape: Option<ShapeLatentsSink>,
    ) -> Result<Latents, ServiceError> {
        let upstream = |s| shared::upstream::from_status(SERVICE, s);
        let mut stream = self
            .client
            .clone()
            .generate(request)
            .await
            .map_err(upstream)?
            .into_inner();
        while let Some(msg) = stream.message().await.map_err(upstream)? {
            match msg.event {
                Some(Event::Progress(p)) => progress.send(p),
                Some(Event::ShapeLatents(l)) => {
                    if let Some(sink) = shape.take() {
                        let _ = sink.send(l);
                    }
                }
                Some(Event::Latents(l)) => return Ok(l),
                None => {}
            }
        }
        Err(ServiceError::failed(
            ErrorCode::GenerationError,
            "flow stream ended without latents",
        ))
    }
}

#[async_trait::async_trait]
impl FlowSampler for RemoteFlowSampler {
    async fn info(&self) -> ServiceInfo {
        let mut client = self.client.clone();
        let call = client.get_info(GetInfoRequest {});
        t2_proto::client::remote_info(SERVICE, &self.channel, service_names::FLOW, call).await
    }

    async fn generate(
        &self,
        request: GenerateRequest,
        progress: ProgressSink,
    ) -> Result<Latents, ServiceError> {
        self.call(request, progress, None).await
    }

    async fn generate_staged(
        &self,
        mut request: GenerateRequest,
        progress: ProgressSink,
        shape: ShapeLatentsSink,
    ) -> Result<Latents, ServiceError> {
        request.stream_shape_latents = true;
        self.call(request, progress, Some(shape)).await
    }
}
