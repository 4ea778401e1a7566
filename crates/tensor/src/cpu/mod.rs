//! CPU backend helpers shared by the ops' `cpu.rs` files: typed views as f32, building outputs
//! rounded to a dtype, dtype-generic data movement, and the GEMM wrapper. Parallelism comes from
//! rayon's global pool.

pub mod gemm;
pub mod math;

use std::borrow::Cow;

use half::{bf16, f16};
use rayon::prelude::*;

use crate::storage::{CpuStorage, Storage};
use crate::{DType, Device, Error, Result, Tensor};

/// Element-wise passes below this many elements stay on one thread: spawning costs more than
/// converting a few thousand values.
pub const PAR_MIN: usize = 1 << 14;

/// The tensor's elements as f32 (borrowed for f32, converted for f16/bf16/ints).
pub fn f32_data<'a>(t: &'a Tensor, op: &'static str) -> Result<Cow<'a, [f32]>> {
    fn conv<T: Copy + Sync>(v: &[T], f: impl Fn(T) -> f32 + Sync + Send) -> Vec<f32> {
        if v.len() < PAR_MIN {
            v.iter().map(|&x| f(x)).collect()
        } else {
            v.par_iter().with_min_len(4096).map(|&x| f(x)).collect()
        }
    }
    Ok(match t.cpu_storage(op)? {
        CpuStorage::F32(v) => Cow::Borrowed(v.as_slice()),
        CpuStorage::F16(v) => Cow::Owned(conv(v, |x| x.to_f32())),
        CpuStorage::BF16(v) => Cow::Owned(conv(v, |x| x.to_f32())),
        CpuStorage::I32(v) => Cow::Owned(conv(v, |x| x as f32)),
        CpuStorage::U32(v) => Cow::Owned(conv(v, |x| x as f32)),
        CpuStorage::U8(v) => Cow::Owned(conv(v, |x| x as f32)),
    })
}

/// f32 values rounded once (round-to-nearest-even) into storage of a float `dtype`.
pub fn storage_from_f32(data: Vec<f32>, dtype: DType) -> Result<CpuStorage> {
    fn conv<T: Send>(v: &[f32], f: impl Fn(f32) -> T + Sync + Send) -> Vec<T> {
        if v.len() < PAR_MIN {
            v.iter().map(|&x| f(x)).collect()
        } else {
            v.par_iter().with_min_len(4096).map(|&x| f(x)).collect()
        }
    }
    Ok(match dtype {
        DType::F32 => CpuStorage::F32(data),
        DType::F16 => CpuStorage::F16(conv(&data, f16::from_f32)),
        DType::BF16 => CpuStorage::BF16(conv(&data, bf16::from_f32)),
        d => {
            return Err(Error::DType {
                op: "cpu output",
                dtype: d,
            });
        }
    })
}

/// A CPU tensor of `dtype` from f32 values, each rounded once (round-to-nearest-even).
pub fn tensor_from_f32(data: Vec<f32>, shape: &[usize], dtype: DType) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(Error::shape(
            "cpu output",
            format!("{} values for {shape:?}", data.len()),
        ));
    }
    let storage = storage_from_f32(data, dtype)?;
    Ok(cpu_tensor(storage, shape))
}

/// Wraps host storage as a CPU tensor (the caller guarantees the element count).
pub fn cpu_tensor(storage: CpuStorage, shape: &[usize]) -> Tensor {
    let dtype = storage.dtype();
    Tensor::from_storage(Storage::Cpu(storage), shape.to_vec(), dtype, Device::Cpu)
}

/// A data-movement kernel written once for every element type (layout ops are exact, so they
/// move elements without converting them).
pub trait ElemMap {
    fn map<T: Copy + Send + Sync + Default>(&self, src: &[T]) -> Result<Vec<T>>;
}

/// Applies `f` to the elements of `s` in their own type.
pub fn map_elems<F: ElemMap>(s: &CpuStorage, f: &F) -> Result<CpuStorage> {
    Ok(match s {
        CpuStorage::F32(v) => CpuStorage::F32(f.map(v)?),
        CpuStorage::F16(v) => CpuStorage::F16(f.map(v)?),
        CpuStorage::BF16(v) => CpuStorage::BF16(f.map(v)?),
        CpuStorage::I32(v) => CpuStorage::I32(f.map(v)?),
        CpuStorage::U32(v) => CpuStorage::U32(f.map(v)?),
        CpuStorage::U8(v) => CpuStorage::U8(f.map(v)?),
    })
}
