//! Launchers for layout.cu. Movement ops copy bytes in the widest unit (16/8/4/2/1 bytes) that
//! divides every row length and offset involved, so they are dtype-agnostic and vectorised.

use crate::cuda::{CudaDevice, Dims, args, empty, kernels, ptr, unit_bytes};
use crate::{DType, Device, Error, Result, Tensor};

const PERM_RANK: usize = 8;

/// layout.cu's `Perm`.
#[repr(C)]
#[derive(Clone, Copy)]
struct Perm {
    rank: i32,
    shape: [i64; PERM_RANK],
    in_stride: [i64; PERM_RANK],
}

pub(super) fn to_dtype(d: &CudaDevice, x: &Tensor, dtype: DType) -> Result<Tensor> {
    let out = empty(d, x.shape(), dtype)?;
    let n = x.numel();
    if n > 0 {
        let name = format!("cast_{}_{}", x.dtype().as_str(), dtype.as_str());
        let mut a = args![ptr(&out)?, ptr(x)?, n as i64];
        d.launch(&kernels::LAYOUT, &name, Dims::elementwise(n), &mut a)?;
    }
    Ok(out)
}

fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut st = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        st[i] = st[i + 1] * shape[i + 1];
    }
    st
}

pub(super) fn permute(d: &CudaDevice, x: &Tensor, dims: &[usize]) -> Result<Tensor> {
    let es = x.dtype().size_in_bytes();
    let out_shape: Vec<usize> = dims.iter().map(|&i| x.shape()[i]).collect();
    let out = empty(d, &out_shape, x.dtype())?;
    let n = x.numel();
    if n == 0 {
        return Ok(out);
    }
    let in_st = contiguous_strides(x.shape());
    // Drop size-1 dims; when the last dim stays last, move whole rows in wide units.
    let mut shape: Vec<usize> = Vec::new();
    let mut stride: Vec<usize> = Vec::new();
    for (i, &src) in dims.iter().enumerate() {
        if out_shape[i] != 1 {
            shape.push(out_shape[i]);
            stride.push(in_st[src] * es);
        }
    }
    let mut unit = es;
    if let (Some(&last), Some(&ls)) = (shape.last(), stride.last())
        && ls == es
    {
        unit = unit_bytes(&[last * es]);
        let k = shape.len() - 1;
        shape[k] = last * es / unit;
        stride[k] = unit;
    }
    if shape.len() > PERM_RANK {
        return Err(Error::Unsupported {
            op: "permute",
            device: Device::Cuda(d.clone()).name(),
            msg: format!("{:?} by {dims:?}: more than {PERM_RANK} dims", x.shape()),
        });
    }
    let mut p = Perm {
        rank: shape.len() as i32,
        shape: [1; PERM_RANK],
        in_stride: [0; PERM_RANK],
    };
    for i in 0..shape.len() {
        p.shape[i] = shape[i] as i64;
        p.in_stride[i] = (stride[i] / unit) as i64;
    }
    let units = n * es / unit;
    let mut a = args![ptr(&out)?, ptr(x)?, units as i64, p];
    d.launch(
        &kernels::LAYOUT,
        &format!("permute_{unit}"),
        Dims::elementwise(units),
        &mut a,
    )?;
    Ok(out)
}

/// Copies `rows` rows of `row_bytes` from `src` (pitch `src_pitch` bytes) to `dst` (pitch
/// `dst_pitch` bytes); all addresses are device byte addresses.
fn copy2d(
    d: &CudaDevice,
    dst: u64,
    src: u64,
    rows: usize,
    row_bytes: usize,
    dst_pitch: usize,
    src_pitch: usize,
) -> Result<()> {
    if rows == 0 || row_bytes == 0 {
        return Ok(());
    }
    if rows == 1 || (row_bytes == dst_pitch && row_bytes == src_pitch) {
        return d.copy_d2d(dst, src, rows * row_bytes);
    }
    // Allocations are 512-byte aligned, so the offsets' divisibility bounds the alignment.
    let unit = unit_bytes(&[
        row_bytes,
        dst_pitch,
        src_pitch,
        (dst % 16) as usize,
        (src % 16) as usize,
    ]);
    let cols = row_bytes / unit;
    let mut a = args![
        dst,
        src,
        rows as i64,
        cols as i64,
        (dst_pitch / unit) as i64,
        (src_pitch / unit) as i64
    ];
    d.launch(
        &kernels::LAYOUT,
        &format!("copy2d_{unit}"),
        Dims::elementwise(rows * cols),
        &mut a,
    )
}

/// (outer, size of `dim`, inner) of `shape` around `dim`.
fn split3(shape: &[usize], dim: usize) -> (usize, usize, usize) {
    (
        shape[..dim].iter().product(),
        shape[dim],
        shape[dim + 1..].iter().product(),
    )
}

pub(super) fn narrow(
    d: &CudaDevice,
    x: &Tensor,
    dim: usize,
    start: usize,
    len: usize,
) -> Result<Tensor> {
    let es = x.dtype().size_in_bytes();
    let mut shape = x.shape().to_vec();
    shape[dim] = len;
    let out = empty(d, &shape, x.dtype())?;
    let (outer, size, inner) = split3(x.shape(), dim);
    let row = inner * es;
    copy2d(
        d,
        ptr(&out)?,
        ptr(x)? + (start * row) as u64,
        outer,
        len * row,
        len * row,
        size * row,
    )?;
    Ok(out)
}

pub(super) fn cat(d: &CudaDevice, xs: &[&Tensor], dim: usize) -> Result<Tensor> {
    let x0 = xs[0];
    let es = x0.dtype().size_in_bytes();
    let mut shape = x0.shape().to_vec();
    shape[dim] = xs.iter().map(|x| x.shape()[dim]).sum();
    let out = empty(d, &shape, x0.dtype())?;
    let (outer, total, inner) = split3(&shape, dim);
    let row = inner * es;
    let mut off = 0usize;
    for x in xs {
        let size = x.shape()[dim];
        copy2d(
            d,
            ptr(&out)? + (off * row) as u64,
            ptr(x)?,
            outer,
            size * row,
            total * row,
            size * row,
        )?;
        off += size;
    }
    Ok(out)
}

pub(super) fn index_rows(d: &CudaDevice, x: &Tensor, idx: &Tensor) -> Result<Tensor> {
    let n_rows = x.dim(0);
    let m = idx.dim(0);
    let mut shape = x.shape().to_vec();
    shape[0] = m;
    let out = empty(d, &shape, x.dtype())?;
    let row_bytes = x.shape()[1..].iter().product::<usize>() * x.dtype().size_in_bytes();
    if m == 0 || row_bytes == 0 {
        return Ok(out);
    }
    let unit = unit_bytes(&[row_bytes]);
    let row_units = row_bytes / unit;
    let err = d.zeros(DType::U32, 1)?;
    let name = format!("index_rows_{}_{unit}", idx.dtype().as_str());
    let mut a = args![
        ptr(&out)?,
        ptr(x)?,
        ptr(idx)?,
        m as i64,
        row_units as i64,
        n_rows as i64,
        err.ptr()
    ];
    d.launch(
        &kernels::LAYOUT,
        &name,
        Dims::elementwise(m * row_units),
        &mut a,
    )?;
    let mut flag = [0u8; 4];
    d.copy_to_host(err.ptr(), &mut flag)?;
    if u32::from_le_bytes(flag) != 0 {
        return Err(Error::shape(
            "index_rows",
            format!("an index is out of range for {n_rows} rows"),
        ));
    }
    Ok(out)
}

pub(super) fn repeat_interleave(
    d: &CudaDevice,
    x: &Tensor,
    dim: usize,
    repeats: usize,
) -> Result<Tensor> {
    let es = x.dtype().size_in_bytes();
    let mut shape = x.shape().to_vec();
    shape[dim] *= repeats;
    let out = empty(d, &shape, x.dtype())?;
    let (outer, size, inner) = split3(x.shape(), dim);
    let total = outer * size * repeats * inner;
    if total == 0 {
        return Ok(out);
    }
    let unit = unit_bytes(&[inner * es]);
    let inner_units = inner * es / unit;
    let mut a = args![
        ptr(&out)?,
        ptr(x)?,
        outer as i64,
        size as i64,
        repeats as i64,
        inner_units as i64
    ];
    let units = outer * size * repeats * inner_units;
    d.launch(
        &kernels::LAYOUT,
        &format!("repeat_interleave_{unit}"),
        Dims::elementwise(units),
        &mut a,
    )?;
    Ok(out)
}
