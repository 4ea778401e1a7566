//! The real background remover: S0 of the reference pipeline (`preprocess_image`) with
//! RMBG-2.0 (BiRefNet) through ONNX Runtime.
//!
//! 1. Decode with limits into Pillow's mode (`t2-imageops`); corrupt or unsupported input is
//!    `INVALID_ARGUMENT` naming the problem, oversize input `payload_too_large`.
//! 2. RGBA with a real alpha channel passes through (no model); anything else is converted to
//!    RGB. Either way the longest side is brought to ≤ 1024 px with LANCZOS first.
//! 3. Without alpha: BiRefNet's mask becomes the alpha channel (`t2-birefnet`).
//! 4. Crop the square around alpha > 0.8·255 (PIL rounding, no padding), premultiply on black.
//!
//! The cut-out (RGBA) and the crop (RGB, the alpha is dropped as the reference drops it) are
//! returned as PNG.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use image::ImageEncoder;
pub use t2_birefnet::Provider;
use t2_birefnet::{ActiveProvider, BiRefNet, BiRefNetError};
use t2_imageops::{ImageError, Limits, Prepared};
use t2_proto::common::v1::{Image, ServiceInfo};
use t2_proto::rmbg::v1::RemoveBackgroundResponse;
use t2_proto::{ErrorCode, ServiceError};

use crate::shared::lane::Lane;
use crate::shared::loading::Loaded;
use crate::shared::model_dir::RMBG_ONNX;
use crate::{BackgroundRemover, SERVICE};

/// The model name reported in `/v1/status`.
pub const MODEL_NAME: &str = "briaai/RMBG-2.0";

struct Model {
    net: BiRefNet,
    path: PathBuf,
}

/// Background removal with a BiRefNet ONNX model from a model directory.
pub struct RmbgService {
    model: Arc<Loaded<Model>>,
    lane: Lane,
}

/// The ONNX file of a model directory.
pub fn model_path(models: &Path) -> PathBuf {
    models.join(RMBG_ONNX)
}

/// `libonnxruntime.so`: `ORT_DYLIB_PATH`, else where `scripts/setup-onnxruntime.sh` installs
/// it by default (`~/.cache/t2-onnxruntime`), so a machine set up once needs no variable.
pub fn onnxruntime_library() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let capi = cache.join("t2-onnxruntime/onnxruntime/capi");
    let mut libs: Vec<PathBuf> = std::fs::read_dir(&capi)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so.1"))
        })
        .collect();
    libs.sort();
    libs.pop()
}

fn load(models: &Path, provider: Provider) -> Result<Model, String> {
    let path = model_path(models);
    let opts = t2_birefnet::LoadOptions {
        provider,
        dylib: onnxruntime_library(),
        ..Default::default()
    };
    let net = BiRefNet::load_with(&path, &opts).map_err(|e| e.to_string())?;
    Ok(Model { net, path })
}

impl RmbgService {
    /// Starts loading `<models>/briaai/RMBG-2.0/onnx/model.onnx` in the background; the
    /// service is NOT_SERVING until it is loaded (or says why it failed).
    pub fn start(models: &Path, provider: Provider) -> Arc<Self> {
        let models = models.to_path_buf();
        Arc::new(Self {
            model: Loaded::spawn("rmbg", move || load(&models, provider)),
            lane: Lane::new(
                SERVICE,
                1,
                crate::shared::lane::DEFAULT_MAX_WAITING,
                Arc::new(|| {}),
            ),
        })
    }

    /// Loads synchronously (CLI `--local`): a missing or wrong model file is an error here.
    pub fn load(models: &Path, provider: Provider) -> Result<Arc<Self>, ServiceError> {
        let t = std::time::Instant::now();
        let model = load(models, provider).map_err(ServiceError::Unavailable)?;
        Ok(Arc::new(Self {
            model: Loaded::ready(model, t.elapsed().as_secs_f64()),
            lane: Lane::new(
                SERVICE,
                1,
                crate::shared::lane::DEFAULT_MAX_WAITING,
                Arc::new(|| {}),
            ),
        }))
    }

    /// Requests executing now (tests watch cancellation through it).
    pub fn running(&self) -> usize {
        self.lane.running()
    }
}

#[async_trait::async_trait]
impl BackgroundRemover for RmbgService {
    async fn info(&self) -> ServiceInfo {
        let status = self.model.status();
        let (gpu, models) = match self.model.get() {
            Ok(m) => (
                match m.net.provider() {
                    ActiveProvider::Cuda => "cuda (ONNX Runtime CUDAExecutionProvider)".to_string(),
                    ActiveProvider::Cpu => "cpu (ONNX Runtime CPUExecutionProvider)".to_string(),
                },
                vec![format!("{MODEL_NAME} ({})", m.path.display())],
            ),
            Err(_) => (String::new(), vec![MODEL_NAME.to_string()]),
        };
        ServiceInfo {
            service: SERVICE.into(),
            ready: status.ready,
            detail: status.detail,
            models,
            gpu,
            load_time_seconds: status.load_time_seconds,
            ..Default::default()
        }
    }

    async fn remove_background(
        &self,
        image: Image,
    ) -> Result<RemoveBackgroundResponse, ServiceError> {
        let model = self.model.get()?;
        self.lane
            .run(move |cancel| {
                let out = cut_out(&model.net, &image.data, cancel)?;
                Ok(RemoveBackgroundResponse {
                    cutout: Some(png_image(&out.cutout)?),
                    crop: Some(png_image(&out.crop)?),
                    kept_input_alpha: out.kept_input_alpha,
                })
            })
            .await
    }
}

/// The images S0 produces for one input.
pub struct CutOut {
    pub cutout: image::DynamicImage,
    pub crop: image::DynamicImage,
    pub kept_input_alpha: bool,
}

/// S0 on encoded bytes (see the module docs).
pub fn cut_out(
    net: &BiRefNet,
    bytes: &[u8],
    cancel: &crate::shared::lane::Cancel,
) -> Result<CutOut, ServiceError> {
    let pil =
        t2_imageops::decode_pil_with_limits(bytes, &Limits::default()).map_err(image_error)?;
    let (rgba, kept) = match t2_imageops::prepare(&pil).map_err(image_error)? {
        Prepared::Cutout(rgba) => (rgba, true),
        Prepared::NeedsBackgroundRemoval(rgb) => {
            cancel.check()?;
            (net.remove_background(&rgb).map_err(model_error)?, false)
        }
    };
    let crop = t2_imageops::crop_premultiply(&rgba).map_err(|e| match e {
        ImageError::NoForeground if !kept => ServiceError::InvalidArgument(
            "background removal found no object: no pixel of the mask is above 0.8·255".into(),
        ),
        ImageError::NoForeground => ServiceError::InvalidArgument(
            "the image's alpha channel has no opaque pixel (every alpha ≤ 0.8·255): nothing to \
             reconstruct"
                .into(),
        ),
        e => image_error(e),
    })?;
    Ok(CutOut {
        cutout: image::DynamicImage::ImageRgba8(rgba),
        crop: image::DynamicImage::ImageRgb8(crop),
        kept_input_alpha: kept,
    })
}

fn image_error(e: ImageError) -> ServiceError {
    if e.is_limit() {
        ServiceError::failed(ErrorCode::PayloadTooLarge, e.to_string())
    } else {
        ServiceError::InvalidArgument(e.to_string())
    }
}

fn model_error(e: BiRefNetError) -> ServiceError {
    match e {
        BiRefNetError::EmptyImage { .. } => ServiceError::InvalidArgument(e.to_string()),
        e => ServiceError::failed(ErrorCode::GenerationError, e.to_string()),
    }
}

/// PNG bytes of `img` as a wire image.
pub fn png_image(img: &image::DynamicImage) -> Result<Image, ServiceError> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            img.as_bytes(),
            img.width(),
            img.height(),
            img.color().into(),
        )
        .map_err(|e| ServiceError::failed(ErrorCode::Internal, format!("PNG encoding: {e}")))?;
    Ok(Image {
        data: Bytes::from(out),
        media_type: "image/png".into(),
        width: img.width(),
        height: img.height(),
    })
}
