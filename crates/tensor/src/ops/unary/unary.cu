// unary.cu — element-wise functions of one tensor (see unary/mod.rs for the formulas).
// Grid: 1-D, grid-stride over elements; math in f32, one rounding to the output dtype.

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

#define UNARY_KERNELS(S, T)                                                                 \
    extern "C" __global__ void unary_##S(T* out, const T* x, i64 n, int f) {                \
        GRID_STRIDE(i, n) out[i] = from_f32<T>(apply_unary(f, to_f32(x[i])));              \
    }                                                                                       \
    /* x*mul + add, unfused (two f32 roundings, like the CPU twin), then one dtype rounding */ \
    extern "C" __global__ void affine_##S(T* out, const T* x, i64 n, float mul, float add) { \
        GRID_STRIDE(i, n) out[i] = from_f32<T>(__fadd_rn(__fmul_rn(to_f32(x[i]), mul), add)); \
    }
FOR_FLOATS(UNARY_KERNELS)
