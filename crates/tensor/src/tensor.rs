//! The tensor type: a shared, immutable, contiguous buffer with a shape and dtype.

use std::sync::Arc;

use crate::storage::{CpuStorage, Storage};
use crate::{DType, Device, Element, Error, Result};

#[derive(Clone)]
pub struct Tensor {
    storage: Arc<Storage>,
    shape: Vec<usize>,
    dtype: DType,
    device: Device,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tensor({:?}, {:?}, {})",
            self.shape, self.dtype, self.device
        )
    }
}

impl Tensor {
    /// Wraps storage that already holds `shape.iter().product()` elements of `dtype`.
    pub fn from_storage(
        storage: Storage,
        shape: Vec<usize>,
        dtype: DType,
        device: Device,
    ) -> Tensor {
        Tensor {
            storage: Arc::new(storage),
            shape,
            dtype,
            device,
        }
    }

    /// Host data to a tensor on `device`.
    pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize], device: &Device) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        if data.len() != n {
            return Err(Error::shape(
                "from_vec",
                format!("{} elements for shape {shape:?}", data.len()),
            ));
        }
        let cpu = CpuStorage::from_bytes(T::DTYPE, bytemuck::cast_slice(&data));
        Tensor::from_cpu_storage(cpu, shape, device)
    }

    pub fn from_slice<T: Element>(data: &[T], shape: &[usize], device: &Device) -> Result<Tensor> {
        Tensor::from_vec(data.to_vec(), shape, device)
    }

    /// Host storage to a tensor on `device` (uploads when `device` is a GPU).
    pub fn from_cpu_storage(cpu: CpuStorage, shape: &[usize], device: &Device) -> Result<Tensor> {
        let dtype = cpu.dtype();
        let storage = match device {
            Device::Cpu => Storage::Cpu(cpu),
            Device::Cuda(d) => Storage::Cuda(d.upload(&cpu)?),
        };
        Ok(Tensor::from_storage(
            storage,
            shape.to_vec(),
            dtype,
            device.clone(),
        ))
    }

    pub fn zeros(shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        match device {
            Device::Cpu => {
                let cpu = CpuStorage::from_bytes(dtype, &vec![0u8; n * dtype.size_in_bytes()]);
                Ok(Tensor::from_storage(
                    Storage::Cpu(cpu),
                    shape.to_vec(),
                    dtype,
                    Device::Cpu,
                ))
            }
            Device::Cuda(d) => {
                let s = d.zeros(dtype, n)?;
                Ok(Tensor::from_storage(
                    Storage::Cuda(s),
                    shape.to_vec(),
                    dtype,
                    device.clone(),
                ))
            }
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
    /// Size of dimension `i`; negative `i` counts from the end.
    pub fn dim(&self, i: isize) -> usize {
        let r = self.shape.len() as isize;
        self.shape[(if i < 0 { r + i } else { i }) as usize]
    }
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn device(&self) -> &Device {
        &self.device
    }
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The host storage, or an error naming `op` when the tensor is on a GPU.
    pub fn cpu_storage(&self, op: &'static str) -> Result<&CpuStorage> {
        match &*self.storage {
            Storage::Cpu(c) => Ok(c),
            Storage::Cuda(_) => Err(Error::DeviceMismatch {
                op,
                a: "cpu".into(),
                b: self.device.name(),
            }),
        }
    }

    /// Same data, new shape (free: no copy).
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        if n != self.numel() {
            return Err(Error::shape(
                "reshape",
                format!("{:?} -> {shape:?}", self.shape),
            ));
        }
        Ok(Tensor {
            storage: self.storage.clone(),
            shape: shape.to_vec(),
            dtype: self.dtype,
            device: self.device.clone(),
        })
    }

    /// Copies to the host as `T`, which must be this tensor's dtype.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        if T::DTYPE != self.dtype {
            return Err(Error::DType {
                op: "to_vec",
                dtype: self.dtype,
            });
        }
        let bytes = self.to_host_bytes()?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Copies to the host, converting any dtype to f32.
    pub fn to_vec_f32(&self) -> Result<Vec<f32>> {
        let host = self.to_host_storage()?;
        Ok(match host {
            CpuStorage::F32(v) => v,
            CpuStorage::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            CpuStorage::BF16(v) => v.iter().map(|x| x.to_f32()).collect(),
            CpuStorage::I32(v) => v.iter().map(|&x| x as f32).collect(),
            CpuStorage::U32(v) => v.iter().map(|&x| x as f32).collect(),
            CpuStorage::U8(v) => v.iter().map(|&x| x as f32).collect(),
        })
    }

    /// The tensor's data on the host, in its own dtype.
    pub fn to_host_storage(&self) -> Result<CpuStorage> {
        match &*self.storage {
            Storage::Cpu(c) => Ok(c.clone()),
            Storage::Cuda(s) => match &self.device {
                Device::Cuda(d) => d.download(s, self.dtype),
                Device::Cpu => unreachable!("CUDA storage on a CPU tensor"),
            },
        }
    }

    fn to_host_bytes(&self) -> Result<Vec<u8>> {
        Ok(self.to_host_storage()?.as_bytes().to_vec())
    }

    /// Copies the tensor to `device` (a no-op clone when it is already there).
    pub fn to_device(&self, device: &Device) -> Result<Tensor> {
        if self.device.same(device) {
            return Ok(self.clone());
        }
        let host = self.to_host_storage()?;
        Tensor::from_cpu_storage(host, &self.shape, device)
    }

    /// Converts to `dtype` (round-to-nearest-even for narrowing float casts).
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        crate::ops::to_dtype(self, dtype)
    }
}
