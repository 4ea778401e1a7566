//! GPU parity: every op on CUDA against the CPU backend (the numerical reference) on random
//! inputs of realistic sizes; prints the max relative error `max|gpu − cpu| / max|cpu|` per case
//! next to its tolerance, and exits non-zero when a case fails.
//!
//! Usage: `t2-gpu-parity [--list] [FILTER...]` (a case runs when its name contains a filter).
//! Tolerances, by what the two backends may legitimately do differently:
//! - exact ops (layout, casts, element-wise arithmetic with the same f32 steps): 0;
//! - reductions (norms, GEMM, convs) only differ in f32 summation order, and element-wise
//!   kernels in FMA contraction or libm ulps, so a half-precision output can flip by one ulp of
//!   its dtype where the f32 value sits near a rounding boundary. Relative to the max, one ulp is
//!   at most 2⁻⁷ ≈ 7.8e-3 for bf16 (8 significant bits) and 2⁻¹⁰ ≈ 9.8e-4 for f16: tolerances
//!   8e-3 and 1e-3; f32 outputs 1e-5 (long sums), a few ulps (2e-6) for transcendentals;
//! - attention: the GPU rounds the softmax weights P to the input dtype before P·V (as
//!   FlashAttention), the CPU keeps f32: 1e-2 for bf16, 2e-3 for f16. f32 attention (the
//!   exact-f32 flash kernel and the generic one: IEEE FMAs, no TF32) only differs in summation
//!   order and exp ulps: 1e-5, like the other long f32 sums.
//!
//! Each GPU output buffer is pre-filled with NaN (through the caching allocator) so an element
//! the kernel never writes shows up as an infinite error.

#[path = "gpu_common/mod.rs"]
mod gpu_common;

use std::sync::Arc;
use std::time::Instant;

use gpu_common::{rand, shell_radius, sphere_shell};
use t2_tensor::ops::{self, Unary};
use t2_tensor::sparse::{self, SparseCoords, SparseTensor};
use t2_tensor::{DType, Device, Error, Result, Tensor, testing};

struct Outcome {
    err: f64,
    what: String,
    cpu_ms: f64,
    gpu_ms: f64,
}

type CaseFn = Box<dyn Fn(&Device) -> Result<Outcome>>;

struct Case {
    name: String,
    tol: f64,
    run: CaseFn,
}

fn case(
    name: impl Into<String>,
    tol: f64,
    run: impl Fn(&Device) -> Result<Outcome> + 'static,
) -> Case {
    Case {
        name: name.into(),
        tol,
        run: Box::new(run),
    }
}

/// Leaves a NaN-filled block of `bytes` in the device cache, so the next allocation of that
/// size (the op's output) starts as NaN.
fn poison(gpu: &Device, bytes: usize) -> Result<()> {
    let words = bytes.div_ceil(4);
    drop(Tensor::from_vec(vec![u32::MAX; words], &[words], gpu)?);
    Ok(())
}

/// Runs `f` on CPU copies and GPU copies of `inputs`, compares the outputs.
fn check(
    gpu: &Device,
    inputs: &[&Tensor],
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
) -> Result<Outcome> {
    let t = Instant::now();
    let cpu_out = f(&inputs.iter().map(|t| (*t).clone()).collect::<Vec<_>>())?;
    let cpu_ms = t.elapsed().as_secs_f64() * 1e3;
    let g: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.to_device(gpu))
        .collect::<Result<_>>()?;
    poison(gpu, cpu_out.numel() * cpu_out.dtype().size_in_bytes())?;
    gpu.synchronize()?;
    let t = Instant::now();
    let gpu_out = f(&g)?;
    gpu.synchronize()?;
    let gpu_ms = t.elapsed().as_secs_f64() * 1e3;
    compare(&gpu_out, &cpu_out, cpu_ms, gpu_ms)
}

fn compare(gpu_out: &Tensor, cpu_out: &Tensor, cpu_ms: f64, gpu_ms: f64) -> Result<Outcome> {
    if gpu_out.shape() != cpu_out.shape() || gpu_out.dtype() != cpu_out.dtype() {
        return Err(Error::shape(
            "parity",
            format!(
                "gpu {:?} {:?} vs cpu {:?} {:?}",
                gpu_out.shape(),
                gpu_out.dtype(),
                cpu_out.shape(),
                cpu_out.dtype()
            ),
        ));
    }
    let err = testing::max_rel_err(&gpu_out.to_vec_f32()?, &cpu_out.to_vec_f32()?);
    Ok(Outcome {
        err,
        what: format!("{:?} {:?}", cpu_out.shape(), cpu_out.dtype()),
        cpu_ms,
        gpu_ms,
    })
}

fn elementwise_cases(cases: &mut Vec<Case>) {
    let funcs = [
        Unary::Silu,
        Unary::GeluTanh,
        Unary::GeluErf,
        Unary::Sigmoid,
        Unary::Softplus,
    ];
    for f in funcs {
        for (dt, tol) in [(DType::BF16, 8e-3), (DType::F32, 2e-6)] {
            cases.push(case(
                format!("unary/{}/{}", f.name(), dt.as_str()),
                tol,
                move |g| {
                    let x = rand(&[9600, 1536], dt, 11, 6.0)?;
                    check(g, &[&x], |t| ops::unary(&t[0], f))
                },
            ));
        }
    }
    for dt in [DType::BF16, DType::F32] {
        cases.push(case(format!("affine/{}", dt.as_str()), 0.0, move |g| {
            let x = rand(&[4096, 1536], dt, 12, 3.0)?;
            check(g, &[&x], |t| ops::affine(&t[0], 0.731, -0.25))
        }));
    }
    cases.push(case("binary/add/same/bf16", 0.0, |g| {
        let a = rand(&[9600, 1536], DType::BF16, 13, 2.0)?;
        let b = rand(&[9600, 1536], DType::BF16, 14, 2.0)?;
        check(g, &[&a, &b], |t| ops::add(&t[0], &t[1]))
    }));
    cases.push(case("binary/mul/row-broadcast/f16", 0.0, |g| {
        let a = rand(&[50_000, 256], DType::F16, 15, 2.0)?;
        let b = rand(&[256], DType::F16, 16, 2.0)?;
        check(g, &[&a, &b], |t| ops::mul(&t[0], &t[1]))
    }));
    cases.push(case("binary/sub/mixed-f32-bf16", 0.0, |g| {
        let a = rand(&[4096, 1536], DType::F32, 17, 2.0)?;
        let b = rand(&[4096, 1536], DType::BF16, 18, 2.0)?;
        check(g, &[&a, &b], |t| ops::sub(&t[0], &t[1]))
    }));
    cases.push(case("binary/add/3d-broadcast/f32", 0.0, |g| {
        let a = rand(&[2, 1, 1536], DType::F32, 19, 2.0)?;
        let b = rand(&[1, 1029, 1], DType::F32, 20, 2.0)?;
        check(g, &[&a, &b], |t| ops::add(&t[0], &t[1]))
    }));
    cases.push(case("modulate/bf16", 0.0, |g| {
        let x = rand(&[9600, 1536], DType::BF16, 21, 3.0)?;
        let sh = rand(&[1536], DType::BF16, 22, 1.0)?;
        let sc = rand(&[1536], DType::BF16, 23, 1.0)?;
        check(g, &[&x, &sh, &sc], |t| ops::modulate(&t[0], &t[1], &t[2]))
    }));
    cases.push(case("gated_residual/bf16", 0.0, |g| {
        let x = rand(&[9600, 1536], DType::BF16, 24, 3.0)?;
        let h = rand(&[9600, 1536], DType::BF16, 25, 3.0)?;
        let gate = rand(&[1536], DType::BF16, 26, 1.0)?;
        check(g, &[&x, &h, &gate], |t| {
            ops::gated_residual(&t[0], &t[1], &t[2])
        })
    }));
}

fn norm_rope_cases(cases: &mut Vec<Case>) {
    cases.push(case("layer_norm/affine/bf16", 8e-3, |g| {
        let x = rand(&[9600, 1536], DType::BF16, 31, 3.0)?;
        let w = rand(&[1536], DType::F32, 32, 1.0)?;
        let b = rand(&[1536], DType::F32, 33, 1.0)?;
        check(g, &[&x, &w, &b], |t| {
            ops::layer_norm(&t[0], Some(&t[1]), Some(&t[2]), 1e-6)
        })
    }));
    cases.push(case("layer_norm/plain/f16", 1e-3, |g| {
        let x = rand(&[50_000, 256], DType::F16, 34, 3.0)?;
        check(g, &[&x], |t| ops::layer_norm(&t[0], None, None, 1e-6))
    }));
    cases.push(case("layer_norm/affine/f32", 1e-5, |g| {
        let x = rand(&[4096, 1536], DType::F32, 35, 3.0)?;
        let w = rand(&[1536], DType::BF16, 36, 1.0)?;
        let b = rand(&[1536], DType::BF16, 37, 1.0)?;
        check(g, &[&x, &w, &b], |t| {
            ops::layer_norm(&t[0], Some(&t[1]), Some(&t[2]), 1e-5)
        })
    }));
    cases.push(case("rms_norm_heads/bf16", 8e-3, |g| {
        let x = rand(&[1, 9600, 12, 128], DType::BF16, 38, 3.0)?;
        let gamma = rand(&[12, 128], DType::F32, 39, 1.0)?;
        check(g, &[&x, &gamma], |t| ops::rms_norm_heads(&t[0], &t[1]))
    }));
    cases.push(case("rope_interleaved/bf16", 8e-3, |g| {
        let x = rand(&[1, 9600, 12, 128], DType::BF16, 40, 3.0)?;
        let ph = rand(&[9600, 64], DType::F32, 41, 3.0)?.to_vec_f32()?;
        let cos = Tensor::from_vec(
            ph.iter().map(|a| a.cos()).collect(),
            &[9600, 64],
            &Device::Cpu,
        )?;
        let sin = Tensor::from_vec(
            ph.iter().map(|a| a.sin()).collect(),
            &[9600, 64],
            &Device::Cpu,
        )?;
        check(g, &[&x, &cos, &sin], |t| {
            ops::rope_interleaved(&t[0], &t[1], &t[2])
        })
    }));
    cases.push(case("rope_half_split/f32", 1e-6, |g| {
        let x = rand(&[1, 1029, 16, 64], DType::F32, 42, 3.0)?;
        let ph = rand(&[1024, 64], DType::F32, 43, 3.0)?.to_vec_f32()?;
        let cos = Tensor::from_vec(
            ph.iter().map(|a| a.cos()).collect(),
            &[1024, 64],
            &Device::Cpu,
        )?;
        let sin = Tensor::from_vec(
            ph.iter().map(|a| a.sin()).collect(),
            &[1024, 64],
            &Device::Cpu,
        )?;
        check(g, &[&x, &cos, &sin], |t| {
            ops::rope_half_split(&t[0], &t[1], &t[2], 5)
        })
    }));
}

fn layout_cases(cases: &mut Vec<Case>) {
    for (from, to) in [
        (DType::F32, DType::BF16),
        (DType::BF16, DType::F32),
        (DType::F32, DType::F16),
        (DType::F16, DType::BF16),
        (DType::F32, DType::I32),
    ] {
        cases.push(case(
            format!("to_dtype/{}->{}", from.as_str(), to.as_str()),
            0.0,
            move |g| {
                let x = rand(&[4096, 1536], from, 51, 300.0)?;
                check(g, &[&x], |t| ops::to_dtype(&t[0], to))
            },
        ));
    }
    cases.push(case("permute/heads/bf16", 0.0, |g| {
        let x = rand(&[1, 4096, 12, 128], DType::BF16, 52, 1.0)?;
        check(g, &[&x], |t| ops::permute(&t[0], &[0, 2, 1, 3]))
    }));
    cases.push(case("permute/channels-last/f16", 0.0, |g| {
        let x = rand(&[1, 32, 24, 20, 18], DType::F16, 53, 1.0)?;
        check(g, &[&x], |t| ops::permute(&t[0], &[0, 2, 3, 4, 1]))
    }));
    cases.push(case("permute/transpose/f32", 0.0, |g| {
        let x = rand(&[1000, 777], DType::F32, 54, 1.0)?;
        check(g, &[&x], |t| ops::permute(&t[0], &[1, 0]))
    }));
    cases.push(case("narrow/qkv-split/bf16", 0.0, |g| {
        let x = rand(&[9600, 4608], DType::BF16, 55, 1.0)?;
        check(g, &[&x], |t| ops::narrow(&t[0], 1, 1536, 1536))
    }));
    cases.push(case("narrow/odd/f32", 0.0, |g| {
        let x = rand(&[3, 1001, 7], DType::F32, 56, 1.0)?;
        check(g, &[&x], |t| ops::narrow(&t[0], 1, 13, 501))
    }));
    cases.push(case("cat/features/f16", 0.0, |g| {
        let a = rand(&[50_000, 32], DType::F16, 57, 1.0)?;
        let b = rand(&[50_000, 33], DType::F16, 58, 1.0)?;
        check(g, &[&a, &b], |t| ops::cat(&[&t[0], &t[1]], 1))
    }));
    cases.push(case("cat/tokens/bf16", 0.0, |g| {
        let a = rand(&[1, 5, 1024], DType::BF16, 59, 1.0)?;
        let b = rand(&[1, 1024, 1024], DType::BF16, 60, 1.0)?;
        check(g, &[&a, &b], |t| ops::cat(&[&t[0], &t[1]], 1))
    }));
    cases.push(case("index_rows/c2s-gather/f16", 0.0, |g| {
        let x = rand(&[50_000 * 8, 256], DType::F16, 61, 1.0)?;
        let idx: Vec<u32> = testing::random_vec(180_000, 62)
            .into_iter()
            .map(|r| (((r + 1.0) * 0.5) * 399_999.0) as u32)
            .collect();
        let idx = Tensor::from_vec(idx, &[180_000], &Device::Cpu)?;
        check(g, &[&x, &idx], |t| ops::index_rows(&t[0], &t[1]))
    }));
    cases.push(case("index_rows/out-of-range-is-an-error", 0.0, |g| {
        let x = rand(&[100, 6], DType::F32, 63, 1.0)?.to_device(g)?;
        let idx = Tensor::from_vec(vec![3i32, 100, 5], &[3], g)?;
        match ops::index_rows(&x, &idx) {
            Err(Error::Shape { .. }) => Ok(Outcome {
                err: 0.0,
                what: "typed error".into(),
                cpu_ms: 0.0,
                gpu_ms: 0.0,
            }),
            other => Err(Error::shape(
                "parity",
                format!("expected a shape error, got {other:?}"),
            )),
        }
    }));
    cases.push(case("repeat_interleave/c2s/f16", 0.0, |g| {
        let x = rand(&[50_000, 32], DType::F16, 64, 1.0)?;
        check(g, &[&x], |t| ops::repeat_interleave(&t[0], 1, 4))
    }));
}

fn gemm_conv_cases(cases: &mut Vec<Case>) {
    cases.push(case("linear/qkv/bf16+bias", 8e-3, |g| {
        let x = rand(&[9600, 1536], DType::BF16, 71, 1.0)?;
        let w = rand(&[4608, 1536], DType::BF16, 72, 0.05)?;
        let b = rand(&[4608], DType::BF16, 73, 1.0)?;
        check(g, &[&x, &w, &b], |t| ops::linear(&t[0], &t[1], Some(&t[2])))
    }));
    cases.push(case("linear/mlp-down/f16", 1e-3, |g| {
        let x = rand(&[2048, 8192], DType::F16, 74, 1.0)?;
        let w = rand(&[1536, 8192], DType::F16, 75, 0.02)?;
        check(g, &[&x, &w], |t| ops::linear(&t[0], &t[1], None))
    }));
    cases.push(case("linear/input-layer/f32", 1e-5, |g| {
        let x = rand(&[4096, 8], DType::F32, 76, 1.0)?;
        let w = rand(&[1536, 8], DType::F32, 77, 0.5)?;
        let b = rand(&[1536], DType::F32, 78, 0.5)?;
        check(g, &[&x, &w, &b], |t| ops::linear(&t[0], &t[1], Some(&t[2])))
    }));
    cases.push(case("linear/f32-x-bf16-w", 1e-5, |g| {
        let x = rand(&[1029, 1024], DType::F32, 79, 1.0)?;
        let w = rand(&[1536, 1024], DType::BF16, 80, 0.05)?;
        let b = rand(&[1536], DType::BF16, 81, 0.5)?;
        check(g, &[&x, &w, &b], |t| ops::linear(&t[0], &t[1], Some(&t[2])))
    }));
    cases.push(case("linear/bf16-with-f32-bias", 8e-3, |g| {
        let x = rand(&[4096, 1536], DType::BF16, 82, 1.0)?;
        let w = rand(&[1536, 1536], DType::BF16, 83, 0.05)?;
        let b = rand(&[1536], DType::F32, 84, 0.5)?;
        check(g, &[&x, &w, &b], |t| ops::linear(&t[0], &t[1], Some(&t[2])))
    }));
    cases.push(case("patch_embed2d/dinov3/f32", 1e-5, |g| {
        let x = rand(&[1, 3, 512, 512], DType::F32, 85, 1.0)?;
        let w = rand(&[1024, 3, 16, 16], DType::F32, 86, 0.1)?;
        let b = rand(&[1024], DType::F32, 87, 0.5)?;
        check(g, &[&x, &w, &b], |t| {
            ops::patch_embed2d(&t[0], &t[1], Some(&t[2]))
        })
    }));
    cases.push(case("conv3d/ss-decoder-32^3/f16", 2e-3, |g| {
        let x = rand(&[1, 128, 32, 32, 32], DType::F16, 88, 1.0)?;
        let w = rand(&[128, 128, 3, 3, 3], DType::F16, 89, 0.03)?;
        let b = rand(&[128], DType::F16, 90, 0.5)?;
        check(g, &[&x, &w, &b], |t| ops::conv3d(&t[0], &t[1], Some(&t[2])))
    }));
    cases.push(case("conv3d/input-layer/f32", 1e-5, |g| {
        let x = rand(&[1, 8, 16, 16, 16], DType::F32, 91, 1.0)?;
        let w = rand(&[512, 8, 3, 3, 3], DType::F32, 92, 0.1)?;
        let b = rand(&[512], DType::F32, 93, 0.5)?;
        check(g, &[&x, &w, &b], |t| ops::conv3d(&t[0], &t[1], Some(&t[2])))
    }));
    cases.push(case("pixel_shuffle_3d/f16", 0.0, |g| {
        let x = rand(&[1, 1024, 16, 16, 16], DType::F16, 94, 1.0)?;
        check(g, &[&x], |t| ops::pixel_shuffle_3d(&t[0]))
    }));
    cases.push(case("max_pool3d_2/f32", 0.0, |g| {
        let x = rand(&[1, 32, 63, 64, 65], DType::F32, 95, 1.0)?;
        check(g, &[&x], |t| ops::max_pool3d_2(&t[0]))
    }));
}

/// The decoders' submanifold conv on a ~`n`-voxel surface, against the CPU (whose neighbour
/// map comes from its own hash map; the GPU builds its map with the GPU hash table).
fn sparse_conv_case(g: &Device, n: usize, ci: usize, co: usize, dt: DType) -> Result<Outcome> {
    let coords = sphere_shell(shell_radius(n));
    let nv = coords.len();
    let feats = rand(&[nv, ci], dt, 101, 1.0)?;
    let w = rand(&[co, 3, 3, 3, ci], dt, 102, 1.0 / (27.0 * ci as f32).sqrt())?;
    let b = rand(&[co], dt, 103, 0.5)?;
    let cpu = SparseTensor::new(
        feats.clone(),
        Arc::new(SparseCoords::new(coords.clone(), &Device::Cpu)),
    )?;
    let t = Instant::now();
    let want = sparse::submanifold_conv3d(&cpu, &w, Some(&b))?;
    let cpu_ms = t.elapsed().as_secs_f64() * 1e3;
    let gc = SparseTensor::new(feats.to_device(g)?, Arc::new(SparseCoords::new(coords, g)))?;
    let (wg, bg) = (w.to_device(g)?, b.to_device(g)?);
    gc.coords.neighbor_map()?; // built (and checked) on its own below
    poison(g, nv * co * dt.size_in_bytes())?;
    g.synchronize()?;
    let t = Instant::now();
    let got = sparse::submanifold_conv3d(&gc, &wg, Some(&bg))?;
    g.synchronize()?;
    let gpu_ms = t.elapsed().as_secs_f64() * 1e3;
    compare(&got.feats, &want.feats, cpu_ms, gpu_ms)
}

fn sparse_cases(cases: &mut Vec<Case>) {
    cases.push(case("neighbor_map/50k-shell (mismatches)", 0.0, |g| {
        let coords = sphere_shell(shell_radius(50_000));
        let n = coords.len();
        let t = Instant::now();
        let want = SparseCoords::new(coords.clone(), &Device::Cpu)
            .neighbor_map()?
            .to_vec::<u32>()?;
        let cpu_ms = t.elapsed().as_secs_f64() * 1e3;
        let gc = SparseCoords::new(coords, g);
        gc.tensor()?;
        g.synchronize()?;
        let t = Instant::now();
        let got = gc.neighbor_map()?.to_vec::<u32>()?;
        let gpu_ms = t.elapsed().as_secs_f64() * 1e3;
        let bad = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        Ok(Outcome {
            err: bad as f64,
            what: format!("[{n}, 27] U32"),
            cpu_ms,
            gpu_ms,
        })
    }));
    cases.push(case("submanifold_conv3d/50k x 256->256/f16", 1e-3, |g| {
        sparse_conv_case(g, 50_000, 256, 256, DType::F16)
    }));
    cases.push(case("submanifold_conv3d/20k x 1024->512/bf16", 8e-3, |g| {
        sparse_conv_case(g, 20_000, 1024, 512, DType::BF16)
    }));
    cases.push(case("submanifold_conv3d/50k x 64->40/f16", 1e-3, |g| {
        sparse_conv_case(g, 50_000, 64, 40, DType::F16)
    }));
    cases.push(case(
        "submanifold_conv3d/20k x 36->64/f16-generic",
        1e-3,
        |g| sparse_conv_case(g, 20_000, 36, 64, DType::F16),
    ));
    cases.push(case("submanifold_conv3d/20k x 64->64/f32", 1e-5, |g| {
        sparse_conv_case(g, 20_000, 64, 64, DType::F32)
    }));
}

/// Attention with the CPU reference on `rows` query rows spread over the sequence (the CPU
/// would take minutes on all of them; every row is an independent softmax).
fn attention_case(
    g: &Device,
    nq: usize,
    nk: usize,
    h: usize,
    d: usize,
    dt: DType,
    rows: usize,
) -> Result<Outcome> {
    attention_case_batched(g, 1, nq, nk, h, d, dt, rows)
}

/// `attention_case` over `b` batch items (the CFG pair): the same rows of every item are checked.
#[allow(clippy::too_many_arguments)]
fn attention_case_batched(
    g: &Device,
    b: usize,
    nq: usize,
    nk: usize,
    h: usize,
    d: usize,
    dt: DType,
    rows: usize,
) -> Result<Outcome> {
    let q = rand(&[b, nq, h, d], dt, 111, 2.0)?;
    let k = rand(&[b, nk, h, d], dt, 112, 2.0)?;
    let v = rand(&[b, nk, h, d], dt, 113, 1.0)?;
    let scale = 1.0 / (d as f32).sqrt();
    let rows = rows.min(nq);
    let per_item: Vec<u32> = (0..rows)
        .map(|i| (i * nq / rows) as u32)
        .chain([nq as u32 - 1])
        .collect();
    let pick: Vec<u32> = (0..b as u32)
        .flat_map(|bi| per_item.iter().map(move |&r| bi * nq as u32 + r))
        .collect();
    let idx = Tensor::from_vec(pick.clone(), &[pick.len()], &Device::Cpu)?;
    let n_pick = per_item.len();
    let q_sub =
        ops::index_rows(&q.reshape(&[b * nq, h * d])?, &idx)?.reshape(&[b, n_pick, h, d])?;
    let t = Instant::now();
    let want = ops::attention(&q_sub, &k, &v, scale)?;
    let cpu_ms = t.elapsed().as_secs_f64() * 1e3;
    let (qg, kg, vg) = (q.to_device(g)?, k.to_device(g)?, v.to_device(g)?);
    poison(g, b * nq * h * d * dt.size_in_bytes())?;
    g.synchronize()?;
    let t = Instant::now();
    let got = ops::attention(&qg, &kg, &vg, scale)?;
    g.synchronize()?;
    let gpu_ms = t.elapsed().as_secs_f64() * 1e3;
    let got_sub = ops::index_rows(
        &got.to_device(&Device::Cpu)?.reshape(&[b * nq, h * d])?,
        &idx,
    )?
    .reshape(&[b, n_pick, h, d])?;
    let mut o = compare(&got_sub, &want, cpu_ms, gpu_ms)?;
    let batch = if b > 1 {
        format!("b {b} ")
    } else {
        String::new()
    };
    o.what = format!(
        "{batch}q {nq} k {nk} h {h} d {d} {dt:?} ({} rows checked)",
        pick.len()
    );
    // The rows not checked against the CPU must still be finite (all written).
    if got.to_vec_f32()?.iter().any(|x| !x.is_finite()) {
        o.err = f64::INFINITY;
    }
    Ok(o)
}

/// Runs `f` with another flash kernel forced (`TRELLIS2_FLASH`: on Hopper the FA3-style
/// kernel is the default), so every kernel variant is checked on the H200.
fn with_flash(variant: &str, f: impl FnOnce() -> Result<Outcome>) -> Result<Outcome> {
    // SAFETY: the parity binary is single-threaded.
    unsafe { std::env::set_var("TRELLIS2_FLASH", variant) };
    let r = f();
    unsafe { std::env::remove_var("TRELLIS2_FLASH") };
    r
}

fn attention_cases(cases: &mut Vec<Case>) {
    cases.push(case("attention/self-4096/bf16", 1e-2, |g| {
        attention_case(g, 4096, 4096, 12, 128, DType::BF16, 4096)
    }));
    cases.push(case("attention/self-49152/bf16", 1e-2, |g| {
        attention_case(g, 49_152, 49_152, 12, 128, DType::BF16, 192)
    }));
    cases.push(case("attention/self-9600/f16", 2e-3, |g| {
        attention_case(g, 9600, 9600, 12, 128, DType::F16, 512)
    }));
    cases.push(case("attention/cross-9600x4101/bf16", 1e-2, |g| {
        attention_case(g, 9600, 4101, 12, 128, DType::BF16, 512)
    }));
    cases.push(case("attention/odd-1000x777/bf16", 1e-2, |g| {
        attention_case(g, 1000, 777, 3, 128, DType::BF16, 1000)
    }));
    cases.push(case("attention/dinov3-1029/bf16-d64", 1e-2, |g| {
        attention_case(g, 1029, 1029, 16, 64, DType::BF16, 1029)
    }));
    cases.push(case("attention/dinov3-1029/f32", 1e-5, |g| {
        attention_case(g, 1029, 1029, 16, 64, DType::F32, 1029)
    }));
    cases.push(case("attention/self-9600/f32", 1e-5, |g| {
        attention_case(g, 9600, 9600, 12, 128, DType::F32, 256)
    }));
    f32_attention_cases(cases);
    // The SS stage's cross-attention with the CFG pair batched (B = 2, image tokens 1,029).
    cases.push(case("attention/b2-cross-4096x1029/bf16", 1e-2, |g| {
        attention_case_batched(g, 2, 4096, 1029, 12, 128, DType::BF16, 512)
    }));
    cases.push(case("attention/b2-odd-333x129/f16", 2e-3, |g| {
        attention_case_batched(g, 2, 333, 129, 5, 128, DType::F16, 333)
    }));
    for variant in [
        "fa3-bc128",
        "fa3-nopp",
        "sm90-v1",
        "sm80",
        "sm90-bc64",
        "sm90-nostagger",
    ] {
        cases.push(case(
            format!("attention/self-4096-{variant}/bf16"),
            1e-2,
            move |g| {
                with_flash(variant, || {
                    attention_case(g, 4096, 4096, 12, 128, DType::BF16, 4096)
                })
            },
        ));
        cases.push(case(
            format!("attention/cross-1000x777-{variant}/f16"),
            2e-3,
            move |g| {
                with_flash(variant, || {
                    attention_case(g, 1000, 777, 12, 128, DType::F16, 1000)
                })
            },
        ));
        cases.push(case(
            format!("attention/short-300x50-{variant}/bf16"),
            1e-2,
            move |g| {
                with_flash(variant, || {
                    attention_case(g, 300, 50, 4, 128, DType::BF16, 300)
                })
            },
        ));
    }
    cases.push(case("attention/short-300x50/bf16", 1e-2, |g| {
        attention_case(g, 300, 50, 4, 128, DType::BF16, 300)
    }));
    cases.push(case("attention/d96-generic/bf16", 1e-2, |g| {
        attention_case(g, 700, 900, 2, 96, DType::BF16, 700)
    }));
}

/// f32 attention beyond the two cases above: DINOv3 at 1024 px (4,101 tokens, 16 heads of 64),
/// ragged lengths (a partial last key tile, fewer keys than one tile, a partial query block),
/// B = 2, and the generic kernel (other head dims, or forced) on the same footing. All 1e-5.
fn f32_attention_cases(cases: &mut Vec<Case>) {
    cases.push(case("attention/dinov3-4101/f32", 1e-5, |g| {
        attention_case(g, 4101, 4101, 16, 64, DType::F32, 1025)
    }));
    cases.push(case("attention/ragged-777/f32-d64", 1e-5, |g| {
        attention_case(g, 777, 777, 3, 64, DType::F32, 777)
    }));
    cases.push(case("attention/ragged-777/f32-d128", 1e-5, |g| {
        attention_case(g, 777, 777, 3, 128, DType::F32, 777)
    }));
    cases.push(case("attention/cross-1000x777/f32-d128", 1e-5, |g| {
        attention_case(g, 1000, 777, 4, 128, DType::F32, 1000)
    }));
    cases.push(case("attention/cross-130x4101/f32-d64", 1e-5, |g| {
        attention_case(g, 130, 4101, 16, 64, DType::F32, 130)
    }));
    cases.push(case("attention/short-300x50/f32-d64", 1e-5, |g| {
        attention_case(g, 300, 50, 4, 64, DType::F32, 300)
    }));
    cases.push(case("attention/short-33x20/f32-d128", 1e-5, |g| {
        attention_case(g, 33, 20, 2, 128, DType::F32, 33)
    }));
    cases.push(case("attention/b2-odd-333x129/f32-d64", 1e-5, |g| {
        attention_case_batched(g, 2, 333, 129, 5, 64, DType::F32, 333)
    }));
    cases.push(case("attention/d96-generic/f32", 1e-5, |g| {
        attention_case(g, 700, 900, 2, 96, DType::F32, 700)
    }));
    cases.push(case("attention/dinov3-1029-generic/f32", 1e-5, |g| {
        with_flash("generic", || {
            attention_case(g, 1029, 1029, 16, 64, DType::F32, 1029)
        })
    }));
}

fn device_cases(cases: &mut Vec<Case>) {
    cases.push(case("memory-limit-caps-the-pool", 0.0, |g| {
        let Device::Cuda(cd) = g else { unreachable!() };
        cd.empty_cache()?;
        let base = cd.memory_stats().allocated;
        // 64 MiB above what is live now: two 24 MiB tensors fit, a third does not; after
        // dropping one, the cached block is reused; the cap lifted, a third fits.
        cd.set_memory_limit(Some(base + (64 << 20)));
        let result = (|| {
            let mib24 = [6usize << 20];
            let a = Tensor::zeros(&mib24, DType::F32, g)?;
            let b = Tensor::zeros(&mib24, DType::F32, g)?;
            match Tensor::zeros(&mib24, DType::F32, g) {
                Err(e) if e.is_oom() => {}
                other => {
                    return Err(Error::shape(
                        "parity",
                        format!("expected OutOfMemory over the cap, got {other:?}"),
                    ));
                }
            }
            drop(b);
            let c = Tensor::zeros(&mib24, DType::F32, g)?;
            let m = cd.memory_stats();
            if m.allocated + m.cached > base + (64 << 20) {
                return Err(Error::shape("parity", format!("pool over its cap: {m:?}")));
            }
            cd.set_memory_limit(None);
            let d = Tensor::zeros(&mib24, DType::F32, g)?;
            drop((a, c, d));
            Ok(())
        })();
        cd.set_memory_limit(None);
        result?;
        let x = rand(&[1000], DType::F32, 122, 1.0)?;
        let mut o = check(g, &[&x], |t| ops::affine(&t[0], 2.0, 1.0))?;
        o.what = "cap enforced, cache reused, lifted".into();
        Ok(o)
    }));
    cases.push(case("oom-is-typed-and-recoverable", 0.0, |g| {
        let Device::Cuda(cd) = g else { unreachable!() };
        match Tensor::zeros(&[1usize << 40], DType::U8, g) {
            Err(e) if e.is_oom() => {}
            other => {
                return Err(Error::shape(
                    "parity",
                    format!("expected OutOfMemory, got {other:?}"),
                ));
            }
        }
        let x = rand(&[1000], DType::F32, 121, 1.0)?;
        let mut o = check(g, &[&x], |t| ops::affine(&t[0], 2.0, 1.0))?;
        let m = cd.memory_stats();
        o.what = format!(
            "then ok; allocated {} MiB, peak {} MiB",
            m.allocated >> 20,
            m.peak_allocated >> 20
        );
        Ok(o)
    }));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut cases = Vec::new();
    device_cases(&mut cases);
    elementwise_cases(&mut cases);
    norm_rope_cases(&mut cases);
    layout_cases(&mut cases);
    gemm_conv_cases(&mut cases);
    sparse_cases(&mut cases);
    attention_cases(&mut cases);
    if args.iter().any(|a| a == "--list") {
        for c in &cases {
            println!("{}", c.name);
        }
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let gpu = match Device::cuda(0) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("t2-gpu-parity: {e}");
            std::process::exit(2);
        }
    };
    if let Device::Cuda(d) = &gpu {
        println!(
            "# {} ({}), NVRTC {:?}",
            d.name(),
            d.arch(),
            t2_tensor::cuda::nvrtc_version().ok()
        );
    }
    println!(
        "{:<46} {:>11} {:>8} {:>6} {:>9} {:>8}  shape",
        "case", "max rel err", "tol", "", "cpu ms", "gpu ms"
    );
    let mut failed = 0;
    for c in cases
        .iter()
        .filter(|c| filters.is_empty() || filters.iter().any(|f| c.name.contains(f.as_str())))
    {
        let r = (c.run)(&gpu);
        match r {
            Ok(o) => {
                let ok = o.err <= c.tol;
                failed += usize::from(!ok);
                println!(
                    "{:<46} {:>11.3e} {:>8.0e} {:>6} {:>9.1} {:>8.2}  {}",
                    c.name,
                    o.err,
                    c.tol,
                    if ok { "ok" } else { "FAIL" },
                    o.cpu_ms,
                    o.gpu_ms,
                    o.what
                );
            }
            Err(e) => {
                failed += 1;
                println!(
                    "{:<46} {:>11} {:>8.0e} {:>6}  {e}",
                    c.name, "-", c.tol, "ERROR"
                );
            }
        }
    }
    println!("# {failed} failed");
    std::process::exit(i32::from(failed > 0));
}
