//! CPU dense convolutions against direct float64 loops, and the exact resampling ops against
//! their index formulas. Tolerances: see `common`; sums of K products get `(K+2)·u·Σ|terms|`.

mod common;

use common::*;
use t2_tensor::{DType, Device, Tensor, ops};

#[test]
fn patch_embed2d_matches_f64_with_floor_cropping() {
    // 35×37 with P = 8 → 4×4 patches; the last rows/cols are dropped as PyTorch's floor does.
    let (bn, c, hh, ww, o, p) = (2, 3, 35, 37, 19, 8);
    for dt in FLOATS {
        let (x, xv) = rand(&[bn, c, hh, ww], dt, 90, 1.0);
        let (w, wv) = rand(&[o, c, p, p], dt, 91, 0.3);
        let (b, bv) = rand(&[o], dt, 92, 1.0);
        let y = ops::patch_embed2d(&x, &w, Some(&b)).unwrap();
        let (hp, wp) = (hh / p, ww / p);
        assert_eq!(y.shape(), [bn, o, hp, wp]);
        let mut want = Vec::new();
        let mut mag = Vec::new();
        for bi in 0..bn {
            for oc in 0..o {
                for py in 0..hp {
                    for px in 0..wp {
                        let (mut s, mut m) = (bv[oc] as f64, (bv[oc] as f64).abs());
                        for ci in 0..c {
                            for i in 0..p {
                                for j in 0..p {
                                    let xv =
                                        xv[((bi * c + ci) * hh + py * p + i) * ww + px * p + j];
                                    let t = xv as f64 * wv[((oc * c + ci) * p + i) * p + j] as f64;
                                    s += t;
                                    m += t.abs();
                                }
                            }
                        }
                        want.push(s);
                        mag.push(m);
                    }
                }
            }
        }
        let k = c * p * p;
        check("patch_embed2d", &y, &want, |i| (k + 2) as f64 * U * mag[i]);
    }
}

/// Direct f64 conv3d (k3, s1, p1), returning values and Σ|terms| per output.
pub fn conv3d_ref(
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    (bn, ci, d, h, wd, co): (usize, usize, usize, usize, usize, usize),
) -> (Vec<f64>, Vec<f64>) {
    let mut want = Vec::with_capacity(bn * co * d * h * wd);
    let mut mag = Vec::with_capacity(want.capacity());
    for bi in 0..bn {
        for oc in 0..co {
            for z in 0..d {
                for y in 0..h {
                    for xx in 0..wd {
                        let bias = b.map_or(0.0, |b| b[oc] as f64);
                        let (mut s, mut m) = (bias, bias.abs());
                        for c in 0..ci {
                            for kd in 0..3 {
                                for kh in 0..3 {
                                    for kw in 0..3 {
                                        let (sz, sy, sx) = (
                                            z as isize + kd - 1,
                                            y as isize + kh - 1,
                                            xx as isize + kw - 1,
                                        );
                                        if sz < 0
                                            || sy < 0
                                            || sx < 0
                                            || sz >= d as isize
                                            || sy >= h as isize
                                            || sx >= wd as isize
                                        {
                                            continue;
                                        }
                                        let xi = (((bi * ci + c) * d + sz as usize) * h
                                            + sy as usize)
                                            * wd
                                            + sx as usize;
                                        let wi =
                                            (oc * ci + c) * 27 + (kd * 9 + kh * 3 + kw) as usize;
                                        let t = x[xi] as f64 * w[wi] as f64;
                                        s += t;
                                        m += t.abs();
                                    }
                                }
                            }
                        }
                        want.push(s);
                        mag.push(m);
                    }
                }
            }
        }
    }
    (want, mag)
}

#[test]
fn conv3d_matches_f64_with_zero_padding() {
    // Non-cubic, odd extents so each face's padding is distinct.
    let dims = (2, 5, 6, 7, 5, 4);
    let (bn, ci, d, h, wd, co) = dims;
    for dt in FLOATS {
        let (x, xv) = rand(&[bn, ci, d, h, wd], dt, 100, 1.0);
        let (w, wv) = rand(&[co, ci, 3, 3, 3], dt, 101, 0.3);
        let (b, bv) = rand(&[co], dt, 102, 1.0);
        for bias in [true, false] {
            let y = ops::conv3d(&x, &w, bias.then_some(&b)).unwrap();
            assert_eq!(y.shape(), [bn, co, d, h, wd]);
            let (want, mag) = conv3d_ref(&xv, &wv, bias.then_some(&bv[..]), dims);
            check("conv3d", &y, &want, |i| (ci * 27 + 2) as f64 * U * mag[i]);
        }
    }
}

#[test]
fn pixel_shuffle_3d_moves_channels_to_space_exactly() {
    let (b, c, d, h, w) = (2, 3, 2, 3, 4);
    let n = b * c * 8 * d * h * w;
    // Integers make each value its own index, so any misplacement shows; i32 checks that the
    // op is dtype-generic, bf16 that floats move bit-exactly.
    let src: Vec<i32> = (0..n as i32).collect();
    let x = Tensor::from_vec(src.clone(), &[b, c * 8, d, h, w], &Device::Cpu).unwrap();
    let y = ops::pixel_shuffle_3d(&x).unwrap();
    assert_eq!(y.shape(), [b, c, 2 * d, 2 * h, 2 * w]);
    let got = y.to_vec::<i32>().unwrap();
    for bi in 0..b {
        for ch in 0..c {
            for z in 0..2 * d {
                for yy in 0..2 * h {
                    for xx in 0..2 * w {
                        // Output channel c at sub-position (i, j, k) reads c·8 + i·4 + j·2 + k.
                        let ic = ch * 8 + (z % 2) * 4 + (yy % 2) * 2 + xx % 2;
                        let want = src[(((bi * c * 8 + ic) * d + z / 2) * h + yy / 2) * w + xx / 2];
                        let at = (((bi * c + ch) * 2 * d + z) * 2 * h + yy) * 2 * w + xx;
                        assert_eq!(got[at], want, "({bi},{ch},{z},{yy},{xx})");
                    }
                }
            }
        }
    }
    let (xf, xv) = rand(&[1, 8, 1, 1, 2], DType::BF16, 3, 1.0);
    let yf = ops::pixel_shuffle_3d(&xf).unwrap().to_vec_f32().unwrap();
    let mut sorted_in = xv.clone();
    let mut sorted_out = yf.clone();
    sorted_in.sort_by(f32::total_cmp);
    sorted_out.sort_by(f32::total_cmp);
    assert_eq!(sorted_in, sorted_out, "a permutation of the input values");
    let bad = Tensor::from_vec(vec![0f32; 7], &[1, 7, 1, 1, 1], &Device::Cpu).unwrap();
    assert!(ops::pixel_shuffle_3d(&bad).is_err());
}

#[test]
fn max_pool3d_2_floors_odd_sizes_and_propagates_nan() {
    let (b, c, d, h, w) = (1, 2, 5, 4, 7);
    for dt in FLOATS {
        let mut v: Vec<f32> = t2_tensor::testing::random_vec(b * c * d * h * w, 110);
        v[(d * h + 2 * h + 1) * w + 3] = f32::NAN; // channel 1, inside output cell (1, 0, 1)
        let (x, xv) = tensor(&v, &[b, c, d, h, w], dt);
        let y = ops::max_pool3d_2(&x).unwrap();
        let (od, oh, ow) = (d / 2, h / 2, w / 2);
        assert_eq!(y.shape(), [b, c, od, oh, ow]);
        let mut want = Vec::new();
        for ch in 0..c {
            for z in 0..od {
                for yy in 0..oh {
                    for xx in 0..ow {
                        let mut m = f32::NEG_INFINITY;
                        for (dz, dy, dx) in (0..8).map(|s| (s >> 2, (s >> 1) & 1, s & 1)) {
                            let v = xv[((ch * d + 2 * z + dz) * h + 2 * yy + dy) * w + 2 * xx + dx];
                            m = if v.is_nan() || m.is_nan() {
                                f32::NAN
                            } else {
                                m.max(v)
                            };
                        }
                        want.push(m);
                    }
                }
            }
        }
        check_exact("max_pool3d_2", &y, &want);
        assert!(want.iter().any(|v| v.is_nan()));
    }
}
