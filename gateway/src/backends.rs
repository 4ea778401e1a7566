//! The four upstream services as seen by the gateway: each is its service crate's trait, so the
//! same orchestration runs against in-process implementations (`trellis2 serve`, no network
//! hops) or remote gRPC services (one process per model family).

use std::sync::Arc;

use t2_proto::common::v1::ServiceInfo;
use t2_svc_dinov3::{FeatureExtractor, RemoteFeatureExtractor};
use t2_svc_flow::{FlowSampler, RemoteFlowSampler};
use t2_svc_mesh::{MeshExtractor, RemoteMeshExtractor};
use t2_svc_rmbg::{BackgroundRemover, RemoteBackgroundRemover};

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

impl Backends {
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
