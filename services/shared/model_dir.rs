//! Model directories: `--models DIR|demo`, the demo set written once, and the model id that
//! ties a state to the decoders able to read it.
//!
//! (Shared source: included by each service crate with `#[path]`.)
//!
//! Layout (the Hugging Face repos side by side): TRELLIS.2-4B's files at the root
//! (`pipeline.json`, `ckpts/…`), every other repo under `<org>/<repo>/…`:
//! `microsoft/TRELLIS-image-large/ckpts/ss_dec_conv3d_16l8_fp16.*`,
//! `facebook/dinov3-vitl16-pretrain-lvd1689m/{config.json,model.safetensors}`,
//! `briaai/RMBG-2.0/onnx/model.onnx`.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The RMBG-2.0 ONNX export inside a model directory.
pub const RMBG_ONNX: &str = "briaai/RMBG-2.0/onnx/model.onnx";
/// Written into a demo set (and only there): its presence makes the model id say "demo".
pub const DEMO_MARKER: &str = "trellis2-demo.json";
/// Seed of the demo weights: fixed, so every machine writes the same files.
pub const DEMO_SEED: u64 = 7;
/// Bumped when the demo set's content changes, so an old cached set is rewritten.
pub const DEMO_VERSION: u32 = 1;
/// The `--models` value that selects the demo set.
pub const DEMO: &str = "demo";

/// A tiny ONNX model with RMBG-2.0's signature (`crates/birefnet/tests/fixtures`), the demo
/// set's background remover: it keys on red, so its masks are not trivial.
pub const RMBG_FIXTURE_ONNX: &[u8] =
    include_bytes!("../../crates/birefnet/tests/fixtures/rmbg_fixture.onnx");

#[derive(Debug, thiserror::Error)]
pub enum ModelDirError {
    #[error("--models must be `demo` or a model directory; {0:?} is neither")]
    NotADirectory(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{0} exists but is not a demo model set (no {DEMO_MARKER}); remove it or choose another directory"
    )]
    NotDemo(String),
    #[error("writing the demo models: {0}")]
    Demo(String),
    #[error("model directory {dir}: {detail}")]
    Invalid { dir: String, detail: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ModelDirError + '_ {
    move |source| ModelDirError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Where `--models demo` lives when no data directory says otherwise: `TRELLIS2_DEMO_DIR`,
/// else `<TRELLIS2_DATA or ./data>/models/demo`.
pub fn default_demo_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("TRELLIS2_DEMO_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let data = std::env::var_os("TRELLIS2_DATA")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("./data"));
    data.join("models").join("demo")
}

/// Resolves `--models`: `demo` (written to `demo_dir` on first use) or an existing directory.
pub fn resolve(spec: &str, demo_dir: &Path) -> Result<PathBuf, ModelDirError> {
    if spec == DEMO {
        return ensure_demo(demo_dir);
    }
    let p = PathBuf::from(spec);
    if !p.is_dir() {
        return Err(ModelDirError::NotADirectory(spec.to_string()));
    }
    Ok(p)
}

fn marker_json() -> String {
    format!(
        "{{\"generator\": \"t2-models demo::write_demo_models\", \"seed\": {DEMO_SEED}, \"version\": {DEMO_VERSION}}}\n"
    )
}

/// True when `dir` holds a complete demo set of this version.
pub fn is_current_demo(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join(DEMO_MARKER)).is_ok_and(|m| m == marker_json())
}

/// Writes the demo set (t2-models' tiny random-weight models + the RMBG fixture) into `dir`
/// unless it is already there. Concurrent writers are safe: each writes a private sibling
/// directory and renames it into place; the loser discards its copy.
pub fn ensure_demo(dir: &Path) -> Result<PathBuf, ModelDirError> {
    if is_current_demo(dir) {
        return Ok(dir.to_path_buf());
    }
    if dir.exists() && !dir.join(DEMO_MARKER).exists() {
        let empty = std::fs::read_dir(dir).map_err(io(dir))?.next().is_none();
        if !empty {
            return Err(ModelDirError::NotDemo(dir.display().to_string()));
        }
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "demo".into());
    let tmp = parent.join(format!(
        ".{name}.tmp-{}-{:08x}",
        std::process::id(),
        rand_u32()
    ));
    let written = write_demo_set(&tmp);
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if dir.exists() {
        // An empty directory, or an older demo version: replace it.
        let _ = std::fs::remove_dir_all(dir);
    }
    match std::fs::rename(&tmp, dir) {
        Ok(()) => Ok(dir.to_path_buf()),
        Err(_) if is_current_demo(dir) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dir.to_path_buf())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(io(dir)(e))
        }
    }
}

/// Writes the demo set into `out` (which may exist): models, RMBG fixture, then the marker.
pub fn write_demo_set(out: &Path) -> Result<(), ModelDirError> {
    t2_models::demo::write_demo_models(out, DEMO_SEED)
        .map_err(|e| ModelDirError::Demo(e.to_string()))?;
    let onnx = out.join(RMBG_ONNX);
    if let Some(p) = onnx.parent() {
        std::fs::create_dir_all(p).map_err(io(p))?;
    }
    std::fs::write(&onnx, RMBG_FIXTURE_ONNX).map_err(io(&onnx))?;
    let marker = out.join(DEMO_MARKER);
    std::fs::write(&marker, marker_json()).map_err(io(&marker))?;
    Ok(())
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() as u32
}

/// The id of the model set in `dir`, as recorded in every state: its name and a fingerprint of
/// `pipeline.json` and the two SC-VAE decoders (config bytes and weight sizes), so a state made
/// with other decoders is refused instead of decoded into garbage. Flow and mesh services
/// compute the same id from the same directory.
pub fn model_id(dir: &Path) -> Result<String, ModelDirError> {
    let invalid = |detail: String| ModelDirError::Invalid {
        dir: dir.display().to_string(),
        detail,
    };
    let config =
        t2_models::config::PipelineConfig::load(dir).map_err(|e| invalid(e.to_string()))?;
    let mut h = Sha256::new();
    let pipeline = dir.join("pipeline.json");
    h.update(std::fs::read(&pipeline).map_err(io(&pipeline))?);
    for key in ["shape_slat_decoder", "tex_slat_decoder"] {
        let files = config
            .model_files(key)
            .map_err(|e| invalid(e.to_string()))?
            .ok_or_else(|| invalid(format!("pipeline.json lists no `{key}`")))?;
        h.update(key.as_bytes());
        h.update(std::fs::read(&files.config).map_err(io(&files.config))?);
        let len = std::fs::metadata(&files.weights)
            .map_err(io(&files.weights))?
            .len();
        h.update(len.to_le_bytes());
    }
    let name = if dir.join(DEMO_MARKER).is_file() {
        "trellis2-demo"
    } else {
        "microsoft/TRELLIS.2-4B"
    };
    Ok(format!("{name}@{}", &hex::encode(h.finalize())[..12]))
}
