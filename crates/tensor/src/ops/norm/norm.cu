// norm.cu — LayerNorm and the multi-head RMS norm (see norm/mod.rs), f32 math.
// Grid: one warp per normalised vector (a row of C for LayerNorm, a head of D for the RMS
// norm), NORM_WARPS warps per block; lanes stride over the vector. Affine params arrive as f32
// (the launcher upcasts them, exactly).

#define NORM_WARPS 8

#define NORM_KERNELS(S, T)                                                                  \
    extern "C" __global__ void layer_norm_##S(T* out, const T* x, const float* w,           \
                                              const float* b, i64 rows, int c, float eps) { \
        i64 row = (i64)blockIdx.x * NORM_WARPS + threadIdx.x / 32;                          \
        int lane = threadIdx.x % 32;                                                        \
        if (row >= rows) return;                                                            \
        const T* xr = x + row * c;                                                          \
        T* yr = out + row * c;                                                              \
        float s = 0.0f;                                                                     \
        for (int k = lane; k < c; k += 32) s += to_f32(xr[k]);                              \
        float mean = warp_sum(s) / (float)c;                                                \
        float v = 0.0f;                                                                     \
        for (int k = lane; k < c; k += 32) {                                                \
            float d = to_f32(xr[k]) - mean;                                                 \
            v += d * d;                                                                     \
        }                                                                                   \
        float rstd = 1.0f / sqrtf(warp_sum(v) / (float)c + eps);                            \
        for (int k = lane; k < c; k += 32) {                                                \
            float y = (to_f32(xr[k]) - mean) * rstd;                                        \
            if (w) y = y * w[k];                                                            \
            if (b) y = y + b[k];                                                            \
            yr[k] = from_f32<T>(y);                                                         \
        }                                                                                   \
    }                                                                                       \
    /* x / max(|x|, 1e-12) * gamma[h] * sqrt(D) per head vector; gamma f32 [H, D] */        \
    extern "C" __global__ void rms_norm_heads_##S(T* out, const T* x, const float* gamma,   \
                                                  i64 vecs, int heads, int d) {             \
        i64 vec = (i64)blockIdx.x * NORM_WARPS + threadIdx.x / 32;                          \
        int lane = threadIdx.x % 32;                                                        \
        if (vec >= vecs) return;                                                            \
        const T* xr = x + vec * d;                                                          \
        T* yr = out + vec * d;                                                              \
        const float* g = gamma + (vec % heads) * d;                                         \
        float s = 0.0f;                                                                     \
        for (int k = lane; k < d; k += 32) {                                                \
            float t = to_f32(xr[k]);                                                        \
            s += t * t;                                                                     \
        }                                                                                   \
        float nrm = fmaxf(sqrtf(warp_sum(s)), 1e-12f);                                      \
        float scale = sqrtf((float)d);                                                      \
        for (int k = lane; k < d; k += 32)                                                  \
            yr[k] = from_f32<T>(__fmul_rn(__fmul_rn(to_f32(xr[k]) / nrm, g[k]), scale));   \
    }
FOR_FLOATS(NORM_KERNELS)
