//! CPU linear, LayerNorm, multi-head RMS norm and RoPE against float64 references on random
//! inputs, in every float dtype. Tolerances: see `common` (f32 error bound + 1 ulp of the output
//! dtype); each test states its f32 bound.

mod common;

use common::*;
use t2_tensor::{DType, Tensor, ops};

#[test]
fn linear_matches_f64_in_every_dtype() {
    // Odd sizes: 341 inputs (not a SIMD multiple), 129 outputs, 2×7 leading rows.
    let (m0, m1, k, n) = (2, 7, 341, 129);
    for dt in FLOATS {
        // Same-dtype weights, and bf16-valued weights/bias under an f32 activation (the
        // reference's fp32 layers loaded from bf16 checkpoints).
        for wdt in [dt, DType::BF16] {
            let (x, xv) = rand(&[m0, m1, k], dt, 1, 1.0);
            let (w, wv) = rand(&[n, k], wdt, 2, 0.2);
            let (b, bv) = rand(&[n], wdt, 3, 0.5);
            for bias in [true, false] {
                let y = ops::linear(&x, &w, bias.then_some(&b)).unwrap();
                assert_eq!(y.shape(), [m0, m1, n]);
                assert_eq!(y.dtype(), dt);
                let mut want = vec![0f64; m0 * m1 * n];
                let mut mag = vec![0f64; m0 * m1 * n];
                for r in 0..m0 * m1 {
                    for o in 0..n {
                        let (s, a) = dot(
                            xv[r * k..][..k].iter().map(|&v| v as f64),
                            wv[o * k..][..k].iter().map(|&v| v as f64),
                        );
                        let bo = if bias { bv[o] as f64 } else { 0.0 };
                        want[r * n + o] = s + bo;
                        mag[r * n + o] = a + bo.abs();
                    }
                }
                // f32 sum of K products plus the bias: |err| ≤ (K+2)·u·(Σ|x·w| + |b|).
                check("linear", &y, &want, |i| (k + 2) as f64 * U * mag[i]);
            }
        }
    }
}

#[test]
fn linear_rejects_bad_shapes_without_panicking() {
    let (x, _) = rand(&[3, 5], DType::F32, 1, 1.0);
    let (w, _) = rand(&[4, 6], DType::F32, 2, 1.0);
    assert!(ops::linear(&x, &w, None).is_err());
    let s = Tensor::from_slice(&[1.0f32], &[], &t2_tensor::Device::Cpu).unwrap();
    assert!(ops::linear(&s, &w, None).is_err());
}

/// f64 LayerNorm of one row, with its error scale `(max|x| + |x − μ|)/σ·|w| + |b|` per element.
fn layer_norm_ref(
    x: &[f32],
    w: Option<&[f32]>,
    b: Option<&[f32]>,
    eps: f64,
) -> (Vec<f64>, Vec<f64>) {
    let c = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / c;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / c;
    let rstd = 1.0 / (var + eps).sqrt();
    let xmax = x.iter().fold(0f64, |m, &v| m.max((v as f64).abs()));
    x.iter()
        .enumerate()
        .map(|(j, &v)| {
            let wj = w.map_or(1.0, |w| w[j] as f64);
            let bj = b.map_or(0.0, |b| b[j] as f64);
            let y = (v as f64 - mean) * rstd * wj + bj;
            let scale = (xmax + (v as f64 - mean).abs()) * rstd * wj.abs() + bj.abs();
            (y, scale)
        })
        .unzip()
}

#[test]
fn layer_norm_matches_f64_affine_or_not() {
    let (rows, c) = (9, 341);
    for dt in FLOATS {
        // A mean offset of 3 makes the two-pass variance matter (E[x²]−E[x]² would cancel).
        let xs: Vec<f32> = t2_tensor::testing::random_vec(rows * c, 7)
            .iter()
            .map(|v| v + 3.0)
            .collect();
        let (x, xv) = tensor(&xs, &[rows, c], dt);
        // Affine params in f32 (the reference's fp32 LN weights on bf16 activations) and in
        // the activation dtype.
        for pdt in [DType::F32, dt] {
            let (w, wv) = rand(&[c], pdt, 8, 1.5);
            let (b, bv) = rand(&[c], pdt, 9, 0.5);
            for (affine, eps) in [(true, 1e-6f32), (false, 1e-5)] {
                let y = if affine {
                    ops::layer_norm(&x, Some(&w), Some(&b), eps).unwrap()
                } else {
                    ops::layer_norm(&x, None, None, eps).unwrap()
                };
                assert_eq!(y.dtype(), dt);
                let (mut want, mut scale) = (Vec::new(), Vec::new());
                for r in 0..rows {
                    let (wr, br) = if affine {
                        (Some(&wv[..]), Some(&bv[..]))
                    } else {
                        (None, None)
                    };
                    let (y, s) = layer_norm_ref(&xv[r * c..][..c], wr, br, eps as f64);
                    want.extend(y);
                    scale.extend(s);
                }
                // Mean and variance are f32 sums over C: the mean's error is ≤ C·u·max|x|,
                // the variance's relative error ≤ (C+3)·u; both pass through 1/σ and w.
                check("layer_norm", &y, &want, |i| (c + 8) as f64 * U * scale[i]);
            }
        }
    }
}

#[test]
fn rms_norm_heads_matches_f64_and_clamps_tiny_norms() {
    let (n, h, d) = (11, 3, 128);
    for dt in FLOATS {
        let (mut x, mut xv) = rand(&[n, h, d], dt, 11, 1.0);
        if dt != DType::F16 {
            // Token 4, head 1: a vector with ‖x‖ ≈ 1.1e-13 < 1e-12, where F.normalize's clamp
            // takes over (f16 cannot hold values that small, so it keeps random data).
            for v in &mut xv[(4 * h + 1) * d..][..d] {
                *v = round(dt, 1e-14);
            }
            x = tensor(&xv, &[n, h, d], dt).0;
        }
        let (g, gv) = rand(&[h, d], DType::F32, 12, 2.0);
        let y = ops::rms_norm_heads(&x, &g).unwrap();
        let mut want = vec![0f64; n * h * d];
        for t in 0..n * h {
            let v = &xv[t * d..][..d];
            let norm = v.iter().map(|&a| (a as f64).powi(2)).sum::<f64>().sqrt();
            for j in 0..d {
                want[t * d + j] =
                    v[j] as f64 / norm.max(1e-12) * gv[(t % h) * d + j] as f64 * (d as f64).sqrt();
            }
        }
        // The norm is an f32 sum of D squares (relative error ≤ (D+2)·u/2 after the sqrt),
        // then one division and two products.
        check("rms_norm_heads", &y, &want, |i| {
            (d + 8) as f64 * U * want[i].abs()
        });
    }
}

/// Random phases `[N, P]` as cos and sin tensors (f32), and their values.
fn phases(n: usize, p: usize, seed: u64) -> (Tensor, Tensor, Vec<f32>, Vec<f32>) {
    let ang: Vec<f32> = t2_tensor::testing::random_vec(n * p, seed)
        .iter()
        .map(|a| a * 3.1)
        .collect();
    let c: Vec<f32> = ang.iter().map(|a| a.cos()).collect();
    let s: Vec<f32> = ang.iter().map(|a| a.sin()).collect();
    let (ct, _) = tensor(&c, &[n, p], DType::F32);
    let (st, _) = tensor(&s, &[n, p], DType::F32);
    (ct, st, c, s)
}

#[test]
fn rope_interleaved_matches_f64() {
    // Two leading sequences sharing the phases; 13 tokens, 3 heads, D = 10.
    let (bn, n, h, d) = (2, 13, 3, 10);
    let (ct, st, c, s) = phases(n, d / 2, 21);
    for dt in FLOATS {
        let (x, xv) = rand(&[bn, n, h, d], dt, 22, 1.0);
        let y = ops::rope_interleaved(&x, &ct, &st).unwrap();
        let mut want = vec![0f64; xv.len()];
        let mut mag = vec![0f64; xv.len()];
        for (t, chunk) in xv.chunks(d).enumerate() {
            let tok = (t / h) % n;
            for i in 0..d / 2 {
                let (a, b) = (chunk[2 * i] as f64, chunk[2 * i + 1] as f64);
                let (cc, ss) = (c[tok * d / 2 + i] as f64, s[tok * d / 2 + i] as f64);
                want[t * d + 2 * i] = a * cc - b * ss;
                want[t * d + 2 * i + 1] = a * ss + b * cc;
                let m = (a * cc).abs() + (b * ss).abs() + (a * ss).abs() + (b * cc).abs();
                mag[t * d + 2 * i] = m;
                mag[t * d + 2 * i + 1] = m;
            }
        }
        // Two products and one sum in f32: |err| ≤ 3·u·(|a·c| + |b·s|).
        check("rope_interleaved", &y, &want, |i| 3.0 * U * mag[i]);
    }
}

#[test]
fn rope_half_split_matches_f64_and_skips_the_prefix() {
    let (n, h, d, prefix) = (13, 3, 8, 5);
    let (ct, st, c, s) = phases(n - prefix, d, 31);
    for dt in FLOATS {
        let (x, xv) = rand(&[1, n, h, d], dt, 32, 1.0);
        let y = ops::rope_half_split(&x, &ct, &st, prefix).unwrap();
        let half = d / 2;
        let mut want = vec![0f64; xv.len()];
        let mut mag = vec![0f64; xv.len()];
        for (t, v) in xv.chunks(d).enumerate() {
            let tok = t / h;
            for j in 0..d {
                if tok < prefix {
                    want[t * d + j] = v[j] as f64;
                    continue;
                }
                let row = (tok - prefix) * d;
                let rot = if j < half { -v[j + half] } else { v[j - half] } as f64;
                let (a, b) = (v[j] as f64 * c[row + j] as f64, rot * s[row + j] as f64);
                want[t * d + j] = a + b;
                mag[t * d + j] = a.abs() + b.abs();
            }
        }
        // Prefix tokens are copied exactly (mag 0 leaves only the zero-width ulp term for an
        // exact value, which the copy meets); rotated ones carry 3·u·(|x·cos| + |r·sin|).
        check("rope_half_split", &y, &want, |i| 3.0 * U * mag[i]);
        let yv = y.to_vec_f32().unwrap();
        assert_eq!(&yv[..prefix * h * d], &xv[..prefix * h * d]);
    }
}
