//! Blocked softmax attention on the CPU (the flash-attention recurrence, in f32).
//!
//! Work is split into (batch item, block of `BQ` queries) tasks that rayon runs in parallel;
//! each task walks its heads and, per head, the keys in blocks of `BK`:
//! `S = Q·Kᵀ` (a GEMM), a running row max `m` and row sum `l` rescale the accumulator
//! `O` when the max grows, then `O += exp(S·scale − m)·V` (a second GEMM). Memory per task is
//! `BQ·BK + BQ·Dv` floats, so no `Nq × Nk` score matrix ever exists.

use rayon::prelude::*;

use crate::cpu::gemm::{Mat, MatMut, Par, matmul};
use crate::cpu::{f32_data, tensor_from_f32};
use crate::{Result, Tensor};

/// Queries per task: 64 rows keep the score block in L2 next to a key block.
const BQ: usize = 64;
/// Keys per block: long enough for the GEMMs to run at speed, short enough for L2.
const BK: usize = 256;

pub(super) fn attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f32) -> Result<Tensor> {
    const OP: &str = "attention";
    let (b, nq, h, d) = (q.dim(0), q.dim(1), q.dim(2), q.dim(3));
    let (nk, dv) = (k.dim(1), v.dim(3));
    let qs = f32_data(q, OP)?;
    // Keys and values per (batch, head) contiguous: [B, H, Nk, D] and [B, H, Nk, Dv], so that
    // each key block is one dense panel for the GEMM.
    let ks = heads_major(&f32_data(k, OP)?, nk, h, d);
    let vs = heads_major(&f32_data(v, OP)?, nk, h, dv);

    let mut out = vec![0f32; b * nq * h * dv];
    if out.is_empty() {
        return tensor_from_f32(out, &[b, nq, h, dv], q.dtype());
    }
    // Tasks: (batch item, query block), each owning its contiguous [rows, H, Dv] output slab.
    let tasks = out
        .par_chunks_mut(nq * h * dv)
        .enumerate()
        .flat_map(|(bi, ob)| {
            ob.par_chunks_mut(BQ * h * dv)
                .enumerate()
                .map(move |(qb, slab)| (bi, qb * BQ, slab))
        });
    tasks.for_each_init(
        || (vec![0f32; BQ * BK], vec![0f32; BQ * dv]),
        |(scores, acc), (bi, q0, out_block)| {
            let rows = BQ.min(nq - q0);
            for hi in 0..h {
                // Q block of this head: rows strided by H·D in the [B, Nq, H, D] input.
                let q_off = ((bi * nq + q0) * h + hi) * d;
                let qm = Mat::strided(&qs[q_off..], rows, d, h * d, 1);
                let kv = bi * h + hi;
                let kh = &ks[kv * nk * d..(kv + 1) * nk * d];
                let vh = &vs[kv * nk * dv..(kv + 1) * nk * dv];
                let o = head_attention(qm, kh, vh, (nk, d, dv), scale, scores, acc);
                for r in 0..rows {
                    out_block[(r * h + hi) * dv..][..dv].copy_from_slice(&o[r * dv..][..dv]);
                }
            }
        },
    );
    tensor_from_f32(out, &[b, nq, h, dv], q.dtype())
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

/// One head for one query block: returns `acc`, holding the normalised outputs `[rows, Dv]`.
fn head_attention<'a>(
    qm: Mat<'_>,
    kh: &[f32],
    vh: &[f32],
    (nk, d, dv): (usize, usize, usize),
    scale: f32,
    scores: &mut [f32],
    acc: &'a mut [f32],
) -> &'a [f32] {
    let rows = qm.rows();
    let acc = &mut acc[..rows * dv];
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
            let alpha = (m[r] - m_new).exp();
            let mut sum = 0f32;
            for x in row.iter_mut() {
                *x = (*x * scale - m_new).exp();
                sum += *x;
            }
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
    acc
}
