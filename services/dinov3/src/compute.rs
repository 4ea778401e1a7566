//! The real feature extractor: TRELLIS.2's `DinoV3FeatureExtractor` (DINOv3 ViT-L/16 of
//! `t2-models`) on the preprocessed crop, at 512 and/or 1024 px.
//!
//! The crop is decoded with limits (corrupt or unsupported bytes are `INVALID_ARGUMENT`),
//! converted to RGB, then the model's own input path runs (LANCZOS resize as PIL, ImageNet
//! normalisation) and every token is returned, f32 `[1, 1 + 4 + (S/16)², D]`.
//!
//! Batching: the port's DINOv3 forward takes one image, so concurrent requests queue on the
//! compute lane (one at a time per device) instead of being stacked; the two resolutions of one
//! request run back to back in one lane slot. Deadlines and cancellation are checked between
//! resolutions (a forward pass itself is not interruptible).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use t2_models::config::PipelineConfig;
use t2_models::dinov3::Dinov3;
use t2_proto::common::v1::{Image, ServiceInfo};
use t2_proto::{ErrorCode, ServiceError};
use t2_tensor::Device;

use crate::shared::lane::{Lane, service_info};
use crate::shared::loading::Loaded;
use crate::shared::model_error::model_error;
use crate::{FeatureExtractor, FeatureMap, SERVICE};

struct Model {
    net: Dinov3,
    name: String,
    dir: PathBuf,
}

/// DINOv3 features from a model directory.
pub struct Dinov3Service {
    model: Arc<Loaded<Model>>,
    lane: Lane,
    device: Device,
}

fn load(models: &Path, device: &Device) -> Result<Model, String> {
    let config = PipelineConfig::load(models).map_err(|e| e.to_string())?;
    let files = config.image_cond_files().map_err(|e| e.to_string())?;
    let net = Dinov3::load(&files, device).map_err(|e| e.to_string())?;
    if let Device::Cuda(d) = device {
        // Compile the kernels now so the first request does not pay for NVRTC.
        d.warm_up().map_err(|e| e.to_string())?;
    }
    let name = config
        .args
        .image_cond_model
        .as_ref()
        .map(|m| m.args.model_name.clone())
        .unwrap_or_default();
    Ok(Model {
        net,
        name,
        dir: files
            .weights
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
    })
}

impl Dinov3Service {
    /// Starts loading the DINOv3 named by `<models>/pipeline.json` on `device`; NOT_SERVING
    /// until loaded.
    pub fn start(models: &Path, device: Device) -> Arc<Self> {
        let (m, d) = (models.to_path_buf(), device.clone());
        Arc::new(Self {
            model: Loaded::spawn("dinov3", move || load(&m, &d)),
            lane: Lane::for_device(SERVICE, &device),
            device,
        })
    }

    /// Loads synchronously (in-process use): a missing or wrong file is an error here.
    pub fn load(models: &Path, device: Device) -> Result<Arc<Self>, ServiceError> {
        let t = std::time::Instant::now();
        let model = load(models, &device).map_err(ServiceError::Unavailable)?;
        Ok(Arc::new(Self {
            model: Loaded::ready(model, t.elapsed().as_secs_f64()),
            lane: Lane::for_device(SERVICE, &device),
            device,
        }))
    }

    pub fn running(&self) -> usize {
        self.lane.running()
    }
}

#[async_trait::async_trait]
impl FeatureExtractor for Dinov3Service {
    async fn info(&self) -> ServiceInfo {
        let models = match self.model.get() {
            Ok(m) => vec![format!("{} ({})", m.name, m.dir.display())],
            Err(_) => vec![],
        };
        service_info(SERVICE, self.model.status(), models, &self.device)
    }

    async fn features(
        &self,
        image: Image,
        resolutions: Vec<u32>,
    ) -> Result<Vec<FeatureMap>, ServiceError> {
        crate::validate_request(&Some(image.clone()), &resolutions)?;
        let model = self.model.get()?;
        self.lane
            .run(move |cancel| {
                let rgb = decode_rgb(&image.data)?;
                let mut maps = Vec::with_capacity(resolutions.len());
                for r in resolutions {
                    cancel.check()?;
                    let tokens = model
                        .net
                        .extract(&rgb, r)
                        .and_then(|t| Ok((t.shape().to_vec(), t.to_vec_f32()?)))
                        .map_err(|e| model_error(e, ErrorCode::GenerationError))?;
                    let shape: Vec<u64> = tokens.0.iter().map(|&d| d as u64).collect();
                    maps.push(FeatureMap {
                        resolution: r,
                        tokens: t2_proto::tensor::dense_f32(&shape, &tokens.1),
                    });
                }
                Ok(maps)
            })
            .await
    }
}

/// The crop as RGB (PNG, JPEG or WebP; decoded with the product limits).
fn decode_rgb(bytes: &[u8]) -> Result<image::RgbImage, ServiceError> {
    let pil = t2_imageops::decode_pil_with_limits(bytes, &t2_imageops::Limits::default()).map_err(
        |e| {
            if e.is_limit() {
                ServiceError::failed(ErrorCode::PayloadTooLarge, e.to_string())
            } else {
                ServiceError::InvalidArgument(e.to_string())
            }
        },
    )?;
    Ok(pil.to_rgb())
}
