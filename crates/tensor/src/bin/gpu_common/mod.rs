//! Shared by the GPU parity and bench binaries: random inputs, synthetic voxel sets, timing.

#![allow(dead_code)]

use std::time::Instant;

use t2_tensor::{DType, Device, Result, Tensor, testing};

/// A CPU tensor of `dtype` with values uniform in `[-scale, scale)` (never zeros), seeded.
pub fn rand(shape: &[usize], dtype: DType, seed: u64, scale: f32) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = testing::random_vec(n, seed)
        .into_iter()
        .map(|x| x * scale)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu)?.to_dtype(dtype)
}

/// Voxels whose centre lies in a spherical band of radius `r` and thickness 2 around the
/// centre of a `(2r + 4)³` grid, in lexicographic order: a closed surface like the decoders'
/// voxel sets (each voxel has about 2/3 of its 27 neighbours). About `8πr²` voxels.
pub fn sphere_shell(r: f64) -> Vec<[i32; 4]> {
    let side = (2.0 * r + 4.0).ceil() as i32;
    let c = side as f64 / 2.0;
    let (lo, hi) = ((r - 1.0).max(0.0).powi(2), (r + 1.0).powi(2));
    let mut out = Vec::new();
    for x in 0..side {
        let dx = (x as f64 + 0.5 - c).powi(2);
        for y in 0..side {
            let dxy = dx + (y as f64 + 0.5 - c).powi(2);
            if dxy >= hi {
                continue;
            }
            for z in 0..side {
                let d2 = dxy + (z as f64 + 0.5 - c).powi(2);
                if d2 >= lo && d2 < hi {
                    out.push([0, x, y, z]);
                }
            }
        }
    }
    out
}

/// Radius of a shell with about `n` voxels.
pub fn shell_radius(n: usize) -> f64 {
    (n as f64 / (8.0 * std::f64::consts::PI)).sqrt()
}

/// Median milliseconds per call of `f` on `dev`: 3 warm-up calls, then `reps` timed batches of
/// `iters` calls, each batch closed by a device synchronise (the host clock then measures the
/// device work, METHOD.md).
pub fn time_ms(
    dev: &Device,
    iters: usize,
    reps: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<f64> {
    for _ in 0..3 {
        f()?;
    }
    dev.synchronize()?;
    let mut samples = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        for _ in 0..iters {
            f()?;
        }
        dev.synchronize()?;
        samples.push(t.elapsed().as_secs_f64() * 1e3 / iters as f64);
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    Ok(samples[samples.len() / 2])
}
