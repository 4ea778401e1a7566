//! Pillow's per-pixel mode conversions (`libImaging/Convert.c`) that the pipeline meets.

/// `MULDIV255(a, b)`: `a * b / 255` rounded to nearest, in Pillow's integer form.
#[inline]
pub(crate) fn muldiv255(a: u8, b: u8) -> u8 {
    let t = u32::from(a) * u32::from(b) + 128;
    (((t >> 8) + t) >> 8) as u8
}

/// `RGBA → RGBa` (and `LA → La`): colour channels premultiplied by alpha.
#[inline]
pub(crate) fn premultiply(px: &mut [u8]) {
    let (color, alpha) = px.split_at_mut(px.len() - 1);
    let a = alpha[0];
    color.iter_mut().for_each(|c| *c = muldiv255(*c, a));
}

/// `RGBa → RGBA` (and `La → LA`): alpha 0 and 255 pass through, otherwise
/// `clip8(255 * c / a)` with integer division.
#[inline]
pub(crate) fn unpremultiply(px: &mut [u8]) {
    let (color, alpha) = px.split_at_mut(px.len() - 1);
    let a = u32::from(alpha[0]);
    if a == 0 || a == 255 {
        return;
    }
    color
        .iter_mut()
        .for_each(|c| *c = (255 * u32::from(*c) / a).min(255) as u8);
}

/// `CMYK → RGB` with Pillow's CMYK (ink amounts, 0 = no ink).
#[inline]
pub(crate) fn cmyk_to_rgb(cmyk: [u8; 4]) -> [u8; 3] {
    let nk = 255 - cmyk[3];
    // nk - muldiv255(c, nk) never underflows: muldiv255(c, nk) <= nk.
    [0, 1, 2].map(|i| nk - muldiv255(cmyk[i], nk))
}

/// `I;16 → L/RGB`: Pillow clips (values above 255 become 255), it does not rescale.
#[inline]
pub(crate) fn i16_to_u8(v: u16) -> u8 {
    v.min(255) as u8
}

/// 16-bit PNG samples in modes `RGB`, `RGBA` and `LA`: Pillow keeps the most significant byte.
#[inline]
pub(crate) fn msb(v: u16) -> u8 {
    (v >> 8) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn muldiv255_is_exact_rounding() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let exact = (f64::from(a) * f64::from(b) / 255.0).round() as u8;
                assert_eq!(muldiv255(a, b), exact, "{a}*{b}");
            }
        }
    }

    #[test]
    fn premultiply_round_trip_keeps_opaque_and_transparent() {
        let mut px = [200, 100, 3, 255];
        premultiply(&mut px);
        unpremultiply(&mut px);
        assert_eq!(px, [200, 100, 3, 255]);
        let mut px = [200, 100, 3, 0];
        premultiply(&mut px);
        assert_eq!(px, [0, 0, 0, 0]);
    }
}
