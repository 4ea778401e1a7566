//! A streaming safetensors writer for random checkpoints: the header is known from the tensor
//! list, so each tensor is generated (in parallel chunks) and written straight after it, and no
//! file is ever held in memory whole. Values come from SplitMix64 streams keyed by
//! `(seed, file, tensor, chunk)`, so the bytes do not depend on the thread count or schedule.

use std::io::{BufWriter, Write};
use std::path::Path;

use half::{bf16, f16};
use rayon::prelude::*;
use t2_tensor::DType;

use super::spec::{CheckpointSpec, Init, TensorSpec};
use crate::error::{ModelError, Result};

/// Elements generated per parallel task (and per PRNG stream).
const CHUNK: usize = 1 << 18;

/// SplitMix64: one add and three xor-shift-multiplies per 64 bits, statistically fine for
/// weight initialisation and ~1 ns per value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform on [-1, 1) with 24 significant bits.
    pub fn next_signed_unit(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32) * (2.0 / (1u64 << 24) as f32) - 1.0
    }
    /// A key mixing several stream coordinates into one seed.
    pub fn key(parts: &[u64]) -> u64 {
        let mut s = SplitMix64(0x5EED_0F_7E11_1502);
        for &p in parts {
            s.0 ^= p;
            s.0 = s.next_u64();
        }
        s.0
    }
}

/// Uniform on `[-√3, √3)`: zero mean, unit variance.
fn unit_uniform(r: &mut SplitMix64) -> f32 {
    r.next_signed_unit() * 3f32.sqrt()
}

/// Values `[start, start + out.len())` of tensor `t` (f32, before the storage cast).
fn fill(t: &TensorSpec, key: u64, start: usize, out: &mut [f32]) {
    let mut r = SplitMix64::new(SplitMix64::key(&[key, (start / CHUNK) as u64]));
    match t.init {
        Init::Random { mean, std } => {
            for v in out.iter_mut() {
                *v = mean + std * unit_uniform(&mut r);
            }
        }
        Init::Const(c) => out.fill(c),
        Init::SharedRows { std, noise } => {
            // The shared row is its own stream, so every chunk sees the same one.
            let cols = *t.shape.last().unwrap_or(&1);
            let mut rc = SplitMix64::new(SplitMix64::key(&[key, u64::MAX]));
            let common: Vec<f32> = (0..cols).map(|_| unit_uniform(&mut rc)).collect();
            for (i, v) in out.iter_mut().enumerate() {
                *v = std * (common[(start + i) % cols] + noise * unit_uniform(&mut r));
            }
        }
    }
}

fn dtype_name(d: DType) -> Result<&'static str> {
    Ok(match d {
        DType::F32 => "F32",
        DType::F16 => "F16",
        DType::BF16 => "BF16",
        other => {
            return Err(ModelError::Unsupported(format!(
                "random checkpoint tensor of dtype {other:?}"
            )));
        }
    })
}

/// The safetensors header (8-byte length + JSON padded with spaces to 8-byte alignment).
fn header(spec: &CheckpointSpec) -> Result<Vec<u8>> {
    let mut map = serde_json::Map::new();
    map.insert(
        "__metadata__".into(),
        serde_json::json!({"format": "pt", "generator": "t2-models random"}),
    );
    let mut offset = 0usize;
    for t in &spec.tensors {
        let end = offset + t.bytes();
        map.insert(
            t.name.clone(),
            serde_json::json!({"dtype": dtype_name(t.dtype)?, "shape": t.shape,
                               "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut json = serde_json::to_vec(&serde_json::Value::Object(map)).expect("serialisable");
    while !(8 + json.len()).is_multiple_of(8) {
        json.push(b' ');
    }
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend(json);
    Ok(out)
}

/// The stored bytes of tensor `index` of file `file_key`.
fn tensor_bytes(t: &TensorSpec, key: u64) -> Vec<u8> {
    let n = t.numel();
    let size = t.dtype.size_in_bytes();
    let mut bytes = vec![0u8; n * size];
    bytes
        .par_chunks_mut(CHUNK * size)
        .enumerate()
        .for_each(|(c, dst)| {
            let start = c * CHUNK;
            let mut vals = vec![0f32; dst.len() / size];
            fill(t, key, start, &mut vals);
            match t.dtype {
                DType::BF16 => {
                    for (d, v) in dst.chunks_exact_mut(2).zip(&vals) {
                        d.copy_from_slice(&bf16::from_f32(*v).to_le_bytes());
                    }
                }
                DType::F16 => {
                    for (d, v) in dst.chunks_exact_mut(2).zip(&vals) {
                        d.copy_from_slice(&f16::from_f32(*v).to_le_bytes());
                    }
                }
                _ => {
                    for (d, v) in dst.chunks_exact_mut(4).zip(&vals) {
                        d.copy_from_slice(&v.to_le_bytes());
                    }
                }
            }
        });
    bytes
}

/// Writes `spec` as a safetensors file at `path`; `file_key` separates the files' streams.
pub(crate) fn write_checkpoint(path: &Path, spec: &CheckpointSpec, file_key: u64) -> Result<u64> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(|e| ModelError::io(p, e))?;
    }
    let io = |e| ModelError::io(path, e);
    let file = std::fs::File::create(path).map_err(io)?;
    let mut w = BufWriter::with_capacity(8 << 20, file);
    let head = header(spec)?;
    w.write_all(&head).map_err(io)?;
    let mut total = head.len() as u64;
    for (i, t) in spec.tensors.iter().enumerate() {
        let bytes = tensor_bytes(t, SplitMix64::key(&[file_key, i as u64]));
        w.write_all(&bytes).map_err(io)?;
        total += bytes.len() as u64;
    }
    w.flush().map_err(io)?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_has_the_asked_mean_and_std_and_chunks_are_independent_of_order() {
        let t = TensorSpec {
            name: "w".into(),
            shape: vec![3, CHUNK],
            dtype: DType::F32,
            init: Init::Random {
                mean: 0.5,
                std: 0.25,
            },
        };
        let mut all = vec![0f32; t.numel()];
        for (c, out) in all.chunks_mut(CHUNK).enumerate() {
            fill(&t, 9, c * CHUNK, out);
        }
        let n = all.len() as f64;
        let mean = all.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = all.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!((mean - 0.5).abs() < 2e-3, "mean {mean}");
        assert!((var.sqrt() - 0.25).abs() < 2e-3, "std {}", var.sqrt());
        // Chunk 2 on its own gives the same values as in the sequence.
        let mut c2 = vec![0f32; CHUNK];
        fill(&t, 9, 2 * CHUNK, &mut c2);
        assert_eq!(&c2[..], &all[2 * CHUNK..]);
        // Different keys give different streams.
        let mut other = vec![0f32; CHUNK];
        fill(&t, 10, 0, &mut other);
        assert_ne!(&other[..16], &all[..16]);
    }
}
