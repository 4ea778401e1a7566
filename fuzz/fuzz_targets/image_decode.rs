//! The services' image path (`t2-imageops`, what RMBG and DINOv3 run on request bytes): sniffing,
//! the header-first limits, PNG/WebP through `image`/`png`, JPEG through libjpeg-turbo (C, FFI),
//! then S0 as the RMBG service runs it: `prepare` (real alpha? LANCZOS downscale), a mask (the
//! model's, here stood in for by the red channel), and `crop_premultiply`.
//!
//! Oracles besides "no panic": a decoded image respects the limits; the header probe agrees with
//! the decoded size; the same bytes under tight limits are refused as a limit (bomb check before
//! decoding), never decoded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use t2_imageops::{Limits, Prepared, crop_premultiply, decode_pil_with_limits, prepare};

/// Limits that any image over 64 px a side breaks.
const TIGHT: Limits = Limits {
    max_bytes: t2_imageops::DEFAULT_MAX_BYTES,
    max_side: 64,
    max_pixels: 64 * 64,
};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let pil = match decode_pil_with_limits(data, &limits) {
        Ok(pil) => pil,
        Err(_) => return,
    };
    let (w, h) = pil.dimensions();
    assert!(
        limits.check_dimensions(w, h).is_ok(),
        "decoded {w}x{h} past the limits"
    );
    let (_, pw, ph) = t2_imageops::probe_dimensions(data).expect("decodable but not probeable");
    assert_eq!(
        (pw, ph),
        (w, h),
        "header probe disagrees with the decoded size"
    );
    if w.max(h) > TIGHT.max_side {
        match decode_pil_with_limits(data, &TIGHT) {
            Err(e) => assert!(e.is_limit(), "{w}x{h} under tight limits: {e}"),
            Ok(_) => panic!("{w}x{h} decoded under a 64 px limit"),
        }
    }

    let rgba = match prepare(&pil) {
        Ok(Prepared::Cutout(rgba)) => rgba,
        Ok(Prepared::NeedsBackgroundRemoval(rgb)) => {
            let mask = image::GrayImage::from_fn(rgb.width(), rgb.height(), |x, y| {
                [rgb.get_pixel(x, y)[0]].into()
            });
            t2_imageops::put_alpha(&rgb, &mask).expect("same size")
        }
        Err(_) => return,
    };
    assert!(rgba.width().max(rgba.height()) <= t2_imageops::MAX_INPUT_SIDE);
    if let Ok(crop) = crop_premultiply(&rgba) {
        assert!(
            crop.width() > 0 && crop.width() == crop.height(),
            "crop {:?}",
            crop.dimensions()
        );
    }
});
