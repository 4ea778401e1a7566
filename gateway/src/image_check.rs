//! Input images: base64 decoding and decompression-bomb-safe validation. Dimensions are read
//! from the header before any pixel is decoded, and decoding runs under `image::Limits`.

use base64::Engine;
use bytes::Bytes;
use image::{ImageFormat, ImageReader, Limits};

use crate::error::ApiError;

/// Largest encoded image accepted (product.md §2).
pub const MAX_IMAGE_BYTES: usize = 10_000_000;
/// Largest width or height accepted.
pub const MAX_IMAGE_SIDE: u32 = 4096;

/// A validated input image.
#[derive(Debug, Clone)]
pub struct CheckedImage {
    pub bytes: Bytes,
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    /// True when the image has an alpha channel that is not fully opaque.
    pub has_real_alpha: bool,
}

impl CheckedImage {
    pub fn media_type(&self) -> &'static str {
        self.format.to_mime_type()
    }

    pub fn to_proto(&self) -> t2_proto::common::v1::Image {
        t2_proto::common::v1::Image {
            data: self.bytes.clone(),
            media_type: self.media_type().to_string(),
            width: self.width,
            height: self.height,
        }
    }
}

/// Decodes base64 (standard alphabet, optional `data:<type>;base64,` prefix and whitespace).
pub fn decode_base64(field: &str, s: &str, max_bytes: usize) -> Result<Bytes, ApiError> {
    let payload = match s.strip_prefix("data:") {
        Some(rest) => {
            rest.split_once(',')
                .filter(|(meta, _)| meta.ends_with(";base64"))
                .ok_or_else(|| {
                    ApiError::validation(format!("{field}: data URI must be ;base64-encoded"))
                })?
                .1
        }
        None => s,
    };
    // Cheap size check before decoding: base64 expands 3 bytes to 4 characters.
    if payload.len() / 4 * 3 > max_bytes + 3 {
        return Err(ApiError::too_large(format!(
            "{field} exceeds {max_bytes} bytes"
        )));
    }
    let compact: String;
    let payload = if payload.bytes().any(|b| b.is_ascii_whitespace()) {
        compact = payload
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        compact.as_str()
    } else {
        payload
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .map_err(|e| ApiError::validation(format!("{field} is not valid base64: {e}")))?;
    if bytes.len() > max_bytes {
        return Err(ApiError::too_large(format!(
            "{field} exceeds {max_bytes} bytes"
        )));
    }
    Ok(Bytes::from(bytes))
}

/// Checks an encoded image: size, format (PNG, JPEG, WebP), header dimensions, then a decode
/// under allocation limits (so a truncated or lying file is refused too).
pub fn check_image(bytes: Bytes) -> Result<CheckedImage, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::validation("image is empty"));
    }
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(ApiError::too_large(format!(
            "image exceeds {MAX_IMAGE_BYTES} bytes"
        )));
    }
    let reader = || {
        ImageReader::new(std::io::Cursor::new(bytes.as_ref()))
            .with_guessed_format()
            .map_err(|e| ApiError::validation(format!("unreadable image: {e}")))
    };
    let format = reader()?
        .format()
        .filter(|f| matches!(f, ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP))
        .ok_or_else(|| ApiError::validation("image must be PNG, JPEG or WebP"))?;
    let (width, height) = reader()?
        .into_dimensions()
        .map_err(|e| ApiError::validation(format!("unreadable image header: {e}")))?;
    if width == 0 || height == 0 {
        return Err(ApiError::validation("image has zero width or height"));
    }
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
        return Err(ApiError::validation(format!(
            "image is {width}×{height}; the maximum is {MAX_IMAGE_SIDE}×{MAX_IMAGE_SIDE}"
        )));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    // RGBA16 at the maximum size, plus decoder scratch.
    limits.max_alloc = Some(2 * 8 * (MAX_IMAGE_SIDE as u64).pow(2));
    let mut r = reader()?;
    r.limits(limits);
    let decoded = r
        .decode()
        .map_err(|e| ApiError::validation(format!("image does not decode: {e}")))?;
    let has_real_alpha = decoded.color().has_alpha() && {
        let rgba = decoded.to_rgba8();
        rgba.pixels().any(|p| p.0[3] < 255)
    };
    Ok(CheckedImage {
        bytes,
        format,
        width,
        height,
        has_real_alpha,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32, alpha: u8) -> Vec<u8> {
        let img = image::RgbaImage::from_pixel(w, h, image::Rgba([10, 20, 30, alpha]));
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn accepts_a_small_png_and_sees_alpha() {
        let c = check_image(png(8, 4, 255).into()).unwrap();
        assert_eq!((c.width, c.height, c.has_real_alpha), (8, 4, false));
        assert!(check_image(png(8, 4, 0).into()).unwrap().has_real_alpha);
    }

    #[test]
    fn base64_with_data_uri_and_whitespace() {
        let b = decode_base64("image", "data:image/png;base64,aGVs\nbG8=", 100).unwrap();
        assert_eq!(&b[..], b"hello");
        assert!(decode_base64("image", "not base64!", 100).is_err());
        assert!(decode_base64("image", "data:image/png,aGVsbG8=", 100).is_err());
        let e = decode_base64("image", "aGVsbG8=", 2).unwrap_err();
        assert_eq!(e.code, t2_proto::ErrorCode::PayloadTooLarge);
    }

    #[test]
    fn refuses_other_formats_and_garbage() {
        assert!(check_image(Bytes::from_static(b"GIF89a....")).is_err());
        assert!(check_image(Bytes::from_static(b"\x89PNG\r\n\x1a\n garbage")).is_err());
    }
}
