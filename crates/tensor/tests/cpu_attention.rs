//! CPU blocked attention against a float64 softmax reference. Sizes straddle the kernel's
//! blocks (67 queries vs 64-row blocks, 300 keys vs 256-key blocks) so that partial blocks and
//! the running-max rescaling are exercised. Tolerances: see `common`; bound stated below.

mod common;

use common::*;
use t2_tensor::{DType, ops};

/// f64 attention for `q [B, Nq, H, D]`, `k [B, Nk, H, D]`, `v [B, Nk, H, Dv]`, and per output
/// element the f32 error bound
/// `(2·Δs + (Nk + D + 8)·u)·Σ_j p_j·|v_j|`, where `Δs = (D+2)·u·max_j Σ_d |q·k|·|scale|` bounds the
/// f32 error of one score (a D-term dot product) and `(Nk + D + 8)·u` covers the running sums,
/// the exponentials and the final division.
#[allow(clippy::too_many_arguments)]
fn attention_ref(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    (b, nq, nk, h, d, dv): (usize, usize, usize, usize, usize, usize),
    scale: f64,
) -> (Vec<f64>, Vec<f64>) {
    let mut out = vec![0f64; b * nq * h * dv];
    let mut bound = vec![0f64; b * nq * h * dv];
    for bi in 0..b {
        for hi in 0..h {
            for i in 0..nq {
                let qi = &q[((bi * nq + i) * h + hi) * d..][..d];
                let mut s = Vec::with_capacity(nk);
                let mut smag = 0f64;
                for j in 0..nk {
                    let kj = &k[((bi * nk + j) * h + hi) * d..][..d];
                    let (dot, mag) =
                        dot(qi.iter().map(|&x| x as f64), kj.iter().map(|&x| x as f64));
                    s.push(dot * scale);
                    smag = smag.max(mag * scale.abs());
                }
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let p: Vec<f64> = s.iter().map(|&x| (x - m).exp()).collect();
                let l: f64 = p.iter().sum();
                let ds = (d + 2) as f64 * U * smag;
                for c in 0..dv {
                    let (mut o, mut pv) = (0f64, 0f64);
                    for j in 0..nk {
                        let vj = v[((bi * nk + j) * h + hi) * dv + c] as f64;
                        o += p[j] * vj;
                        pv += p[j] * vj.abs();
                    }
                    let at = ((bi * nq + i) * h + hi) * dv + c;
                    out[at] = o / l;
                    bound[at] = (2.0 * ds + (nk + d + 8) as f64 * U) * pv / l;
                }
            }
        }
    }
    (out, bound)
}

fn run_case(dims: (usize, usize, usize, usize, usize, usize), scale: f32, qmul: f32) {
    let (b, nq, nk, h, d, dv) = dims;
    for dt in FLOATS {
        let (q, qv) = rand(&[b, nq, h, d], dt, 80, qmul);
        let (k, kv) = rand(&[b, nk, h, d], dt, 81, 1.0);
        let (v, vv) = rand(&[b, nk, h, dv], dt, 82, 1.0);
        let y = ops::attention(&q, &k, &v, scale).unwrap();
        assert_eq!(y.shape(), [b, nq, h, dv]);
        assert_eq!(y.dtype(), dt);
        let (want, bound) = attention_ref(&qv, &kv, &vv, dims, scale as f64);
        check("attention", &y, &want, |i| bound[i]);
    }
}

#[test]
fn self_attention_with_partial_blocks_matches_f64() {
    // B = 2, N = 300 (one full and one partial key block; 5 query blocks, the last of 44),
    // 3 heads, D = 24; scale 1/√D.
    run_case((2, 300, 300, 3, 24, 24), 1.0 / 24f32.sqrt(), 1.0);
}

#[test]
fn cross_attention_with_other_value_width_matches_f64() {
    // Nq ≠ Nk and Dv ≠ D (the op allows it); 67 queries against 530 keys (3 key blocks).
    run_case((1, 67, 530, 2, 16, 12), 0.25, 1.0);
}

#[test]
fn peaked_scores_exercise_the_running_max() {
    // Scores up to ~±60: a naive exp without max subtraction overflows, and the max of later
    // key blocks often exceeds the first block's, so the accumulator must be rescaled.
    run_case((1, 70, 600, 1, 32, 32), 1.0, 8.0);
}

#[test]
fn no_keys_gives_zeros() {
    let (q, _) = rand(&[1, 3, 2, 4], DType::F32, 1, 1.0);
    let (k, _) = rand(&[1, 0, 2, 4], DType::F32, 2, 1.0);
    let y = ops::attention(&q, &k, &k, 0.5).unwrap();
    assert_eq!(y.to_vec_f32().unwrap(), vec![0.0; 24]);
}

#[test]
fn mismatched_heads_are_an_error() {
    let (q, _) = rand(&[1, 3, 2, 4], DType::F32, 1, 1.0);
    let (k, _) = rand(&[1, 5, 3, 4], DType::F32, 2, 1.0);
    assert!(ops::attention(&q, &k, &k, 0.5).is_err());
    let (kb, _) = rand(&[1, 5, 2, 4], DType::BF16, 2, 1.0);
    assert!(
        ops::attention(&q, &kb, &kb, 0.5).is_err(),
        "dtypes must match"
    );
}
