//! Blocked softmax attention on the CPU (the flash-attention recurrence, in f32).
//!
//! Work is split into (batch item, head, block of `BQ` queries) tasks that rayon runs in
//! parallel; each task walks the keys in blocks of `BK`: `S = Q·Kᵀ` (a GEMM), a running row
//! max `m` and row sum `l` rescale the accumulator `O` when the max grows, then
//! `O += exp(S·scale − m)·V` (a second GEMM). Memory per task is `BQ·BK + BQ·Dv` floats, so no
//! `Nq × Nk` score matrix ever exists. Tasks write a heads-major `[B, H, Nq, Dv]` buffer (each
//! owns a contiguous slab), transposed to `[B, Nq, H, Dv]` at the end.

use rayon::prelude::*;

use crate::cpu::gemm::{Mat, MatMut, Par, matmul};
use crate::cpu::math::exp_nonpositive;
use crate::cpu::{f32_data, tensor_from_f32};
use crate::{Result, Tensor};

/// Queries per task and keys per block. Measured with `t2-cpu-bench` (N = 1024, 12 heads of
/// 128): 256 × 256 runs 1.3× faster than 128 × 256 and 1.4× faster than 64 × 256, because each
/// small GEMM pays a fixed packing cost; the score block (256 KiB) still fits in L2.
const BQ: usize = 256;
const BK: usize = 256;

pub(super) fn attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f32) -> Result<Tensor> {
    const OP: &str = "attention";
    let (b, nq, h, d) = (q.dim(0), q.dim(1), q.dim(2), q.dim(3));
    let (nk, dv) = (k.dim(1), v.dim(3));
    let shape = [b, nq, h, dv];
    if b * nq * h * dv == 0 {
        return tensor_from_f32(vec![], &shape, q.dtype());
    }
    // Everything per (batch, head) contiguous: [B, H, N, C], so that each block is one dense
    // panel for the GEMMs.
    let qs = heads_major(&f32_data(q, OP)?, nq, h, d);
    let ks = heads_major(&f32_data(k, OP)?, nk, h, d);
    let vs = heads_major(&f32_data(v, OP)?, nk, h, dv);

    let mut out = vec![0f32; b * h * nq * dv];
    let tasks = out
        .par_chunks_mut(nq * dv)
        .enumerate()
        .flat_map(|(bh, ob)| {
            ob.par_chunks_mut(BQ * dv)
                .enumerate()
                .map(move |(qb, slab)| (bh, qb * BQ, slab))
        });
    tasks.for_each_init(
        || vec![0f32; BQ * BK],
        |scores, (bh, q0, slab)| {
            let rows = slab.len() / dv;
            let qm = Mat::row_major(&qs[(bh * nq + q0) * d..], rows, d);
            let kh = &ks[bh * nk * d..(bh + 1) * nk * d];
            let vh = &vs[bh * nk * dv..(bh + 1) * nk * dv];
            head_attention(qm, kh, vh, (nk, d, dv), scale, scores, slab);
        },
    );
    let out = tokens_major(&out, nq, h, dv);
    tensor_from_f32(out, &shape, q.dtype())
}

/// `x [B, N, H, C]` → `[B, H, N, C]`.
fn heads_major(x: &[f32], n: usize, h: usize, c: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(n * c).enumerate().for_each(|(bh, o)| {
        let (bi, hi) = (bh / h, bh % h);
        for t in 0..n {
            o[t * c..][..c].copy_from_slice(&x[((bi * n + t) * h + hi) * c..][..c]);
        }
    });
    out
}

/// `x [B, H, N, C]` → `[B, N, H, C]`.
fn tokens_major(x: &[f32], n: usize, h: usize, c: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(h * c).enumerate().for_each(|(bt, o)| {
        let (bi, t) = (bt / n, bt % n);
        for hi in 0..h {
            o[hi * c..][..c].copy_from_slice(&x[((bi * h + hi) * n + t) * c..][..c]);
        }
    });
    out
}

/// One head for one query block: writes the normalised outputs `[rows, Dv]` into `acc`.
fn head_attention(
    qm: Mat<'_>,
    kh: &[f32],
    vh: &[f32],
    (nk, d, dv): (usize, usize, usize),
    scale: f32,
    scores: &mut [f32],
    acc: &mut [f32],
) {
    let rows = qm.rows();
    acc.fill(0.0);
    let mut m = [f32::NEG_INFINITY; BQ];
    let mut l = [0f32; BQ];
    for k0 in (0..nk).step_by(BK) {
        let cols = BK.min(nk - k0);
        let s = &mut scores[..rows * cols];
        matmul(
            MatMut::row_major(s, rows, cols),
            qm,
            Mat::row_major(&kh[k0 * d..], cols, d).t(),
            false,
            Par::Serial,
        );
        for r in 0..rows {
            let row = &mut s[r * cols..(r + 1) * cols];
            let block_max = row
                .iter()
                .fold(f32::NEG_INFINITY, |mx, &x| mx.max(x * scale));
            let m_new = m[r].max(block_max);
            if m_new == f32::NEG_INFINITY {
                // Every score so far is −∞ (only with infinite inputs): nothing to add yet.
                row.fill(0.0);
                continue;
            }
            // Rescale what was accumulated under the old max (exp(−∞) = 0 on the first block).
            // Both exponents are ≤ 0 by construction of the max.
            let alpha = exp_nonpositive(m[r] - m_new);
            row.iter_mut()
                .for_each(|x| *x = exp_nonpositive(*x * scale - m_new));
            let sum = sum_f32(row);
            l[r] = l[r] * alpha + sum;
            m[r] = m_new;
            if alpha != 1.0 {
                acc[r * dv..(r + 1) * dv]
                    .iter_mut()
                    .for_each(|a| *a *= alpha);
            }
        }
        matmul(
            MatMut::row_major(acc, rows, dv),
            Mat::row_major(s, rows, cols),
            Mat::row_major(&vh[k0 * dv..], cols, dv),
            true,
            Par::Serial,
        );
    }
    for r in 0..rows {
        // No keys at all gives zeros, as PyTorch's empty softmax-matmul does.
        let inv = if l[r] > 0.0 { 1.0 / l[r] } else { 0.0 };
        acc[r * dv..(r + 1) * dv].iter_mut().for_each(|a| *a *= inv);
    }
}

/// Sum with 8 independent partial sums: vectorises, and its error (like the sequential sum's)
/// is ≤ n·u·Σ|x|.
fn sum_f32(xs: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = xs.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + tail
}
