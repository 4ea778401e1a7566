//! JPEG decode time: libjpeg-turbo's decoder as used by `decode_pil_with_limits` against
//! zune-jpeg (the decoder this crate used before), in the same process on the same bytes.
//!
//!     cargo bench -p t2-imageops --bench jpeg_decode [-- FILE.jpg ...]
//!
//! Without files it encodes a synthetic 4096×4096 photo-like image (gradients, soft shapes,
//! noise; baseline 4:4:4 at quality 90, all `image`'s encoder writes). Prints the median of several
//! runs per decoder and the ratio. Whether libjpeg-turbo's SIMD is in depends on `nasm` being
//! installed when mozjpeg-sys was built (C code otherwise, same pixels).

use std::time::{Duration, Instant};

use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, ImageEncoder};
use sha2::{Digest, Sha256};
use t2_imageops::{Limits, PilImage, decode_pil_with_limits};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;

const SIDE: u32 = 4096;
const RUNS: usize = 7;

fn synthetic_jpeg() -> Vec<u8> {
    let (w, h) = (SIDE as usize, SIDE as usize);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 58) as f32 - 32.0 // -32..31
    };
    let mut rgb = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let blob = (-((fx - 0.6) / 0.2).powi(2) - ((fy - 0.45) / 0.25).powi(2)).exp();
            let base = [
                128.0 + 100.0 * (fx * 3.1 + 0.4).sin() * (fy * 2.3).cos(),
                90.0 + 80.0 * fx + 60.0 * ((x + y) as f32 / 70.0).sin(),
                200.0 - 150.0 * fy + 40.0 * (x as f32 / 50.0).cos(),
            ];
            let tint = [250.0, 40.0, 30.0];
            for c in 0..3 {
                let v = base[c] * (1.0 - blob) + tint[c] * blob + noise() * 0.25;
                rgb[(y * w + x) * 3 + c] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(&rgb, SIDE, SIDE, ExtendedColorType::Rgb8)
        .expect("encode");
    out
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn time(mut f: impl FnMut()) -> Duration {
    f(); // warm-up
    median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

fn zune_rgb(bytes: &[u8]) -> Vec<u8> {
    let options = DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX)
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options)
        .decode()
        .expect("zune-jpeg decode")
}

fn bench(label: &str, bytes: &[u8]) {
    let limits = Limits {
        max_bytes: usize::MAX,
        ..Limits::default()
    };
    let img = decode_pil_with_limits(bytes, &limits).expect("libjpeg-turbo decode");
    let (w, h) = img.dimensions();
    // Compare with `hashlib.sha256(np.array(Image.open(f)).tobytes())` for Pillow's file.
    let samples = match &img {
        PilImage::L(i) => i.as_raw().as_slice(),
        PilImage::Rgb(i) => i.as_raw().as_slice(),
        PilImage::Cmyk(i) => i.as_raw().as_slice(),
        _ => &[],
    };
    let digest = hex::encode(Sha256::digest(samples));
    let ours = time(|| {
        std::hint::black_box(decode_pil_with_limits(bytes, &limits).unwrap());
    });
    let zune = time(|| {
        std::hint::black_box(zune_rgb(bytes));
    });
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "| {label} | {w}x{h} {} | {:.1} KiB | {:.1} | {:.1} | {:.2} | {} |",
        img.mode(),
        bytes.len() as f64 / 1024.0,
        ms(ours),
        ms(zune),
        ms(ours) / ms(zune),
        &digest[..16]
    );
}

fn main() {
    let files: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    println!(
        "median of {RUNS} runs, {} rayon threads available",
        rayon::current_num_threads()
    );
    println!(
        "| input | image | size | libjpeg-turbo ms | zune-jpeg ms | ratio | sha256 of samples |"
    );
    println!("|---|---|---:|---:|---:|---:|---|");
    if files.is_empty() {
        bench("synthetic 4:4:4 q90", &synthetic_jpeg());
    }
    for f in files {
        let bytes = std::fs::read(&f).unwrap_or_else(|e| panic!("{f}: {e}"));
        bench(&f, &bytes);
    }
}
