// binary.cu — broadcasting add/sub/mul and the DiT's adaLN steps (see binary/mod.rs).
// Grid: 1-D, grid-stride over output elements. Inputs share the output dtype (mixed dtypes are
// upcast to f32 by the launcher first, which is exact).

#define MAX_RANK 6
// Output shape and, per output dim, the element stride of a and b (0 where broadcast).
// rank == 0 means "same shape, contiguous": no index arithmetic.
struct Bcast {
    int rank;
    int op;  // 0 add, 1 sub, 2 mul
    i64 shape[MAX_RANK];
    i64 sa[MAX_RANK];
    i64 sb[MAX_RANK];
};

__device__ __forceinline__ float binop(int op, float x, float y) {
    return op == 0 ? __fadd_rn(x, y) : op == 1 ? __fsub_rn(x, y) : __fmul_rn(x, y);
}

#define BINARY_KERNELS(S, T)                                                                \
    extern "C" __global__ void binary_##S(T* out, const T* a, const T* b, i64 n, Bcast bc) { \
        GRID_STRIDE(i, n) {                                                                 \
            i64 oa = i, ob = i;                                                             \
            if (bc.rank > 0) {                                                              \
                i64 rem = i;                                                                \
                oa = 0;                                                                     \
                ob = 0;                                                                     \
                for (int d = bc.rank - 1; d >= 0; --d) {                                    \
                    i64 c = rem % bc.shape[d];                                              \
                    rem /= bc.shape[d];                                                     \
                    oa += c * bc.sa[d];                                                     \
                    ob += c * bc.sb[d];                                                     \
                }                                                                           \
            }                                                                               \
            out[i] = from_f32<T>(binop(bc.op, to_f32(a[oa]), to_f32(b[ob])));               \
        }                                                                                   \
    }                                                                                       \
    /* x*(1+scale)+shift over rows of C, rounding to T after each of the three ops */       \
    extern "C" __global__ void modulate_##S(T* out, const T* x, const T* shift,             \
                                            const T* scale, i64 n, i64 c) {                 \
        GRID_STRIDE(i, n) {                                                                 \
            i64 j = i % c;                                                                  \
            float t = round_to<T>(__fadd_rn(1.0f, to_f32(scale[j])));                       \
            float p = round_to<T>(__fmul_rn(to_f32(x[i]), t));                              \
            out[i] = from_f32<T>(__fadd_rn(p, to_f32(shift[j])));                           \
        }                                                                                   \
    }                                                                                       \
    /* x + h*gate over rows of C, rounding to T after the product and after the sum */     \
    extern "C" __global__ void gated_residual_##S(T* out, const T* x, const T* h,           \
                                                  const T* gate, i64 n, i64 c) {            \
        GRID_STRIDE(i, n) {                                                                 \
            float p = round_to<T>(__fmul_rn(to_f32(h[i]), to_f32(gate[i % c])));            \
            out[i] = from_f32<T>(__fadd_rn(to_f32(x[i]), p));                               \
        }                                                                                   \
    }
FOR_FLOATS(BINARY_KERNELS)
