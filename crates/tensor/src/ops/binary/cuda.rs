//! Launchers for binary.cu.

use super::BinaryOp;
use crate::cuda::{CudaDevice, Dims, args, empty, float_suffix, kernels, kname, ptr};
use crate::{DType, Device, Error, Result, Tensor};

const MAX_RANK: usize = 6;

/// binary.cu's `Bcast`: output shape and per-dim element strides of a and b (0 = broadcast).
#[repr(C)]
#[derive(Clone, Copy)]
struct Bcast {
    rank: i32,
    op: i32,
    shape: [i64; MAX_RANK],
    sa: [i64; MAX_RANK],
    sb: [i64; MAX_RANK],
}

/// Strides of `s` (right-aligned to `out`) with 0 on broadcast dims.
fn strides(s: &[usize], out: &[usize]) -> Vec<i64> {
    let pad = out.len() - s.len();
    let mut st = vec![0i64; out.len()];
    let mut acc = 1i64;
    for i in (0..out.len()).rev() {
        let dim = if i >= pad { s[i - pad] } else { 1 };
        st[i] = if dim == 1 && out[i] != 1 { 0 } else { acc };
        acc *= dim as i64;
    }
    st
}

/// Merges adjacent dims that both inputs walk contiguously (or both broadcast), so typical
/// broadcasts need 2-3 dims; rank 0 = plain element-wise.
fn collapse(out: &[usize], sa: &[i64], sb: &[i64]) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
    let (mut shape, mut a, mut b) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..out.len() {
        if out[i] == 1 {
            continue;
        }
        if let (Some(&ls), Some(&la), Some(&lb)) = (shape.last(), a.last(), b.last()) {
            let n = out[i] as i64;
            if la == sa[i] * n && lb == sb[i] * n {
                *shape.last_mut().unwrap() = ls * n;
                *a.last_mut().unwrap() = sa[i];
                *b.last_mut().unwrap() = sb[i];
                continue;
            }
        }
        shape.push(out[i] as i64);
        a.push(sa[i]);
        b.push(sb[i]);
    }
    (shape, a, b)
}

pub(super) fn binary(
    d: &CudaDevice,
    a: &Tensor,
    b: &Tensor,
    op: BinaryOp,
    shape: &[usize],
    dtype: DType,
) -> Result<Tensor> {
    float_suffix("binary", dtype)?;
    // Mixed float dtypes compute in f32 (the promoted dtype): upcasting first is exact.
    let a = a.to_dtype(dtype)?;
    let b = b.to_dtype(dtype)?;
    let out = empty(d, shape, dtype)?;
    let n: usize = shape.iter().product();
    if n == 0 {
        return Ok(out);
    }
    let (cs, ca, cb) = collapse(
        shape,
        &strides(a.shape(), shape),
        &strides(b.shape(), shape),
    );
    let plain = a.shape() == shape && b.shape() == shape;
    if !plain && cs.len() > MAX_RANK {
        return Err(Error::Unsupported {
            op: "binary",
            device: Device::Cuda(d.clone()).name(),
            msg: format!(
                "broadcast of {:?} and {:?} needs more than {MAX_RANK} dims",
                a.shape(),
                b.shape()
            ),
        });
    }
    let mut bc = Bcast {
        rank: if plain { 0 } else { cs.len() as i32 },
        op: match op {
            BinaryOp::Add => 0,
            BinaryOp::Sub => 1,
            BinaryOp::Mul => 2,
        },
        shape: [1; MAX_RANK],
        sa: [0; MAX_RANK],
        sb: [0; MAX_RANK],
    };
    if !plain {
        let r = cs.len();
        bc.shape[..r].copy_from_slice(&cs);
        bc.sa[..r].copy_from_slice(&ca);
        bc.sb[..r].copy_from_slice(&cb);
    }
    let mut args = args![ptr(&out)?, ptr(&a)?, ptr(&b)?, n as i64, bc];
    d.launch(
        &kernels::BINARY,
        &kname("binary", dtype),
        Dims::elementwise(n),
        &mut args,
    )?;
    Ok(out)
}

fn row_op(
    d: &CudaDevice,
    op: &'static str,
    x: &Tensor,
    p1: &Tensor,
    p2: &Tensor,
) -> Result<Tensor> {
    float_suffix(op, x.dtype())?;
    let out = empty(d, x.shape(), x.dtype())?;
    let n = x.numel();
    if n > 0 {
        let c = x.dim(-1) as i64;
        let mut a = args![ptr(&out)?, ptr(x)?, ptr(p1)?, ptr(p2)?, n as i64, c];
        d.launch(
            &kernels::BINARY,
            &kname(op, x.dtype()),
            Dims::elementwise(n),
            &mut a,
        )?;
    }
    Ok(out)
}

pub(super) fn modulate(
    d: &CudaDevice,
    x: &Tensor,
    shift: &Tensor,
    scale: &Tensor,
) -> Result<Tensor> {
    row_op(d, "modulate", x, shift, scale)
}

pub(super) fn gated_residual(
    d: &CudaDevice,
    x: &Tensor,
    h: &Tensor,
    gate: &Tensor,
) -> Result<Tensor> {
    row_op(d, "gated_residual", x, h, gate)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn broadcasts_collapse_to_few_dims() {
        let out = [2, 3, 4, 5];
        let (s, a, b) = collapse(&out, &strides(&[2, 3, 4, 5], &out), &strides(&[5], &out));
        assert_eq!((s, a, b), (vec![24, 5], vec![5, 1], vec![0, 1]));
        let (s, a, b) = collapse(
            &out,
            &strides(&[2, 1, 4, 5], &out),
            &strides(&[3, 1, 1], &out),
        );
        assert_eq!(s, vec![2, 3, 20]);
        assert_eq!(a, vec![20, 0, 1]);
        assert_eq!(b, vec![0, 1, 0]);
    }
}
