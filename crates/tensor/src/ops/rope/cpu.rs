//! Rotary embeddings on the CPU. `x [..., N, H, D]` is walked token by token (a token's H heads
//! share one phase row); leading dims are independent sequences with the same phases.

use rayon::prelude::*;

use crate::cpu::{f32_data, tensor_from_f32};
use crate::{Result, Tensor};

pub(super) fn rope_interleaved(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    const OP: &str = "rope_interleaved";
    let (n, h, d) = (x.dim(-3), x.dim(-2), x.dim(-1));
    let xs = f32_data(x, OP)?;
    let (cs, ss) = (f32_data(cos, OP)?, f32_data(sin, OP)?);
    let mut out = vec![0f32; xs.len()];
    if h * d > 0 {
        out.par_chunks_mut(h * d)
            .zip(xs.par_chunks(h * d))
            .enumerate()
            .for_each(|(tok, (o, v))| {
                let t = tok % n;
                let (c, s) = (&cs[t * d / 2..][..d / 2], &ss[t * d / 2..][..d / 2]);
                for (o, v) in o.chunks_exact_mut(d).zip(v.chunks_exact(d)) {
                    // The complex product (a + ib)(c + is), as torch's complex multiply.
                    for i in 0..d / 2 {
                        let (a, b) = (v[2 * i], v[2 * i + 1]);
                        o[2 * i] = a * c[i] - b * s[i];
                        o[2 * i + 1] = a * s[i] + b * c[i];
                    }
                }
            });
    }
    tensor_from_f32(out, x.shape(), x.dtype())
}

pub(super) fn rope_half_split(
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    prefix: usize,
) -> Result<Tensor> {
    const OP: &str = "rope_half_split";
    let (n, h, d) = (x.dim(-3), x.dim(-2), x.dim(-1));
    let half = d / 2;
    let xs = f32_data(x, OP)?;
    let (cs, ss) = (f32_data(cos, OP)?, f32_data(sin, OP)?);
    let mut out = vec![0f32; xs.len()];
    if h * d > 0 {
        out.par_chunks_mut(h * d)
            .zip(xs.par_chunks(h * d))
            .enumerate()
            .for_each(|(tok, (o, v))| {
                let t = tok % n;
                if t < prefix {
                    // CLS and register tokens pass through unrotated.
                    o.copy_from_slice(v);
                    return;
                }
                let (c, s) = (&cs[(t - prefix) * d..][..d], &ss[(t - prefix) * d..][..d]);
                for (o, v) in o.chunks_exact_mut(d).zip(v.chunks_exact(d)) {
                    // x·cos + rotate_half(x)·sin, rotate_half(x) = cat(−x[D/2..], x[..D/2]).
                    for j in 0..half {
                        o[j] = v[j] * c[j] + (-v[j + half]) * s[j];
                        o[j + half] = v[j + half] * c[j + half] + v[j] * s[j + half];
                    }
                }
            });
    }
    tensor_from_f32(out, x.shape(), x.dtype())
}
