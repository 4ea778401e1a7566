//! CPU bench: achieved GFLOP/s of the CPU backend for linear, attention and the submanifold
//! sparse conv at moderate sizes, each next to a baseline timed in the same process:
//! - linear: the bare `gemm` crate product on ready f32 buffers (what the op adds on top is
//!   dtype conversion, bias and output rounding);
//! - attention: the textbook form, per head one `N × L` score GEMM, a full softmax (same exp)
//!   and a second GEMM (the blocked kernel should not be slower, and it never holds `N × L`);
//! - sparse conv: gather-GEMM-scatter per kernel offset (27 GEMMs over the voxels that have that
//!   neighbour, as torch-based implementations do), against the op's per-row-block im2col.
//!
//! Usage: `t2-cpu-bench [--cpu-time] [FILTER]` (runs the cases whose name contains FILTER;
//! `--cpu-time` reports CPU time instead of wall time, for machines shared with other jobs).
//! Build with optimisations: the dev profile already compiles t2-tensor at opt-level 3.

use std::sync::Arc;
use std::time::Instant;

use t2_tensor::cpu::gemm::{Mat, MatMut, Par, matmul};
use t2_tensor::cpu::math::exp_nonpositive;
use t2_tensor::ops;
use t2_tensor::sparse::{NO_NEIGHBOR, SparseCoords, SparseTensor, submanifold_conv3d};
use t2_tensor::testing::random_vec;
use t2_tensor::{DType, Device, Tensor};

type Res<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Process CPU time (user + system, all threads) in ms, from `/proc/self/stat` (10 ms ticks).
fn cpu_ms() -> Res<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the `(comm)`: state is #3, utime #14 and stime #15 of the full line.
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let tick = |i: usize| -> Res<f64> { Ok(f.get(i).ok_or("short /proc/self/stat")?.parse()?) };
    Ok((tick(11)? + tick(12)?) * 10.0)
}

/// Time per run in ms after one warm-up: the median wall time of `iters` runs, or with
/// `--cpu-time` the mean CPU time (robust when other jobs share the cores; GFLOP/s are then per
/// CPU-second, i.e. per core).
fn time_ms(iters: usize, mut f: impl FnMut() -> Res<()>) -> Res<f64> {
    f()?;
    if CPU_TIME.load(std::sync::atomic::Ordering::Relaxed) {
        let c0 = cpu_ms()?;
        for _ in 0..iters {
            f()?;
        }
        return Ok((cpu_ms()? - c0) / iters as f64);
    }
    let mut t = Vec::with_capacity(iters);
    for _ in 0..iters {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64() * 1e3);
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

static CPU_TIME: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn rand(shape: &[usize], dt: DType, seed: u64, scale: f32) -> Res<Tensor> {
    let n = shape.iter().product();
    let v: Vec<f32> = random_vec(n, seed).iter().map(|x| x * scale).collect();
    Ok(Tensor::from_vec(v, shape, &Device::Cpu)?.to_dtype(dt)?)
}

/// Iterations so that one case takes about a second at `gflops_guess`.
fn iters_for(flops: f64, gflops_guess: f64) -> usize {
    ((1e9 * gflops_guess / flops) as usize).clamp(3, 50)
}

struct Row {
    case: String,
    flops: f64,
    ms: f64,
    baseline: &'static str,
    base_ms: f64,
}

fn print(r: &Row) {
    let g = |ms: f64| r.flops / (ms * 1e-3) / 1e9;
    println!(
        "{:<34} {:>9.2} {:>8.1} | {:<22} {:>9.2} {:>8.1} | {:>5.2}x",
        r.case,
        r.ms,
        g(r.ms),
        r.baseline,
        r.base_ms,
        g(r.base_ms),
        r.base_ms / r.ms
    );
}

fn linear(m: usize, k: usize, n: usize, dt: DType) -> Res<Row> {
    let x = rand(&[m, k], dt, 1, 1.0)?;
    let w = rand(&[n, k], dt, 2, 0.05)?;
    let b = rand(&[n], dt, 3, 0.5)?;
    let flops = 2.0 * (m * k * n) as f64;
    let iters = iters_for(flops, 50.0);
    let ms = time_ms(iters, || {
        ops::linear(&x, &w, Some(&b))?;
        Ok(())
    })?;
    let (xf, wf) = (x.to_vec_f32()?, w.to_vec_f32()?);
    let mut out = vec![0f32; m * n];
    let base_ms = time_ms(iters, || {
        matmul(
            MatMut::row_major(&mut out, m, n),
            Mat::row_major(&xf, m, k),
            Mat::row_major(&wf, n, k).t(),
            false,
            Par::Rayon,
        );
        Ok(())
    })?;
    Ok(Row {
        case: format!("linear {m}x{k}x{n} {}", dt.as_str()),
        flops,
        ms,
        baseline: "gemm f32, no bias",
        base_ms,
    })
}

/// Textbook attention on f32 `[N, H, D]` buffers: per head, S = Q·Kᵀ (N × L), softmax, S·V.
fn naive_attention(q: &[f32], k: &[f32], v: &[f32], (n, l, h, d): (usize, usize, usize, usize)) {
    let scale = 1.0 / (d as f32).sqrt();
    let mut s = vec![0f32; n * l];
    let mut o = vec![0f32; n * d];
    for hi in 0..h {
        matmul(
            MatMut::row_major(&mut s, n, l),
            Mat::strided(&q[hi * d..], n, d, h * d, 1),
            Mat::strided(&k[hi * d..], l, d, h * d, 1).t(),
            false,
            Par::Rayon,
        );
        use rayon::prelude::*;
        s.par_chunks_mut(l).for_each(|row| {
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x * scale));
            let mut sum = 0.0;
            for x in row.iter_mut() {
                *x = exp_nonpositive(*x * scale - m);
                sum += *x;
            }
            row.iter_mut().for_each(|x| *x /= sum);
        });
        matmul(
            MatMut::row_major(&mut o, n, d),
            Mat::row_major(&s, n, l),
            Mat::strided(&v[hi * d..], l, d, h * d, 1),
            false,
            Par::Rayon,
        );
    }
}

fn attention(n: usize, h: usize, d: usize, dt: DType) -> Res<Row> {
    let q = rand(&[1, n, h, d], dt, 4, 2.0)?;
    let k = rand(&[1, n, h, d], dt, 5, 2.0)?;
    let v = rand(&[1, n, h, d], dt, 6, 1.0)?;
    let flops = 4.0 * (n * n * h * d) as f64;
    let iters = iters_for(flops, 30.0);
    let scale = 1.0 / (d as f32).sqrt();
    let ms = time_ms(iters, || {
        ops::attention(&q, &k, &v, scale)?;
        Ok(())
    })?;
    let (qf, kf, vf) = (q.to_vec_f32()?, k.to_vec_f32()?, v.to_vec_f32()?);
    let base_ms = time_ms(iters, || {
        naive_attention(&qf, &kf, &vf, (n, n, h, d));
        Ok(())
    })?;
    Ok(Row {
        case: format!("attention N={n} {h}x{d} {}", dt.as_str()),
        flops,
        ms,
        baseline: "N×L scores, f32",
        base_ms,
    })
}

/// Voxels within one voxel of a sphere of radius `r` in a `(2r + 4)³` grid: a closed surface,
/// like the decoders' voxel shells (about 9 of 27 neighbours present).
fn sphere_shell(r: f32) -> Vec<[i32; 4]> {
    let g = (2.0 * r) as i32 + 4;
    let c = g as f32 / 2.0;
    let mut v = Vec::new();
    for x in 0..g {
        for y in 0..g {
            for z in 0..g {
                let p = [x as f32 + 0.5 - c, y as f32 + 0.5 - c, z as f32 + 0.5 - c];
                let dist = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
                if (dist - r).abs() < 1.0 {
                    v.push([0, x, y, z]);
                }
            }
        }
    }
    v
}

/// Per-offset gather-GEMM-scatter on f32 buffers: for each of the 27 offsets, gather the rows
/// that have that neighbour, multiply by `W_v [Co, Ci]ᵀ`, and add into their outputs.
fn per_offset_conv(f: &[f32], w: &[f32], nbr: &[u32], n: usize, ci: usize, co: usize) -> Vec<f32> {
    let mut out = vec![0f32; n * co];
    let mut wv = vec![0f32; co * ci];
    for v in 0..27 {
        let rows: Vec<(usize, usize)> = (0..n)
            .filter_map(|i| match nbr[i * 27 + v] {
                NO_NEIGHBOR => None,
                j => Some((i, j as usize)),
            })
            .collect();
        let mut g = vec![0f32; rows.len() * ci];
        for (r, &(_, j)) in rows.iter().enumerate() {
            g[r * ci..(r + 1) * ci].copy_from_slice(&f[j * ci..(j + 1) * ci]);
        }
        for o in 0..co {
            wv[o * ci..(o + 1) * ci].copy_from_slice(&w[(o * 27 + v) * ci..][..ci]);
        }
        let mut p = vec![0f32; rows.len() * co];
        matmul(
            MatMut::row_major(&mut p, rows.len(), co),
            Mat::row_major(&g, rows.len(), ci),
            Mat::row_major(&wv, co, ci).t(),
            false,
            Par::Rayon,
        );
        for (r, &(i, _)) in rows.iter().enumerate() {
            for (o, &x) in out[i * co..(i + 1) * co].iter_mut().zip(&p[r * co..]) {
                *o += x;
            }
        }
    }
    out
}

fn sparse_conv(radius: f32, ci: usize, co: usize, dt: DType) -> Res<Row> {
    let coords = Arc::new(SparseCoords::new(sphere_shell(radius), &Device::Cpu));
    let n = coords.len();
    let nbr = coords.neighbor_map()?.to_vec::<u32>()?;
    let pairs = nbr.iter().filter(|&&j| j != NO_NEIGHBOR).count();
    let x = SparseTensor::new(rand(&[n, ci], dt, 7, 1.0)?, coords)?;
    let w = rand(&[co, 3, 3, 3, ci], dt, 8, 0.05)?;
    let b = rand(&[co], dt, 9, 0.5)?;
    // Useful work only: products with neighbours that exist.
    let flops = 2.0 * (pairs * ci * co) as f64;
    let iters = iters_for(flops, 20.0);
    let ms = time_ms(iters, || {
        submanifold_conv3d(&x, &w, Some(&b))?;
        Ok(())
    })?;
    let (ff, wf) = (x.feats.to_vec_f32()?, w.to_vec_f32()?);
    let base_ms = time_ms(iters, || {
        per_offset_conv(&ff, &wf, &nbr, n, ci, co);
        Ok(())
    })?;
    Ok(Row {
        case: format!(
            "subm conv N={n} ({:.1} nbrs) {ci}->{co} {}",
            pairs as f64 / n as f64,
            dt.as_str()
        ),
        flops,
        ms,
        baseline: "per-offset gather-GEMM",
        base_ms,
    })
}

/// Neighbour-map build (hash insert + 27 lookups per voxel) next to a serial std `HashMap`.
fn neighbor_map(radius: f32) -> Res<()> {
    let shell = sphere_shell(radius);
    let n = shell.len();
    let ms = time_ms(5, || {
        let c = SparseCoords::new(shell.clone(), &Device::Cpu);
        c.neighbor_map()?;
        Ok(())
    })?;
    let base_ms = time_ms(5, || {
        let index: std::collections::HashMap<[i32; 4], u32> = shell
            .iter()
            .enumerate()
            .map(|(i, c)| (*c, i as u32))
            .collect();
        let mut nbr = vec![NO_NEIGHBOR; n * 27];
        for (i, c) in shell.iter().enumerate() {
            for v in 0..27 {
                let d = [v as i32 / 9 - 1, v as i32 / 3 % 3 - 1, v as i32 % 3 - 1];
                if let Some(&j) = index.get(&[c[0], c[1] + d[0], c[2] + d[1], c[3] + d[2]]) {
                    nbr[i * 27 + v] = j;
                }
            }
        }
        std::hint::black_box(nbr);
        Ok(())
    })?;
    println!(
        "{:<34} {:>9.2} {:>8} | {:<22} {:>9.2} {:>8} | {:>5.2}x",
        format!("neighbour map N={n}"),
        ms,
        "-",
        "std HashMap, serial",
        base_ms,
        "-",
        base_ms / ms
    );
    Ok(())
}

fn main() -> Res<()> {
    let mut filter = String::new();
    for a in std::env::args().skip(1) {
        if a == "--cpu-time" {
            CPU_TIME.store(true, std::sync::atomic::Ordering::Relaxed);
        } else {
            filter = a;
        }
    }
    let profile = if cfg!(debug_assertions) {
        "dev (t2-tensor at opt-level 3, debug assertions on)"
    } else {
        "release"
    };
    let clock = if CPU_TIME.load(std::sync::atomic::Ordering::Relaxed) {
        "CPU time per run"
    } else {
        "median wall time"
    };
    println!(
        "t2-cpu-bench: {} rayon threads, {profile} build, {clock}",
        rayon::current_num_threads()
    );
    println!(
        "{:<34} {:>9} {:>8} | {:<22} {:>9} {:>8} | {:>6}",
        "case", "ms", "GFLOP/s", "baseline", "ms", "GFLOP/s", "speedup"
    );
    type Case = (String, Box<dyn Fn() -> Res<Row>>);
    let mut cases: Vec<Case> = Vec::new();
    for dt in [DType::F32, DType::BF16] {
        cases.push((
            format!("linear {dt:?}"),
            Box::new(move || linear(1024, 1536, 1536, dt)),
        ));
        cases.push((
            format!("linear-mlp {dt:?}"),
            Box::new(move || linear(1024, 1536, 8192, dt)),
        ));
    }
    for (n, dt) in [(1024, DType::F32), (1024, DType::BF16), (4096, DType::BF16)] {
        cases.push((
            format!("attention {n} {dt:?}"),
            Box::new(move || attention(n, 12, 128, dt)),
        ));
    }
    for (ci, co, dt) in [
        (64, 64, DType::F32),
        (64, 64, DType::F16),
        (256, 256, DType::F16),
    ] {
        cases.push((
            format!("sparse {ci} {dt:?}"),
            Box::new(move || sparse_conv(24.0, ci, co, dt)),
        ));
    }
    for (name, case) in cases {
        if name.contains(&filter) {
            print(&case()?);
        }
    }
    if "neighbour map".contains(&filter) {
        neighbor_map(48.0)?;
    }
    Ok(())
}
