//! Data movement on the CPU: exact copies written once for every element type (`ElemMap`), and
//! dtype casts.

use half::{bf16, f16};
use rayon::prelude::*;

use crate::cpu::{ElemMap, PAR_MIN, cpu_tensor, map_elems};
use crate::storage::CpuStorage;
use crate::{DType, Error, Result, Tensor};

/// Copy granularity for rayon: below this many elements a slab is copied on one thread.
const MIN_ELEMS_PER_TASK: usize = 1 << 14;

pub(super) fn to_dtype(x: &Tensor, dtype: DType) -> Result<Tensor> {
    let src = x.cpu_storage("to_dtype")?;
    Ok(cpu_tensor(cast(src, dtype), x.shape()))
}

/// A value in flight between dtypes: floats travel as f32 (which holds every f16/bf16 value
/// exactly), integers as i64 (which holds every i32/u32/u8 value exactly).
#[derive(Clone, Copy)]
enum Val {
    F(f32),
    I(i64),
}

fn cast(src: &CpuStorage, dtype: DType) -> CpuStorage {
    fn conv<S: Copy + Sync, T: Send>(
        v: &[S],
        get: impl Fn(S) -> Val + Sync + Send,
        put: impl Fn(Val) -> T + Sync + Send,
    ) -> Vec<T> {
        if v.len() < PAR_MIN {
            v.iter().map(|&s| put(get(s))).collect()
        } else {
            v.par_iter()
                .with_min_len(4096)
                .map(|&s| put(get(s)))
                .collect()
        }
    }
    // Float → float rounds to nearest even (half's conversions); float → int truncates toward
    // zero and saturates (Rust `as`; NaN → 0), matching PyTorch's `.int()` on in-range values;
    // int → int wraps (two's complement), as PyTorch's integer casts do.
    fn put_f32(v: Val) -> f32 {
        match v {
            Val::F(f) => f,
            Val::I(i) => i as f32,
        }
    }
    fn put_i64(v: Val) -> i64 {
        match v {
            Val::F(f) => f as i64,
            Val::I(i) => i,
        }
    }
    macro_rules! to {
        ($v:expr, $get:expr) => {
            match dtype {
                DType::F32 => CpuStorage::F32(conv($v, $get, put_f32)),
                DType::F16 => CpuStorage::F16(conv($v, $get, |v| match v {
                    Val::F(f) => f16::from_f32(f),
                    // i64 → f64 is exact below 2⁵³; f64 → f16 rounds once.
                    Val::I(i) => f16::from_f64(i as f64),
                })),
                DType::BF16 => CpuStorage::BF16(conv($v, $get, |v| match v {
                    Val::F(f) => bf16::from_f32(f),
                    Val::I(i) => bf16::from_f64(i as f64),
                })),
                DType::I32 => CpuStorage::I32(conv($v, $get, |v| match v {
                    Val::F(f) => f as i32,
                    Val::I(i) => i as i32,
                })),
                DType::U32 => CpuStorage::U32(conv($v, $get, |v| match v {
                    Val::F(f) => f as u32,
                    Val::I(i) => i as u32,
                })),
                DType::U8 => CpuStorage::U8(conv($v, $get, |v| put_i64(v) as u8)),
            }
        };
    }
    match src {
        CpuStorage::F32(v) => to!(v, |x: f32| Val::F(x)),
        CpuStorage::F16(v) => to!(v, |x: f16| Val::F(x.to_f32())),
        CpuStorage::BF16(v) => to!(v, |x: bf16| Val::F(x.to_f32())),
        CpuStorage::I32(v) => to!(v, |x: i32| Val::I(x as i64)),
        CpuStorage::U32(v) => to!(v, |x: u32| Val::I(x as i64)),
        CpuStorage::U8(v) => to!(v, |x: u8| Val::I(x as i64)),
    }
}

/// Strided gather for `permute`: output dim `i` is input dim `dims[i]`.
struct Permute<'a> {
    shape: &'a [usize],
    dims: &'a [usize],
}

impl ElemMap for Permute<'_> {
    fn map<T: Copy + Send + Sync + Default>(&self, src: &[T]) -> Result<Vec<T>> {
        let r = self.shape.len();
        let mut in_strides = vec![1usize; r];
        for i in (0..r.saturating_sub(1)).rev() {
            in_strides[i] = in_strides[i + 1] * self.shape[i + 1];
        }
        let out_shape: Vec<usize> = self.dims.iter().map(|&d| self.shape[d]).collect();
        let strides: Vec<usize> = self.dims.iter().map(|&d| in_strides[d]).collect();
        let mut out = vec![T::default(); src.len()];
        let last = *out_shape.last().unwrap_or(&1);
        if out.is_empty() || r == 0 {
            out.copy_from_slice(src);
            return Ok(out);
        }
        let inner = strides[r - 1];
        let rows_per_task = (MIN_ELEMS_PER_TASK / last).max(1);
        out.par_chunks_mut(last * rows_per_task)
            .enumerate()
            .for_each(|(task, chunk)| {
                for (k, row) in chunk.chunks_mut(last).enumerate() {
                    // Offset of this output row's first element, from its multi-index.
                    let mut rem = task * rows_per_task + k;
                    let mut off = 0;
                    for d in (0..r - 1).rev() {
                        off += (rem % out_shape[d]) * strides[d];
                        rem /= out_shape[d];
                    }
                    for (j, o) in row.iter_mut().enumerate() {
                        *o = src[off + j * inner];
                    }
                }
            });
        Ok(out)
    }
}

pub(super) fn permute(x: &Tensor, dims: &[usize]) -> Result<Tensor> {
    let f = Permute {
        shape: x.shape(),
        dims,
    };
    let out = map_elems(x.cpu_storage("permute")?, &f)?;
    let shape: Vec<usize> = dims.iter().map(|&d| x.shape()[d]).collect();
    Ok(cpu_tensor(out, &shape))
}

/// `(outer, size along dim, inner)` of a shape split at `dim`.
fn split_at(shape: &[usize], dim: usize) -> (usize, usize, usize) {
    (
        shape[..dim].iter().product(),
        shape[dim],
        shape[dim + 1..].iter().product(),
    )
}

struct Narrow {
    outer: usize,
    size: usize,
    inner: usize,
    start: usize,
    len: usize,
}

impl ElemMap for Narrow {
    fn map<T: Copy + Send + Sync + Default>(&self, src: &[T]) -> Result<Vec<T>> {
        let piece = self.len * self.inner;
        let mut out = vec![T::default(); self.outer * piece];
        if piece > 0 {
            out.par_chunks_mut(piece)
                .with_min_len((MIN_ELEMS_PER_TASK / piece).max(1))
                .enumerate()
                .for_each(|(o, dst)| {
                    let s = (o * self.size + self.start) * self.inner;
                    dst.copy_from_slice(&src[s..s + piece]);
                });
        }
        Ok(out)
    }
}

pub(super) fn narrow(x: &Tensor, dim: usize, start: usize, len: usize) -> Result<Tensor> {
    let (outer, size, inner) = split_at(x.shape(), dim);
    let f = Narrow {
        outer,
        size,
        inner,
        start,
        len,
    };
    let out = map_elems(x.cpu_storage("narrow")?, &f)?;
    let mut shape = x.shape().to_vec();
    shape[dim] = len;
    Ok(cpu_tensor(out, &shape))
}

pub(super) fn cat(xs: &[&Tensor], dim: usize) -> Result<Tensor> {
    let (outer, _, inner) = split_at(xs[0].shape(), dim);
    let total: usize = xs.iter().map(|x| x.shape()[dim]).sum();
    let mut shape = xs[0].shape().to_vec();
    shape[dim] = total;
    let srcs: Vec<&CpuStorage> = xs
        .iter()
        .map(|x| x.cpu_storage("cat"))
        .collect::<Result<_>>()?;
    let sizes: Vec<usize> = xs.iter().map(|x| x.shape()[dim] * inner).collect();
    let out = cat_storage(&srcs, &sizes, outer)?;
    Ok(cpu_tensor(out, &shape))
}

/// Interleaves `outer` rows: output row `o` is `src_0[o] ++ src_1[o] ++ …`, where row `o` of
/// source `i` is its `sizes[i]` elements starting at `o·sizes[i]`.
fn cat_storage(srcs: &[&CpuStorage], sizes: &[usize], outer: usize) -> Result<CpuStorage> {
    fn go<T: Copy + Send + Sync + Default>(srcs: &[&[T]], sizes: &[usize], outer: usize) -> Vec<T> {
        let row: usize = sizes.iter().sum();
        let mut out = vec![T::default(); outer * row];
        if row > 0 {
            out.par_chunks_mut(row)
                .with_min_len((MIN_ELEMS_PER_TASK / row).max(1))
                .enumerate()
                .for_each(|(o, dst)| {
                    let mut at = 0;
                    for (s, &n) in srcs.iter().zip(sizes) {
                        dst[at..at + n].copy_from_slice(&s[o * n..(o + 1) * n]);
                        at += n;
                    }
                });
        }
        out
    }
    macro_rules! arm {
        ($variant:ident) => {{
            let v: Vec<_> = srcs
                .iter()
                .map(|s| match s {
                    CpuStorage::$variant(v) => Ok(v.as_slice()),
                    other => Err(Error::DType {
                        op: "cat",
                        dtype: other.dtype(),
                    }),
                })
                .collect::<Result<_>>()?;
            CpuStorage::$variant(go(&v, sizes, outer))
        }};
    }
    Ok(match srcs[0] {
        CpuStorage::F32(_) => arm!(F32),
        CpuStorage::F16(_) => arm!(F16),
        CpuStorage::BF16(_) => arm!(BF16),
        CpuStorage::I32(_) => arm!(I32),
        CpuStorage::U32(_) => arm!(U32),
        CpuStorage::U8(_) => arm!(U8),
    })
}

struct IndexRows<'a> {
    idx: &'a [usize],
    row: usize,
}

impl ElemMap for IndexRows<'_> {
    fn map<T: Copy + Send + Sync + Default>(&self, src: &[T]) -> Result<Vec<T>> {
        let row = self.row;
        let mut out = vec![T::default(); self.idx.len() * row];
        if row > 0 {
            out.par_chunks_mut(row)
                .with_min_len((MIN_ELEMS_PER_TASK / row).max(1))
                .zip(self.idx.par_iter())
                .for_each(|(dst, &i)| dst.copy_from_slice(&src[i * row..(i + 1) * row]));
        }
        Ok(out)
    }
}

pub(super) fn index_rows(x: &Tensor, idx: &Tensor) -> Result<Tensor> {
    const OP: &str = "index_rows";
    let n = x.dim(0);
    // Every index is checked before any copy: a bad one is an error, never a panic.
    let bad = |i: i64| Error::shape(OP, format!("index {i} out of range for {n} rows"));
    let rows: Vec<usize> = match idx.cpu_storage(OP)? {
        CpuStorage::I32(v) => v
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .filter(|&u| u < n)
                    .ok_or(bad(i as i64))
            })
            .collect::<Result<_>>()?,
        CpuStorage::U32(v) => v
            .iter()
            .map(|&i| Some(i as usize).filter(|&u| u < n).ok_or(bad(i as i64)))
            .collect::<Result<_>>()?,
        other => {
            return Err(Error::DType {
                op: OP,
                dtype: other.dtype(),
            });
        }
    };
    let row: usize = x.shape()[1..].iter().product();
    let out = map_elems(x.cpu_storage(OP)?, &IndexRows { idx: &rows, row })?;
    let mut shape = x.shape().to_vec();
    shape[0] = rows.len();
    Ok(cpu_tensor(out, &shape))
}

struct RepeatInterleave {
    outer: usize,
    size: usize,
    inner: usize,
    repeats: usize,
}

impl ElemMap for RepeatInterleave {
    fn map<T: Copy + Send + Sync + Default>(&self, src: &[T]) -> Result<Vec<T>> {
        let inner = self.inner;
        let mut out = vec![T::default(); self.outer * self.size * self.repeats * inner];
        if inner > 0 {
            // Output slice `(o, s·repeats + r)` is input slice `(o, s)`.
            out.par_chunks_mut(inner)
                .with_min_len((MIN_ELEMS_PER_TASK / inner).max(1))
                .enumerate()
                .for_each(|(j, dst)| {
                    let (o, s) = (
                        j / (self.size * self.repeats),
                        j % (self.size * self.repeats),
                    );
                    let from = (o * self.size + s / self.repeats) * inner;
                    dst.copy_from_slice(&src[from..from + inner]);
                });
        }
        Ok(out)
    }
}

pub(super) fn repeat_interleave(x: &Tensor, dim: usize, repeats: usize) -> Result<Tensor> {
    let (outer, size, inner) = split_at(x.shape(), dim);
    let f = RepeatInterleave {
        outer,
        size,
        inner,
        repeats,
    };
    let out = map_elems(x.cpu_storage("repeat_interleave")?, &f)?;
    let mut shape = x.shape().to_vec();
    shape[dim] *= repeats;
    Ok(cpu_tensor(out, &shape))
}
