// The closest-point tree built on the device (`lbvh.rs`): a linear BVH after Karras 2012
// ("Maximizing parallelism in the construction of BVHs, octrees and k-d trees") over leaves of
// up to LEAF_SIZE Morton-sorted triangles, written in the node format `closest.cu` reads.
// Every kernel is one thread per item with no block-level cooperation (the centroid bounds
// only reduce within a warp), so `host_check/lbvh_driver.cpp` runs them as plain loops.
//
// Boxes are exact min/max of corner coordinates, so a query on this tree computes the same
// per-triangle arithmetic as on the CPU tree and finds the same distance; only the order in
// which equidistant faces are met (ties) depends on the shape.

#define LEAF_SIZE 4
#define RADIX_BITS 5
#define RADIX (1 << RADIX_BITS)
#define RADIX_CHUNK 64
#define INTERNAL 0x80000000u

// `closest.cu`'s Node (each NVRTC module declares its own).
struct BvhNode {
    float min[3];
    u32 index;  // leaf: first triangle; internal: left child
    float max[3];
    u32 count;  // leaf: triangle count (1..=LEAF_SIZE); internal: INTERNAL | right child
};

// `Bvh::new`'s centroid, `(a + b + c) · (1/3)` in that order, component by component.
__device__ __forceinline__ void centroid(const float* verts, const u32* faces, i64 f, float* c) {
    u32 a = faces[3 * f], b = faces[3 * f + 1], d = faces[3 * f + 2];
#pragma unroll
    for (int k = 0; k < 3; ++k)
        c[k] = fmul(fadd(fadd(verts[3 * a + k], verts[3 * b + k]), verts[3 * d + k]),
                       1.0f / 3.0f);
}

// Floats as u32 whose unsigned order is the floats' order, for atomicMin/atomicMax.
__device__ __forceinline__ u32 ordered(float f) {
    u32 u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float unordered(u32 k) {
    return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

// Centroid bounds into `bounds` (3 ordered mins, then 3 ordered maxes; initialised to
// 0xffffffff and 0): a grid-stride pass, then one atomic per warp and axis, so a few thousand
// atomics in all however many triangles.
extern "C" __global__ void lbvh_centroid_bounds(const float* __restrict__ verts,
                                                const u32* __restrict__ faces, i64 n,
                                                u32* __restrict__ bounds) {
    float lo[3], hi[3];
#pragma unroll
    for (int k = 0; k < 3; ++k) {
        lo[k] = __int_as_float(0x7f800000);
        hi[k] = __int_as_float(0xff800000);
    }
    i64 stride = (i64)gridDim.x * blockDim.x;
    for (i64 f = (i64)blockIdx.x * blockDim.x + threadIdx.x; f < n; f += stride) {
        float c[3];
        centroid(verts, faces, f, c);
#pragma unroll
        for (int k = 0; k < 3; ++k) {
            lo[k] = fminf(lo[k], c[k]);
            hi[k] = fmaxf(hi[k], c[k]);
        }
    }
#pragma unroll
    for (int k = 0; k < 3; ++k) {
        for (int o = 16; o > 0; o >>= 1) {
            lo[k] = fminf(lo[k], __shfl_down_sync(0xffffffffu, lo[k], o));
            hi[k] = fmaxf(hi[k], __shfl_down_sync(0xffffffffu, hi[k], o));
        }
    }
    if ((threadIdx.x & 31) == 0) {
#pragma unroll
        for (int k = 0; k < 3; ++k) {
            atomicMin(&bounds[k], ordered(lo[k]));
            atomicMax(&bounds[3 + k], ordered(hi[k]));
        }
    }
}

// `spatial::morton3`'s spread: the low 10 bits of x to every third bit.
__device__ __forceinline__ u32 spread10(u32 x) {
    x &= 0x3ffu;
    x = (x | (x << 16)) & 0x030000ffu;
    x = (x | (x << 8)) & 0x0300f00fu;
    x = (x | (x << 4)) & 0x030c30c3u;
    return (x | (x << 2)) & 0x09249249u;
}

// Morton code of each centroid over the centroid bounds, quantised as
// `bvh::sort_along_morton_curve` does (so the sorted order is the CPU's Morton order), and the
// identity permutation the sort carries along.
extern "C" __global__ void lbvh_morton(const float* __restrict__ verts,
                                       const u32* __restrict__ faces, i64 n,
                                       const u32* __restrict__ bounds, u32* __restrict__ codes,
                                       u32* __restrict__ ids) {
    i64 f = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (f >= n) return;
    float c[3];
    centroid(verts, faces, f, c);
    u32 q[3];
#pragma unroll
    for (int k = 0; k < 3; ++k) {
        float lo = unordered(bounds[k]), hi = unordered(bounds[3 + k]);
        float t = fdiv(fsub(c[k], lo), fmaxf(fsub(hi, lo), __int_as_float(0x00800000)));
        // fmaxf drops a NaN to 0 as Rust's `as u32` does after `clamp`.
        q[k] = __float2uint_rz(fmul(fminf(fmaxf(t, 0.0f), 1.0f), 1023.0f));
    }
    codes[f] = spread10(q[0]) | (spread10(q[1]) << 1) | (spread10(q[2]) << 2);
    ids[f] = (u32)f;
}

// ---- stable LSD radix sort of (code, id), RADIX_BITS per pass -------------------------------
// Each thread owns a contiguous chunk of RADIX_CHUNK items. Its per-digit counts go to
// hist[digit * chunks + chunk]; the exclusive scan of that digit-major table (prims.cu) is, per
// (digit, chunk), where the chunk's first item of that digit lands, so the scatter keeps the
// input order within each digit: stable, and deterministic whatever the scheduling.

extern "C" __global__ void lbvh_radix_count(const u32* __restrict__ keys, i64 n, u32 shift,
                                            i64 chunks, u32* __restrict__ hist) {
    i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= chunks) return;
    u32 count[RADIX];
#pragma unroll
    for (int d = 0; d < RADIX; ++d) count[d] = 0;
    i64 end = (t + 1) * RADIX_CHUNK < n ? (t + 1) * RADIX_CHUNK : n;
    for (i64 i = t * RADIX_CHUNK; i < end; ++i) count[(keys[i] >> shift) & (RADIX - 1)] += 1;
#pragma unroll
    for (int d = 0; d < RADIX; ++d) hist[d * chunks + t] = count[d];
}

extern "C" __global__ void lbvh_radix_scatter(const u32* __restrict__ keys,
                                              const u32* __restrict__ vals, i64 n, u32 shift,
                                              i64 chunks, const u32* __restrict__ hist,
                                              u32* __restrict__ keys_out,
                                              u32* __restrict__ vals_out) {
    i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= chunks) return;
    u32 at[RADIX];
#pragma unroll
    for (int d = 0; d < RADIX; ++d) at[d] = hist[d * chunks + t];
    i64 end = (t + 1) * RADIX_CHUNK < n ? (t + 1) * RADIX_CHUNK : n;
    for (i64 i = t * RADIX_CHUNK; i < end; ++i) {
        u32 k = keys[i];
        u32 dst = at[(k >> shift) & (RADIX - 1)]++;
        keys_out[dst] = k;
        vals_out[dst] = vals[i];
    }
}

// ---- the tree -------------------------------------------------------------------------------

// Triangle k of leaf order: tris[3k] = (a, face id bits), tris[3k+1] = (b, 0), tris[3k+2] = (c, 0).
extern "C" __global__ void lbvh_tris(const float* __restrict__ verts,
                                     const u32* __restrict__ faces, const u32* __restrict__ ids,
                                     i64 n, float4* __restrict__ tris) {
    i64 k = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= n) return;
    u32 f = ids[k];
#pragma unroll
    for (int c = 0; c < 3; ++c) {
        u32 v = faces[3 * (i64)f + c];
        tris[3 * k + c] = make_float4(verts[3 * (i64)v], verts[3 * (i64)v + 1],
                                      verts[3 * (i64)v + 2], c == 0 ? __uint_as_float(f) : 0.0f);
    }
}

// A leaf's sort key: its first triangle's code, made unique by the leaf index so that runs of
// equal codes still split (in halves, by index).
__device__ __forceinline__ u64 leaf_key(const u32* codes, i64 j) {
    return ((u64)codes[LEAF_SIZE * j] << 32) | (u64)j;
}

// Karras's δ: the common prefix length of leaf keys i and j, −1 outside [0, leaves).
__device__ __forceinline__ int delta(const u32* codes, i64 leaves, u64 ki, i64 j) {
    if (j < 0 || j >= leaves) return -1;
    return __clzll((long long)(ki ^ leaf_key(codes, j)));
}

// Node numbering: internal node i at i (the root, 0, covers every leaf), leaf j at leaves-1+j.
__device__ __forceinline__ u32 node_of(i64 split, bool leaf, i64 leaves) {
    return (u32)(leaf ? leaves - 1 + split : split);
}

// Internal node i (one of leaves-1): the range of leaves it covers and where that range splits
// (Karras §4), found from the sorted keys alone; links it to its children.
extern "C" __global__ void lbvh_internal(const u32* __restrict__ codes, i64 leaves,
                                         BvhNode* __restrict__ nodes, u32* __restrict__ parents) {
    i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= leaves - 1) return;
    u64 ki = leaf_key(codes, i);
    // The range extends towards the neighbour sharing the longer prefix.
    int d = delta(codes, leaves, ki, i + 1) > delta(codes, leaves, ki, i - 1) ? 1 : -1;
    int dmin = delta(codes, leaves, ki, i - d);
    i64 lmax = 2;
    while (delta(codes, leaves, ki, i + lmax * d) > dmin) lmax *= 2;
    i64 l = 0;
    for (i64 t = lmax / 2; t >= 1; t /= 2)
        if (delta(codes, leaves, ki, i + (l + t) * d) > dmin) l += t;
    i64 j = i + l * d;
    int dnode = delta(codes, leaves, ki, j);
    // The split: the last key sharing more than dnode bits with key i.
    i64 s = 0, t = l;
    do {
        t = (t + 1) >> 1;
        if (delta(codes, leaves, ki, i + (s + t) * d) > dnode) s += t;
    } while (t > 1);
    i64 gamma = i + s * d + (d < 0 ? -1 : 0);
    i64 first = i < j ? i : j, last = i < j ? j : i;
    u32 left = node_of(gamma, first == gamma, leaves);
    u32 right = node_of(gamma + 1, last == gamma + 1, leaves);
    nodes[i].index = left;
    nodes[i].count = INTERNAL | right;
    parents[left] = (u32)i;
    parents[right] = (u32)i;
}

// Leaf j's box from its triangles, then up the tree: at each parent the first of its two
// children to arrive stops, the second (whose sibling's box is then complete) writes the union.
extern "C" __global__ void lbvh_boxes(const float4* __restrict__ tris, i64 n, i64 leaves,
                                      BvhNode* nodes, const u32* __restrict__ parents,
                                      u32* __restrict__ visits) {
    i64 j = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= leaves) return;
    i64 first = LEAF_SIZE * j;
    i64 end = first + LEAF_SIZE < n ? first + LEAF_SIZE : n;
    float lo[3], hi[3];
#pragma unroll
    for (int k = 0; k < 3; ++k) {
        lo[k] = __int_as_float(0x7f800000);
        hi[k] = __int_as_float(0xff800000);
    }
    for (i64 t = 3 * first; t < 3 * end; ++t) {
        float4 v = tris[t];
        float p[3] = {v.x, v.y, v.z};
#pragma unroll
        for (int k = 0; k < 3; ++k) {
            lo[k] = fminf(lo[k], p[k]);
            hi[k] = fmaxf(hi[k], p[k]);
        }
    }
    u32 node = node_of(j, true, leaves);
    nodes[node].index = (u32)first;
    nodes[node].count = (u32)(end - first);
    while (true) {
#pragma unroll
        for (int k = 0; k < 3; ++k) {
            nodes[node].min[k] = lo[k];
            nodes[node].max[k] = hi[k];
        }
        if (node == 0) return;
        // Publish this box before the parent's counter says it is there.
        __threadfence();
        u32 parent = parents[node];
        if (atomicAdd(&visits[parent], 1u) == 0) return;
        __threadfence();
        u32 left = nodes[parent].index, right = nodes[parent].count & ~INTERNAL;
        // The sibling's box was written by another thread: volatile reads skip the
        // (incoherent) L1.
        const volatile BvhNode* sib = &nodes[node == left ? right : left];
#pragma unroll
        for (int k = 0; k < 3; ++k) {
            lo[k] = fminf(lo[k], sib->min[k]);
            hi[k] = fmaxf(hi[k], sib->max[k]);
        }
        node = parent;
    }
}
