//! S0 steps 1–2 of the reference preprocessing (`Trellis2ImageTo3DPipeline.preprocess_image`):
//! decide whether the input already has usable alpha, and bring its longest side to ≤ 1024 px
//! with LANCZOS in the image's own mode.

use image::{RgbImage, RgbaImage};

use crate::error::ImageError;
use crate::pil::PilImage;
use crate::resample::Filter;

/// The reference downscales anything whose longest side exceeds this.
pub const MAX_INPUT_SIDE: u32 = 1024;

/// True when an RGBA image has any alpha below 255 (the reference's `has_alpha`).
pub fn has_real_alpha(img: &RgbaImage) -> bool {
    img.pixels().any(|p| p[3] < 255)
}

/// The reference's size rule: `s = 1024 / max(W, H)`; if `s < 1`, `(int(W*s), int(H*s))`
/// (truncation, in f64 as Python computes it), else `None` (no resize).
pub fn downscale_size(width: u32, height: u32) -> Option<(u32, u32)> {
    let max_side = width.max(height);
    if max_side == 0 {
        return None;
    }
    let scale = f64::from(MAX_INPUT_SIDE) / f64::from(max_side);
    (scale < 1.0).then(|| {
        (
            (f64::from(width) * scale) as u32,
            (f64::from(height) * scale) as u32,
        )
    })
}

/// What step 3 of S0 gets.
#[derive(Debug, Clone, PartialEq)]
pub enum Prepared {
    /// Mode RGBA with some alpha < 255: used as is (no background removal).
    Cutout(RgbaImage),
    /// Everything else, converted to RGB: goes through background removal.
    NeedsBackgroundRemoval(RgbImage),
}

/// S0 steps 1–2 in the reference's order: `has_alpha` (mode RGBA only) on the input as
/// decoded, then the LANCZOS downscale in the image's own mode (RGBA premultiplied, palette
/// NEAREST, CMYK in CMYK, ...), then `convert("RGB")` when there is no usable alpha.
pub fn prepare(img: &PilImage) -> Result<Prepared, ImageError> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return Err(ImageError::ZeroSize {
            width: w,
            height: h,
        });
    }
    let has_alpha = matches!(img, PilImage::Rgba(rgba) if has_real_alpha(rgba));
    let resized;
    let img = match downscale_size(w, h) {
        Some((nw, nh)) if nw == 0 || nh == 0 => {
            // Pillow refuses a zero-sized resize; the image is too thin to use.
            return Err(ImageError::ZeroSize {
                width: nw,
                height: nh,
            });
        }
        Some((nw, nh)) => {
            resized = img.resize(nw, nh, Filter::Lanczos);
            &resized
        }
        None => img,
    };
    Ok(if has_alpha {
        Prepared::Cutout(img.to_rgba())
    } else {
        Prepared::NeedsBackgroundRemoval(img.to_rgb())
    })
}
