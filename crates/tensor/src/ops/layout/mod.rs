//! Data movement: casts, permutes, slices, concatenation and row gathers. Exact (no rounding
//! except in `to_dtype`), for every dtype.

mod cpu;
mod cuda;

use super::same_device;
use crate::{DType, Device, Error, Result, Tensor};

/// Converts to `dtype`: round-to-nearest-even for narrowing float casts, truncation toward zero
/// for float → int (as PyTorch's `.int()`).
pub fn to_dtype(x: &Tensor, dtype: DType) -> Result<Tensor> {
    if x.dtype() == dtype {
        return Ok(x.clone());
    }
    match x.device() {
        Device::Cpu => cpu::to_dtype(x, dtype),
        Device::Cuda(d) => cuda::to_dtype(d, x, dtype),
    }
}

/// Reorders dimensions: output dim `i` is input dim `dims[i]` (a copy).
pub fn permute(x: &Tensor, dims: &[usize]) -> Result<Tensor> {
    let mut seen = vec![false; x.rank()];
    if dims.len() != x.rank()
        || dims
            .iter()
            .any(|&d| d >= x.rank() || std::mem::replace(&mut seen[d], true))
    {
        return Err(Error::shape(
            "permute",
            format!("{:?} by {dims:?}", x.shape()),
        ));
    }
    match x.device() {
        Device::Cpu => cpu::permute(x, dims),
        Device::Cuda(d) => cuda::permute(d, x, dims),
    }
}

/// `x` restricted to `start..start+len` along `dim` (a copy).
pub fn narrow(x: &Tensor, dim: usize, start: usize, len: usize) -> Result<Tensor> {
    if dim >= x.rank() || start + len > x.shape()[dim] {
        return Err(Error::shape(
            "narrow",
            format!("{:?} dim {dim} {start}..{}", x.shape(), start + len),
        ));
    }
    match x.device() {
        Device::Cpu => cpu::narrow(x, dim, start, len),
        Device::Cuda(d) => cuda::narrow(d, x, dim, start, len),
    }
}

/// Concatenates along `dim`; all tensors share dtype, device and the other dims.
pub fn cat(xs: &[&Tensor], dim: usize) -> Result<Tensor> {
    let x0 = xs
        .first()
        .ok_or_else(|| Error::shape("cat", "no tensors"))?;
    same_device("cat", xs)?;
    for x in xs {
        let ok = x.rank() == x0.rank()
            && dim < x.rank()
            && x.dtype() == x0.dtype()
            && (0..x.rank()).all(|i| i == dim || x.shape()[i] == x0.shape()[i]);
        if !ok {
            return Err(Error::shape(
                "cat",
                format!("{:?} with {:?} along {dim}", x0.shape(), x.shape()),
            ));
        }
    }
    match x0.device() {
        Device::Cpu => cpu::cat(xs, dim),
        Device::Cuda(d) => cuda::cat(d, xs, dim),
    }
}

/// Gathers rows: `x [N, ...]`, `idx` (I32 or U32) `[M]` → `[M, ...]` with row `m` = `x[idx[m]]`.
/// An index out of range is an error (checked on the host for CPU, by the kernel on CUDA).
pub fn index_rows(x: &Tensor, idx: &Tensor) -> Result<Tensor> {
    same_device("index_rows", &[x, idx])?;
    if x.rank() < 1 || idx.rank() != 1 || !matches!(idx.dtype(), DType::I32 | DType::U32) {
        return Err(Error::shape(
            "index_rows",
            format!("x {:?} idx {:?} {:?}", x.shape(), idx.shape(), idx.dtype()),
        ));
    }
    match x.device() {
        Device::Cpu => cpu::index_rows(x, idx),
        Device::Cuda(d) => cuda::index_rows(d, x, idx),
    }
}

/// PyTorch's `repeat_interleave(repeats, dim)`: each slice along `dim` repeated `repeats` times
/// in place (`[a, b]` → `[a, a, b, b]`).
pub fn repeat_interleave(x: &Tensor, dim: usize, repeats: usize) -> Result<Tensor> {
    if dim >= x.rank() || repeats == 0 {
        return Err(Error::shape(
            "repeat_interleave",
            format!("{:?} dim {dim} ×{repeats}", x.shape()),
        ));
    }
    match x.device() {
        Device::Cpu => cpu::repeat_interleave(x, dim, repeats),
        Device::Cuda(d) => cuda::repeat_interleave(d, x, dim, repeats),
    }
}
