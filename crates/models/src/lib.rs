//! TRELLIS.2 (microsoft/TRELLIS.2 @ 5565d240c4a4) image-to-3D inference on t2-tensor: the
//! DINOv3 feature extractor, the flow DiTs, the decoders, the guidance-interval Euler sampler,
//! PyTorch-exact noise and the pipeline that chains them. One module per reference module.

pub mod config;
pub mod decoders;
pub mod demo;
pub mod dinov3;
pub mod error;
pub mod rng;
pub mod sampler;

pub use error::{ModelError, Result};
pub mod dit;
pub mod nn;
pub mod pipeline;
