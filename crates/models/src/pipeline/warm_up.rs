//! Warm-up after load: every resident network runs once, on inputs the size of a typical
//! `1024_cascade` job (an analytic sphere's structure: 3,680 tokens at 512, 14,120 at 1024;
//! zero conditions), so that the first request does not pay for first use: the device
//! allocator's growth to a job's working set, GEMM algorithm choices, kernel modules loaded
//! into the context. Measured on the H200 before this existed: the first job after start took
//! ~0.9 s longer than the next ones.
//!
//! The inputs never depend on what the weights decode (the structure and the subdivisions are
//! the sphere's), so the work is bounded with any weights. Nothing it computes is kept.

use t2_tensor::{DType, Device, Tensor};

use super::{
    FlowRes, PipelineType, Residency, SamplerOverrides, SparseLatent, Trellis2Pipeline,
    bench_latent_coords,
};
use crate::decoders::Subdivide;
use crate::error::Result;
use crate::random::shape::SurfaceShape;
use crate::rng::TorchGenerator;

/// DINOv3 ViT-L/16 condition tokens for a `size`-px image: CLS, 4 registers, the patches.
fn cond_tokens(size: usize) -> usize {
    5 + (size / 16) * (size / 16)
}

impl Trellis2Pipeline {
    /// Runs each resident network once (see the module docs); returns the seconds it took.
    /// Does nothing on the CPU (no first-use costs worth a start-up delay) or in the low-VRAM
    /// mode (it would load every network once more).
    pub fn warm_up(&self) -> Result<f64> {
        if matches!(self.device, Device::Cpu) {
            return Ok(0.0);
        }
        self.run_warm_up()
    }

    /// The warm-up's work on any device (tests run it on the CPU); nothing in low-VRAM mode.
    pub fn run_warm_up(&self) -> Result<f64> {
        if self.residency != Residency::AllResident {
            return Ok(0.0);
        }
        let t = std::time::Instant::now();
        let nets = self.networks();
        let surface = SurfaceShape::sphere();
        let one_step = SamplerOverrides {
            steps: Some(1),
            ..SamplerOverrides::default()
        };
        let mut rng = TorchGenerator::manual_seed(0);
        let mut quiet = |_: super::Stage, _: usize, _: usize| Ok(());
        let cond = |size: usize, channels: usize| {
            Tensor::zeros(&[1, cond_tokens(size), channels], DType::F32, &self.device)
        };
        if let Some(flow) = nets.ss_flow {
            let c = cond(512, flow.config().cond_channels)?;
            let latent = self.sample_ss_latent(&c, &mut rng, &one_step, &mut quiet)?;
            if nets.ss_decoder.is_some() {
                self.decode_sparse_structure(&latent, PipelineType::Cascade1024.ss_resolution())?;
            }
        }
        // The SLat flows: 512 on the SS structure, 1024 on the cascade's HR structure; the
        // texture flow on the shape flow's output, as in a job.
        for (res, ty, shape_flow, tex_flow) in [
            (
                FlowRes::R512,
                PipelineType::P512,
                nets.shape_flow_512,
                nets.tex_flow_512,
            ),
            (
                FlowRes::R1024,
                PipelineType::Cascade1024,
                nets.shape_flow_1024,
                nets.tex_flow_1024,
            ),
        ] {
            let Some(shape_flow) = shape_flow else {
                continue;
            };
            let (coords, _) = bench_latent_coords(&surface, ty);
            let size = if res == FlowRes::R512 { 512 } else { 1024 };
            let c = cond(size, shape_flow.config().cond_channels)?;
            let shape =
                self.sample_shape_slat(&c, res, &coords, &mut rng, &one_step, &mut quiet)?;
            if tex_flow.is_some() {
                self.sample_tex_slat(&c, res, &shape, &mut rng, &one_step, &mut quiet)?;
            }
        }
        // The decoders at 1024 on the sphere's subdivisions (what they decide with these
        // weights is not used). Only where both are resident, as for a job's decode: the flow
        // service holds the shape decoder for the cascade's upsampling alone.
        if let (Some(shape_dec), Some(tex_dec)) = (nets.shape_decoder, nets.tex_decoder) {
            let (coords, res) = bench_latent_coords(&surface, PipelineType::Cascade1024);
            let levels = shape_dec.inner().num_upsamplings();
            let subs = surface.subdivisions(&coords, (res / 16) as usize, levels);
            let zeros = |channels: usize| SparseLatent {
                feats: vec![0.0; coords.len() * channels],
                coords: coords.clone(),
                channels,
            };
            let shape = zeros(shape_dec.inner().config().latent_channels);
            self.decode_shape(&shape, res, Subdivide::Guide(&subs))?;
            self.decode_texture(&zeros(tex_dec.inner().config().latent_channels), &subs)?;
        }
        self.device.synchronize()?;
        Ok(t.elapsed().as_secs_f64())
    }
}
