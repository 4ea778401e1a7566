// attention_sm90.cu — the Hopper (sm_90a) flash-attention kernel: the same algorithm as
// attention.cu's flash_attn, with both GEMMs on warpgroup MMA (wgmma) instead of mma.sync.
// Layout as in attention.cu: q, k, v, out [B, N, H, 128] (f16/bf16), f32 softmax/accumulation.
//
// Grid (ceil(Nq/192), H, B); block = 3 warpgroups (384 threads), each owning 64 query rows.
// Key tiles of W_BC = 128 (default) or 64 keys. Shared memory (1024-byte aligned, one block
// per SM): Q [192 rows], then K and V double-buffered [2][W_BC keys]; every tile is stored as
// two column halves (d 0–63, 64–127) of 128-byte rows in the canonical 128-byte-swizzle layout
// (16-byte chunk c of row r at c ^ (r & 7)), filled by cp.async one tile ahead of its use.
// Per key tile, each warpgroup: S[64 x W_BC] = Q·Kᵀ as 8 wgmma m64nW_BCk16 (A = Q and B = K
// from shared memory, both K-major); online softmax in registers (exp2, f32; the accumulator
// layout is mma.sync's C fragment per warp, so the code matches attention.cu); then
// O[64x128] += P·V as W_BC/16 wgmma m64n128k16 with P from registers (rounded to the input
// dtype) and V from shared memory read MN-major (transposed).
// Warpgroups issue their Q·Kᵀ in turn (named barriers 1, 2): warpgroup w issues after w-1 did,
// so its S completes earlier and its softmax runs while the later warpgroups' GEMMs use the
// tensor cores, instead of all three doing softmax at once with the tensor cores idle (a
// cheap form of FlashAttention-3's ping-pong scheduling; STAGGER = false turns it off for A/B
// runs). An intra-warpgroup pipelined variant (S of the next tile in flight during softmax)
// measured slower here: ptxas serialises its wgmmas (C7514), so it was dropped.

#define W_WGS 3  // warpgroups per block: ~167 registers/thread allow 3 per SM, not 4
#define W_BR (64 * W_WGS)
#define W_D 128
#define W_THREADS (128 * W_WGS)

// ---- wgmma wrappers (operand lists written out by a script): m64n64k16 and m64n128k16 with
// A and B in shared memory; m64n128k16 with A in registers and B transposed ----
template <typename T> __device__ __forceinline__ void wgmma_ss_m64n64(float* d, u64 da, u64 db, int accumulate);
template <typename T> __device__ __forceinline__ void wgmma_rs_m64n128_tb(float* d, const u32* a, u64 db, int accumulate);
template <typename T> __device__ __forceinline__ void wgmma_ss_m64n128(float* d, u64 da, u64 db, int accumulate);
template <> __device__ __forceinline__ void wgmma_ss_m64n64<bf16>(float* d, u64 da, u64 db, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "l"(da), "l"(db), "r"(accumulate));
}

template <> __device__ __forceinline__ void wgmma_ss_m64n128<bf16>(float* d, u64 da, u64 db, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "l"(da), "l"(db), "r"(accumulate));
}

template <> __device__ __forceinline__ void wgmma_rs_m64n128_tb<bf16>(float* d, const u32* a, u64 db, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(accumulate));
}

template <> __device__ __forceinline__ void wgmma_ss_m64n64<f16>(float* d, u64 da, u64 db, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "l"(da), "l"(db), "r"(accumulate));
}

template <> __device__ __forceinline__ void wgmma_ss_m64n128<f16>(float* d, u64 da, u64 db, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "l"(da), "l"(db), "r"(accumulate));
}

template <> __device__ __forceinline__ void wgmma_rs_m64n128_tb<f16>(float* d, const u32* a, u64 db, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(accumulate));
}


__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory"); }
// Orders this thread's shared-memory writes (cp.async) before later reads by the async proxy.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }

// Shared-memory matrix descriptor, 128-byte swizzle: start address, leading and stride byte
// offsets (all in 16-byte units).
__device__ __forceinline__ u64 sw128_desc(u32 addr, u32 lbo, u32 sbo) {
    return (u64)((addr & 0x3ffff) >> 4) | ((u64)((lbo >> 4) & 0x3fff) << 16) |
           ((u64)((sbo >> 4) & 0x3fff) << 32) | (1ull << 62);
}

// cp.async of `rows` rows (valid ones from global, row stride `stride` elements) into a tile of
// two 128-byte-row halves; rows >= `valid` are zero-filled.
template <typename T>
__device__ __forceinline__ void w_load_tile(u32 tile, const T* g, i64 stride, int rows, int valid) {
    for (int i = threadIdx.x; i < rows * 16; i += W_THREADS) {
        int r = i >> 4, c = i & 15, half = c >> 3, cc = c & 7;
        bool ok = r < valid;
        u32 dst = tile + half * rows * 128 + r * 128 + ((cc ^ (r & 7)) << 4);
        cp_async16(dst, ok ? g + r * stride + c * 8 : g, ok ? 16 : 0);
    }
}

// Named-barrier helpers: `arrive` does not wait; `sync` waits until `count` threads arrived.
__device__ __forceinline__ void named_arrive(int id, int count) {
    asm volatile("bar.arrive %0, %1;" ::"r"(id), "r"(count) : "memory");
}
__device__ __forceinline__ void named_sync(int id, int count) {
    asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(count) : "memory");
}

template <typename T, int W_BC, bool STAGGER>
__device__ __forceinline__ void flash_attn_sm90(T* __restrict__ out, const T* __restrict__ q,
                                                const T* __restrict__ k, const T* __restrict__ v,
                                                int nq, int nk, int heads, float scale_log2) {
    extern __shared__ __attribute__((aligned(16))) unsigned char smem_raw[];
    const u32 base = (smem_u32(smem_raw) + 1023) & ~1023u;
    const u32 sq = base;                          // W_BR rows: 48 KiB
    const u32 sk = sq + W_BR * W_D * 2;           // [2][W_BC rows]
    const u32 sv = sk + 2 * W_BC * W_D * 2;       // [2][W_BC rows]
    const int tid = threadIdx.x, wg = tid / 128, warp = (tid % 128) / 32, lane = tid % 32;
    const int h = blockIdx.y, b = blockIdx.z, q0 = blockIdx.x * W_BR;
    const i64 stride = (i64)heads * W_D;
    const T* qb = q + ((i64)b * nq + q0) * stride + (i64)h * W_D;
    const T* kb = k + (i64)b * nk * stride + (i64)h * W_D;
    const T* vb = v + (i64)b * nk * stride + (i64)h * W_D;
    const int tiles = (nk + W_BC - 1) / W_BC;

    w_load_tile<T>(sq, qb, stride, W_BR, min(W_BR, nq - q0));
    w_load_tile<T>(sk, kb, stride, W_BC, min(W_BC, nk));
    w_load_tile<T>(sv, vb, stride, W_BC, min(W_BC, nk));
    cp_async_commit();

    float o[64];
#pragma unroll
    for (int i = 0; i < 64; ++i) o[i] = 0.0f;
    const float NEG_INF = -__int_as_float(0x7f800000);
    float m0 = NEG_INF, m1 = NEG_INF, l0 = 0.0f, l1 = 0.0f;
    // This warpgroup's 64 Q rows start 64 rows (8 KiB) into each half of the Q tile.
    const u32 q_rows = sq + wg * 64 * 128;

    for (int j = 0; j < tiles; ++j) {
        if (j + 1 < tiles) {
            int kv0 = (j + 1) * W_BC, nb = (j + 1) & 1;
            w_load_tile<T>(sk + nb * W_BC * W_D * 2, kb + kv0 * stride, stride, W_BC, min(W_BC, nk - kv0));
            w_load_tile<T>(sv + nb * W_BC * W_D * 2, vb + kv0 * stride, stride, W_BC, min(W_BC, nk - kv0));
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        fence_proxy_async();
        __syncthreads();
        const u32 kt = sk + (j & 1) * W_BC * W_D * 2;
        const u32 vt = sv + (j & 1) * W_BC * W_D * 2;

        // S = Q Kᵀ: k-step ks covers d [16ks, 16ks+16): half ks/4, 32-byte column (ks % 4).
        float s[W_BC / 2];
        if (STAGGER && wg > 0) named_sync(wg, 256);  // after warpgroup wg-1 issued its S
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < W_D / 16; ++ks) {
            u32 col = (ks & 3) * 32;
            u64 da = sw128_desc(q_rows + (ks >> 2) * W_BR * 128 + col, 16, 1024);
            u64 db = sw128_desc(kt + (ks >> 2) * W_BC * 128 + col, 16, 1024);
            if constexpr (W_BC == 128) {
                wgmma_ss_m64n128<T>(s, da, db, ks > 0);
            } else {
                wgmma_ss_m64n64<T>(s, da, db, ks > 0);
            }
        }
        wgmma_commit();
        if (STAGGER && wg + 1 < W_WGS) named_arrive(wg + 1, 256);
        wgmma_wait0();

        // Online softmax; s[4j..4j+3] is the mma C fragment of keys 8j..8j+7 (rows g, g+8).
        const int kbase = j * W_BC;
        if (kbase + W_BC > nk) {
#pragma unroll
            for (int nb = 0; nb < W_BC / 8; ++nb) {
                int col = kbase + nb * 8 + 2 * (lane & 3);
                if (col >= nk) s[4 * nb] = s[4 * nb + 2] = NEG_INF;
                if (col + 1 >= nk) s[4 * nb + 1] = s[4 * nb + 3] = NEG_INF;
            }
        }
        float t0 = NEG_INF, t1 = NEG_INF;
#pragma unroll
        for (int nb = 0; nb < W_BC / 8; ++nb) {
            t0 = fmaxf(t0, fmaxf(s[4 * nb], s[4 * nb + 1]));
            t1 = fmaxf(t1, fmaxf(s[4 * nb + 2], s[4 * nb + 3]));
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
        for (int nb = 0; nb < W_BC / 8; ++nb) {
            s[4 * nb] = exp2f(s[4 * nb] * scale_log2 - n0);
            s[4 * nb + 1] = exp2f(s[4 * nb + 1] * scale_log2 - n0);
            s[4 * nb + 2] = exp2f(s[4 * nb + 2] * scale_log2 - n1);
            s[4 * nb + 3] = exp2f(s[4 * nb + 3] * scale_log2 - n1);
            r0 += s[4 * nb] + s[4 * nb + 1];
            r1 += s[4 * nb + 2] + s[4 * nb + 3];
        }
        l0 = l0 * a0 + r0;
        l1 = l1 * a1 + r1;
#pragma unroll
        for (int i = 0; i < 16; ++i) {
            o[4 * i] *= a0;
            o[4 * i + 1] *= a0;
            o[4 * i + 2] *= a1;
            o[4 * i + 3] *= a1;
        }
        // O += P V: k-step kk covers keys [16kk, 16kk+16) = rows 16kk.. of both V halves.
        u32 pa[W_BC / 16][4];
#pragma unroll
        for (int kk = 0; kk < W_BC / 16; ++kk) {
            pa[kk][0] = pack2<T>(s[8 * kk], s[8 * kk + 1]);
            pa[kk][1] = pack2<T>(s[8 * kk + 2], s[8 * kk + 3]);
            pa[kk][2] = pack2<T>(s[8 * kk + 4], s[8 * kk + 5]);
            pa[kk][3] = pack2<T>(s[8 * kk + 6], s[8 * kk + 7]);
        }
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < W_BC / 16; ++kk) {
            u64 db = sw128_desc(vt + kk * 16 * 128, W_BC * 128, 1024);
            wgmma_rs_m64n128_tb<T>(o, pa[kk], db, 1);
        }
        wgmma_commit();
        wgmma_wait0();
        __syncthreads();
    }

    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const float i0 = 1.0f / l0, i1 = 1.0f / l1;
    const int row0 = q0 + wg * 64 + warp * 16 + (lane >> 2), row1 = row0 + 8;
    T* ob = out + (i64)b * nq * stride + (i64)h * W_D + 2 * (lane & 3);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
        if (row0 < nq) *(u32*)(ob + row0 * stride + i * 8) = pack2<T>(o[4 * i] * i0, o[4 * i + 1] * i0);
        if (row1 < nq) *(u32*)(ob + row1 * stride + i * 8) = pack2<T>(o[4 * i + 2] * i1, o[4 * i + 3] * i1);
    }
}

#define FLASH_SM90_KERNEL(S, T, BC, STAG, SUFFIX)                                           \
    extern "C" __global__ void __launch_bounds__(W_THREADS, 1)                              \
        flash_attn_sm90_##S##_d128_bc##BC##SUFFIX(T* out, const T* q, const T* k,           \
                                                  const T* v, int nq, int nk, int heads,    \
                                                  float scale_log2) {                       \
        flash_attn_sm90<T, BC, STAG>(out, q, k, v, nq, nk, heads, scale_log2);              \
    }
FLASH_SM90_KERNEL(bf16, bf16, 128, true, )
FLASH_SM90_KERNEL(f16, f16, 128, true, )
FLASH_SM90_KERNEL(bf16, bf16, 64, true, )
FLASH_SM90_KERNEL(f16, f16, 64, true, )
FLASH_SM90_KERNEL(bf16, bf16, 128, false, _nostagger)
FLASH_SM90_KERNEL(f16, f16, 128, false, _nostagger)
