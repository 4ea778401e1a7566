//! Shared helpers for the CPU op tests: inputs rounded to a dtype, and the tolerance rule.
//!
//! Tolerance rule used throughout: an output element `g` of dtype `dt` passes against the
//! float64 reference `r` when `|g − r| ≤ bound + ulp_dt(r)`, where `bound` is the analysed error
//! of the f32 computation (stated per test; for a sum of K products it is the classical
//! `K·u·Σ|terms|`, u = 2⁻²⁴) and `ulp_dt(r)` covers the single final rounding to `dt` (one ulp of
//! the exact result in that dtype: "within 1 bf16 ulp" for bf16 outputs).
#![allow(dead_code)]

use t2_tensor::testing::random_vec;
use t2_tensor::{DType, Device, Tensor, bf16, f16};

/// f32 unit roundoff (half an ulp at 1).
pub const U: f64 = 1.0 / (1u64 << 24) as f64;

pub const FLOATS: [DType; 3] = [DType::F32, DType::F16, DType::BF16];

/// `v` rounded (nearest-even) to `dt` and back.
pub fn round(dt: DType, v: f32) -> f32 {
    match dt {
        DType::F16 => f16::from_f32(v).to_f32(),
        DType::BF16 => bf16::from_f32(v).to_f32(),
        _ => v,
    }
}

/// A CPU tensor of `dt` holding `vals` rounded to `dt`, and the rounded values (the exact
/// inputs the reference must use).
pub fn tensor(vals: &[f32], shape: &[usize], dt: DType) -> (Tensor, Vec<f32>) {
    let r: Vec<f32> = vals.iter().map(|&v| round(dt, v)).collect();
    let t = match dt {
        DType::F32 => Tensor::from_slice(&r, shape, &Device::Cpu),
        DType::F16 => Tensor::from_vec(
            r.iter().map(|&v| f16::from_f32(v)).collect(),
            shape,
            &Device::Cpu,
        ),
        DType::BF16 => Tensor::from_vec(
            r.iter().map(|&v| bf16::from_f32(v)).collect(),
            shape,
            &Device::Cpu,
        ),
        _ => panic!("tensor(): float dtypes only"),
    }
    .unwrap();
    (t, r)
}

/// Random values in `[-scale, scale)` (never exactly zero in practice), as a tensor of `dt`.
pub fn rand(shape: &[usize], dt: DType, seed: u64, scale: f32) -> (Tensor, Vec<f32>) {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = random_vec(n, seed).iter().map(|x| x * scale).collect();
    tensor(&v, shape, dt)
}

/// One ulp of `|r|` in `dt` (normal range; the subnormal spacing below it).
pub fn ulp(dt: DType, r: f64) -> f64 {
    let (mant, min_exp) = match dt {
        DType::F32 => (23, -126),
        DType::F16 => (10, -14),
        DType::BF16 => (7, -126),
        _ => panic!("ulp(): float dtypes only"),
    };
    let e = if r == 0.0 {
        min_exp
    } else {
        (r.abs().log2().floor() as i32).max(min_exp)
    };
    2f64.powi(e - mant)
}

/// Asserts the tolerance rule above for every element; `bound(i)` is the f32 error bound.
pub fn check(what: &str, got: &Tensor, want: &[f64], bound: impl Fn(usize) -> f64) {
    let dt = got.dtype();
    let g = got.to_vec_f32().unwrap();
    assert_eq!(g.len(), want.len(), "{what}: element count");
    for (i, (&g, &w)) in g.iter().zip(want).enumerate() {
        let allowed = bound(i) + ulp(dt, w);
        let err = (g as f64 - w).abs();
        assert!(
            err <= allowed,
            "{what} ({dt:?}): element {i}: got {g}, want {w}, |err| {err:e} > allowed {allowed:e}"
        );
    }
}

/// Asserts bit-for-bit equality of two tensors' values (same dtype and shape).
pub fn check_exact(what: &str, got: &Tensor, want: &[f32]) {
    let g = got.to_vec_f32().unwrap();
    assert_eq!(g.len(), want.len(), "{what}: element count");
    for (i, (a, b)) in g.iter().zip(want).enumerate() {
        assert!(
            a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
            "{what}: element {i}: got {a}, want {b}"
        );
    }
}

/// `Σ_k a[k]·b[k]` and `Σ_k |a[k]·b[k]|` in f64.
pub fn dot(a: impl Iterator<Item = f64>, b: impl Iterator<Item = f64>) -> (f64, f64) {
    a.zip(b)
        .fold((0.0, 0.0), |(s, m), (x, y)| (s + x * y, m + (x * y).abs()))
}
