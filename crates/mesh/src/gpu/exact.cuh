// Exact-rounding float helpers shared by the mesh kernels (prepended to each module by its
// `KernelSource`, included by the host-check drivers). Products and sums go through
// __fmul_rn/__fadd_rn/__fsub_rn because NVRTC would otherwise contract `a * b + c` into one FMA
// (one rounding instead of two), and the CPU path (Rust never contracts) is the numerical
// reference; division and sqrt are IEEE (NVRTC's --prec-div/--prec-sqrt defaults).
#ifndef T2_MESH_EXACT_CUH
#define T2_MESH_EXACT_CUH

__device__ __forceinline__ float fadd(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float fsub(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ float fmul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float fdiv(float a, float b) { return __fdiv_rn(a, b); }

struct V3 { float x, y, z; };

__device__ __forceinline__ V3 v3(float x, float y, float z) { V3 r = {x, y, z}; return r; }
__device__ __forceinline__ V3 vsub(V3 a, V3 b) { return v3(fsub(a.x, b.x), fsub(a.y, b.y), fsub(a.z, b.z)); }
__device__ __forceinline__ V3 vadd(V3 a, V3 b) { return v3(fadd(a.x, b.x), fadd(a.y, b.y), fadd(a.z, b.z)); }
__device__ __forceinline__ V3 vscale(V3 a, float s) { return v3(fmul(a.x, s), fmul(a.y, s), fmul(a.z, s)); }
// ((x·x + y·y) + z·z), the order of `geom::dot`.
__device__ __forceinline__ float vdot(V3 a, V3 b) {
    return fadd(fadd(fmul(a.x, b.x), fmul(a.y, b.y)), fmul(a.z, b.z));
}
// The order of `geom::cross`.
__device__ __forceinline__ V3 vcross(V3 a, V3 b) {
    return v3(fsub(fmul(a.y, b.z), fmul(a.z, b.y)), fsub(fmul(a.z, b.x), fmul(a.x, b.z)),
              fsub(fmul(a.x, b.y), fmul(a.y, b.x)));
}

#endif
