// layout.cu — casts and data movement (see layout/mod.rs). Exact except float narrowing casts.
// Movement kernels do not look at values: they copy "units" of 1, 2, 4, 8 or 16 bytes, and the
// launcher picks the widest unit that divides every row length and offset (16-byte vector
// loads for wide rows). Grid: 1-D grid-stride over output units.

template <typename T> struct IsInt { static const bool value = false; };
template <> struct IsInt<int> { static const bool value = true; };
template <> struct IsInt<u32> { static const bool value = true; };
template <> struct IsInt<u8> { static const bool value = true; };

// Float <-> anything goes through f32 (round-to-nearest-even, saturating float -> int, like
// the CPU twin's `from_f32`); int <-> int is a C cast (Rust's `as` between integers).
template <typename From, typename To> __device__ __forceinline__ To convert(From v) {
    if constexpr (IsInt<From>::value && IsInt<To>::value) {
        return (To)v;
    } else {
        return from_f32<To>(to_f32(v));
    }
}

#define CAST_KERNEL(SA, A, SB, B)                                                           \
    extern "C" __global__ void cast_##SA##_##SB(B* out, const A* x, i64 n) {                \
        GRID_STRIDE(i, n) out[i] = convert<A, B>(x[i]);                                     \
    }
#define CAST_FROM(SA, A)                                                                    \
    CAST_KERNEL(SA, A, f32, float) CAST_KERNEL(SA, A, f16, f16)                              \
    CAST_KERNEL(SA, A, bf16, bf16) CAST_KERNEL(SA, A, i32, int)                              \
    CAST_KERNEL(SA, A, u32, u32) CAST_KERNEL(SA, A, u8, u8)
CAST_FROM(f32, float)
CAST_FROM(f16, f16)
CAST_FROM(bf16, bf16)
CAST_FROM(i32, int)
CAST_FROM(u32, u32)
CAST_FROM(u8, u8)

#define PERM_RANK 8
// Output shape, and the input stride (in elements) of each output dim.
struct Perm {
    int rank;
    i64 shape[PERM_RANK];
    i64 in_stride[PERM_RANK];
};

#define MOVE_KERNELS(S, U)                                                                  \
    extern "C" __global__ void permute_##S(U* out, const U* x, i64 n, Perm p) {             \
        GRID_STRIDE(i, n) {                                                                 \
            i64 rem = i, off = 0;                                                           \
            for (int d = p.rank - 1; d >= 0; --d) {                                         \
                off += (rem % p.shape[d]) * p.in_stride[d];                                 \
                rem /= p.shape[d];                                                          \
            }                                                                               \
            out[i] = x[off];                                                                \
        }                                                                                   \
    }                                                                                       \
    /* rows x cols units, with pitches: narrow and cat are 2-D copies */                    \
    extern "C" __global__ void copy2d_##S(U* dst, const U* src, i64 rows, i64 cols,         \
                                          i64 dst_pitch, i64 src_pitch) {                   \
        GRID_STRIDE(i, rows * cols) {                                                       \
            i64 r = i / cols, c = i % cols;                                                 \
            dst[r * dst_pitch + c] = src[r * src_pitch + c];                                \
        }                                                                                   \
    }                                                                                       \
    /* out[m, :] = x[idx[m], :]; a bad index raises *err and writes zeros */                \
    extern "C" __global__ void index_rows_i32_##S(U* out, const U* x, const int* idx,       \
                                                  i64 m, i64 row_units, i64 n_rows,        \
                                                  u32* err) {                               \
        GRID_STRIDE(i, m * row_units) {                                                     \
            i64 r = i / row_units, c = i % row_units;                                       \
            i64 j = idx[r];                                                                 \
            if (j < 0 || j >= n_rows) {                                                     \
                atomicOr(err, 1u);                                                          \
                out[i] = U{};                                                               \
            } else {                                                                        \
                out[i] = x[j * row_units + c];                                              \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
    extern "C" __global__ void index_rows_u32_##S(U* out, const U* x, const u32* idx,       \
                                                  i64 m, i64 row_units, i64 n_rows,        \
                                                  u32* err) {                               \
        GRID_STRIDE(i, m * row_units) {                                                     \
            i64 r = i / row_units, c = i % row_units;                                       \
            i64 j = idx[r];                                                                 \
            if (j >= n_rows) {                                                              \
                atomicOr(err, 1u);                                                          \
                out[i] = U{};                                                               \
            } else {                                                                        \
                out[i] = x[j * row_units + c];                                              \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
    /* x viewed [outer, d, inner] -> [outer, d*r, inner], each slice repeated r times */    \
    extern "C" __global__ void repeat_interleave_##S(U* out, const U* x, i64 outer, i64 d,  \
                                                     i64 r, i64 inner) {                    \
        GRID_STRIDE(i, outer * d * r * inner) {                                             \
            i64 k = i % inner, rest = i / inner;                                            \
            i64 j = rest % (d * r), o = rest / (d * r);                                     \
            out[i] = x[(o * d + j / r) * inner + k];                                        \
        }                                                                                   \
    }
MOVE_KERNELS(1, u8)
MOVE_KERNELS(2, u16)
MOVE_KERNELS(4, u32)
MOVE_KERNELS(8, V8)
MOVE_KERNELS(16, V16)
