// Host stand-ins for the CUDA built-ins closest.cu and lbvh.cu use, so their kernels compile as
// plain C++ and run as loops (host_check.rs). `volatile` keeps each intrinsic one rounded IEEE
// operation whatever contraction flags the compiler is given.
#include <cmath>
#include <cstdint>
#include <cstring>
typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__
struct float4 { float x, y, z, w; };
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
struct Dim3 { unsigned x, y, z; };
static Dim3 blockIdx, threadIdx;
static const Dim3 blockDim = {1, 1, 1};
// Set by a driver that runs a grid-stride kernel as gridDim.x one-thread blocks.
static Dim3 gridDim = {1, 1, 1};
// One thread per warp and one at a time: shuffles read the thread's own value, atomics and
// fences are plain operations.
template <class T> inline T __shfl_down_sync(unsigned, T v, int) { return v; }
inline u32 atomicAdd(u32* p, u32 v) { u32 old = *p; *p = old + v; return old; }
inline u32 atomicMin(u32* p, u32 v) { u32 old = *p; if (v < old) *p = v; return old; }
inline u32 atomicMax(u32* p, u32 v) { u32 old = *p; if (v > old) *p = v; return old; }
inline void __threadfence() {}
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline float __fadd_rn(float a, float b) { volatile float r = a + b; return r; }
inline float __fsub_rn(float a, float b) { volatile float r = a - b; return r; }
inline float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
inline float __fdiv_rn(float a, float b) { volatile float r = a / b; return r; }
inline u32 __float_as_uint(float f) { u32 u; std::memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(u32 u) { float f; std::memcpy(&f, &u, 4); return f; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
// PTX cvt.rzi: truncation, saturating, NaN → 0.
inline int __float2int_rz(float f) {
    if (std::isnan(f)) return 0;
    if (f >= 2147483647.0f) return 2147483647;
    if (f <= -2147483648.0f) return -2147483647 - 1;
    return (int)f;
}
inline u32 __float2uint_rz(float f) {
    if (std::isnan(f) || f <= 0.0f) return 0;
    if (f >= 4294967295.0f) return 4294967295u;
    return (u32)f;
}
using std::isinf;

// ---- the drivers' I/O: arrays as raw files in `dir`, kernels run one "thread" at a time ----
#include <fstream>
#include <string>
#include <vector>

static std::string dir;
template <class T> std::vector<T> rd(const char* name) {
    std::ifstream f(dir + "/" + name, std::ios::binary | std::ios::ate);
    std::vector<T> v(f ? (size_t)f.tellg() / sizeof(T) : 0);
    f.seekg(0);
    f.read((char*)v.data(), v.size() * sizeof(T));
    return v;
}
template <class T> void wr(const char* name, const std::vector<T>& v) {
    std::ofstream(dir + "/" + name, std::ios::binary).write((const char*)v.data(), v.size() * sizeof(T));
}
#define EACH(n, call) for (long long i_ = 0; i_ < (long long)(n); ++i_) { blockIdx.x = (unsigned)i_; call; }
