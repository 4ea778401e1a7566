//! GPU bench: achieved TFLOP/s (GB/s for memory-bound ops) of the CUDA backend on the shapes
//! TRELLIS.2 runs — DiT GEMMs, attention at 4,096 / 9,600 / 21,600 / 49,152 tokens (12 heads of
//! 128), DINOv3's f32 attention at 1,029 / 4,101 tokens (16 heads of 64; the exact-f32 kernel
//! next to the generic one it replaced), the SC-VAE decoders' sparse convs at their level
//! sizes — written as JSON for
//! `bench/torch_baseline.py`, which times PyTorch on the same cases in the same run and prints
//! both with ratios.
//!
//! Usage: `t2-gpu-bench OUT_DIR [FILTER...]` writes `OUT_DIR/rust.json` and, for each sparse
//! case, the voxel coords and neighbour map (`OUT_DIR/<case>.{coords,nbr}.bin`) so the torch
//! side convolves exactly the same voxels.

#[path = "gpu_common/mod.rs"]
mod gpu_common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gpu_common::{rand, shell_radius, sphere_shell, time_ms};
use t2_tensor::ops::{self, Unary};
use t2_tensor::sparse::{self, NO_NEIGHBOR, SparseCoords, SparseTensor};
use t2_tensor::{DType, Device, Result};

struct Row {
    kind: &'static str,
    name: String,
    params: serde_json::Value,
    flops: f64,
    bytes: f64,
    ms: f64,
}

fn gemm(
    dev: &Device,
    rows: &mut Vec<Row>,
    name: &str,
    m: usize,
    k: usize,
    n: usize,
    bias: bool,
) -> Result<()> {
    let x = rand(&[m, k], DType::BF16, 1, 1.0)?.to_device(dev)?;
    let w = rand(&[n, k], DType::BF16, 2, 0.05)?.to_device(dev)?;
    let b = rand(&[n], DType::BF16, 3, 0.5)?.to_device(dev)?;
    let iters = (2e12 / (2.0 * (m * n * k) as f64)).clamp(3.0, 200.0) as usize;
    let ms = time_ms(dev, iters, 7, || {
        ops::linear(&x, &w, bias.then_some(&b)).map(drop)
    })?;
    rows.push(Row {
        kind: "gemm",
        name: name.into(),
        params: serde_json::json!({"m": m, "k": k, "n": n, "bias": bias, "dtype": "bf16"}),
        flops: 2.0 * (m * n * k) as f64,
        bytes: 2.0 * (m * k + n * k + m * n) as f64,
        ms,
    });
    Ok(())
}

/// One attention case; `(h, d)`: heads and head dim.
fn attention(
    dev: &Device,
    rows: &mut Vec<Row>,
    name: &str,
    (nq, nk): (usize, usize),
    (h, d): (usize, usize),
    dt: DType,
) -> Result<()> {
    let q = rand(&[1, nq, h, d], dt, 4, 2.0)?.to_device(dev)?;
    let k = rand(&[1, nk, h, d], dt, 5, 2.0)?.to_device(dev)?;
    let v = rand(&[1, nk, h, d], dt, 6, 1.0)?.to_device(dev)?;
    let flops = 4.0 * (nq * nk * h * d) as f64;
    let iters = (2e12 / flops).clamp(3.0, 200.0) as usize;
    let scale = 1.0 / (d as f32).sqrt();
    let ms = time_ms(dev, iters, 7, || {
        ops::attention(&q, &k, &v, scale).map(drop)
    })?;
    rows.push(Row {
        kind: "attention",
        name: name.into(),
        params: serde_json::json!({"nq": nq, "nk": nk, "heads": h, "d": d, "dtype": dt.as_str()}),
        flops,
        bytes: (dt.size_in_bytes() * (2 * nq + 2 * nk) * h * d) as f64,
        ms,
    });
    Ok(())
}

fn write_u32s(path: &Path, v: &[u32]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for x in v {
        f.write_all(&x.to_le_bytes())?;
    }
    f.flush()
}

fn sparse_conv(
    dev: &Device,
    rows: &mut Vec<Row>,
    dir: &Path,
    name: &str,
    n: usize,
    ci: usize,
    co: usize,
) -> Result<()> {
    let coords = sphere_shell(shell_radius(n));
    let nv = coords.len();
    let st = SparseTensor::new(
        rand(&[nv, ci], DType::F16, 7, 1.0)?.to_device(dev)?,
        Arc::new(SparseCoords::new(coords.clone(), dev)),
    )?;
    let w = rand(
        &[co, 3, 3, 3, ci],
        DType::F16,
        8,
        1.0 / (27.0 * ci as f32).sqrt(),
    )?
    .to_device(dev)?;
    let b = rand(&[co], DType::F16, 9, 0.5)?.to_device(dev)?;
    let nbr = st.coords.neighbor_map()?.to_vec::<u32>()?;
    let pairs = nbr.iter().filter(|&&j| j != NO_NEIGHBOR).count();
    let io = |e: std::io::Error| t2_tensor::Error::Io {
        path: dir.display().to_string(),
        source: e,
    };
    let flat: Vec<u32> = coords
        .iter()
        .flat_map(|c| c.iter().map(|&v| v as u32))
        .collect();
    write_u32s(&dir.join(format!("{name}.coords.bin")), &flat).map_err(io)?;
    write_u32s(&dir.join(format!("{name}.nbr.bin")), &nbr).map_err(io)?;
    let flops = 2.0 * (pairs * ci * co) as f64;
    let iters = (1e12 / flops).clamp(3.0, 200.0) as usize;
    let ms = time_ms(dev, iters, 7, || {
        sparse::submanifold_conv3d(&st, &w, Some(&b)).map(drop)
    })?;
    rows.push(Row {
        kind: "sparse_conv",
        name: name.into(),
        params: serde_json::json!({"n": nv, "ci": ci, "co": co, "pairs": pairs, "dtype": "f16"}),
        flops,
        bytes: 2.0 * (nv * ci + 27 * ci * co + nv * co) as f64,
        ms,
    });
    Ok(())
}

fn memory_bound(dev: &Device, rows: &mut Vec<Row>) -> Result<()> {
    let (m, c) = (9600, 1536);
    let x = rand(&[m, c], DType::BF16, 10, 3.0)?.to_device(dev)?;
    let w = rand(&[c], DType::F32, 11, 1.0)?.to_device(dev)?;
    let bytes = 4.0 * (m * c) as f64; // read + write of bf16
    let ms = time_ms(dev, 100, 7, || {
        ops::layer_norm(&x, Some(&w), Some(&w), 1e-6).map(drop)
    })?;
    rows.push(Row {
        kind: "memory",
        name: "layer_norm 9600x1536 bf16".into(),
        params: serde_json::json!({"op": "layer_norm", "m": m, "c": c}),
        flops: 0.0,
        bytes,
        ms,
    });
    let ms = time_ms(dev, 100, 7, || ops::unary(&x, Unary::GeluTanh).map(drop))?;
    rows.push(Row {
        kind: "memory",
        name: "gelu_tanh 9600x1536 bf16".into(),
        params: serde_json::json!({"op": "gelu_tanh", "m": m, "c": c}),
        flops: 0.0,
        bytes,
        ms,
    });
    Ok(())
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or("usage: t2-gpu-bench OUT_DIR [FILTER...]")?,
    );
    let filters: Vec<String> = args.collect();
    std::fs::create_dir_all(&dir)?;
    let dev = Device::cuda(0)?;
    let want = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let mut rows = Vec::new();
    let gemms = [
        ("qkv 9600x1536->4608", 9600, 1536, 4608, true),
        ("mlp-up 9600x1536->8192", 9600, 1536, 8192, true),
        ("mlp-down 9600x8192->1536", 9600, 8192, 1536, true),
        ("ss-qkv 4096x1536->4608", 4096, 1536, 4608, true),
        ("square 8192^3", 8192, 8192, 8192, false),
    ];
    for (name, m, k, n, bias) in gemms {
        if want(name) {
            gemm(&dev, &mut rows, name, m, k, n, bias)?;
        }
    }
    let attn = [
        ("self 4096 bf16", 4096, 4096, DType::BF16),
        ("self 9600 bf16", 9600, 9600, DType::BF16),
        ("self 21600 bf16", 21_600, 21_600, DType::BF16),
        ("self 49152 bf16", 49_152, 49_152, DType::BF16),
        ("self 9600 f16", 9600, 9600, DType::F16),
        ("cross 9600x4101 bf16", 9600, 4101, DType::BF16),
        ("cross 4096x1029 bf16", 4096, 1029, DType::BF16),
    ];
    for (name, nq, nk, dt) in attn {
        if want(name) {
            attention(&dev, &mut rows, name, (nq, nk), (12, 128), dt)?;
        }
    }
    // DINOv3 ViT-L/16 in f32 (the reference runs it in f32): 16 heads of 64 at 512 px (1,029
    // tokens) and 1,024 px (4,101); `generic` is the kernel f32 used before (the A/B baseline).
    let f32_attn = [
        ("dinov3 1029 f32", 1029, 16, 64, ""),
        ("dinov3 4101 f32", 4101, 16, 64, ""),
        ("self 4096 f32 d128", 4096, 12, 128, ""),
        ("dinov3 1029 f32 generic", 1029, 16, 64, "generic"),
        ("dinov3 4101 f32 generic", 4101, 16, 64, "generic"),
    ];
    for (name, n, h, d, variant) in f32_attn {
        if want(name) {
            // SAFETY: single-threaded here.
            unsafe { std::env::set_var("TRELLIS2_FLASH", variant) };
            attention(&dev, &mut rows, name, (n, n), (h, d), DType::F32)?;
            unsafe { std::env::remove_var("TRELLIS2_FLASH") };
        }
    }
    // A/B: the other flash kernels on the same shapes (the H200 default is the FA3-style
    // kernel: TMA producer, two ping-ponging consumer warpgroups, 176-key tiles, 2-stage rings).
    let ab: [(&str, &[usize]); 4] = [
        ("fa3-bc128", &[0, 1, 3, 6]),
        ("fa3-nopp", &[0, 1]),
        ("sm90-v1", &[1]),
        ("sm80", &[1]),
    ];
    for (variant, cases) in ab {
        for &i in cases {
            let (base, nq, nk, dt) = attn[i];
            let name = format!("{base} {variant}");
            if want(&name) {
                // SAFETY: single-threaded here.
                unsafe { std::env::set_var("TRELLIS2_FLASH", variant) };
                attention(&dev, &mut rows, &name, (nq, nk), (12, 128), dt)?;
                unsafe { std::env::remove_var("TRELLIS2_FLASH") };
            }
        }
    }
    // Decoder levels at 1024³ (≈9.6k latent tokens, ×4 voxels per level): ConvNeXt convs
    // C→C, and the C2S convs Ci→8·Co of the first two levels.
    let convs = [
        ("L0 9.6k 1024->1024", 9600, 1024, 1024),
        ("L0-c2s 9.6k 1024->4096", 9600, 1024, 4096),
        ("L1 38k 512->512", 38_400, 512, 512),
        ("L1-c2s 38k 512->2048", 38_400, 512, 2048),
        ("L2 154k 256->256", 153_600, 256, 256),
        ("L3 614k 128->128", 614_400, 128, 128),
    ];
    for (name, n, ci, co) in convs {
        if want(name) {
            let file = name.split_whitespace().next().unwrap_or("conv");
            sparse_conv(&dev, &mut rows, &dir, file, n, ci, co)?;
        }
    }
    if want("memory") {
        memory_bound(&dev, &mut rows)?;
    }
    if let Device::Cuda(d) = &dev {
        let m = d.memory_stats();
        eprintln!(
            "# {} peak allocated {} MiB, cached {} MiB",
            d.name(),
            m.peak_allocated >> 20,
            m.cached >> 20
        );
    }
    println!(
        "{:<12} {:<28} {:>10} {:>10} {:>10}",
        "kind", "case", "ms", "TFLOP/s", "GB/s"
    );
    let mut json = Vec::new();
    for r in &rows {
        println!(
            "{:<12} {:<28} {:>10.3} {:>10.1} {:>10.0}",
            r.kind,
            r.name,
            r.ms,
            r.flops / r.ms / 1e9,
            r.bytes / r.ms / 1e6
        );
        json.push(serde_json::json!({
            "kind": r.kind, "name": r.name, "params": r.params,
            "flops": r.flops, "bytes": r.bytes, "ms": r.ms,
        }));
    }
    std::fs::write(dir.join("rust.json"), serde_json::to_string_pretty(&json)?)?;
    Ok(())
}
