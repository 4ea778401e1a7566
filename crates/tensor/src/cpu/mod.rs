//! CPU backend helpers shared by the ops' `cpu.rs` files: typed views as f32, and building
//! outputs rounded to a dtype. Parallelism comes from rayon's global pool.

use std::borrow::Cow;

use crate::storage::{CpuStorage, Storage};
use crate::{DType, Device, Error, Result, Tensor};

/// The tensor's elements as f32 (borrowed for f32, converted for f16/bf16/ints).
pub fn f32_data<'a>(t: &'a Tensor, op: &'static str) -> Result<Cow<'a, [f32]>> {
    Ok(match t.cpu_storage(op)? {
        CpuStorage::F32(v) => Cow::Borrowed(v.as_slice()),
        CpuStorage::F16(v) => Cow::Owned(v.iter().map(|x| x.to_f32()).collect()),
        CpuStorage::BF16(v) => Cow::Owned(v.iter().map(|x| x.to_f32()).collect()),
        CpuStorage::I32(v) => Cow::Owned(v.iter().map(|&x| x as f32).collect()),
        CpuStorage::U32(v) => Cow::Owned(v.iter().map(|&x| x as f32).collect()),
        CpuStorage::U8(v) => Cow::Owned(v.iter().map(|&x| x as f32).collect()),
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
    let storage = match dtype {
        DType::F32 => CpuStorage::F32(data),
        DType::F16 => CpuStorage::F16(data.iter().map(|&x| half::f16::from_f32(x)).collect()),
        DType::BF16 => CpuStorage::BF16(data.iter().map(|&x| half::bf16::from_f32(x)).collect()),
        d => {
            return Err(Error::DType {
                op: "cpu output",
                dtype: d,
            });
        }
    };
    Ok(Tensor::from_storage(
        Storage::Cpu(storage),
        shape.to_vec(),
        dtype,
        Device::Cpu,
    ))
}
