//! The registry of CUDA C kernel sources. Each `.cu` file sits next to the Rust that launches
//! it; this list is what the loader compiles and what the NVRTC compile test checks, so a new
//! kernel file is added here once. Symbols follow `<op>_<dtype>` (see `dtype_suffix`).

/// One NVRTC compilation unit (the shared prelude is prepended when compiling).
#[derive(Debug)]
pub struct KernelSource {
    /// Module name, also the file name in compile errors and the disk cache.
    pub name: &'static str,
    pub code: &'static str,
    /// Appended to the device's `sm_XY` target: `"a"` for kernels using arch-specific
    /// instructions (Hopper's wgmma needs `sm_90a`), which then run on exactly that arch.
    pub arch_suffix: &'static str,
}

/// Device helpers shared by every source: dtype conversions, mma, ldmatrix, cp.async.
pub const PRELUDE: &str = include_str!("prelude.cuh");

pub const UNARY: KernelSource = KernelSource {
    name: "unary",
    code: include_str!("../ops/unary/unary.cu"),
    arch_suffix: "",
};
pub const BINARY: KernelSource = KernelSource {
    name: "binary",
    code: include_str!("../ops/binary/binary.cu"),
    arch_suffix: "",
};
pub const NORM: KernelSource = KernelSource {
    name: "norm",
    code: include_str!("../ops/norm/norm.cu"),
    arch_suffix: "",
};
pub const ROPE: KernelSource = KernelSource {
    name: "rope",
    code: include_str!("../ops/rope/rope.cu"),
    arch_suffix: "",
};
pub const LAYOUT: KernelSource = KernelSource {
    name: "layout",
    code: include_str!("../ops/layout/layout.cu"),
    arch_suffix: "",
};
pub const CONV: KernelSource = KernelSource {
    name: "conv",
    code: include_str!("../ops/conv/conv.cu"),
    arch_suffix: "",
};
pub const LINEAR: KernelSource = KernelSource {
    name: "linear",
    code: include_str!("../ops/linear/linear.cu"),
    arch_suffix: "",
};
pub const ATTENTION: KernelSource = KernelSource {
    name: "attention",
    code: include_str!("../ops/attention/attention.cu"),
    arch_suffix: "",
};
/// The Hopper flash-attention kernel (wgmma): launched only on sm_90 devices.
pub const ATTENTION_SM90: KernelSource = KernelSource {
    name: "attention_sm90",
    code: include_str!("../ops/attention/attention_sm90.cu"),
    arch_suffix: "a",
};
pub const SPARSE_CONV: KernelSource = KernelSource {
    name: "sparse_conv",
    code: include_str!("../sparse/conv/sparse_conv.cu"),
    arch_suffix: "",
};

/// Every kernel source of the backend.
pub const ALL: &[&KernelSource] = &[
    &UNARY,
    &BINARY,
    &NORM,
    &ROPE,
    &LAYOUT,
    &CONV,
    &LINEAR,
    &ATTENTION,
    &ATTENTION_SM90,
    &SPARSE_CONV,
];

/// CI's kernel check, shared with crates that keep their own kernel sources: compiles every
/// source with NVRTC for the H200 (`sm_90` plus the source's arch suffix), with no GPU and no
/// CUDA headers needed. Returns `Ok(false)` (skipped) when libnvrtc cannot be loaded, unless
/// `TRELLIS2_REQUIRE_NVRTC=1` (CI sets it after `scripts/fetch-cuda-wheels.sh`): then a missing
/// NVRTC is an error instead of hiding a broken kernel. `Err` carries every compile log.
pub fn nvrtc_check_sm90(sources: &[&KernelSource]) -> Result<bool, String> {
    if !super::compile::nvrtc_available() {
        if std::env::var("TRELLIS2_REQUIRE_NVRTC").is_ok_and(|v| v == "1") {
            return Err("TRELLIS2_REQUIRE_NVRTC=1 but libnvrtc cannot be loaded \
                 (run `eval \"$(scripts/fetch-cuda-wheels.sh .cuda)\"`)"
                .into());
        }
        return Ok(false);
    }
    let mut failures = Vec::new();
    for src in sources {
        match super::compile::compile_cubin(src, &format!("sm_90{}", src.arch_suffix)) {
            Ok(cubin) if cubin.is_empty() => failures.push(format!("{}: empty cubin", src.name)),
            Ok(_) => {}
            Err(e) => failures.push(e.to_string()),
        }
    }
    if failures.is_empty() {
        Ok(true)
    } else {
        Err(failures.join("\n\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CI's kernel check: every source must compile with NVRTC for the H200 (sm_90), with no
    /// GPU and no CUDA headers. Skipped (with a note) when libnvrtc cannot be loaded, unless
    /// `TRELLIS2_REQUIRE_NVRTC=1`, which CI sets after `scripts/fetch-cuda-wheels.sh`: then a
    /// missing NVRTC fails the test instead of hiding a broken kernel.
    #[test]
    fn every_kernel_compiles_with_nvrtc_for_sm90() {
        match nvrtc_check_sm90(ALL) {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("skipped: libnvrtc not found (set TRELLIS2_REQUIRE_NVRTC=1 to fail)")
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn module_names_are_unique() {
        let mut names: Vec<_> = ALL.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }
}
