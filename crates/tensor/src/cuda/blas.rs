//! cuBLASLt GEMM for `linear`: `out[M, N] = x[M, K] · w[N, K]ᵀ (+ bias)`, f32 accumulation.
//!
//! Row-major `out = x·wᵀ` is column-major `outᵀ = w·xᵀ`: A = w (K×N column-major, transposed),
//! B = x (K×M column-major), D = outᵀ (N×M column-major), i.e. the "TN" layout Hopper's
//! kernels prefer. Compute type is always `CUBLAS_COMPUTE_32F` (f32 inputs: plain FP32, no TF32,
//! as PyTorch's default). The bias epilogue adds the bias in f32 before the single rounding.
//! The chosen algorithm is cached per shape, so the heuristic query runs once per shape.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Mutex;

use cudarc::cublaslt::{result as lt, sys as ltsys};
use cudarc::driver::{result as dresult, sys as dsys};

use crate::{DType, Error, Result};

/// cuBLASLt's recommended workspace on Hopper.
const WORKSPACE_BYTES: usize = 32 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct GemmKey {
    m: u64,
    n: u64,
    k: u64,
    input: DType,
    output: DType,
    bias: bool,
}

/// One GEMM: pointers to row-major x [m, k], w [n, k], out [m, n] and an optional bias [n] of
/// the output dtype.
pub(crate) struct Gemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub input: DType,
    pub output: DType,
    pub x: u64,
    pub w: u64,
    pub bias: Option<u64>,
    pub out: u64,
}

pub(crate) struct Blas {
    handle: ltsys::cublasLtHandle_t,
    workspace: dsys::CUdeviceptr,
    algos: Mutex<HashMap<GemmKey, ltsys::cublasLtMatmulAlgo_t>>,
}

// SAFETY: the handle is only used under the `algos` lock or on the device's one stream; cuBLASLt
// handles may be shared between threads.
unsafe impl Send for Blas {}
unsafe impl Sync for Blas {}

fn blas_err(op: &'static str) -> impl Fn(lt::CublasError) -> Error {
    move |e| Error::Cuda {
        op,
        msg: format!("{e:?}"),
    }
}

fn data_type(op: &'static str, d: DType) -> Result<ltsys::cudaDataType> {
    Ok(match d {
        DType::F32 => ltsys::cudaDataType::CUDA_R_32F,
        DType::F16 => ltsys::cudaDataType::CUDA_R_16F,
        DType::BF16 => ltsys::cudaDataType::CUDA_R_16BF,
        other => return Err(Error::DType { op, dtype: other }),
    })
}

/// Destroys cuBLASLt descriptors on every exit path.
struct Descs {
    layouts: Vec<ltsys::cublasLtMatrixLayout_t>,
    desc: Option<ltsys::cublasLtMatmulDesc_t>,
    pref: Option<ltsys::cublasLtMatmulPreference_t>,
}

impl Drop for Descs {
    fn drop(&mut self) {
        // SAFETY: each handle was created once and is destroyed once here.
        unsafe {
            for l in self.layouts.drain(..) {
                let _ = lt::destroy_matrix_layout(l);
            }
            if let Some(d) = self.desc.take() {
                let _ = lt::destroy_matmul_desc(d);
            }
            if let Some(p) = self.pref.take() {
                let _ = lt::destroy_matmul_pref(p);
            }
        }
    }
}

impl Blas {
    /// Creates the handle and its workspace (the device's context must be current).
    pub(crate) fn new() -> Result<Blas> {
        let handle = lt::create_handle().map_err(blas_err("cublasLtCreate"))?;
        // SAFETY: plain device allocation; freed in Drop.
        let workspace = unsafe { dresult::malloc_sync(WORKSPACE_BYTES) }.map_err(|e| {
            // SAFETY: the handle was just created.
            unsafe {
                let _ = lt::destroy_handle(handle);
            }
            if e.0 == dsys::cudaError_enum::CUDA_ERROR_OUT_OF_MEMORY {
                Error::OutOfMemory {
                    bytes: WORKSPACE_BYTES,
                }
            } else {
                super::alloc::cuda_err("cuMemAlloc", e)
            }
        })?;
        Ok(Blas {
            handle,
            workspace,
            algos: Mutex::new(HashMap::new()),
        })
    }

    /// Enqueues one GEMM on `stream`.
    pub(crate) fn gemm(&self, stream: dsys::CUstream, g: &Gemm) -> Result<()> {
        const OP: &str = "linear (cuBLASLt)";
        let (m, n, k) = (g.m as u64, g.n as u64, g.k as u64);
        let tin = data_type(OP, g.input)?;
        let tout = data_type(OP, g.output)?;
        let mut d = Descs {
            layouts: Vec::new(),
            desc: None,
            pref: None,
        };
        let e = blas_err;
        let a_layout = lt::create_matrix_layout(tin, k, n, k as i64).map_err(e(OP))?;
        d.layouts.push(a_layout);
        let b_layout = lt::create_matrix_layout(tin, k, m, k as i64).map_err(e(OP))?;
        d.layouts.push(b_layout);
        let c_layout = lt::create_matrix_layout(tout, n, m, n as i64).map_err(e(OP))?;
        d.layouts.push(c_layout);
        let desc = lt::create_matmul_desc(
            ltsys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
            ltsys::cudaDataType::CUDA_R_32F,
        )
        .map_err(e(OP))?;
        d.desc = Some(desc);
        let set = |attr: ltsys::cublasLtMatmulDescAttributes_t, p: *const c_void, size: usize| {
            // SAFETY: `desc` is live; `p` points to `size` readable bytes.
            unsafe { lt::set_matmul_desc_attribute(desc, attr, p, size) }.map_err(e(OP))
        };
        // cublasOperation_t values (an int32 attribute): CUBLAS_OP_N = 0, CUBLAS_OP_T = 1.
        let (trans_t, trans_n) = (1i32, 0i32);
        set(
            ltsys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_TRANSA,
            &trans_t as *const _ as *const c_void,
            std::mem::size_of_val(&trans_t),
        )?;
        set(
            ltsys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_TRANSB,
            &trans_n as *const _ as *const c_void,
            std::mem::size_of_val(&trans_n),
        )?;
        if let Some(bias) = g.bias {
            let epi = ltsys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_BIAS;
            set(
                ltsys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_EPILOGUE,
                &epi as *const _ as *const c_void,
                std::mem::size_of_val(&epi),
            )?;
            set(
                ltsys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                &bias as *const u64 as *const c_void,
                std::mem::size_of::<u64>(),
            )?;
        }
        let key = GemmKey {
            m,
            n,
            k,
            input: g.input,
            output: g.output,
            bias: g.bias.is_some(),
        };
        let mut algos = self.algos.lock().unwrap_or_else(|p| p.into_inner());
        let algo = match algos.get(&key) {
            Some(a) => *a,
            None => {
                let pref = lt::create_matmul_pref().map_err(e(OP))?;
                d.pref = Some(pref);
                // SAFETY: `pref` is live; the value is a usize.
                unsafe {
                    lt::set_matmul_pref_attribute(
                        pref,
                        ltsys::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                        &WORKSPACE_BYTES as *const usize as *const c_void,
                        std::mem::size_of::<usize>(),
                    )
                }
                .map_err(e(OP))?;
                // SAFETY: every descriptor is live.
                let heur = unsafe {
                    lt::get_matmul_algo_heuristic(
                        self.handle,
                        desc,
                        a_layout,
                        b_layout,
                        c_layout,
                        c_layout,
                        pref,
                    )
                }
                .map_err(|err| Error::Unsupported {
                    op: OP,
                    device: "cuda".into(),
                    msg: format!(
                        "no cuBLASLt algorithm for m={m} n={n} k={k} {:?}->{:?}: {err:?}",
                        g.input, g.output
                    ),
                })?;
                algos.insert(key, heur.algo);
                heur.algo
            }
        };
        let (alpha, beta) = (1.0f32, 0.0f32);
        // SAFETY: pointers are live device buffers of the sizes the layouts describe (checked by
        // the caller); the workspace is ours; everything runs on `stream`.
        unsafe {
            lt::matmul(
                self.handle,
                desc,
                &alpha as *const f32 as *const c_void,
                &beta as *const f32 as *const c_void,
                g.w as *const c_void,
                a_layout,
                g.x as *const c_void,
                b_layout,
                g.out as *const c_void,
                c_layout,
                g.out as *mut c_void,
                c_layout,
                &algo,
                self.workspace as *mut c_void,
                WORKSPACE_BYTES,
                stream as *mut _,
            )
        }
        .map_err(e("cublasLtMatmul"))
    }
}

impl Drop for Blas {
    fn drop(&mut self) {
        // SAFETY: created in `new`, destroyed once; the owner synchronised the stream first.
        unsafe {
            let _ = dresult::free_sync(self.workspace);
            let _ = lt::destroy_handle(self.handle);
        }
    }
}
