//! Decoder forwards at 1024³ on the analytic surface: the SS decoder on a random 16³ latent,
//! the shape decoder with the surface's subdivision decisions as guide (its own `to_subdiv`
//! logits are still computed and dumped: the reference's are compared against them), and the
//! texture decoder guided by the same decisions. Inputs, guides and outputs are dumped for the
//! reference script.

use std::path::Path;

use anyhow::{Result, bail};
use serde::Serialize;
use t2_models::decoders::{ShapeDecoder, SparseStructureDecoder, Subdivide, TexDecoder};
use t2_models::random::shape::SurfaceShape;
use t2_tensor::{Device, Tensor};

use crate::util::{Dump, randn, time_ms};

#[derive(Clone, Debug, Serialize)]
pub struct DecoderResult {
    pub case: String,
    pub input_voxels: usize,
    pub output_voxels: usize,
    pub ms: f64,
    pub finite: bool,
}

/// Latent features `x·std + mean` with `x ~ N(0, 1)`: a de-normalised latent's scale.
fn latent(n: usize, seed: u64, mean: &[f32], std: &[f32]) -> Vec<f32> {
    let c = mean.len();
    randn(seed, n * c)
        .chunks_exact(c)
        .flat_map(|r| {
            r.iter()
                .zip(std.iter().zip(mean))
                .map(|(v, (s, m))| v * s + m)
        })
        .collect()
}

pub fn ss_decoder(
    dec: &SparseStructureDecoder,
    dev: &Device,
    reps: usize,
    dump: &Path,
) -> Result<DecoderResult> {
    let (c, r) = (dec.config().latent_channels, 16);
    let z_host = randn(31, c * r * r * r);
    let z = Tensor::from_slice(&z_host, &[1, c, r, r, r], dev)?;
    // The output of every upsampling block (each resolution stage's input), so the reference
    // can run its remaining stages from ours (teacher forcing per stage, as the SC-VAE levels).
    let mut stage_inputs: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let mut failed: Option<anyhow::Error> = None;
    let mut res = r;
    let mut probe = |name: &str, t: &Tensor| {
        let Some(i) = name.strip_prefix("blocks.") else {
            return;
        };
        if t.rank() == 5 && t.dim(2) > res {
            res = t.dim(2);
            match t.to_vec_f32() {
                Ok(v) => stage_inputs.push((format!("blocks{i}_out"), t.shape().to_vec(), v)),
                Err(e) => failed = Some(e.into()),
            }
        }
    };
    let y = dec.forward(&z, &mut Some(&mut probe))?;
    if let Some(e) = failed {
        return Err(e);
    }
    let shape = y.shape().to_vec();
    let y = y.to_vec_f32()?;
    let ms = time_ms(dev, 1, reps, || {
        dec.forward(&z, &mut None)?;
        Ok(())
    })?;
    let mut d = Dump::default();
    d.f32("z", &[1, c, r, r, r], &z_host);
    d.f32("ours", &shape, &y);
    for (name, shape, v) in &stage_inputs {
        d.f32(name, shape, v);
    }
    d.save(&dump.join("dec_ss.safetensors"))?;
    Ok(DecoderResult {
        case: "ss_decoder-16^3".into(),
        input_voxels: r * r * r,
        output_voxels: y.len(),
        ms,
        finite: y.iter().all(|v| v.is_finite()),
    })
}

/// The shape and texture decoders on the sphere's 64³ latent voxels (the 1024³ output).
pub fn sc_vae_decoders(
    shape_dec: &ShapeDecoder,
    tex_dec: &TexDecoder,
    norms: (&[f32], &[f32], &[f32], &[f32]),
    dev: &Device,
    reps: usize,
    dump: &Path,
) -> Result<Vec<DecoderResult>> {
    let surface = SurfaceShape::sphere();
    let coords = surface.voxels(64);
    let n = coords.len();
    let subs = surface.subdivisions(&coords, 64, shape_dec.inner().num_upsamplings());
    let (sm, ss, tm, ts) = norms;
    let shape_host = latent(n, 41, sm, ss);
    let tex_host = latent(n, 42, tm, ts);
    let shape_feats = Tensor::from_slice(&shape_host, &[n, sm.len()], dev)?;
    let tex_feats = Tensor::from_slice(&tex_host, &[n, tm.len()], dev)?;
    let run_shape = || {
        shape_dec.inner().run(
            coords.clone(),
            &shape_feats,
            Subdivide::Guide(&subs),
            None,
            &mut None,
        )
    };
    let run_tex = || {
        tex_dec.inner().run(
            coords.clone(),
            &tex_feats,
            Subdivide::Guide(&subs),
            None,
            &mut None,
        )
    };
    // Each level's input (the previous C2S's output; level 0: `from_latent`, before the cast to
    // the body dtype), so the reference can run every level from ours (teacher forcing per
    // level: its decisions then differ from ours only by that level's arithmetic).
    let mut level_inputs: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let mut level_coords: Vec<(String, Vec<[i32; 4]>)> = Vec::new();
    let mut failed: Option<anyhow::Error> = None;
    let mut probe = |name: &str, t: &Tensor| {
        let parts: Vec<&str> = name.split('.').collect();
        let level = match parts.as_slice() {
            ["from_latent"] => Some(0),
            ["blocks", i, _, "0"] => i.parse::<usize>().ok().map(|i| i + 1),
            ["blocks", i, _, "0", "coords"] => {
                if let Ok(i) = i.parse::<usize>() {
                    match t.to_vec::<i32>() {
                        Ok(c) => level_coords.push((
                            format!("lvl{}_coords", i + 1),
                            c.chunks_exact(4)
                                .map(|c| [c[0], c[1], c[2], c[3]])
                                .collect(),
                        )),
                        Err(e) => failed = Some(e.into()),
                    }
                }
                None
            }
            _ => None,
        };
        if let Some(l) = level {
            match t.to_vec_f32() {
                Ok(v) => level_inputs.push((format!("lvl{l}_feats"), t.shape().to_vec(), v)),
                Err(e) => failed = Some(e.into()),
            }
        }
    };
    let shape_out = shape_dec.inner().run(
        coords.clone(),
        &shape_feats,
        Subdivide::Guide(&subs),
        None,
        &mut Some(&mut probe),
    )?;
    if let Some(e) = failed {
        return Err(e);
    }
    let tex_out = run_tex()?;
    if shape_out.coords != tex_out.coords {
        bail!("the guided decoders emitted different voxels");
    }
    let m = shape_out.coords.len();
    let shape_y = shape_out.feats.to_vec_f32()?;
    let tex_y = tex_out.feats.to_vec_f32()?;
    let ms_shape = time_ms(dev, 0, reps, || {
        run_shape()?;
        Ok(())
    })?;
    let ms_tex = time_ms(dev, 0, reps, || {
        run_tex()?;
        Ok(())
    })?;
    let mut d = Dump::default();
    d.coords("coords", &coords);
    d.f32("shape_latent", &[n, sm.len()], &shape_host);
    d.f32("tex_latent", &[n, tm.len()], &tex_host);
    for (l, s) in subs.iter().enumerate() {
        d.coords(&format!("sub{l}_parents"), &s.parents);
        d.f32(&format!("sub{l}_guide"), &[s.parents.len(), 8], &s.logits);
        let own = &shape_out.subs[l];
        d.f32(
            &format!("sub{l}_ours"),
            &[own.parents.len(), 8],
            &own.logits,
        );
    }
    for (name, shape, v) in &level_inputs {
        d.f32(name, shape, v);
    }
    for (name, c) in &level_coords {
        d.coords(name, c);
    }
    d.coords("fine_coords", &shape_out.coords);
    d.f32("shape_ours", &[m, shape_y.len() / m.max(1)], &shape_y);
    d.f32("tex_ours", &[m, tex_y.len() / m.max(1)], &tex_y);
    d.save(&dump.join("dec_scvae.safetensors"))?;
    Ok(vec![
        DecoderResult {
            case: "shape_decoder-1024".into(),
            input_voxels: n,
            output_voxels: m,
            ms: ms_shape,
            finite: shape_y.iter().all(|v| v.is_finite()),
        },
        DecoderResult {
            case: "tex_decoder-1024".into(),
            input_voxels: n,
            output_voxels: m,
            ms: ms_tex,
            finite: tex_y.iter().all(|v| v.is_finite()),
        },
    ])
}
