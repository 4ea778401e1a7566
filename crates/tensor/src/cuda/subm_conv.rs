//! Launcher of the submanifold implicit-GEMM convolution (sparse/conv/sparse_conv.cu), shared
//! by the sparse decoders' `submanifold_conv3d` and dense `conv3d` (over a dense neighbour map).

use super::{CudaDevice, Dims, args, as_f32, empty, kernels, ptr};
use crate::{DType, Result, Tensor};

/// Tensor-core tile sizes (sparse_conv.cu: BM = 128, BN = 128 or 64, BK = 64, 3 stages).
const MMA_BM: usize = 128;
const MMA_BK: usize = 64;
const MMA_STAGES: usize = 3;
/// Generic kernel tile (GC_BM = GC_BN = 64).
const GENERIC_TILE: usize = 64;

/// `feats [N, Ci]`, `nbr` U32 `[N, 27]` (rows of `feats` or NO_NEIGHBOR), `w [Co, 3, 3, 3, Ci]`,
/// `b [Co]` → `[N, Co]` in feats' dtype: `out[i] = b + Σ_v W[:, v, :] · feats[nbr[i, v]]`,
/// f32 accumulation, one rounding. Tensor cores for f16/bf16 with `Ci % 8 == 0`; otherwise (and
/// for f32) the f32-FMA kernel. A weight dtype other than feats' is handled exactly: same as
/// feats → used as is; feats f32 → weights upcast; feats half with wider weights → everything
/// runs in f32 and the result is rounded once.
pub(crate) fn implicit_gemm_conv(
    d: &CudaDevice,
    feats: &Tensor,
    nbr: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
) -> Result<Tensor> {
    let (n, ci, co) = (feats.dim(0), feats.dim(1), w.dim(0));
    let out_dtype = feats.dtype();
    let cd = if w.dtype() == out_dtype {
        out_dtype
    } else {
        DType::F32
    };
    let x = feats.to_dtype(cd)?;
    let wc = w.to_dtype(cd)?;
    let bias = b.map(as_f32).transpose()?;
    let bias_ptr = bias.as_ref().map(ptr).transpose()?.unwrap_or(0);
    let out = empty(d, &[n, co], cd)?;
    if n == 0 || co == 0 {
        return out.to_dtype(out_dtype);
    }
    let mut a = args![
        ptr(&out)?,
        ptr(&x)?,
        ptr(nbr)?,
        ptr(&wc)?,
        bias_ptr,
        n as i32,
        ci as i32,
        co as i32
    ];
    let tensor_cores = matches!(cd, DType::F16 | DType::BF16) && ci % 8 == 0 && ci > 0;
    if tensor_cores {
        let bn = if co >= 128 { 128 } else { 64 };
        let dims = Dims {
            grid: (n.div_ceil(MMA_BM) as u32, co.div_ceil(bn) as u32, 1),
            block: (256, 1, 1),
            smem: (MMA_STAGES * (MMA_BM + bn) * MMA_BK * 2) as u32,
        };
        let name = format!("subm_conv_mma_{}_n{bn}", cd.as_str());
        d.launch(&kernels::SPARSE_CONV, &name, dims, &mut a)?;
    } else {
        let dims = Dims {
            grid: (
                n.div_ceil(GENERIC_TILE) as u32,
                co.div_ceil(GENERIC_TILE) as u32,
                1,
            ),
            block: (256, 1, 1),
            smem: 0,
        };
        let name = format!("subm_conv_generic_{}", cd.as_str());
        d.launch(&kernels::SPARSE_CONV, &name, dims, &mut a)?;
    }
    out.to_dtype(out_dtype)
}
