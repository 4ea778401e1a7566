//! Launchers for attention.cu and attention_sm90.cu. f16/bf16 with head dim 128 on an sm_90 GPU
//! (the DiTs on the H200): the wgmma kernel; f16/bf16 with head dim 64 or 128 elsewhere (and
//! DINOv3's 64): the mma.sync flash kernel; anything else (and f32, the parity path): the
//! generic kernel. `TRELLIS2_FLASH` picks another flash kernel on Hopper for A/B runs:
//! `sm80` (mma.sync), `sm90-bc64` (64-key tiles), `sm90-nostagger` (no warpgroup staggering).

use crate::cuda::{CudaDevice, Dims, args, empty, float_suffix, kernels, ptr};
use crate::{DType, Device, Error, Result, Tensor};

/// attention.cu's FA_BR, FA_BC and FA_WARPS.
const FA_BR: usize = 64;
const FA_BC: usize = 64;
const FA_WARPS: u32 = 4;
/// attention_sm90.cu's W_BR and W_THREADS (shared memory: 1 KiB alignment slack + Q + 2×(K, V)
/// tiles of `bc` keys, rows of 128 elements).
const W_BR: usize = 192;
const W_THREADS: u32 = 384;
const TILE_ROW_BYTES: usize = 128 * 2;
/// attention.cu's GA_WARPS and GA_MAXD.
const GA_WARPS: usize = 4;
const GA_MAXD: usize = 128;

pub(super) fn attention(
    d: &CudaDevice,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f32,
) -> Result<Tensor> {
    const OP: &str = "attention";
    float_suffix(OP, q.dtype())?;
    let (b, nq, h, dh) = (q.dim(0), q.dim(1), q.dim(2), q.dim(3));
    let (nk, dv) = (k.dim(1), v.dim(3));
    let out = empty(d, &[b, nq, h, dv], q.dtype())?;
    if b == 0 || nq == 0 || h == 0 || dv == 0 {
        return Ok(out);
    }
    if nk == 0 {
        return Err(Error::shape(OP, "no keys: softmax over an empty set"));
    }
    let flash =
        matches!(q.dtype(), DType::F16 | DType::BF16) && dh == dv && (dh == 64 || dh == 128);
    if flash {
        let scale_log2 = scale * std::f32::consts::LOG2_E;
        let choice = std::env::var("TRELLIS2_FLASH").unwrap_or_default();
        let hopper = d.compute_capability() == (9, 0) && dh == 128 && choice != "sm80";
        let mut a = args![
            ptr(&out)?,
            ptr(q)?,
            ptr(k)?,
            ptr(v)?,
            nq as i32,
            nk as i32,
            h as i32,
            scale_log2
        ];
        if hopper {
            let bc = if choice == "sm90-bc64" { 64 } else { 128 };
            let suffix = if choice == "sm90-nostagger" {
                "_nostagger"
            } else {
                ""
            };
            let name = format!("flash_attn_sm90_{}_d128_bc{bc}{suffix}", q.dtype().as_str());
            let dims = Dims {
                grid: (nq.div_ceil(W_BR) as u32, h as u32, b as u32),
                block: (W_THREADS, 1, 1),
                smem: (1024 + (W_BR + 4 * bc) * TILE_ROW_BYTES) as u32,
            };
            d.launch(&kernels::ATTENTION_SM90, &name, dims, &mut a)?;
            return Ok(out);
        }
        let dims = Dims {
            grid: (nq.div_ceil(FA_BR) as u32, h as u32, b as u32),
            block: (FA_WARPS * 32, 1, 1),
            smem: ((FA_BR + 4 * FA_BC) * dh * 2) as u32,
        };
        let name = format!("flash_attn_{}_d{dh}", q.dtype().as_str());
        d.launch(&kernels::ATTENTION, &name, dims, &mut a)?;
        return Ok(out);
    }
    if dh > GA_MAXD || dv > GA_MAXD || dh == 0 {
        return Err(Error::Unsupported {
            op: OP,
            device: Device::Cuda(d.clone()).name(),
            msg: format!(
                "head dims {dh}/{dv} (flash: f16/bf16 with 64 or 128; else up to {GA_MAXD})"
            ),
        });
    }
    let mut a = args![
        ptr(&out)?,
        ptr(q)?,
        ptr(k)?,
        ptr(v)?,
        nq as i32,
        nk as i32,
        h as i32,
        dh as i32,
        dv as i32,
        scale
    ];
    let dims = Dims {
        grid: (nq.div_ceil(GA_WARPS) as u32, h as u32, b as u32),
        block: (GA_WARPS as u32 * 32, 1, 1),
        smem: 0,
    };
    d.launch(
        &kernels::ATTENTION,
        &format!("attn_generic_{}", q.dtype().as_str()),
        dims,
        &mut a,
    )?;
    Ok(out)
}
