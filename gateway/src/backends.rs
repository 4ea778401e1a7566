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

use crate::replicas::Pool;

#[derive(Clone)]
pub struct Backends {
    pub rmbg: Arc<dyn BackgroundRemover>,
    pub dinov3: Arc<dyn FeatureExtractor>,
    pub flow: Arc<dyn FlowSampler>,
    pub mesh: Arc<dyn MeshExtractor>,
    /// How many replicas stand behind each service (the gateway's per-service gates scale
    /// with it).
    pub replicas: ReplicaCounts,
}

/// Replicas behind each service; one each in process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaCounts {
    pub rmbg: usize,
    pub dinov3: usize,
    pub flow: usize,
    pub mesh: usize,
}

impl Default for ReplicaCounts {
    fn default() -> Self {
        Self {
            rmbg: 1,
            dinov3: 1,
            flow: 1,
            mesh: 1,
        }
    }
}

/// gRPC addresses of the four services (`http://host:port`), one per replica; a service with
/// several is called through a least-loaded [`Pool`].
#[derive(Debug, Clone)]
pub struct UpstreamUrls {
    pub rmbg: Vec<String>,
    pub dinov3: Vec<String>,
    pub flow: Vec<String>,
    pub mesh: Vec<String>,
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
            replicas: ReplicaCounts::default(),
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
            replicas: ReplicaCounts::default(),
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
            replicas: ReplicaCounts::default(),
        }
    }

    /// Remote services over gRPC; channels connect lazily, so the gateway starts before them.
    /// A service given several URLs is a [`Pool`] of its replicas.
    pub fn grpc(urls: &UpstreamUrls) -> Result<Self, tonic::transport::Error> {
        Ok(Self {
            rmbg: one_or_pool(
                t2_svc_rmbg::SERVICE,
                clients(&urls.rmbg, |c| -> Arc<dyn BackgroundRemover> {
                    Arc::new(RemoteBackgroundRemover::new(c))
                })?,
                |p| Arc::new(p),
            ),
            dinov3: one_or_pool(
                t2_svc_dinov3::SERVICE,
                clients(&urls.dinov3, |c| -> Arc<dyn FeatureExtractor> {
                    Arc::new(RemoteFeatureExtractor::new(c))
                })?,
                |p| Arc::new(p),
            ),
            flow: one_or_pool(
                t2_svc_flow::SERVICE,
                clients(&urls.flow, |c| -> Arc<dyn FlowSampler> {
                    Arc::new(RemoteFlowSampler::new(c))
                })?,
                |p| Arc::new(p),
            ),
            mesh: one_or_pool(
                t2_svc_mesh::SERVICE,
                clients(&urls.mesh, |c| -> Arc<dyn MeshExtractor> {
                    Arc::new(RemoteMeshExtractor::new(c))
                })?,
                |p| Arc::new(p),
            ),
            replicas: ReplicaCounts {
                rmbg: urls.rmbg.len().max(1),
                dinov3: urls.dinov3.len().max(1),
                flow: urls.flow.len().max(1),
                mesh: urls.mesh.len().max(1),
            },
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

/// One client per URL, each over its own lazy channel.
fn clients<T: ?Sized>(
    urls: &[String],
    client: impl Fn(tonic::transport::Channel) -> Arc<T>,
) -> Result<Vec<(String, Arc<T>)>, tonic::transport::Error> {
    urls.iter()
        .map(|url| Ok((url.clone(), client(t2_proto::client::lazy_channel(url)?))))
        .collect()
}

/// A lone replica's client as it is; several behind a [`Pool`] (`pool` makes the trait object).
fn one_or_pool<T: ?Sized + Send + Sync>(
    service: &'static str,
    mut members: Vec<(String, Arc<T>)>,
    pool: impl FnOnce(Pool<T>) -> Arc<T>,
) -> Arc<T> {
    match members.len() {
        1 => members.pop().expect("one").1,
        _ => pool(Pool::new(service, members)),
    }
}
