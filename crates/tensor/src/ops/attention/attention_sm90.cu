// attention_sm90.cu — the Hopper (sm_90a) flash-attention kernels. Layout as in attention.cu:
// q, k, v, out [B, N, H, 128] (f16/bf16); f32 softmax and accumulation with exp2 (scale·log2e
// folded in); P rounded to the input dtype for P·V, as FlashAttention. Every shared-memory tile
// is stored as two column halves (d 0–63, 64–127) of 128-byte rows in the canonical
// 128-byte-swizzle layout (16-byte chunk c of row r at c ^ (r & 7), 1024-byte-aligned tiles),
// which is what wgmma's descriptors read and what TMA's SWIZZLE_128B writes.
//
// flash_attn_fa3_<dtype>_d128_bc{176,128}[_nopp] — the default on sm_90 (bc176): FlashAttention-3's
//   structure. Grid (ceil(Nq/128), H, B); block = 3 warpgroups (384 threads). Warpgroup 0 is the
//   producer: it gives registers back (setmaxnreg.dec 24) and one thread issues TMA bulk tensor
//   copies (cp.async.bulk.tensor; tensor maps passed as __grid_constant__) of the Q tile and of
//   BC-key K and V tiles into 2-stage shared-memory rings. Each ring slot has a "full" mbarrier
//   (completed by the copy engine with the tile's byte count) and an "empty" one (each consumer
//   warp arrives when done reading it). Warpgroups 1 and 2 are consumers (setmaxnreg.inc 240),
//   64 query rows each. Per key tile j a consumer issues S_j = Q·K_jᵀ and O += P_{j-1}·V_{j-1}
//   back to back (P stays in registers as the A operand), then runs the softmax of S_j. The two
//   consumers take turns issuing their GEMMs (named barriers 1 and 2: ping-pong), so one's
//   softmax overlaps the other's GEMMs. 176-key tiles (FlashAttention-3's choice for d = 128)
//   amortise the per-tile costs (O rescale, barriers, waits) over more keys and measured 2–10 %
//   faster than 128 on every DiT shape, 4,096 tokens included despite its padded last tile.
//   `_nopp`: no ping-pong (A/B). ptxas places the wait for P_{j-1}·V_{j-1} before the softmax
//   (a single P buffer must not be overwritten while P·V reads it); double-buffering P to
//   overlap them spilled and serialised the wgmmas (C7512), see sm90-notes.md beside this file.
//
// flash_attn_sm90_<dtype>_d128_bc{128,64}[_nostagger] — the previous default, kept for A/B
//   runs (TRELLIS2_FLASH=sm90-v1 and friends). Grid (ceil(Nq/192), H, B); 3 warpgroups of 64
//   query rows, all of them loading K/V tiles with cp.async (double-buffered, one tile ahead)
//   and computing: S = Q·Kᵀ as 8 wgmma m64nBCk16 from shared memory, online softmax in
//   registers, O += P·V as BC/16 wgmma m64n128k16 with P from registers and V read MN-major.
//   Warpgroups issue their Q·Kᵀ in turn (named barriers 1, 2), a cheap form of ping-pong.
//
// The wgmma accumulator of m64nN is, per warp, mma.sync's C fragment: s[4i..4i+3] holds
// columns 8i + 2(lane & 3) + {0, 1} of rows warp·16 + lane/4 and that + 8.

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


template <typename T> __device__ __forceinline__ void wgmma_ss_m64n176(float* d, u64 da, u64 db, int accumulate);
template <> __device__ __forceinline__ void wgmma_ss_m64n176<bf16>(float* d, u64 da, u64 db, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %90, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n176k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87}, %88, %89, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87])
        : "l"(da), "l"(db), "r"(accumulate));
}

template <> __device__ __forceinline__ void wgmma_ss_m64n176<f16>(float* d, u64 da, u64 db, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %90, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n176k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87}, %88, %89, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87])
        : "l"(da), "l"(db), "r"(accumulate));
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

// ============================================================================================
// flash_attn_fa3: producer warpgroup with TMA + mbarrier rings, two consumer warpgroups.
// ============================================================================================

#define F_BR 128                          // query rows per block (2 consumer warpgroups × 64)
#define F_THREADS 384                     // producer warpgroup + 2 consumer warpgroups
#define F_Q_BYTES (F_BR * W_D * 2)        // the Q tile: 32 KiB
// K/V tiles hold BC = 128 or 176 keys (BC·256 bytes, a whole number of 1024-byte swizzle atoms).
#define F_CONSUMER_WARPS 8

// A CUtensorMap (opaque, 128 bytes; CUDA 13 aligns it to 128).
struct alignas(128) TmaDesc {
    u64 v[16];
};

__device__ __forceinline__ void mbar_init(u32 bar, u32 count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}
// Makes the initialised barriers visible to the async proxy (the copy engine).
__device__ __forceinline__ void fence_mbar_init() {
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}
__device__ __forceinline__ void mbar_expect_tx(u32 bar, u32 bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes)
                 : "memory");
}
__device__ __forceinline__ void mbar_arrive(u32 bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory");
}
// Waits until the barrier's phase of parity `parity` has completed.
__device__ __forceinline__ void mbar_wait(u32 bar, u32 parity) {
    u32 done;
    do {
        asm volatile(
            "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
            "selp.u32 %0, 1, 0, p;\n}\n"
            : "=r"(done)
            : "r"(bar), "r"(parity)
            : "memory");
    } while (!done);
}
// One TMA box of the 4-D tensor map (d, head, token, batch) into shared memory; completes
// `bar`'s transaction count with the box's bytes (out-of-range rows arrive as zeros).
__device__ __forceinline__ void tma_load(u32 dst, const TmaDesc* map, u32 bar, int c0, int c1,
                                         int c2, int c3) {
    asm volatile(
        "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
        " [%0], [%1, {%2, %3, %4, %5}], [%6];" ::"r"(dst),
        "l"((u64)map), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar)
        : "memory");
}
__device__ __forceinline__ void tma_prefetch_desc(const TmaDesc* map) {
    asm volatile("prefetch.tensormap [%0];" ::"l"((u64)map) : "memory");
}
template <int N> __device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory");
}
template <int N> __device__ __forceinline__ void setmaxnreg_inc() {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(N));
}
template <int N> __device__ __forceinline__ void setmaxnreg_dec() {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(N));
}

// Producer: key tile `j` of `map` into ring slot j % STAGES once the consumers freed it.
template <int BC, int STAGES>
__device__ __forceinline__ void f_load_kv(const TmaDesc* map, u32 ring, u32 full, u32 empty,
                                          int j, int h, int b) {
    constexpr u32 TILE = BC * W_D * 2;
    const int s = j % STAGES, n = j / STAGES;
    mbar_wait(empty + 8 * s, (n & 1) ^ 1);  // round 0 passes at once
    mbar_expect_tx(full + 8 * s, TILE);
    const u32 dst = ring + s * TILE;
    tma_load(dst, map, full + 8 * s, 0, h, j * BC, b);
    tma_load(dst + TILE / 2, map, full + 8 * s, 64, h, j * BC, b);
}

// S[64 x BC] = Q·Kᵀ: k-step ks covers d [16ks, 16ks+16) = half ks/4, 32-byte column ks % 4.
template <typename T, int BC>
__device__ __forceinline__ void f_issue_qk(float* s, u32 q_rows, u32 kt) {
#pragma unroll
    for (int ks = 0; ks < W_D / 16; ++ks) {
        const u32 col = (ks & 3) * 32;
        const u64 da = sw128_desc(q_rows + (ks >> 2) * (F_Q_BYTES / 2) + col, 16, 1024);
        const u64 db = sw128_desc(kt + (ks >> 2) * (BC * 128) + col, 16, 1024);
        if constexpr (BC == 176) {
            wgmma_ss_m64n176<T>(s, da, db, ks > 0);
        } else {
            wgmma_ss_m64n128<T>(s, da, db, ks > 0);
        }
    }
}

// O[64 x 128] += P·V: k-step kk covers keys [16kk, 16kk+16) = rows 16kk.. of both V halves.
template <typename T, int BC>
__device__ __forceinline__ void f_issue_pv(float* o, const u32 (*pa)[4], u32 vt) {
#pragma unroll
    for (int kk = 0; kk < BC / 16; ++kk) {
        const u64 db = sw128_desc(vt + kk * 16 * 128, BC * 128, 1024);
        wgmma_rs_m64n128_tb<T>(o, pa[kk], db, 1);
    }
}

// 2^x in one MUFU.EX2 (exp2f adds a range fix-up of 3 instructions for results below 2^-126,
// which as softmax weights are 0 for every purpose: P is rounded to bf16/f16 next).
__device__ __forceinline__ float ex2_ftz(float x) {
    float r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
    return r;
}

// Online-softmax step on the scores of the key tile at `kbase` (masked past nk): updates the
// running maxima m0/m1 (already scaled by scale·log2e), leaves P = exp2(s·scale − m) in s, and
// returns the factors a0/a1 that rescale the old O and row sums, and P's row sums r0/r1.
template <int BC>
__device__ __forceinline__ void f_softmax(float* s, int kbase, int nk, int lane, float scale_log2,
                                          float& m0, float& m1, float& a0, float& a1, float& r0,
                                          float& r1) {
    const float NEG_INF = -__int_as_float(0x7f800000);
    if (kbase + BC > nk) {
#pragma unroll
        for (int nb = 0; nb < BC / 8; ++nb) {
            const int col = kbase + nb * 8 + 2 * (lane & 3);
            if (col >= nk) s[4 * nb] = s[4 * nb + 2] = NEG_INF;
            if (col + 1 >= nk) s[4 * nb + 1] = s[4 * nb + 3] = NEG_INF;
        }
    }
    float t0 = NEG_INF, t1 = NEG_INF;
#pragma unroll
    for (int nb = 0; nb < BC / 8; ++nb) {
        t0 = fmaxf(t0, fmaxf(s[4 * nb], s[4 * nb + 1]));
        t1 = fmaxf(t1, fmaxf(s[4 * nb + 2], s[4 * nb + 3]));
    }
    t0 = fmaxf(t0, __shfl_xor_sync(0xffffffffu, t0, 1));
    t0 = fmaxf(t0, __shfl_xor_sync(0xffffffffu, t0, 2));
    t1 = fmaxf(t1, __shfl_xor_sync(0xffffffffu, t1, 1));
    t1 = fmaxf(t1, __shfl_xor_sync(0xffffffffu, t1, 2));
    // Every tile holds at least one valid key, so the new maxima are finite.
    const float n0 = fmaxf(m0, t0 * scale_log2), n1 = fmaxf(m1, t1 * scale_log2);
    a0 = ex2_ftz(m0 - n0);
    a1 = ex2_ftz(m1 - n1);
    m0 = n0;
    m1 = n1;
    r0 = 0.0f;
    r1 = 0.0f;
#pragma unroll
    for (int nb = 0; nb < BC / 8; ++nb) {
        s[4 * nb] = ex2_ftz(fmaf(s[4 * nb], scale_log2, -n0));
        s[4 * nb + 1] = ex2_ftz(fmaf(s[4 * nb + 1], scale_log2, -n0));
        s[4 * nb + 2] = ex2_ftz(fmaf(s[4 * nb + 2], scale_log2, -n1));
        s[4 * nb + 3] = ex2_ftz(fmaf(s[4 * nb + 3], scale_log2, -n1));
        r0 += s[4 * nb] + s[4 * nb + 1];
        r1 += s[4 * nb + 2] + s[4 * nb + 3];
    }
}

// P (f32, in s) → the A fragments of the P·V wgmma, rounded to T.
template <typename T, int BC>
__device__ __forceinline__ void f_pack_p(u32 (*pa)[4], const float* s) {
#pragma unroll
    for (int kk = 0; kk < BC / 16; ++kk) {
        pa[kk][0] = pack2<T>(s[8 * kk], s[8 * kk + 1]);
        pa[kk][1] = pack2<T>(s[8 * kk + 2], s[8 * kk + 3]);
        pa[kk][2] = pack2<T>(s[8 * kk + 4], s[8 * kk + 5]);
        pa[kk][3] = pack2<T>(s[8 * kk + 6], s[8 * kk + 7]);
    }
}

// Register fence: the compiler may not move computation on these registers across it (asm
// volatile statements keep their order). wgmma reads and writes registers asynchronously, which
// the compiler does not know: fences after a wgmma wait keep reads of the results below it,
// and fences before a wait keep the softmax above it (else it sinks below the wait and no
// longer overlaps P·V).
template <int N> __device__ __forceinline__ void reg_fence(float* r) {
#pragma unroll
    for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}

// O's rows scaled by the factors of the last softmax step (mma C-fragment layout).
__device__ __forceinline__ void f_rescale_o(float* o, float a0, float a1) {
#pragma unroll
    for (int i = 0; i < 16; ++i) {
        o[4 * i] *= a0;
        o[4 * i + 1] *= a0;
        o[4 * i + 2] *= a1;
        o[4 * i + 3] *= a1;
    }
}

// One consumer warp is done reading a ring slot (all its lanes passed their wgmma wait).
__device__ __forceinline__ void f_release(u32 bar, int lane) {
    __syncwarp();
    if (lane == 0) mbar_arrive(bar);
}

template <typename T, int BC, int STAGES, bool PINGPONG>
__device__ __forceinline__ void flash_attn_fa3(T* __restrict__ out, const TmaDesc* tq,
                                               const TmaDesc* tk, const TmaDesc* tv, int nq,
                                               int nk, int heads, float scale_log2) {
    extern __shared__ __attribute__((aligned(16))) unsigned char smem_raw[];
    const u32 base = (smem_u32(smem_raw) + 1023) & ~1023u;
    const u32 sq = base;                              // Q: 128 rows (two 16 KiB halves)
    constexpr u32 TILE = BC * W_D * 2;                // one K or V tile
    const u32 sk = sq + F_Q_BYTES;                    // K ring: STAGES tiles
    const u32 sv = sk + STAGES * TILE;                // V ring: STAGES tiles
    const u32 bar_q = sv + STAGES * TILE;             // mbarriers, 8 bytes each
    const u32 k_full = bar_q + 8, v_full = k_full + 8 * STAGES;
    const u32 k_empty = v_full + 8 * STAGES, v_empty = k_empty + 8 * STAGES;
    const int tid = threadIdx.x, wg = tid / 128, lane = tid % 32;
    const int h = blockIdx.y, b = blockIdx.z, q0 = blockIdx.x * F_BR;
    const int tiles = (nk + BC - 1) / BC;

    if (tid == 0) {
        mbar_init(bar_q, 1);
#pragma unroll
        for (int s = 0; s < STAGES; ++s) {
            mbar_init(k_full + 8 * s, 1);
            mbar_init(v_full + 8 * s, 1);
            mbar_init(k_empty + 8 * s, F_CONSUMER_WARPS);
            mbar_init(v_empty + 8 * s, F_CONSUMER_WARPS);
        }
        fence_mbar_init();
    }
    __syncthreads();  // the last block-wide barrier: producer threads exit early

    if (wg == 0) {
        setmaxnreg_dec<24>();
        if (tid == 0) {
            tma_prefetch_desc(tq);
            tma_prefetch_desc(tk);
            tma_prefetch_desc(tv);
            mbar_expect_tx(bar_q, F_Q_BYTES);
            tma_load(sq, tq, bar_q, 0, h, q0, b);
            tma_load(sq + F_Q_BYTES / 2, tq, bar_q, 64, h, q0, b);
            // The consumers use K_0, then (K_{j+1}, V_j) per step: load in that order.
            f_load_kv<BC, STAGES>(tk, sk, k_full, k_empty, 0, h, b);
            for (int j = 0; j < tiles; ++j) {
                if (j + 1 < tiles) f_load_kv<BC, STAGES>(tk, sk, k_full, k_empty, j + 1, h, b);
                f_load_kv<BC, STAGES>(tv, sv, v_full, v_empty, j, h, b);
            }
        }
        return;
    }
    setmaxnreg_inc<240>();

    const int cw = wg - 1;  // consumer 0 or 1: query rows cw·64 .. +64 of the block
    const int warp = (tid % 128) / 32;
    const u32 q_rows = sq + cw * 64 * 128;
    // Ping-pong: consumer c issues its GEMMs after named barrier 1 + c, then lets the other go.
    auto turn_wait = [&]() {
        if (PINGPONG) named_sync(1 + cw, 256);
    };
    auto turn_pass = [&]() {
        if (PINGPONG) named_arrive(2 - cw, 256);
    };
    if (cw == 1) turn_pass();  // consumer 0 goes first

    float o[64];
#pragma unroll
    for (int i = 0; i < 64; ++i) o[i] = 0.0f;
    float s[BC / 2];
    u32 pa[BC / 16][4];
    const float NEG_INF = -__int_as_float(0x7f800000);
    float m0 = NEG_INF, m1 = NEG_INF, l0 = 0.0f, l1 = 0.0f;
    float a0, a1;

    mbar_wait(bar_q, 0);
    // Key tile 0: S only.
    mbar_wait(k_full, 0);
    turn_wait();
    wgmma_fence();
    f_issue_qk<T, BC>(s, q_rows, sk);
    wgmma_commit();
    turn_pass();
    wgmma_wait<0>();
    reg_fence<BC / 2>(s);
    f_release(k_empty, lane);
    f_softmax<BC>(s, 0, nk, lane, scale_log2, m0, m1, a0, a1, l0, l1);
    f_pack_p<T, BC>(pa, s);

    for (int j = 1; j < tiles; ++j) {
        const int ks = j % STAGES, vs = (j - 1) % STAGES;
        // Both waits before the first wgmma: a spin loop between the two GEMMs would make
        // ptxas insert a warpgroup fence there (C7519). V_{j-1} is copied right after K_j.
        mbar_wait(k_full + 8 * ks, (j / STAGES) & 1);
        mbar_wait(v_full + 8 * vs, ((j - 1) / STAGES) & 1);
        turn_wait();
        wgmma_fence();
        f_issue_qk<T, BC>(s, q_rows, sk + ks * TILE);
        wgmma_commit();
        // Rescale O by the last softmax step while Q·Kᵀ runs, then accumulate P·V into it.
        f_rescale_o(o, a0, a1);
        wgmma_fence();
        f_issue_pv<T, BC>(o, pa, sv + vs * TILE);
        wgmma_commit();
        turn_pass();
        wgmma_wait<1>();  // S_j is ready; P_{j-1}·V_{j-1} may still run
        reg_fence<BC / 2>(s);
        f_release(k_empty + 8 * ks, lane);
        float r0, r1;
        f_softmax<BC>(s, j * BC, nk, lane, scale_log2, m0, m1, a0, a1, r0, r1);
        l0 = fmaf(l0, a0, r0);
        l1 = fmaf(l1, a1, r1);
        reg_fence<BC / 2>(s);
        wgmma_wait<0>();  // O and P's registers are free again
        reg_fence<64>(o);
        f_release(v_empty + 8 * vs, lane);
        f_pack_p<T, BC>(pa, s);
    }
    f_rescale_o(o, a0, a1);
    // Last P·V. Consumer 1 issues last overall, so it passes no turn (none would be taken).
    const int vs = (tiles - 1) % STAGES;
    mbar_wait(v_full + 8 * vs, ((tiles - 1) / STAGES) & 1);
    turn_wait();
    reg_fence<64>(o);
    wgmma_fence();
    f_issue_pv<T, BC>(o, pa, sv + vs * TILE);
    wgmma_commit();
    if (cw == 0) turn_pass();
    wgmma_wait<0>();
    reg_fence<64>(o);

    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const float i0 = 1.0f / l0, i1 = 1.0f / l1;
    const i64 stride = (i64)heads * W_D;
    const int row0 = q0 + cw * 64 + warp * 16 + (lane >> 2), row1 = row0 + 8;
    T* ob = out + (i64)b * nq * stride + (i64)h * W_D + 2 * (lane & 3);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
        if (row0 < nq) *(u32*)(ob + row0 * stride + i * 8) = pack2<T>(o[4 * i] * i0, o[4 * i + 1] * i0);
        if (row1 < nq) *(u32*)(ob + row1 * stride + i * 8) = pack2<T>(o[4 * i + 2] * i1, o[4 * i + 3] * i1);
    }
}

#define FLASH_FA3_KERNEL(S, T, BC, STAGES, PP, SUFFIX)                                       \
    extern "C" __global__ void __launch_bounds__(F_THREADS, 1) flash_attn_fa3_##S##_d128##SUFFIX( \
        T* out, const __grid_constant__ TmaDesc tq, const __grid_constant__ TmaDesc tk,       \
        const __grid_constant__ TmaDesc tv, int nq, int nk, int heads, float scale_log2) {    \
        flash_attn_fa3<T, BC, STAGES, PP>(out, &tq, &tk, &tv, nq, nk, heads, scale_log2);     \
    }
FLASH_FA3_KERNEL(bf16, bf16, 176, 2, true, _bc176)
FLASH_FA3_KERNEL(f16, f16, 176, 2, true, _bc176)
FLASH_FA3_KERNEL(bf16, bf16, 128, 2, true, _bc128)
FLASH_FA3_KERNEL(f16, f16, 128, 2, true, _bc128)
FLASH_FA3_KERNEL(bf16, bf16, 176, 2, false, _bc176_nopp)
FLASH_FA3_KERNEL(f16, f16, 176, 2, false, _bc176_nopp)
