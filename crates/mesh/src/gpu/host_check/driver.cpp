// Runs closest.cu's kernels on the host over the inputs host_check.rs wrote to DIR, one
// "thread" at a time, and writes their outputs next to them.
#include "shim.h"
#include "exact.cuh"
#include "closest.cu"
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    dir = argv[1];
    auto nodes = rd<Node>("nodes");
    auto tris = rd<float4>("tris");
    auto f = rd<float>("scalars");   // radius, res, scale, cx, cy, cz, eps, tol, reach, snap, voxel size
    auto g = rd<long long>("ints");  // hash mask, sx, sy, sz
    auto q = rd<float>("queries");
    long long nq = q.size() / 3;
    std::vector<float4> pd(nq), uf(nq);
    EACH(nq, mesh_closest_within(nodes.data(), tris.data(), q.data(), nq, f[0], pd.data(), uf.data()));
    wr("out_pd", pd);
    wr("out_uf", uf);
    auto coords = rd<int>("coords");
    long long nc = coords.size() / 3;
    std::vector<u8> keep(nc);
    std::vector<float> udf(nc);
    EACH(nc, mesh_band_filter(nodes.data(), tris.data(), coords.data(), nc, f[1], f[2], f[3], f[4], f[5], f[6] + f[7], f[6], f[7], keep.data()));
    EACH(nc, mesh_corner_udf(nodes.data(), tris.data(), coords.data(), nc, f[1], f[2], f[3], f[4], f[5], f[8], f[6], udf.data()));
    wr("out_keep", keep);
    wr("out_udf", udf);
    auto keys = rd<u64>("keys");
    auto vals = rd<u32>("vals");
    auto attrs = rd<float>("attrs");
    std::vector<u8> texels(6 * nq);
    std::vector<float> snapped(3 * nq);
    EACH(nq, mesh_bake_snap(nodes.data(), tris.data(), q.data(), nq, f[9], snapped.data()));
    EACH(nq, mesh_bake_sample(snapped.data(), nq, keys.data(), vals.data(), (u64)g[0], g[1], g[2], g[3], attrs.data(), f[10], texels.data()));
    wr("out_texels", texels);
    return 0;
}
