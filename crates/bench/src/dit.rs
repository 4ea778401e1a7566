//! DiT forwards at the token counts: the SS flow at 4,096 tokens (its dense 16³ grid,
//! 1,029 condition tokens) and the 1024 shape flow at 9,600 / 21,600 / 49,152 voxels of the
//! analytic surface (4,101 condition tokens). Each case times the reference's op sequence
//! (condition K/V projected in every forward), the cached-K/V forward and the CFG pair as one
//! batch-2 forward, and dumps inputs and outputs for the reference script.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use t2_models::dit::{SLatFlowModel, SparseStructureFlowModel};
use t2_models::random::shape::SurfaceShape;
use t2_tensor::{Device, Tensor};

use crate::util::{Dump, max_rel_err, randn, time_ms};

/// The timestep of every case (`1000·t` at t = 0.6, inside the guidance interval).
const T_MODEL: f32 = 600.0;

#[derive(Clone, Debug, Serialize)]
pub struct DitResult {
    pub case: String,
    pub model: String,
    pub tokens: usize,
    pub cond_tokens: usize,
    /// The reference's op sequence (K/V of the condition projected in the forward), batch 1.
    pub ms_b1: f64,
    /// Batch 1 with the condition's K/V cached across steps.
    pub ms_b1_cached: f64,
    /// The CFG pair as one batch-2 forward with cached K/V.
    pub ms_pair: f64,
    /// Building the pair's K/V cache (once per sampling run).
    pub ms_kv_pair: f64,
    /// Self-consistency: cached vs recomputed, pair rows vs batch-1 forwards.
    pub err_cached_vs_b1: f64,
    pub err_pair_pos_vs_b1: f64,
    pub err_pair_neg_vs_b1: f64,
    /// bf16 (reference precision) vs the same model in f32, when measured.
    pub err_bf16_vs_f32: Option<f64>,
    pub finite: bool,
}

/// A sparse case's voxels: `n` voxels of the surface at `grid³`.
fn sparse_coords(n: usize) -> Result<Vec<[i32; 4]>> {
    Ok(match n {
        n if n <= 12_000 => SurfaceShape::sphere().nearest_voxels(64, n)?,
        n if n <= 30_000 => SurfaceShape::sphere().nearest_voxels(96, n)?,
        n => SurfaceShape::with_surface_voxels(96, n).nearest_voxels(96, n)?,
    })
}

/// Condition tokens `[1, L, 1024]` ~ N(0, 1), like DINOv3's normalised output.
fn cond_tokens(dev: &Device, l: usize, c: usize, seed: u64) -> Result<(Tensor, Vec<f32>)> {
    let v = randn(seed, l * c);
    Ok((Tensor::from_slice(&v, &[1, l, c], dev)?, v))
}

/// The SS flow at its 16³ grid.
pub fn ss_case(
    model: &SparseStructureFlowModel,
    f32_model: Option<&SparseStructureFlowModel>,
    dev: &Device,
    reps: usize,
    dump: &Path,
) -> Result<DitResult> {
    let r = model.resolution();
    let c_in = model.in_channels();
    let n = r * r * r;
    let l = 1029;
    let (cond, cond_host) = cond_tokens(dev, l, model.config().cond_channels, 11)?;
    let x_host = randn(12, c_in * n);
    let x = Tensor::from_slice(&x_host, &[1, c_in, r, r, r], dev)?;
    let pos = model.prepare_cond(&cond)?;
    let neg = Tensor::zeros(pos.shape(), pos.dtype(), dev)?;
    let b1 = model.forward(&x, T_MODEL, &pos, &mut None)?.to_vec_f32()?;
    let kv1 = model.cross_kv(&[&pos])?;
    let cached = model.forward_cached(&x, T_MODEL, &kv1)?.to_vec_f32()?;
    let b1_neg = model.forward(&x, T_MODEL, &neg, &mut None)?.to_vec_f32()?;
    let mut kv2 = Some(model.cross_kv(&[&pos, &neg])?);
    let pair = model
        .forward_cached(&x, T_MODEL, kv2.as_ref().expect("built"))?
        .to_vec_f32()?;
    let (pair_pos, pair_neg) = pair.split_at(pair.len() / 2);
    let ms_b1 = time_ms(dev, 1, reps, || {
        model.forward(&x, T_MODEL, &pos, &mut None)?;
        Ok(())
    })?;
    let ms_b1_cached = time_ms(dev, 1, reps, || {
        model.forward_cached(&x, T_MODEL, &kv1)?;
        Ok(())
    })?;
    let ms_pair = time_ms(dev, 1, reps, || {
        model.forward_cached(&x, T_MODEL, kv2.as_ref().expect("built"))?;
        Ok(())
    })?;
    let ms_kv_pair = time_ms(dev, 0, reps, || {
        kv2 = Some(model.cross_kv(&[&pos, &neg])?);
        Ok(())
    })?;
    let err_bf16_vs_f32 = match f32_model {
        Some(m) => {
            let cond32 = m.prepare_cond(&cond)?;
            let y = m.forward(&x, T_MODEL, &cond32, &mut None)?.to_vec_f32()?;
            Some(max_rel_err(&b1, &y))
        }
        None => None,
    };
    let mut d = Dump::default();
    d.f32("x", &[1, c_in, r, r, r], &x_host);
    d.f32("cond", &[1, l, model.config().cond_channels], &cond_host);
    d.f32("t", &[1], &[T_MODEL]);
    d.f32("ours_pos", &[1, c_in, r, r, r], &b1);
    d.f32("ours_neg", &[1, c_in, r, r, r], &b1_neg);
    d.f32("ours_pair_pos", &[1, c_in, r, r, r], pair_pos);
    d.f32("ours_pair_neg", &[1, c_in, r, r, r], pair_neg);
    let case = format!("ss-{n}");
    d.save(&dump.join(format!("dit_{case}.safetensors")))?;
    Ok(DitResult {
        case,
        model: "ss_flow".into(),
        tokens: n,
        cond_tokens: l,
        ms_b1,
        ms_b1_cached,
        ms_pair,
        ms_kv_pair,
        err_cached_vs_b1: max_rel_err(&cached, &b1),
        err_pair_pos_vs_b1: max_rel_err(pair_pos, &b1),
        err_pair_neg_vs_b1: max_rel_err(pair_neg, &b1_neg),
        err_bf16_vs_f32,
        finite: b1.iter().chain(&pair).all(|v| v.is_finite()),
    })
}

/// The 1024 shape flow on `n` surface voxels.
pub fn sparse_case(
    model: &SLatFlowModel,
    n: usize,
    dev: &Device,
    reps: usize,
    dump: &Path,
) -> Result<DitResult> {
    let coords = sparse_coords(n).with_context(|| format!("{n} voxels"))?;
    if coords.len() != n {
        bail!("{} voxels for a {n}-token case", coords.len());
    }
    let c_in = model.in_channels();
    let c_out = model.out_channels();
    if c_in != c_out {
        bail!("the sparse cases use a flow without concat_cond");
    }
    let l = 4101;
    let (cond, cond_host) = cond_tokens(dev, l, model.config().cond_channels, 21)?;
    let x_host = randn(22 + n as u64, n * c_in);
    let x = Tensor::from_slice(&x_host, &[n, c_in], dev)?;
    let rope = model.rope_tables(&coords)?;
    let pos = model.prepare_cond(&cond)?;
    let neg = Tensor::zeros(pos.shape(), pos.dtype(), dev)?;
    let fwd = |c: &Tensor| -> Result<Vec<f32>> {
        Ok(model
            .forward(&x, None, &rope, T_MODEL, c, &mut None)?
            .to_vec_f32()?)
    };
    let b1 = fwd(&pos)?;
    let b1_neg = fwd(&neg)?;
    let kv1 = model.cross_kv(&[&pos])?;
    let cached = model
        .forward_cached(&x, None, &rope, T_MODEL, &kv1)?
        .to_vec_f32()?;
    let mut kv2 = Some(model.cross_kv(&[&pos, &neg])?);
    let pair = model
        .forward_cached(&x, None, &rope, T_MODEL, kv2.as_ref().expect("built"))?
        .to_vec_f32()?;
    let (pair_pos, pair_neg) = pair.split_at(pair.len() / 2);
    let ms_b1 = time_ms(dev, 1, reps, || {
        model.forward(&x, None, &rope, T_MODEL, &pos, &mut None)?;
        Ok(())
    })?;
    let ms_b1_cached = time_ms(dev, 1, reps, || {
        model.forward_cached(&x, None, &rope, T_MODEL, &kv1)?;
        Ok(())
    })?;
    drop(kv1);
    let ms_pair = time_ms(dev, 1, reps, || {
        model.forward_cached(&x, None, &rope, T_MODEL, kv2.as_ref().expect("built"))?;
        Ok(())
    })?;
    let ms_kv_pair = time_ms(dev, 0, reps, || {
        kv2 = None;
        kv2 = Some(model.cross_kv(&[&pos, &neg])?);
        Ok(())
    })?;
    let case = format!("shape1024-{n}");
    let mut d = Dump::default();
    d.coords("coords", &coords);
    d.f32("x", &[n, c_in], &x_host);
    d.f32("cond", &[1, l, model.config().cond_channels], &cond_host);
    d.f32("t", &[1], &[T_MODEL]);
    d.f32("ours_pos", &[n, c_out], &b1);
    d.f32("ours_neg", &[n, c_out], &b1_neg);
    d.f32("ours_pair_pos", &[n, c_out], pair_pos);
    d.f32("ours_pair_neg", &[n, c_out], pair_neg);
    d.save(&dump.join(format!("dit_{case}.safetensors")))?;
    Ok(DitResult {
        case,
        model: "shape_flow_1024".into(),
        tokens: n,
        cond_tokens: l,
        ms_b1,
        ms_b1_cached,
        ms_pair,
        ms_kv_pair,
        err_cached_vs_b1: max_rel_err(&cached, &b1),
        err_pair_pos_vs_b1: max_rel_err(pair_pos, &b1),
        err_pair_neg_vs_b1: max_rel_err(pair_neg, &b1_neg),
        err_bf16_vs_f32: None,
        finite: b1.iter().chain(&pair).all(|v| v.is_finite()),
    })
}
