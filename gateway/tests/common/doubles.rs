//! Test doubles for the four service traits: tiny deterministic outputs that exercise the
//! gateway's plumbing (jobs, artifacts, state, streaming, tracing). They model no computation
//! and are never used outside tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use t2_proto::common::v1::{Image, Latents, ServiceInfo};
use t2_proto::flow::v1::GenerateRequest;
use t2_proto::mesh::v1::{ExtractRequest, Stats};
use t2_proto::rmbg::v1::RemoveBackgroundResponse;
use t2_proto::{ProgressSink, ServiceError};
use t2_svc_dinov3::FeatureMap;
use t2_svc_mesh::{Artifact, ExtractOutput};

pub const GLB_BYTES: &[u8] = b"glTF test-double bytes";
pub const MP4_BYTES: &[u8] = b"mp4 test-double bytes";

#[derive(Default)]
pub struct Doubles {
    pub ready: AtomicBool,
    /// The flow double never finishes (to test cancellation).
    pub hang_flow: AtomicBool,
    /// Trace ids seen inside service calls (from the current span).
    pub trace_ids: Mutex<Vec<String>>,
    /// Flow generations served.
    pub flow_calls: std::sync::atomic::AtomicUsize,
    /// Staged extractions (shape first, texture latents later) started.
    pub staged_extracts: std::sync::atomic::AtomicUsize,
    /// A staged flow generation fails after handing out the shape latents.
    pub fail_flow_after_shape: AtomicBool,
    /// The mesh double answers a staged extraction UNIMPLEMENTED (an older mesh service).
    pub no_staged_extract: AtomicBool,
    /// A staged flow generation never finishes its texture stage (after sending the shape).
    pub hang_texture_flow: AtomicBool,
    /// The mesh double fails a staged extraction at once.
    pub fail_staged_extract: AtomicBool,
}

impl Doubles {
    pub fn ready() -> Arc<Self> {
        let d = Arc::new(Self::default());
        d.ready.store(true, Ordering::SeqCst);
        d
    }

    pub fn backends(self: &Arc<Self>) -> t2_gateway::Backends {
        t2_gateway::Backends {
            rmbg: self.clone(),
            dinov3: self.clone(),
            flow: self.clone(),
            mesh: self.clone(),
            replicas: Default::default(),
        }
    }

    fn info(&self, name: &str) -> ServiceInfo {
        ServiceInfo {
            service: name.into(),
            ready: self.ready.load(Ordering::SeqCst),
            gpu: "test-double".into(),
            ..Default::default()
        }
    }

    fn record_trace(&self) {
        if let Some(id) = t2_telemetry::trace_id_of(&tracing::Span::current()) {
            self.trace_ids.lock().unwrap().push(id);
        }
    }
}

#[async_trait::async_trait]
impl t2_svc_rmbg::BackgroundRemover for Doubles {
    async fn info(&self) -> ServiceInfo {
        self.info("rmbg")
    }
    async fn remove_background(
        &self,
        image: Image,
    ) -> Result<RemoveBackgroundResponse, ServiceError> {
        self.record_trace();
        Ok(RemoveBackgroundResponse {
            cutout: Some(image.clone()),
            crop: Some(image),
            kept_input_alpha: false,
        })
    }
}

#[async_trait::async_trait]
impl t2_svc_dinov3::FeatureExtractor for Doubles {
    async fn info(&self) -> ServiceInfo {
        self.info("dinov3")
    }
    async fn features(
        &self,
        _: Image,
        resolutions: Vec<u32>,
    ) -> Result<Vec<FeatureMap>, ServiceError> {
        self.record_trace();
        Ok(resolutions
            .into_iter()
            .map(|r| FeatureMap {
                resolution: r,
                tokens: t2_proto::tensor::dense_f32(&[1, 4, 8], &[0.5; 32]),
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl t2_svc_flow::FlowSampler for Doubles {
    async fn info(&self) -> ServiceInfo {
        self.info("flow")
    }
    async fn generate(
        &self,
        req: GenerateRequest,
        p: ProgressSink,
    ) -> Result<Latents, ServiceError> {
        self.record_trace();
        self.flow_calls.fetch_add(1, Ordering::SeqCst);
        p.report("sparse_structure", 1, 2);
        if self.hang_flow.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        p.report("sparse_structure", 2, 2);
        Ok(Latents {
            model_id: format!("test-double-seed-{}", req.seed),
            resolution: 1024,
            coords: Some(t2_proto::tensor::dense_i32(
                &[2, 4],
                &[0, 1, 2, 3, 0, 4, 5, 6],
            )),
            shape_slat: Some(t2_proto::tensor::dense_f32(&[2, 2], &[0.1, 0.2, 0.3, 0.4])),
            tex_slat: Some(t2_proto::tensor::dense_f32(&[2, 1], &[0.5, 0.6])),
        })
    }
    async fn generate_staged(
        &self,
        req: GenerateRequest,
        p: ProgressSink,
        shape: t2_svc_flow::ShapeLatentsSink,
    ) -> Result<Latents, ServiceError> {
        let latents = self.generate(req, p).await?;
        let _ = shape.send(Latents {
            tex_slat: None,
            ..latents.clone()
        });
        if self.hang_texture_flow.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.fail_flow_after_shape.load(Ordering::SeqCst) {
            return Err(ServiceError::failed(
                t2_proto::ErrorCode::GenerationError,
                "the flow double failed in its texture stage",
            ));
        }
        Ok(latents)
    }
}

#[async_trait::async_trait]
impl t2_svc_mesh::MeshExtractor for Doubles {
    async fn info(&self) -> ServiceInfo {
        self.info("mesh")
    }
    async fn extract(
        &self,
        req: ExtractRequest,
        p: ProgressSink,
    ) -> Result<ExtractOutput, ServiceError> {
        self.record_trace();
        p.report("bake", 1, 1);
        let mut artifacts = vec![Artifact {
            name: "model.glb".into(),
            media_type: "model/gltf-binary".into(),
            data: Bytes::from_static(GLB_BYTES),
        }];
        if req.preview_video {
            artifacts.push(Artifact {
                name: "preview.mp4".into(),
                media_type: "video/mp4".into(),
                data: Bytes::from_static(MP4_BYTES),
            });
        }
        Ok(ExtractOutput {
            artifacts,
            stats: Stats {
                vertices: 3,
                faces: 1,
                texture_size: req.params.map(|p| p.texture_size).unwrap_or(0),
            },
        })
    }
    async fn extract_staged(
        &self,
        req: ExtractRequest,
        tex: t2_svc_mesh::TexLatents,
        p: ProgressSink,
    ) -> Result<ExtractOutput, ServiceError> {
        self.staged_extracts.fetch_add(1, Ordering::SeqCst);
        if self.no_staged_extract.load(Ordering::SeqCst) {
            return Err(ServiceError::NotImplemented(
                "the mesh double has no staged extraction".into(),
            ));
        }
        if self.fail_staged_extract.load(Ordering::SeqCst) {
            return Err(ServiceError::failed(
                t2_proto::ErrorCode::ExtractionError,
                "the mesh double found no surface",
            ));
        }
        let req = t2_svc_mesh::with_tex(req, tex).await?;
        self.extract(req, p).await
    }
}
