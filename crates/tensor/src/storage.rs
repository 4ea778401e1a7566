//! Typed buffers behind a tensor, on the host or on a CUDA device.

use crate::DType;
use crate::cuda::CudaStorage;
use half::{bf16, f16};

#[derive(Clone, Debug)]
pub enum CpuStorage {
    F32(Vec<f32>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    U8(Vec<u8>),
}

impl CpuStorage {
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F16(_) => DType::F16,
            CpuStorage::BF16(_) => DType::BF16,
            CpuStorage::I32(_) => DType::I32,
            CpuStorage::U32(_) => DType::U32,
            CpuStorage::U8(_) => DType::U8,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F16(v) => v.len(),
            CpuStorage::BF16(v) => v.len(),
            CpuStorage::I32(v) => v.len(),
            CpuStorage::U32(v) => v.len(),
            CpuStorage::U8(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            CpuStorage::F32(v) => bytemuck::cast_slice(v),
            CpuStorage::F16(v) => bytemuck::cast_slice(v),
            CpuStorage::BF16(v) => bytemuck::cast_slice(v),
            CpuStorage::I32(v) => bytemuck::cast_slice(v),
            CpuStorage::U32(v) => bytemuck::cast_slice(v),
            CpuStorage::U8(v) => v,
        }
    }
    /// Builds storage of `dtype` from little-endian bytes (as stored in safetensors).
    pub fn from_bytes(dtype: DType, bytes: &[u8]) -> CpuStorage {
        fn cast<T: bytemuck::Pod>(b: &[u8]) -> Vec<T> {
            // pod_collect_to_vec copies, so unaligned mmap data is fine.
            bytemuck::pod_collect_to_vec(b)
        }
        match dtype {
            DType::F32 => CpuStorage::F32(cast(bytes)),
            DType::F16 => CpuStorage::F16(cast(bytes)),
            DType::BF16 => CpuStorage::BF16(cast(bytes)),
            DType::I32 => CpuStorage::I32(cast(bytes)),
            DType::U32 => CpuStorage::U32(cast(bytes)),
            DType::U8 => CpuStorage::U8(bytes.to_vec()),
        }
    }
}

#[derive(Debug)]
pub enum Storage {
    Cpu(CpuStorage),
    Cuda(CudaStorage),
}
