//! The demo model set, inputs the demo models turn into meshes, and the Khronos glTF
//! validator, for the end-to-end tests.
//!
//! Inputs: the demo set's random weights make decoder decisions that depend on the input; the
//! two images here are ones its 512 pipeline turns into non-empty meshes (a red-dominant
//! gradient disc, which the RMBG fixture model — a red detector — cuts out of a blue
//! background; and the demo set's own calibration image as RGBA).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use image::{DynamicImage, ImageFormat};

/// One demo model set per test binary.
pub fn demo_models() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        t2_svc_flow::shared::model_dir::write_demo_set(d.path()).unwrap();
        d
    })
    .path()
}

/// A photo without alpha (JPEG): background removal has to find the subject (the load test's
/// workload photo, which the demo models turn into a mesh).
#[allow(unused_imports)] // not every test binary sends it
pub use t2_loadtest::workload::photo_jpeg;

/// An RGBA PNG with real transparency: used as is, no background removal.
pub fn cutout_png() -> Vec<u8> {
    encode(
        DynamicImage::ImageRgba8(t2_models::demo::demo_image(64)),
        ImageFormat::Png,
    )
}

fn encode(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), format)
        .unwrap();
    out
}

fn validator_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/mesh/tests/validator")
}

/// Asserts that `glb` passes the Khronos glTF validator with zero errors (npm
/// `gltf-validator`, installed by `npm ci --prefix crates/mesh/tests/validator`; a missing
/// node or validator FAILS the test: the acceptance criterion needs it).
pub fn assert_valid_glb(glb: &[u8], name: &str) {
    let dir = validator_dir();
    assert!(
        dir.join("node_modules/gltf-validator").is_dir(),
        "gltf-validator is not installed: run `npm ci --prefix {}`",
        dir.display()
    );
    let path = std::env::temp_dir().join(format!("t2-e2e-{}-{name}.glb", std::process::id()));
    std::fs::write(&path, glb).unwrap();
    let out = Command::new("node")
        .arg(dir.join("validate.js"))
        .arg(&path)
        .output()
        .expect("`node` must be installed to run the glTF validator");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "validator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors = report["issues"]["numErrors"].as_u64().expect("numErrors");
    assert_eq!(
        errors, 0,
        "{name}: the validator found errors: {}",
        report["issues"]["messages"]
    );
}
