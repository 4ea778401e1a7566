//! ONNX model loading as the RMBG service does it (`BiRefNet::load_with`, CPU provider): the
//! fuzz input is written as the model file, ONNX Runtime parses and builds a session, then the
//! signature check (one float input [1, 3, 1024, 1024], last output [1, 1, 1024, 1024]).
//!
//! Our own code does not parse ONNX: the parser is ONNX Runtime's C++ (loaded at run time from
//! `ORT_DYLIB_PATH`), which is not built with coverage instrumentation, so libFuzzer is only
//! guided by the Rust side and the mutations are close to blind. It still catches a crash or
//! hang in ORT on a hostile model file, and an error path of ours that panics. Leak checking is
//! off for this target (`-detect_leaks=0` in ci-fuzz.sh): ORT keeps process-wide allocations.
//!
//! `ort` (the Rust binding) itself panics on some hostile files (an `expect` on a C API result;
//! the first found: Resize scales that overflow the inferred output dims, now
//! `regress-ort-resize-scales-overflow` in the corpus).
//! t2-birefnet contains those panics and answers `ModelInvalid`. libFuzzer's panic hook aborts
//! on every panic, caught or not, so this target lets a panic raised inside `ort`'s own source
//! unwind to that catch; any other panic (ours) still aborts, and a contained panic must end in
//! an error (checked below).
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Keep libFuzzer's aborting hook for every panic except those raised in `ort`'s source, which
/// t2-birefnet catches (see the module comment); those set `BINDING_PANICKED`.
fn contain_binding_panics() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let abort_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // The registry source path holds a folder `ort-<version>`.
            let in_ort = info.location().is_some_and(|l| {
                l.file().split(['/', '\\']).any(|dir| {
                    dir.strip_prefix("ort-")
                        .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
                })
            });
            if in_ort {
                BINDING_PANICKED.store(true, Ordering::SeqCst);
            } else {
                abort_hook(info);
            }
        }));
    });
}

static BINDING_PANICKED: AtomicBool = AtomicBool::new(false);

fuzz_target!(|data: &[u8]| {
    contain_binding_panics();
    BINDING_PANICKED.store(false, Ordering::SeqCst);
    static OPTS: OnceLock<LoadOptions> = OnceLock::new();
    let opts = OPTS.get_or_init(|| LoadOptions {
        provider: Provider::Cpu,
        dylib: Some(dylib()),
        ..LoadOptions::default()
    });
    let file = model_path().join("model.onnx");
    std::fs::write(&file, data).expect("write model");
    let loaded = BiRefNet::load_with(&file, opts);
    if BINDING_PANICKED.swap(false, Ordering::SeqCst) {
        assert!(
            loaded.is_err(),
            "a contained binding panic must fail the load"
        );
    }
    if let Ok(net) = loaded {
        // A model that loads has passed the signature check: inference on a tiny image must
        // either produce a mask of the image's size or a typed error, never a panic.
        let img = image::RgbImage::from_pixel(4, 3, [200, 100, 50].into());
        let predicted = net.predict_mask(&img);
        if BINDING_PANICKED.swap(false, Ordering::SeqCst) {
            assert!(
                predicted.is_err(),
                "a contained binding panic must fail the inference"
            );
        }
        if let Ok(mask) = predicted {
            assert_eq!(mask.dimensions(), (4, 3));
        }
    }
});
