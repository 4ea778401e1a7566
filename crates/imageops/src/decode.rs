//! Decoding PNG, JPEG and WebP with limits checked from the header before any pixel is
//! decoded (decompression bombs), into Pillow's pixel modes. JPEG lives in [`crate::jpeg`].

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use image::{DynamicImage, GrayAlphaImage, GrayImage, ImageDecoder, RgbImage, RgbaImage};

use crate::convert::msb;
use crate::error::ImageError;
use crate::jpeg;
use crate::pil::PilImage;
use crate::resize::Gray16Image;

/// Product limits: 10 MB of encoded input, at most 4096 px a side (product spec, validation).
pub const DEFAULT_MAX_BYTES: usize = 10 * 1024 * 1024;
pub const DEFAULT_MAX_SIDE: u32 = 4096;
pub const DEFAULT_MAX_PIXELS: u64 = 4096 * 4096;

/// What an input may be, checked before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Encoded size in bytes.
    pub max_bytes: usize,
    /// Longest side in pixels.
    pub max_side: u32,
    /// Width × height.
    pub max_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: DEFAULT_MAX_BYTES,
            max_side: DEFAULT_MAX_SIDE,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

impl Limits {
    /// Refuse `width × height` if it breaks a limit.
    pub fn check_dimensions(&self, width: u32, height: u32) -> Result<(), ImageError> {
        if width == 0 || height == 0 {
            return Err(ImageError::ZeroSize { width, height });
        }
        if width.max(height) > self.max_side {
            return Err(ImageError::SideTooLong {
                width,
                height,
                limit: self.max_side,
            });
        }
        let pixels = u64::from(width) * u64::from(height);
        if pixels > self.max_pixels {
            return Err(ImageError::TooManyPixels {
                width,
                height,
                pixels,
                limit: self.max_pixels,
            });
        }
        Ok(())
    }
}

/// The container formats accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
    WebP,
}

impl Format {
    /// Recognise the format from its signature.
    pub fn sniff(bytes: &[u8]) -> Result<Format, ImageError> {
        if bytes.is_empty() {
            return Err(ImageError::Empty);
        }
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Ok(Format::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Ok(Format::Jpeg)
        } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Ok(Format::WebP)
        } else {
            Err(ImageError::UnsupportedFormat {
                magic: bytes[..bytes.len().min(8)].to_vec(),
            })
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Png => "PNG",
            Format::Jpeg => "JPEG",
            Format::WebP => "WebP",
        }
    }
}

fn corrupt(format: Format, e: impl std::fmt::Display) -> ImageError {
    ImageError::Corrupt {
        format: format.name(),
        detail: e.to_string(),
    }
}

/// Decode into `image`'s types (see [`PilImage::into_dynamic`] for CMYK and palettes).
pub fn decode_with_limits(bytes: &[u8], limits: &Limits) -> Result<DynamicImage, ImageError> {
    decode_pil_with_limits(bytes, limits).map(PilImage::into_dynamic)
}

/// Decode into Pillow's mode for the file (what `Image.open(f)` holds).
pub fn decode_pil_with_limits(bytes: &[u8], limits: &Limits) -> Result<PilImage, ImageError> {
    if bytes.len() > limits.max_bytes {
        return Err(ImageError::TooManyBytes {
            actual: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let format = Format::sniff(bytes)?;
    // The decoders are meant never to panic on bad input; should one still do so, the
    // request fails with a clear error instead of taking the server down.
    catch_unwind(AssertUnwindSafe(|| match format {
        Format::Png => decode_png(bytes, limits),
        Format::Jpeg => jpeg::decode(bytes, limits),
        Format::WebP => decode_webp(bytes, limits),
    }))
    .unwrap_or_else(|_| Err(corrupt(format, "the decoder failed on this input")))
}

/// Width and height from the header only.
pub fn probe_dimensions(bytes: &[u8]) -> Result<(Format, u32, u32), ImageError> {
    let format = Format::sniff(bytes)?;
    let (w, h) = match format {
        Format::Png => {
            let mut dec = png::Decoder::new(Cursor::new(bytes));
            let info = dec.read_header_info().map_err(|e| corrupt(format, e))?;
            (info.width, info.height)
        }
        Format::Jpeg => jpeg::dimensions(bytes)?,
        Format::WebP => {
            let dec = image::codecs::webp::WebPDecoder::new(Cursor::new(bytes))
                .map_err(|e| corrupt(format, e))?;
            dec.dimensions()
        }
    };
    Ok((format, w, h))
}

fn decode_png(bytes: &[u8], limits: &Limits) -> Result<PilImage, ImageError> {
    let f = Format::Png;
    let mut dec = png::Decoder::new(Cursor::new(bytes));
    // EXPAND: palette → RGB(A), 1/2/4-bit grey → 8-bit scaled by 255/(2^n - 1) (Pillow's
    // `L;2`/`L;4`/`1` unpacking does the same), tRNS → alpha (dropped below where Pillow
    // keeps it out of the pixels).
    dec.set_transformations(png::Transformations::EXPAND);
    let info = dec.read_header_info().map_err(|e| corrupt(f, e))?;
    limits.check_dimensions(info.width, info.height)?;
    let (w, h) = (info.width, info.height);
    let mut reader = dec.read_info().map_err(|e| corrupt(f, e))?;
    let (src_type, src_depth) = (reader.info().color_type, reader.info().bit_depth);
    let (out_type, out_depth) = reader.output_color_type();
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| corrupt(f, "image too large for this platform"))?;
    let mut buf = vec![0u8; size];
    let frame = reader.next_frame(&mut buf).map_err(|e| corrupt(f, e))?;
    buf.truncate(frame.buffer_size());

    let channels = out_type.samples();
    let wide = out_depth == png::BitDepth::Sixteen;
    let bytes_per_sample = if wide { 2 } else { 1 };
    let expected = w as usize * h as usize * channels * bytes_per_sample;
    if buf.len() != expected {
        return Err(corrupt(
            f,
            format!("decoded {} bytes, expected {expected}", buf.len()),
        ));
    }
    // Sample `ch` of pixel `i`, 16-bit samples big-endian as PNG stores them.
    let sample16 = |i: usize, ch: usize| -> u16 {
        let o = (i * channels + ch) * 2;
        u16::from_be_bytes([buf[o], buf[o + 1]])
    };
    let sample8 = |i: usize, ch: usize| -> u8 { buf[i * channels + ch] };
    let idx = |x: u32, y: u32| y as usize * w as usize + x as usize;

    use png::ColorType as C;
    Ok(match (src_type, wide) {
        (C::Grayscale, false) if src_depth == png::BitDepth::One => {
            PilImage::Bilevel(GrayImage::from_fn(w, h, |x, y| {
                [sample8(idx(x, y), 0)].into()
            }))
        }
        (C::Grayscale, false) => PilImage::L(GrayImage::from_fn(w, h, |x, y| {
            [sample8(idx(x, y), 0)].into()
        })),
        (C::Grayscale, true) => PilImage::I16(Gray16Image::from_fn(w, h, |x, y| {
            [sample16(idx(x, y), 0)].into()
        })),
        (C::Rgb, false) => PilImage::Rgb(RgbImage::from_fn(w, h, |x, y| {
            let i = idx(x, y);
            [sample8(i, 0), sample8(i, 1), sample8(i, 2)].into()
        })),
        (C::Rgb, true) => PilImage::Rgb(RgbImage::from_fn(w, h, |x, y| {
            let i = idx(x, y);
            [0, 1, 2].map(|c| msb(sample16(i, c))).into()
        })),
        (C::Indexed, _) => PilImage::P(RgbaImage::from_fn(w, h, |x, y| {
            let i = idx(x, y);
            let a = if channels == 4 { sample8(i, 3) } else { 255 };
            [sample8(i, 0), sample8(i, 1), sample8(i, 2), a].into()
        })),
        (C::GrayscaleAlpha, false) => PilImage::La(GrayAlphaImage::from_fn(w, h, |x, y| {
            let i = idx(x, y);
            [sample8(i, 0), sample8(i, 1)].into()
        })),
        // Pillow opens 16-bit grey+alpha as RGBA (rawmode `LA;16B`).
        (C::GrayscaleAlpha, true) => PilImage::Rgba(RgbaImage::from_fn(w, h, |x, y| {
            let i = idx(x, y);
            let (l, a) = (msb(sample16(i, 0)), msb(sample16(i, 1)));
            [l, l, l, a].into()
        })),
        (C::Rgba, false) => PilImage::Rgba(RgbaImage::from_fn(w, h, |x, y| {
            let i = idx(x, y);
            [0, 1, 2, 3].map(|c| sample8(i, c)).into()
        })),
        (C::Rgba, true) => PilImage::Rgba(RgbaImage::from_fn(w, h, |x, y| {
            let i = idx(x, y);
            [0, 1, 2, 3].map(|c| msb(sample16(i, c))).into()
        })),
    })
}

fn decode_webp(bytes: &[u8], limits: &Limits) -> Result<PilImage, ImageError> {
    let f = Format::WebP;
    let dec =
        image::codecs::webp::WebPDecoder::new(Cursor::new(bytes)).map_err(|e| corrupt(f, e))?;
    let (w, h) = dec.dimensions();
    limits.check_dimensions(w, h)?;
    let img = DynamicImage::from_decoder(dec).map_err(|e| corrupt(f, e))?;
    Ok(PilImage::from_dynamic(img))
}
