//! An image as Pillow holds it after `Image.open`: the pixel mode decides how `resize` and
//! `convert` behave, so the reference's order (downscale in the file's own mode, then
//! convert) can be reproduced exactly.

use image::{DynamicImage, GrayAlphaImage, GrayImage, ImageBuffer, RgbImage, Rgba, RgbaImage};

use crate::convert::{cmyk_to_rgb, i16_to_u8, msb};
use crate::resample::Filter;
use crate::resize::{
    Gray16Image, resize_cmyk, resize_luma, resize_luma_alpha, resize_luma16, resize_rgb,
    resize_rgba,
};

/// CMYK samples as Pillow stores them (ink amounts: 0 = no ink), in a 4-channel buffer.
pub type CmykImage = ImageBuffer<Rgba<u8>, Vec<u8>>;

/// A decoded image in Pillow's mode.
///
/// Colour-key transparency (a PNG `tRNS` on a grey or RGB image) is dropped: Pillow keeps
/// such images in mode `L`/`RGB`, so the reference never treats them as having alpha, and the
/// pipeline only ever converts them to RGB.
#[derive(Debug, Clone, PartialEq)]
pub enum PilImage {
    /// Mode `1` (1-bit PNG): samples are 0 or 255. Resized with NEAREST only.
    Bilevel(GrayImage),
    /// Mode `L`.
    L(GrayImage),
    /// Mode `LA` (8-bit grey + alpha PNG). Not "RGBA", so the reference ignores its alpha.
    La(GrayAlphaImage),
    /// Mode `P`, already looked up through its palette; the alpha comes from the palette's
    /// `tRNS` (255 without one) and only shows through `to_rgba`. Resized with NEAREST only.
    P(RgbaImage),
    /// Mode `I;16` (16-bit grey PNG).
    I16(Gray16Image),
    /// Mode `RGB`.
    Rgb(RgbImage),
    /// Mode `RGBA` (also 16-bit RGBA and 16-bit grey+alpha PNGs, as Pillow opens them).
    Rgba(RgbaImage),
    /// Mode `CMYK` (4-component JPEG: Adobe CMYK, or YCCK converted to CMYK by libjpeg).
    Cmyk(CmykImage),
}

impl PilImage {
    /// Pillow's mode name.
    pub fn mode(&self) -> &'static str {
        match self {
            PilImage::Bilevel(_) => "1",
            PilImage::L(_) => "L",
            PilImage::La(_) => "LA",
            PilImage::P(_) => "P",
            PilImage::I16(_) => "I;16",
            PilImage::Rgb(_) => "RGB",
            PilImage::Rgba(_) => "RGBA",
            PilImage::Cmyk(_) => "CMYK",
        }
    }

    pub fn dimensions(&self) -> (u32, u32) {
        match self {
            PilImage::Bilevel(i) | PilImage::L(i) => i.dimensions(),
            PilImage::La(i) => i.dimensions(),
            PilImage::P(i) | PilImage::Rgba(i) | PilImage::Cmyk(i) => i.dimensions(),
            PilImage::I16(i) => i.dimensions(),
            PilImage::Rgb(i) => i.dimensions(),
        }
    }

    /// Pillow `Image.resize(size, filter)` in this mode (modes `1` and `P` always NEAREST;
    /// `LA` and `RGBA` through premultiplied colour).
    pub fn resize(&self, w: u32, h: u32, filter: Filter) -> PilImage {
        match self {
            PilImage::Bilevel(i) => PilImage::Bilevel(resize_luma(i, w, h, Filter::Nearest)),
            PilImage::P(i) => PilImage::P(resize_rgba(i, w, h, Filter::Nearest)),
            PilImage::L(i) => PilImage::L(resize_luma(i, w, h, filter)),
            PilImage::La(i) => PilImage::La(resize_luma_alpha(i, w, h, filter)),
            PilImage::I16(i) => PilImage::I16(resize_luma16(i, w, h, filter)),
            PilImage::Rgb(i) => PilImage::Rgb(resize_rgb(i, w, h, filter)),
            PilImage::Rgba(i) => PilImage::Rgba(resize_rgba(i, w, h, filter)),
            PilImage::Cmyk(i) => {
                if w == 0 || h == 0 || i.width() == 0 || i.height() == 0 {
                    return PilImage::Cmyk(CmykImage::new(0, 0));
                }
                let data = resize_cmyk(i.as_raw(), i.dimensions(), (w, h), filter);
                PilImage::Cmyk(CmykImage::from_raw(w, h, data).expect("w*h*4 samples"))
            }
        }
    }

    /// Pillow `convert("RGB")`.
    pub fn to_rgb(&self) -> RgbImage {
        let (w, h) = self.dimensions();
        match self {
            PilImage::Rgb(i) => i.clone(),
            PilImage::Bilevel(i) | PilImage::L(i) => {
                RgbImage::from_fn(w, h, |x, y| [i.get_pixel(x, y)[0]; 3].into())
            }
            PilImage::La(i) => RgbImage::from_fn(w, h, |x, y| [i.get_pixel(x, y)[0]; 3].into()),
            PilImage::I16(i) => {
                RgbImage::from_fn(w, h, |x, y| [i16_to_u8(i.get_pixel(x, y)[0]); 3].into())
            }
            PilImage::P(i) | PilImage::Rgba(i) => RgbImage::from_fn(w, h, |x, y| {
                let p = i.get_pixel(x, y).0;
                [p[0], p[1], p[2]].into()
            }),
            PilImage::Cmyk(i) => {
                RgbImage::from_fn(w, h, |x, y| cmyk_to_rgb(i.get_pixel(x, y).0).into())
            }
        }
    }

    /// Pillow `convert("RGBA")` (colour-key transparency aside, see the type's doc).
    pub fn to_rgba(&self) -> RgbaImage {
        let (w, h) = self.dimensions();
        match self {
            PilImage::Rgba(i) | PilImage::P(i) => i.clone(),
            PilImage::La(i) => RgbaImage::from_fn(w, h, |x, y| {
                let [l, a] = i.get_pixel(x, y).0;
                [l, l, l, a].into()
            }),
            other => {
                let rgb = other.to_rgb();
                RgbaImage::from_fn(w, h, |x, y| {
                    let [r, g, b] = rgb.get_pixel(x, y).0;
                    [r, g, b, 255].into()
                })
            }
        }
    }

    /// The same pixels as an `image` type: CMYK converted to RGB as Pillow does, a palette
    /// image as RGBA when its palette has transparency (RGB otherwise), `1` as `L`.
    pub fn into_dynamic(self) -> DynamicImage {
        match self {
            PilImage::Bilevel(i) | PilImage::L(i) => DynamicImage::ImageLuma8(i),
            PilImage::La(i) => DynamicImage::ImageLumaA8(i),
            PilImage::P(i) => {
                if i.pixels().all(|p| p[3] == 255) {
                    DynamicImage::ImageRgb8(PilImage::P(i).to_rgb())
                } else {
                    DynamicImage::ImageRgba8(i)
                }
            }
            PilImage::I16(i) => DynamicImage::ImageLuma16(i),
            PilImage::Rgb(i) => DynamicImage::ImageRgb8(i),
            PilImage::Rgba(i) => DynamicImage::ImageRgba8(i),
            c @ PilImage::Cmyk(_) => DynamicImage::ImageRgb8(c.to_rgb()),
        }
    }

    /// Pillow's mode for an `image` buffer, with Pillow's 16-bit rules: 16-bit RGB, RGBA and
    /// grey+alpha keep their most significant byte (grey+alpha becomes RGBA, as Pillow opens
    /// such PNGs); 16-bit grey stays 16-bit (`I;16`). Float images are clamped to 0..=1 and
    /// scaled by 255 with rounding (no Pillow equivalent: PNG/JPEG/WebP never give floats).
    pub fn from_dynamic(img: DynamicImage) -> PilImage {
        let (w, h) = (img.width(), img.height());
        match img {
            DynamicImage::ImageLuma8(i) => PilImage::L(i),
            DynamicImage::ImageLumaA8(i) => PilImage::La(i),
            DynamicImage::ImageRgb8(i) => PilImage::Rgb(i),
            DynamicImage::ImageRgba8(i) => PilImage::Rgba(i),
            DynamicImage::ImageLuma16(i) => PilImage::I16(i),
            DynamicImage::ImageLumaA16(i) => PilImage::Rgba(RgbaImage::from_fn(w, h, |x, y| {
                let [l, a] = i.get_pixel(x, y).0;
                [msb(l), msb(l), msb(l), msb(a)].into()
            })),
            DynamicImage::ImageRgb16(i) => PilImage::Rgb(RgbImage::from_fn(w, h, |x, y| {
                i.get_pixel(x, y).0.map(msb).into()
            })),
            DynamicImage::ImageRgba16(i) => PilImage::Rgba(RgbaImage::from_fn(w, h, |x, y| {
                i.get_pixel(x, y).0.map(msb).into()
            })),
            other if other.color().has_alpha() => PilImage::Rgba(other.to_rgba8()),
            other => PilImage::Rgb(other.to_rgb8()),
        }
    }
}
