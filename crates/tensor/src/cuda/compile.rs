//! NVRTC compilation with an on-disk cache of cubins, and the in-memory cache of loaded
//! kernels.
//!
//! A module is compiled the first time one of its kernels is launched. The cubin is written to
//! `$TRELLIS2_KERNEL_CACHE`, else `$XDG_CACHE_HOME/trellis2/kernels`, else
//! `~/.cache/trellis2/kernels`, under a name keyed by the SHA-256 of the full source (prelude
//! included), the compile options, the GPU arch and the NVRTC version; a later process loads it
//! without compiling. Cache write failures only log: they never fail an op.

use std::collections::HashMap;
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, result as dresult, sys as dsys};
use cudarc::nvrtc::{Ptx, result as nresult, sys as nsys};
use sha2::{Digest, Sha256};

use super::kernels::{KernelSource, PRELUDE};
use crate::{Error, Result};

/// True when libnvrtc can be loaded (never panics).
pub fn nvrtc_available() -> bool {
    // SAFETY: only tries to dlopen the library.
    unsafe { nsys::is_culib_present() }
}

/// `major.minor` of the loaded NVRTC.
pub fn nvrtc_version() -> Result<(i32, i32)> {
    let (mut major, mut minor) = (0, 0);
    // SAFETY: two out-pointers to valid ints.
    unsafe { nsys::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_err(|e| Error::CudaUnavailable(format!("nvrtcVersion: {e:?}")))?;
    Ok((major, minor))
}

/// Directories holding the CUDA headers (`cuda_fp16.h`), passed to NVRTC when found. The
/// kernels need none (see prelude.cuh); this keeps `#include <cuda_fp16.h>` usable.
/// Looked up in `TRELLIS2_CUDA_INCLUDE` (`:`-separated), `$CUDA_PATH/include`,
/// `$CUDA_HOME/include`, then `/usr/local/cuda/include`; a `cccl` subfolder is added too.
pub fn include_dirs() -> Vec<String> {
    let mut cands: Vec<PathBuf> = Vec::new();
    if let Ok(v) = std::env::var("TRELLIS2_CUDA_INCLUDE") {
        cands.extend(std::env::split_paths(&v));
    }
    for var in ["CUDA_PATH", "CUDA_HOME"] {
        if let Ok(v) = std::env::var(var) {
            cands.push(PathBuf::from(v).join("include"));
        }
    }
    cands.push(PathBuf::from("/usr/local/cuda/include"));
    let mut out = Vec::new();
    if let Some(dir) = cands.into_iter().find(|d| d.join("cuda_fp16.h").is_file()) {
        let cccl = dir.join("cccl");
        out.push(dir.display().to_string());
        if cccl.is_dir() {
            out.push(cccl.display().to_string());
        }
    }
    out
}

fn options(arch: &str) -> Vec<String> {
    let mut opts = vec![
        format!("--gpu-architecture={arch}"),
        "--std=c++17".to_string(),
        // Precise division and sqrt are NVRTC's defaults; say so, since the CPU twin relies on
        // IEEE results for LayerNorm and the RMS norm.
        "--prec-div=true".to_string(),
        "--prec-sqrt=true".to_string(),
    ];
    opts.extend(
        include_dirs()
            .into_iter()
            .map(|d| format!("--include-path={d}")),
    );
    opts
}

fn full_source(src: &KernelSource) -> String {
    format!("{PRELUDE}\n#line 1 \"{}.cu\"\n{}", src.name, src.code)
}

/// Compiles `src` for a real arch (`sm_90`) to a cubin with NVRTC (no cache, no GPU needed).
pub fn compile_cubin(src: &KernelSource, arch: &str) -> Result<Vec<u8>> {
    compile_with(src, &options(arch))
}

fn compile_with(src: &KernelSource, opts: &[String]) -> Result<Vec<u8>> {
    let fail = |log: String| Error::KernelCompile {
        kernel: src.name.to_string(),
        log,
    };
    if !nvrtc_available() {
        return Err(Error::CudaUnavailable("libnvrtc cannot be loaded".into()));
    }
    let code = CString::new(full_source(src)).map_err(|e| fail(e.to_string()))?;
    let name = CString::new(format!("{}.cu", src.name)).map_err(|e| fail(e.to_string()))?;
    let prog = nresult::create_program(&code, Some(&name)).map_err(|e| fail(format!("{e:?}")))?;
    // SAFETY: `prog` is a live program; it is destroyed exactly once below.
    let out = unsafe {
        let compiled = nresult::compile_program(prog, opts);
        let log = nresult::get_program_log(prog)
            .map(|raw| {
                let bytes: Vec<u8> = raw
                    .iter()
                    .map(|&c| c as u8)
                    .take_while(|&c| c != 0)
                    .collect();
                String::from_utf8_lossy(&bytes).into_owned()
            })
            .unwrap_or_default();
        match compiled {
            Err(e) => Err(fail(format!("{e:?}\n{log}"))),
            Ok(()) => {
                let mut size = 0usize;
                match nsys::nvrtcGetCUBINSize(prog, &mut size).result() {
                    Err(e) => Err(fail(format!("nvrtcGetCUBINSize: {e:?}"))),
                    Ok(()) => {
                        let mut cubin = vec![0u8; size];
                        nsys::nvrtcGetCUBIN(prog, cubin.as_mut_ptr() as *mut _)
                            .result()
                            .map(|_| cubin)
                            .map_err(|e| fail(format!("nvrtcGetCUBIN: {e:?}")))
                    }
                }
            }
        }
    };
    // SAFETY: destroys the program created above.
    unsafe { nresult::destroy_program(prog) }.map_err(|e| fail(format!("{e:?}")))?;
    out
}

/// The kernel cache folder (see the module docs), or None when no home is known.
pub fn cache_dir() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("TRELLIS2_KERNEL_CACHE") {
        return Some(PathBuf::from(d));
    }
    if let Ok(d) = std::env::var("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("trellis2/kernels"));
    }
    std::env::var("HOME")
        .ok()
        .map(|h| PathBuf::from(h).join(".cache/trellis2/kernels"))
}

/// The cubin for `src` on `arch`, from the disk cache or freshly compiled (and then cached).
pub fn load_or_compile(src: &KernelSource, arch: &str) -> Result<Vec<u8>> {
    let opts = options(arch);
    let (major, minor) = nvrtc_version()?;
    let mut h = Sha256::new();
    for part in [full_source(src).as_str(), &opts.join("\n"), arch] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.update(format!("nvrtc {major}.{minor}").as_bytes());
    let key = hex::encode(&h.finalize()[..16]);
    let path = cache_dir().map(|d| d.join(format!("{}-{arch}-{key}.cubin", src.name)));
    if let Some(p) = &path
        && let Ok(bytes) = std::fs::read(p)
        && !bytes.is_empty()
    {
        return Ok(bytes);
    }
    let t0 = std::time::Instant::now();
    let cubin = compile_with(src, &opts)?;
    tracing::debug!(
        module = src.name,
        arch,
        ms = t0.elapsed().as_millis() as u64,
        "nvrtc compiled"
    );
    if let Some(p) = &path
        && let Err(e) = write_atomically(p, &cubin)
    {
        tracing::warn!(path = %p.display(), error = %e, "could not cache a compiled kernel");
    }
    Ok(cubin)
}

fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("k"),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// A loaded kernel, with the dynamic shared-memory limit already raised for it.
pub(crate) struct Kernel {
    pub(crate) func: CudaFunction,
    smem_limit: AtomicU32,
}

impl Kernel {
    /// Raises the kernel's dynamic shared-memory limit to `bytes` (needed above 48 KiB).
    pub(crate) fn ensure_smem(&self, bytes: u32) -> Result<()> {
        if bytes <= 48 * 1024 || self.smem_limit.load(Ordering::Relaxed) >= bytes {
            return Ok(());
        }
        // SAFETY: the function handle is live (its module is held by `func`).
        unsafe {
            dresult::function::set_function_attribute(
                self.func.cu_function(),
                dsys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                bytes as i32,
            )
        }
        .map_err(|e| super::alloc::cuda_err("cuFuncSetAttribute", e))?;
        self.smem_limit.store(bytes, Ordering::Relaxed);
        Ok(())
    }
}

/// Loaded modules and functions of one device. Lookups take the read lock first; a miss
/// compiles (or reads the disk cache) under `compile_lock`, so a module is built once.
pub(crate) struct KernelCache {
    arch: String,
    modules: RwLock<HashMap<&'static str, Arc<CudaModule>>>,
    funcs: RwLock<HashMap<(&'static str, String), Arc<Kernel>>>,
    compile_lock: Mutex<()>,
}

impl KernelCache {
    pub(crate) fn new(arch: String) -> KernelCache {
        KernelCache {
            arch,
            modules: RwLock::new(HashMap::new()),
            funcs: RwLock::new(HashMap::new()),
            compile_lock: Mutex::new(()),
        }
    }

    pub(crate) fn arch(&self) -> &str {
        &self.arch
    }

    pub(crate) fn function(
        &self,
        ctx: &Arc<CudaContext>,
        src: &'static KernelSource,
        name: &str,
    ) -> Result<Arc<Kernel>> {
        let key = (src.name, name.to_string());
        if let Some(k) = self
            .funcs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(k.clone());
        }
        let module = self.module(ctx, src)?;
        let func = module.load_function(name).map_err(|e| Error::Cuda {
            op: "load kernel",
            msg: format!("{}::{name}: {e}", src.name),
        })?;
        let k = Arc::new(Kernel {
            func,
            smem_limit: AtomicU32::new(48 * 1024),
        });
        self.funcs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, k.clone());
        Ok(k)
    }

    fn module(
        &self,
        ctx: &Arc<CudaContext>,
        src: &'static KernelSource,
    ) -> Result<Arc<CudaModule>> {
        if let Some(m) = self
            .modules
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(src.name)
        {
            return Ok(m.clone());
        }
        let _guard = self.compile_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = self
            .modules
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(src.name)
        {
            return Ok(m.clone());
        }
        let cubin = load_or_compile(src, &format!("{}{}", self.arch, src.arch_suffix))?;
        let module = ctx
            .load_module(Ptx::from_binary(cubin))
            .map_err(|e| Error::Cuda {
                op: "load module",
                msg: format!("{}: {e}", src.name),
            })?;
        self.modules
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(src.name, module.clone());
        Ok(module)
    }
}
