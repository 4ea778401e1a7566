//! LayerNorm and the multi-head RMS norm on the CPU: one row (or head vector) per work item,
//! f32 throughout, the result rounded once to x's dtype.

use rayon::prelude::*;

use crate::cpu::{f32_data, tensor_from_f32};
use crate::{Result, Tensor};

/// Rows handed to one rayon task: enough work to amortise the task, few enough to balance.
const ROWS_PER_TASK: usize = 16;

pub(super) fn layer_norm(
    x: &Tensor,
    w: Option<&Tensor>,
    b: Option<&Tensor>,
    eps: f32,
) -> Result<Tensor> {
    const OP: &str = "layer_norm";
    let c = x.dim(-1);
    let xs = f32_data(x, OP)?;
    let ws = w.map(|t| f32_data(t, OP)).transpose()?;
    let bs = b.map(|t| f32_data(t, OP)).transpose()?;
    let mut out = vec![0f32; xs.len()];
    if c > 0 {
        out.par_chunks_mut(c * ROWS_PER_TASK)
            .zip(xs.par_chunks(c * ROWS_PER_TASK))
            .for_each(|(o_rows, x_rows)| {
                for (o, row) in o_rows.chunks_exact_mut(c).zip(x_rows.chunks_exact(c)) {
                    // Two passes (mean, then the centred sum of squares) rather than E[x²]−E[x]²,
                    // which cancels catastrophically when |mean| ≫ std.
                    let mean = row.iter().sum::<f32>() / c as f32;
                    let var = row.iter().map(|&v| (v - mean) * (v - mean)).sum::<f32>() / c as f32;
                    let rstd = 1.0 / (var + eps).sqrt();
                    for (j, (o, &v)) in o.iter_mut().zip(row).enumerate() {
                        let mut y = (v - mean) * rstd;
                        if let Some(ws) = &ws {
                            y *= ws[j];
                        }
                        if let Some(bs) = &bs {
                            y += bs[j];
                        }
                        *o = y;
                    }
                }
            });
    }
    tensor_from_f32(out, x.shape(), x.dtype())
}

pub(super) fn rms_norm_heads(x: &Tensor, gamma: &Tensor) -> Result<Tensor> {
    const OP: &str = "rms_norm_heads";
    let (h, d) = (x.dim(-2), x.dim(-1));
    let xs = f32_data(x, OP)?;
    let gs = f32_data(gamma, OP)?;
    let sqrt_d = (d as f32).sqrt();
    let mut out = vec![0f32; xs.len()];
    if h * d > 0 {
        // One task per token (its H head vectors share the gamma rows in order).
        out.par_chunks_mut(h * d)
            .zip(xs.par_chunks(h * d))
            .for_each(|(o_tok, x_tok)| {
                for ((o, v), g) in o_tok
                    .chunks_exact_mut(d)
                    .zip(x_tok.chunks_exact(d))
                    .zip(gs.chunks_exact(d))
                {
                    // F.normalize: x / max(‖x‖₂, 1e-12); then · γ · √D, in PyTorch's order.
                    let norm = v.iter().map(|&a| a * a).sum::<f32>().sqrt();
                    let denom = norm.max(1e-12);
                    for ((o, &a), &g) in o.iter_mut().zip(v).zip(g) {
                        *o = (a / denom) * g * sqrt_d;
                    }
                }
            });
    }
    tensor_from_f32(out, x.shape(), x.dtype())
}
