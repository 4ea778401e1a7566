//! `Trellis2ImageTo3DPipeline` (`trellis2_image_to_3d.py`): the stages as separate calls, so the
//! services can run them in different processes, plus `run` chaining them like the reference.
//!
//! Reference order and number formats kept here: `manual_seed` after preprocessing; noise drawn
//! on the host in the order SS → (cascade LR shape) → shape → texture, each `randn` row following
//! the lexicographic coords; samplers in f32 host math with f64 schedules; latent
//! (de)normalisation as two f32 ops per element; the cascade's `(c + 0.5) / 512 · G` f32
//! quantisation, `unique`, and the 49,152-token back-off (1536 → 1408 → … → 1024).

mod bench;
mod options;
mod residency;
mod warm_up;

use bench::BenchSubdivisions;
pub use bench::{BenchStructure, bench_latent_coords};

pub use options::{
    FlowRes, LoadOptions, PipelineType, Progress, RunOptions, RunOutput, SamplerOverrides,
    SparseLatent, SparseStructure, Stage,
};
pub use residency::Held;
pub use residency::Residency;
use residency::Slot;

use image::{RgbImage, RgbaImage};
use t2_mesh::{MeshWithVoxel, TriMesh};
use t2_tensor::{Device, Tensor};

use crate::config::{Normalization, PipelineConfig, SamplerParams};
use crate::decoders::{
    ShapeDecoder, SparseStructureDecoder, Subdivide, Subdivision, TexDecoder, occupied_coords,
};
use crate::dinov3::Dinov3;
use crate::dit::velocity::{DenseVelocity, SparseVelocity};
use crate::dit::{SLatFlowModel, SparseStructureFlowModel};
use crate::error::{ModelError, Result};
use crate::random::shape::{SurfaceShape, cascade_structure};
use crate::rng::TorchGenerator;
use crate::sampler::{FlowEulerGuidanceIntervalSampler, StdKind};

/// The reference's `max_num_tokens` default for the 1536 cascade.
pub const MAX_NUM_TOKENS: usize = 49_152;
/// `upsample_times` of the cascade's LR decoder pass (512³ output for a 32³ latent grid).
const CASCADE_UPSAMPLE_TIMES: usize = 4;
/// The cascade's LR output resolution (`lr_resolution`).
const CASCADE_LR_RESOLUTION: u32 = 512;

/// The loaded pipeline.
pub struct Trellis2Pipeline {
    pub config: PipelineConfig,
    device: Device,
    residency: Residency,
    /// The SS latent's `(channels, resolution)` from the SS flow's config, read at load when the
    /// SS decoder is loaded (the decoder's input shape; the flow itself may not be resident).
    ss_latent_shape: Option<(usize, usize)>,
    image_cond: Slot<Dinov3>,
    ss_flow: Slot<SparseStructureFlowModel>,
    ss_decoder: Slot<SparseStructureDecoder>,
    shape_flow_512: Slot<SLatFlowModel>,
    shape_flow_1024: Slot<SLatFlowModel>,
    tex_flow_512: Slot<SLatFlowModel>,
    tex_flow_1024: Slot<SLatFlowModel>,
    shape_decoder: Slot<ShapeDecoder>,
    tex_decoder: Slot<TexDecoder>,
    /// Benchmark mode ([`BenchStructure`]): the sparse structure from an analytic surface.
    bench_structure: Option<SurfaceShape>,
    bench_subdivisions: BenchSubdivisions,
}

/// Borrowed views of the resident networks (`None` when not loaded, or not resident in the
/// low-VRAM mode).
pub struct Networks<'a> {
    pub image_cond: Option<&'a Dinov3>,
    pub ss_flow: Option<&'a SparseStructureFlowModel>,
    pub ss_decoder: Option<&'a SparseStructureDecoder>,
    pub shape_flow_512: Option<&'a SLatFlowModel>,
    pub shape_flow_1024: Option<&'a SLatFlowModel>,
    pub tex_flow_512: Option<&'a SLatFlowModel>,
    pub tex_flow_1024: Option<&'a SLatFlowModel>,
    pub shape_decoder: Option<&'a ShapeDecoder>,
    pub tex_decoder: Option<&'a TexDecoder>,
}

impl Trellis2Pipeline {
    /// Loads `pipeline.json` (a file or its directory) and the requested models.
    pub fn load(path: &std::path::Path, opts: &LoadOptions) -> Result<Trellis2Pipeline> {
        let config = PipelineConfig::load(path)?;
        let want = |k: &str| {
            opts.models
                .as_ref()
                .is_none_or(|m| m.iter().any(|x| x == k))
        };
        let (p, d, r) = (opts.precision, &opts.device, opts.residency);
        macro_rules! model {
            ($key:expr, $load:expr) => {{
                let files = config.model_files($key)?.filter(|_| want($key));
                let dev = d.clone();
                Slot::new(files, r, d, move |f| $load(f, p, &dev))?
            }};
        }
        let cond_files = if opts.image_cond {
            Some(config.image_cond_files()?)
        } else {
            None
        };
        let dev = d.clone();
        let image_cond = Slot::new(cond_files, r, d, move |f| Dinov3::load(f, &dev))?;
        let ss_latent_shape = match config.model_files("sparse_structure_flow_model")? {
            Some(files) if want("sparse_structure_decoder") => {
                let cfg: crate::config::FlowConfig =
                    crate::config::CheckpointConfig::load(&files.config)?
                        .args_as(&files.config, &[SparseStructureFlowModel::CLASS])?;
                Some((cfg.in_channels, cfg.resolution))
            }
            _ => None,
        };
        let bench_structure = BenchStructure::from_env()?;
        if bench_structure.is_some() {
            tracing::warn!(
                "{}: benchmark mode, the sparse structure is an analytic sphere's",
                BenchStructure::ENV
            );
        }
        Ok(Trellis2Pipeline {
            bench_structure,
            bench_subdivisions: BenchSubdivisions::default(),
            residency: r,
            ss_latent_shape,
            image_cond,
            ss_flow: model!(
                "sparse_structure_flow_model",
                SparseStructureFlowModel::load
            ),
            ss_decoder: model!("sparse_structure_decoder", SparseStructureDecoder::load),
            shape_flow_512: model!("shape_slat_flow_model_512", SLatFlowModel::load),
            shape_flow_1024: model!("shape_slat_flow_model_1024", SLatFlowModel::load),
            tex_flow_512: model!("tex_slat_flow_model_512", SLatFlowModel::load),
            tex_flow_1024: model!("tex_slat_flow_model_1024", SLatFlowModel::load),
            shape_decoder: model!("shape_slat_decoder", ShapeDecoder::load),
            tex_decoder: model!("tex_slat_decoder", TexDecoder::load),
            device: opts.device.clone(),
            config,
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Whether benchmark mode ([`BenchStructure`]) is on.
    pub fn bench_structure(&self) -> bool {
        self.bench_structure.is_some()
    }

    pub fn residency(&self) -> Residency {
        self.residency
    }

    pub fn default_pipeline_type(&self) -> Result<PipelineType> {
        self.config.args.default_pipeline_type.parse()
    }

    /// S0 for an image with real transparency: the LANCZOS downscale to ≤ 1024 px, then the
    /// crop around the alpha > 0.8 box and the premultiply on black. Images without usable
    /// alpha need background removal (another service) first; they are refused here.
    pub fn preprocess_image(&self, image: &RgbaImage) -> Result<RgbImage> {
        match t2_imageops::prepare(&t2_imageops::PilImage::Rgba(image.clone()))? {
            t2_imageops::Prepared::Cutout(rgba) => Ok(t2_imageops::crop_premultiply(&rgba)?),
            t2_imageops::Prepared::NeedsBackgroundRemoval(_) => Err(ModelError::invalid(
                "the image has no transparency: run background removal first",
            )),
        }
    }

    /// S1: DINOv3 tokens `[1, T, D]` f32 at `resolution` px (`neg_cond` is all zeros).
    pub fn get_cond(&self, image: &RgbImage, resolution: u32) -> Result<Tensor> {
        self.image_cond
            .hold("image_cond_model")?
            .extract(image, resolution)
    }

    /// S1 at several resolutions with the image encoder held once (one load in low-VRAM mode).
    pub fn get_conds(&self, image: &RgbImage, resolutions: &[u32]) -> Result<Vec<Tensor>> {
        let encoder = self.image_cond.hold("image_cond_model")?;
        resolutions
            .iter()
            .map(|&r| encoder.extract(image, r))
            .collect()
    }

    fn params(
        &self,
        which: Stage,
        o: &SamplerOverrides,
    ) -> Result<(FlowEulerGuidanceIntervalSampler, SamplerParams)> {
        let a = &self.config.args;
        let s = match which {
            Stage::SparseStructure => &a.sparse_structure_sampler,
            Stage::ShapeSlat | Stage::ShapeSlatLowRes => &a.shape_slat_sampler,
            Stage::TexSlat => &a.tex_slat_sampler,
        };
        Ok((
            FlowEulerGuidanceIntervalSampler::new(s.args.sigma_min),
            o.apply(&s.params)?,
        ))
    }

    /// S2: SS noise (first draw) → SS flow with `cond_512` → decoder → `> 0` → pooled coords.
    pub fn sample_sparse_structure(
        &self,
        cond_512: &Tensor,
        resolution: usize,
        rng: &mut TorchGenerator,
        overrides: &SamplerOverrides,
        progress: Progress<'_>,
    ) -> Result<SparseStructure> {
        let latent = self.sample_ss_latent(cond_512, rng, overrides, progress)?;
        let mut coords = self.decode_sparse_structure(&latent, resolution)?;
        if let Some(surface) = &self.bench_structure {
            coords = surface.voxels(resolution);
        }
        Ok(SparseStructure { latent, coords })
    }

    /// S2 steps 1–2: the SS noise and the sampler; returns `z_s` `[1, C, R, R, R]` flat.
    pub fn sample_ss_latent(
        &self,
        cond_512: &Tensor,
        rng: &mut TorchGenerator,
        overrides: &SamplerOverrides,
        progress: Progress<'_>,
    ) -> Result<Vec<f32>> {
        let flow = self.ss_flow.hold("sparse_structure_flow_model")?;
        let mut model = DenseVelocity::new(&flow, cond_512)?;
        let noise = rng.randn(model.shape().iter().product());
        let (sampler, params) = self.params(Stage::SparseStructure, overrides)?;
        sampler.sample(
            &mut model,
            noise,
            &params,
            StdKind::DenseUnbiased,
            &mut |d, t| progress(Stage::SparseStructure, d, t),
            None,
        )
    }

    /// The SS decoder's logits `[1, 1, D, D, D]` for `z_s`.
    pub fn ss_logits(&self, latent: &[f32]) -> Result<Tensor> {
        let decoder = self.ss_decoder.hold("sparse_structure_decoder")?;
        // The flow's geometry from its config (read at load): the flow need not be resident.
        let (channels, r) = self
            .ss_latent_shape
            .ok_or_else(|| ModelError::NotLoaded("sparse_structure_flow_model".into()))?;
        let z = Tensor::from_slice(latent, &[1, channels, r, r, r], &self.device)?;
        let logits = decoder.forward(&z, &mut None)?;
        if logits.dim(1) != 1 {
            return Err(ModelError::Unsupported(format!(
                "SS decoder with {} output channels",
                logits.dim(1)
            )));
        }
        Ok(logits)
    }

    /// S2 steps 3–5: decoder, `> 0`, OR-pool to `resolution`, argwhere. An empty structure is
    /// an error (nothing to generate).
    pub fn decode_sparse_structure(
        &self,
        latent: &[f32],
        resolution: usize,
    ) -> Result<Vec<[i32; 4]>> {
        let logits = self.ss_logits(latent)?;
        let coords = occupied_coords(&logits.to_vec_f32()?, logits.dim(2), resolution)?;
        if coords.is_empty() {
            return Err(ModelError::invalid(
                "the sparse structure is empty (no occupied voxel): nothing to generate",
            ));
        }
        Ok(coords)
    }

    fn shape_flow(&self, res: FlowRes) -> Result<Held<'_, SLatFlowModel>> {
        match res {
            FlowRes::R512 => self.shape_flow_512.hold("shape_slat_flow_model_512"),
            FlowRes::R1024 => self.shape_flow_1024.hold("shape_slat_flow_model_1024"),
        }
    }

    fn tex_flow(&self, res: FlowRes) -> Result<Held<'_, SLatFlowModel>> {
        match res {
            FlowRes::R512 => self.tex_flow_512.hold("tex_slat_flow_model_512"),
            FlowRes::R1024 => self.tex_flow_1024.hold("tex_slat_flow_model_1024"),
        }
    }

    /// One SLat sampling run on `coords` (noise drawn here), returning the normalised sample.
    #[allow(clippy::too_many_arguments)]
    fn sample_slat(
        &self,
        flow: &SLatFlowModel,
        cond: &Tensor,
        coords: &[[i32; 4]],
        concat: Option<&[f32]>,
        stage: Stage,
        rng: &mut TorchGenerator,
        overrides: &SamplerOverrides,
        progress: Progress<'_>,
    ) -> Result<Vec<f32>> {
        let c = flow.out_channels();
        // The reference draws `randn(N, in_channels − concat channels)`, which must be the
        // output width for the Euler update to make sense.
        let concat_channels = concat.map_or(0, |v| v.len() / coords.len().max(1));
        if flow.in_channels() != c + concat_channels {
            return Err(ModelError::Unsupported(format!(
                "SLat flow with {} inputs for {c} outputs and {concat_channels} concat channels",
                flow.in_channels()
            )));
        }
        let noise = rng.randn(coords.len() * c);
        let mut model = SparseVelocity::new(flow, coords, cond, concat)?;
        let (sampler, params) = self.params(stage, overrides)?;
        sampler.sample(
            &mut model,
            noise,
            &params,
            StdKind::SparsePopulation { channels: c },
            &mut |d, t| progress(stage, d, t),
            None,
        )
    }

    /// S3a: the shape SLat on the SS coords, de-normalised.
    pub fn sample_shape_slat(
        &self,
        cond: &Tensor,
        res: FlowRes,
        coords: &[[i32; 4]],
        rng: &mut TorchGenerator,
        overrides: &SamplerOverrides,
        progress: Progress<'_>,
    ) -> Result<SparseLatent> {
        let flow = self.shape_flow(res)?;
        let z = self.sample_slat(
            &flow,
            cond,
            coords,
            None,
            Stage::ShapeSlat,
            rng,
            overrides,
            progress,
        )?;
        denormalize(coords, z, &self.config.args.shape_slat_normalization)
    }

    /// S3b: LR shape pass → decoder `upsample(…, 4)` → re-quantisation with the token back-off →
    /// HR shape pass. Returns the HR latent and the output resolution.
    #[allow(clippy::too_many_arguments)]
    pub fn sample_shape_slat_cascade(
        &self,
        cond_512: &Tensor,
        cond_1024: &Tensor,
        coords: &[[i32; 4]],
        resolution: u32,
        max_num_tokens: usize,
        rng: &mut TorchGenerator,
        overrides: &SamplerOverrides,
        progress: Progress<'_>,
    ) -> Result<(SparseLatent, u32)> {
        let z = self.sample_slat(
            &*self.shape_flow(FlowRes::R512)?,
            cond_512,
            coords,
            None,
            Stage::ShapeSlatLowRes,
            rng,
            overrides,
            &mut *progress,
        )?;
        let lr = denormalize(coords, z, &self.config.args.shape_slat_normalization)?;
        let hr_coords = self.cascade_upsample(&lr)?;
        let (coords, hr_res) = match &self.bench_structure {
            Some(surface) => cascade_structure(surface, resolution, max_num_tokens),
            None => cascade_coords(&hr_coords, resolution, max_num_tokens),
        };
        tracing::info!(
            tokens = coords.len(),
            resolution = hr_res,
            "cascade HR tokens"
        );
        let z = self.sample_slat(
            &*self.shape_flow(FlowRes::R1024)?,
            cond_1024,
            &coords,
            None,
            Stage::ShapeSlat,
            rng,
            overrides,
            progress,
        )?;
        Ok((
            denormalize(&coords, z, &self.config.args.shape_slat_normalization)?,
            hr_res,
        ))
    }

    /// The cascade's LR decoder pass: `shape_slat_decoder.upsample(lr, 4)`, the fine voxels on
    /// the 512³ grid that `cascade_coords` re-quantises.
    pub fn cascade_upsample(&self, lr: &SparseLatent) -> Result<Vec<[i32; 4]>> {
        self.shape_decoder.hold("shape_slat_decoder")?.upsample(
            lr.coords.clone(),
            &lr.tensor(&self.device)?,
            CASCADE_UPSAMPLE_TIMES,
        )
    }

    /// The loaded networks, for callers that drive them directly (benchmarks, parity runs).
    pub fn networks(&self) -> Networks<'_> {
        Networks {
            image_cond: self.image_cond.resident(),
            ss_flow: self.ss_flow.resident(),
            ss_decoder: self.ss_decoder.resident(),
            shape_flow_512: self.shape_flow_512.resident(),
            shape_flow_1024: self.shape_flow_1024.resident(),
            tex_flow_512: self.tex_flow_512.resident(),
            tex_flow_1024: self.tex_flow_1024.resident(),
            shape_decoder: self.shape_decoder.resident(),
            tex_decoder: self.tex_decoder.resident(),
        }
    }

    /// The shape decoder for a caller driving it directly (resident, or loaded until the
    /// returned hold is dropped in low-VRAM mode).
    pub fn shape_decoder(&self) -> Result<Held<'_, ShapeDecoder>> {
        self.shape_decoder.hold("shape_slat_decoder")
    }

    /// The texture decoder, as `shape_decoder`.
    pub fn tex_decoder(&self) -> Result<Held<'_, TexDecoder>> {
        self.tex_decoder.hold("tex_slat_decoder")
    }

    /// S4: the texture SLat on the shape latent's voxels (`concat_cond` = normalised shape).
    pub fn sample_tex_slat(
        &self,
        cond: &Tensor,
        res: FlowRes,
        shape_slat: &SparseLatent,
        rng: &mut TorchGenerator,
        overrides: &SamplerOverrides,
        progress: Progress<'_>,
    ) -> Result<SparseLatent> {
        let flow = self.tex_flow(res)?;
        let shape_norm = normalize(shape_slat, &self.config.args.shape_slat_normalization)?;
        let z = self.sample_slat(
            &flow,
            cond,
            &shape_slat.coords,
            Some(&shape_norm),
            Stage::TexSlat,
            rng,
            overrides,
            progress,
        )?;
        denormalize(
            &shape_slat.coords,
            z,
            &self.config.args.tex_slat_normalization,
        )
    }

    /// S5 (before `fill_holes`, which the mesh stage runs): the shape decoder at `resolution`
    /// (mesh + subdivisions), the texture decoder guided by those subdivisions, `· 0.5 + 0.5`.
    pub fn decode_latent(
        &self,
        shape_slat: &SparseLatent,
        tex_slat: &SparseLatent,
        resolution: u32,
    ) -> Result<(MeshWithVoxel, Vec<Subdivision>)> {
        check_same_voxels(shape_slat, tex_slat)?;
        let (mesh, subs) = self.decode_shape(shape_slat, resolution, Subdivide::Predict)?;
        let (coords, attrs) = self.decode_texture(tex_slat, &subs)?;
        Ok((with_voxels(mesh, coords, attrs, resolution), subs))
    }

    /// `decode_latent` with the shape decoder's subdivisions given (teacher forcing in tests);
    /// the texture decoder follows the same given decisions. Returns the shape decoder's own
    /// logits (to compare with the given ones).
    pub fn decode_latent_guided(
        &self,
        shape_slat: &SparseLatent,
        tex_slat: &SparseLatent,
        resolution: u32,
        subs: &[Subdivision],
    ) -> Result<(MeshWithVoxel, Vec<Subdivision>)> {
        check_same_voxels(shape_slat, tex_slat)?;
        let (mesh, own) = self.decode_shape(shape_slat, resolution, Subdivide::Guide(subs))?;
        let (coords, attrs) = self.decode_texture(tex_slat, subs)?;
        Ok((with_voxels(mesh, coords, attrs, resolution), own))
    }

    /// The shape half of `decode_latent`: the shape decoder, then the flexible-dual-grid mesh
    /// (on the CPU) and the subdivisions the texture decoder follows.
    pub fn decode_shape(
        &self,
        shape_slat: &SparseLatent,
        resolution: u32,
        subdivide: Subdivide<'_>,
    ) -> Result<(TriMesh, Vec<Subdivision>)> {
        // Urgent on a shared device: everything after it (the GLB's surface steps) waits for
        // the decoder, while a flow sampling on the same device (the same job's texture, in
        // a staged extraction) can pause between its steps (`t2_tensor::urgency`).
        let urgent = self.device.urgent();
        let decoder = self.shape_decoder.hold("shape_slat_decoder")?;
        // Benchmark mode: the surface's decisions in place of what random weights predict.
        let bench_subs = match (&self.bench_structure, subdivide) {
            (Some(surface), Subdivide::Predict) => Some(self.bench_subdivisions.get(
                surface,
                &shape_slat.coords,
                resolution,
                decoder.inner().num_upsamplings(),
            )),
            _ => None,
        };
        let shape = decoder.decode(
            shape_slat.coords.clone(),
            &shape_slat.tensor(&self.device)?,
            resolution,
            bench_subs
                .as_deref()
                .map_or(subdivide, |s| Subdivide::Guide(s)),
            &mut None,
        )?;
        drop(decoder);
        drop(urgent);
        let g = &shape.grid;
        let mesh = t2_mesh::fdg::flexible_dual_grid_to_mesh(
            &g.coords,
            &g.dual_vertices,
            &g.intersected,
            &g.split_weight,
            resolution,
        )?;
        // With a guide the decoder reports its own logits; the texture decoder must follow
        // the decisions taken.
        let subs = match bench_subs {
            Some(subs) => subs.to_vec(),
            None => shape.decoded.subs,
        };
        Ok((mesh, subs))
    }

    /// Benchmark mode with every network resident: makes the subdivision decisions of the
    /// `512` and `1024_cascade` structures now (bench setup, not a job's work). Does nothing
    /// otherwise; any other structure is made by its first job.
    pub fn prepare_bench_subdivisions(&self) -> Result<()> {
        let Some(surface) = &self.bench_structure else {
            return Ok(());
        };
        if self.residency != Residency::AllResident {
            return Ok(());
        }
        let levels = self.shape_decoder()?.inner().num_upsamplings();
        for ty in [PipelineType::P512, PipelineType::Cascade1024] {
            let (coords, res) = bench_latent_coords(surface, ty);
            self.bench_subdivisions.get(surface, &coords, res, levels);
        }
        Ok(())
    }

    /// The texture half of `decode_latent`: fine voxels `(x, y, z)` and their 6 PBR attributes,
    /// on the voxels the shape decoder's `subs` lead to. Independent of the mesh, so it can run
    /// while the GLB steps work on the surface.
    pub fn decode_texture(
        &self,
        tex_slat: &SparseLatent,
        subs: &[Subdivision],
    ) -> Result<(Vec<[i32; 3]>, Vec<[f32; 6]>)> {
        let (coords, attrs) = self.tex_decoder.hold("tex_slat_decoder")?.decode(
            tex_slat.coords.clone(),
            &tex_slat.tensor(&self.device)?,
            subs,
            &mut None,
        )?;
        if attrs.len() != coords.len() * 6 {
            return Err(ModelError::Unsupported(format!(
                "texture decoder with {} channels (the PBR layout needs 6)",
                attrs.len() / coords.len().max(1)
            )));
        }
        Ok((
            coords.iter().map(|c| [c[1], c[2], c[3]]).collect(),
            attrs
                .chunks_exact(6)
                .map(|a| [a[0], a[1], a[2], a[3], a[4], a[5]])
                .collect(),
        ))
    }

    /// The whole pipeline on a preprocessed RGB image (`preprocess_image`, or the RMBG output
    /// cropped): seed, conditions, SS, shape (cascade), texture, decode.
    pub fn run(
        &self,
        image: &RgbImage,
        opts: &RunOptions,
        progress: Progress<'_>,
    ) -> Result<RunOutput> {
        let ty = match opts.pipeline_type {
            Some(t) => t,
            None => self.default_pipeline_type()?,
        };
        let mut rng = TorchGenerator::with_kernel(opts.seed, opts.noise_kernel);
        let (cond_512, cond_1024) = if ty.needs_cond_1024() {
            let mut c = self.get_conds(image, &[512, 1024])?.into_iter();
            (c.next().expect("two"), c.next())
        } else {
            (self.get_cond(image, 512)?, None)
        };
        let ss = self.sample_sparse_structure(
            &cond_512,
            ty.ss_resolution(),
            &mut rng,
            &opts.sparse_structure,
            &mut *progress,
        )?;
        let (shape_slat, tex_slat, res) = match (ty, &cond_1024) {
            (PipelineType::P512, _) => {
                let s = self.sample_shape_slat(
                    &cond_512,
                    FlowRes::R512,
                    &ss.coords,
                    &mut rng,
                    &opts.shape_slat,
                    &mut *progress,
                )?;
                let t = self.sample_tex_slat(
                    &cond_512,
                    FlowRes::R512,
                    &s,
                    &mut rng,
                    &opts.tex_slat,
                    progress,
                )?;
                (s, t, 512)
            }
            (PipelineType::P1024, Some(c)) => {
                let s = self.sample_shape_slat(
                    c,
                    FlowRes::R1024,
                    &ss.coords,
                    &mut rng,
                    &opts.shape_slat,
                    &mut *progress,
                )?;
                let t = self.sample_tex_slat(
                    c,
                    FlowRes::R1024,
                    &s,
                    &mut rng,
                    &opts.tex_slat,
                    progress,
                )?;
                (s, t, 1024)
            }
            (PipelineType::Cascade1024 | PipelineType::Cascade1536, Some(c)) => {
                let target = if ty == PipelineType::Cascade1024 {
                    1024
                } else {
                    1536
                };
                let (s, res) = self.sample_shape_slat_cascade(
                    &cond_512,
                    c,
                    &ss.coords,
                    target,
                    opts.max_num_tokens,
                    &mut rng,
                    &opts.shape_slat,
                    &mut *progress,
                )?;
                let t = self.sample_tex_slat(
                    c,
                    FlowRes::R1024,
                    &s,
                    &mut rng,
                    &opts.tex_slat,
                    progress,
                )?;
                (s, t, res)
            }
            _ => unreachable!("cond_1024 exists for every type but 512"),
        };
        let (mesh, subs) = self.decode_latent(&shape_slat, &tex_slat, res)?;
        Ok(RunOutput {
            mesh,
            shape_slat,
            tex_slat,
            resolution: res,
            ss_coords: ss.coords,
            subs,
        })
    }
}

/// `slat · std + mean` per channel (two f32 roundings, as the reference's tensor ops).
fn denormalize(coords: &[[i32; 4]], z: Vec<f32>, n: &Normalization) -> Result<SparseLatent> {
    let c = n.mean.len();
    if z.len() != coords.len() * c {
        return Err(ModelError::invalid(format!(
            "latent of {} values for {} voxels × {c} normalisation channels",
            z.len(),
            coords.len()
        )));
    }
    let feats = z
        .chunks_exact(c)
        .flat_map(|r| {
            r.iter()
                .zip(n.std.iter().zip(&n.mean))
                .map(|(&v, (&s, &m))| v * s + m)
        })
        .collect();
    Ok(SparseLatent {
        coords: coords.to_vec(),
        feats,
        channels: c,
    })
}

/// `(slat − mean) / std` per channel.
fn normalize(l: &SparseLatent, n: &Normalization) -> Result<Vec<f32>> {
    if l.channels != n.mean.len() {
        return Err(ModelError::invalid(format!(
            "latent with {} channels, normalisation with {}",
            l.channels,
            n.mean.len()
        )));
    }
    Ok(l.feats
        .chunks_exact(l.channels)
        .flat_map(|r| {
            r.iter()
                .zip(n.std.iter().zip(&n.mean))
                .map(|(&v, (&s, &m))| (v - m) / s)
        })
        .collect())
}

/// The cascade's re-quantisation of the LR decoder's 512³ coords onto the HR latent grid
/// (`res/16` per axis) with `unique`, stepping the resolution down by 128 while the token count
/// reaches `max_num_tokens` (never below 1024). Returns the sorted coords and the resolution.
pub fn cascade_coords(
    hr_coords: &[[i32; 4]],
    resolution: u32,
    max_num_tokens: usize,
) -> (Vec<[i32; 4]>, u32) {
    let mut res = resolution;
    loop {
        let g = (res / 16) as f32;
        let q = |c: i32| (((c as f32 + 0.5) / CASCADE_LR_RESOLUTION as f32) * g) as i32;
        let coords = t2_tensor::sparse::unique_sorted(
            hr_coords
                .iter()
                .map(|c| [c[0], q(c[1]), q(c[2]), q(c[3])])
                .collect(),
        );
        if coords.len() < max_num_tokens || res <= 1024 {
            return (coords, res);
        }
        res -= 128;
    }
}

fn check_same_voxels(shape_slat: &SparseLatent, tex_slat: &SparseLatent) -> Result<()> {
    if shape_slat.coords != tex_slat.coords {
        return Err(ModelError::invalid(
            "shape and texture latents are on different voxels",
        ));
    }
    Ok(())
}

fn with_voxels(
    mesh: TriMesh,
    coords: Vec<[i32; 3]>,
    attrs: Vec<[f32; 6]>,
    resolution: u32,
) -> MeshWithVoxel {
    MeshWithVoxel {
        mesh,
        coords,
        attrs,
        resolution,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cascade_backs_off_by_128_down_to_1024() {
        // A dense 64³ block of LR fine voxels covers 64·(G/32)… tokens; force the back-off.
        let hr: Vec<[i32; 4]> = (0..512)
            .step_by(4)
            .flat_map(|x| (0..512).step_by(64).map(move |y| [0, x, y, 0]))
            .collect();
        let (c, r) = cascade_coords(&hr, 1536, 1);
        assert_eq!(r, 1024);
        assert!(c.windows(2).all(|w| w[0] < w[1]));
        let (_, r) = cascade_coords(&hr, 1536, usize::MAX);
        assert_eq!(r, 1536);
        // (c + 0.5)/512·64 truncated: 511 → 63, 0 → 0.
        let (c, _) = cascade_coords(&[[0, 511, 0, 7]], 1024, 10);
        assert_eq!(c, vec![[0, 63, 0, 0]]);
    }

    #[test]
    fn pipeline_types_parse() {
        for t in ["512", "1024", "1024_cascade", "1536_cascade"] {
            assert_eq!(t.parse::<PipelineType>().unwrap().as_str(), t);
        }
        assert!("2048".parse::<PipelineType>().is_err());
    }
}
