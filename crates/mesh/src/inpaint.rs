//! Fills texels no face covers, standing in for the reference's `cv2.inpaint(TELEA)`: a few
//! rings of dilation (each uncovered texel next to covered ones takes their mean, so chart
//! borders extend their own colours across the padding), then a push-pull pyramid for the rest
//! of the page (coarse averages of covered texels), so nothing is left black.

use rayon::prelude::*;

/// Rings of dilation before the pyramid fill: wider than the chart padding (2 texels) and the
/// reference's inpaint radius (3), so bilinear and mip sampling near seams sees chart colours.
const DILATE_RINGS: usize = 4;

type Texel = [u8; 6];

/// Fills every uncovered texel of a `size × size` image in place; `mask` ends all true.
pub fn fill_uncovered(texels: &mut [Texel], mask: &mut [bool], size: usize) {
    if mask.iter().all(|&m| m) || !mask.iter().any(|&m| m) {
        return;
    }
    // One snapshot pair reused by every ring (16.7 M texels at 4096²: a fresh copy per ring
    // cost more than the ring itself).
    let mut src = vec![[0u8; 6]; texels.len()];
    let mut smask = vec![false; mask.len()];
    for _ in 0..DILATE_RINGS {
        src.par_chunks_mut(size)
            .zip(texels.par_chunks(size))
            .for_each(|(d, s)| d.copy_from_slice(s));
        smask
            .par_chunks_mut(size)
            .zip(mask.par_chunks(size))
            .for_each(|(d, s)| d.copy_from_slice(s));
        dilate_once(texels, mask, &src, &smask, size);
    }
    push_pull(texels, mask, size);
}

/// One ring: every uncovered texel next to texels covered in the snapshot (`src`, `smask`)
/// takes their mean.
fn dilate_once(
    texels: &mut [Texel],
    mask: &mut [bool],
    src: &[Texel],
    smask: &[bool],
    size: usize,
) {
    texels
        .par_chunks_mut(size)
        .zip(mask.par_chunks_mut(size))
        .enumerate()
        .for_each(|(y, (row, mrow))| {
            for x in 0..size {
                if mrow[x] {
                    continue;
                }
                let mut sum = [0u32; 6];
                let mut n = 0u32;
                for dy in -1i32..=1 {
                    for dx in -1i32..=1 {
                        let (nx, ny) = (x as i32 + dx, y as i32 + dy);
                        if nx < 0 || ny < 0 || nx >= size as i32 || ny >= size as i32 {
                            continue;
                        }
                        let k = ny as usize * size + nx as usize;
                        if smask[k] {
                            for c in 0..6 {
                                sum[c] += src[k][c] as u32;
                            }
                            n += 1;
                        }
                    }
                }
                if n > 0 {
                    row[x] = sum.map(|s| ((s + n / 2) / n) as u8);
                    mrow[x] = true;
                }
            }
        });
}

/// Pull: average covered texels into ever coarser levels. Push: every still-uncovered texel
/// takes its parent's average, from the coarsest level down.
fn push_pull(texels: &mut [Texel], mask: &mut [bool], size: usize) {
    // Levels 1.. in float with weights, halving (rounding up) down to 1×1. Level 0 is the
    // texels themselves (weight 1 where covered): read in place, not copied to floats.
    let mut levels: Vec<(usize, Vec<[f32; 6]>, Vec<f32>)> = Vec::new();
    let texel = |k: usize| (texels[k].map(|c| c as f32), if mask[k] { 1.0 } else { 0.0 });
    levels.push(pull(size, &texel));
    while levels.last().map_or(1, |l| l.0) > 1 {
        let (n, vals, ws) = levels.last().expect("at least one level");
        let next = pull(*n, &|k| (vals[k], ws[k]));
        levels.push(next);
    }
    // Push from coarse to fine: empty entries take the parent's (already filled) value.
    for li in (0..levels.len() - 1).rev() {
        let (upper, lower) = levels.split_at_mut(li + 1);
        let (n, vals, ws) = &mut upper[li];
        let (m, pv, _) = &lower[0];
        vals.par_chunks_mut(*n)
            .zip(ws.par_chunks_mut(*n))
            .enumerate()
            .for_each(|(y, (vr, wr))| {
                for x in 0..*n {
                    if wr[x] <= 0.0 {
                        vr[x] = pv[(y / 2) * m + x / 2];
                        wr[x] = f32::MIN_POSITIVE;
                    }
                }
            });
    }
    // Level 0: each uncovered texel takes its parent's value.
    let (m, pv, _) = &levels[0];
    texels
        .par_chunks_mut(size)
        .zip(mask.par_chunks_mut(size))
        .enumerate()
        .for_each(|(y, (tr, mr))| {
            for x in 0..size {
                if !mr[x] {
                    tr[x] = pv[(y / 2) * m + x / 2].map(|c| c.round().clamp(0.0, 255.0) as u8);
                    mr[x] = true;
                }
            }
        });
}

/// The next coarser level of an `n × n` level read through `at(k) = (value, weight)`: each
/// entry the weighted mean of its (up to) four children, with their summed weight.
fn pull(
    n: usize,
    at: &(dyn Fn(usize) -> ([f32; 6], f32) + Sync),
) -> (usize, Vec<[f32; 6]>, Vec<f32>) {
    let m = n.div_ceil(2);
    let mut nv = vec![[0.0f32; 6]; m * m];
    let mut nw = vec![0.0f32; m * m];
    nv.par_chunks_mut(m)
        .zip(nw.par_chunks_mut(m))
        .enumerate()
        .for_each(|(y, (vr, wr))| {
            for x in 0..m {
                let (mut acc, mut w) = ([0.0f32; 6], 0.0f32);
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let (sx, sy) = (2 * x + dx, 2 * y + dy);
                    if sx < n && sy < n {
                        let (v, wk) = at(sy * n + sx);
                        if wk > 0.0 {
                            for c in 0..6 {
                                acc[c] += v[c] * wk;
                            }
                            w += wk;
                        }
                    }
                }
                if w > 0.0 {
                    vr[x] = acc.map(|a| a / w);
                }
                wr[x] = w;
            }
        });
    (m, nv, nw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_everything_from_covered_texels() {
        let size = 37;
        let mut t = vec![[0u8; 6]; size * size];
        let mut m = vec![false; size * size];
        t[5 * size + 7] = [200, 100, 50, 25, 12, 255];
        m[5 * size + 7] = true;
        fill_uncovered(&mut t, &mut m, size);
        assert!(m.iter().all(|&x| x));
        assert!(t.iter().all(|&x| x == [200, 100, 50, 25, 12, 255]));
    }
}
