//! TRELLIS.2 networks, sampler and pipeline on t2-tensor.

pub mod rng;
