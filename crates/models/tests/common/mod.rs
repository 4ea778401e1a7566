//! Shared golden-set reader for the parity tests.
//!
//! The golden root comes from `TRELLIS2_GOLDENS` (default `<workspace>/../shared/goldens`). A test
//! runs every set of its kind that is present there; a set directory that exists but lacks a
//! file, or holds a malformed tensor, FAILS the test (never a skip).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

pub fn goldens_root() -> PathBuf {
    let root = std::env::var_os("TRELLIS2_GOLDENS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/goldens"));
    assert!(
        root.is_dir(),
        "golden root {} does not exist (set TRELLIS2_GOLDENS)",
        root.display()
    );
    root
}

/// The directory of set `name`, or None (with a note) when this root does not have it.
pub fn set_dir(name: &str) -> Option<PathBuf> {
    let dir = goldens_root().join(name);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "golden set `{name}` is not present under {}",
            goldens_root().display()
        );
        None
    }
}

/// A set's `io.safetensors`, read fully into memory.
pub struct Io {
    path: PathBuf,
    bytes: Vec<u8>,
}

/// One tensor: shape and host values.
pub struct T<E> {
    pub shape: Vec<usize>,
    pub data: Vec<E>,
}

impl Io {
    pub fn open(dir: &Path) -> Io {
        let path = dir.join("io.safetensors");
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("golden file {} unreadable: {e}", path.display()));
        SafeTensors::deserialize(&bytes)
            .unwrap_or_else(|e| panic!("golden file {} malformed: {e}", path.display()));
        Io { path, bytes }
    }

    fn st(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes).expect("checked at open")
    }

    /// The generator's `info` metadata (JSON): seeds, steps, parameters of the recorded call.
    pub fn info(&self) -> serde_json::Value {
        let (_, meta) = SafeTensors::read_metadata(&self.bytes).expect("checked at open");
        let info = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get("info"))
            .unwrap_or_else(|| panic!("{}: no `info` metadata", self.path.display()));
        serde_json::from_str(info)
            .unwrap_or_else(|e| panic!("{}: `info` metadata is not JSON: {e}", self.path.display()))
    }

    pub fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self
            .st()
            .names()
            .into_iter()
            .map(|s| s.to_string())
            .collect();
        n.sort();
        n
    }

    pub fn has(&self, name: &str) -> bool {
        self.st().tensor(name).is_ok()
    }

    fn raw(&self, name: &str, want: Dtype) -> (Vec<usize>, Vec<u8>) {
        let st = self.st();
        let t = st
            .tensor(name)
            .unwrap_or_else(|e| panic!("{}: tensor `{name}` missing: {e}", self.path.display()));
        assert_eq!(
            t.dtype(),
            want,
            "{}: tensor `{name}` has dtype {:?}, expected {want:?}",
            self.path.display(),
            t.dtype()
        );
        (t.shape().to_vec(), t.data().to_vec())
    }

    pub fn f32(&self, name: &str) -> T<f32> {
        let (shape, b) = self.raw(name, Dtype::F32);
        T {
            shape,
            data: bytemuck_cast(&b, f32::from_le_bytes),
        }
    }
    pub fn f64(&self, name: &str) -> T<f64> {
        let (shape, b) = self.raw(name, Dtype::F64);
        T {
            shape,
            data: bytemuck_cast(&b, f64::from_le_bytes),
        }
    }
    pub fn i32(&self, name: &str) -> T<i32> {
        let (shape, b) = self.raw(name, Dtype::I32);
        T {
            shape,
            data: bytemuck_cast(&b, i32::from_le_bytes),
        }
    }
    pub fn u8(&self, name: &str) -> T<u8> {
        let (shape, b) = self.raw(name, Dtype::U8);
        T { shape, data: b }
    }
    /// Int32 `[N, 4]` coords as rows.
    pub fn coords4(&self, name: &str) -> Vec<[i32; 4]> {
        let t = self.i32(name);
        assert!(
            t.shape.len() == 2 && t.shape[1] == 4,
            "`{name}` is not [N, 4]: {:?}",
            t.shape
        );
        t.data.chunks(4).map(|c| [c[0], c[1], c[2], c[3]]).collect()
    }
}

fn bytemuck_cast<const N: usize, E>(b: &[u8], f: fn([u8; N]) -> E) -> Vec<E> {
    assert_eq!(b.len() % N, 0);
    b.chunks_exact(N)
        .map(|c| f(c.try_into().unwrap()))
        .collect()
}

/// `max|port − ref| / max|ref|`, the goldens' error measure (NaN → ∞).
pub fn rel_err(port: &[f32], reference: &[f32]) -> f64 {
    assert_eq!(port.len(), reference.len(), "length mismatch");
    let mut num = 0f64;
    let mut den = 0f64;
    for (&a, &b) in port.iter().zip(reference) {
        if a.is_nan() || b.is_nan() {
            return f64::INFINITY;
        }
        num = num.max((a as f64 - b as f64).abs());
        den = den.max((b as f64).abs());
    }
    if den == 0.0 { num } else { num / den }
}

/// Asserts `rel_err <= tol`, printing the error either way (so the numbers show in logs).
pub fn check(what: &str, port: &[f32], reference: &[f32], tol: f64) {
    let e = rel_err(port, reference);
    eprintln!("{what}: rel err {e:.3e} (tol {tol:.0e})");
    assert!(e <= tol, "{what}: rel err {e:.3e} > {tol:.0e}");
}

/// The set's `config.json` + `model.safetensors`, which must both exist.
pub fn model_files(dir: &Path) -> t2_models::config::ModelFiles {
    let f = t2_models::config::ModelFiles {
        config: dir.join("config.json"),
        weights: dir.join("model.safetensors"),
    };
    assert!(f.config.is_file(), "{} is missing", f.config.display());
    assert!(f.weights.is_file(), "{} is missing", f.weights.display());
    f
}

/// Intermediates captured through a model probe, by module path (`pre:` for pre-hooks).
#[derive(Default)]
pub struct Captured(pub std::collections::HashMap<String, Vec<f32>>);

impl Captured {
    pub fn probe(&mut self) -> impl FnMut(&str, &t2_tensor::Tensor) + '_ {
        |name: &str, t: &t2_tensor::Tensor| {
            let v = t.to_vec_f32().expect("probe download");
            self.0.insert(name.to_string(), v);
        }
    }

    /// Compares every `<prefix>hook.*` / `<prefix>prehook.*` tensor of the set with the capture
    /// of the same module path; a hook the port did not capture fails the test.
    /// `tol(name)` gives the tolerance for each module path.
    pub fn check_hooks(&self, io: &Io, prefix: &str, tol: impl Fn(&str) -> f64) -> usize {
        let mut n = 0;
        for name in io.names() {
            let Some(rest) = name.strip_prefix(prefix) else {
                continue;
            };
            let key = if let Some(m) = rest.strip_prefix("hook.") {
                m.to_string()
            } else if let Some(m) = rest.strip_prefix("prehook.") {
                format!("pre:{m}")
            } else {
                continue;
            };
            if key.ends_with(".coords") {
                // Coordinates are decisions: exact.
                let reference = io.i32(&name);
                let port = self.0.get(&key).unwrap_or_else(|| {
                    panic!("the port exposes no intermediate `{key}` for `{name}`")
                });
                let port: Vec<i32> = port.iter().map(|&v| v as i32).collect();
                assert!(port == reference.data, "`{name}`: coordinates differ");
                n += 1;
                continue;
            }
            let reference = io.f32(&name);
            let port = self
                .0
                .get(&key)
                .unwrap_or_else(|| panic!("the port exposes no intermediate `{key}` for `{name}`"));
            assert_eq!(
                port.len(),
                reference.data.len(),
                "`{name}`: {} values, reference {:?}",
                port.len(),
                reference.shape
            );
            check(&name, port, &reference.data, tol(&key));
            n += 1;
        }
        n
    }
}

/// `hookstat.*` vectors: `[numel, mean, std (unbiased), min, max, sum|x|]` (f64) of a capture.
pub fn stats(v: &[f32]) -> [f64; 6] {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let min = v.iter().fold(f64::INFINITY, |a, &x| a.min(x as f64));
    let max = v.iter().fold(f64::NEG_INFINITY, |a, &x| a.max(x as f64));
    let l1 = v.iter().map(|&x| (x as f64).abs()).sum::<f64>();
    [n, mean, var.sqrt(), min, max, l1]
}

/// Compares every `<prefix>hookstat.*` with the statistics of the captured tensor: numel exact,
/// then `[mean, std, min, max, mean|x|]` as one vector with `rel_err <= tol`.
pub fn check_hookstats(cap: &Captured, io: &Io, prefix: &str, tol: f64) -> usize {
    let mut n = 0;
    for name in io.names() {
        let Some(key) = name
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix("hookstat."))
        else {
            continue;
        };
        let r = io.f64(&name).data;
        let port = cap
            .0
            .get(key)
            .unwrap_or_else(|| panic!("no capture `{key}` for `{name}`"));
        let p = stats(port);
        assert_eq!(p[0], r[0], "`{name}`: numel");
        let pv = [p[1], p[2], p[3], p[4], p[5] / p[0]].map(|x| x as f32);
        let rv = [r[1], r[2], r[3], r[4], r[5] / r[0]].map(|x| x as f32);
        check(&name, &pv, &rv, tol);
        n += 1;
    }
    n
}
