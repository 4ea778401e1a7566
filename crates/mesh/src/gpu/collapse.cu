// One step of the parallel edge collapse (`collapse/cpu.rs`, whose functions these kernels
// repeat one for one: same adjacency and edge order, same float operations in the same order,
// no FMA contraction, IEEE division and square root); fills and scans are in prims.cu.
// Vertices are float[3], faces u32[3], edges u32[2] (a < b).

__device__ __forceinline__ V3 load3(const float* v, u32 i) { return v3(v[3 * i], v[3 * i + 1], v[3 * i + 2]); }

struct F3 { u32 v[3]; };
__device__ __forceinline__ F3 face(const u32* faces, u32 f) {
    F3 r = {{faces[3 * f], faces[3 * f + 1], faces[3 * f + 2]}};
    return r;
}
__device__ __forceinline__ bool has(F3 f, u32 v) { return f.v[0] == v || f.v[1] == v || f.v[2] == v; }
// The two corners of `f` other than `v`, in face order (`others` in cpu.rs).
__device__ __forceinline__ void others(F3 f, u32 v, u32* o) {
    if (f.v[0] == v) { o[0] = f.v[1]; o[1] = f.v[2]; }
    else if (f.v[1] == v) { o[0] = f.v[0]; o[1] = f.v[2]; }
    else { o[0] = f.v[0]; o[1] = f.v[1]; }
}

// ---- vertex → face lists ----------------------------------------------------------

extern "C" __global__ void collapse_count_vertex_faces(const u32* faces, i64 nf, u32* counts) {
    i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= 3 * nf) return;
    atomicAdd(&counts[faces[i]], 1u);
}

extern "C" __global__ void collapse_fill_vertex_faces(const u32* faces, i64 nf, u32* cursor, u32* ids) {
    i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= 3 * nf) return;
    u32 at = atomicAdd(&cursor[faces[i]], 1u);
    ids[at] = (u32)(i / 3);
}

// The fill order depends on the scheduler: sorting each list gives face order, as on the CPU.
extern "C" __global__ void collapse_sort_vertex_faces(const u32* offsets, i64 nv, u32* ids) {
    i64 v = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (v >= nv) return;
    u32 s = offsets[v], e = offsets[v + 1];
    for (u32 i = s + 1; i < e; i++) {
        u32 x = ids[i];
        u32 j = i;
        while (j > s && ids[j - 1] > x) { ids[j] = ids[j - 1]; j--; }
        ids[j] = x;
    }
}

// ---- edges ---------------------------------------------------------------------------------

// Neighbour `o[k]` of `v` at its face number `j` (0-based in v's list) appears here first.
__device__ __forceinline__ bool first_seen(const u32* faces, const u32* list, u32 j, u32 k, const u32* o, u32 w) {
    if (k == 1 && o[0] == w) return false;
    for (u32 i = 0; i < j; i++)
        if (has(face(faces, list[i]), w)) return false;
    return true;
}

__device__ __forceinline__ u32 multiplicity(const u32* faces, const u32* list, u32 n, u32 w) {
    u32 m = 0;
    for (u32 i = 0; i < n; i++) m += has(face(faces, list[i]), w);
    return m;
}

// Per vertex: edges (v, w > v) it owns, and whether an edge of it has exactly one face.
extern "C" __global__ void collapse_count_edges(const u32* offsets, const u32* ids, const u32* faces, i64 nv,
                                                u32* edge_counts, u8* boundary) {
    i64 v = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (v >= nv) return;
    const u32* list = ids + offsets[v];
    u32 n = offsets[v + 1] - offsets[v];
    u32 count = 0;
    u8 border = 0;
    for (u32 j = 0; j < n; j++) {
        u32 o[2];
        others(face(faces, list[j]), (u32)v, o);
        for (u32 k = 0; k < 2; k++) {
            u32 w = o[k];
            if (!first_seen(faces, list, j, k, o, w)) continue;
            if (w > (u32)v) count++;
            if (multiplicity(faces, list, n, w) == 1) border = 1;
        }
    }
    edge_counts[v] = count;
    boundary[v] = border;
}

extern "C" __global__ void collapse_fill_edges(const u32* offsets, const u32* ids, const u32* faces, i64 nv,
                                               const u32* edge_offsets, u32* edges) {
    i64 v = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (v >= nv) return;
    const u32* list = ids + offsets[v];
    u32 n = offsets[v + 1] - offsets[v];
    u32 at = edge_offsets[v];
    for (u32 j = 0; j < n; j++) {
        u32 o[2];
        others(face(faces, list[j]), (u32)v, o);
        for (u32 k = 0; k < 2; k++) {
            u32 w = o[k];
            if (w > (u32)v && first_seen(faces, list, j, k, o, w)) {
                edges[2 * at] = (u32)v;
                edges[2 * at + 1] = w;
                at++;
            }
        }
    }
}

// ---- cost ----------------------------------------------------------------------------------

__device__ __forceinline__ V3 collapsed_position(V3 pa, V3 pb, u8 ba, u8 bb) {
    float wa = (ba && !bb) ? 1.0f : ((!ba && bb) ? 0.0f : 0.5f);
    float wb = fsub(1.0f, wa);
    return v3(fadd(fmul(pa.x, wa), fmul(pb.x, wb)), fadd(fmul(pa.y, wa), fmul(pb.y, wb)),
              fadd(fmul(pa.z, wa), fmul(pb.z, wb)));
}

__device__ __forceinline__ float plane_distance2(const float* verts, F3 f, V3 p) {
    V3 a = load3(verts, f.v[0]);
    V3 n = vcross(vsub(load3(verts, f.v[1]), a), vsub(load3(verts, f.v[2]), a));
    float len = __fsqrt_rn(vdot(n, n));
    if (len == 0.0f) return 0.0f;
    float d = fdiv(vdot(n, vsub(p, a)), len);
    return fmul(d, d);
}

// 0: the face holds `gone` (skipped); 1: `term` set; -1: the face flips.
__device__ __forceinline__ int shape_term(const float* verts, F3 f, u32 keep, u32 gone, V3 p, float* term) {
    if (has(f, gone)) return 0;
    V3 a = load3(verts, f.v[0]), b = load3(verts, f.v[1]), c = load3(verts, f.v[2]);
    V3 na = f.v[0] == keep ? p : a;
    V3 nb = f.v[1] == keep ? p : b;
    V3 nc = f.v[2] == keep ? p : c;
    V3 old_normal = vcross(vsub(b, a), vsub(c, a));
    V3 e1 = vsub(nb, na);
    V3 e2 = vsub(nc, na);
    V3 new_normal = vcross(e1, e2);
    if (vdot(old_normal, new_normal) < 0.0f) return -1;
    float new_area = fmul(0.5f, __fsqrt_rn(vdot(new_normal, new_normal)));
    V3 e0 = vsub(nc, nb);
    float denom = fmaxf(fadd(fadd(vdot(e0, e0), vdot(e1, e1)), vdot(e2, e2)), 1e-12f);
    float shape = fdiv(fmul(fmul(4.0f, __fsqrt_rn(3.0f)), new_area), denom);
    *term = fsub(1.0f, fminf(fmaxf(shape, 0.0f), 1.0f));
    return 1;
}

__device__ bool keeps_manifold(u32 a, u32 b, const u32* offsets, const u32* ids, const u32* faces, const u8* boundary) {
    const u32* la = ids + offsets[a];
    u32 na = offsets[a + 1] - offsets[a];
    const u32* lb = ids + offsets[b];
    u32 nb = offsets[b + 1] - offsets[b];
    u32 shared = 0;
    for (u32 i = 0; i < na; i++) shared += has(face(faces, la[i]), b);
    if (shared == 0 || shared > 2 || (shared == 2 && boundary[a] && boundary[b])) return false;
    u32 common = 0;
    for (u32 j = 0; j < na; j++) {
        u32 o[2];
        others(face(faces, la[j]), a, o);
        for (u32 k = 0; k < 2; k++) {
            u32 x = o[k];
            if (x == b || !first_seen(faces, la, j, k, o, x)) continue;
            if (multiplicity(faces, lb, nb, x) > 0) common++;
        }
    }
    if (common != shared) return false;
    for (u32 i = 0; i < nb; i++) {
        F3 fb = face(faces, lb[i]);
        if (has(fb, a)) continue;
        for (u32 k = 0; k < 3; k++) if (fb.v[k] == b) fb.v[k] = a;
        for (u32 j = 0; j < na; j++) {
            F3 fa = face(faces, la[j]);
            // the same vertex set: every corner of fb is in fa (faces have distinct corners)
            if (has(fa, fb.v[0]) && has(fa, fb.v[1]) && has(fa, fb.v[2])) return false;
        }
    }
    return true;
}

extern "C" __global__ void collapse_edge_cost(const float* verts, const u32* faces, const u32* offsets, const u32* ids,
                                              const u8* boundary, const u32* edges, i64 ne,
                                              float lambda_edge_length, float lambda_skinny, float threshold,
                                              float* costs) {
    i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= ne) return;
    u32 a = edges[2 * e], b = edges[2 * e + 1];
    V3 pa = load3(verts, a), pb = load3(verts, b);
    V3 p = collapsed_position(pa, pb, boundary[a], boundary[b]);
    // Early exits as on the CPU: every term is >= 0, so a partial sum over the threshold
    // settles that the edge is no candidate.
    V3 edge = vsub(pb, pa);
    float len2 = vdot(edge, edge);
    float length_cost = fmul(lambda_edge_length, len2);
    if (!(length_cost <= threshold)) { costs[e] = length_cost; return; }
    float plane = 0.0f;
    for (int side = 0; side < 2; side++) {
        u32 v = side == 0 ? a : b;
        for (u32 i = offsets[v]; i < offsets[v + 1]; i++) {
            plane = fadd(plane, plane_distance2(verts, face(faces, ids[i]), p));
            float partial = fadd(plane, length_cost);
            if (!(partial <= threshold)) { costs[e] = partial; return; }
        }
    }
    float cost = fadd(plane, length_cost);
    float skinny = 0.0f;
    u32 counted = 0;
    for (int side = 0; side < 2; side++) {
        u32 keep = side == 0 ? a : b;
        u32 gone = side == 0 ? b : a;
        for (u32 i = offsets[keep]; i < offsets[keep + 1]; i++) {
            float t;
            int r = shape_term(verts, face(faces, ids[i]), keep, gone, p, &t);
            if (r < 0) { costs[e] = __int_as_float(0x7f800000); return; }
            if (r > 0) { skinny = fadd(skinny, t); counted++; }
        }
    }
    if (counted > 0) skinny = fdiv(skinny, (float)counted);
    cost = fadd(cost, fmul(fmul(lambda_skinny, skinny), len2));
    if (isnan(cost) || (cost <= threshold && !keeps_manifold(a, b, offsets, ids, faces, boundary)))
        cost = __int_as_float(0x7f800000);
    costs[e] = cost;
}

// ---- selection and collapse ----------------------------------------------------------------

__device__ __forceinline__ u64 key(float cost, i64 e) { return ((u64)__float_as_uint(cost) << 32) | (u64)e; }

extern "C" __global__ void collapse_propagate(const u32* edges, i64 ne, const float* costs, float threshold,
                                              const u32* offsets, const u32* ids, u64* face_keys) {
    i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= ne || !(costs[e] <= threshold)) return;
    u64 k = key(costs[e], e);
    for (int s = 0; s < 2; s++) {
        u32 v = edges[2 * e + s];
        for (u32 i = offsets[v]; i < offsets[v + 1]; i++) atomicMin(&face_keys[ids[i]], k);
    }
}

extern "C" __global__ void collapse_apply(const u32* edges, i64 ne, const float* costs, float threshold,
                                          const u32* offsets, const u32* ids, const u64* face_keys, const u8* boundary,
                                          float* verts, u32* faces, u32* vertex_kept, u32* face_kept) {
    i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= ne || !(costs[e] <= threshold)) return;
    u64 k = key(costs[e], e);
    u32 a = edges[2 * e], b = edges[2 * e + 1];
    for (int s = 0; s < 2; s++) {
        u32 v = s == 0 ? a : b;
        for (u32 i = offsets[v]; i < offsets[v + 1]; i++)
            if (face_keys[ids[i]] != k) return;
    }
    V3 p = collapsed_position(load3(verts, a), load3(verts, b), boundary[a], boundary[b]);
    verts[3 * a] = p.x;
    verts[3 * a + 1] = p.y;
    verts[3 * a + 2] = p.z;
    vertex_kept[b] = 0;
    for (u32 i = offsets[a]; i < offsets[a + 1]; i++)
        if (has(face(faces, ids[i]), b)) face_kept[ids[i]] = 0;
    for (u32 i = offsets[b]; i < offsets[b + 1]; i++)
        for (u32 c = 0; c < 3; c++)
            if (faces[3 * ids[i] + c] == b) faces[3 * ids[i] + c] = a;
}

// `map` is the exclusive scan of the keep flags (n + 1 entries): element i is kept when
// map[i + 1] > map[i], and goes to map[i].
extern "C" __global__ void collapse_compact_vertices(const float* verts, const u32* map, i64 nv, float* out) {
    i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nv || map[i + 1] == map[i]) return;
    u32 to = map[i];
    out[3 * to] = verts[3 * i];
    out[3 * to + 1] = verts[3 * i + 1];
    out[3 * to + 2] = verts[3 * i + 2];
}

extern "C" __global__ void collapse_compact_faces(const u32* faces, const u32* face_map, const u32* vertex_map, i64 nf,
                                                  u32* out) {
    i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nf || face_map[i + 1] == face_map[i]) return;
    u32 to = face_map[i];
    for (int c = 0; c < 3; c++) out[3 * to + c] = vertex_map[faces[3 * i + c]];
}
