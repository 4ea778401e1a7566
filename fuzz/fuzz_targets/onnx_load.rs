//! ONNX model loading as the RMBG service does it (`BiRefNet::load_with`, CPU provider): the
//! fuzz input is written as the model file, ONNX Runtime parses and builds a session, then the
//! signature check (one float input [1, 3, 1024, 1024], last output [1, 1, 1024, 1024]).
//!
//! Our own code does not parse ONNX: the parser is ONNX Runtime's C++ (loaded at run time from
//! `ORT_DYLIB_PATH`), which is not built with coverage instrumentation, so libFuzzer is only
//! guided by the Rust side and the mutations are close to blind. It still catches a crash or
//! hang in ORT on a hostile model file, and an error path of ours that panics. Leak checking is
//! off for this target (`-detect_leaks=0` in ci-fuzz.sh): ORT keeps process-wide allocations.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use t2_birefnet::{BiRefNet, LoadOptions, Provider};

/// The library: `ORT_DYLIB_PATH`, else the default install of `scripts/setup-onnxruntime.sh`.
fn dylib() -> PathBuf {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let capi = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".cache/t2-onnxruntime/onnxruntime/capi");
    std::fs::read_dir(&capi)
        .ok()
        .and_then(|dir| {
            dir.filter_map(|e| e.ok().map(|e| e.path())).find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("libonnxruntime.so.1"))
            })
        })
        .unwrap_or_else(|| {
            panic!("no ONNX Runtime: set ORT_DYLIB_PATH or run scripts/setup-onnxruntime.sh")
        })
}

fn model_path() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

fuzz_target!(|data: &[u8]| {
    static OPTS: OnceLock<LoadOptions> = OnceLock::new();
    let opts = OPTS.get_or_init(|| LoadOptions {
        provider: Provider::Cpu,
        dylib: Some(dylib()),
        ..LoadOptions::default()
    });
    let file = model_path().join("model.onnx");
    std::fs::write(&file, data).expect("write model");
    if let Ok(net) = BiRefNet::load_with(&file, opts) {
        // A model that loads has passed the signature check: inference on a tiny image must
        // either produce a mask of the image's size or a typed error, never a panic.
        let img = image::RgbImage::from_pixel(4, 3, [200, 100, 50].into());
        if let Ok(mask) = net.predict_mask(&img) {
            assert_eq!(mask.dimensions(), (4, 3));
        }
    }
});
