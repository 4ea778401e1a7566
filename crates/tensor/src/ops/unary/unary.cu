// unary.cu — element-wise functions of one tensor (see unary/mod.rs for the formulas).
// Math in f32, one rounding to the output dtype.

// Function codes, in the order of `Unary::code()` in cuda.rs.
#define U_SILU 0
#define U_GELU_TANH 1
#define U_GELU_ERF 2
#define U_SIGMOID 3
#define U_SOFTPLUS 4

__device__ __forceinline__ float apply_unary(int f, float x) {
    switch (f) {
    case U_SILU: return x / (1.0f + expf(-x));
    case U_GELU_TANH: {
        const float k = 0.7978846f;  // sqrt(2/pi), as the CPU twin
        return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
    }
    case U_GELU_ERF: return 0.5f * x * (1.0f + erff(x * 0.70710678f));
    case U_SIGMOID: return 1.0f / (1.0f + expf(-x));
    default: return x > 20.0f ? x : log1pf(expf(x));  // softplus, PyTorch's threshold 20
    }
}

// Each thread handles 16-byte vectors (8 halves or 4 floats); a scalar loop covers the tail.
// Grid: 1-D grid-stride over vectors.
#define VEC_MAP(T, EXPR)                                                                    \
    constexpr int V = 16 / sizeof(T);                                                       \
    const i64 nv = n / V;                                                                   \
    GRID_STRIDE(i, nv) {                                                                    \
        V16 in = ((const V16*)x)[i], o;                                                     \
        const T* pi = (const T*)&in;                                                        \
        T* po = (T*)&o;                                                                     \
        _Pragma("unroll") for (int j = 0; j < V; ++j) {                                     \
            float v = to_f32(pi[j]);                                                        \
            po[j] = from_f32<T>(EXPR);                                                      \
        }                                                                                   \
        ((V16*)out)[i] = o;                                                                 \
    }                                                                                       \
    for (i64 i = nv * V + (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n;                \
         i += (i64)blockDim.x * gridDim.x) {                                                \
        float v = to_f32(x[i]);                                                             \
        out[i] = from_f32<T>(EXPR);                                                         \
    }

#define UNARY_KERNELS(S, T)                                                                 \
    extern "C" __global__ void unary_##S(T* out, const T* x, i64 n, int f) {                \
        VEC_MAP(T, apply_unary(f, v))                                                       \
    }                                                                                       \
    /* x*mul + add, unfused (two f32 roundings, like the CPU twin), then one dtype rounding */ \
    extern "C" __global__ void affine_##S(T* out, const T* x, i64 n, float mul, float add) { \
        VEC_MAP(T, __fadd_rn(__fmul_rn(v, mul), add))                                       \
    }
FOR_FLOATS(UNARY_KERNELS)
