//! Timing, random inputs and the safetensors dumps the reference script reads.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use t2_models::rng::TorchGenerator;
use t2_tensor::Device;

/// Median milliseconds of `reps` runs of `f` after `warmup` runs, each closed by a device sync.
pub fn time_ms(
    dev: &Device,
    warmup: usize,
    reps: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<f64> {
    for _ in 0..warmup {
        f()?;
        dev.synchronize()?;
    }
    let mut ts = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        dev.synchronize()?;
        let t = Instant::now();
        f()?;
        dev.synchronize()?;
        ts.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ts.sort_by(f64::total_cmp);
    Ok(ts[ts.len() / 2])
}

/// Seconds of one run of `f` (closed by a device sync).
pub fn time_once<T>(dev: &Device, f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    dev.synchronize()?;
    let t = Instant::now();
    let out = f()?;
    dev.synchronize()?;
    Ok((out, t.elapsed().as_secs_f64()))
}

/// `n` standard normal values from PyTorch's CPU generator (`manual_seed(seed); randn(n)`).
pub fn randn(seed: u64, n: usize) -> Vec<f32> {
    TorchGenerator::manual_seed(seed).randn(n)
}

/// Tensors to dump, by name.
#[derive(Default)]
pub struct Dump {
    tensors: BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>,
}

impl Dump {
    pub fn f32(&mut self, name: &str, shape: &[usize], v: &[f32]) {
        let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.tensors
            .insert(name.into(), (Dtype::F32, shape.to_vec(), bytes));
    }
    pub fn coords(&mut self, name: &str, c: &[[i32; 4]]) {
        let bytes = c.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
        self.tensors
            .insert(name.into(), (Dtype::I32, vec![c.len(), 4], bytes));
    }
    pub fn save(&self, path: &Path) -> Result<()> {
        let views = self
            .tensors
            .iter()
            .map(|(k, (d, s, b))| Ok((k.as_str(), TensorView::new(*d, s.clone(), b)?)))
            .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
        let bytes = safetensors::tensor::serialize(views, None)?;
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
    }
}

/// `max|a − b| / max|b|` (the parity measure used throughout BENCHMARKS.md).
pub fn max_rel_err(a: &[f32], b: &[f32]) -> f64 {
    let scale = b.iter().fold(0f64, |m, &v| m.max(v.abs() as f64));
    let diff = a
        .iter()
        .zip(b)
        .fold(0f64, |m, (&x, &y)| m.max((x as f64 - y as f64).abs()));
    if a.len() != b.len() || a.iter().any(|v| !v.is_finite()) {
        return f64::INFINITY;
    }
    diff / scale.max(f64::MIN_POSITIVE)
}

pub fn gib(bytes: usize) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}
