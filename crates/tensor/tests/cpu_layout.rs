//! CPU data-movement ops (exact, every dtype) and dtype casts (round-to-nearest-even for
//! narrowing float casts, truncation toward zero for float → int).

mod common;

use common::*;
use t2_tensor::{DType, Device, Tensor, bf16, f16, ops};

fn iota(shape: &[usize]) -> (Tensor, Vec<i32>) {
    let n: usize = shape.iter().product();
    let v: Vec<i32> = (0..n as i32).map(|i| i * 3 - 7).collect();
    (Tensor::from_slice(&v, shape, &Device::Cpu).unwrap(), v)
}

/// Row-major flat index of `idx` in `shape`.
fn flat(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |a, (&i, &s)| a * s + i)
}

/// Multi-index of flat position `i` in `shape`.
fn unflat(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
}

#[test]
fn permute_reorders_dims_for_ints_and_floats() {
    let shape = [2, 3, 4, 5];
    let (x, xv) = iota(&shape);
    for dims in [[0, 2, 1, 3], [3, 2, 1, 0], [1, 3, 0, 2], [0, 1, 2, 3]] {
        let y = ops::permute(&x, &dims).unwrap();
        let oshape: Vec<usize> = dims.iter().map(|&d| shape[d]).collect();
        assert_eq!(y.shape(), &oshape[..]);
        let got = y.to_vec::<i32>().unwrap();
        for (i, &g) in got.iter().enumerate() {
            let oi = unflat(i, &oshape);
            let mut ii = vec![0; 4];
            for (o, &d) in dims.iter().enumerate() {
                ii[d] = oi[o];
            }
            assert_eq!(g, xv[flat(&ii, &shape)], "dims {dims:?} at {oi:?}");
        }
    }
    // Floats move bit-exactly: bf16 [N, H, D] → [H, N, D] and back is the identity.
    let (b, bv) = rand(&[7, 3, 5], DType::BF16, 1, 1.0);
    let there = ops::permute(&b, &[1, 0, 2]).unwrap();
    let back = ops::permute(&there, &[1, 0, 2]).unwrap();
    check_exact("permute round trip", &back, &bv);
    assert!(ops::permute(&b, &[0, 0, 1]).is_err());
    assert!(ops::permute(&b, &[0, 1]).is_err());
}

#[test]
fn narrow_and_cat_are_inverse() {
    let shape = [3, 7, 4];
    let (x, xv) = iota(&shape);
    for dim in 0..3 {
        let n = shape[dim];
        let (a, b) = (2.min(n - 1), n - 2.min(n - 1));
        let first = ops::narrow(&x, dim, 0, a).unwrap();
        let second = ops::narrow(&x, dim, a, b).unwrap();
        // Check narrow's values directly.
        let g = second.to_vec::<i32>().unwrap();
        for (i, &v) in g.iter().enumerate() {
            let mut idx = unflat(i, second.shape());
            idx[dim] += a;
            assert_eq!(v, xv[flat(&idx, &shape)]);
        }
        let joined = ops::cat(&[&first, &second], dim).unwrap();
        assert_eq!(joined.shape(), shape);
        assert_eq!(joined.to_vec::<i32>().unwrap(), xv, "cat along {dim}");
    }
    // Three pieces of different sizes along the last dim, f16.
    let (p, pv) = rand(&[2, 3], DType::F16, 5, 1.0);
    let (q, qv) = rand(&[2, 1], DType::F16, 6, 1.0);
    let y = ops::cat(&[&p, &q, &p], 1).unwrap();
    let want: Vec<f32> = (0..2)
        .flat_map(|r| {
            let mut row = pv[r * 3..r * 3 + 3].to_vec();
            row.push(qv[r]);
            row.extend_from_slice(&pv[r * 3..r * 3 + 3]);
            row
        })
        .collect();
    check_exact("cat f16", &y, &want);
    assert!(ops::narrow(&x, 1, 5, 3).is_err());
    let (r, _) = rand(&[2, 3], DType::BF16, 7, 1.0);
    assert!(ops::cat(&[&p, &r], 1).is_err(), "dtypes must match");
    assert!(ops::cat(&[], 0).is_err());
}

#[test]
fn index_rows_gathers_and_rejects_out_of_range() {
    let (x, xv) = rand(&[5, 3], DType::BF16, 8, 1.0);
    let idx = Tensor::from_vec(vec![4u32, 0, 4, 2], &[4], &Device::Cpu).unwrap();
    let y = ops::index_rows(&x, &idx).unwrap();
    let want: Vec<f32> = [4, 0, 4, 2]
        .iter()
        .flat_map(|&r| xv[r * 3..r * 3 + 3].to_vec())
        .collect();
    check_exact("index_rows", &y, &want);
    let idx_i = Tensor::from_vec(vec![1i32, 3], &[2], &Device::Cpu).unwrap();
    let (xi, xiv) = iota(&[5, 2, 2]);
    let yi = ops::index_rows(&xi, &idx_i).unwrap();
    assert_eq!(yi.shape(), [2, 2, 2]);
    let mut want_i = xiv[4..8].to_vec();
    want_i.extend_from_slice(&xiv[12..16]);
    assert_eq!(yi.to_vec::<i32>().unwrap(), want_i);
    for bad in [vec![5i32], vec![-1]] {
        let t = Tensor::from_vec(bad, &[1], &Device::Cpu).unwrap();
        assert!(ops::index_rows(&x, &t).is_err());
    }
    let t = Tensor::from_vec(vec![0u32, 5], &[2], &Device::Cpu).unwrap();
    assert!(ops::index_rows(&x, &t).is_err());
    let f = Tensor::from_vec(vec![0f32], &[1], &Device::Cpu).unwrap();
    assert!(ops::index_rows(&x, &f).is_err(), "float indices");
}

#[test]
fn repeat_interleave_repeats_each_slice_in_place() {
    let (x, xv) = iota(&[2, 3, 2]);
    let y = ops::repeat_interleave(&x, 1, 3).unwrap();
    assert_eq!(y.shape(), [2, 9, 2]);
    let got = y.to_vec::<i32>().unwrap();
    for (i, &g) in got.iter().enumerate() {
        let mut idx = unflat(i, &[2, 9, 2]);
        idx[1] /= 3;
        assert_eq!(g, xv[flat(&idx, &[2, 3, 2])]);
    }
    let y0 = ops::repeat_interleave(&x, 2, 2)
        .unwrap()
        .to_vec::<i32>()
        .unwrap();
    let want: Vec<i32> = xv.iter().flat_map(|&v| [v, v]).collect();
    assert_eq!(y0, want);
    assert!(ops::repeat_interleave(&x, 3, 2).is_err());
    assert!(ops::repeat_interleave(&x, 0, 0).is_err());
}

#[test]
fn to_dtype_rounds_to_nearest_even_and_truncates_to_int() {
    // bf16 ties: 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷ → 1 (even); 1 + 3·2⁻⁸ → 1 + 2⁻⁶.
    let v = [
        1.0 + 1.0 / 256.0,
        1.0 + 3.0 / 256.0,
        -2.75,
        1e-3,
        65504.0,
        70000.0,
    ];
    let x = Tensor::from_slice(&v, &[6], &Device::Cpu).unwrap();
    let b = ops::to_dtype(&x, DType::BF16)
        .unwrap()
        .to_vec::<bf16>()
        .unwrap();
    let want_b: Vec<bf16> = v.iter().map(|&f| bf16::from_f32(f)).collect();
    assert_eq!(b, want_b);
    assert_eq!(b[0].to_f32(), 1.0);
    assert_eq!(b[1].to_f32(), 1.0 + 4.0 / 256.0);
    let h = ops::to_dtype(&x, DType::F16)
        .unwrap()
        .to_vec::<f16>()
        .unwrap();
    assert_eq!(h[4].to_f32(), 65504.0);
    assert!(
        h[5].to_f32().is_infinite(),
        "f16 overflow becomes inf, as in PyTorch"
    );
    // f16 → bf16 goes through f32 (exact) and rounds once.
    let hx = Tensor::from_vec(vec![f16::from_f32(1.0009766)], &[1], &Device::Cpu).unwrap();
    let hb = ops::to_dtype(&hx, DType::BF16)
        .unwrap()
        .to_vec::<bf16>()
        .unwrap();
    assert_eq!(hb[0], bf16::from_f32(1.0009766));
    // Float → int truncates toward zero.
    let f = Tensor::from_slice(&[-1.7f32, 2.9, -0.2, 7.0], &[4], &Device::Cpu).unwrap();
    let i = ops::to_dtype(&f, DType::I32)
        .unwrap()
        .to_vec::<i32>()
        .unwrap();
    assert_eq!(i, vec![-1, 2, 0, 7]);
    let fb = ops::to_dtype(&f, DType::BF16).unwrap();
    let ib = ops::to_dtype(&fb, DType::I32)
        .unwrap()
        .to_vec::<i32>()
        .unwrap();
    assert_eq!(ib, vec![-1, 2, 0, 7]);
    // Int → float and back is exact for small integers; u8 → f32 too.
    let (it, iv) = iota(&[10]);
    let back = ops::to_dtype(&ops::to_dtype(&it, DType::BF16).unwrap(), DType::I32).unwrap();
    assert_eq!(back.to_vec::<i32>().unwrap(), iv);
    let u = Tensor::from_vec(vec![0u8, 1, 255], &[3], &Device::Cpu).unwrap();
    let uf = ops::to_dtype(&u, DType::F32)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert_eq!(uf, vec![0.0, 1.0, 255.0]);
    // Same dtype is a no-op.
    assert_eq!(
        ops::to_dtype(&x, DType::F32)
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        v
    );
}
