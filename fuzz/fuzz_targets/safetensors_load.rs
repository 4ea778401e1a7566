//! Checkpoint loading (`t2_tensor::Weights`): the fuzz input is written to a file and opened the
//! way every model opens its weights (mmap, safetensors header, dtype mapping), then every
//! tensor is read the ways the loaders read them: `get` with its own shape as F32 (dtype
//! conversion on the host), `get_stored`, `get` with a wrong shape (must be an error), and
//! `finish` (strictness about unused keys).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use t2_tensor::{DType, Device, Weights};

fn path() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

fuzz_target!(|data: &[u8]| {
    let file = path().join("model.safetensors");
    std::fs::write(&file, data).expect("write");
    let Ok(ws) = Weights::open(&file) else {
        return;
    };
    let keys = ws.keys();
    let dev = Device::Cpu;
    for key in &keys {
        let (dtype, shape) = ws.info(key).expect("listed key has info");
        let shape = shape.to_vec();
        let elements: usize = shape.iter().product();
        if let Ok(t) = ws.get(key, &shape, DType::F32, &dev) {
            assert_eq!(t.shape(), &shape[..]);
            assert_eq!(t.to_vec_f32().expect("host f32").len(), elements);
        }
        if let Ok(t) = ws.get_stored(key, &dev) {
            assert_eq!(t.dtype(), dtype);
        }
        let mut wrong = shape.clone();
        wrong.push(1);
        assert!(
            ws.get(key, &wrong, dtype, &dev).is_err(),
            "{key}: wrong shape accepted"
        );
    }
    // Everything was read: strict `finish` must be satisfied, unless some reads failed.
    let _ = ws.finish();
    assert!(ws.get("\u{0}no such key", &[1], DType::F32, &dev).is_err());
});
