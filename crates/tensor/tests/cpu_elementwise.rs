//! CPU element-wise ops against float64 references: the unary functions (and the f64 erf
//! behind exact GELU), affine, broadcasting binary ops with dtype promotion, and the adaLN
//! steps' per-step rounding. Tolerances: see `common`; each test states its f32 bound.

mod common;

use common::*;
use t2_tensor::ops::{self, Unary};
use t2_tensor::{DType, Device, Tensor};

/// erf at doubles, from mpmath at 40 digits (the inputs are the exact binary doubles shown),
/// printed to 20 digits; the compiler rounds each to the nearest double.
#[allow(clippy::excessive_precision)]
const ERF_TABLE: [(f64, f64); 24] = [
    (1e-300, 1.1283791670955126022e-300),
    (1e-08, 1.1283791670955125599e-8),
    (0.1, 0.1124629160182848984),
    (0.3, 0.32862675945912741619),
    (0.5, 0.52049987781304653768),
    (0.7, 0.67780119383741844228),
    (0.9, 0.79690821242283213966),
    (0.99, 0.83850806955536979982),
    (1.0, 0.84270079294971486934),
    (1.2, 0.91031397822963536837),
    (1.5, 0.96610514647531072707),
    (1.8, 0.98909050163573071615),
    (2.0, 0.99532226501895273416),
    (2.3, 0.99885682340264334752),
    (2.49, 0.99957071213226608709),
    (2.5, 0.99959304798255504106),
    (2.7, 0.99986566726005947581),
    (3.0, 0.99997790950300141456),
    (3.5, 0.99999925690162765859),
    (4.0, 0.99999998458274209972),
    (4.5, 0.99999999980338395585),
    (5.0, 0.99999999999846254021),
    (5.5, 0.99999999999999264215),
    (5.9, 0.9999999999999999281),
];

#[test]
fn erf64_matches_high_precision_values() {
    for (x, want) in ERF_TABLE {
        for (x, want) in [(x, want), (-x, -want)] {
            let got = ops::unary::erf64(x);
            // 4e-15 relative ≈ 18 ulp: the documented worst case of the positive series on
            // [1, 2.5]; a crude approximation (Abramowitz–Stegun 7.1.26: 1.5e-7) fails by far.
            let err = (got - want).abs() / want.abs();
            assert!(
                err <= 4e-15,
                "erf({x}) = {got:e}, want {want:e} (rel {err:e})"
            );
        }
    }
    assert_eq!(ops::unary::erf64(7.0), 1.0);
    assert_eq!(ops::unary::erf64(f64::NEG_INFINITY), -1.0);
    assert!(ops::unary::erf64(f64::NAN).is_nan());
    // Monotone across the branch boundaries (1 and 2.5): no jumps between expansions.
    for b in [1.0f64, 2.5, 6.0] {
        let (lo, hi) = (b - 1e-12, b);
        assert!(ops::unary::erf64(lo) <= ops::unary::erf64(hi));
    }
}

/// The f64 reference of each function (exact GELU through the checked erf64).
fn unary_ref(f: Unary, x: f64) -> f64 {
    match f {
        Unary::Silu => x / (1.0 + (-x).exp()),
        Unary::GeluTanh => {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())
        }
        Unary::GeluErf => 0.5 * x * (1.0 + ops::unary::erf64(x / std::f64::consts::SQRT_2)),
        Unary::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Unary::Softplus => {
            if x > 20.0 {
                x
            } else {
                x.exp().ln_1p()
            }
        }
    }
}

#[test]
fn unary_functions_match_f64() {
    let fs = [
        Unary::Silu,
        Unary::GeluTanh,
        Unary::GeluErf,
        Unary::Sigmoid,
        Unary::Softplus,
    ];
    for dt in FLOATS {
        // Random values over [-8, 8), plus both sides of softplus's threshold at 20.
        let mut v: Vec<f32> = t2_tensor::testing::random_vec(1001, 41)
            .iter()
            .map(|x| x * 8.0)
            .collect();
        v.extend([19.5, 20.5, -19.5, 12.25]);
        let (x, xv) = tensor(&v, &[v.len()], dt);
        for f in fs {
            let y = ops::unary(&x, f).unwrap();
            assert_eq!(y.dtype(), dt);
            let want: Vec<f64> = xv.iter().map(|&a| unary_ref(f, a as f64)).collect();
            // A handful of correctly rounded f32 steps (exp/tanh/erf within an ulp or two):
            // 8·u relative to the result, plus 8·u·|x| where `1 + tanh(·)` or `1 + erf(·)`
            // cancels for negative x (the error is then absolute, scaled by 0.5·|x|).
            let absorbs_x = matches!(f, Unary::GeluTanh | Unary::GeluErf);
            check(f.name(), &y, &want, |i| {
                8.0 * U * (want[i].abs() + if absorbs_x { xv[i].abs() as f64 } else { 0.0 })
            });
        }
        let y = ops::affine(&x, 0.37, -1.25).unwrap();
        let want: Vec<f64> = xv.iter().map(|&a| a as f64 * 0.37 - 1.25).collect();
        // One product and one sum in f32.
        check("affine", &y, &want, |i| {
            2.0 * U * ((xv[i] as f64 * 0.37).abs() + 1.25)
        });
    }
}

#[test]
fn unary_rejects_integer_tensors() {
    let t = Tensor::from_vec(vec![1i32, 2], &[2], &Device::Cpu).unwrap();
    assert!(ops::unary(&t, Unary::Silu).is_err());
    assert!(ops::affine(&t, 1.0, 0.0).is_err());
}

/// Reference of a broadcast binary op in f64, by NumPy rules.
fn broadcast_ref(
    a: &[f32],
    sa: &[usize],
    b: &[f32],
    sb: &[usize],
    f: fn(f64, f64) -> f64,
) -> (Vec<usize>, Vec<f64>) {
    let r = sa.len().max(sb.len());
    let pad = |s: &[usize]| {
        let mut p = vec![1; r - s.len()];
        p.extend_from_slice(s);
        p
    };
    let (pa, pb) = (pad(sa), pad(sb));
    let out: Vec<usize> = pa.iter().zip(&pb).map(|(&x, &y)| x.max(y)).collect();
    let n: usize = out.iter().product();
    let mut vals = Vec::with_capacity(n);
    for i in 0..n {
        // Multi-index of output element i, then the (clamped) flat index in each input.
        let (mut rem, mut ia, mut ib, mut stra, mut strb) = (i, 0, 0, 1, 1);
        for d in (0..r).rev() {
            let idx = rem % out[d];
            rem /= out[d];
            ia += if pa[d] == 1 { 0 } else { idx * stra };
            ib += if pb[d] == 1 { 0 } else { idx * strb };
            stra *= pa[d];
            strb *= pb[d];
        }
        vals.push(f(a[ia] as f64, b[ib] as f64));
    }
    (out, vals)
}

#[test]
fn binary_ops_broadcast_and_promote() {
    let cases: [(&[usize], &[usize]); 5] = [
        (&[7, 341], &[7, 341]),
        (&[7, 341], &[341]),
        (&[4, 1, 33], &[3, 1]),
        (&[2, 5, 1], &[1, 5, 6]),
        (&[], &[5]),
    ];
    let dts = [
        (DType::F32, DType::F32),
        (DType::BF16, DType::BF16),
        (DType::F16, DType::F16),
        (DType::BF16, DType::F32),
        (DType::F16, DType::BF16),
    ];
    type Op = fn(&Tensor, &Tensor) -> t2_tensor::Result<Tensor>;
    type Ref = fn(f64, f64) -> f64;
    let ops_: [(&str, Op, Ref); 3] = [
        ("add", ops::add, |x, y| x + y),
        ("sub", ops::sub, |x, y| x - y),
        ("mul", ops::mul, |x, y| x * y),
    ];
    for (ci, (sa, sb)) in cases.iter().enumerate() {
        for (da, db) in dts {
            let (a, av) = rand(sa, da, 50 + ci as u64, 2.0);
            let (b, bv) = rand(sb, db, 60 + ci as u64, 2.0);
            for (name, op, f) in ops_ {
                let y = op(&a, &b).unwrap();
                let (shape, want) = broadcast_ref(&av, sa, &bv, sb, f);
                assert_eq!(y.shape(), &shape[..], "{name} {sa:?} {sb:?}");
                // Same dtype keeps it; two different float dtypes promote to f32 (PyTorch).
                let expect_dt = if da == db { da } else { DType::F32 };
                assert_eq!(y.dtype(), expect_dt);
                // One exact op rounded to f32 (u·|r|), then once more to the output dtype.
                check(name, &y, &want, |i| U * want[i].abs());
            }
        }
    }
    let (a, _) = rand(&[3, 4], DType::F32, 1, 1.0);
    let (b, _) = rand(&[5], DType::F32, 2, 1.0);
    assert!(
        ops::add(&a, &b).is_err(),
        "non-broadcastable shapes must fail"
    );
}

/// `x` rounded to `dt` from an f64 value that is an exact f32 operation result: going through
/// f32 first is exactly PyTorch's "compute in f32, store in dt".
fn step(dt: DType, v: f64) -> f32 {
    round(dt, v as f32)
}

#[test]
fn modulate_and_gated_residual_round_after_every_step() {
    let (n, c) = (37, 341);
    for dt in FLOATS {
        let (x, xv) = rand(&[n, c], dt, 70, 3.0);
        let (shift, sv) = rand(&[c], dt, 71, 1.0);
        let (scale, kv) = rand(&[c], dt, 72, 1.0);
        let (h, hv) = rand(&[n, c], dt, 73, 3.0);
        let (gate, gv) = rand(&[c], dt, 74, 1.0);

        // The reference's three (two) PyTorch ops, each rounded to dt.
        let mut want_mod = Vec::with_capacity(n * c);
        let mut want_gate = Vec::with_capacity(n * c);
        let mut fused_differs = 0;
        for i in 0..n * c {
            let j = i % c;
            let one_plus = step(dt, 1.0 + kv[j] as f64);
            let prod = step(dt, xv[i] as f64 * one_plus as f64);
            want_mod.push(step(dt, prod as f64 + sv[j] as f64));
            let hg = step(dt, hv[i] as f64 * gv[j] as f64);
            want_gate.push(step(dt, xv[i] as f64 + hg as f64));
            // The same formula rounded only once: must differ somewhere for 16-bit dtypes,
            // which shows this test can tell the orders apart.
            let fused = step(dt, xv[i] as f64 * (1.0 + kv[j] as f64) + sv[j] as f64);
            fused_differs += (fused != want_mod[i]) as usize;
        }
        let y = ops::modulate(&x, &shift, &scale).unwrap();
        check_exact("modulate", &y, &want_mod);
        let y = ops::gated_residual(&x, &h, &gate).unwrap();
        check_exact("gated_residual", &y, &want_gate);
        if dt != DType::F32 {
            assert!(
                fused_differs > 0,
                "{dt:?}: rounding order was not exercised"
            );
        }
    }
}

#[test]
fn modulate_rejects_mismatched_params() {
    let (x, _) = rand(&[4, 8], DType::BF16, 1, 1.0);
    let (p, _) = rand(&[8], DType::F32, 2, 1.0);
    let (q, _) = rand(&[7], DType::BF16, 3, 1.0);
    assert!(
        ops::modulate(&x, &p, &p).is_err(),
        "param dtype must match x"
    );
    assert!(ops::modulate(&x, &q, &q).is_err(), "param length must be C");
}

#[test]
fn fused_adaln_steps_equal_their_unfused_composites() {
    // Each PyTorch step is one of our ops rounding once, so the composites must agree bit for
    // bit: modulate = (x · (1·scale + 1)) + shift, gated_residual = x + h · gate.
    let (n, c) = (19, 341);
    for dt in FLOATS {
        let (x, _) = rand(&[n, c], dt, 75, 3.0);
        let (h, _) = rand(&[n, c], dt, 76, 3.0);
        let (shift, _) = rand(&[c], dt, 77, 1.0);
        let (scale, _) = rand(&[c], dt, 78, 1.0);
        let fused = ops::modulate(&x, &shift, &scale).unwrap();
        let one_plus = ops::affine(&scale, 1.0, 1.0).unwrap();
        let composite = ops::add(&ops::mul(&x, &one_plus).unwrap(), &shift).unwrap();
        check_exact(
            "modulate vs composite",
            &fused,
            &composite.to_vec_f32().unwrap(),
        );
        let fused = ops::gated_residual(&x, &h, &scale).unwrap();
        let composite = ops::add(&x, &ops::mul(&h, &scale).unwrap()).unwrap();
        check_exact(
            "gated_residual vs composite",
            &fused,
            &composite.to_vec_f32().unwrap(),
        );
    }
}
