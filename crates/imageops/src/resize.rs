//! Pillow's `Image.resize` for the modes the pipeline meets, on `image` buffers.
//!
//! Same size → an unchanged copy (Pillow returns `self.copy()` before anything else).
//! A zero width or height → an empty image (Pillow raises; callers that can meet it check
//! first, see `preprocess`).

use image::{GrayAlphaImage, GrayImage, ImageBuffer, Luma, RgbImage, RgbaImage};

use crate::convert::{premultiply, unpremultiply};
use crate::resample::{Filter, nearest, resample_u8, resample_u16};

/// A 16-bit single-channel image (Pillow mode `I;16`).
pub type Gray16Image = ImageBuffer<Luma<u16>, Vec<u16>>;

fn resize_u8(
    src: &[u8],
    size: (u32, u32),
    channels: usize,
    out: (u32, u32),
    filter: Filter,
) -> Vec<u8> {
    match filter {
        Filter::Nearest => nearest(src, size, channels, out),
        _ => resample_u8(src, size, channels, out, filter),
    }
}

fn degenerate(w: u32, h: u32) -> bool {
    w == 0 || h == 0
}

/// Pillow `Image.resize` on mode `RGB`.
pub fn resize_rgb(img: &RgbImage, w: u32, h: u32, filter: Filter) -> RgbImage {
    if img.dimensions() == (w, h) {
        return img.clone();
    }
    if degenerate(w, h) || degenerate(img.width(), img.height()) {
        return RgbImage::new(0, 0);
    }
    let data = resize_u8(img.as_raw(), img.dimensions(), 3, (w, h), filter);
    RgbImage::from_raw(w, h, data).expect("resampler output has w*h*3 samples")
}

/// Pillow `Image.resize` on mode `L`.
pub fn resize_luma(img: &GrayImage, w: u32, h: u32, filter: Filter) -> GrayImage {
    if img.dimensions() == (w, h) {
        return img.clone();
    }
    if degenerate(w, h) || degenerate(img.width(), img.height()) {
        return GrayImage::new(0, 0);
    }
    let data = resize_u8(img.as_raw(), img.dimensions(), 1, (w, h), filter);
    GrayImage::from_raw(w, h, data).expect("resampler output has w*h samples")
}

/// Pillow `Image.resize` on mode `I;16`.
pub fn resize_luma16(img: &Gray16Image, w: u32, h: u32, filter: Filter) -> Gray16Image {
    if img.dimensions() == (w, h) {
        return img.clone();
    }
    if degenerate(w, h) || degenerate(img.width(), img.height()) {
        return Gray16Image::new(0, 0);
    }
    let data = match filter {
        Filter::Nearest => nearest(img.as_raw(), img.dimensions(), 1, (w, h)),
        _ => resample_u16(img.as_raw(), img.dimensions(), (w, h), filter),
    };
    Gray16Image::from_raw(w, h, data).expect("resampler output has w*h samples")
}

/// Pillow resizes images with alpha through premultiplied colour (`RGBA → RGBa → resize →
/// RGBA`, likewise `LA → La`), so transparent pixels do not bleed their colour. NEAREST
/// skips the round trip.
fn resize_with_alpha(
    raw: &[u8],
    size: (u32, u32),
    channels: usize,
    out: (u32, u32),
    filter: Filter,
) -> Vec<u8> {
    if filter == Filter::Nearest {
        return nearest(raw, size, channels, out);
    }
    let mut pre = raw.to_vec();
    pre.chunks_exact_mut(channels).for_each(premultiply);
    let mut data = resample_u8(&pre, size, channels, out, filter);
    data.chunks_exact_mut(channels).for_each(unpremultiply);
    data
}

/// Pillow `Image.resize` on mode `RGBA` (through premultiplied `RGBa`).
pub fn resize_rgba(img: &RgbaImage, w: u32, h: u32, filter: Filter) -> RgbaImage {
    if img.dimensions() == (w, h) {
        return img.clone();
    }
    if degenerate(w, h) || degenerate(img.width(), img.height()) {
        return RgbaImage::new(0, 0);
    }
    let data = resize_with_alpha(img.as_raw(), img.dimensions(), 4, (w, h), filter);
    RgbaImage::from_raw(w, h, data).expect("resampler output has w*h*4 samples")
}

/// Pillow `Image.resize` on mode `LA` (through premultiplied `La`).
pub fn resize_luma_alpha(img: &GrayAlphaImage, w: u32, h: u32, filter: Filter) -> GrayAlphaImage {
    if img.dimensions() == (w, h) {
        return img.clone();
    }
    if degenerate(w, h) || degenerate(img.width(), img.height()) {
        return GrayAlphaImage::new(0, 0);
    }
    let data = resize_with_alpha(img.as_raw(), img.dimensions(), 2, (w, h), filter);
    GrayAlphaImage::from_raw(w, h, data).expect("resampler output has w*h*2 samples")
}

/// Pillow `Image.resize` on mode `CMYK`: four independent channels, no premultiplication.
pub(crate) fn resize_cmyk(
    raw: &[u8],
    size: (u32, u32),
    out: (u32, u32),
    filter: Filter,
) -> Vec<u8> {
    if size == out {
        return raw.to_vec();
    }
    resize_u8(raw, size, 4, out, filter)
}
