//! S0 steps 4–5 of the reference preprocessing: square crop around the confident
//! foreground, then premultiply on black.

use image::{RgbImage, RgbaImage};

use crate::error::ImageError;

/// Inclusive bounding box `(xmin, ymin, xmax, ymax)` of the pixels with alpha > 0.8·255
/// (`np.argwhere(alpha > 0.8 * 255)`; 0.8·255 = 204.0, so alpha ≥ 205), or `None`.
pub fn foreground_bbox(img: &RgbaImage) -> Option<(u32, u32, u32, u32)> {
    const THRESHOLD: f64 = 0.8 * 255.0;
    let mut bbox: Option<(u32, u32, u32, u32)> = None;
    for (x, y, p) in img.enumerate_pixels() {
        if f64::from(p[3]) > THRESHOLD {
            bbox = Some(match bbox {
                None => (x, y, x, y),
                Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
            });
        }
    }
    bbox
}

/// The reference's crop box before rounding: centre `((xmin+xmax)/2, (ymin+ymax)/2)` as float,
/// `size = max(xmax-xmin, ymax-ymin)` (no +1, no padding), box `c ± size // 2`.
pub fn crop_box(bbox: (u32, u32, u32, u32)) -> [f64; 4] {
    let (x0, y0, x1, y1) = bbox;
    let cx = (f64::from(x0) + f64::from(x1)) / 2.0;
    let cy = (f64::from(y0) + f64::from(y1)) / 2.0;
    let half = f64::from((x1 - x0).max(y1 - y0) / 2);
    [cx - half, cy - half, cx + half, cy + half]
}

/// Python's `round` on a float: to nearest, ties to even.
pub fn python_round(v: f64) -> i64 {
    v.round_ties_even() as i64
}

/// Pillow `Image.crop(box)`: each coordinate rounded with Python `round`, the region outside
/// the image filled with transparent black.
pub fn pil_crop(img: &RgbaImage, bx: [f64; 4]) -> RgbaImage {
    let [x0, y0, x1, y1] = bx.map(python_round);
    let (w, h) = ((x1 - x0).max(0) as u32, (y1 - y0).max(0) as u32);
    let (iw, ih) = (i64::from(img.width()), i64::from(img.height()));
    RgbaImage::from_fn(w, h, |x, y| {
        let (sx, sy) = (x0 + i64::from(x), y0 + i64::from(y));
        if (0..iw).contains(&sx) && (0..ih).contains(&sy) {
            *img.get_pixel(sx as u32, sy as u32)
        } else {
            [0, 0, 0, 0].into()
        }
    })
}

/// `rgb/255 * alpha/255` in float32, then `(x*255).astype(uint8)` (truncation), as numpy
/// computes it: each step a rounded f32 operation.
pub fn premultiply_on_black(img: &RgbaImage) -> RgbImage {
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let p = img.get_pixel(x, y).0;
        let a = f32::from(p[3]) / 255.0;
        [0, 1, 2]
            .map(|c| ((f32::from(p[c]) / 255.0 * a) * 255.0) as u8)
            .into()
    })
}

/// S0 steps 4–5: crop the square around the confident foreground (alpha > 0.8·255), then
/// premultiply on black. An image with no such pixel is refused ([`ImageError::NoForeground`]);
/// so is one whose foreground is a single row or column (the square would be empty).
pub fn crop_premultiply(img: &RgbaImage) -> Result<RgbImage, ImageError> {
    let bbox = foreground_bbox(img).ok_or(ImageError::NoForeground)?;
    let cropped = pil_crop(img, crop_box(bbox));
    if cropped.width() == 0 || cropped.height() == 0 {
        return Err(ImageError::EmptyCrop {
            width: bbox.2 - bbox.0 + 1,
            height: bbox.3 - bbox.1 + 1,
        });
    }
    Ok(premultiply_on_black(&cropped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_round_ties_to_even() {
        assert_eq!(python_round(0.5), 0);
        assert_eq!(python_round(1.5), 2);
        assert_eq!(python_round(2.5), 2);
        assert_eq!(python_round(-0.5), 0);
        assert_eq!(python_round(-1.5), -2);
        assert_eq!(python_round(2.4999), 2);
    }

    #[test]
    fn all_transparent_is_refused() {
        let img = RgbaImage::from_pixel(8, 8, [10, 20, 30, 204].into());
        assert!(matches!(
            crop_premultiply(&img),
            Err(ImageError::NoForeground)
        ));
    }

    #[test]
    fn box_past_the_edge_is_transparent_black() {
        let mut img = RgbaImage::from_pixel(6, 6, [200, 200, 200, 0].into());
        // Foreground at the left edge, 1x5: the square box reaches x < 0.
        for y in 1..6 {
            img.put_pixel(0, y, [255, 128, 0, 255].into());
        }
        let out = crop_premultiply(&img).unwrap();
        // bbox (0,1,0,5): centre (0,3), size 4, box (-2,1,2,5).
        assert_eq!(out.dimensions(), (4, 4));
        assert_eq!(out.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(out.get_pixel(2, 0).0, [255, 128, 0]);
    }
}
