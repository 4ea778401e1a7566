//! Element-wise binary ops with broadcasting, and the adaLN steps with the reference's per-step
//! rounding, on the CPU.

use rayon::prelude::*;

use super::BinaryOp;
use crate::cpu::{PAR_MIN, f32_data, tensor_from_f32};
use crate::dtype::round_to;
use crate::{DType, Result, Tensor};

/// Elements handed to one rayon task: below this, task overhead exceeds the arithmetic.
const MIN_ELEMS_PER_TASK: usize = 4096;

pub(super) fn binary(
    a: &Tensor,
    b: &Tensor,
    op: BinaryOp,
    shape: &[usize],
    dtype: DType,
) -> Result<Tensor> {
    const OP: &str = "binary";
    let (av, bv) = (f32_data(a, OP)?, f32_data(b, OP)?);
    let (sa, sb) = ((&av[..], a.shape()), (&bv[..], b.shape()));
    // One monomorphised loop per op, so the arithmetic inlines and vectorises.
    let out = match op {
        BinaryOp::Add => broadcast_apply(sa, sb, shape, |x, y| x + y),
        BinaryOp::Sub => broadcast_apply(sa, sb, shape, |x, y| x - y),
        BinaryOp::Mul => broadcast_apply(sa, sb, shape, |x, y| x * y),
    };
    tensor_from_f32(out, shape, dtype)
}

/// `f(a, b)` over the broadcast `shape`, in f32.
fn broadcast_apply(
    (av, a_shape): (&[f32], &[usize]),
    (bv, b_shape): (&[f32], &[usize]),
    shape: &[usize],
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let mut out = vec![0f32; n];
    if a_shape == shape && b_shape == shape {
        // No broadcasting: one flat zip.
        out.par_iter_mut()
            .with_min_len(MIN_ELEMS_PER_TASK)
            .zip(av.par_iter().zip(bv.par_iter()))
            .for_each(|(o, (&x, &y))| *o = f(x, y));
    } else if n > 0 {
        let last = *shape.last().unwrap_or(&1);
        let (sa, sb) = (
            broadcast_strides(a_shape, shape),
            broadcast_strides(b_shape, shape),
        );
        let (ia, ib) = (sa[sa.len() - 1], sb[sb.len() - 1]);
        let rows_per_task = (MIN_ELEMS_PER_TASK / last).max(1);
        out.par_chunks_mut(last * rows_per_task)
            .enumerate()
            .for_each(|(task, chunk)| {
                for (r, row) in chunk.chunks_mut(last).enumerate() {
                    let (oa, ob) = row_offsets(task * rows_per_task + r, shape, &sa, &sb);
                    for (j, o) in row.iter_mut().enumerate() {
                        *o = f(av[oa + j * ia], bv[ob + j * ib]);
                    }
                }
            });
    }
    out
}

/// Element strides of `inp` laid out against `out` (right-aligned; 0 on broadcast dims).
fn broadcast_strides(inp: &[usize], out: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; out.len().max(1)];
    let mut acc = 1;
    for (i, &d) in inp.iter().enumerate().rev() {
        let o = out.len() - inp.len() + i;
        strides[o] = if d == 1 { 0 } else { acc };
        acc *= d;
    }
    strides
}

/// Offsets into `a` and `b` of the first element of output row `row` (all dims but the last).
fn row_offsets(mut row: usize, shape: &[usize], sa: &[usize], sb: &[usize]) -> (usize, usize) {
    let (mut oa, mut ob) = (0, 0);
    for d in (0..shape.len().saturating_sub(1)).rev() {
        let i = row % shape[d];
        row /= shape[d];
        oa += i * sa[d];
        ob += i * sb[d];
    }
    (oa, ob)
}

/// Runs `f(x_row, out_row)` over rows of C elements, in parallel for large tensors.
fn per_row(xs: &[f32], c: usize, f: impl Fn(usize, &[f32], &mut [f32]) + Sync + Send) -> Vec<f32> {
    let mut out = vec![0f32; xs.len()];
    if c == 0 {
        return out;
    }
    let rows_per_task = (MIN_ELEMS_PER_TASK / c).max(1);
    if xs.len() < PAR_MIN {
        for (r, (o, x)) in out.chunks_mut(c).zip(xs.chunks(c)).enumerate() {
            f(r, x, o);
        }
    } else {
        out.par_chunks_mut(c * rows_per_task)
            .zip(xs.par_chunks(c * rows_per_task))
            .enumerate()
            .for_each(|(t, (o, x))| {
                for (r, (o, x)) in o.chunks_mut(c).zip(x.chunks(c)).enumerate() {
                    f(t * rows_per_task + r, x, o);
                }
            });
    }
    out
}

pub(super) fn modulate(x: &Tensor, shift: &Tensor, scale: &Tensor) -> Result<Tensor> {
    const OP: &str = "modulate";
    let dt = x.dtype();
    let c = x.dim(-1);
    let xs = f32_data(x, OP)?;
    let sh = f32_data(shift, OP)?;
    // Step 1 of the reference: `1 + scale`, a tensor op of its own, rounded to the dtype.
    let one_plus: Vec<f32> = f32_data(scale, OP)?
        .iter()
        .map(|&s| round_to(dt, 1.0 + s))
        .collect();
    let out = per_row(&xs, c, |_, x, o| {
        for j in 0..c {
            // Steps 2 and 3: the product and the sum, each rounded to the dtype.
            let p = round_to(dt, x[j] * one_plus[j]);
            o[j] = p + sh[j];
        }
    });
    tensor_from_f32(out, x.shape(), dt)
}

pub(super) fn gated_residual(x: &Tensor, h: &Tensor, gate: &Tensor) -> Result<Tensor> {
    const OP: &str = "gated_residual";
    let dt = x.dtype();
    let c = x.dim(-1);
    let xs = f32_data(x, OP)?;
    let hs = f32_data(h, OP)?;
    let g = f32_data(gate, OP)?;
    let out = per_row(&xs, c, |r, x, o| {
        let h = &hs[r * c..(r + 1) * c];
        for j in 0..c {
            // `h·gate` rounded to the dtype, then the sum (rounded by the output conversion).
            o[j] = x[j] + round_to(dt, h[j] * g[j]);
        }
    });
    tensor_from_f32(out, x.shape(), dt)
}
