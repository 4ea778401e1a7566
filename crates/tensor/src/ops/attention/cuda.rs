//! Launchers for attention.cu and attention_sm90.cu. f16/bf16 with head dim 128 on an sm_90 GPU
//! (the DiTs on the H200): the FlashAttention-3-style kernel (TMA producer warpgroup, two
//! ping-ponging wgmma consumer warpgroups); f16/bf16 with head dim 64 or 128 elsewhere (and
//! DINOv3's 64): the mma.sync flash kernel; f32 with head dim 64 or 128 (DINOv3 in f32, the
//! parity path): the exact-f32 flash kernel on the FMA units; anything else: the generic
//! kernel. `TRELLIS2_FLASH=generic` forces the generic kernel for any dtype (the f32 A/B
//! baseline). `TRELLIS2_FLASH` picks another flash kernel on Hopper for A/B runs:
//! `fa3-bc128` (128-key tiles instead of 176), `fa3-nopp` (no ping-pong), `sm90-v1` (the earlier wgmma
//! kernel: cp.async, 3 warpgroups, 128-key tiles), `sm90-bc64` (that with 64-key tiles),
//! `sm90-nostagger` (that without warpgroup staggering), `sm80` (mma.sync).

use cudarc::driver::sys as dsys;

use crate::cuda::{Args, CudaDevice, Dims, args, empty, float_suffix, kernels, ptr};
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
/// attention_sm90.cu's F_BR and F_THREADS. fa3 shared memory: 1 KiB alignment slack, the Q
/// tile (F_BR rows), the K and V rings (`stages` tiles of BC key rows each), then 1 + 4·stages
/// mbarriers of 8 bytes; a row is 128 elements of 2 bytes.
const F_BR: usize = 128;
const F_THREADS: u32 = 384;
const F_ROW_BYTES: usize = 128 * 2;
/// attention.cu's AF_BR and AF_THREADS, and the key-tile length of `attn_f32_d<D>` (shared
/// memory: Q [AF_BR][D+4], K and V [BC][D+4], P [AF_BR][BC+16] floats).
const AF_BR: usize = 64;
const AF_THREADS: u32 = 128;
const fn af_bc(d: usize) -> usize {
    if d == 64 { 64 } else { 32 }
}
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
    let choice = std::env::var("TRELLIS2_FLASH").unwrap_or_default();
    let generic = choice == "generic";
    let scale_log2 = scale * std::f32::consts::LOG2_E;
    let flash_dims = dh == dv && (dh == 64 || dh == 128);
    // The parameters of every flash kernel that reads Q/K/V through plain pointers.
    let pointer_args = || -> Result<Args> {
        Ok(args![
            ptr(&out)?,
            ptr(q)?,
            ptr(k)?,
            ptr(v)?,
            nq as i32,
            nk as i32,
            h as i32,
            scale_log2
        ])
    };
    // attn_f32 reads and writes float4s: every row start must be 16-byte aligned (it is for
    // the allocator's buffers; checked so a future view with an odd offset falls back).
    let aligned = [ptr(q)?, ptr(k)?, ptr(v)?, ptr(&out)?]
        .iter()
        .all(|p| p % 16 == 0);
    if q.dtype() == DType::F32 && flash_dims && aligned && !generic {
        let bc = af_bc(dh);
        let mut a = pointer_args()?;
        let pad = dh + 4;
        let dims = Dims {
            grid: (nq.div_ceil(AF_BR) as u32, h as u32, b as u32),
            block: (AF_THREADS, 1, 1),
            smem: ((AF_BR * pad + 2 * bc * pad + AF_BR * (bc + 16)) * 4) as u32,
        };
        d.launch(
            &kernels::ATTENTION,
            &format!("attn_f32_d{dh}"),
            dims,
            &mut a,
        )?;
        return Ok(out);
    }
    let flash = matches!(q.dtype(), DType::F16 | DType::BF16) && flash_dims && !generic;
    if flash {
        let hopper = d.compute_capability() == (9, 0) && dh == 128 && choice != "sm80";
        if hopper && (choice.is_empty() || choice.starts_with("fa3")) {
            let (bc, suffix) = match choice.as_str() {
                "fa3-bc128" => (128, "_bc128"),
                "fa3-nopp" => (176, "_bc176_nopp"),
                _ => (176, "_bc176"),
            };
            let stages = 2;
            let mut a = args![
                ptr(&out)?,
                tma_desc(q, F_BR)?,
                tma_desc(k, bc)?,
                tma_desc(v, bc)?,
                nq as i32,
                nk as i32,
                h as i32,
                scale_log2
            ];
            let name = format!("flash_attn_fa3_{}_d128{suffix}", q.dtype().as_str());
            let kv_tile = bc * F_ROW_BYTES;
            let dims = Dims {
                grid: (nq.div_ceil(F_BR) as u32, h as u32, b as u32),
                block: (F_THREADS, 1, 1),
                smem: (1024 + F_BR * F_ROW_BYTES + 2 * stages * kv_tile + 8 * (1 + 4 * stages))
                    as u32,
            };
            d.launch(&kernels::ATTENTION_SM90, &name, dims, &mut a)?;
            return Ok(out);
        }
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
            d.launch(&kernels::ATTENTION_SM90, &name, dims, &mut pointer_args()?)?;
            return Ok(out);
        }
        let dims = Dims {
            grid: (nq.div_ceil(FA_BR) as u32, h as u32, b as u32),
            block: (FA_WARPS * 32, 1, 1),
            smem: ((FA_BR + 4 * FA_BC) * dh * 2) as u32,
        };
        let name = format!("flash_attn_{}_d{dh}", q.dtype().as_str());
        d.launch(&kernels::ATTENTION, &name, dims, &mut pointer_args()?)?;
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

/// The TMA descriptor of a contiguous `[B, N, H, 128]` f16/bf16 tensor for attention_sm90.cu's
/// fa3 kernel: dims (d, head, token, batch) innermost first, boxes of 64 d × 1 head × `rows`
/// tokens (one 128-byte-swizzled column half of a tile); tokens past N read as zeros.
fn tma_desc(t: &Tensor, rows: usize) -> Result<dsys::CUtensorMap> {
    use dsys::CUtensorMapDataType as Ty;
    let ty = match t.dtype() {
        DType::BF16 => Ty::CU_TENSOR_MAP_DATA_TYPE_BFLOAT16,
        DType::F16 => Ty::CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
        dt => {
            return Err(Error::DType {
                op: "attention",
                dtype: dt,
            });
        }
    };
    let (b, n, h, d) = (t.dim(0), t.dim(1), t.dim(2), t.dim(3));
    let el = t.dtype().size_in_bytes();
    let dims = [d as u64, h as u64, n as u64, b as u64];
    let strides = [
        (d * el) as u64,
        (h * d * el) as u64,
        (n * h * d * el) as u64,
    ];
    let boxes = [64u32, 1, rows as u32, 1];
    let elem_strides = [1u32; 4];
    let mut map = dsys::CUtensorMap { opaque: [0; 16] };
    // SAFETY: every array has the rank's length (strides rank − 1); the address is the live,
    // 256-byte-aligned buffer of `t`, which outlives the launch that reads the map.
    unsafe {
        dsys::cuTensorMapEncodeTiled(
            &mut map,
            ty,
            4,
            ptr(t)? as *mut std::ffi::c_void,
            dims.as_ptr(),
            strides.as_ptr(),
            boxes.as_ptr(),
            elem_strides.as_ptr(),
            dsys::CUtensorMapInterleave::CU_TENSOR_MAP_INTERLEAVE_NONE,
            dsys::CUtensorMapSwizzle::CU_TENSOR_MAP_SWIZZLE_128B,
            dsys::CUtensorMapL2promotion::CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            dsys::CUtensorMapFloatOOBfill::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE,
        )
    }
    .result()
    .map_err(|e| Error::Cuda {
        op: "cuTensorMapEncodeTiled",
        msg: format!("{e:?} for {:?} {:?}", t.shape(), t.dtype()),
    })?;
    Ok(map)
}
