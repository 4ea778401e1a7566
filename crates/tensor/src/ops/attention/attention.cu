// attention.cu — fused softmax attention, out = softmax(q·kᵀ·scale)·v, no N×L buffer.
// Layout: q [B, Nq, H, D], k [B, Nk, H, D], v [B, Nk, H, Dv], out [B, Nq, H, Dv] (token rows of
// H·D elements, so a head is a strided slice). See attention/mod.rs.
//
// flash_attn_<dtype>_d<D> (f16/bf16, D = Dv = 64 or 128): FlashAttention-2 style (on an H200
//   the D = 128 case runs attention_sm90.cu's wgmma kernel instead; this one is the portable
//   sm_80+ path and DINOv3's D = 64).
//   Grid (ceil(Nq/FA_BR), H, B); block FA_WARPS warps; each warp owns 16 query rows and keeps
//   its Q fragments, S = Q·Kᵀ tile and O accumulator in registers. K/V tiles of FA_BC keys are
//   double-buffered in shared memory with cp.async; Q·Kᵀ and P·V run on tensor cores
//   (mma.sync m16n8k16, f32 accumulation) fed by ldmatrix from XOR-swizzled rows. Softmax is
//   online in f32 with exp2 (scale·log2e folded in); P is rounded to the input dtype for P·V,
//   as FlashAttention does; the row sums use the unrounded f32 P.
// attn_f32_d<D> (f32, D = Dv = 64 or 128): exact-f32 flash kernel on the FMA units (no tensor
//   cores, so no TF32 rounding: the CPU backend stays the reference at f32 tolerance). See the
//   section comment further down.
// attn_generic_<dtype> (any dtype, D and Dv up to 128): the fallback for other head dims.
//   Grid (ceil(Nq/GA_WARPS), H, B); one warp per query row, one lane per key of a 32-key tile
//   held in shared memory as f32; online softmax with expf.

#define FA_BR 64
#define FA_BC 64
#define FA_WARPS 4

// Element offset of (row, 16-byte chunk) in a tile of rows of D elements: chunks are XOR-ed
// with the row's low 3 bits so that ldmatrix's 8 row addresses hit 8 different bank groups.
template <int D> __device__ __forceinline__ int swz(int row, int chunk) {
    return row * D + ((chunk ^ (row & 7)) << 3);
}

// Issues cp.async for `ROWS` rows of D elements (row stride `stride` elements) into a
// swizzled tile; rows >= `valid` are zero-filled without reading global memory.
template <typename T, int D, int ROWS>
__device__ __forceinline__ void load_tile(T* tile, const T* g, i64 stride, int valid) {
    constexpr int CH = D / 8;
    for (int i = threadIdx.x; i < ROWS * CH; i += FA_WARPS * 32) {
        int r = i / CH, c = i % CH;
        bool ok = r < valid;
        cp_async16(smem_u32(tile + swz<D>(r, c)), ok ? g + r * stride + c * 8 : g, ok ? 16 : 0);
    }
}

template <typename T, int D>
__device__ __forceinline__ void flash_attn(T* __restrict__ out, const T* __restrict__ q,
                                           const T* __restrict__ k, const T* __restrict__ v,
                                           int nq, int nk, int heads, float scale_log2) {
    extern __shared__ __attribute__((aligned(16))) unsigned char smem_raw[];
    T* sq = (T*)smem_raw;
    T* sk = sq + FA_BR * D;      // [2][FA_BC][D]
    T* sv = sk + 2 * FA_BC * D;  // [2][FA_BC][D]
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int h = blockIdx.y, b = blockIdx.z;
    const int q0 = blockIdx.x * FA_BR;
    const i64 stride = (i64)heads * D;
    const T* qb = q + ((i64)b * nq + q0) * stride + (i64)h * D;
    const T* kb = k + (i64)b * nk * stride + (i64)h * D;
    const T* vb = v + (i64)b * nk * stride + (i64)h * D;

    const int tiles = (nk + FA_BC - 1) / FA_BC;
    load_tile<T, D, FA_BR>(sq, qb, stride, min(FA_BR, nq - q0));
    load_tile<T, D, FA_BC>(sk, kb, stride, min(FA_BC, nk));
    load_tile<T, D, FA_BC>(sv, vb, stride, min(FA_BC, nk));
    cp_async_commit();

    u32 qf[D / 16][4];
    float o[D / 8][4];
#pragma unroll
    for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
    const float NEG_INF = -__int_as_float(0x7f800000);
    float m0 = NEG_INF, m1 = NEG_INF;  // running max (log2 units) of rows g and g+8
    float l0 = 0.0f, l1 = 0.0f;        // this thread's partial row sums

    for (int j = 0; j < tiles; ++j) {
        if (j + 1 < tiles) {
            int kv0 = (j + 1) * FA_BC;
            T* nk_tile = sk + ((j + 1) & 1) * FA_BC * D;
            T* nv_tile = sv + ((j + 1) & 1) * FA_BC * D;
            load_tile<T, D, FA_BC>(nk_tile, kb + kv0 * stride, stride, min(FA_BC, nk - kv0));
            load_tile<T, D, FA_BC>(nv_tile, vb + kv0 * stride, stride, min(FA_BC, nk - kv0));
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        if (j == 0) {
#pragma unroll
            for (int kk = 0; kk < D / 16; ++kk) {
                int r = warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
                ldmatrix_x4(qf[kk], smem_u32(sq + swz<D>(r, kk * 2 + (lane >> 4))));
            }
        }
        const T* kt = sk + (j & 1) * FA_BC * D;
        const T* vt = sv + (j & 1) * FA_BC * D;

        // S = Q Kᵀ for this warp's 16 rows x FA_BC keys.
        float s[FA_BC / 8][4];
#pragma unroll
        for (int i = 0; i < FA_BC / 8; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
            for (int nb = 0; nb < FA_BC / 16; ++nb) {
                u32 kf[4];
                int r = nb * 16 + (lane & 7) + (lane >> 4) * 8;
                ldmatrix_x4(kf, smem_u32(kt + swz<D>(r, kk * 2 + ((lane >> 3) & 1))));
                mma16816<T>(s[2 * nb], qf[kk], &kf[0]);
                mma16816<T>(s[2 * nb + 1], qf[kk], &kf[2]);
            }
        }
        // Keys past the end of the last tile do not exist.
        const int kbase = j * FA_BC;
        if (kbase + FA_BC > nk) {
#pragma unroll
            for (int nb = 0; nb < FA_BC / 8; ++nb) {
                int col = kbase + nb * 8 + 2 * (lane & 3);
                if (col >= nk) s[nb][0] = s[nb][2] = NEG_INF;
                if (col + 1 >= nk) s[nb][1] = s[nb][3] = NEG_INF;
            }
        }
        // Online softmax: new row maxima (shared by the 4 lanes of a quad), rescale, exponentiate.
        float t0 = NEG_INF, t1 = NEG_INF;
#pragma unroll
        for (int nb = 0; nb < FA_BC / 8; ++nb) {
            t0 = fmaxf(t0, fmaxf(s[nb][0], s[nb][1]));
            t1 = fmaxf(t1, fmaxf(s[nb][2], s[nb][3]));
        }
        t0 = fmaxf(t0, __shfl_xor_sync(0xffffffffu, t0, 1));
        t0 = fmaxf(t0, __shfl_xor_sync(0xffffffffu, t0, 2));
        t1 = fmaxf(t1, __shfl_xor_sync(0xffffffffu, t1, 1));
        t1 = fmaxf(t1, __shfl_xor_sync(0xffffffffu, t1, 2));
        const float n0 = fmaxf(m0, t0 * scale_log2), n1 = fmaxf(m1, t1 * scale_log2);
        const float a0 = exp2f(m0 - n0), a1 = exp2f(m1 - n1);
        m0 = n0;
        m1 = n1;
        float r0 = 0.0f, r1 = 0.0f;
#pragma unroll
        for (int nb = 0; nb < FA_BC / 8; ++nb) {
            s[nb][0] = exp2f(s[nb][0] * scale_log2 - n0);
            s[nb][1] = exp2f(s[nb][1] * scale_log2 - n0);
            s[nb][2] = exp2f(s[nb][2] * scale_log2 - n1);
            s[nb][3] = exp2f(s[nb][3] * scale_log2 - n1);
            r0 += s[nb][0] + s[nb][1];
            r1 += s[nb][2] + s[nb][3];
        }
        l0 = l0 * a0 + r0;
        l1 = l1 * a1 + r1;
#pragma unroll
        for (int i = 0; i < D / 8; ++i) {
            o[i][0] *= a0;
            o[i][1] *= a0;
            o[i][2] *= a1;
            o[i][3] *= a1;
        }
        // O += P V: the S accumulators of two adjacent 8-key blocks form one 16-key A fragment.
#pragma unroll
        for (int kk = 0; kk < FA_BC / 16; ++kk) {
            u32 pa[4];
            pa[0] = pack2<T>(s[2 * kk][0], s[2 * kk][1]);
            pa[1] = pack2<T>(s[2 * kk][2], s[2 * kk][3]);
            pa[2] = pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            pa[3] = pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
            for (int db = 0; db < D / 16; ++db) {
                u32 vf[4];
                int r = kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
                ldmatrix_x4_trans(vf, smem_u32(vt + swz<D>(r, db * 2 + (lane >> 4))));
                mma16816<T>(o[2 * db], pa, &vf[0]);
                mma16816<T>(o[2 * db + 1], pa, &vf[2]);
            }
        }
        __syncthreads();
    }

    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const float i0 = 1.0f / l0, i1 = 1.0f / l1;
    const int row0 = q0 + warp * 16 + (lane >> 2), row1 = row0 + 8;
    T* ob = out + (i64)b * nq * stride + (i64)h * D + 2 * (lane & 3);
#pragma unroll
    for (int i = 0; i < D / 8; ++i) {
        if (row0 < nq) *(u32*)(ob + row0 * stride + i * 8) = pack2<T>(o[i][0] * i0, o[i][1] * i0);
        if (row1 < nq) *(u32*)(ob + row1 * stride + i * 8) = pack2<T>(o[i][2] * i1, o[i][3] * i1);
    }
}

#define FLASH_KERNEL(S, T, D)                                                               \
    extern "C" __global__ void __launch_bounds__(FA_WARPS * 32, 2)                          \
        flash_attn_##S##_d##D(T* out, const T* q, const T* k, const T* v, int nq, int nk,   \
                              int heads, float scale_log2) {                                \
        flash_attn<T, D>(out, q, k, v, nq, nk, heads, scale_log2);                          \
    }
FLASH_KERNEL(bf16, bf16, 128)
FLASH_KERNEL(f16, f16, 128)
FLASH_KERNEL(bf16, bf16, 64)
FLASH_KERNEL(f16, f16, 64)

// ---- exact f32 flash path --------------------------------------------------------------------
// Two SGEMMs per key tile with the online softmax between them, every product an IEEE f32 FMA.
// Grid (ceil(Nq/AF_BR), H, B), AF_THREADS threads seen as AF_TY row groups × AF_TX lanes; the
// AF_TX lanes of a row group are the low bits of the lane id, so row reductions are shuffles.
// Thread (ty, tx) owns query rows ty + AF_TY·i (i < RM), keys tx + AF_TX·c (c < CN) of the
// score tile, and output columns 4·tx + 4·AF_TX·e … +3 (e < DN/4).
// Shared memory: Q [AF_BR][D+4], K [BC][D+4], V [BC][D+4], P [AF_BR][BC+16] floats. The 16-byte
// row pad makes the float4 reads of consecutive rows (K rows by tx, Q rows by ty) hit distinct
// bank groups; P's pad of 16 words puts the two row groups of a warp in opposite bank halves.
// One buffer each for K and V, loaded one phase ahead with cp.async: V_j streams in while
// S_j = Q·K_jᵀ and its softmax are computed, K_{j+1} while O += P_j·V_j is — two barriers per
// tile, and small enough (D = 64: 71 KiB) for three blocks per SM.
#define AF_BR 64
#define AF_THREADS 128
#define AF_TX 16
#define AF_TY (AF_THREADS / AF_TX)

template <int D, int BC> struct AfTile {
    static constexpr int QS = D + 4;          // row stride (floats) of the Q, K and V tiles
    static constexpr int PS = BC + 16;        // row stride of P
    static constexpr int RM = AF_BR / AF_TY;  // query rows per thread
    static constexpr int CN = BC / AF_TX;     // keys per thread in S
    static constexpr int DN = D / AF_TX;      // output columns per thread
    static_assert(DN % 4 == 0 && BC % 32 == 0 && AF_TY * RM == AF_BR, "tile shape");
};

// cp.async of `ROWS` rows of D floats (global row stride `stride` floats) into a tile with row
// stride D + 4; rows >= `valid` are zero-filled without reading global memory.
template <int D, int ROWS>
__device__ __forceinline__ void af_load(float* tile, const float* g, i64 stride, int valid) {
    constexpr int CH = D / 4, STEP = AF_THREADS / CH;  // rows per round
    static_assert(AF_THREADS % CH == 0 && ROWS % STEP == 0, "whole rounds");
    // One running source pointer (not one per round: ptxas would keep them all live across
    // the key loop and spill).
    const int r0 = threadIdx.x / CH, c = threadIdx.x % CH;
    const float* src = g + r0 * stride + c * 4;
    u32 dst = smem_u32(tile + r0 * (D + 4) + c * 4);
#pragma unroll
    for (int n = 0; n < ROWS / STEP; ++n) {
        bool ok = r0 + n * STEP < valid;
        cp_async16(dst + n * STEP * (D + 4) * 4, ok ? src : g, ok ? 16 : 0);
        src += STEP * stride;
    }
}

template <int D, int BC, int UNROLL>
__device__ __forceinline__ void attn_f32(float* __restrict__ out, const float* __restrict__ q,
                                         const float* __restrict__ k,
                                         const float* __restrict__ v, int nq, int nk, int heads,
                                         float scale_log2) {
    using L = AfTile<D, BC>;
    constexpr int RM = L::RM, CN = L::CN, DN = L::DN, QS = L::QS, PS = L::PS;
    extern __shared__ __attribute__((aligned(16))) unsigned char smem_raw[];
    float* sq = (float*)smem_raw;
    float* sk = sq + AF_BR * QS;
    float* sv = sk + BC * QS;
    float* sp = sv + BC * QS;
    const int tx = threadIdx.x % AF_TX, ty = threadIdx.x / AF_TX;
    const int h = blockIdx.y, b = blockIdx.z;
    const int q0 = blockIdx.x * AF_BR;
    const i64 stride = (i64)heads * D;
    const float* qb = q + ((i64)b * nq + q0) * stride + (i64)h * D;
    const float* kb = k + (i64)b * nk * stride + (i64)h * D;
    const float* vb = v + (i64)b * nk * stride + (i64)h * D;

    af_load<D, AF_BR>(sq, qb, stride, min(AF_BR, nq - q0));
    af_load<D, BC>(sk, kb, stride, min(BC, nk));
    cp_async_commit();

    const float NEG_INF = -__int_as_float(0x7f800000);
    float o[RM][DN];
    float m[RM], l[RM];  // running max (log2 units, equal across the row's lanes); lane's sum
#pragma unroll
    for (int i = 0; i < RM; ++i) {
        m[i] = NEG_INF;
        l[i] = 0.0f;
#pragma unroll
        for (int e = 0; e < DN; ++e) o[i][e] = 0.0f;
    }
    const int tiles = (nk + BC - 1) / BC;
    for (int j = 0; j < tiles; ++j) {
        const int k0 = j * BC;
        cp_async_wait<0>();
        __syncthreads();  // K_j (and Q) visible; every thread is done with V_{j-1} and P
        af_load<D, BC>(sv, vb + (i64)k0 * stride, stride, min(BC, nk - k0));
        cp_async_commit();

        // S = Q·K_jᵀ: per 4 head-dim columns, CN float4 K reads and RM float4 Q reads feed
        // RM·CN·4 FMAs.
        float s[RM][CN];
#pragma unroll
        for (int i = 0; i < RM; ++i)
#pragma unroll
            for (int c = 0; c < CN; ++c) s[i][c] = 0.0f;
#pragma unroll UNROLL
        for (int d = 0; d < D; d += 4) {
            float4 kf[CN];
#pragma unroll
            for (int c = 0; c < CN; ++c) kf[c] = *(const float4*)(sk + (tx + AF_TX * c) * QS + d);
#pragma unroll
            for (int i = 0; i < RM; ++i) {
                const float4 qf = *(const float4*)(sq + (ty + AF_TY * i) * QS + d);
#pragma unroll
                for (int c = 0; c < CN; ++c) {
                    s[i][c] = fmaf(qf.x, kf[c].x, s[i][c]);
                    s[i][c] = fmaf(qf.y, kf[c].y, s[i][c]);
                    s[i][c] = fmaf(qf.z, kf[c].z, s[i][c]);
                    s[i][c] = fmaf(qf.w, kf[c].w, s[i][c]);
                }
            }
        }
        // Online softmax in log2 units (scale·log2e applied before the max, so any sign of the
        // scale works); keys past the end do not exist. Key 0 is real and the row max covers
        // the whole tile, so every running max is finite from the first tile on and exp2
        // never sees -inf - -inf.
#pragma unroll
        for (int i = 0; i < RM; ++i) {
            float t = NEG_INF;
#pragma unroll
            for (int c = 0; c < CN; ++c) {
                s[i][c] = k0 + tx + AF_TX * c < nk ? s[i][c] * scale_log2 : NEG_INF;
                t = fmaxf(t, s[i][c]);
            }
#pragma unroll
            for (int off = 1; off < AF_TX; off <<= 1)
                t = fmaxf(t, __shfl_xor_sync(0xffffffffu, t, off));
            const float mn = fmaxf(m[i], t);
            const float alpha = exp2f(m[i] - mn);
            m[i] = mn;
            float r = 0.0f;
#pragma unroll
            for (int c = 0; c < CN; ++c) {
                const float p = exp2f(s[i][c] - mn);
                r += p;
                sp[(ty + AF_TY * i) * PS + tx + AF_TX * c] = p;
            }
            l[i] = l[i] * alpha + r;
#pragma unroll
            for (int e = 0; e < DN; ++e) o[i][e] *= alpha;
        }
        cp_async_wait<0>();
        __syncthreads();  // P and V_j visible; every thread is done with K_j
        if (j + 1 < tiles) {
            af_load<D, BC>(sk, kb + (i64)(k0 + BC) * stride, stride, min(BC, nk - k0 - BC));
            cp_async_commit();
        }

        // O += P·V_j: per 4 keys, 4·DN/4 float4 V reads and RM float4 P reads feed RM·DN·4 FMAs.
#pragma unroll UNROLL
        for (int c = 0; c < BC; c += 4) {
            float4 vf[4][DN / 4];
#pragma unroll
            for (int kk = 0; kk < 4; ++kk)
#pragma unroll
                for (int e = 0; e < DN / 4; ++e)
                    vf[kk][e] = *(const float4*)(sv + (c + kk) * QS + 4 * tx + 4 * AF_TX * e);
#pragma unroll
            for (int i = 0; i < RM; ++i) {
                const float4 pf = *(const float4*)(sp + (ty + AF_TY * i) * PS + c);
#pragma unroll
                for (int e = 0; e < DN / 4; ++e) {
                    float* oe = &o[i][4 * e];
                    oe[0] = fmaf(pf.x, vf[0][e].x, oe[0]);
                    oe[1] = fmaf(pf.x, vf[0][e].y, oe[1]);
                    oe[2] = fmaf(pf.x, vf[0][e].z, oe[2]);
                    oe[3] = fmaf(pf.x, vf[0][e].w, oe[3]);
                    oe[0] = fmaf(pf.y, vf[1][e].x, oe[0]);
                    oe[1] = fmaf(pf.y, vf[1][e].y, oe[1]);
                    oe[2] = fmaf(pf.y, vf[1][e].z, oe[2]);
                    oe[3] = fmaf(pf.y, vf[1][e].w, oe[3]);
                    oe[0] = fmaf(pf.z, vf[2][e].x, oe[0]);
                    oe[1] = fmaf(pf.z, vf[2][e].y, oe[1]);
                    oe[2] = fmaf(pf.z, vf[2][e].z, oe[2]);
                    oe[3] = fmaf(pf.z, vf[2][e].w, oe[3]);
                    oe[0] = fmaf(pf.w, vf[3][e].x, oe[0]);
                    oe[1] = fmaf(pf.w, vf[3][e].y, oe[1]);
                    oe[2] = fmaf(pf.w, vf[3][e].z, oe[2]);
                    oe[3] = fmaf(pf.w, vf[3][e].w, oe[3]);
                }
            }
        }
    }

    float* ob = out + (i64)b * nq * stride + (i64)h * D + 4 * tx;
#pragma unroll
    for (int i = 0; i < RM; ++i) {
        float li = l[i];
#pragma unroll
        for (int off = 1; off < AF_TX; off <<= 1) li += __shfl_xor_sync(0xffffffffu, li, off);
        const int row = q0 + ty + AF_TY * i;
        if (row >= nq) continue;
        const float inv = 1.0f / li;
#pragma unroll
        for (int e = 0; e < DN / 4; ++e)
            *(float4*)(ob + (i64)row * stride + 4 * AF_TX * e) =
                make_float4(o[i][4 * e] * inv, o[i][4 * e + 1] * inv, o[i][4 * e + 2] * inv,
                            o[i][4 * e + 3] * inv);
    }
}

// D = 64: 64-key tiles, 71 KiB of shared memory, three blocks per SM. D = 128: 32-key tiles
// (78 KiB, two blocks per SM; 64-key tiles would allow only one). The inner loops are unrolled
// 4× (16 head-dim columns or keys per trip: no spills, ~570 instructions per loop body); fully
// unrolled loops (4× the code) measured 33 % slower at 4,101 tokens (f32-notes.md).
#define ATTN_F32_KERNEL(NAME, D, BC, UNROLL, MINB)                                          \
    extern "C" __global__ void __launch_bounds__(AF_THREADS, MINB)                          \
        NAME(float* out, const float* q, const float* k, const float* v, int nq, int nk,     \
             int heads, float scale_log2) {                                                  \
        attn_f32<D, BC, UNROLL>(out, q, k, v, nq, nk, heads, scale_log2);                    \
    }
ATTN_F32_KERNEL(attn_f32_d64, 64, 64, 4, 3)
ATTN_F32_KERNEL(attn_f32_d128, 128, 32, 4, 2)

// ---- generic path ---------------------------------------------------------------------------
#define GA_WARPS 4
#define GA_KEYS 32
#define GA_MAXD 128

template <typename T>
__device__ __forceinline__ void attn_generic(T* out, const T* q, const T* k, const T* v, int nq,
                                             int nk, int heads, int d, int dv, float scale) {
    __shared__ float sq[GA_WARPS][GA_MAXD];
    __shared__ float sk[GA_KEYS][GA_MAXD + 1];  // +1: lanes read different rows, same column
    __shared__ float sv[GA_KEYS][GA_MAXD];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int h = blockIdx.y, b = blockIdx.z;
    const int row = blockIdx.x * GA_WARPS + warp;
    const bool live = row < nq;
    const i64 qs = (i64)heads * d, vs = (i64)heads * dv;
    if (live)
        for (int c = lane; c < d; c += 32)
            sq[warp][c] = to_f32(q[((i64)b * nq + row) * qs + (i64)h * d + c]);
    const float NEG_INF = -__int_as_float(0x7f800000);
    float m = NEG_INF, l = 0.0f, acc[GA_MAXD / 32];
#pragma unroll
    for (int i = 0; i < GA_MAXD / 32; ++i) acc[i] = 0.0f;
    for (int k0 = 0; k0 < nk; k0 += GA_KEYS) {
        __syncthreads();
        for (int i = threadIdx.x; i < GA_KEYS * d; i += GA_WARPS * 32) {
            int r = i / d, c = i % d;
            sk[r][c] = k0 + r < nk ? to_f32(k[((i64)b * nk + k0 + r) * qs + (i64)h * d + c]) : 0.0f;
        }
        for (int i = threadIdx.x; i < GA_KEYS * dv; i += GA_WARPS * 32) {
            int r = i / dv, c = i % dv;
            sv[r][c] = k0 + r < nk ? to_f32(v[((i64)b * nk + k0 + r) * vs + (i64)h * dv + c]) : 0.0f;
        }
        __syncthreads();
        if (!live) continue;
        float s = 0.0f;
        for (int c = 0; c < d; ++c) s += sq[warp][c] * sk[lane][c];
        s = k0 + lane < nk ? s * scale : NEG_INF;
        float mn = fmaxf(m, warp_max(s));
        float alpha = expf(m - mn);
        float p = expf(s - mn);
        l = l * alpha + warp_sum(p);
        m = mn;
#pragma unroll
        for (int i = 0; i < GA_MAXD / 32; ++i) acc[i] *= alpha;
        for (int jj = 0; jj < GA_KEYS; ++jj) {
            float pj = __shfl_sync(0xffffffffu, p, jj);
#pragma unroll
            for (int i = 0; i < GA_MAXD / 32; ++i)
                if (lane + 32 * i < dv) acc[i] += pj * sv[jj][lane + 32 * i];
        }
    }
    if (!live) return;
#pragma unroll
    for (int i = 0; i < GA_MAXD / 32; ++i)
        if (lane + 32 * i < dv)
            out[((i64)b * nq + row) * vs + (i64)h * dv + lane + 32 * i] = from_f32<T>(acc[i] / l);
}

#define GENERIC_KERNEL(S, T)                                                                \
    extern "C" __global__ void attn_generic_##S(T* out, const T* q, const T* k, const T* v, \
                                                int nq, int nk, int heads, int d, int dv,   \
                                                float scale) {                              \
        attn_generic<T>(out, q, k, v, nq, nk, heads, d, dv, scale);                         \
    }
FOR_FLOATS(GENERIC_KERNEL)
