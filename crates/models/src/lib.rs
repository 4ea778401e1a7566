//! TRELLIS.2 (microsoft/TRELLIS.2 @ 5565d240c4a4) image-to-3D inference on t2-tensor: the
//! DINOv3 feature extractor, the flow DiTs, the decoders, the guidance-interval Euler sampler,
//! PyTorch-exact noise and the pipeline that chains them. One module per reference module.
//!
//! Entry points:
//! - [`pipeline::Trellis2Pipeline`]: `load(dir, LoadOptions)` (a service loads only the models
//!   its stages use), then the stages — `preprocess_image`, `get_cond`,
//!   `sample_sparse_structure`, `sample_shape_slat` / `sample_shape_slat_cascade`,
//!   `sample_tex_slat`, `decode_latent` — or `run` for all of them. Noise comes from one
//!   [`rng::TorchGenerator`] threaded through the sampling stages in the reference's order;
//!   a progress callback sees every sampler step and can cancel between steps.
//! - [`demo::write_demo_models`]: a tiny random-weight model set in the real layout.
//! - [`random::write_full_size`]: the real model set's files at full size with random weights,
//!   and [`random::shape`], voxelised analytic shapes that fix the sparse structure in benchmarks.
//! - The networks on their own: [`dinov3::Dinov3`], [`dit`], [`decoders`], with probes that
//!   expose intermediates under the reference's module paths.
//!
//! Precision: [`nn::Precision::Reference`] reproduces the reference's mixed precision (bf16 DiT
//! blocks, f16 decoder bodies, f32 elsewhere) from the checkpoint configs;
//! [`nn::Precision::F32`] runs everything in f32.

pub mod config;
pub mod decoders;
pub mod demo;
pub mod dinov3;
pub mod dit;
pub mod error;
pub mod nn;
pub mod pipeline;
pub mod random;
pub mod rng;
pub mod sampler;

pub use error::{ModelError, Result};
