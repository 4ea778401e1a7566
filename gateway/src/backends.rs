//! The four upstream services as seen by the gateway: each is its service crate's trait, so the
//! same orchestration runs against in-process implementations (`trellis2 serve`, no network
//! hops) or remote gRPC services (one process per model family).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use t2_proto::common::v1::ServiceInfo;
use t2_svc_dinov3::{FeatureExtractor, RemoteFeatureExtractor};
use t2_svc_flow::{FlowSampler, RemoteFlowSampler};
use t2_svc_mesh::{MeshExtractor, RemoteMeshExtractor};
use t2_svc_rmbg::{BackgroundRemover, RemoteBackgroundRemover};
use t2_tensor::Device;

#[derive(Clone)]
pub struct Backends {
    pub rmbg: Arc<dyn BackgroundRemover>,
    pub dinov3: Arc<dyn FeatureExtractor>,
    pub flow: Arc<dyn FlowSampler>,
    pub mesh: Arc<dyn MeshExtractor>,
}

/// gRPC addresses of the four services (`http://host:port`).
#[derive(Debug, Clone)]
pub struct UpstreamUrls {
    pub rmbg: String,
    pub dinov3: String,
    pub flow: String,
    pub mesh: String,
}

/// How the in-process services run.
#[derive(Debug, Clone)]
pub struct InProcessOptions {
    /// The model directory (Hugging Face layout).
    pub models: PathBuf,
    /// Where DINOv3, the flows and the decoders compute.
    pub device: Device,
    /// ONNX Runtime's execution provider for background removal.
    pub rmbg_provider: t2_svc_rmbg::Provider,
    pub preview: t2_svc_mesh::PreviewSettings,
}

impl InProcessOptions {
    /// `models` on `device`, the automatic RMBG provider and the default preview.
    pub fn new(models: &Path, device: Device) -> Self {
        Self {
            models: models.to_path_buf(),
            device,
            rmbg_provider: t2_svc_rmbg::Provider::Auto,
            preview: t2_svc_mesh::PreviewSettings::default(),
        }
    }
}

impl Backends {
    /// The four services in this process, their models loading in the background (each is
    /// NOT_SERVING, and `/ready` says so, until its models are loaded): `trellis2 serve`.
    pub fn start_in_process(o: &InProcessOptions) -> Self {
        Self {
            rmbg: t2_svc_rmbg::RmbgService::start(&o.models, o.rmbg_provider),
            dinov3: t2_svc_dinov3::Dinov3Service::start(&o.models, o.device.clone()),
            flow: t2_svc_flow::FlowService::start(&o.models, o.device.clone()),
            mesh: t2_svc_mesh::MeshService::start(&o.models, o.device.clone(), o.preview.clone()),
        }
    }

    /// The four services in this process with their models loaded now; a missing or wrong
    /// model file is an error naming it (`trellis2 generate --local`).
    pub fn load_in_process(o: &InProcessOptions) -> Result<Self, t2_proto::ServiceError> {
        let t = std::time::Instant::now();
        let flow = t2_svc_flow::FlowModels::load(&o.models, &o.device)
            .map_err(t2_proto::ServiceError::Unavailable)?;
        let flow_s = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let mesh = t2_svc_mesh::MeshModels::load(&o.models, &o.device)
            .map_err(t2_proto::ServiceError::Unavailable)?;
        let mesh_s = t.elapsed().as_secs_f64();
        Ok(Self {
            rmbg: t2_svc_rmbg::RmbgService::load(&o.models, o.rmbg_provider)?,
            dinov3: t2_svc_dinov3::Dinov3Service::load(&o.models, o.device.clone())?,
            flow: t2_svc_flow::FlowService::with_models(flow, flow_s),
            mesh: t2_svc_mesh::MeshService::with_models(mesh, mesh_s, o.preview.clone()),
        })
    }

    /// In-process services whose compute is not built into this binary: every call answers
    /// UNIMPLEMENTED (503 `unavailable` at HTTP) and `/ready` reports why.
    pub fn not_built() -> Self {
        Self {
            rmbg: Arc::new(t2_svc_rmbg::NotBuilt),
            dinov3: Arc::new(t2_svc_dinov3::NotBuilt),
            flow: Arc::new(t2_svc_flow::NotBuilt),
            mesh: Arc::new(t2_svc_mesh::NotBuilt),
        }
    }

    /// Remote services over gRPC; channels connect lazily, so the gateway starts before them.
    pub fn grpc(urls: &UpstreamUrls) -> Result<Self, tonic::transport::Error> {
        let ch = t2_proto::client::lazy_channel;
        Ok(Self {
            rmbg: Arc::new(RemoteBackgroundRemover::new(ch(&urls.rmbg)?)),
            dinov3: Arc::new(RemoteFeatureExtractor::new(ch(&urls.dinov3)?)),
            flow: Arc::new(RemoteFlowSampler::new(ch(&urls.flow)?)),
            mesh: Arc::new(RemoteMeshExtractor::new(ch(&urls.mesh)?)),
        })
    }

    /// Every service's self-description, fetched concurrently, in pipeline order.
    pub async fn infos(&self) -> Vec<ServiceInfo> {
        let (a, b, c, d) = tokio::join!(
            self.rmbg.info(),
            self.dinov3.info(),
            self.flow.info(),
            self.mesh.info()
        );
        let named = |mut i: ServiceInfo, name: &str| {
            if i.service.is_empty() {
                i.service = name.to_string();
            }
            i
        };
        vec![
            named(a, t2_svc_rmbg::SERVICE),
            named(b, t2_svc_dinov3::SERVICE),
            named(c, t2_svc_flow::SERVICE),
            named(d, t2_svc_mesh::SERVICE),
        ]
    }
}
