//! `y = x·wᵀ + b` on the CPU: operands converted to f32, one f32 GEMM, bias added in f32, the
//! sum rounded once to x's dtype.

use crate::cpu::gemm::{Par, matmul_a_bt};
use crate::cpu::{f32_data, tensor_from_f32};
use crate::{Result, Tensor};

pub(super) fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    const OP: &str = "linear";
    let k = x.dim(-1);
    let n = w.dim(0);
    let m = rows_of(x);
    let xs = f32_data(x, OP)?;
    let ws = f32_data(w, OP)?;
    let mut y = matmul_a_bt(&xs, &ws, m, k, n, Par::Rayon);
    if let Some(b) = b {
        let bs = f32_data(b, OP)?;
        for row in y.chunks_exact_mut(n.max(1)) {
            for (o, &bv) in row.iter_mut().zip(bs.iter()) {
                *o += bv;
            }
        }
    }
    let mut shape = x.shape().to_vec();
    *shape.last_mut().expect("linear input has rank ≥ 1") = n;
    tensor_from_f32(y, &shape, x.dtype())
}

/// Number of rows of `x [..., K]`: the product of the leading dims (also right when K = 0).
fn rows_of(x: &Tensor) -> usize {
    x.shape()[..x.rank() - 1].iter().product()
}
