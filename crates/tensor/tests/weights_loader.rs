//! Safetensors loading: exact key and shape checks (errors name the key and both shapes),
//! unused-key reporting, and dtype conversion on load (round-to-nearest-even), on small files
//! written here with the `safetensors` crate.

use std::collections::HashMap;
use std::path::PathBuf;

use safetensors::Dtype as StDtype;
use safetensors::tensor::TensorView;
use t2_tensor::{DType, Device, Error, Weights, bf16};

/// A file path in a per-process temp dir (each test uses its own name).
fn path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("t2-tensor-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Writes `a` (f32 [2, 3]), `b` (bf16 [4]), `idx` (i32 [2]) and a metadata entry.
fn write_file(name: &str) -> PathBuf {
    let a: Vec<f32> = vec![1.0, -2.5, 3.25, 1.0 + 1.0 / 256.0, 1.0 + 3.0 / 256.0, -0.1];
    let b: Vec<bf16> = [0.5f32, -1.5, 2.0, 3.0]
        .iter()
        .map(|&v| bf16::from_f32(v))
        .collect();
    let idx: Vec<i32> = vec![7, -3];
    let (ab, bb, ib) = (
        bytemuck::cast_slice::<f32, u8>(&a).to_vec(),
        bytemuck::cast_slice::<bf16, u8>(&b).to_vec(),
        bytemuck::cast_slice::<i32, u8>(&idx).to_vec(),
    );
    let tensors = vec![
        ("a", TensorView::new(StDtype::F32, vec![2, 3], &ab).unwrap()),
        ("b", TensorView::new(StDtype::BF16, vec![4], &bb).unwrap()),
        ("idx", TensorView::new(StDtype::I32, vec![2], &ib).unwrap()),
    ];
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    let p = path(name);
    safetensors::serialize_to_file(tensors, Some(meta), &p).unwrap();
    p
}

#[test]
fn loads_with_conversion_and_reports_metadata() {
    let w = Weights::open(write_file("convert.safetensors")).unwrap();
    assert_eq!(w.keys(), vec!["a", "b", "idx"]);
    assert_eq!(w.metadata().get("format").map(String::as_str), Some("pt"));
    assert_eq!(w.info("b"), Some((DType::BF16, &[4usize][..])));
    // f32 → bf16 rounds to nearest even: 1 + 2⁻⁸ ties to 1, 1 + 3·2⁻⁸ to 1 + 2⁻⁶.
    let a = w.get("a", &[2, 3], DType::BF16, &Device::Cpu).unwrap();
    assert_eq!(a.dtype(), DType::BF16);
    let av = a.to_vec_f32().unwrap();
    assert_eq!(&av[..5], &[1.0, -2.5, 3.25, 1.0, 1.0 + 4.0 / 256.0]);
    assert_eq!(av[5], bf16::from_f32(-0.1).to_f32());
    // bf16 → f32 is exact.
    let b = w.get("b", &[4], DType::F32, &Device::Cpu).unwrap();
    assert_eq!(b.to_vec::<f32>().unwrap(), vec![0.5, -1.5, 2.0, 3.0]);
    let idx = w.get_stored("idx", &Device::Cpu).unwrap();
    assert_eq!(idx.to_vec::<i32>().unwrap(), vec![7, -3]);
    w.finish().unwrap();
}

#[test]
fn missing_key_is_named() {
    let w = Weights::open(write_file("missing.safetensors")).unwrap();
    match w.get("blocks.0.weight", &[2], DType::F32, &Device::Cpu) {
        Err(Error::MissingKey { key, .. }) => assert_eq!(key, "blocks.0.weight"),
        other => panic!("expected MissingKey, got {other:?}"),
    }
}

#[test]
fn wrong_shape_names_key_and_both_shapes() {
    let w = Weights::open(write_file("shape.safetensors")).unwrap();
    match w.get("a", &[3, 2], DType::F32, &Device::Cpu) {
        Err(Error::KeyShape {
            key,
            expected,
            actual,
            ..
        }) => {
            assert_eq!(key, "a");
            assert_eq!(expected, vec![3, 2]);
            assert_eq!(actual, vec![2, 3]);
        }
        other => panic!("expected KeyShape, got {other:?}"),
    }
    let msg = w
        .get("a", &[6], DType::F32, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("`a`") && msg.contains("[2, 3]") && msg.contains("[6]"),
        "{msg}"
    );
}

#[test]
fn unused_keys_are_reported_by_finish() {
    let w = Weights::open(write_file("unused.safetensors")).unwrap();
    w.get("a", &[2, 3], DType::F32, &Device::Cpu).unwrap();
    match w.finish() {
        Err(Error::UnusedKeys { keys, .. }) => assert_eq!(keys, vec!["b", "idx"]),
        other => panic!("expected UnusedKeys, got {other:?}"),
    }
    // A misshaped read does not count as a use.
    let _ = w.get("b", &[5], DType::F32, &Device::Cpu);
    assert!(w.finish().is_err());
}

#[test]
fn garbage_files_are_errors_not_panics() {
    let p = path("garbage.safetensors");
    std::fs::write(&p, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}").unwrap();
    assert!(matches!(Weights::open(&p), Err(Error::Weights { .. })));
    assert!(matches!(
        Weights::open(path("does-not-exist.safetensors")),
        Err(Error::Io { .. })
    ));
}

/// On a GPU: a tensor loaded in its stored dtype goes straight from the file mapping to the
/// device; converted ones go through the host cast. Both must hold exactly the bytes the CPU
/// load gives. Skips without a GPU unless `TRELLIS2_REQUIRE_CUDA=1`.
#[test]
fn loads_onto_the_gpu_exactly_as_onto_the_cpu() {
    let Some(gpu) = t2_tensor::testing::cuda_or_skip() else {
        return;
    };
    let gpu = Device::Cuda(gpu);
    let w = Weights::open(write_file("gpu.safetensors")).unwrap();
    for (key, shape, dtype) in [
        ("a", &[2usize, 3][..], DType::F32),
        ("a", &[2, 3][..], DType::BF16),
        ("b", &[4][..], DType::BF16),
        ("b", &[4][..], DType::F32),
        ("idx", &[2][..], DType::I32),
    ] {
        let cpu = w.get(key, shape, dtype, &Device::Cpu).unwrap();
        let dev = w.get(key, shape, dtype, &gpu).unwrap();
        assert_eq!(
            (dev.dtype(), dev.shape()),
            (cpu.dtype(), cpu.shape()),
            "{key}"
        );
        let back = dev.to_device(&Device::Cpu).unwrap();
        assert_eq!(
            back.to_host_storage().unwrap().as_bytes(),
            cpu.to_host_storage().unwrap().as_bytes(),
            "{key} as {dtype:?}"
        );
    }
}
