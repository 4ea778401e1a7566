//! Limits are enforced from the header, before any pixel is decoded; truncated or corrupt
//! input is an error, never a panic.

use std::path::{Path, PathBuf};

use t2_imageops::{
    Format, ImageError, Limits, MAX_PROGRESSIVE_SCANS, decode_pil_with_limits, decode_with_limits,
    probe_dimensions,
};

fn fixture(name: &str) -> Vec<u8> {
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(p).unwrap()
}

const SOURCES: [&str; 6] = [
    "src_rgb_61x47.png",
    "src_ycbcr420_61x47.jpg",
    "src_cmyk_45x33.jpg",
    "src_progressive420_59x45.jpg",
    "src_ycbcr422_rst_61x47.jpg",
    "src_rgba_53x37_lossless.webp",
];

/// Offset of the first JPEG marker `code` (the 0xFF byte) among the header segments.
fn jpeg_marker(jpeg: &[u8], code: u8) -> usize {
    let mut i = 2;
    while jpeg[i + 1] != code {
        assert_ne!(
            jpeg[i + 1],
            0xDA,
            "marker {code:#x} not before the first scan"
        );
        i += 2 + usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
    }
    i
}

/// The progressive fixture with its last scan (header and entropy-coded data, up to the EOI)
/// sent `extra` more times: a "scan bomb" when `extra` is large.
fn progressive_with_extra_scans(extra: usize) -> Vec<u8> {
    let jpeg = fixture("src_progressive420_59x45.jpg");
    let last_sos = jpeg.windows(2).rposition(|w| w == [0xFF, 0xDA]).unwrap();
    let eoi = jpeg.len() - 2;
    assert_eq!(&jpeg[eoi..], &[0xFF, 0xD9]);
    let mut out = jpeg[..eoi].to_vec();
    for _ in 0..extra {
        out.extend_from_slice(&jpeg[last_sos..eoi]);
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// A PNG whose IHDR claims `w x h` (CRC fixed up) followed by the original, tiny IDAT: a
/// decompression bomb's header.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut png = fixture("src_rgb_61x47.png");
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn bombs_are_refused_from_the_header() {
    let limits = Limits::default();
    let err = decode_with_limits(&png_claiming(100_000, 100_000), &limits).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::SideTooLong {
                width: 100_000,
                height: 100_000,
                limit: 4096
            }
        ),
        "{err}"
    );
    assert!(err.is_limit());

    let tight = Limits {
        max_pixels: 1000,
        ..Limits::default()
    };
    let err = decode_with_limits(&fixture("src_rgb_61x47.png"), &tight).unwrap_err();
    assert!(
        matches!(err, ImageError::TooManyPixels { pixels: 2867, .. }),
        "{err}"
    );
    for name in SOURCES {
        let err = decode_with_limits(
            &fixture(name),
            &Limits {
                max_side: 40,
                ..Limits::default()
            },
        );
        assert!(
            matches!(err, Err(ImageError::SideTooLong { .. })),
            "{name}: {err:?}"
        );
    }
    assert_eq!(
        probe_dimensions(&png_claiming(5000, 7)).unwrap(),
        (Format::Png, 5000, 7)
    );

    // A JPEG frame header claiming 60000 x 50000 in front of a 61x47 scan.
    let mut jpeg = fixture("src_ycbcr420_61x47.jpg");
    let sof = jpeg_marker(&jpeg, 0xC0);
    jpeg[sof + 5..sof + 7].copy_from_slice(&50_000u16.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&60_000u16.to_be_bytes());
    assert_eq!(
        probe_dimensions(&jpeg).unwrap(),
        (Format::Jpeg, 60_000, 50_000)
    );
    let err = decode_with_limits(&jpeg, &limits).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::SideTooLong {
                width: 60_000,
                height: 50_000,
                ..
            }
        ),
        "{err}"
    );
}

/// Every progressive scan is a pass over the whole frame, so the scan count is capped.
#[test]
fn progressive_scan_bombs_are_refused() {
    let normal = fixture("src_progressive420_59x45.jpg");
    assert!(decode_pil_with_limits(&normal, &Limits::default()).is_ok());
    let scans = normal.windows(2).filter(|w| w == &[0xFF, 0xDA]).count();
    let under = MAX_PROGRESSIVE_SCANS as usize - scans;
    // Repeated refinement scans only draw libjpeg warnings: still an image.
    let ok = decode_pil_with_limits(&progressive_with_extra_scans(under), &Limits::default());
    assert!(ok.is_ok(), "{} scans: {:?}", scans + under, ok.err());
    let err = decode_pil_with_limits(&progressive_with_extra_scans(under + 1), &Limits::default())
        .unwrap_err();
    assert!(
        matches!(err, ImageError::UnsupportedContent { .. }) && err.to_string().contains("scans"),
        "{err}"
    );
}

/// JPEG variants Pillow 13 does not open (12-bit) or that this libjpeg lacks (lossless) are
/// refused as unsupported content, not as corrupt files.
#[test]
fn unsupported_jpeg_variants_are_named() {
    let jpeg = fixture("src_ycbcr420_61x47.jpg");
    let sof = jpeg_marker(&jpeg, 0xC0);
    let mut twelve_bit = jpeg.clone();
    twelve_bit[sof + 4] = 12;
    let mut lossless = jpeg.clone();
    lossless[sof + 1] = 0xC3;
    for (what, bytes) in [("12-bit", twelve_bit), ("lossless", lossless)] {
        let err = decode_pil_with_limits(&bytes, &Limits::default()).unwrap_err();
        assert!(
            matches!(err, ImageError::UnsupportedContent { .. }),
            "{what}: {err}"
        );
    }
}

#[test]
fn byte_limit_and_unknown_formats() {
    let png = fixture("src_rgb_61x47.png");
    let err = decode_with_limits(
        &png,
        &Limits {
            max_bytes: 100,
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, ImageError::TooManyBytes { limit: 100, .. }) && err.is_limit());
    assert!(matches!(
        decode_with_limits(&[], &Limits::default()),
        Err(ImageError::Empty)
    ));
    let err = decode_with_limits(b"GIF89a\x01\x00\x01\x00", &Limits::default()).unwrap_err();
    assert!(
        matches!(err, ImageError::UnsupportedFormat { .. }) && !err.is_limit(),
        "{err}"
    );
    let err = decode_with_limits(&png_claiming(0, 10), &Limits::default()).unwrap_err();
    assert!(!err.is_limit(), "{err}");
}

/// A cut inside the pixel data is an error; a cut in what follows it (e.g. PNG's IEND) may
/// still decode, but then only to exactly the full image — never to silently filled pixels.
#[test]
fn every_truncation_is_an_error_or_the_complete_image() {
    for name in SOURCES {
        let bytes = fixture(name);
        let full = decode_pil_with_limits(&bytes, &Limits::default()).unwrap();
        let mut decoded_cuts = 0;
        for len in 0..bytes.len() {
            if let Ok(img) = decode_pil_with_limits(&bytes[..len], &Limits::default()) {
                assert!(
                    img == full,
                    "{name} cut to {len} of {} bytes: wrong pixels",
                    bytes.len()
                );
                decoded_cuts += 1;
            }
        }
        assert!(
            decoded_cuts <= 16,
            "{name}: {decoded_cuts} truncations decoded"
        );
    }
}

#[test]
fn corrupted_bytes_never_panic() {
    // Deterministic xorshift so a failure reproduces.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for name in SOURCES {
        let bytes = fixture(name);
        for _ in 0..300 {
            let mut b = bytes.clone();
            for _ in 0..1 + next() % 8 {
                let i = (next() % b.len() as u64) as usize;
                b[i] ^= 1 << (next() % 8);
            }
            // Ok (a flip in a don't-care byte) or Err are both fine; a panic is not.
            let _ = decode_pil_with_limits(&b, &Limits::default());
        }
    }
}
