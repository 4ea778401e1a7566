//! Random weights for the demo models: the real checkpoints' tensors (`random::spec`) drawn
//! from the PyTorch-exact generator in file order, so they are the same everywhere, and kept in
//! f32 so that calibration can shift biases before the file is written.

use std::collections::HashMap;

use half::{bf16, f16};
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use t2_tensor::DType;

use crate::error::{ModelError, Result};
use crate::random::spec::{CheckpointSpec, Init};
use crate::rng::TorchGenerator;

/// One tensor of a checkpoint (values kept in f32, stored in `dtype`).
pub(super) struct Entry {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub data: Vec<f32>,
}

/// A checkpoint being built: key → tensor, in insertion order.
#[derive(Default)]
pub(super) struct Checkpoint {
    order: Vec<String>,
    entries: HashMap<String, Entry>,
}

impl Checkpoint {
    /// Draws every tensor of `spec` in order (`Const` tensors draw nothing).
    pub fn from_spec(spec: &CheckpointSpec, g: &mut TorchGenerator) -> Checkpoint {
        let mut ck = Checkpoint::default();
        for t in &spec.tensors {
            let n = t.numel();
            let data = match t.init {
                Init::Random { mean, std } => {
                    g.randn(n).into_iter().map(|v| mean + std * v).collect()
                }
                Init::Const(v) => vec![v; n],
                Init::SharedRows { std, noise } => {
                    let cols = *t.shape.last().expect("2-D");
                    let common = g.randn(cols);
                    let own = g.randn(n);
                    (0..n)
                        .map(|i| std * (common[i % cols] + noise * own[i]))
                        .collect()
                }
            };
            ck.order.push(t.name.clone());
            ck.entries.insert(
                t.name.clone(),
                Entry {
                    shape: t.shape.clone(),
                    dtype: t.dtype,
                    data,
                },
            );
        }
        ck
    }

    pub fn get_mut(&mut self, name: &str) -> Result<&mut Entry> {
        self.entries
            .get_mut(name)
            .ok_or_else(|| ModelError::invalid(format!("demo checkpoint has no `{name}`")))
    }

    /// The safetensors file bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let bufs: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = self
            .order
            .iter()
            .map(|k| {
                let e = &self.entries[k];
                let (dt, bytes): (Dtype, Vec<u8>) = match e.dtype {
                    DType::BF16 => (
                        Dtype::BF16,
                        e.data
                            .iter()
                            .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
                            .collect(),
                    ),
                    DType::F16 => (
                        Dtype::F16,
                        e.data
                            .iter()
                            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                            .collect(),
                    ),
                    _ => (
                        Dtype::F32,
                        e.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                    ),
                };
                (k.clone(), dt, e.shape.clone(), bytes)
            })
            .collect();
        let views = bufs
            .iter()
            .map(|(k, dt, s, b)| Ok((k.as_str(), TensorView::new(*dt, s.clone(), b)?)))
            .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()
            .map_err(|e| ModelError::invalid(format!("demo safetensors: {e}")))?;
        safetensors::tensor::serialize(views, None)
            .map_err(|e| ModelError::invalid(format!("demo safetensors: {e}")))
    }
}
