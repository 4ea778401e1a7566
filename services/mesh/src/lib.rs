//! Mesh service: SC-VAE shape/texture decoding, flexible-dual-grid extraction, hole fill,
//! remesh, decimation, UV unwrap, texture bake, GLB export and the optional preview video.
//!
//! [`MeshExtractor`] is the service as a trait; [`GrpcAdapter`] serves it (progress events, then
//! each artifact as a header and 1 MiB chunks, then stats), [`RemoteMeshExtractor`] calls a
//! remote one through the same trait. The compute is [`compute::MeshService`] (`t2-models`
//! decoders + `t2-mesh`); [`NotBuilt`] is the stand-in of a gateway configured without compute
//! (UNIMPLEMENTED).

mod bench_surface;
pub mod compute;
pub mod shared;

use std::sync::Arc;

use bytes::Bytes;
pub use compute::{MeshModels, MeshService, PreviewSettings};
use t2_proto::common::v1::{DenseTensor, GetInfoRequest, Progress, ServiceInfo};
use t2_proto::limits::MAX_MESSAGE_BYTES;
use t2_proto::mesh::v1::extract_response::Event;
use t2_proto::mesh::v1::extract_staged_request::Part;
use t2_proto::mesh::v1::mesh_client::MeshClient;
use t2_proto::mesh::v1::mesh_server::{self, MeshServer};
use t2_proto::mesh::v1::{
    ArtifactHeader, ExtractRequest, ExtractResponse, ExtractStagedRequest, Stats, TextureFormat,
};
use t2_proto::server::EventStream;
use t2_proto::{ErrorCode, ProgressSink, ServiceError, service_names};
use t2_telemetry::grpc::{GrpcServerTraceLayer, TraceContextInjector};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

pub const SERVICE: &str = "mesh";

/// Export parameter limits (product.md §2 `/extract_glb`).
pub const MIN_DECIMATION_TARGET: u32 = 1000;
/// 20 M faces: beyond what any pipeline resolution produces before decimation.
pub const MAX_DECIMATION_TARGET: u32 = 20_000_000;
pub const DEFAULT_DECIMATION_TARGET: u32 = 1_000_000;
pub const TEXTURE_SIZES: [u32; 4] = [512, 1024, 2048, 4096];
pub const DEFAULT_TEXTURE_SIZE: u32 = 4096;
/// Narrow-band width and projection weight of the remesh, in voxels / as a blend factor. The
/// band must be positive (a zero band is the surface itself: nothing to contour).
pub const REMESH_BAND: std::ops::RangeInclusive<f32> = 0.01..=8.0;
pub const REMESH_PROJECT: std::ops::RangeInclusive<f32> = 0.0..=1.0;

/// One produced file.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    /// e.g. `model.glb`, `preview.mp4`.
    pub name: String,
    /// e.g. `model/gltf-binary`, `video/mp4`.
    pub media_type: String,
    pub data: Bytes,
}

/// What one extraction produces.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExtractOutput {
    pub artifacts: Vec<Artifact>,
    pub stats: Stats,
}

/// The texture latents of a staged extraction (f32 [N, C_tex]) once the flow has them; a
/// dropped sender means they will never come (the flow failed or the caller went away).
pub type TexLatents = tokio::sync::oneshot::Receiver<Result<DenseTensor, ServiceError>>;

/// Mesh extraction and export as a library trait.
#[async_trait::async_trait]
pub trait MeshExtractor: Send + Sync + 'static {
    async fn info(&self) -> ServiceInfo;
    async fn extract(
        &self,
        request: ExtractRequest,
        progress: ProgressSink,
    ) -> Result<ExtractOutput, ServiceError>;
    /// `extract` of a request whose `latents.tex_slat` comes later through `tex`: an
    /// implementation can decode the shape and run its GLB surface steps meanwhile. The
    /// default waits for the texture latents, then extracts.
    async fn extract_staged(
        &self,
        request: ExtractRequest,
        tex: TexLatents,
        progress: ProgressSink,
    ) -> Result<ExtractOutput, ServiceError> {
        let request = with_tex(request, tex).await?;
        self.extract(request, progress).await
    }
}

/// A staged extraction's request completed with its texture latents, once they come.
pub async fn with_tex(
    mut request: ExtractRequest,
    tex: TexLatents,
) -> Result<ExtractRequest, ServiceError> {
    let tex = tex.await.map_err(|_| tex_never_came())??;
    if let Some(l) = request.latents.as_mut() {
        l.tex_slat = Some(tex);
    }
    Ok(request)
}

/// The error of a staged extraction whose texture latents never came.
pub fn tex_never_came() -> ServiceError {
    ServiceError::Cancelled(
        "the texture latents of this staged extraction never came (the flow stopped)".into(),
    )
}

/// The implementation used while mesh extraction is not built into this binary.
#[derive(Debug, Clone, Default)]
pub struct NotBuilt;

const NOT_BUILT: &str = "mesh decoding and GLB export are not built into this binary yet; no \
                         output can be produced";

#[async_trait::async_trait]
impl MeshExtractor for NotBuilt {
    async fn info(&self) -> ServiceInfo {
        ServiceInfo {
            service: SERVICE.into(),
            ready: false,
            detail: NOT_BUILT.into(),
            ..Default::default()
        }
    }

    async fn extract(
        &self,
        _: ExtractRequest,
        _: ProgressSink,
    ) -> Result<ExtractOutput, ServiceError> {
        Err(ServiceError::NotImplemented(NOT_BUILT.into()))
    }
}

/// Rejects an invalid request with every problem listed.
pub fn validate_request(req: &ExtractRequest) -> Result<(), ServiceError> {
    request_problems(req, true)
}

/// `validate_request` for the first message of a staged extraction (no `tex_slat` yet).
pub fn validate_staged_request(req: &ExtractRequest) -> Result<(), ServiceError> {
    if req.latents.as_ref().is_some_and(|l| l.tex_slat.is_some()) {
        return Err(ServiceError::InvalidArgument(
            "a staged extraction's first message carries no tex_slat (it comes second)".into(),
        ));
    }
    request_problems(req, false)
}

fn request_problems(req: &ExtractRequest, with_tex: bool) -> Result<(), ServiceError> {
    let mut errors = Vec::new();
    match &req.latents {
        None => errors.push("latents are required".to_string()),
        Some(l) => {
            let tensors = [
                ("coords", &l.coords),
                ("shape_slat", &l.shape_slat),
                ("tex_slat", &l.tex_slat),
            ];
            for (name, t) in tensors.into_iter().take(if with_tex { 3 } else { 2 }) {
                match t {
                    None => errors.push(format!("latents.{name} is required")),
                    Some(t) => {
                        if let Err(e) = t2_proto::tensor::validate(t) {
                            errors.push(format!("latents.{name}: {e}"));
                        }
                    }
                }
            }
        }
    }
    match &req.params {
        None => errors.push("params are required".to_string()),
        Some(p) => {
            if !(MIN_DECIMATION_TARGET..=MAX_DECIMATION_TARGET).contains(&p.decimation_target) {
                errors.push(format!(
                    "decimation_target = {} is outside [{MIN_DECIMATION_TARGET}, {MAX_DECIMATION_TARGET}]",
                    p.decimation_target
                ));
            }
            if !TEXTURE_SIZES.contains(&p.texture_size) {
                errors.push(format!(
                    "texture_size = {} is not one of {TEXTURE_SIZES:?}",
                    p.texture_size
                ));
            }
            if !REMESH_BAND.contains(&p.remesh_band) {
                errors.push(format!(
                    "remesh_band = {} is outside {REMESH_BAND:?}",
                    p.remesh_band
                ));
            }
            if !REMESH_PROJECT.contains(&p.remesh_project) {
                errors.push(format!(
                    "remesh_project = {} is outside {REMESH_PROJECT:?}",
                    p.remesh_project
                ));
            }
            if TextureFormat::try_from(p.texture_format).unwrap_or_default()
                == TextureFormat::Unspecified
            {
                errors.push("texture_format must be png or webp".to_string());
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::InvalidArgument(errors.join("; ")))
    }
}

fn to_messages(out: ExtractOutput) -> Vec<ExtractResponse> {
    let mut msgs = Vec::new();
    for a in out.artifacts {
        msgs.push(ExtractResponse {
            event: Some(Event::Artifact(ArtifactHeader {
                name: a.name,
                media_type: a.media_type,
                total_bytes: a.data.len() as u64,
            })),
        });
        msgs.extend(t2_proto::chunk::split(a.data).map(|c| ExtractResponse {
            event: Some(Event::Chunk(c)),
        }));
    }
    msgs.push(ExtractResponse {
        event: Some(Event::Stats(out.stats)),
    });
    msgs
}

/// Serves a [`MeshExtractor`] as `trellis2.mesh.v1.Mesh`.
pub struct GrpcAdapter(pub Arc<dyn MeshExtractor>);

#[tonic::async_trait]
impl mesh_server::Mesh for GrpcAdapter {
    type ExtractStream = EventStream<ExtractResponse>;

    #[tracing::instrument(name = "mesh.extract", skip_all)]
    async fn extract(
        &self,
        request: Request<ExtractRequest>,
    ) -> Result<Response<Self::ExtractStream>, Status> {
        let req = request.into_inner();
        validate_request(&req)?;
        let imp = self.0.clone();
        let stream = t2_proto::server::progress_stream(
            move |sink| async move { imp.extract(req, sink).await },
            |p: Progress| ExtractResponse {
                event: Some(Event::Progress(p)),
            },
            to_messages,
        );
        Ok(Response::new(stream))
    }

    type ExtractStagedStream = EventStream<ExtractResponse>;

    #[tracing::instrument(name = "mesh.extract_staged", skip_all)]
    async fn extract_staged(
        &self,
        request: Request<Streaming<ExtractStagedRequest>>,
    ) -> Result<Response<Self::ExtractStagedStream>, Status> {
        let mut inbound = request.into_inner();
        let req = match inbound.message().await? {
            Some(ExtractStagedRequest {
                part: Some(Part::Shape(req)),
            }) => req,
            _ => {
                return Err(Status::invalid_argument(
                    "a staged extraction starts with its shape request",
                ));
            }
        };
        validate_staged_request(&req)?;
        // The texture latents arrive on the same stream later; a stream that ends (or breaks)
        // first drops the sender, which stops the extraction.
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let tex = match inbound.message().await {
                Ok(Some(ExtractStagedRequest {
                    part: Some(Part::TexSlat(t)),
                })) => Ok(t),
                Ok(Some(_)) => Err(ServiceError::InvalidArgument(
                    "a staged extraction's second message is its tex_slat".into(),
                )),
                Ok(None) | Err(_) => return,
            };
            let _ = tx.send(tex);
        });
        let imp = self.0.clone();
        let stream = t2_proto::server::progress_stream(
            move |sink| async move { imp.extract_staged(req, rx, sink).await },
            |p: Progress| ExtractResponse {
                event: Some(Event::Progress(p)),
            },
            to_messages,
        );
        Ok(Response::new(stream))
    }

    async fn get_info(&self, _: Request<GetInfoRequest>) -> Result<Response<ServiceInfo>, Status> {
        Ok(Response::new(self.0.info().await))
    }
}

pub fn grpc_service(imp: Arc<dyn MeshExtractor>) -> MeshServer<GrpcAdapter> {
    MeshServer::new(GrpcAdapter(imp))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Serves `imp` with health, reflection and trace-context extraction until `shutdown`.
pub async fn serve(
    imp: Arc<dyn MeshExtractor>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let probe = imp.clone();
    let (health, reflection) = t2_proto::server::support_services(service_names::MESH, move || {
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

/// A remote mesh service behind the same trait.
#[derive(Clone)]
pub struct RemoteMeshExtractor {
    channel: Channel,
    client: MeshClient<InterceptedService<Channel, TraceContextInjector>>,
}

impl RemoteMeshExtractor {
    pub fn new(channel: Channel) -> Self {
        let client = MeshClient::with_interceptor(channel.clone(), TraceContextInjector)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Self { channel, client }
    }
}

fn protocol_error(msg: impl std::fmt::Display) -> ServiceError {
    ServiceError::failed(
        ErrorCode::Internal,
        format!("mesh stream is malformed: {msg}"),
    )
}

#[async_trait::async_trait]
impl MeshExtractor for RemoteMeshExtractor {
    async fn info(&self) -> ServiceInfo {
        let mut client = self.client.clone();
        let call = client.get_info(GetInfoRequest {});
        t2_proto::client::remote_info(SERVICE, &self.channel, service_names::MESH, call).await
    }

    async fn extract(
        &self,
        request: ExtractRequest,
        progress: ProgressSink,
    ) -> Result<ExtractOutput, ServiceError> {
        let upstream = |s| shared::upstream::from_status(SERVICE, s);
        let stream = self
            .client
            .clone()
            .extract(request)
            .await
            .map_err(upstream)?
            .into_inner();
        read_extract_stream(stream, progress).await
    }

    async fn extract_staged(
        &self,
        request: ExtractRequest,
        tex: TexLatents,
        progress: ProgressSink,
    ) -> Result<ExtractOutput, ServiceError> {
        use futures::StreamExt;
        let upstream = |s| shared::upstream::from_status(SERVICE, s);
        let shape = ExtractStagedRequest {
            part: Some(Part::Shape(request)),
        };
        // The texture latents follow when they come; without them the stream just ends, and
        // the service stops the extraction.
        let tex = futures::stream::once(tex).filter_map(|t| {
            futures::future::ready(t.ok().and_then(Result::ok).map(|t| ExtractStagedRequest {
                part: Some(Part::TexSlat(t)),
            }))
        });
        let outbound = futures::stream::once(async move { shape }).chain(tex);
        let stream = self
            .client
            .clone()
            .extract_staged(outbound)
            .await
            .map_err(upstream)?
            .into_inner();
        read_extract_stream(stream, progress).await
    }
}

/// Progress events to `progress`, then the artifacts and stats of an extraction's response
/// stream.
async fn read_extract_stream(
    mut stream: Streaming<ExtractResponse>,
    progress: ProgressSink,
) -> Result<ExtractOutput, ServiceError> {
    let upstream = |s| shared::upstream::from_status(SERVICE, s);
    let mut artifacts = Vec::new();
    let mut current: Option<(ArtifactHeader, t2_proto::chunk::Assembler)> = None;
    let finish = |cur: Option<(ArtifactHeader, t2_proto::chunk::Assembler)>,
                  artifacts: &mut Vec<Artifact>| {
        if let Some((h, a)) = cur {
            artifacts.push(Artifact {
                name: h.name,
                media_type: h.media_type,
                data: a.finish().map_err(protocol_error)?,
            });
        }
        Ok::<_, ServiceError>(())
    };
    while let Some(msg) = stream.message().await.map_err(upstream)? {
        match msg.event {
            Some(Event::Progress(p)) => progress.send(p),
            Some(Event::Artifact(h)) => {
                let a = t2_proto::chunk::Assembler::new(h.total_bytes).map_err(protocol_error)?;
                finish(current.replace((h, a)), &mut artifacts)?;
            }
            Some(Event::Chunk(c)) => current
                .as_mut()
                .ok_or_else(|| protocol_error("chunk before artifact header"))?
                .1
                .push(c)
                .map_err(protocol_error)?,
            Some(Event::Stats(stats)) => {
                finish(current.take(), &mut artifacts)?;
                return Ok(ExtractOutput { artifacts, stats });
            }
            None => {}
        }
    }
    Err(protocol_error("stream ended before stats"))
}
