// Small building blocks shared by the mesh stage's GPU steps (`prims.rs`): fills, copies, a
// single-value read-back and an in-place exclusive scan of u32 (the compactions' offsets).

extern "C" __global__ void prims_fill_u32(u32* p, i64 n, u32 value) {
    i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) p[i] = value;
}

extern "C" __global__ void prims_fill_u64(u64* p, i64 n, u64 value) {
    i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) p[i] = value;
}

extern "C" __global__ void prims_copy_u32(const u32* src, i64 n, u32* dst) {
    i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = src[i];
}

// Copies `src[at]` to `dst[slot]` (a total read back with one small download).
extern "C" __global__ void prims_take(const u32* src, i64 at, u32* dst, i64 slot) {
    if (blockIdx.x == 0 && threadIdx.x == 0) dst[slot] = src[at];
}

// ---- exclusive scan (u32, in place) --------------------------------------------------------
// Three launches: per-tile sums; one block scans the tile sums; each tile scans itself and
// adds its tile's offset. 256 threads × 8 items per tile.

#define SCAN_THREADS 256
#define SCAN_ITEMS 8
#define SCAN_TILE (SCAN_THREADS * SCAN_ITEMS)

// Exclusive scan of one value per thread over the block; returns the block total in *total.
__device__ u32 block_exclusive_scan(u32 x, u32* total) {
    __shared__ u32 warp_sums[SCAN_THREADS / 32];
    u32 lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    u32 inc = x;
    for (int d = 1; d < 32; d <<= 1) {
        u32 y = __shfl_up_sync(0xffffffffu, inc, d);
        if (lane >= (u32)d) inc += y;
    }
    if (lane == 31) warp_sums[warp] = inc;
    __syncthreads();
    if (warp == 0) {
        u32 w = lane < SCAN_THREADS / 32 ? warp_sums[lane] : 0;
        u32 winc = w;
        for (int d = 1; d < 32; d <<= 1) {
            u32 y = __shfl_up_sync(0xffffffffu, winc, d);
            if (lane >= (u32)d) winc += y;
        }
        if (lane < SCAN_THREADS / 32) warp_sums[lane] = winc - w;
        if (lane == 31) *total = winc;
    }
    __syncthreads();
    u32 r = warp_sums[warp] + inc - x;
    __syncthreads();
    return r;
}

extern "C" __global__ void prims_scan_tile_sums(const u32* data, i64 n, u32* tile_sums) {
    __shared__ u32 total;
    i64 base = (i64)blockIdx.x * SCAN_TILE + (i64)threadIdx.x * SCAN_ITEMS;
    u32 s = 0;
    for (int k = 0; k < SCAN_ITEMS; k++)
        if (base + k < n) s += data[base + k];
    block_exclusive_scan(s, &total);
    if (threadIdx.x == 0) tile_sums[blockIdx.x] = total;
}

extern "C" __global__ void prims_scan_tile_offsets(u32* tile_sums, i64 tiles) {
    __shared__ u32 total;
    u32 carry = 0;
    for (i64 start = 0; start < tiles; start += SCAN_THREADS) {
        i64 i = start + threadIdx.x;
        u32 x = i < tiles ? tile_sums[i] : 0;
        u32 ex = block_exclusive_scan(x, &total);
        if (i < tiles) tile_sums[i] = carry + ex;
        carry += total;
        __syncthreads();
    }
}

extern "C" __global__ void prims_scan_apply(u32* data, i64 n, const u32* tile_offsets) {
    __shared__ u32 total;
    i64 base = (i64)blockIdx.x * SCAN_TILE + (i64)threadIdx.x * SCAN_ITEMS;
    u32 items[SCAN_ITEMS];
    u32 s = 0;
    for (int k = 0; k < SCAN_ITEMS; k++) {
        items[k] = base + k < n ? data[base + k] : 0;
        s += items[k];
    }
    u32 run = tile_offsets[blockIdx.x] + block_exclusive_scan(s, &total);
    for (int k = 0; k < SCAN_ITEMS; k++) {
        if (base + k < n) data[base + k] = run;
        run += items[k];
    }
}
