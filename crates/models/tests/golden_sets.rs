//! The golden root itself: every set directory must be one this port knows and must hold its
//! files, so that a set that is present is never silently skipped (the per-set tests then run
//! whatever sets exist). `mesh/` belongs to the mesh crate's tests.

mod common;

const SETS: &[(&str, &[&str])] = &[
    ("rng", &["io.safetensors"]),
    ("schedule", &["io.safetensors", "schedule.json"]),
    (
        "dinov3",
        &["io.safetensors", "config.json", "model.safetensors"],
    ),
    (
        "ss_flow",
        &["io.safetensors", "config.json", "model.safetensors"],
    ),
    (
        "slat_flow_shape",
        &["io.safetensors", "config.json", "model.safetensors"],
    ),
    (
        "slat_flow_tex",
        &["io.safetensors", "config.json", "model.safetensors"],
    ),
    ("sampler", &["io.safetensors"]),
    (
        "ss_decoder",
        &["io.safetensors", "config.json", "model.safetensors"],
    ),
    (
        "shape_decoder",
        &["io.safetensors", "config.json", "model.safetensors"],
    ),
    (
        "tex_decoder",
        &["io.safetensors", "config.json", "model.safetensors"],
    ),
    ("pipeline_tiny", &["io.safetensors", "pipeline.json"]),
    ("mesh", &["io.safetensors"]),
];

#[test]
fn golden_root_layout() {
    let root = common::goldens_root();
    let mut present = 0;
    for entry in std::fs::read_dir(&root).expect("read golden root") {
        let path = entry.expect("dir entry").path();
        if !path.is_dir() {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let (_, files) = SETS
            .iter()
            .find(|(s, _)| *s == name)
            .unwrap_or_else(|| panic!("unknown golden set `{name}` under {}", root.display()));
        for f in *files {
            assert!(path.join(f).is_file(), "golden set `{name}` lacks {f}");
        }
        // The io file must parse (tensors are checked by each set's test).
        common::Io::open(&path);
        present += 1;
    }
    assert!(present > 0, "no golden set under {}", root.display());
    // Sets that read sibling sets' models.
    if root.join("sampler").is_dir() {
        for dep in ["ss_flow", "slat_flow_shape", "slat_flow_tex"] {
            assert!(root.join(dep).is_dir(), "`sampler` needs `{dep}`");
        }
    }
    eprintln!("{present} golden sets present");
}
