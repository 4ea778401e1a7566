//! The one error type of this crate.

/// Everything that can go wrong between encoded bytes and a model-ready image.
///
/// Variants are grouped by the status a server should answer with: limits → 413,
/// format/corruption/content → 400 (`is_limit` tells the two apart).
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image is {actual} bytes; the limit is {limit} bytes")]
    TooManyBytes { actual: usize, limit: usize },
    #[error("image is {width}x{height}; the longest side may be at most {limit} px")]
    SideTooLong { width: u32, height: u32, limit: u32 },
    #[error("image is {width}x{height} = {pixels} pixels; the limit is {limit} pixels")]
    TooManyPixels {
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },
    #[error("empty input: no image bytes")]
    Empty,
    #[error("unsupported image format (expected PNG, JPEG or WebP; first bytes {magic:02x?})")]
    UnsupportedFormat { magic: Vec<u8> },
    #[error("unsupported {format} image: {detail}")]
    UnsupportedContent {
        format: &'static str,
        detail: String,
    },
    #[error("corrupt or truncated {format} image: {detail}")]
    Corrupt {
        format: &'static str,
        detail: String,
    },
    #[error("image has no pixels ({width}x{height})")]
    ZeroSize { width: u32, height: u32 },
    #[error(
        "no foreground: no pixel has alpha above 0.8*255 (the background removal found no object, \
         or the input alpha is fully transparent)"
    )]
    NoForeground,
    #[error(
        "foreground bounding box is a single row or column ({width}x{height} px), so the square \
         crop is empty"
    )]
    EmptyCrop { width: u32, height: u32 },
    #[error("buffer length {actual} does not match {width}x{height}x{channels}")]
    BufferSize {
        width: u32,
        height: u32,
        channels: u32,
        actual: usize,
    },
}

impl ImageError {
    /// True for the size limits (an HTTP server answers 413), false for bad content (400).
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            Self::TooManyBytes { .. } | Self::SideTooLong { .. } | Self::TooManyPixels { .. }
        )
    }
}
