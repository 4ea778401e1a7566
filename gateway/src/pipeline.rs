//! Orchestration of one request across the services: image → rmbg → dinov3 → flow → latents
//! (→ mesh for the preview video), and state → mesh → GLB.
//!
//! Every upstream call is one *stage* run by [`Orchestrator::stage`]:
//! - a per-service gate bounds the calls this gateway has open to that service (`concurrency`
//!   running, `max_waiting` waiting); beyond that the request is refused at once with
//!   `overloaded` (429 + `Retry-After`) instead of piling up;
//! - a per-stage deadline turns a stuck upstream into `timeout` (504) and drops the call, which
//!   cancels the upstream work (the stream closes; the service's compute lane sees the cancel);
//! - the stage's wall time goes to `trellis2_stage_duration_seconds`;
//! - progress (stage, step/total) flows to the caller's [`ProgressSink`] (a job record).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use t2_proto::common::v1::{Image, Latents};
use t2_proto::flow::v1::{GenerateRequest, PipelineType};
use t2_proto::mesh::v1::{ExportParams, ExtractRequest, TextureFormat};
use t2_proto::rmbg::v1::RemoveBackgroundResponse;
use t2_proto::{ErrorCode, ProgressSink, ServiceError};
use t2_svc_mesh::ExtractOutput;
use tokio::sync::Semaphore;

use crate::backends::Backends;
use crate::image_check::CheckedImage;
use crate::metrics::Metrics;

pub const GLB_ARTIFACT: &str = "model.glb";
pub const VIDEO_ARTIFACT: &str = "preview.mp4";
pub const STATE_ARTIFACT: &str = "state.bin";

/// Export settings of the mesh `/generate` renders its preview video from: the video shows the
/// asset at a glance, so a 1024² texture and 200k faces keep it cheap (`/extract_glb` and jobs
/// export with the caller's settings).
pub const PREVIEW_EXPORT: ExportParams = ExportParams {
    decimation_target: 200_000,
    texture_size: 1024,
    remesh: true,
    remesh_band: 1.0,
    remesh_project: 0.0,
    texture_format: TextureFormat::Png as i32,
};

/// Wall time of each stage, in seconds.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Timings {
    pub remove_background_s: f64,
    pub features_s: f64,
    pub flow_s: f64,
    pub video_s: f64,
    pub total_s: f64,
}

/// A validated generate request.
#[derive(Debug, Clone)]
pub struct GeneratePlan {
    pub image: CheckedImage,
    /// The flow request without conditioning (filled in from the features).
    pub flow: GenerateRequest,
    pub preview_video: bool,
    /// Export parameters (jobs only; also used to render the preview).
    pub export: ExportParams,
}

pub struct Generated {
    pub latents: Latents,
    pub video: Option<Bytes>,
    pub timings: Timings,
}

/// Longest a stage may take before it is a `timeout` (its upstream call is then dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageDeadlines {
    pub remove_background: Duration,
    pub features: Duration,
    pub flow: Duration,
    pub mesh: Duration,
}

impl Default for StageDeadlines {
    /// Background removal and features take seconds even on a CPU; a 1536 cascade takes
    /// minutes on an H200; a 4096² bake with a 120-frame preview of a 1M-face asset takes
    /// minutes of CPU. Each bound is several times its stage's worst case seen, so only a
    /// stuck upstream hits it.
    fn default() -> Self {
        Self {
            remove_background: Duration::from_secs(120),
            features: Duration::from_secs(300),
            flow: Duration::from_secs(30 * 60),
            mesh: Duration::from_secs(30 * 60),
        }
    }
}

/// How many calls this gateway keeps open to one replica of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceLimit {
    /// Calls in flight at once (each service runs one job per GPU and queues a few more).
    pub concurrency: usize,
    /// Calls waiting for one of those slots before new ones are refused as `overloaded`.
    pub max_waiting: usize,
}

impl Default for ServiceLimit {
    /// Two in flight keeps a service's queue fed while one job runs; sixteen waiting covers a
    /// burst of jobs and synchronous calls without unbounded memory for their images.
    fn default() -> Self {
        Self {
            concurrency: 2,
            max_waiting: 16,
        }
    }
}

/// Admission to one service: `concurrency` slots and a bounded waiting room.
struct Gate {
    service: &'static str,
    admitted: Arc<Semaphore>,
    slots: Arc<Semaphore>,
    capacity: usize,
}

impl Gate {
    /// `limit` is per replica: `replicas` of them take that many times the calls.
    fn new(service: &'static str, limit: ServiceLimit, replicas: usize) -> Self {
        let replicas = replicas.max(1);
        let concurrency = limit.concurrency.max(1) * replicas;
        let capacity = concurrency + limit.max_waiting * replicas;
        Self {
            service,
            admitted: Arc::new(Semaphore::new(capacity)),
            slots: Arc::new(Semaphore::new(concurrency)),
            capacity,
        }
    }

    async fn enter(
        &self,
    ) -> Result<
        (
            tokio::sync::OwnedSemaphorePermit,
            tokio::sync::OwnedSemaphorePermit,
        ),
        ServiceError,
    > {
        let admitted = self.admitted.clone().try_acquire_owned().map_err(|_| {
            ServiceError::failed(
                ErrorCode::Overloaded,
                format!(
                    "{} calls to the {} service are already open; retry later",
                    self.capacity, self.service
                ),
            )
        })?;
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ServiceError::Unavailable(format!("{} gate closed", self.service)))?;
        Ok((admitted, slot))
    }
}

/// Runs the pipeline's stages over [`Backends`] (see the module docs).
pub struct Orchestrator {
    backends: Backends,
    deadlines: StageDeadlines,
    metrics: Arc<Metrics>,
    rmbg: Gate,
    dinov3: Gate,
    flow: Gate,
    mesh: Gate,
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

impl Orchestrator {
    pub fn new(
        backends: Backends,
        deadlines: StageDeadlines,
        limit: ServiceLimit,
        metrics: Arc<Metrics>,
    ) -> Self {
        let n = backends.replicas;
        Self {
            rmbg: Gate::new(t2_svc_rmbg::SERVICE, limit, n.rmbg),
            dinov3: Gate::new(t2_svc_dinov3::SERVICE, limit, n.dinov3),
            flow: Gate::new(t2_svc_flow::SERVICE, limit, n.flow),
            mesh: Gate::new(t2_svc_mesh::SERVICE, limit, n.mesh),
            backends,
            deadlines,
            metrics,
        }
    }

    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    /// One upstream call under its service's gate and its stage's deadline.
    async fn stage<T>(
        &self,
        name: &'static str,
        gate: &Gate,
        deadline: Duration,
        call: impl std::future::Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, ServiceError> {
        let t = Instant::now();
        let out = tokio::time::timeout(deadline, async {
            let _permits = gate.enter().await?;
            call.await
        })
        .await
        .unwrap_or_else(|_| {
            Err(ServiceError::failed(
                ErrorCode::Timeout,
                format!(
                    "the {name} stage ({} service) did not finish within {} s",
                    gate.service,
                    deadline.as_secs()
                ),
            ))
        });
        self.metrics.observe_stage(name, secs(t));
        out
    }

    /// The RGBA cut-out and the preprocessed crop of `image`.
    pub async fn remove_background(
        &self,
        image: Image,
    ) -> Result<RemoveBackgroundResponse, ServiceError> {
        self.stage(
            "remove_background",
            &self.rmbg,
            self.deadlines.remove_background,
            self.backends.rmbg.remove_background(image),
        )
        .await
    }

    /// Background removal and features: the flow request of `plan`, conditioned.
    async fn condition(
        &self,
        plan: GeneratePlan,
        progress: &ProgressSink,
        timings: &mut Timings,
    ) -> Result<GenerateRequest, ServiceError> {
        let t = Instant::now();
        progress.report("remove_background", 0, 1);
        let cut = self.remove_background(plan.image.to_proto()).await?;
        let crop = cut.crop.ok_or_else(|| {
            ServiceError::failed(ErrorCode::GenerationError, "rmbg returned no crop")
        })?;
        progress.report("remove_background", 1, 1);
        timings.remove_background_s = secs(t);

        let t = Instant::now();
        let pipeline = PipelineType::try_from(plan.flow.pipeline_type).unwrap_or_default();
        let resolutions = if t2_svc_flow::params::needs_cond_1024(pipeline) {
            vec![512, 1024]
        } else {
            vec![512]
        };
        progress.report("features", 0, resolutions.len() as u32);
        let n = resolutions.len() as u32;
        let maps = self
            .stage(
                "features",
                &self.dinov3,
                self.deadlines.features,
                self.backends.dinov3.features(crop, resolutions),
            )
            .await?;
        progress.report("features", n, n);
        let cond = |r: u32| {
            maps.iter()
                .find(|m| m.resolution == r)
                .map(|m| m.tokens.clone())
        };
        let mut flow = plan.flow;
        flow.cond_512 = cond(512);
        flow.cond_1024 = cond(1024);
        timings.features_s = secs(t);
        Ok(flow)
    }

    /// Image → latents (and, with `preview_video`, the turntable of [`PREVIEW_EXPORT`]).
    pub async fn generate(
        &self,
        plan: GeneratePlan,
        progress: ProgressSink,
    ) -> Result<Generated, ServiceError> {
        let start = Instant::now();
        let mut timings = Timings::default();
        let preview_video = plan.preview_video;
        let flow = self.condition(plan, &progress, &mut timings).await?;

        let t = Instant::now();
        let latents = self
            .stage(
                "flow",
                &self.flow,
                self.deadlines.flow,
                self.backends.flow.generate(flow, progress.clone()),
            )
            .await?;
        timings.flow_s = secs(t);

        let mut video = None;
        if preview_video {
            let t = Instant::now();
            let out = self
                .mesh_call("video", latents.clone(), PREVIEW_EXPORT, true, progress)
                .await?;
            video = out
                .artifacts
                .into_iter()
                .find(|a| a.name == VIDEO_ARTIFACT)
                .map(|a| a.data);
            if video.is_none() {
                return Err(ServiceError::failed(
                    ErrorCode::RenderingError,
                    "the mesh service returned no preview video",
                ));
            }
            timings.video_s = secs(t);
        }
        timings.total_s = secs(start);
        Ok(Generated {
            latents,
            video,
            timings,
        })
    }

    /// Image → latents → GLB (and the preview video with `plan.preview_video`), as a job runs
    /// it: the flow streams the shape latents ahead of the texture flow, and the mesh service
    /// decodes the shape and runs the GLB's surface steps while the texture latents are
    /// sampled (a staged extraction); they follow when the flow is done. A flow that sends
    /// no shape latents ahead, or a mesh service without the staged call (older versions),
    /// gets the plain extraction after the flow.
    pub async fn generate_and_extract(
        &self,
        plan: GeneratePlan,
        progress: ProgressSink,
    ) -> Result<(Generated, ExtractOutput), ServiceError> {
        let start = Instant::now();
        let mut timings = Timings::default();
        let (export, preview_video) = (plan.export, plan.preview_video);
        let flow = self.condition(plan, &progress, &mut timings).await?;

        let (shape_tx, shape_rx) = tokio::sync::oneshot::channel();
        let (tex_tx, tex_rx) = tokio::sync::oneshot::channel();
        let t = Instant::now();
        let sampled = async {
            let out = self
                .stage(
                    "flow",
                    &self.flow,
                    self.deadlines.flow,
                    self.backends
                        .flow
                        .generate_staged(flow, progress.clone(), shape_tx),
                )
                .await;
            // The staged extraction gets the texture latents, or (the flow failed) a dropped
            // sender, which stops it.
            if let Some(tex) = out.as_ref().ok().and_then(|l| l.tex_slat.clone()) {
                let _ = tex_tx.send(Ok(tex));
            }
            (out, secs(t))
        };
        let staged = async {
            let shape = shape_rx.await.ok()?;
            let req = ExtractRequest {
                latents: Some(shape),
                params: Some(export),
                preview_video,
            };
            Some(
                self.stage(
                    "extract",
                    &self.mesh,
                    self.deadlines.mesh,
                    self.backends
                        .mesh
                        .extract_staged(req, tex_rx, progress.clone()),
                )
                .await,
            )
        };
        // Both run at once. A staged extraction that fails (other than UNIMPLEMENTED) fails the
        // job at once: the flow call is dropped, which cancels it. The flow's own failure is
        // the cause when both failed (its failure stops the extraction, which then fails too),
        // so the flow is polled first.
        let (sampled_out, extracted) = {
            tokio::pin!(sampled, staged);
            let (mut sampled_out, mut extracted) = (None, None);
            while sampled_out.is_none() || extracted.is_none() {
                tokio::select! {
                    biased;
                    out = &mut sampled, if sampled_out.is_none() => sampled_out = Some(out),
                    out = &mut staged, if extracted.is_none() => {
                        if let Some(Err(e)) = &out
                            && !matches!(e, ServiceError::NotImplemented(_))
                        {
                            if let Some((Err(flow_err), _)) = sampled_out {
                                return Err(flow_err);
                            }
                            return Err(e.clone());
                        }
                        extracted = Some(out);
                    }
                }
            }
            (sampled_out, extracted)
        };
        let (latents, flow_s) = sampled_out.expect("polled to the end");
        let latents = latents?;
        timings.flow_s = flow_s;
        let extracted = extracted.expect("polled to the end");
        let out = match extracted {
            Some(Ok(out)) => out,
            // No shape latents ahead (an older flow service), or a mesh service without the
            // staged call (UNIMPLEMENTED; other failures returned above): the plain
            // extraction, now that the texture latents are here.
            not_staged => {
                if let Some(Err(why)) = not_staged {
                    tracing::info!(
                        "no staged extraction upstream ({why}); extracting after the flow"
                    );
                }
                self.mesh_call("extract", latents.clone(), export, preview_video, progress)
                    .await?
            }
        };
        timings.total_s = secs(start);
        let video = out
            .artifacts
            .iter()
            .find(|a| a.name == VIDEO_ARTIFACT)
            .map(|a| a.data.clone());
        let generated = Generated {
            latents,
            video,
            timings,
        };
        Ok((generated, out))
    }

    /// Latents → GLB (and the preview video when asked).
    pub async fn extract(
        &self,
        latents: Latents,
        params: ExportParams,
        preview_video: bool,
        progress: ProgressSink,
    ) -> Result<ExtractOutput, ServiceError> {
        self.mesh_call("extract", latents, params, preview_video, progress)
            .await
    }

    async fn mesh_call(
        &self,
        stage: &'static str,
        latents: Latents,
        params: ExportParams,
        preview_video: bool,
        progress: ProgressSink,
    ) -> Result<ExtractOutput, ServiceError> {
        let req = ExtractRequest {
            latents: Some(latents),
            params: Some(params),
            preview_video,
        };
        self.stage(
            stage,
            &self.mesh,
            self.deadlines.mesh,
            self.backends.mesh.extract(req, progress),
        )
        .await
    }
}

fn bad_latents(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::failed(
        ErrorCode::GenerationError,
        format!("flow returned malformed latents: {e}"),
    )
}

/// Signs latents into the state format.
pub fn seal(latents: &Latents, key: &t2_state::StateKey) -> Result<Vec<u8>, ServiceError> {
    let missing = || bad_latents("a tensor is missing");
    let coords = latents.coords.as_ref().ok_or_else(missing)?;
    let shape = latents.shape_slat.as_ref().ok_or_else(missing)?;
    let tex = latents.tex_slat.as_ref().ok_or_else(missing)?;
    let channels = |t: &t2_proto::common::v1::DenseTensor| {
        t.shape
            .get(1)
            .copied()
            .unwrap_or(0)
            .try_into()
            .map_err(bad_latents)
    };
    let state = t2_state::Latents {
        model_id: latents.model_id.clone(),
        resolution: latents.resolution,
        coords: t2_proto::tensor::to_i32(coords, 2).map_err(bad_latents)?,
        shape_channels: channels(shape)?,
        shape: t2_proto::tensor::to_f32(shape, 2).map_err(bad_latents)?,
        tex_channels: channels(tex)?,
        tex: t2_proto::tensor::to_f32(tex, 2).map_err(bad_latents)?,
    };
    t2_state::encode(&state, key).map_err(bad_latents)
}

/// Verifies a state and turns it back into wire latents.
pub fn open(bytes: &[u8], key: &t2_state::StateKey) -> Result<Latents, t2_state::StateError> {
    let l = t2_state::decode(bytes, key)?;
    let n = l.num_tokens() as u64;
    Ok(Latents {
        model_id: l.model_id,
        resolution: l.resolution,
        coords: Some(t2_proto::tensor::dense_i32(&[n, 4], &l.coords)),
        shape_slat: Some(t2_proto::tensor::dense_f32(
            &[n, l.shape_channels as u64],
            &l.shape,
        )),
        tex_slat: Some(t2_proto::tensor::dense_f32(
            &[n, l.tex_channels as u64],
            &l.tex,
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latents_seal_and_open_round_trip() {
        let key = t2_state::StateKey::generate();
        let l = Latents {
            model_id: "m".into(),
            resolution: 512,
            coords: Some(t2_proto::tensor::dense_i32(
                &[2, 4],
                &[0, 1, 2, 3, 0, 4, 5, 6],
            )),
            shape_slat: Some(t2_proto::tensor::dense_f32(&[2, 1], &[0.5, 1.5])),
            tex_slat: Some(t2_proto::tensor::dense_f32(&[2, 2], &[1.0, 2.0, 3.0, 4.0])),
        };
        let bytes = seal(&l, &key).unwrap();
        assert_eq!(open(&bytes, &key).unwrap(), l);
    }
}
