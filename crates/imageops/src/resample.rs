//! Pillow's resampler (`ImagingResample`, Pillow 13), reproduced bit for bit on 8-bit and
//! 16-bit samples.
//!
//! How Pillow resizes, and therefore how this file does:
//! - Two separable passes, horizontal first, each with its own 1-D kernel table. The
//!   horizontal pass only produces the rows the vertical pass will read, and its output is
//!   rounded and clipped to the sample type before the vertical pass (the 8-bit
//!   intermediate is part of the result, not an implementation detail).
//! - Per output sample the kernel is centred at `(i + 0.5) * scale`, its support is the
//!   filter's support times `max(scale, 1)` (so downscaling antialiases), its window is
//!   `[(int)(c - s + 0.5), (int)(c + s + 0.5))` clamped to the input, and its weights are
//!   `filter((j - c + 0.5) / max(scale, 1))` normalised to sum 1, all in `f64`.
//! - 8-bit: the weights become fixed point with 22 fraction bits (`PRECISION_BITS`), rounded
//!   half away from zero; the accumulator starts at one half and the result is `acc >> 22`
//!   clipped to 0..=255.
//! - 16-bit (`I;16`): the weights stay `f64`, the sum is rounded half away from zero and
//!   clamped to 0..=65535 (checked against Pillow 13; older sources clip the two bytes
//!   separately, which Pillow 13's output does not show).
//! - NEAREST does not go through the resampler at all: Pillow runs an affine nearest-neighbour
//!   transform whose source coordinate is accumulated in `f64` from `scale / 2`.

use rayon::prelude::*;

/// Resampling filters, with Pillow's kernels and supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Filter {
    /// Pillow `NEAREST` (affine nearest neighbour, no antialiasing).
    Nearest,
    /// Pillow `BILINEAR`: triangle kernel, support 1 (torchvision `Resize` on PIL images).
    Bilinear,
    /// Pillow `BICUBIC`: Keys cubic with a = -0.5, support 2 (PIL's default filter).
    Bicubic,
    /// Pillow `LANCZOS`: 3-lobe windowed sinc, support 3.
    Lanczos,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Nearest => 0.0,
            Filter::Bilinear => 1.0,
            Filter::Bicubic => 2.0,
            Filter::Lanczos => 3.0,
        }
    }

    fn eval(self, x: f64) -> f64 {
        match self {
            Filter::Nearest => unreachable!("NEAREST has no kernel: it is an affine lookup"),
            Filter::Bilinear => {
                let x = x.abs();
                if x < 1.0 { 1.0 - x } else { 0.0 }
            }
            Filter::Bicubic => {
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Filter::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    let x = x * std::f64::consts::PI;
    x.sin() / x
}

/// 8 result bits, 2 guard bits for negative lobes and sums above 1.0, in an `i32`.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// One 1-D kernel table: for each output sample a window `[start, start + len)` of inputs and
/// `ksize` weights (only the first `len` are used).
struct Kernel {
    ksize: usize,
    windows: Vec<(usize, usize)>,
    weights: Vec<f64>,
}

impl Kernel {
    /// Pillow's `precompute_coeffs` for the full box `[0, in_size)`.
    fn new(in_size: u32, out_size: u32, filter: Filter) -> Kernel {
        // Pillow takes the box as C floats; `in1 - in0` is exact for any image size.
        let scale = f64::from(in_size as f32) / f64::from(out_size);
        let filterscale = scale.max(1.0);
        let support = filter.support() * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let inv = 1.0 / filterscale;
        let mut windows = Vec::with_capacity(out_size as usize);
        let mut weights = vec![0.0; out_size as usize * ksize];
        for (i, k) in weights.chunks_exact_mut(ksize).enumerate() {
            let center = (i as f64 + 0.5) * scale;
            // C `(int)` truncates toward zero, as `as i64` does.
            let start = ((center - support + 0.5) as i64).max(0);
            let end = ((center + support + 0.5) as i64).min(i64::from(in_size));
            let len = (end - start).max(0) as usize;
            let mut sum = 0.0;
            for (j, w) in k.iter_mut().take(len).enumerate() {
                *w = filter.eval(((j as i64 + start) as f64 - center + 0.5) * inv);
                sum += *w;
            }
            if sum != 0.0 {
                k.iter_mut().take(len).for_each(|w| *w /= sum);
            }
            windows.push((start as usize, len));
        }
        Kernel {
            ksize,
            windows,
            weights,
        }
    }

    /// Pillow's `normalize_coeffs_8bpc`: fixed point, rounded half away from zero.
    fn fixed_point(&self) -> Vec<i32> {
        let one = f64::from(1u32 << PRECISION_BITS);
        self.weights
            .iter()
            .map(|&w| {
                if w < 0.0 {
                    (-0.5 + w * one) as i32
                } else {
                    (0.5 + w * one) as i32
                }
            })
            .collect()
    }

    fn taps(&self, i: usize) -> (usize, usize, usize) {
        let (start, len) = self.windows[i];
        (start, len, i * self.ksize)
    }

    /// The input rows `[first, last)` that any output row reads.
    fn span(&self) -> (usize, usize) {
        let first = self.windows.first().map_or(0, |w| w.0);
        let last = self.windows.last().map_or(0, |w| w.0 + w.1);
        (first, last)
    }
}

#[inline]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resample interleaved 8-bit samples (`channels` per pixel, each channel independent).
/// Callers handle the same-size copy and NEAREST before coming here.
pub(crate) fn resample_u8(
    src: &[u8],
    (w, h): (u32, u32),
    channels: usize,
    (out_w, out_h): (u32, u32),
    filter: Filter,
) -> Vec<u8> {
    debug_assert_eq!(src.len(), w as usize * h as usize * channels);
    let vert = Kernel::new(h, out_h, filter);
    let (first, last) = vert.span();
    let c = channels;

    // Horizontal pass over the rows the vertical pass reads.
    let (tmp, tmp_w, row0) = if out_w != w {
        let horiz = Kernel::new(w, out_w, filter);
        let k = horiz.fixed_point();
        let mut tmp = vec![0u8; (last - first) * out_w as usize * c];
        let in_stride = w as usize * c;
        tmp.par_chunks_mut(out_w as usize * c)
            .enumerate()
            .for_each(|(r, out)| {
                let row = &src[(first + r) * in_stride..(first + r + 1) * in_stride];
                for (x, px) in out.chunks_exact_mut(c).enumerate() {
                    let (start, len, off) = horiz.taps(x);
                    for (ch, o) in px.iter_mut().enumerate() {
                        let mut acc: i32 = 1 << (PRECISION_BITS - 1);
                        for j in 0..len {
                            acc += i32::from(row[(start + j) * c + ch]) * k[off + j];
                        }
                        *o = clip8(acc);
                    }
                }
            });
        (std::borrow::Cow::Owned(tmp), out_w, first)
    } else {
        (std::borrow::Cow::Borrowed(src), w, 0)
    };
    if out_h == h {
        return tmp.into_owned();
    }

    // Vertical pass.
    let k = vert.fixed_point();
    let stride = tmp_w as usize * c;
    let mut out = vec![0u8; out_h as usize * stride];
    out.par_chunks_mut(stride)
        .enumerate()
        .for_each(|(y, out_row)| {
            let (start, len, off) = vert.taps(y);
            let start = start - row0;
            for (i, o) in out_row.iter_mut().enumerate() {
                let mut acc: i32 = 1 << (PRECISION_BITS - 1);
                for j in 0..len {
                    acc += i32::from(tmp[(start + j) * stride + i]) * k[off + j];
                }
                *o = clip8(acc);
            }
        });
    out
}

/// Pillow's 16-bit store: `ROUND_UP` to int, clamped to the `u16` range.
#[inline]
fn store_u16(sum: f64) -> u16 {
    let v = if sum >= 0.0 {
        (sum + 0.5) as i32
    } else {
        (sum - 0.5) as i32
    };
    v.clamp(0, 65535) as u16
}

/// Resample single-channel 16-bit samples (Pillow mode `I;16`).
pub(crate) fn resample_u16(
    src: &[u16],
    (w, h): (u32, u32),
    (out_w, out_h): (u32, u32),
    filter: Filter,
) -> Vec<u16> {
    let vert = Kernel::new(h, out_h, filter);
    let (first, last) = vert.span();
    let (tmp, tmp_w, row0) = if out_w != w {
        let horiz = Kernel::new(w, out_w, filter);
        let mut tmp = vec![0u16; (last - first) * out_w as usize];
        tmp.par_chunks_mut(out_w as usize)
            .enumerate()
            .for_each(|(r, out)| {
                let row = &src[(first + r) * w as usize..(first + r + 1) * w as usize];
                for (x, o) in out.iter_mut().enumerate() {
                    let (start, len, off) = horiz.taps(x);
                    let mut sum = 0.0f64;
                    for j in 0..len {
                        sum += f64::from(row[start + j]) * horiz.weights[off + j];
                    }
                    *o = store_u16(sum);
                }
            });
        (std::borrow::Cow::Owned(tmp), out_w, first)
    } else {
        (std::borrow::Cow::Borrowed(src), w, 0)
    };
    if out_h == h {
        return tmp.into_owned();
    }
    let stride = tmp_w as usize;
    let mut out = vec![0u16; out_h as usize * stride];
    out.par_chunks_mut(stride)
        .enumerate()
        .for_each(|(y, out_row)| {
            let (start, len, off) = vert.taps(y);
            let start = start - row0;
            for (i, o) in out_row.iter_mut().enumerate() {
                let mut sum = 0.0f64;
                for j in 0..len {
                    sum += f64::from(tmp[(start + j) * stride + i]) * vert.weights[off + j];
                }
                *o = store_u16(sum);
            }
        });
    out
}

/// Pillow's NEAREST resize (`ImagingScaleAffine`): source coordinates accumulate in `f64`
/// from half a step; a coordinate outside the source leaves the pixel zero.
pub(crate) fn nearest<T: Copy + Default + Send + Sync>(
    src: &[T],
    (w, h): (u32, u32),
    channels: usize,
    (out_w, out_h): (u32, u32),
) -> Vec<T> {
    let source_index = |in_size: u32, out_size: u32| -> Vec<Option<usize>> {
        let step = f64::from(in_size as f32) / f64::from(out_size);
        let mut pos = step * 0.5;
        (0..out_size)
            .map(|_| {
                // COORD(): negative → -1, else truncate.
                let i = if pos < 0.0 { -1 } else { pos as i64 };
                pos += step;
                (0..i64::from(in_size)).contains(&i).then_some(i as usize)
            })
            .collect()
    };
    let xs = source_index(w, out_w);
    let ys = source_index(h, out_h);
    let c = channels;
    let mut out = vec![T::default(); out_w as usize * out_h as usize * c];
    out.par_chunks_mut(out_w as usize * c)
        .zip(ys.par_iter())
        .for_each(|(row, sy)| {
            let Some(sy) = *sy else { return };
            let src_row = &src[sy * w as usize * c..(sy + 1) * w as usize * c];
            for (px, sx) in row.chunks_exact_mut(c).zip(&xs) {
                if let Some(sx) = *sx {
                    px.copy_from_slice(&src_row[sx * c..(sx + 1) * c]);
                }
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_in_fixed_point_within_rounding() {
        for (i, o) in [(7u32, 3u32), (3, 7), (1000, 1024), (1024, 333)] {
            for f in [Filter::Bilinear, Filter::Bicubic, Filter::Lanczos] {
                let k = Kernel::new(i, o, f);
                let fixed = k.fixed_point();
                for x in 0..o as usize {
                    let (_, len, off) = k.taps(x);
                    let s: i32 = fixed[off..off + len].iter().sum();
                    let one = 1i32 << PRECISION_BITS;
                    assert!((s - one).abs() <= len as i32, "{i}->{o} {f:?} x={x}: {s}");
                }
            }
        }
    }

    #[test]
    fn constant_image_stays_constant() {
        let src = vec![77u8; 13 * 9 * 3];
        for f in [Filter::Bilinear, Filter::Bicubic, Filter::Lanczos] {
            let out = resample_u8(&src, (13, 9), 3, (5, 17), f);
            assert!(out.iter().all(|&v| v == 77), "{f:?}");
        }
    }
}
