//! `linear` on cuBLASLt (see cuda/blas.rs), keeping the CPU contract exactly:
//! - x and w of one dtype: GEMM in that dtype with f32 accumulation, bias in the epilogue;
//! - mixed x/w dtypes: both upcast to f32 (exact) and an FP32 GEMM, rounded once to x's dtype;
//! - a bias of another dtype than a half-precision GEMM: f32 GEMM output, then linear.cu adds the
//!   f32 bias and rounds once (cuBLASLt's epilogue would take the bias in the output dtype).

use crate::cuda::{CudaDevice, Dims, Gemm, args, empty, kernels, kname, ptr};
use crate::{DType, Result, Tensor};

pub(super) fn linear(d: &CudaDevice, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let k = x.dim(-1);
    let n = w.dim(0);
    let m = x.numel().checked_div(k).unwrap_or(x.numel());
    let mut shape = x.shape().to_vec();
    *shape.last_mut().expect("rank >= 1") = n;
    if m == 0 || n == 0 {
        return empty(d, &shape, x.dtype());
    }
    if k == 0 {
        // An empty sum: the output is the bias (or zeros).
        let zeros = Tensor::zeros(&shape, x.dtype(), x.device())?;
        return match b {
            Some(b) => crate::ops::add(&zeros.to_dtype(DType::F32)?, &b.to_dtype(DType::F32)?)?
                .to_dtype(x.dtype()),
            None => Ok(zeros),
        };
    }
    let cd = if x.dtype() == w.dtype() {
        x.dtype()
    } else {
        DType::F32
    };
    let xc = x.to_dtype(cd)?;
    let wc = w.to_dtype(cd)?;
    let gemm = |out: &Tensor, bias: Option<&Tensor>| -> Result<()> {
        d.gemm(&Gemm {
            m,
            n,
            k,
            input: cd,
            output: out.dtype(),
            x: ptr(&xc)?,
            w: ptr(&wc)?,
            bias: bias.map(ptr).transpose()?,
            out: ptr(out)?,
        })
    };
    match b {
        Some(b) if cd != DType::F32 && b.dtype() != cd => {
            let acc = empty(d, &shape, DType::F32)?;
            gemm(&acc, None)?;
            let b32 = b.to_dtype(DType::F32)?;
            let out = empty(d, &shape, x.dtype())?;
            let total = m * n;
            let mut a = args![ptr(&out)?, ptr(&acc)?, ptr(&b32)?, total as i64, n as i64];
            d.launch(
                &kernels::LINEAR,
                &kname("bias_round", x.dtype()),
                Dims::elementwise(total),
                &mut a,
            )?;
            Ok(out)
        }
        _ => {
            let bc = b.map(|b| b.to_dtype(cd)).transpose()?;
            let out = empty(d, &shape, cd)?;
            gemm(&out, bc.as_ref())?;
            out.to_dtype(x.dtype())
        }
    }
}
