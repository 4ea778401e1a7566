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
// attn_generic_<dtype> (any dtype, D and Dv up to 128): the f32 parity path and the fallback.
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
