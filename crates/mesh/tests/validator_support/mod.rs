//! Shared by the GLB tests: runs the Khronos glTF validator (npm `gltf-validator`, installed by
//! `npm ci --prefix crates/mesh/tests/validator`) through `node` and returns its report.
//! A missing node or validator FAILS the calling test: the acceptance criterion needs it.

use std::path::PathBuf;
use std::process::Command;

pub fn validator_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/validator")
}

/// The validator's report for `glb` (a JSON object with `issues.numErrors` etc.).
pub fn validate(glb: &[u8], name: &str) -> serde_json::Value {
    let dir = validator_dir();
    assert!(
        dir.join("node_modules/gltf-validator").is_dir(),
        "gltf-validator is not installed: run `npm ci --prefix {}`",
        dir.display()
    );
    let path = std::env::temp_dir().join(format!("t2-mesh-{}-{name}.glb", std::process::id()));
    std::fs::write(&path, glb).expect("write temp GLB");
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
    serde_json::from_slice(&out.stdout).expect("validator report is JSON")
}

/// Asserts zero validator errors, printing the messages otherwise.
pub fn assert_valid(glb: &[u8], name: &str) -> serde_json::Value {
    let report = validate(glb, name);
    let errors = report["issues"]["numErrors"].as_u64().expect("numErrors");
    if errors != 0 {
        let msgs: Vec<String> = report["issues"]["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["severity"].as_u64() == Some(0))
            .map(|m| format!("{} at {}: {}", m["code"], m["pointer"], m["message"]))
            .collect();
        panic!("{name}: {errors} validator errors:\n{}", msgs.join("\n"));
    }
    eprintln!(
        "{name}: validator errors 0, warnings {}, infos {}",
        report["issues"]["numWarnings"], report["issues"]["numInfos"]
    );
    report
}
