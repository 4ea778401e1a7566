// Builds the tree with lbvh.cu's kernels on the host, in `lbvh.rs`'s launch order (the scan is
// prims.cu's exclusive scan, done serially), then runs closest.cu's queries on it for each
// radius; inputs and outputs are files in DIR (host_check.rs).
#include "shim.h"
#include "exact.cuh"
#include "closest.cu"
#include "lbvh.cu"
#include <fstream>
#include <string>
#include <utility>
#include <vector>

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    dir = argv[1];
    auto verts = rd<float>("verts");
    auto faces = rd<u32>("faces");
    long long n = faces.size() / 3;
    if (n == 0) return 3;

    std::vector<u32> bounds = {~0u, ~0u, ~0u, 0, 0, 0};
    // Several grid-stride "blocks", so the atomics merge partial bounds.
    gridDim.x = n < 7 ? (unsigned)n : 7;
    EACH(gridDim.x, lbvh_centroid_bounds(verts.data(), faces.data(), n, bounds.data()));
    gridDim.x = 1;
    std::vector<u32> keys(n), vals(n), keys2(n), vals2(n);
    EACH(n, lbvh_morton(verts.data(), faces.data(), n, bounds.data(), keys.data(), vals.data()));
    long long chunks = (n + RADIX_CHUNK - 1) / RADIX_CHUNK;
    std::vector<u32> hist(chunks * RADIX);
    for (u32 shift = 0; shift < 30; shift += RADIX_BITS) {
        EACH(chunks, lbvh_radix_count(keys.data(), n, shift, chunks, hist.data()));
        u32 run = 0;
        for (auto& h : hist) { u32 x = h; h = run; run += x; }
        EACH(chunks, lbvh_radix_scatter(keys.data(), vals.data(), n, shift, chunks, hist.data(), keys2.data(), vals2.data()));
        std::swap(keys, keys2);
        std::swap(vals, vals2);
    }
    std::vector<float4> tris(3 * n);
    EACH(n, lbvh_tris(verts.data(), faces.data(), vals.data(), n, tris.data()));
    long long leaves = (n + LEAF_SIZE - 1) / LEAF_SIZE;
    std::vector<BvhNode> nodes(2 * leaves - 1);
    std::vector<u32> parents(2 * leaves - 1), visits(leaves > 1 ? leaves - 1 : 1, 0);
    EACH(leaves - 1, lbvh_internal(keys.data(), leaves, nodes.data(), parents.data()));
    // Leaves in reverse: the climb must not depend on which child arrives first.
    for (long long j = leaves - 1; j >= 0; --j) {
        blockIdx.x = (unsigned)j;
        lbvh_boxes(tris.data(), n, leaves, nodes.data(), parents.data(), visits.data());
    }
    wr("nodes", nodes);
    wr("tris", tris);

    auto q = rd<float>("queries");
    auto radii = rd<float>("radii");
    long long nq = q.size() / 3;
    std::vector<float4> pd(nq * radii.size()), uf(nq * radii.size());
    const Node* tree = (const Node*)nodes.data();
    for (size_t r = 0; r < radii.size(); ++r)
        EACH(nq, mesh_closest_within(tree, tris.data(), q.data(), nq, radii[r], pd.data() + r * nq, uf.data() + r * nq));
    wr("out_pd", pd);
    wr("out_uf", uf);
    return 0;
}
