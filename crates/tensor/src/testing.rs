//! Helpers for numerical tests (also used by the GPU parity binary and golden tests).

/// `max|a − b| / max|b|` — the goldens' error measure (b is the reference). NaN anywhere → ∞.
pub fn max_rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "max_rel_err: length mismatch");
    let mut num = 0f64;
    let mut den = 0f64;
    for (&x, &y) in a.iter().zip(b) {
        if x.is_nan() || y.is_nan() {
            return f64::INFINITY;
        }
        num = num.max((x as f64 - y as f64).abs());
        den = den.max((y as f64).abs());
    }
    if den == 0.0 { num } else { num / den }
}

/// Deterministic pseudo-random values in [-1, 1) (SplitMix64), for op tests that must not
/// depend on a RNG crate's version.
pub fn random_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// CUDA device 0 for a GPU test, or `None` when it cannot be opened: the test then skips,
/// saying so. On a GPU host set `TRELLIS2_REQUIRE_CUDA=1`, which turns a missing GPU into a
/// failure so that a skipped test cannot pass for a checked one.
pub fn cuda_or_skip() -> Option<crate::cuda::CudaDevice> {
    match crate::cuda::CudaDevice::new(0) {
        Ok(d) => Some(d),
        Err(e) => {
            let required = std::env::var("TRELLIS2_REQUIRE_CUDA").is_ok_and(|v| v == "1");
            assert!(!required, "TRELLIS2_REQUIRE_CUDA=1 but no CUDA device: {e}");
            eprintln!("skipped: no CUDA device ({e})");
            None
        }
    }
}
