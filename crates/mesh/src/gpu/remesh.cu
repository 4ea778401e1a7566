
// ---- narrow-band dual-contouring remesh, every phase on the device (`gpu/remesh.rs`) ----------
// Appended to closest.cu (one NVRTC module: the band and corner kernels query its tree). Each
// kernel repeats a step of `remesh.rs` with the same float operations in the same order, and
// every list keeps the CPU's order (order-preserving compactions by exclusive scans), so the
// mesh is the CPU's bit for bit up to closest-point ties in the projection.
//
// Corner values and voxel rows live in 4³ bricks of the (res + 1)³ corner grid, as on the CPU,
// but the bricks are found through a dense table over brick coordinates (its exclusive scan
// numbers the present bricks) instead of a hash: at res 1024 the table is 257³ u32 = 68 MB.

#define BRICK_SHIFT 2
#define BRICK_CELLS 64

struct I3 { int x, y, z; };

__device__ __forceinline__ I3 i3(int x, int y, int z) { I3 r = {x, y, z}; return r; }
__device__ __forceinline__ I3 load_i3(const int* c, long long i) { return i3(c[3 * i], c[3 * i + 1], c[3 * i + 2]); }
// Corner k of voxel c, at offset (k & 1, k >> 1 & 1, k >> 2) (`cube_corners`).
__device__ __forceinline__ I3 corner_of(I3 c, int k) { return i3(c.x + (k & 1), c.y + ((k >> 1) & 1), c.z + (k >> 2)); }
__device__ __forceinline__ u64 brick_key(I3 c, u64 nb) {
    return ((u64)(c.x >> BRICK_SHIFT) * nb + (u64)(c.y >> BRICK_SHIFT)) * nb + (u64)(c.z >> BRICK_SHIFT);
}
// The slot of cell c (within the corner grid) given the scanned brick table; -1 if its brick
// is absent.
__device__ __forceinline__ long long cell_slot(I3 c, u64 nb, const u32* __restrict__ brick_id) {
    u64 k = brick_key(c, nb);
    u32 id = brick_id[k];
    if (brick_id[k + 1] == id) return -1;
    int lx = c.x & 3, ly = c.y & 3, lz = c.z & 3;
    return (long long)id * BRICK_CELLS + (((lx << BRICK_SHIFT) | ly) << BRICK_SHIFT) + lz;
}

// Step 1, one level: `in_band` (closest.cu) as 0/1 flags for the scan.
extern "C" __global__ void remesh_band_keep(const Node* __restrict__ nodes, const float4* __restrict__ tris,
                                            const int* __restrict__ coords, long long n, float res,
                                            float scale, float cx, float cy, float cz, float reach,
                                            float eps, float tol, u32* __restrict__ keep) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    keep[i] = in_band(nodes, tris, coords + 3 * i, res, scale, cx, cy, cz, reach, eps, tol);
}

// The kept voxels' 8 children each (parent order, child k at offset (k & 1, k >> 1 & 1, k >> 2)),
// or with `children` 0 the kept voxels themselves; `map` is the scanned keep flags.
extern "C" __global__ void remesh_band_next(const int* __restrict__ coords, long long n,
                                            const u32* __restrict__ map, int children,
                                            int* __restrict__ out) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n || map[i + 1] == map[i]) return;
    I3 c = load_i3(coords, i);
    long long at = map[i];
    if (!children) {
        out[3 * at] = c.x; out[3 * at + 1] = c.y; out[3 * at + 2] = c.z;
        return;
    }
    for (int k = 0; k < 8; ++k) {
        I3 ch = i3(2 * c.x + (k & 1), 2 * c.y + ((k >> 1) & 1), 2 * c.z + (k >> 2));
        long long o = 8 * at + k;
        out[3 * o] = ch.x; out[3 * o + 1] = ch.y; out[3 * o + 2] = ch.z;
    }
}

// Marks the bricks holding any corner of any band voxel.
extern "C" __global__ void remesh_mark_bricks(const int* __restrict__ coords, long long n, u64 nb,
                                              u32* __restrict__ present) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    I3 c = load_i3(coords, i);
    for (int k = 0; k < 8; ++k) present[brick_key(corner_of(c, k), nb)] = 1;
}

// Brick id → brick key (the inverse of the scanned table).
extern "C" __global__ void remesh_brick_keys(const u32* __restrict__ brick_id, long long keys,
                                             u64* __restrict__ key_of) {
    long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= keys || brick_id[k + 1] == brick_id[k]) return;
    key_of[brick_id[k]] = (u64)k;
}

// Marks the slots of every band voxel's corners.
extern "C" __global__ void remesh_mark_corners(const int* __restrict__ coords, long long n, u64 nb,
                                               const u32* __restrict__ brick_id, u32* __restrict__ needed) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    I3 c = load_i3(coords, i);
    for (int k = 0; k < 8; ++k) needed[cell_slot(corner_of(c, k), nb, brick_id)] = 1;
}

// Step 2: UDF − eps at every needed corner slot (the UDF capped at `reach`); others stay NaN.
extern "C" __global__ void remesh_corner_values(const Node* __restrict__ nodes, const float4* __restrict__ tris,
                                                long long slots, const u32* __restrict__ needed,
                                                const u64* __restrict__ key_of, u64 nb, float res,
                                                float scale, float cx, float cy, float cz, float reach,
                                                float eps, float* __restrict__ values) {
    long long s = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (s >= slots) return;
    if (!needed[s]) { values[s] = __int_as_float(0x7fc00000); return; }
    u64 key = key_of[s / BRICK_CELLS];
    int l = (int)(s % BRICK_CELLS);
    int bx = (int)(key / (nb * nb)), by = (int)((key / nb) % nb), bz = (int)(key % nb);
    I3 c = i3((bx << BRICK_SHIFT) + (l >> (2 * BRICK_SHIFT)), (by << BRICK_SHIFT) + ((l >> BRICK_SHIFT) & 3),
              (bz << BRICK_SHIFT) + (l & 3));
    V3 p = v3(to_world((float)c.x, res, scale, cx), to_world((float)c.y, res, scale, cy),
              to_world((float)c.z, res, scale, cz));
    values[s] = udf_minus_eps(nodes, tris, p, reach, eps);
}

// Step 3: the dual vertex (mean of the edge crossings, in grid units) and the sign of the
// voxel's three max-corner edges (+1 inside → outside along the axis, −1 the reverse), packed
// as (dir + 1) in bits 2·axis.
extern "C" __global__ void remesh_dual(const int* __restrict__ coords, long long n, u64 nb,
                                       const u32* __restrict__ brick_id, const float* __restrict__ values,
                                       float* __restrict__ dual, u32* __restrict__ dirs,
                                       u32* __restrict__ voxel_row) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    I3 c = load_i3(coords, i);
    float corner[8];
    for (int k = 0; k < 8; ++k) corner[k] = values[cell_slot(corner_of(c, k), nb, brick_id)];
    voxel_row[cell_slot(c, nb, brick_id)] = (u32)i;
    float sum[3] = {0.0f, 0.0f, 0.0f};
    u32 count = 0, packed = 0;
    for (int axis = 0; axis < 3; ++axis) {
        int a1 = (axis + 1) % 3, a2 = (axis + 2) % 3;
        for (int u = 0; u < 2; ++u) {
            for (int v = 0; v < 2; ++v) {
                int o[3] = {0, 0, 0};
                o[a1] = u;
                o[a2] = v;
                float v1 = corner[o[0] | (o[1] << 1) | (o[2] << 2)];
                o[axis] = 1;
                float v2 = corner[o[0] | (o[1] << 1) | (o[2] << 2)];
                bool crossing = (v1 < 0.0f && v2 >= 0.0f) || (v1 >= 0.0f && v2 < 0.0f);
                if (crossing) {
                    float t = fdiv(-v1, fsub(v2, v1));
                    float p[3] = {(float)c.x, (float)c.y, (float)c.z};
                    p[a1] = fadd(p[a1], (float)u);
                    p[a2] = fadd(p[a2], (float)v);
                    p[axis] = fadd(p[axis], t);
                    for (int k = 0; k < 3; ++k) sum[k] = fadd(sum[k], p[k]);
                    count += 1;
                }
                if (u == 1 && v == 1) {
                    int d = (v1 < 0.0f && v2 >= 0.0f) ? 1 : ((v1 >= 0.0f && v2 < 0.0f) ? -1 : 0);
                    packed |= (u32)(d + 1) << (2 * axis);
                }
            }
        }
    }
    float* out = dual + 3 * i;
    if (count > 0) {
        for (int k = 0; k < 3; ++k) out[k] = fdiv(sum[k], (float)count);
    } else {
        out[0] = fadd((float)c.x, 0.5f); out[1] = fadd((float)c.y, 0.5f); out[2] = fadd((float)c.z, 0.5f);
    }
    dirs[i] = packed;
}

__device__ __forceinline__ int dir_of(u32 packed, int axis) { return (int)((packed >> (2 * axis)) & 3) - 1; }

// The 4 voxels around the max-corner edge along x, y, z (`fdg::EDGE_NEIGHBOURS`).
__constant__ int EDGE_NEIGHBOURS[3][4][3] = {
    {{0, 0, 0}, {0, 0, 1}, {0, 1, 1}, {0, 1, 0}},
    {{0, 0, 0}, {1, 0, 0}, {1, 0, 1}, {0, 0, 1}},
    {{0, 0, 0}, {0, 1, 0}, {1, 1, 0}, {1, 0, 0}},
};

// The quad of voxel c along `axis` when its edge changes sign and all 4 voxels are in the band.
__device__ __forceinline__ bool quad_of(I3 c, int axis, u64 nb, const u32* __restrict__ brick_id,
                                        const u32* __restrict__ voxel_row, u32* q) {
    for (int k = 0; k < 4; ++k) {
        const int* off = EDGE_NEIGHBOURS[axis][k];
        long long s = cell_slot(i3(c.x + off[0], c.y + off[1], c.z + off[2]), nb, brick_id);
        if (s < 0) return false;
        u32 r = voxel_row[s];
        if (r == 0xffffffffu) return false;
        q[k] = r;
    }
    return true;
}

// Step 4, counting: quads per voxel.
extern "C" __global__ void remesh_quad_count(const int* __restrict__ coords, long long n, u64 nb,
                                             const u32* __restrict__ brick_id, const u32* __restrict__ voxel_row,
                                             const u32* __restrict__ dirs, u32* __restrict__ counts) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    I3 c = load_i3(coords, i);
    u32 q[4], m = 0;
    for (int axis = 0; axis < 3; ++axis)
        if (dir_of(dirs[i], axis) != 0 && quad_of(c, axis, nb, brick_id, voxel_row, q)) m++;
    counts[i] = m;
}

// Step 4, writing: quads voxel-major, axis-minor at the scanned offsets; marks their voxels used.
extern "C" __global__ void remesh_quad_write(const int* __restrict__ coords, long long n, u64 nb,
                                             const u32* __restrict__ brick_id, const u32* __restrict__ voxel_row,
                                             const u32* __restrict__ dirs, const u32* __restrict__ offsets,
                                             u32* __restrict__ quads, int* __restrict__ quad_dir,
                                             u32* __restrict__ used) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    I3 c = load_i3(coords, i);
    u32 at = offsets[i];
    for (int axis = 0; axis < 3; ++axis) {
        u32 q[4];
        int d = dir_of(dirs[i], axis);
        if (d == 0 || !quad_of(c, axis, nb, brick_id, voxel_row, q)) continue;
        for (int k = 0; k < 4; ++k) {
            quads[4 * (u64)at + k] = q[k];
            used[q[k]] = 1;
        }
        quad_dir[at] = d;
        at++;
    }
}

// Step 5: the used voxels' dual vertices in world space, in voxel order (`map`: scanned flags).
extern "C" __global__ void remesh_vertices(const float* __restrict__ dual, long long n,
                                           const u32* __restrict__ map, float res, float scale,
                                           float cx, float cy, float cz, float* __restrict__ out) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n || map[i + 1] == map[i]) return;
    u64 at = map[i];
    out[3 * at] = to_world(dual[3 * i], res, scale, cx);
    out[3 * at + 1] = to_world(dual[3 * i + 1], res, scale, cy);
    out[3 * at + 2] = to_world(dual[3 * i + 2], res, scale, cz);
}


// `triangulate` in remesh.rs: two triangles per oriented quad, the reference's split test.
extern "C" __global__ void remesh_faces(const u32* __restrict__ quads, const int* __restrict__ quad_dir,
                                        long long nq, const u32* __restrict__ map,
                                        const float* __restrict__ verts, u32* __restrict__ faces) {
    long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= nq) return;
    u32 q[4];
    for (int k = 0; k < 4; ++k) q[k] = map[quads[4 * j + k]];
    const int S1P[6] = {0, 2, 1, 0, 3, 2}, S1N[6] = {0, 1, 2, 0, 2, 3};
    const int S2P[6] = {0, 3, 1, 3, 2, 1}, S2N[6] = {0, 1, 3, 3, 1, 2};
    const int* s0 = quad_dir[j] == 1 ? S1P : S1N;
    const int* s1 = quad_dir[j] == 1 ? S2P : S2N;
    float align[2];
    for (int w = 0; w < 2; ++w) {
        const int* s = w == 0 ? s0 : s1;
        V3 p[4];
        for (int k = 0; k < 4; ++k) {
            const float* v = verts + 3 * (u64)q[s[k]];
            p[k] = v3(v[0], v[1], v[2]);
        }
        V3 n0 = vcross(vsub(p[1], p[0]), vsub(p[2], p[0]));
        V3 n1 = vcross(vsub(p[2], p[1]), vsub(p[3], p[1]));
        align[w] = fabsf(vdot(n0, n1));
    }
    const int* s = align[0] > align[1] ? s0 : s1;
    for (int k = 0; k < 6; ++k) faces[6 * j + k] = q[s[k]];
}

// Step 6: moves each vertex a fraction `pb` of the way to its closest point on the input.
extern "C" __global__ void remesh_project(const Node* __restrict__ nodes, const float4* __restrict__ tris,
                                          float* __restrict__ verts, long long n, float pb) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float* v = verts + 3 * i;
    Hit h = closest_within(nodes, tris, v3(v[0], v[1], v[2]), __int_as_float(0x7f800000));
    // The unbounded query finds a face for every finite point (all of them here).
    if (h.face == 0xffffffffu) return;
    v[0] = fsub(v[0], fmul(pb, fsub(v[0], h.point.x)));
    v[1] = fsub(v[1], fmul(pb, fsub(v[1], h.point.y)));
    v[2] = fsub(v[2], fmul(pb, fsub(v[2], h.point.z)));
}
