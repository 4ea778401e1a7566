//! RMBG-2.0 (BiRefNet) background removal through ONNX Runtime, computed as the reference
//! (`trellis2/pipelines/rembg/BiRefNet.py`) does:
//!
//! 1. torchvision `Resize((1024, 1024))` on the PIL image = Pillow BILINEAR with antialias;
//! 2. `ToTensor` + ImageNet `Normalize`, float32, `[1, 3, 1024, 1024]`;
//! 3. `model(x)[-1].sigmoid()`: the LAST output, as logits;
//! 4. `ToPILImage`: `x * 255` truncated to u8;
//! 5. the mask resized back to the image size with PIL's default filter (BICUBIC);
//! 6. `putalpha(mask)` → the RGBA cut-out.
//!
//! Every image step is `t2-imageops` (Pillow-exact). One `BiRefNet` holds one session on one
//! model file; inference is serialised on that session (ONNX Runtime parallelises inside).

mod error;
mod runtime;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use image::{GrayImage, RgbImage, RgbaImage};
use ort::session::Session;
use ort::value::{Tensor, TensorElementType, ValueType};
use t2_imageops::{
    Filter, IMAGENET_MEAN, IMAGENET_STD, put_alpha, resize_luma, resize_rgb, to_normalized_chw,
};

pub use error::BiRefNetError;
pub use runtime::{ActiveProvider, Provider, resolve_dylib};

/// The network's input side (RMBG-2.0 is trained and exported at 1024²).
pub const INPUT_SIZE: u32 = 1024;

/// What the last output holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaskOutput {
    /// Logits: the reference applies `sigmoid` (BiRefNet's own forward output).
    #[default]
    Logits,
    /// Already probabilities in [0, 1] (an export with the sigmoid inside the graph).
    Probabilities,
}

/// How to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub provider: Provider,
    /// `libonnxruntime.so`; `None` reads `ORT_DYLIB_PATH`.
    pub dylib: Option<PathBuf>,
    pub mask_output: MaskOutput,
}

/// A loaded RMBG-2.0 / BiRefNet ONNX model.
pub struct BiRefNet {
    session: Mutex<Session>,
    input_name: String,
    output_index: usize,
    provider: ActiveProvider,
    mask_output: MaskOutput,
    model_path: PathBuf,
}

impl std::fmt::Debug for BiRefNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BiRefNet")
            .field("model_path", &self.model_path)
            .field("input_name", &self.input_name)
            .field("provider", &self.provider)
            .finish()
    }
}

/// `Some(true)` when a model dimension is `want` or dynamic (-1).
fn dim_ok(dim: i64, want: i64) -> bool {
    dim == want || dim < 0
}

fn describe(v: &ValueType) -> String {
    match (v.tensor_type(), v.tensor_shape()) {
        (Some(t), Some(s)) => format!("{t:?} {:?}", &s[..]),
        _ => format!("{v:?}"),
    }
}

/// Check the RMBG signature; returns (input name, index of the mask output).
fn check_signature(session: &Session, path: &Path) -> Result<(String, usize), BiRefNetError> {
    let bad = |detail: String| BiRefNetError::Signature {
        path: path.to_path_buf(),
        detail,
    };
    let inputs = session.inputs();
    if inputs.len() != 1 {
        let names: Vec<_> = inputs.iter().map(|o| o.name().to_string()).collect();
        return Err(bad(format!("found {} inputs {names:?}", inputs.len())));
    }
    let input = &inputs[0];
    let shape_ok = |v: &ValueType, channels: i64| {
        v.tensor_type() == Some(TensorElementType::Float32)
            && v.tensor_shape().is_some_and(|s| {
                s.len() == 4
                    && dim_ok(s[0], 1)
                    && dim_ok(s[1], channels)
                    && dim_ok(s[2], i64::from(INPUT_SIZE))
                    && dim_ok(s[3], i64::from(INPUT_SIZE))
            })
    };
    if !shape_ok(input.dtype(), 3) {
        return Err(bad(format!(
            "input `{}` is {}",
            input.name(),
            describe(input.dtype())
        )));
    }
    let outputs = session.outputs();
    let Some(last) = outputs.last() else {
        return Err(bad("the model has no outputs".into()));
    };
    if !shape_ok(last.dtype(), 1) {
        return Err(bad(format!(
            "last of {} outputs, `{}`, is {}",
            outputs.len(),
            last.name(),
            describe(last.dtype())
        )));
    }
    Ok((input.name().to_string(), outputs.len() - 1))
}

impl BiRefNet {
    /// Load `model` with ONNX Runtime from `ORT_DYLIB_PATH`.
    pub fn load(model: impl AsRef<Path>, provider: Provider) -> Result<Self, BiRefNetError> {
        Self::load_with(
            model,
            &LoadOptions {
                provider,
                ..LoadOptions::default()
            },
        )
    }

    pub fn load_with(model: impl AsRef<Path>, opts: &LoadOptions) -> Result<Self, BiRefNetError> {
        let path = model.as_ref().to_path_buf();
        let dylib = resolve_dylib(opts.dylib.as_deref())?;
        let env = runtime::environment(&dylib)?;
        if !path.is_file() {
            return Err(BiRefNetError::ModelMissing { path });
        }
        // One catch for the whole load: session creation and the signature check both read
        // the model's types through ort (see `contain`).
        contain(
            || Self::load_checked(path.clone(), &env, opts),
            |detail| binding_failed(&path, detail),
        )
    }

    fn load_checked(
        path: PathBuf,
        env: &ort::environment::Environment,
        opts: &LoadOptions,
    ) -> Result<Self, BiRefNetError> {
        let invalid = |e: ort::Error| BiRefNetError::ModelInvalid {
            path: path.clone(),
            detail: e.to_string(),
        };
        let cpu_session = || -> Result<Session, BiRefNetError> {
            Session::builder(env)
                .map_err(invalid)?
                .commit_from_file(&path)
                .map_err(invalid)
        };
        let (session, provider) = match opts.provider {
            Provider::Cpu => (cpu_session()?, ActiveProvider::Cpu),
            Provider::Auto | Provider::Cuda => {
                // Registration fails on a CPU-only library or without a usable GPU; with
                // `error_on_failure` that is an error here instead of a silent CPU fallback,
                // so the active provider is known for certain.
                let cuda = ort::ep::CUDA::default().build().error_on_failure();
                let attempt = Session::builder(env)
                    .and_then(|b| b.with_execution_providers([cuda]).map_err(Into::into))
                    .map_err(|e| e.to_string());
                match attempt {
                    Ok(mut b) => (
                        b.commit_from_file(&path).map_err(invalid)?,
                        ActiveProvider::Cuda,
                    ),
                    Err(detail) if opts.provider == Provider::Cuda => {
                        return Err(BiRefNetError::CudaUnavailable { detail });
                    }
                    Err(detail) => {
                        tracing::info!(%detail, "CUDA execution provider unavailable; using CPU");
                        (cpu_session()?, ActiveProvider::Cpu)
                    }
                }
            }
        };
        let (input_name, output_index) = check_signature(&session, &path)?;
        tracing::info!(model = %path.display(), provider = provider.as_str(), "RMBG model loaded");
        Ok(BiRefNet {
            session: Mutex::new(session),
            input_name,
            output_index,
            provider,
            mask_output: opts.mask_output,
            model_path: path,
        })
    }

    /// The execution provider this session runs on.
    pub fn provider(&self) -> ActiveProvider {
        self.provider
    }

    pub fn model_path(&self) -> &Path {
        &self.model_path
    }

    /// Steps 1–4: the 1024² u8 mask (`ToPILImage` of the sigmoid of the last output).
    pub fn predict_mask_1024(&self, img: &RgbImage) -> Result<GrayImage, BiRefNetError> {
        if img.width() == 0 || img.height() == 0 {
            return Err(BiRefNetError::EmptyImage {
                width: img.width(),
                height: img.height(),
            });
        }
        let side = INPUT_SIZE as usize;
        let resized = resize_rgb(img, INPUT_SIZE, INPUT_SIZE, Filter::Bilinear);
        let chw = to_normalized_chw(&resized, IMAGENET_MEAN, IMAGENET_STD);
        let fail = |e: ort::Error| BiRefNetError::Inference {
            detail: e.to_string(),
        };
        let input = Tensor::from_array(([1usize, 3, side, side], chw)).map_err(fail)?;
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let mask: Vec<u8> = contain(
            || {
                let outputs = session
                    .run(ort::inputs![self.input_name.as_str() => input])
                    .map_err(fail)?;
                let (shape, logits) = outputs[self.output_index]
                    .try_extract_tensor::<f32>()
                    .map_err(fail)?;
                if shape[..] != [1, 1, side as i64, side as i64] {
                    return Err(BiRefNetError::Inference {
                        detail: format!(
                            "mask output has shape {:?}, expected [1, 1, {side}, {side}]",
                            &shape[..]
                        ),
                    });
                }
                Ok(match self.mask_output {
                    // torch: sigmoid in f32, then ToPILImage's `mul(255).byte()` truncates.
                    MaskOutput::Logits => {
                        logits.iter().map(|&x| (sigmoid(x) * 255.0) as u8).collect()
                    }
                    MaskOutput::Probabilities => {
                        logits.iter().map(|&p| (p * 255.0) as u8).collect()
                    }
                })
            },
            |detail| BiRefNetError::Inference {
                detail: format!("ONNX Runtime's Rust binding failed: {detail}"),
            },
        )?;
        Ok(GrayImage::from_raw(INPUT_SIZE, INPUT_SIZE, mask).expect("1024*1024 mask samples"))
    }

    /// Steps 1–5: the mask at the image's size.
    pub fn predict_mask(&self, img: &RgbImage) -> Result<GrayImage, BiRefNetError> {
        let mask = self.predict_mask_1024(img)?;
        Ok(resize_luma(
            &mask,
            img.width(),
            img.height(),
            Filter::Bicubic,
        ))
    }

    /// The RGBA cut-out: the image with the predicted mask as alpha (`putalpha`).
    pub fn remove_background(&self, img: &RgbImage) -> Result<RgbaImage, BiRefNetError> {
        let mask = self.predict_mask(img)?;
        Ok(put_alpha(img, &mask).expect("mask resized to the image size"))
    }
}

/// Run `work`, turning a panic into `on_panic(message)`. `ort`'s safe wrappers `expect` on some
/// C API results that a damaged or hostile model file can make fail (Resize scales that overflow
/// give inferred output dims of i64::MIN, which `SetDimensions` refuses while `ort` lists the
/// session's outputs; found by the `onnx_load` fuzz target); such a model must be a load error,
/// not a crashed service.
fn contain<T>(
    work: impl FnOnce() -> Result<T, BiRefNetError>,
    on_panic: impl FnOnce(String) -> BiRefNetError,
) -> Result<T, BiRefNetError> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        Err(on_panic(message))
    })
}

fn binding_failed(path: &Path, detail: String) -> BiRefNetError {
    BiRefNetError::ModelInvalid {
        path: path.to_path_buf(),
        detail: format!("ONNX Runtime's Rust binding failed on this model: {detail}"),
    }
}

/// `torch.sigmoid` in float32: `1 / (1 + exp(-x))`.
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}
