// rope.cu — rotary embeddings (see rope/mod.rs), f32 math, one rounding to the output dtype.
// Grid: 1-D grid-stride; rope_interleaved has one thread per (a, b) pair, rope_half_split one
// thread per element. x is [..., N, H, D] contiguous, so the token of element e is
// (e / (H·D)) % N.

#define ROPE_KERNELS(S, T)                                                                  \
    extern "C" __global__ void rope_interleaved_##S(T* out, const T* x, const float* cs,    \
                                                    const float* sn, i64 pairs, int n_tok,  \
                                                    int heads, int d) {                     \
        GRID_STRIDE(p, pairs) {                                                             \
            i64 e = 2 * p;                                                                  \
            int half = d / 2;                                                               \
            i64 tok = (e / ((i64)heads * d)) % n_tok;                                       \
            i64 ph = tok * half + (e % d) / 2;                                              \
            float c = cs[ph], s = sn[ph];                                                   \
            float a = to_f32(x[e]), b = to_f32(x[e + 1]);                                   \
            out[e] = from_f32<T>(a * c - b * s);                                            \
            out[e + 1] = from_f32<T>(a * s + b * c);                                        \
        }                                                                                   \
    }                                                                                       \
    extern "C" __global__ void rope_half_split_##S(T* out, const T* x, const float* cs,     \
                                                   const float* sn, i64 n, int n_tok,       \
                                                   int heads, int d, int prefix) {          \
        GRID_STRIDE(e, n) {                                                                 \
            i64 tok = (e / ((i64)heads * d)) % n_tok;                                       \
            int k = (int)(e % d);                                                           \
            if (tok < prefix) {                                                             \
                out[e] = x[e];                                                              \
            } else {                                                                        \
                int half = d / 2;                                                           \
                float r = k < half ? -to_f32(x[e + half]) : to_f32(x[e - half]);            \
                i64 ph = (tok - prefix) * d + k;                                            \
                out[e] = from_f32<T>(to_f32(x[e]) * cs[ph] + r * sn[ph]);                   \
            }                                                                               \
        }                                                                                   \
    }
FOR_FLOATS(ROPE_KERNELS)
