//! Loading safetensors checkpoints by mmap, with exact key and shape checks.
//!
//! The reference loads with `strict=False`, which hides missing and misnamed keys. Here every
//! key a model asks for must exist with the expected shape, and `finish()` reports any key the
//! model never asked for; each error names the file, the key and both shapes.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::storage::CpuStorage;
use crate::{DType, Device, Error, Result, Tensor};

struct Entry {
    dtype: DType,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// An opened checkpoint. Tensors are read out of the mapping on demand.
pub struct Weights {
    path: PathBuf,
    mmap: memmap2::Mmap,
    entries: HashMap<String, Entry>,
    metadata: HashMap<String, String>,
    used: Mutex<BTreeSet<String>>,
}

impl Weights {
    pub fn open(path: impl AsRef<Path>) -> Result<Weights> {
        let path = path.as_ref().to_path_buf();
        let io = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(&path).map_err(io)?;
        // SAFETY: the mapping is read-only and the file is not modified while the model loads.
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        // The whole file is read, in order: start the kernel's read-ahead now (a no-op for
        // pages already cached; only a hint, so a refusal is not an error).
        let _ = mmap.advise(memmap2::Advice::WillNeed);
        let werr = |msg: String| Error::Weights {
            file: path.display().to_string(),
            msg,
        };
        let (header_len, header) = safetensors::SafeTensors::read_metadata(&mmap)
            .map_err(|e| werr(format!("not a safetensors file: {e}")))?;
        let data_start = 8 + header_len;
        let mut entries = HashMap::new();
        for (name, info) in header.tensors() {
            let dtype = match info.dtype {
                safetensors::Dtype::F32 => DType::F32,
                safetensors::Dtype::F16 => DType::F16,
                safetensors::Dtype::BF16 => DType::BF16,
                safetensors::Dtype::I32 => DType::I32,
                safetensors::Dtype::U32 => DType::U32,
                safetensors::Dtype::U8 | safetensors::Dtype::BOOL => DType::U8,
                other => {
                    return Err(werr(format!(
                        "tensor `{name}` has unsupported dtype {other:?}"
                    )));
                }
            };
            let (s, e) = info.data_offsets;
            entries.insert(
                name.clone(),
                Entry {
                    dtype,
                    shape: info.shape.clone(),
                    start: data_start + s,
                    end: data_start + e,
                },
            );
        }
        let metadata = header.metadata().clone().unwrap_or_default();
        Ok(Weights {
            path,
            mmap,
            entries,
            metadata,
            used: Mutex::new(BTreeSet::new()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    fn file(&self) -> String {
        self.path.display().to_string()
    }
    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<_> = self.entries.keys().cloned().collect();
        k.sort();
        k
    }
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }
    /// The header's `__metadata__` map.
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }
    /// Stored dtype and shape of `key`.
    pub fn info(&self, key: &str) -> Option<(DType, &[usize])> {
        self.entries.get(key).map(|e| (e.dtype, e.shape.as_slice()))
    }

    /// Loads `key`, which must have exactly `shape`, converted to `dtype`, onto `device`.
    pub fn get(&self, key: &str, shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        let e = self.entry(key)?;
        if e.shape != shape {
            return Err(Error::KeyShape {
                file: self.file(),
                key: key.into(),
                expected: shape.to_vec(),
                actual: e.shape.clone(),
            });
        }
        self.load(key, e, dtype, device)
    }

    /// Loads `key` with whatever shape it has (for tensors whose shape defines the model).
    pub fn get_any_shape(&self, key: &str, dtype: DType, device: &Device) -> Result<Tensor> {
        let e = self.entry(key)?;
        self.load(key, e, dtype, device)
    }

    /// Loads `key` in its stored dtype.
    pub fn get_stored(&self, key: &str, device: &Device) -> Result<Tensor> {
        let e = self.entry(key)?;
        self.load(key, e, e.dtype, device)
    }

    fn entry(&self, key: &str) -> Result<&Entry> {
        self.entries.get(key).ok_or_else(|| Error::MissingKey {
            file: self.file(),
            key: key.into(),
        })
    }

    fn load(&self, key: &str, e: &Entry, dtype: DType, device: &Device) -> Result<Tensor> {
        let bytes = self
            .mmap
            .get(e.start..e.end)
            .ok_or_else(|| Error::Weights {
                file: self.file(),
                msg: format!("tensor `{key}` lies outside the file"),
            })?;
        let n: usize = e.shape.iter().product();
        if bytes.len() != n * e.dtype.size_in_bytes() {
            return Err(Error::Weights {
                file: self.file(),
                msg: format!(
                    "tensor `{key}` has {} bytes for shape {:?}",
                    bytes.len(),
                    e.shape
                ),
            });
        }
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string());
        if let (Device::Cuda(d), true) = (device, dtype == e.dtype) {
            // Straight from the mapping to the device: a host copy first would allocate and
            // fault in a second buffer per tensor (most of a full-size load's time).
            let storage = crate::storage::Storage::Cuda(d.upload_bytes(bytes)?);
            return Ok(Tensor::from_storage(
                storage,
                e.shape.clone(),
                dtype,
                device.clone(),
            ));
        }
        let host = Tensor::from_cpu_storage(
            CpuStorage::from_bytes(e.dtype, bytes),
            &e.shape,
            &Device::Cpu,
        )?;
        // Convert on the host: weights load once, and the CPU cast is the reference rounding.
        host.to_dtype(dtype)?.to_device(device)
    }

    /// Fails listing every key that was never loaded (the strict half of `load_state_dict`).
    pub fn finish(&self) -> Result<()> {
        let used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let unused: Vec<String> = self
            .keys()
            .into_iter()
            .filter(|k| !used.contains(k))
            .collect();
        if unused.is_empty() {
            Ok(())
        } else {
            Err(Error::UnusedKeys {
                file: self.file(),
                keys: unused,
            })
        }
    }
}
