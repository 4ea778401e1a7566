// sparse_conv.cu — the GPU voxel hash table / neighbour map and the submanifold 3x3x3
// convolution (FlexGEMM's semantics, see sparse/conv/mod.rs), also used for dense conv3d.
//
// hash_insert / hash_neighbors: open addressing with linear probing over 2^k slots (>= 2N),
//   key = (b, x+1, y+1, z+1) packed 16 bits each (the launcher checks coords are in range), so
//   the -1 neighbour of coordinate 0 packs to a valid key that is simply never present.
//   Grid: 1-D grid-stride over voxels (insert) and voxel x 27 offsets (lookup). Duplicate
//   coords keep the largest row, as the CPU's HashMap does.
// subm_conv_mma_<dtype>_n<BN> (f16/bf16, Ci % 8 == 0): implicit GEMM on tensor cores,
//   out[N, Co] = A[N, 27·Ci] · W[Co, 27·Ci]ᵀ where row i of A is the concatenation over v of
//   x[nbr[i, v]] (zeros for a missing neighbour), gathered straight into shared memory by
//   cp.async. Grid (ceil(N/BM), ceil(Co/BN)); 8 warps, each a WM x WN tile of m16n8k16 mma with
//   f32 accumulators; the K loop runs over (offset v, Ci chunk of 64) through a 3-stage
//   cp.async pipeline; bias in f32 and one rounding in the epilogue.
// subm_conv_generic_<dtype> (any dtype and Ci: the f32 parity path): 64x64 output tiles, each
//   thread 4x4 outputs, f32 FMA from shared memory.

#define NO_NEIGHBOR 0xffffffffu
#define EMPTY_KEY 0xffffffffffffffffull

__device__ __forceinline__ u64 voxel_key(int b, int x, int y, int z) {
    return ((u64)(u32)b << 48) | ((u64)(u32)(x + 1) << 32) | ((u64)(u32)(y + 1) << 16) |
           (u64)(u32)(z + 1);
}
__device__ __forceinline__ u64 mix64(u64 k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

// keys start as EMPTY_KEY (0xff bytes) and vals as 0.
extern "C" __global__ void hash_insert(u64* keys, u32* vals, const int* coords, i64 n, u64 mask) {
    GRID_STRIDE(i, n) {
        const int* c = coords + 4 * i;
        u64 key = voxel_key(c[0], c[1], c[2], c[3]);
        u64 slot = mix64(key) & mask;
        while (true) {
            u64 prev = atomicCAS(&keys[slot], EMPTY_KEY, key);
            if (prev == EMPTY_KEY || prev == key) {
                atomicMax(&vals[slot], (u32)i);
                break;
            }
            slot = (slot + 1) & mask;
        }
    }
}

// nbr[i, v] = row of coords[i] + (v/9 - 1, v/3%3 - 1, v%3 - 1), or NO_NEIGHBOR.
extern "C" __global__ void hash_neighbors(u32* nbr, const u64* keys, const u32* vals,
                                          const int* coords, i64 n, u64 mask) {
    GRID_STRIDE(e, n * 27) {
        i64 i = e / 27;
        int v = (int)(e % 27);
        const int* c = coords + 4 * i;
        u64 key = voxel_key(c[0], c[1] + v / 9 - 1, c[2] + v / 3 % 3 - 1, c[3] + v % 3 - 1);
        u64 slot = mix64(key) & mask;
        u32 r = NO_NEIGHBOR;
        while (true) {
            u64 k = keys[slot];
            if (k == key) {
                r = vals[slot];
                break;
            }
            if (k == EMPTY_KEY) break;
            slot = (slot + 1) & mask;
        }
        nbr[e] = r;
    }
}

// ---- implicit GEMM on tensor cores ----------------------------------------------------------
#define SC_BK 64
#define SC_STAGES 3
#define SC_THREADS 256

// Element offset of (row, 16-byte chunk) in a [rows][SC_BK] tile of 128-byte rows: the chunk is
// XOR-ed with the row's low 3 bits, so ldmatrix's 8 row addresses hit 8 different bank groups.
__device__ __forceinline__ int sc_swz(int r, int c) { return r * SC_BK + ((c ^ (r & 7)) << 3); }

template <typename T, int BM, int BN, int WM, int WN>
__device__ __forceinline__ void subm_conv_mma(T* __restrict__ out, const T* __restrict__ x,
                                              const u32* __restrict__ nbr,
                                              const T* __restrict__ w,
                                              const float* __restrict__ bias, int n, int ci,
                                              int co) {
    constexpr int WARPS_N = BN / WN;
    constexpr int MI = WM / 16, NI = WN / 8;
    constexpr int CH = SC_BK / 8;                  // 16-byte chunks per tile row
    constexpr int ROWS_PER_PASS = SC_THREADS / CH;  // tile rows one pass of the block covers
    constexpr int A_PASSES = BM / ROWS_PER_PASS, B_PASSES = BN / ROWS_PER_PASS;
    static_assert((BM / WM) * WARPS_N * 32 == SC_THREADS, "8 warps");
    extern __shared__ __attribute__((aligned(16))) unsigned char smem_raw[];
    T* sa = (T*)smem_raw;                 // [SC_STAGES][BM][SC_BK]
    T* sb = sa + SC_STAGES * BM * SC_BK;  // [SC_STAGES][BN][SC_BK]
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int wm = warp / WARPS_N, wn = warp % WARPS_N;
    const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
    const int kc = (ci + SC_BK - 1) / SC_BK;
    const int iters = 27 * kc;
    // Each thread always copies chunk `lc` of rows `lr + p·ROWS_PER_PASS`; the neighbour rows
    // of its A rows are re-read only when the offset v changes (every kc iterations).
    const int lr = tid / CH, lc = tid % CH;
    int cached_v = -1;
    u32 src_rows[A_PASSES];

    auto load_stage = [&](int stage, int it) {
        const int v = it / kc, c0 = (it % kc) * SC_BK, cc = c0 + lc * 8;
        if (v != cached_v) {
            cached_v = v;
#pragma unroll
            for (int p = 0; p < A_PASSES; ++p) {
                int gr = m0 + lr + p * ROWS_PER_PASS;
                src_rows[p] = gr < n ? nbr[(i64)gr * 27 + v] : NO_NEIGHBOR;
            }
        }
        T* a = sa + stage * BM * SC_BK;
        T* bt = sb + stage * BN * SC_BK;
#pragma unroll
        for (int p = 0; p < A_PASSES; ++p) {
            int r = lr + p * ROWS_PER_PASS;
            bool ok = src_rows[p] != NO_NEIGHBOR && cc < ci;
            cp_async16(smem_u32(a + sc_swz(r, lc)), ok ? x + (i64)src_rows[p] * ci + cc : x,
                       ok ? 16 : 0);
        }
#pragma unroll
        for (int p = 0; p < B_PASSES; ++p) {
            int r = lr + p * ROWS_PER_PASS, oc = n0 + r;
            bool ok = oc < co && cc < ci;
            cp_async16(smem_u32(bt + sc_swz(r, lc)), ok ? w + ((i64)oc * 27 + v) * ci + cc : w,
                       ok ? 16 : 0);
        }
    };

    float acc[MI][NI][4];
#pragma unroll
    for (int i = 0; i < MI; ++i)
#pragma unroll
        for (int j = 0; j < NI; ++j) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.0f;

#pragma unroll
    for (int s = 0; s < SC_STAGES - 1; ++s) {
        if (s < iters) load_stage(s, s);
        cp_async_commit();
    }
    for (int it = 0; it < iters; ++it) {
        cp_async_wait<SC_STAGES - 2>();
        __syncthreads();
        const int nxt = it + SC_STAGES - 1;
        if (nxt < iters) load_stage(nxt % SC_STAGES, nxt);
        cp_async_commit();
        const T* a = sa + (it % SC_STAGES) * BM * SC_BK;
        const T* bt = sb + (it % SC_STAGES) * BN * SC_BK;
#pragma unroll
        for (int kk = 0; kk < SC_BK / 16; ++kk) {
            u32 af[MI][4], bf[NI][2];
#pragma unroll
            for (int mi = 0; mi < MI; ++mi) {
                int r = wm * WM + mi * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
                ldmatrix_x4(af[mi], smem_u32(a + sc_swz(r, kk * 2 + (lane >> 4))));
            }
#pragma unroll
            for (int nj = 0; nj < NI / 2; ++nj) {
                u32 t[4];
                int r = wn * WN + nj * 16 + (lane & 7) + (lane >> 4) * 8;
                ldmatrix_x4(t, smem_u32(bt + sc_swz(r, kk * 2 + ((lane >> 3) & 1))));
                bf[2 * nj][0] = t[0];
                bf[2 * nj][1] = t[1];
                bf[2 * nj + 1][0] = t[2];
                bf[2 * nj + 1][1] = t[3];
            }
#pragma unroll
            for (int mi = 0; mi < MI; ++mi)
#pragma unroll
                for (int ni = 0; ni < NI; ++ni) mma16816<T>(acc[mi][ni], af[mi], bf[ni]);
        }
    }
    cp_async_wait<0>();

    const int g = lane >> 2, t4 = lane & 3;
#pragma unroll
    for (int mi = 0; mi < MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < NI; ++ni) {
            int col = n0 + wn * WN + ni * 8 + 2 * t4;
            float b0 = bias && col < co ? bias[col] : 0.0f;
            float b1 = bias && col + 1 < co ? bias[col + 1] : 0.0f;
#pragma unroll
            for (int hh = 0; hh < 2; ++hh) {
                int row = m0 + wm * WM + mi * 16 + g + hh * 8;
                if (row >= n) continue;
                T* o = out + (i64)row * co + col;
                if (col < co) o[0] = from_f32<T>(acc[mi][ni][2 * hh] + b0);
                if (col + 1 < co) o[1] = from_f32<T>(acc[mi][ni][2 * hh + 1] + b1);
            }
        }
}

#define SC_MMA_KERNELS(S, T)                                                                \
    extern "C" __global__ void __launch_bounds__(SC_THREADS)                                \
        subm_conv_mma_##S##_n128(T* out, const T* x, const u32* nbr, const T* w,            \
                                 const float* bias, int n, int ci, int co) {                \
        subm_conv_mma<T, 128, 128, 64, 32>(out, x, nbr, w, bias, n, ci, co);                \
    }                                                                                       \
    extern "C" __global__ void __launch_bounds__(SC_THREADS)                                \
        subm_conv_mma_##S##_n64(T* out, const T* x, const u32* nbr, const T* w,             \
                                const float* bias, int n, int ci, int co) {                 \
        subm_conv_mma<T, 128, 64, 32, 32>(out, x, nbr, w, bias, n, ci, co);                 \
    }
SC_MMA_KERNELS(f16, f16)
SC_MMA_KERNELS(bf16, bf16)

// ---- generic (f32 FMA) path -----------------------------------------------------------------
#define GC_BM 64
#define GC_BN 64
#define GC_BK 16

template <typename T>
__device__ __forceinline__ void subm_conv_generic(T* out, const T* x, const u32* nbr, const T* w,
                                                  const float* bias, int n, int ci, int co) {
    __shared__ float as[GC_BK][GC_BM + 4];
    __shared__ float bs[GC_BK][GC_BN + 4];
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const int m0 = blockIdx.x * GC_BM, n0 = blockIdx.y * GC_BN;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
    for (int v = 0; v < 27; ++v) {
        for (int c0 = 0; c0 < ci; c0 += GC_BK) {
            for (int i = tid; i < GC_BM * GC_BK; i += 256) {
                int r = i / GC_BK, kk = i % GC_BK, gr = m0 + r;
                float val = 0.0f;
                if (gr < n && c0 + kk < ci) {
                    u32 s = nbr[(i64)gr * 27 + v];
                    if (s != NO_NEIGHBOR) val = to_f32(x[(i64)s * ci + c0 + kk]);
                }
                as[kk][r] = val;
            }
            for (int i = tid; i < GC_BN * GC_BK; i += 256) {
                int r = i / GC_BK, kk = i % GC_BK, oc = n0 + r;
                bs[kk][r] = oc < co && c0 + kk < ci ? to_f32(w[((i64)oc * 27 + v) * ci + c0 + kk]) : 0.0f;
            }
            __syncthreads();
#pragma unroll
            for (int kk = 0; kk < GC_BK; ++kk) {
                float a[4], b[4];
#pragma unroll
                for (int i = 0; i < 4; ++i) a[i] = as[kk][ty * 4 + i];
#pragma unroll
                for (int j = 0; j < 4; ++j) b[j] = bs[kk][tx * 4 + j];
#pragma unroll
                for (int i = 0; i < 4; ++i)
#pragma unroll
                    for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
            }
            __syncthreads();
        }
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        int row = m0 + ty * 4 + i;
        if (row >= n) continue;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            int col = n0 + tx * 4 + j;
            if (col < co) out[(i64)row * co + col] = from_f32<T>(acc[i][j] + (bias ? bias[col] : 0.0f));
        }
    }
}

#define SC_GENERIC_KERNEL(S, T)                                                             \
    extern "C" __global__ void __launch_bounds__(256)                                       \
        subm_conv_generic_##S(T* out, const T* x, const u32* nbr, const T* w,               \
                              const float* bias, int n, int ci, int co) {                   \
        subm_conv_generic<T>(out, x, nbr, w, bias, n, ci, co);                              \
    }
FOR_FLOATS(SC_GENERIC_KERNEL)
