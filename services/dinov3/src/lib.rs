//! Image-feature service (DINOv3 ViT-L/16): the flow models' conditioning tokens.
//!
//! [`FeatureExtractor`] is the service as a trait; [`GrpcAdapter`] serves it (each feature map
//! streamed as a header then 1 MiB chunks), [`RemoteFeatureExtractor`] calls a remote one through
//! the same trait. The compute is [`compute::Dinov3Service`] (DINOv3 of `t2-models`);
//! [`NotBuilt`] is the stand-in of a gateway configured without compute (UNIMPLEMENTED,
//! health NOT_SERVING).

pub mod compute;
pub mod shared;

use std::sync::Arc;

pub use compute::Dinov3Service;
use t2_proto::common::v1::{Dtype, GetInfoRequest, Image, ServiceInfo, TensorHeader};
use t2_proto::dinov3::v1::dinov3_client::Dinov3Client;
use t2_proto::dinov3::v1::dinov3_server::{self, Dinov3Server};
use t2_proto::dinov3::v1::features_response::Part;
use t2_proto::dinov3::v1::{FeaturesRequest, FeaturesResponse};
use t2_proto::limits::MAX_MESSAGE_BYTES;
use t2_proto::server::EventStream;
use t2_proto::{ErrorCode, ServiceError, service_names};
use t2_telemetry::grpc::{GrpcServerTraceLayer, TraceContextInjector};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

pub use t2_proto::common::v1::DenseTensor;

pub const SERVICE: &str = "dinov3";

/// Resolutions the pipeline conditions on.
pub const RESOLUTIONS: [u32; 2] = [512, 1024];

/// DINOv3 patch tokens of the crop at one resolution: f32 `[1, L, 1024]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMap {
    pub resolution: u32,
    pub tokens: DenseTensor,
}

/// Image features as a library trait.
#[async_trait::async_trait]
pub trait FeatureExtractor: Send + Sync + 'static {
    async fn info(&self) -> ServiceInfo;
    /// One map per requested resolution, in request order.
    async fn features(
        &self,
        image: Image,
        resolutions: Vec<u32>,
    ) -> Result<Vec<FeatureMap>, ServiceError>;
}

/// The implementation used while DINOv3 is not built into this binary.
#[derive(Debug, Clone, Default)]
pub struct NotBuilt;

const NOT_BUILT: &str =
    "DINOv3 feature extraction is not built into this binary yet; no output can be produced";

#[async_trait::async_trait]
impl FeatureExtractor for NotBuilt {
    async fn info(&self) -> ServiceInfo {
        ServiceInfo {
            service: SERVICE.into(),
            ready: false,
            detail: NOT_BUILT.into(),
            ..Default::default()
        }
    }

    async fn features(&self, _: Image, _: Vec<u32>) -> Result<Vec<FeatureMap>, ServiceError> {
        Err(ServiceError::NotImplemented(NOT_BUILT.into()))
    }
}

/// Checks a features request: an image, and 1–2 distinct resolutions among [`RESOLUTIONS`].
pub fn validate_request(image: &Option<Image>, resolutions: &[u32]) -> Result<(), ServiceError> {
    if image.as_ref().is_none_or(|i| i.data.is_empty()) {
        return Err(ServiceError::InvalidArgument(
            "`image` with encoded bytes is required".into(),
        ));
    }
    if resolutions.is_empty() {
        return Err(ServiceError::InvalidArgument(
            "at least one resolution (512 or 1024) is required".into(),
        ));
    }
    for (i, r) in resolutions.iter().enumerate() {
        if !RESOLUTIONS.contains(r) {
            return Err(ServiceError::InvalidArgument(format!(
                "resolution {r} is not one of {RESOLUTIONS:?}"
            )));
        }
        if resolutions[..i].contains(r) {
            return Err(ServiceError::InvalidArgument(format!(
                "resolution {r} requested twice"
            )));
        }
    }
    Ok(())
}

/// Serves a [`FeatureExtractor`] as `trellis2.dinov3.v1.Dinov3`.
pub struct GrpcAdapter(pub Arc<dyn FeatureExtractor>);

fn to_messages(maps: Vec<FeatureMap>) -> Vec<FeaturesResponse> {
    let mut out = Vec::new();
    for m in maps {
        out.push(FeaturesResponse {
            part: Some(Part::Header(TensorHeader {
                name: "dinov3.patch_tokens".into(),
                dtype: m.tokens.dtype,
                shape: m.tokens.shape.clone(),
                total_bytes: m.tokens.data.len() as u64,
                resolution: m.resolution,
            })),
        });
        out.extend(
            t2_proto::chunk::split(m.tokens.data).map(|c| FeaturesResponse {
                part: Some(Part::Chunk(c)),
            }),
        );
    }
    out
}

#[tonic::async_trait]
impl dinov3_server::Dinov3 for GrpcAdapter {
    type FeaturesStream = EventStream<FeaturesResponse>;

    #[tracing::instrument(name = "dinov3.features", skip_all)]
    async fn features(
        &self,
        request: Request<FeaturesRequest>,
    ) -> Result<Response<Self::FeaturesStream>, Status> {
        let req = request.into_inner();
        validate_request(&req.image, &req.resolutions)?;
        // Unary compute, streamed result: the maps are produced together, so no progress events.
        let maps = self
            .0
            .features(req.image.unwrap_or_default(), req.resolutions)
            .await?;
        let messages = to_messages(maps).into_iter().map(Ok);
        Ok(Response::new(Box::pin(futures::stream::iter(messages))))
    }

    async fn get_info(&self, _: Request<GetInfoRequest>) -> Result<Response<ServiceInfo>, Status> {
        Ok(Response::new(self.0.info().await))
    }
}

pub fn grpc_service(imp: Arc<dyn FeatureExtractor>) -> Dinov3Server<GrpcAdapter> {
    Dinov3Server::new(GrpcAdapter(imp))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Serves `imp` with health, reflection and trace-context extraction until `shutdown`.
pub async fn serve(
    imp: Arc<dyn FeatureExtractor>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let probe = imp.clone();
    let (health, reflection) =
        t2_proto::server::support_services(service_names::DINOV3, move || {
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

/// A remote feature extractor behind the same trait.
#[derive(Clone)]
pub struct RemoteFeatureExtractor {
    channel: Channel,
    client: Dinov3Client<InterceptedService<Channel, TraceContextInjector>>,
}

impl RemoteFeatureExtractor {
    pub fn new(channel: Channel) -> Self {
        let client = Dinov3Client::with_interceptor(channel.clone(), TraceContextInjector)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Self { channel, client }
    }
}

fn protocol_error(msg: impl std::fmt::Display) -> ServiceError {
    ServiceError::failed(
        ErrorCode::Internal,
        format!("dinov3 stream is malformed: {msg}"),
    )
}

#[async_trait::async_trait]
impl FeatureExtractor for RemoteFeatureExtractor {
    async fn info(&self) -> ServiceInfo {
        let mut client = self.client.clone();
        let call = client.get_info(GetInfoRequest {});
        t2_proto::client::remote_info(SERVICE, &self.channel, service_names::DINOV3, call).await
    }

    async fn features(
        &self,
        image: Image,
        resolutions: Vec<u32>,
    ) -> Result<Vec<FeatureMap>, ServiceError> {
        let req = FeaturesRequest {
            image: Some(image),
            resolutions,
        };
        let upstream = |s| shared::upstream::from_status(SERVICE, s);
        let mut stream = self
            .client
            .clone()
            .features(req)
            .await
            .map_err(upstream)?
            .into_inner();
        let mut maps = Vec::new();
        let mut current: Option<(TensorHeader, t2_proto::chunk::Assembler)> = None;
        let mut finish = |cur: Option<(TensorHeader, t2_proto::chunk::Assembler)>| {
            if let Some((h, a)) = cur {
                let tokens = DenseTensor {
                    dtype: h.dtype,
                    shape: h.shape,
                    data: a.finish().map_err(protocol_error)?,
                };
                t2_proto::tensor::validate(&tokens).map_err(protocol_error)?;
                maps.push(FeatureMap {
                    resolution: h.resolution,
                    tokens,
                });
            }
            Ok::<_, ServiceError>(())
        };
        while let Some(msg) = stream.message().await.map_err(upstream)? {
            match msg.part {
                Some(Part::Header(h)) => {
                    let a =
                        t2_proto::chunk::Assembler::new(h.total_bytes).map_err(protocol_error)?;
                    finish(current.replace((h, a)))?;
                }
                Some(Part::Chunk(c)) => {
                    let (_, a) = current
                        .as_mut()
                        .ok_or_else(|| protocol_error("chunk before header"))?;
                    a.push(c).map_err(protocol_error)?;
                }
                None => return Err(protocol_error("empty message")),
            }
        }
        finish(current)?;
        Ok(maps)
    }
}

/// The dtype every feature map carries.
pub const FEATURE_DTYPE: Dtype = Dtype::F32;

#[cfg(test)]
mod tests {
    use super::*;

    /// A test double that returns deterministic tensors so the streaming path is exercised end
    /// to end (it is never used outside tests).
    struct Fixed;

    #[async_trait::async_trait]
    impl FeatureExtractor for Fixed {
        async fn info(&self) -> ServiceInfo {
            ServiceInfo {
                service: SERVICE.into(),
                ready: true,
                ..Default::default()
            }
        }
        async fn features(
            &self,
            _: Image,
            resolutions: Vec<u32>,
        ) -> Result<Vec<FeatureMap>, ServiceError> {
            Ok(resolutions
                .into_iter()
                .map(|r| {
                    // 2.5 MB per map: spans three chunks.
                    let l = (r / 16) as u64 * (r / 16) as u64 / 2;
                    let values: Vec<f32> = (0..l * 1024).map(|i| (i % 977) as f32).collect();
                    FeatureMap {
                        resolution: r,
                        tokens: t2_proto::tensor::dense_f32(&[1, l, 1024], &values),
                    }
                })
                .collect())
        }
    }

    #[tokio::test]
    async fn feature_maps_stream_in_chunks_and_reassemble() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(Arc::new(Fixed), listener, async {
            let _ = stopped.await;
        }));
        let channel = t2_proto::client::lazy_channel(&format!("http://{addr}")).unwrap();
        let remote = RemoteFeatureExtractor::new(channel);
        let image = Image {
            data: vec![1].into(),
            ..Default::default()
        };
        let got = remote
            .features(image.clone(), vec![1024, 512])
            .await
            .unwrap();
        let want = Fixed
            .features(image.clone(), vec![1024, 512])
            .await
            .unwrap();
        assert_eq!(got, want);
        let err = remote.features(image, vec![256]).await.unwrap_err();
        assert!(matches!(err, ServiceError::InvalidArgument(_)), "{err:?}");
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }

    #[test]
    fn request_validation() {
        let img = Some(Image {
            data: vec![1].into(),
            ..Default::default()
        });
        assert!(validate_request(&img, &[512, 1024]).is_ok());
        assert!(validate_request(&None, &[512]).is_err());
        assert!(validate_request(&img, &[]).is_err());
        assert!(validate_request(&img, &[512, 512]).is_err());
        assert!(validate_request(&img, &[768]).is_err());
    }
}
