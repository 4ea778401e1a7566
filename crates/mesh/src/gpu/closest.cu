// Closest-point queries on a BVH in device memory (the CPU `Bvh` flattened, or built on the
// device by `lbvh.cu`), and the steps of the remesh and the bake built on them. One thread per
// query; the traversal is `Bvh::closest_within` line for line (same stack order, same pruning
// tests), and every float operation is the CPU twin's in the same order, through exact.cuh's
// helpers (prepended to this module): the results are then the CPU's bit for bit, up to ties
// the traversal breaks the same way (on a tree of another shape, ties may resolve to another
// equidistant face; the distance is the same).

// Children are explicit (not "left child next"), so the CPU tree's depth-first order and the
// device build's Karras order read alike. The root is node 0.
struct Node {
    float min[3];
    u32 index;  // leaf: first triangle; internal: left child
    float max[3];
    u32 count;  // leaf: triangle count (> 0); internal: NODE_INTERNAL | right child
};
#define NODE_INTERNAL 0x80000000u

// Triangle k of leaf order: tris[3k] = (a, face id bits), tris[3k+1] = (b, 0), tris[3k+2] = (c, 0).

#define STACK_DEPTH 64

__device__ __forceinline__ float box_dist2(const Node& n, V3 p) {
    float pa[3] = {p.x, p.y, p.z};
    float d2 = 0.0f;
#pragma unroll
    for (int a = 0; a < 3; ++a) {
        float d = fmaxf(fmaxf(fsub(n.min[a], pa[a]), 0.0f), fsub(pa[a], n.max[a]));
        d2 = fadd(d2, fmul(d, d));
    }
    return d2;
}

// `bvh::closest_on_triangle`: Ericson's Voronoi-region walk; returns the point, writes uvw.
__device__ V3 closest_on_triangle(V3 p, V3 a, V3 b, V3 c, V3* uvw) {
    V3 ab = vsub(b, a), ac = vsub(c, a), ap = vsub(p, a);
    float d1 = vdot(ab, ap), d2 = vdot(ac, ap);
    if (d1 <= 0.0f && d2 <= 0.0f) { *uvw = v3(1.0f, 0.0f, 0.0f); return a; }
    V3 bp = vsub(p, b);
    float d3 = vdot(ab, bp), d4 = vdot(ac, bp);
    if (d3 >= 0.0f && d4 <= d3) { *uvw = v3(0.0f, 1.0f, 0.0f); return b; }
    float vc = fsub(fmul(d1, d4), fmul(d3, d2));
    if (vc <= 0.0f && d1 >= 0.0f && d3 <= 0.0f) {
        float v = fdiv(d1, fsub(d1, d3));
        *uvw = v3(fsub(1.0f, v), v, 0.0f);
        return vadd(a, vscale(ab, v));
    }
    V3 cp = vsub(p, c);
    float d5 = vdot(ab, cp), d6 = vdot(ac, cp);
    if (d6 >= 0.0f && d5 <= d6) { *uvw = v3(0.0f, 0.0f, 1.0f); return c; }
    float vb = fsub(fmul(d5, d2), fmul(d1, d6));
    if (vb <= 0.0f && d2 >= 0.0f && d6 <= 0.0f) {
        float w = fdiv(d2, fsub(d2, d6));
        *uvw = v3(fsub(1.0f, w), 0.0f, w);
        return vadd(a, vscale(ac, w));
    }
    float va = fsub(fmul(d3, d6), fmul(d5, d4));
    if (va <= 0.0f && fsub(d4, d3) >= 0.0f && fsub(d5, d6) >= 0.0f) {
        float w = fdiv(fsub(d4, d3), fadd(fsub(d4, d3), fsub(d5, d6)));
        *uvw = v3(0.0f, fsub(1.0f, w), w);
        return vadd(b, vscale(vsub(c, b), w));
    }
    float denom = fadd(fadd(va, vb), vc);
    if (!(fabsf(denom) > 0.0f) || isinf(denom)) {
        // Degenerate triangle: the nearest corner, first one on ties (Rust's min_by keeps the
        // first of equal keys).
        V3 q[3] = {a, b, c};
        int best = 0;
        float bd = vdot(vsub(a, p), vsub(a, p));
        for (int i = 1; i < 3; ++i) {
            float d = vdot(vsub(q[i], p), vsub(q[i], p));
            if (d < bd) { bd = d; best = i; }
        }
        *uvw = v3(best == 0 ? 1.0f : 0.0f, best == 1 ? 1.0f : 0.0f, best == 2 ? 1.0f : 0.0f);
        return q[best];
    }
    float v = fdiv(vb, denom), w = fdiv(vc, denom);
    *uvw = v3(fsub(fsub(1.0f, v), w), v, w);
    return vadd(a, vadd(vscale(ab, v), vscale(ac, w)));
}

struct Hit {
    V3 point;
    V3 uvw;
    float d2;
    u32 face;  // 0xffffffff: nothing strictly within the radius
};

// `Bvh::closest_within`: nearest point with squared distance < radius².
__device__ Hit closest_within(const Node* __restrict__ nodes, const float4* __restrict__ tris,
                              V3 p, float radius) {
    Hit best;
    best.d2 = fmul(radius, radius);
    best.face = 0xffffffffu;
    best.point = p;
    best.uvw = v3(0.0f, 0.0f, 0.0f);
    u32 stack[STACK_DEPTH];
    int top = 1;
    stack[0] = 0;
    while (top > 0) {
        u32 ni = stack[--top];
        Node node = nodes[ni];
        if (box_dist2(node, p) >= best.d2) continue;
        if (!(node.count & NODE_INTERNAL)) {
            for (u32 k = node.index; k < node.index + node.count; ++k) {
                float4 ta = tris[3 * k], tb = tris[3 * k + 1], tc = tris[3 * k + 2];
                V3 uvw;
                V3 q = closest_on_triangle(p, v3(ta.x, ta.y, ta.z), v3(tb.x, tb.y, tb.z),
                                           v3(tc.x, tc.y, tc.z), &uvw);
                V3 d = vsub(q, p);
                float d2 = vdot(d, d);
                if (d2 < best.d2) {
                    best.d2 = d2;
                    best.face = __float_as_uint(ta.w);
                    best.point = q;
                    best.uvw = uvw;
                }
            }
        } else {
            u32 l = node.index, r = node.count & ~NODE_INTERNAL;
            float dl = box_dist2(nodes[l], p), dr = box_dist2(nodes[r], p);
            u32 near_ = l, far_ = r;
            float dfar = dr;
            if (!(dl <= dr)) { near_ = r; far_ = l; dfar = dl; }
            if (dfar < best.d2 && top < STACK_DEPTH) stack[top++] = far_;
            if (top < STACK_DEPTH) stack[top++] = near_;
        }
    }
    return best;
}

// World position of grid point g on a res³ grid: `(g / res − 0.5) · scale + center`.
__device__ __forceinline__ float to_world(float g, float res, float scale, float center) {
    return fadd(fmul(fsub(fdiv(g, res), 0.5f), scale), center);
}

// Plain queries (tests, tools): out_pd = (point, distance), out_uf = (uvw, face bits);
// face 0xffffffff when nothing lies strictly within `radius`.
extern "C" __global__ void mesh_closest_within(const Node* __restrict__ nodes,
                                               const float4* __restrict__ tris,
                                               const float* __restrict__ queries, long long n,
                                               float radius, float4* __restrict__ out_pd,
                                               float4* __restrict__ out_uf) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    V3 p = v3(queries[3 * i], queries[3 * i + 1], queries[3 * i + 2]);
    Hit h = closest_within(nodes, tris, p, radius);
    float dist = h.face == 0xffffffffu ? __int_as_float(0x7f800000) : sqrtf(h.d2);
    out_pd[i] = make_float4(h.point.x, h.point.y, h.point.z, dist);
    out_uf[i] = make_float4(h.uvw.x, h.uvw.y, h.uvw.z, __uint_as_float(h.face));
}

// Remesh band test of one level: keep voxel c when |UDF(centre) − eps| < tol, the UDF searched
// within `reach` (= eps + tol), as `remesh.rs` step 1.
__device__ __forceinline__ bool in_band(const Node* __restrict__ nodes, const float4* __restrict__ tris,
                                        const int* c, float res, float scale, float cx, float cy,
                                        float cz, float reach, float eps, float tol) {
    V3 p = v3(to_world(fadd((float)c[0], 0.5f), res, scale, cx),
              to_world(fadd((float)c[1], 0.5f), res, scale, cy),
              to_world(fadd((float)c[2], 0.5f), res, scale, cz));
    Hit h = closest_within(nodes, tris, p, reach);
    return h.face != 0xffffffffu && fabsf(fsub(sqrtf(h.d2), eps)) < tol;
}

extern "C" __global__ void mesh_band_filter(const Node* __restrict__ nodes,
                                            const float4* __restrict__ tris,
                                            const int* __restrict__ coords, long long n, float res,
                                            float scale, float cx, float cy, float cz, float reach,
                                            float eps, float tol, u8* __restrict__ keep) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    keep[i] = in_band(nodes, tris, coords + 3 * i, res, scale, cx, cy, cz, reach, eps, tol);
}

// Remesh step 2: UDF − eps at grid corners, the UDF capped at `reach` when nothing is closer.
__device__ __forceinline__ float udf_minus_eps(const Node* __restrict__ nodes,
                                               const float4* __restrict__ tris, V3 p, float reach,
                                               float eps) {
    Hit h = closest_within(nodes, tris, p, reach);
    return fsub(h.face == 0xffffffffu ? reach : sqrtf(h.d2), eps);
}

extern "C" __global__ void mesh_corner_udf(const Node* __restrict__ nodes,
                                           const float4* __restrict__ tris,
                                           const int* __restrict__ corners, long long n, float res,
                                           float scale, float cx, float cy, float cz, float reach,
                                           float eps, float* __restrict__ values) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    V3 p = v3(to_world((float)corners[3 * i], res, scale, cx),
              to_world((float)corners[3 * i + 1], res, scale, cy),
              to_world((float)corners[3 * i + 2], res, scale, cz));
    values[i] = udf_minus_eps(nodes, tris, p, reach, eps);
}

// `VoxelHash::get`: linear probing over (keys, vals) built on the host with the same slot
// function; -1 when absent or outside the grid.
__device__ __forceinline__ long long voxel_row(const u64* __restrict__ keys,
                                               const u32* __restrict__ vals, u64 mask,
                                               long long sx, long long sy, long long sz, int x,
                                               int y, int z) {
    if (x < 0 || y < 0 || z < 0 || x >= sx || y >= sy || z >= sz) return -1;
    u64 key = (u64)((x * sy + y) * sz + z);
    u64 s = ((key * 0x9E3779B97F4A7C15ull) >> 17) & mask;
    while (true) {
        u64 k = keys[s];
        if (k == key) return vals[s];
        if (k == 0xffffffffffffffffull) return -1;
        s = (s + 1) & mask;
    }
}

// `(x·255).clamp(0, 255) as u8`: NaN → 0 (fmaxf drops it, as Rust's saturating cast does).
__device__ __forceinline__ u8 quantise(float x) {
    return (u8)__float2uint_rz(fminf(fmaxf(fmul(x, 255.0f), 0.0f), 255.0f));
}

// Bake, per covered texel, in two launches (the snap needs only the surface, so it runs before
// the texture voxels exist): snap its surface point onto the original mesh (within
// snap_radius, else unbounded, as `bake.rs`); then sample the voxel attributes trilinearly
// there with the reference's renormalisation (`sample.rs`) and quantise to 6 bytes.
extern "C" __global__ void mesh_bake_snap(const Node* __restrict__ nodes,
                                          const float4* __restrict__ tris,
                                          const float* __restrict__ points, long long n,
                                          float snap_radius, float* __restrict__ snapped) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    V3 p = v3(points[3 * i], points[3 * i + 1], points[3 * i + 2]);
    Hit h = closest_within(nodes, tris, p, snap_radius);
    if (h.face == 0xffffffffu) h = closest_within(nodes, tris, p, __int_as_float(0x7f800000));
    if (h.face == 0xffffffffu) {
        // Only for non-finite queries: `Bvh::closest` reports the first corner.
        float4 a = tris[0];
        h.point = v3(a.x, a.y, a.z);
    }
    snapped[3 * i] = h.point.x;
    snapped[3 * i + 1] = h.point.y;
    snapped[3 * i + 2] = h.point.z;
}

extern "C" __global__ void mesh_bake_sample(const float* __restrict__ snapped, long long n,
                                            const u64* __restrict__ keys,
                                            const u32* __restrict__ vals, u64 mask, long long sx,
                                            long long sy, long long sz,
                                            const float* __restrict__ attrs, float voxel_size,
                                            u8* __restrict__ out) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float* q = snapped + 3 * i;
    float g[3] = {fdiv(fsub(q[0], -0.5f), voxel_size), fdiv(fsub(q[1], -0.5f), voxel_size),
                  fdiv(fsub(q[2], -0.5f), voxel_size)};
    int base[3];
#pragma unroll
    for (int a = 0; a < 3; ++a) base[a] = __float2int_rz(floorf(fsub(g[a], 0.5f)));
    float acc[6] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    float wsum = 0.0f;
#pragma unroll
    for (int k = 0; k < 8; ++k) {
        // Wrapping adds, as the CPU's `wrapping_add` (a saturated base stays out of the grid).
        int c[3] = {(int)((u32)base[0] + (u32)(k & 1)), (int)((u32)base[1] + (u32)((k >> 1) & 1)),
                    (int)((u32)base[2] + (u32)(k >> 2))};
        long long row = voxel_row(keys, vals, mask, sx, sy, sz, c[0], c[1], c[2]);
        if (row < 0) continue;
        float w = 1.0f;
#pragma unroll
        for (int a = 0; a < 3; ++a)
            w = fmul(w, fsub(1.0f, fabsf(fsub(g[a], fadd((float)c[a], 0.5f)))));
        const float* at = attrs + 6 * row;
#pragma unroll
        for (int ch = 0; ch < 6; ++ch) acc[ch] = fadd(acc[ch], fmul(w, at[ch]));
        wsum = fadd(wsum, w);
    }
    float d = fmaxf(wsum, 1e-12f);
#pragma unroll
    for (int ch = 0; ch < 6; ++ch) out[6 * i + ch] = quantise(fdiv(acc[ch], d));
}
