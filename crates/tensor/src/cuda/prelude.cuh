// prelude.cuh — prepended by the loader to every kernel source of the CUDA backend.
//
// It needs NO CUDA header: f16/bf16 are plain 16-bit structs converted with PTX `cvt` (the same
// round-to-nearest-even as the `half` crate on the CPU), and the tensor-core, ldmatrix and
// cp.async instructions are inline PTX. So a kernel compiles with libnvrtc alone (CI uses the
// PyPI wheel) and the GPU host needs no include path. Targets sm_80 and newer (H200 = sm_90).

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;

struct f16 { u16 bits; };
struct bf16 { u16 bits; };
// 8- and 16-byte units for vectorised loads and stores.
struct alignas(8) V8 { u32 a, b; };
struct alignas(16) V16 { u32 a, b, c, d; };

// ---- dtype conversions ------------------------------------------------------------------
__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(f16 v) {
    float r;
    asm("cvt.f32.f16 %0, %1;" : "=f"(r) : "h"(v.bits));
    return r;
}
__device__ __forceinline__ float to_f32(bf16 v) { return __uint_as_float(((u32)v.bits) << 16); }
__device__ __forceinline__ float to_f32(int v) { return (float)v; }
__device__ __forceinline__ float to_f32(u32 v) { return (float)v; }
__device__ __forceinline__ float to_f32(u8 v) { return (float)v; }

template <typename T> __device__ __forceinline__ T from_f32(float v);
template <> __device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ f16 from_f32<f16>(float v) {
    f16 r;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r.bits) : "f"(v));
    return r;
}
template <> __device__ __forceinline__ bf16 from_f32<bf16>(float v) {
    bf16 r;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r.bits) : "f"(v));
    return r;
}
// Float -> int conversions saturate and map NaN to 0, exactly like Rust's `as`.
template <> __device__ __forceinline__ int from_f32<int>(float v) {
    int r;
    asm("cvt.rzi.sat.s32.f32 %0, %1;" : "=r"(r) : "f"(v));
    return r;
}
template <> __device__ __forceinline__ u32 from_f32<u32>(float v) {
    u32 r;
    asm("cvt.rzi.sat.u32.f32 %0, %1;" : "=r"(r) : "f"(v));
    return r;
}
template <> __device__ __forceinline__ u8 from_f32<u8>(float v) {
    u32 r;
    asm("cvt.rzi.sat.u32.f32 %0, %1;" : "=r"(r) : "f"(v));
    return (u8)(r > 255u ? 255u : r);
}

// Rounds an f32 to the nearest value of T (identity for float): the reference's per-op rounding.
template <typename T> __device__ __forceinline__ float round_to(float v) {
    return to_f32(from_f32<T>(v));
}

// Two f32 -> one packed pair (low half = `lo`), as the tensor-core A/B fragments want it.
template <typename T> __device__ __forceinline__ u32 pack2(float lo, float hi);
template <> __device__ __forceinline__ u32 pack2<bf16>(float lo, float hi) {
    u32 r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}
template <> __device__ __forceinline__ u32 pack2<f16>(float lo, float hi) {
    u32 r;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

// ---- warp reductions ---------------------------------------------------------------------
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// ---- shared memory, cp.async, ldmatrix, mma (sm_80+) -------------------------------------
__device__ __forceinline__ u32 smem_u32(const void* p) {
    u32 r;
    asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(r) : "l"(p));
    return r;
}
// 16-byte async copy global -> shared; `src_bytes` < 16 zero-fills the rest (0 = all zeros,
// no global read), which is how out-of-range rows and missing neighbours become zeros.
__device__ __forceinline__ void cp_async16(u32 dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src),
                 "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;" ::"n"(N));
}
__device__ __forceinline__ void ldmatrix_x4(u32* r, u32 addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(u32* r, u32 addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
// c[16x8, f32] += a[16x16] * b[16x8], a row-major, b column-major (m16n8k16).
template <typename T> __device__ __forceinline__ void mma16816(float* c, const u32* a, const u32* b);
template <> __device__ __forceinline__ void mma16816<bf16>(float* c, const u32* a, const u32* b) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
template <> __device__ __forceinline__ void mma16816<f16>(float* c, const u32* a, const u32* b) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Grid-stride loop over `n` elements with 64-bit indices (tensors can exceed 2^31 elements).
#define GRID_STRIDE(i, n)                                                                   \
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (i64)(n);                  \
         i += (i64)blockDim.x * gridDim.x)

// Instantiates `NAME##_f32`, `NAME##_f16`, `NAME##_bf16` from a macro taking (suffix, type).
#define FOR_FLOATS(M) M(f32, float) M(f16, f16) M(bf16, bf16)
