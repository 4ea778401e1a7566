//! The real ONNX Runtime path on CPU, with the RMBG-shaped fixture models written by
//! `tests/fixtures/make_fixture.py` (expected cut-out computed there with onnxruntime 1.32.0 +
//! Pillow 13 following the reference's BiRefNet wrapper).
//!
//! Needs `libonnxruntime.so`: `ORT_DYLIB_PATH`, or the default install of
//! `scripts/setup-onnxruntime.sh`. Without either these tests FAIL (they never skip), so CI
//! must run the setup script.
//!
//! Tolerance of the cut-out: RGB bit-exact (it is the input); alpha within 1 LSB. The logits
//! are bitwise those of onnxruntime in Python (same library), but the sigmoid's `exp` is
//! numpy's float32 SIMD `exp` there and Rust's `f32::exp` here; a 1-ulp difference can move
//! `x * 255` across an integer before truncation, and the bicubic resize carries that to at
//! most 1 LSB.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::RgbImage;
use t2_birefnet::{ActiveProvider, BiRefNet, BiRefNetError, LoadOptions, Provider};
use t2_imageops::{Limits, PilImage, Prepared, crop_premultiply, decode_pil_with_limits, prepare};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn dylib() -> PathBuf {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let capi = home.join(".cache/t2-onnxruntime/onnxruntime/capi");
    let found = std::fs::read_dir(&capi).ok().and_then(|dir| {
        dir.filter_map(|e| e.ok().map(|e| e.path())).find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so.1"))
        })
    });
    found.unwrap_or_else(|| {
        panic!(
            "ORT_DYLIB_PATH is unset and {} has no libonnxruntime.so.1*: run \
             `eval \"$(scripts/setup-onnxruntime.sh)\"` first",
            capi.display()
        )
    })
}

fn load(model: &str, provider: Provider) -> Result<BiRefNet, BiRefNetError> {
    let opts = LoadOptions {
        provider,
        dylib: Some(dylib()),
        ..LoadOptions::default()
    };
    BiRefNet::load_with(fixture(model), &opts)
}

fn photo() -> RgbImage {
    image::open(fixture("photo_97x73.png")).unwrap().into_rgb8()
}

#[test]
fn cutout_matches_the_reference_pipeline() {
    let net = load("rmbg_fixture.onnx", Provider::Cpu).unwrap();
    assert_eq!(net.provider(), ActiveProvider::Cpu);
    let img = photo();
    let ours = net.remove_background(&img).unwrap();
    let expected = image::open(fixture("expected_cutout_97x73.png"))
        .unwrap()
        .into_rgba8();
    assert_eq!(ours.dimensions(), expected.dimensions());
    let mut alpha_off = 0;
    for (a, b) in ours.pixels().zip(expected.pixels()) {
        assert_eq!(a.0[..3], b.0[..3], "RGB must be the input's");
        let d = (i32::from(a[3]) - i32::from(b[3])).abs();
        assert!(d <= 1, "alpha differs by {d}");
        alpha_off += usize::from(d != 0);
    }
    // Not a degenerate mask: the fixture detects the red object.
    let opaque = ours.pixels().filter(|p| p[3] > 204).count();
    assert!(
        opaque > 100 && opaque < 97 * 73 / 2,
        "opaque pixels: {opaque}"
    );
    eprintln!("alpha samples off by 1: {alpha_off} of {}", 97 * 73);
}

#[test]
fn only_the_last_output_is_the_mask() {
    let one = load("rmbg_fixture.onnx", Provider::Cpu).unwrap();
    let three = load("rmbg_fixture_3out.onnx", Provider::Cpu).unwrap();
    let img = photo();
    assert_eq!(
        one.remove_background(&img).unwrap(),
        three.remove_background(&img).unwrap()
    );
}

#[test]
fn auto_reports_the_provider_it_got() {
    let net = load("rmbg_fixture.onnx", Provider::Auto).unwrap();
    // The CPU wheel has no CUDA provider; a GPU build on a GPU host reports CUDA.
    eprintln!("Provider::Auto is running on {}", net.provider().as_str());
    match load("rmbg_fixture.onnx", Provider::Cuda) {
        Ok(cuda) => {
            assert_eq!(cuda.provider(), ActiveProvider::Cuda);
            // The same cut-out as the CPU provider: the mask's float math may round differently
            // in the last bits, so one 8-bit level of difference is allowed, no more.
            let cpu = load("rmbg_fixture.onnx", Provider::Cpu).unwrap();
            let img = photo();
            let on_gpu = cuda.remove_background(&img).unwrap();
            let on_cpu = cpu.remove_background(&img).unwrap();
            let worst = on_gpu
                .as_raw()
                .iter()
                .zip(on_cpu.as_raw())
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap();
            assert!(worst <= 1, "CUDA and CPU cut-outs differ by {worst} levels");
            let reps = 20;
            let t = std::time::Instant::now();
            for _ in 0..reps {
                cuda.remove_background(&img).unwrap();
            }
            eprintln!(
                "CUDA execution provider: {:.3} ms per {}x{} image (fixture model), max diff to CPU {worst}",
                t.elapsed().as_secs_f64() * 1e3 / reps as f64,
                img.width(),
                img.height()
            );
        }
        Err(e) => {
            assert!(matches!(e, BiRefNetError::CudaUnavailable { .. }), "{e}");
            assert_eq!(net.provider(), ActiveProvider::Cpu);
        }
    }
}

#[test]
fn wrong_or_missing_model_files_are_named() {
    let err = load("rmbg_wrong_size.onnx", Provider::Cpu).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, BiRefNetError::Signature { .. }), "{msg}");
    assert!(
        msg.contains("rmbg_wrong_size.onnx") && msg.contains("pixel_values") && msg.contains("512"),
        "{msg}"
    );

    let err = load("no_such_model.onnx", Provider::Cpu).unwrap_err();
    assert!(
        matches!(err, BiRefNetError::ModelMissing { .. })
            && err.to_string().contains("no_such_model.onnx")
    );

    let err = load("photo_97x73.png", Provider::Cpu).unwrap_err();
    assert!(
        matches!(err, BiRefNetError::ModelInvalid { .. })
            && err.to_string().contains("photo_97x73.png"),
        "{err}"
    );
}

/// Resize scales of 1e30 load in ONNX Runtime with inferred output dims of i64::MIN, and `ort`
/// then panics (an `expect` on `SetDimensions`) while it lists the session's outputs: a typed
/// error, not a panic (the `onnx_load` fuzz target found it).
#[test]
fn a_model_that_makes_the_binding_panic_is_an_invalid_model() {
    let err = load("rmbg_overflowing_scales.onnx", Provider::Cpu).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, BiRefNetError::ModelInvalid { .. })
            && msg.contains("rmbg_overflowing_scales.onnx")
            && msg.contains("ONNX Runtime's Rust binding"),
        "{msg}"
    );
    // The process goes on loading models.
    assert!(load("rmbg_fixture.onnx", Provider::Cpu).is_ok());
}

#[test]
fn s0_end_to_end_with_the_fixture_model() {
    let net = Arc::new(load("rmbg_fixture.onnx", Provider::Cpu).unwrap());
    let bytes = std::fs::read(fixture("photo_97x73.png")).unwrap();
    let pil: PilImage = decode_pil_with_limits(&bytes, &Limits::default()).unwrap();
    let Prepared::NeedsBackgroundRemoval(rgb) = prepare(&pil).unwrap() else {
        panic!("an RGB photo goes through background removal");
    };
    // Two threads share one model; results are identical.
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (net, rgb) = (Arc::clone(&net), rgb.clone());
            std::thread::spawn(move || net.remove_background(&rgb).unwrap())
        })
        .collect();
    let cutouts: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(cutouts[0], cutouts[1]);
    let cond = crop_premultiply(&cutouts[0]).unwrap();
    assert!(
        cond.width() == cond.height() && cond.width() > 4,
        "{:?}",
        cond.dimensions()
    );

    let empty = RgbImage::new(0, 0);
    assert!(matches!(
        net.remove_background(&empty),
        Err(BiRefNetError::EmptyImage { .. })
    ));
}
