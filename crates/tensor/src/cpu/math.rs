//! Scalar math written so that loops over slices vectorise (no libm calls, no branches).

/// log2(e).
const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two (Cody–Waite): the high part has 8 trailing zero bits, so `n·LN2_HI` is
/// exact for |n| ≤ 2⁸ and the reduction `x − n·ln2` loses nothing to cancellation.
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
/// ln of the smallest normal f32: below it the result is flushed to 0.
const MIN_ARG: f32 = -87.336_55;
/// 1.5·2²³: adding and subtracting it rounds an f32 of magnitude < 2²² to an integer
/// (round-to-nearest-even) without a libm call.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `e^x` for `x ≤ 0` (the softmax case, where x is a score minus the running max), within
/// 1.5 ulp of the exact value; 0 below ln(f32::MIN_POSITIVE) ≈ −87.34 (those terms are below
/// 1e-38 next to the max's 1); NaN propagates. Positive inputs are clamped to 0 (e⁰ = 1).
///
/// Method: `x = n·ln2 + r` with |r| ≤ ln2/2, `e^r` by its degree-7 Taylor polynomial (the
/// remainder r⁸/8! ≤ 5.4e-9 is 0.09 ulp), and `2ⁿ` assembled in the exponent bits.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    let xc = x.clamp(MIN_ARG, 0.0);
    let n = (xc * LOG2E + ROUND_MAGIC) - ROUND_MAGIC;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // n ∈ [−126, 0]: 2ⁿ is a normal f32 with biased exponent n + 127.
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    let y = p * scale;
    // Selects, not branches: below the range → 0; NaN → NaN (clamp keeps NaN).
    if x < MIN_ARG { 0.0 } else { y }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in f32 ulps between `a` and the f64 value `b`.
    fn ulps(a: f32, b: f64) -> f64 {
        let ulp = f64::from(f32::from_bits((b as f32).to_bits() + 1) - b as f32);
        (a as f64 - b).abs() / ulp
    }

    #[test]
    fn within_one_and_a_half_ulp_over_the_whole_range() {
        let mut worst = 0f64;
        let mut x = MIN_ARG;
        // ~350k points from −87.3 to 0, plus the tiny arguments near 0.
        while x < 0.0 {
            let e = ulps(exp_nonpositive(x), (x as f64).exp());
            worst = worst.max(e);
            assert!(
                e <= 1.5,
                "exp({x}): {} vs {} ({e} ulp)",
                exp_nonpositive(x),
                (x as f64).exp()
            );
            x += 2.5e-4;
        }
        // Around the reduction's ±ln2/2 boundary and −ln2 (n changes there).
        let ln2 = std::f32::consts::LN_2;
        for x in [-1e-30f32, -1e-7, -ln2 / 2.0, -ln2 / 2.0 - 1e-7, -ln2, -43.5] {
            assert!(
                ulps(exp_nonpositive(x), (x as f64).exp()) <= 1.5,
                "exp({x})"
            );
        }
        assert!(worst > 0.0);
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-0.0), 1.0);
        assert_eq!(exp_nonpositive(-100.0), 0.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
        assert!(exp_nonpositive(f32::NAN).is_nan());
    }
}
