//! Per-stage seconds of whole pipeline runs in benchmark mode: every network runs as in
//! `Trellis2Pipeline::run` (full step counts, CFG, the reference's noise), but the sparse
//! structure comes from the analytic surface instead of what random weights decode: the SS
//! coords (after the SS decoder has run), the cascade's HR voxels (after the LR upsample has
//! run, with the same 49,152-token back-off) and the decoders' subdivision decisions.

use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use t2_models::decoders::{Subdivide, Subdivision};
use t2_models::pipeline::{
    FlowRes, PipelineType, Residency, SamplerOverrides, Trellis2Pipeline, bench_latent_coords,
};
use t2_models::random::shape::SurfaceShape;
use t2_models::rng::TorchGenerator;
use t2_tensor::Device;

use crate::util::{gib, time_once};

#[derive(Clone, Debug, Serialize)]
pub struct PipelineResult {
    pub pipeline: String,
    pub shape: String,
    pub ss_tokens: usize,
    pub slat_tokens: usize,
    pub resolution: u32,
    pub fine_voxels: usize,
    pub faces: usize,
    /// `(stage, seconds)` in run order.
    pub stages: Vec<(String, f64)>,
    pub total_s: f64,
    /// With `--glb`: image → GLB seconds (the pipeline, then `to_glb` at the product's
    /// defaults, 1 M faces and a 4096² texture, its steps as `GLB: …` stages; the surface
    /// steps run during the texture decode, as in the mesh service).
    pub glb_total_s: Option<f64>,
    /// Allocator peak of live tensors during the run (GiB).
    pub peak_gib: f64,
    /// Peak of what the allocator held from the driver (live + cached), GiB.
    pub peak_reserved_gib: f64,
    pub resident_gib: f64,
}

/// One benchmark-mode run of `ty` on `surface`.
pub fn run(
    pipe: &Trellis2Pipeline,
    ty: PipelineType,
    surface: &SurfaceShape,
    shape_name: &str,
    dev: &Device,
    glb: bool,
    texture_flow_first: bool,
) -> Result<PipelineResult> {
    let cuda = match dev {
        Device::Cuda(c) => Some(c.clone()),
        Device::Cpu => None,
    };
    let resident = cuda.as_ref().map_or(0, |c| c.memory_stats().allocated);
    if let Some(c) = &cuda {
        c.reset_peak_memory();
    }
    // The GLB steps' geometry is the analytic sphere's flexible-dual-grid mesh at the
    // pipeline's resolution, not the decoder's: random decoder weights put the dual vertices
    // anywhere in their voxels, a noise surface that no trained model produces and that UV
    // unwrapping cuts into tiny charts (the 512 run took 4× longer to unwrap on the CPU). The
    // texture voxels are the decoder's (on that sphere). Made before the clock starts: it is
    // bench setup, not a pipeline step.
    // The sparse structure comes from the surface, not from what random weights decode: the
    // SS coords, the cascade's HR coords and the decoder's subdivision decisions. Bench setup,
    // made before the clock (the subdivisions are host work the product never does: its decoder
    // decides them on the device). In low-VRAM mode the decoder is not loaded yet, so the
    // subdivisions stay a row of their own inside the run.
    let ss_coords = surface.voxels(ty.ss_resolution());
    let (flow_coords, res) = bench_latent_coords(surface, ty);
    let flow_coords = &flow_coords;
    let subdivisions_made_ahead = if pipe.residency() == Residency::AllResident {
        let levels = pipe.shape_decoder()?.inner().num_upsamplings();
        Some(surface.subdivisions(flow_coords, (res / 16) as usize, levels))
    } else {
        None
    };
    // The GLB steps' geometry is the analytic sphere's flexible-dual-grid mesh at the
    // pipeline's resolution, not the decoder's: random decoder weights put the dual vertices
    // anywhere in their voxels, a noise surface that no trained model produces and that UV
    // unwrapping cuts into tiny charts (the 512 run took 4× longer to unwrap on the CPU). The
    // texture voxels are the decoder's (on that sphere). Made before the clock starts: it is
    // bench setup, not a pipeline step.
    let glb_surface = if glb {
        if surface.cells != 0.0 {
            anyhow::bail!("--glb runs on the sphere only (the gyroid has no signed distance)");
        }
        Some((sphere_mesh(res)?, res))
    } else {
        None
    };
    let glb_params = t2_mesh::GlbParams {
        decimation_target: 1_000_000,
        texture_size: 4096,
        ..Default::default()
    };
    let start = Instant::now();
    let mut stages: Vec<(String, f64)> = Vec::new();
    let mut stage = |name: &str, s: f64| stages.push((name.to_string(), s));
    let none = SamplerOverrides::default();
    let mut quiet = |_: _, _: usize, _: usize| Ok(());

    let image = pipe.preprocess_image(&t2_models::demo::demo_image(1024))?;
    let mut rng = TorchGenerator::manual_seed(42);
    let (cond_512, s) = time_once(dev, || Ok(pipe.get_cond(&image, 512)?))?;
    stage("dinov3 512", s);
    let cond_1024 = if ty.needs_cond_1024() {
        let (c, s) = time_once(dev, || Ok(pipe.get_cond(&image, 1024)?))?;
        stage("dinov3 1024", s);
        Some(c)
    } else {
        None
    };
    let (latent, s) = time_once(dev, || {
        Ok(pipe.sample_ss_latent(&cond_512, &mut rng, &none, &mut quiet)?)
    })?;
    stage("SS flow", s);
    let (_, s) = time_once(dev, || Ok(pipe.ss_logits(&latent)?.to_vec_f32()?))?;
    stage("SS decode", s);
    let (shape_slat, flow_res, cond) = match ty {
        PipelineType::P512 | PipelineType::P1024 => {
            let (fr, c) = if ty == PipelineType::P512 {
                (FlowRes::R512, &cond_512)
            } else {
                (FlowRes::R1024, cond_1024.as_ref().expect("1024"))
            };
            let (s_lat, s) = time_once(dev, || {
                Ok(pipe.sample_shape_slat(c, fr, &ss_coords, &mut rng, &none, &mut quiet)?)
            })?;
            stage("shape SLat", s);
            (s_lat, fr, c)
        }
        PipelineType::Cascade1024 | PipelineType::Cascade1536 => {
            let c1024 = cond_1024.as_ref().expect("1024");
            let (lr, s) = time_once(dev, || {
                Ok(pipe.sample_shape_slat(
                    &cond_512,
                    FlowRes::R512,
                    &ss_coords,
                    &mut rng,
                    &none,
                    &mut quiet,
                )?)
            })?;
            stage("shape LR", s);
            let (_, s) = time_once(dev, || Ok(pipe.cascade_upsample(&lr)?))?;
            stage("cascade upsample", s);
            let (hr, s) = time_once(dev, || {
                Ok(pipe.sample_shape_slat(
                    c1024,
                    FlowRes::R1024,
                    flow_coords,
                    &mut rng,
                    &none,
                    &mut quiet,
                )?)
            })?;
            stage("shape HR", s);
            (hr, FlowRes::R1024, c1024)
        }
    };
    // The subdivisions made ahead follow these coords (the flow keeps its input's).
    assert_eq!(&shape_slat.coords, flow_coords, "the shape latents' coords");
    let grid = (res / 16) as usize;
    let feats = |l: &t2_models::pipeline::SparseLatent| {
        t2_tensor::Tensor::from_slice(&l.feats, &[l.len(), l.channels], dev)
    };
    // The shape half: decoder, subdivisions, FDG mesh. Returns the subdivisions (the texture
    // decoder follows them) and the mesh's face count; its stages go to `rows`.
    let decode_shape_half = |rows: &mut Vec<(String, f64)>| -> Result<(Vec<Subdivision>, usize)> {
        let mut stage = |name: &str, s: f64| rows.push((name.to_string(), s));
        // In low-VRAM mode the flows and the texture decoder load inside their timed stages
        // (as in the service); the shape decoder's load is its own row, since the host
        // subdivisions need it before its decode.
        let (shape_dec, s) = time_once(dev, || Ok(pipe.shape_decoder()?))?;
        if pipe.residency() == Residency::OneAtATime {
            stage("load shape decoder", s);
        }
        let subs = match &subdivisions_made_ahead {
            Some(subs) => subs.clone(),
            None => {
                let (subs, s) = time_once(dev, || {
                    Ok(surface.subdivisions(
                        &shape_slat.coords,
                        grid,
                        shape_dec.inner().num_upsamplings(),
                    ))
                })?;
                stage("(surface subdivisions, host)", s);
                subs
            }
        };
        // Urgent, as in the mesh service: the texture flow yields between its steps.
        let urgent = dev.urgent();
        let (shape, s) = time_once(dev, || {
            Ok(shape_dec.decode(
                shape_slat.coords.clone(),
                &feats(&shape_slat)?,
                res,
                Subdivide::Guide(&subs),
                &mut None,
            )?)
        })?;
        drop(urgent);
        stage("shape decode", s);
        drop(shape_dec);
        let (mesh, s) = time_once(dev, || {
            let g = &shape.grid;
            Ok(t2_mesh::fdg::flexible_dual_grid_to_mesh(
                &g.coords,
                &g.dual_vertices,
                &g.intersected,
                &g.split_weight,
                res,
            )?)
        })?;
        stage("FDG mesh (CPU)", s);
        Ok((subs, mesh.faces.len()))
    };
    // The GLB's surface steps on the `--glb` surface (made at the pipeline's resolution).
    let surface_steps = || {
        glb_surface
            .as_ref()
            .map(|(m, _)| t2_mesh::prepare_geometry(m, res, &glb_params, dev, None))
    };
    if let Some((_, glb_res)) = &glb_surface {
        assert_eq!(
            *glb_res, res,
            "the GLB surface is made at the pipeline's resolution"
        );
    }
    // As the flow service does: between steps, urgent work (the shape decode) goes first.
    let mut yielding = |_: _, _: usize, _: usize| {
        dev.yield_to_urgent(&|| false);
        Ok(())
    };
    let mut tex_flow = || {
        time_once(dev, || {
            Ok(pipe.sample_tex_slat(cond, flow_res, &shape_slat, &mut rng, &none, &mut yielding)?)
        })
    };
    let tex_decode = |tex_slat: &t2_models::pipeline::SparseLatent, subs: &[Subdivision]| {
        time_once(dev, || {
            Ok(pipe.tex_decoder()?.decode(
                tex_slat.coords.clone(),
                &feats(tex_slat)?,
                subs,
                &mut None,
            )?)
        })
    };
    // With `--glb` and every network resident, as a job runs through the services: the mesh
    // service gets the shape latents before the texture flow starts (the flow service streams
    // them), so the shape decode and the GLB's surface steps run while the texture flow and
    // then the texture decoder use the device. Otherwise one stage after the other, so each
    // row is that stage alone (low-VRAM mode: one network on the device at a time;
    // `texture_flow_first`: the order before the shape latents were streamed).
    let staged = glb && pipe.residency() == Residency::AllResident && !texture_flow_first;
    let mut shape_rows = Vec::new();
    let (texture, geometry, total_s, faces) = if staged {
        std::thread::scope(|scope| {
            let (subs_tx, subs_rx) = std::sync::mpsc::channel();
            let rows = &mut shape_rows;
            let shape_side = scope.spawn(move || {
                let (subs, faces) = decode_shape_half(rows)?;
                // A shape half that failed before this drops the sender.
                let _ = subs_tx.send(subs);
                let geometry = surface_steps();
                // Which side the bake waits for: the surface steps or the texture voxels.
                rows.push((
                    "at: GLB surface steps done".into(),
                    start.elapsed().as_secs_f64(),
                ));
                Ok::<_, anyhow::Error>((geometry, faces))
            });
            let texture = tex_flow().and_then(|(tex_slat, s)| {
                stage("texture SLat (during the shape decode)", s);
                let subs = subs_rx
                    .recv()
                    .map_err(|_| anyhow::anyhow!("the shape decode failed"))?;
                tex_decode(&tex_slat, &subs)
            });
            let total_s = start.elapsed().as_secs_f64();
            stage("at: texture decode done", total_s);
            let (geometry, faces) = shape_side
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            Ok::<_, anyhow::Error>((texture, geometry, total_s, faces))
        })?
    } else {
        let (tex_slat, s) = tex_flow()?;
        stage("texture SLat", s);
        let (subs, faces) = decode_shape_half(&mut shape_rows)?;
        // As the mesh service does in low-VRAM mode: the GLB's surface steps on their own
        // thread while the texture decoder runs on the device.
        std::thread::scope(|scope| {
            let geometry = scope.spawn(surface_steps);
            let texture = tex_decode(&tex_slat, &subs);
            let total_s = start.elapsed().as_secs_f64();
            let geometry = geometry
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (texture, geometry, total_s, faces)
        })
    };
    for (name, s) in shape_rows {
        stage(&name, s);
    }
    // Image → mesh + voxels ends with the texture decode, not when the GLB's surface steps
    // join.
    let ((fine, attrs), s) = texture?;
    stage("texture decode", s);
    let fine_voxels = fine.len();

    let glb_total_s = match (geometry, glb_surface) {
        (Some(geometry), Some((surface_mesh, _))) => {
            let voxels = t2_mesh::MeshWithVoxel {
                mesh: surface_mesh,
                coords: fine.iter().map(|c| [c[1], c[2], c[3]]).collect(),
                attrs: attrs
                    .chunks_exact(6)
                    .map(|a| std::array::from_fn(|k| a[k]))
                    .collect(),
                resolution: res,
            };
            let (_, _, report) = geometry?.bake_glb(&voxels)?;
            let glb_total_s = start.elapsed().as_secs_f64();
            // The surface steps overlapped the texture flow and decode, so these rows add up
            // to more than the wall time.
            for step in &report.steps {
                stage(&format!("GLB: {}", step.name), step.wall.as_secs_f64());
            }
            for (phase, secs) in &report.bake_phases {
                stage(&format!("GLB: bake — {phase}"), *secs);
            }
            Some(glb_total_s)
        }
        _ => None,
    };

    let mem = cuda.as_ref().map(|c| c.memory_stats()).unwrap_or_default();
    Ok(PipelineResult {
        pipeline: ty.as_str().into(),
        shape: shape_name.into(),
        ss_tokens: ss_coords.len(),
        slat_tokens: shape_slat.len(),
        resolution: res,
        fine_voxels,
        faces,
        total_s,
        glb_total_s,
        stages,
        peak_gib: gib(mem.peak_allocated),
        peak_reserved_gib: gib(mem.peak_reserved),
        resident_gib: gib(resident),
    })
}

/// The analytic sphere's flexible-dual-grid mesh at `res` (the `--glb` geometry).
fn sphere_mesh(res: u32) -> Result<t2_mesh::TriMesh> {
    let radius = t2_models::random::shape::RADIUS as f32;
    Ok(t2_mesh::synth::sphere_surface(radius, res)?)
}
