//! Image decoding with limits and Pillow-exact resampling, crop and premultiply.
//!
//! Everything here reproduces what the reference pipeline computes with Pillow 13 (and
//! torchvision on PIL images), bit for bit on 8-bit data; the tests compare against goldens
//! written by Pillow itself (`tests/fixtures/make_fixtures.py`).
//!
//! - [`decode_with_limits`] / [`decode_pil_with_limits`]: PNG, JPEG, WebP, limits checked from
//!   the header before decoding. JPEG goes through libjpeg-turbo's decoder (vendored C, built
//!   with `cc`) with Pillow's settings, so its pixels are Pillow's too.
//! - [`resize_rgb`], [`resize_rgba`], [`resize_luma`], …: Pillow's `Image.resize`.
//! - [`prepare`]: S0 steps 1–2 (real alpha? ≤ 1024 px LANCZOS downscale, convert).
//! - [`crop_premultiply`]: S0 steps 4–5 (square crop around alpha > 0.8·255, premultiply).
//! - [`to_normalized_chw`]: `ToTensor` + `Normalize`.

mod convert;
mod crop;
mod decode;
mod error;
mod jpeg;
mod pil;
mod preprocess;
mod resample;
mod resize;
mod tensor;

pub use crop::{
    crop_box, crop_premultiply, foreground_bbox, pil_crop, premultiply_on_black, python_round,
};
pub use decode::{
    DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE, Format, Limits,
    decode_pil_with_limits, decode_with_limits, probe_dimensions,
};
pub use error::ImageError;
pub use jpeg::MAX_PROGRESSIVE_SCANS;
pub use pil::{CmykImage, PilImage};
pub use preprocess::{MAX_INPUT_SIDE, Prepared, downscale_size, has_real_alpha, prepare};
pub use resample::Filter;
pub use resize::{
    Gray16Image, resize_luma, resize_luma_alpha, resize_luma16, resize_rgb, resize_rgba,
};
pub use tensor::{IMAGENET_MEAN, IMAGENET_STD, to_normalized_chw};

/// Pillow's `Image.putalpha(mask)` on an RGB image: the mask becomes the alpha channel.
/// `None` when the sizes differ.
pub fn put_alpha(rgb: &image::RgbImage, mask: &image::GrayImage) -> Option<image::RgbaImage> {
    if rgb.dimensions() != mask.dimensions() {
        return None;
    }
    Some(image::RgbaImage::from_fn(
        rgb.width(),
        rgb.height(),
        |x, y| {
            let [r, g, b] = rgb.get_pixel(x, y).0;
            [r, g, b, mask.get_pixel(x, y)[0]].into()
        },
    ))
}
