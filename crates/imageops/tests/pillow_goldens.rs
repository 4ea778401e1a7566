//! Pillow goldens (`tests/fixtures/manifest.json`, written by `make_fixtures.py` with the
//! Pillow version recorded there, 13.0.0 at the time of writing).
//!
//! Tolerances:
//! - Bit-exact (max |diff| = 0) for everything Pillow computes deterministically in integer or
//!   IEEE arithmetic: PNG and lossless WebP decoding and mode conversion (16-bit, palette,
//!   grey, 1-bit), every resize (NEAREST/BILINEAR/BICUBIC/LANCZOS, up/down/one-axis, RGB, RGBA
//!   premultiplied, L, LA, I;16), the S0 crop + premultiply, the 1024² bilinear RMBG input and
//!   its f32 ImageNet normalisation.
//! - JPEG decoding too: the decoder is libjpeg-turbo's (as in Pillow's wheels) with Pillow's
//!   settings, so the raw samples (L, RGB, CMYK) must hash to what `np.array(Image.open(f))`
//!   hashes to, and the converted goldens must match to 0 — on 4:4:4, 4:2:2 with restart
//!   markers, 4:2:0 (even and odd sizes, low quality), progressive, grey, Adobe RGB, CMYK,
//!   YCCK and an EXIF-rotated file (left unrotated, as `Image.open` leaves it). (zune-jpeg,
//!   used before, was up to 3 LSB off on 4:2:0.) Every cut of each small JPEG must fail to
//!   decode exactly where Pillow's does (it raises "image file is truncated" on all of them).
//!   Lossy WebP (image-webp vs libwebp) came out bit-exact on its fixture, so it is held to 0.

use std::path::{Path, PathBuf};

use image::{DynamicImage, RgbImage};
use serde_json::Value;
use sha2::{Digest, Sha256};
use t2_imageops::{
    Filter, IMAGENET_MEAN, IMAGENET_STD, ImageError, Limits, PilImage, Prepared, crop_premultiply,
    decode_pil_with_limits, downscale_size, prepare, resize_rgb, to_normalized_chw,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(fixtures().join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn cases(kind: &str) -> Vec<Value> {
    let m = manifest();
    m["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == kind)
        .cloned()
        .collect()
}

fn load_source(name: &str) -> PilImage {
    let bytes = std::fs::read(fixtures().join(name)).unwrap();
    decode_pil_with_limits(&bytes, &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Goldens are PNGs in Pillow's own mode; `image` reads them without conversion.
fn load_golden(name: &str) -> DynamicImage {
    image::open(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Raw interleaved samples (16-bit as u16 values) of a result, in the golden's layout.
fn samples(img: &DynamicImage) -> Vec<i32> {
    match img {
        DynamicImage::ImageLuma16(i) => i.as_raw().iter().map(|&v| i32::from(v)).collect(),
        other => other.as_bytes().iter().map(|&v| i32::from(v)).collect(),
    }
}

fn pil_as_dynamic(img: &PilImage) -> DynamicImage {
    match img {
        // Mode "1" and "P" have no golden of their own; compare through RGB(A).
        PilImage::Cmyk(_) | PilImage::P(_) | PilImage::Bilevel(_) => {
            DynamicImage::ImageRgba8(img.to_rgba())
        }
        other => other.clone().into_dynamic(),
    }
}

/// Largest per-sample difference; panics on a size or layout mismatch.
fn max_diff(what: &str, ours: &DynamicImage, golden: &DynamicImage) -> i32 {
    assert_eq!(ours.dimensions_(), golden.dimensions_(), "{what}: size");
    assert_eq!(ours.color(), golden.color(), "{what}: layout");
    let (a, b) = (samples(ours), samples(golden));
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .max()
        .unwrap_or(0)
}

trait Dims {
    fn dimensions_(&self) -> (u32, u32);
}
impl Dims for DynamicImage {
    fn dimensions_(&self) -> (u32, u32) {
        (self.width(), self.height())
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Pillow's samples in its own layout (CMYK as ink amounts), for the JPEG hashes.
fn raw_samples(img: &PilImage) -> &[u8] {
    match img {
        PilImage::L(i) => i.as_raw(),
        PilImage::Rgb(i) => i.as_raw(),
        PilImage::Cmyk(i) => i.as_raw(),
        other => panic!("no raw hash for mode {}", other.mode()),
    }
}

#[test]
fn decoding_and_convert_match_pillow() {
    let cases = cases("decode");
    assert!(cases.len() >= 23);
    for c in cases {
        let source = c["source"].as_str().unwrap();
        let img = load_source(source);
        assert_eq!(img.mode(), c["mode"], "{source}: Pillow mode");
        let size = (
            c["size"][0].as_u64().unwrap() as u32,
            c["size"][1].as_u64().unwrap() as u32,
        );
        assert_eq!(img.dimensions(), size, "{source}: size");
        if let Some(hash) = c.get("raw_sha256") {
            assert_eq!(
                &sha256(raw_samples(&img)),
                hash,
                "{source}: decoded samples differ from Pillow's"
            );
        }
        if let Some(golden) = c.get("rgb") {
            let rgb = DynamicImage::ImageRgb8(img.to_rgb());
            let d = max_diff(source, &rgb, &load_golden(golden.as_str().unwrap()));
            assert_eq!(d, 0, "{source}: convert('RGB') differs by {d}");
        }
        if let Some(golden) = c.get("rgba") {
            let rgba = DynamicImage::ImageRgba8(img.to_rgba());
            let d = max_diff(source, &rgba, &load_golden(golden.as_str().unwrap()));
            assert_eq!(d, 0, "{source}: convert('RGBA') differs by {d}");
        }
    }
}

#[test]
fn jpeg_truncations_fail_where_pillows_do() {
    let mut checked = 0;
    for c in cases("decode") {
        let Some(pillow_ok) = c.get("truncations_decoded") else {
            continue;
        };
        let pillow_ok: Vec<usize> = pillow_ok
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap() as usize)
            .collect();
        let source = c["source"].as_str().unwrap();
        let bytes = std::fs::read(fixtures().join(source)).unwrap();
        let full = decode_pil_with_limits(&bytes, &Limits::default()).unwrap();
        for len in 0..bytes.len() {
            match decode_pil_with_limits(&bytes[..len], &Limits::default()) {
                Ok(img) => {
                    assert!(
                        pillow_ok.contains(&len),
                        "{source} cut to {len} bytes decodes; Pillow raises"
                    );
                    assert!(img == full, "{source} cut to {len} bytes: wrong pixels");
                }
                Err(e) => {
                    assert!(
                        !pillow_ok.contains(&len),
                        "{source} cut to {len} bytes: {e}; Pillow decodes it"
                    );
                    assert!(!e.is_limit(), "{source} cut to {len}: {e}");
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 10);
}

#[test]
fn resizes_match_pillow_bit_exactly() {
    let cases = cases("resize");
    assert!(cases.len() >= 40);
    for c in cases {
        let source = c["source"].as_str().unwrap();
        let filter = match c["filter"].as_str().unwrap() {
            "nearest" => Filter::Nearest,
            "bilinear" => Filter::Bilinear,
            "bicubic" => Filter::Bicubic,
            "lanczos" => Filter::Lanczos,
            other => panic!("unknown filter {other}"),
        };
        let (w, h) = (
            c["size"][0].as_u64().unwrap() as u32,
            c["size"][1].as_u64().unwrap() as u32,
        );
        let src = load_source(source);
        assert_eq!(src.mode(), c["mode"]);
        let ours = pil_as_dynamic(&src.resize(w, h, filter));
        let golden = c["golden"].as_str().unwrap();
        let d = max_diff(golden, &ours, &load_golden(golden));
        assert_eq!(
            d, 0,
            "{golden}: {source} {filter:?} -> {w}x{h} differs by {d}"
        );
    }
}

#[test]
fn s0_crop_and_premultiply_match_the_reference() {
    let cases = cases("s0");
    assert!(cases.len() >= 6);
    for c in cases {
        let label = c["label"].as_str().unwrap();
        let src = load_source(c["source"].as_str().unwrap());
        let Prepared::Cutout(rgba) = prepare(&src).unwrap() else {
            panic!("{label}: an RGBA input with alpha < 255 must skip background removal");
        };
        let resized = (
            c["resized"][0].as_u64().unwrap() as u32,
            c["resized"][1].as_u64().unwrap() as u32,
        );
        assert_eq!(rgba.dimensions(), resized, "{label}: downscale");
        let result = crop_premultiply(&rgba);
        if c.get("error").is_some() {
            assert!(
                matches!(result, Err(ImageError::NoForeground)),
                "{label}: {result:?}"
            );
            continue;
        }
        let out = result.unwrap_or_else(|e| panic!("{label}: {e}"));
        let size = (
            c["size"][0].as_u64().unwrap() as u32,
            c["size"][1].as_u64().unwrap() as u32,
        );
        assert_eq!(out.dimensions(), size, "{label}: crop size");
        if let Some(g) = c.get("golden") {
            let d = max_diff(
                label,
                &DynamicImage::ImageRgb8(out),
                &load_golden(g.as_str().unwrap()),
            );
            assert_eq!(d, 0, "{label}: differs by {d}");
        } else {
            assert_eq!(
                sha256(out.as_raw()),
                c["sha256"],
                "{label}: bytes differ from Pillow"
            );
        }
    }
}

#[test]
fn downscale_rule_matches_python() {
    let c = &cases("downscale_rule")[0];
    for row in c["table"].as_array().unwrap() {
        let v: Vec<u32> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        let expected = if (v[2], v[3]) == (v[0], v[1]) {
            None
        } else {
            Some((v[2], v[3]))
        };
        assert_eq!(downscale_size(v[0], v[1]), expected, "{v:?}");
    }
}

#[test]
fn rmbg_input_matches_pillow_and_torchvision() {
    for c in cases("rmbg_input") {
        let label = c["label"].as_str().unwrap();
        let rgb: RgbImage = load_source(c["source"].as_str().unwrap()).to_rgb();
        let resized = resize_rgb(&rgb, 1024, 1024, Filter::Bilinear);
        assert_eq!(
            sha256(resized.as_raw()),
            c["resize_sha256"],
            "{label}: 1024² bilinear"
        );
        let t = to_normalized_chw(&resized, IMAGENET_MEAN, IMAGENET_STD);
        let bytes: Vec<u8> = t.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            sha256(&bytes),
            c["tensor_sha256"],
            "{label}: normalised tensor"
        );
    }
}

#[test]
fn wide_inputs_are_downscaled_in_their_own_mode_then_converted() {
    let cases = cases("prepare_rgb");
    assert!(cases.len() >= 5);
    for c in cases {
        let source = c["source"].as_str().unwrap();
        let src = load_source(source);
        assert_eq!(src.mode(), c["mode"], "{source}");
        let Prepared::NeedsBackgroundRemoval(rgb) = prepare(&src).unwrap() else {
            panic!("{source}: no RGBA alpha, so background removal");
        };
        let size = (
            c["size"][0].as_u64().unwrap() as u32,
            c["size"][1].as_u64().unwrap() as u32,
        );
        assert_eq!(rgb.dimensions(), size, "{source}");
        assert_eq!(
            sha256(rgb.as_raw()),
            c["sha256"],
            "{source}: differs from Pillow"
        );
    }
}
