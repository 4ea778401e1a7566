//! Message-size limits, set explicitly on both ends of every channel.
//!
//! tonic's default decode limit is 4 MiB, too small for conditioning tokens
//! ([1, 4101, 1024] f32 = 16.8 MB at 1024 px) or a 10 MB input image. Payloads that can grow past
//! a few MB without bound (feature maps, GLB, MP4) are streamed in [`CHUNK_BYTES`] pieces instead.

/// Largest single gRPC message either end accepts or sends.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Size of one chunk of a streamed payload: well under [`MAX_MESSAGE_BYTES`], large enough that
/// per-message overhead is negligible.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Upper bound on a streamed payload's announced size; a header announcing more is refused before
/// any allocation (a 1536³ GLB with 4K textures stays far below this).
pub const MAX_STREAMED_PAYLOAD_BYTES: u64 = 4 << 30;
