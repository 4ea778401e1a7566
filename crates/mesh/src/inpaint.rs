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
    for _ in 0..DILATE_RINGS {
        dilate_once(texels, mask, size);
    }
    push_pull(texels, mask, size);
}

fn dilate_once(texels: &mut [Texel], mask: &mut [bool], size: usize) {
    let (src, smask) = (texels.to_vec(), mask.to_vec());
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
    // Level 0 in float with weights; levels halve (rounding up) down to 1×1.
    let mut levels: Vec<(usize, Vec<[f32; 6]>, Vec<f32>)> = Vec::new();
    let l0: Vec<[f32; 6]> = texels.par_iter().map(|t| t.map(|c| c as f32)).collect();
    let w0: Vec<f32> = mask
        .par_iter()
        .map(|&m| if m { 1.0 } else { 0.0 })
        .collect();
    levels.push((size, l0, w0));
    while levels.last().map_or(1, |l| l.0) > 1 {
        let (n, vals, ws) = levels.last().expect("at least one level");
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
                        if sx < *n && sy < *n {
                            let k = sy * n + sx;
                            if ws[k] > 0.0 {
                                for c in 0..6 {
                                    acc[c] += vals[k][c] * ws[k];
                                }
                                w += ws[k];
                            }
                        }
                    }
                    if w > 0.0 {
                        vr[x] = acc.map(|a| a / w);
                    }
                    wr[x] = w;
                }
            });
        levels.push((m, nv, nw));
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
    let filled = &levels[0].1;
    texels
        .par_iter_mut()
        .zip(mask.par_iter_mut())
        .zip(filled.par_iter())
        .for_each(|((t, m), v)| {
            if !*m {
                *t = v.map(|c| c.round().clamp(0.0, 255.0) as u8);
                *m = true;
            }
        });
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
