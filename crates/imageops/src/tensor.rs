//! Image → model input tensor, as torchvision's `ToTensor` + `Normalize` compute it.

use image::RgbImage;

/// ImageNet statistics (used by RMBG-2.0 and, in TRELLIS.2, also for DINOv3).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// `[3, H, W]` float32, channel-major: `(x / 255 - mean[c]) / std[c]`, each step a rounded
/// f32 operation in torchvision's order (`ToTensor` divides by 255; `Normalize` subtracts the
/// mean, then divides by the std — a division, not a multiplication by 1/std).
pub fn to_normalized_chw(img: &RgbImage, mean: [f32; 3], std: [f32; 3]) -> Vec<f32> {
    let plane = img.width() as usize * img.height() as usize;
    let mut out = vec![0f32; 3 * plane];
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (i, p) in img.pixels().enumerate() {
        for (c, dst) in [&mut r[i], &mut g[i], &mut b[i]].into_iter().enumerate() {
            *dst = (f32::from(p[c]) / 255.0 - mean[c]) / std[c];
        }
    }
    out
}
