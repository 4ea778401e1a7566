//! Dense convolutions on the CPU as im2col + one f32 GEMM per (batch item, slab), plus the
//! exact resampling ops (pixel shuffle, max-pool).

use rayon::prelude::*;

use crate::cpu::gemm::{Mat, MatMut, Par, matmul};
use crate::cpu::{ElemMap, cpu_tensor, f32_data, map_elems, tensor_from_f32};
use crate::{Error, Result, Tensor};

/// Upper bound on one im2col buffer, in floats (64 MiB): conv3d processes the depth axis in
/// slabs so that the SS decoder's 64³ levels do not need a gigabyte of columns.
const MAX_COLS: usize = 16 << 20;

pub(super) fn patch_embed2d(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    const OP: &str = "patch_embed2d";
    let (bn, c, hh, ww) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3));
    let (o, p) = (w.dim(0), w.dim(2));
    if p == 0 {
        return Err(Error::shape(OP, "zero-sized patch"));
    }
    let (hp, wp) = (hh / p, ww / p);
    let k = c * p * p;
    let xs = f32_data(x, OP)?;
    let ws = f32_data(w, OP)?;
    let bs = b.map(|t| f32_data(t, OP)).transpose()?;
    let mut out = vec![0f32; bn * o * hp * wp];
    if out.is_empty() {
        return tensor_from_f32(out, &[bn, o, hp, wp], x.dtype());
    }
    let mut cols = vec![0f32; k * hp * wp];
    for bi in 0..bn {
        let img = &xs[bi * c * hh * ww..(bi + 1) * c * hh * ww];
        // cols[(ci, i, j), (py, px)] = x[ci, py·P + i, px·P + j]
        cols.par_chunks_mut(hp * wp)
            .enumerate()
            .for_each(|(row, col)| {
                let (ci, i, j) = (row / (p * p), (row / p) % p, row % p);
                for py in 0..hp {
                    for px in 0..wp {
                        col[py * wp + px] = img[(ci * hh + py * p + i) * ww + px * p + j];
                    }
                }
            });
        let ob = &mut out[bi * o * hp * wp..(bi + 1) * o * hp * wp];
        gemm_bias(ob, &ws, &cols, (o, k, hp * wp), hp * wp, bs.as_deref());
    }
    tensor_from_f32(out, &[bn, o, hp, wp], x.dtype())
}

/// `out[co, j] = bias[co] + Σ_k w[co, k]·cols[k, j]` for the `n` columns of `cols [K, n]`,
/// written into rows of stride `ld` of `out`.
fn gemm_bias(
    out: &mut [f32],
    w: &[f32],
    cols: &[f32],
    (co, k, n): (usize, usize, usize),
    ld: usize,
    bias: Option<&[f32]>,
) {
    if co == 0 || n == 0 {
        return;
    }
    if let Some(bias) = bias {
        for (r, &bv) in bias.iter().enumerate() {
            out[r * ld..r * ld + n].fill(bv);
        }
    }
    matmul(
        MatMut::strided(out, co, n, ld, 1),
        Mat::row_major(w, co, k),
        Mat::row_major(cols, k, n),
        bias.is_some(),
        Par::Rayon,
    );
}

pub(super) fn conv3d(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    conv3d_slabs(x, w, b, MAX_COLS)
}

/// conv3d with im2col buffers of at most `max_cols` floats (a parameter so tests can force
/// several depth slabs on small inputs).
fn conv3d_slabs(x: &Tensor, w: &Tensor, b: Option<&Tensor>, max_cols: usize) -> Result<Tensor> {
    const OP: &str = "conv3d";
    let (bn, ci, d, h, wd) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3), x.dim(4));
    let co = w.dim(0);
    let (plane, vol) = (h * wd, d * h * wd);
    let k = ci * 27;
    let xs = f32_data(x, OP)?;
    let ws = f32_data(w, OP)?;
    let bs = b.map(|t| f32_data(t, OP)).transpose()?;
    let mut out = vec![0f32; bn * co * vol];
    if out.is_empty() || k == 0 {
        // No inputs: every output is its bias.
        if let Some(bs) = &bs {
            for (i, o) in out.iter_mut().enumerate() {
                *o = bs[(i / vol.max(1)) % co];
            }
        }
        return tensor_from_f32(out, &[bn, co, d, h, wd], x.dtype());
    }
    let slab = (max_cols / (k * plane)).clamp(1, d);
    let mut cols = vec![0f32; k * slab * plane];
    for bi in 0..bn {
        let vin = &xs[bi * ci * vol..(bi + 1) * ci * vol];
        for d0 in (0..d).step_by(slab) {
            let nd = slab.min(d - d0);
            let n = nd * plane;
            let cols = &mut cols[..k * n];
            // cols[(c, kd, kh, kw), (z, y, x)] = x[c, d0 + z + kd − 1, y + kh − 1, x + kw − 1],
            // zero outside the volume (padding 1). Row order matches w [Co, Ci, 3, 3, 3].
            cols.par_chunks_mut(n).enumerate().for_each(|(row, col)| {
                let (c, kd, kh, kw) = (row / 27, row / 9 % 3, row / 3 % 3, row % 3);
                for z in 0..nd {
                    let sz = (d0 + z + kd) as isize - 1;
                    for y in 0..h {
                        let sy = (y + kh) as isize - 1;
                        let dst = &mut col[(z * h + y) * wd..][..wd];
                        if sz < 0 || sz >= d as isize || sy < 0 || sy >= h as isize {
                            dst.fill(0.0);
                            continue;
                        }
                        let src = &vin[((c * d) + sz as usize) * plane + sy as usize * wd..][..wd];
                        shifted_copy(dst, src, kw as isize - 1);
                    }
                }
            });
            let ob = &mut out[bi * co * vol + d0 * plane..];
            gemm_bias(ob, &ws, cols, (co, k, n), vol, bs.as_deref());
        }
    }
    tensor_from_f32(out, &[bn, co, d, h, wd], x.dtype())
}

/// `dst[i] = src[i + shift]`, zero where `i + shift` falls outside `src` (shift ∈ {−1, 0, 1}).
fn shifted_copy(dst: &mut [f32], src: &[f32], shift: isize) {
    let n = dst.len();
    match shift {
        0 => dst.copy_from_slice(src),
        1 => {
            dst[..n - 1].copy_from_slice(&src[1..]);
            dst[n - 1] = 0.0;
        }
        _ => {
            dst[0] = 0.0;
            dst[1..].copy_from_slice(&src[..n - 1]);
        }
    }
}

/// The pixel-shuffle gather, for any element type (it moves values without converting them).
struct PixelShuffle {
    b: usize,
    c: usize,
    dims: [usize; 3],
}

impl ElemMap for PixelShuffle {
    fn map<T: Copy + Send + Sync + Default>(&self, src: &[T]) -> Result<Vec<T>> {
        let [d, h, w] = self.dims;
        let (od, oh, ow) = (2 * d, 2 * h, 2 * w);
        let mut out = vec![T::default(); self.b * self.c * od * oh * ow];
        if out.is_empty() {
            return Ok(out);
        }
        // One task per output (batch, channel) volume.
        out.par_chunks_mut(od * oh * ow)
            .enumerate()
            .for_each(|(bc, o)| {
                let (bi, c) = (bc / self.c, bc % self.c);
                for z in 0..od {
                    for y in 0..oh {
                        for x in 0..ow {
                            let sub = (z % 2) * 4 + (y % 2) * 2 + x % 2;
                            let ic = (bi * self.c + c) * 8 + sub;
                            o[(z * oh + y) * ow + x] =
                                src[((ic * d + z / 2) * h + y / 2) * w + x / 2];
                        }
                    }
                }
            });
        Ok(out)
    }
}

pub(super) fn pixel_shuffle_3d(x: &Tensor) -> Result<Tensor> {
    let (b, c8) = (x.dim(0), x.dim(1));
    let dims = [x.dim(2), x.dim(3), x.dim(4)];
    let f = PixelShuffle { b, c: c8 / 8, dims };
    let out = map_elems(x.cpu_storage("pixel_shuffle_3d")?, &f)?;
    Ok(cpu_tensor(
        out,
        &[b, c8 / 8, 2 * dims[0], 2 * dims[1], 2 * dims[2]],
    ))
}

pub(super) fn max_pool3d_2(x: &Tensor) -> Result<Tensor> {
    const OP: &str = "max_pool3d_2";
    let (b, c, d, h, w) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3), x.dim(4));
    let (od, oh, ow) = (d / 2, h / 2, w / 2);
    let xs = f32_data(x, OP)?;
    let mut out = vec![0f32; b * c * od * oh * ow];
    if !out.is_empty() {
        out.par_chunks_mut(od * oh * ow)
            .enumerate()
            .for_each(|(bc, o)| {
                let v = &xs[bc * d * h * w..(bc + 1) * d * h * w];
                for z in 0..od {
                    for y in 0..oh {
                        for xo in 0..ow {
                            let mut m = f32::NEG_INFINITY;
                            for (dz, dy, dx) in WINDOW {
                                let e = v[((2 * z + dz) * h + 2 * y + dy) * w + 2 * xo + dx];
                                // NaN wins, as in PyTorch's max-pool.
                                if e > m || e.is_nan() {
                                    m = e;
                                }
                                if m.is_nan() {
                                    break;
                                }
                            }
                            o[(z * oh + y) * ow + xo] = m;
                        }
                    }
                }
            });
    }
    // The max of exact values is exact: the conversion back to x's dtype does not round.
    tensor_from_f32(out, &[b, c, od, oh, ow], x.dtype())
}

/// The 8 offsets of a 2×2×2 window.
const WINDOW: [(usize, usize, usize); 8] = [
    (0, 0, 0),
    (0, 0, 1),
    (0, 1, 0),
    (0, 1, 1),
    (1, 0, 0),
    (1, 0, 1),
    (1, 1, 0),
    (1, 1, 1),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::random_vec;
    use crate::{Device, ops};

    #[test]
    fn depth_slabs_agree_with_one_slab() {
        let (ci, d, h, w, co) = (3, 7, 4, 5, 2);
        let x = Tensor::from_vec(
            random_vec(ci * d * h * w, 1),
            &[1, ci, d, h, w],
            &Device::Cpu,
        );
        let wt = Tensor::from_vec(
            random_vec(co * ci * 27, 2),
            &[co, ci, 3, 3, 3],
            &Device::Cpu,
        );
        let b = Tensor::from_vec(random_vec(co, 3), &[co], &Device::Cpu).unwrap();
        let (x, wt) = (x.unwrap(), wt.unwrap());
        let whole = ops::conv3d(&x, &wt, Some(&b))
            .unwrap()
            .to_vec_f32()
            .unwrap();
        // 2 planes of 81 rows × 20 columns per slab: slabs of 2, 2, 2 and 1 depth planes.
        let cols = 2 * ci * 27 * h * w;
        let slabs = conv3d_slabs(&x, &wt, Some(&b), cols).unwrap();
        // Same products, possibly another blocking inside the GEMM. Each is an f32 sum of ≤ 82
        // terms of magnitude ≤ 1, so the two differ by ≤ 2·83·u·82 ≈ 8e-4 absolute; a slab
        // offset bug moves values by O(1).
        let (a, b) = (slabs.to_vec_f32().unwrap(), whole);
        let err = a
            .iter()
            .zip(&b)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(err < 8e-4, "slabbed conv3d differs by {err:e}");
    }
}
