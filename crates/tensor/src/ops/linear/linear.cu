// linear.cu — the epilogue cuBLASLt cannot do exactly: adding an f32 bias to an f32 GEMM
// result and rounding once to the output dtype (used when the bias dtype differs from the
// activations', e.g. an f32 bias on a bf16 layer). Grid: 1-D grid-stride over outputs.
#define LINEAR_KERNELS(S, T)                                                                \
    extern "C" __global__ void bias_round_##S(T* out, const float* acc, const float* bias,  \
                                              i64 n, i64 cols) {                            \
        GRID_STRIDE(i, n) out[i] = from_f32<T>(acc[i] + (bias ? bias[i % cols] : 0.0f));    \
    }
FOR_FLOATS(LINEAR_KERNELS)
