#!/usr/bin/env python3
"""PyTorch baseline for t2-gpu-bench, timed on the same GPU in the same run.

Usage: torch_baseline.py DIR   (DIR holds the rust.json and sparse-conv voxel files that
`t2-gpu-bench DIR` wrote). For every case it times the PyTorch equivalent the same way
(3 warm-ups, 7 batches of the same iteration count, median; CUDA events around each batch) and
prints both sides with the throughput ratio ours/torch:
  gemm        -> torch.nn.functional.linear (cuBLAS/cuBLASLt through torch.matmul)
  attention   -> torch.nn.functional.scaled_dot_product_attention, default backend choice
                 (f32: the memory-efficient kernel, whose fp32 GEMMs on sm_80+ are CUTLASS's
                 3xTF32 on tensor cores; ours is plain f32 FMA, so that row is not like for like)
  sparse_conv -> gather-GEMM-scatter: for each of the 27 offsets, gather the neighbour rows,
                 one f16 GEMM with that offset's [Co, Ci] weights, index_add_ into an f32
                 accumulator (f32 accumulation, like ours), cast to f16 at the end
  memory      -> F.layer_norm / F.gelu(approximate="tanh") on the same bf16 tensor
Writes DIR/combined.json.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

TARGETS = {"gemm": 0.8, "attention": 0.7, "sparse_conv": 1.0, "memory": None}


def time_ms(fn, iters, reps=7):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) / iters)
    samples.sort()
    return samples[len(samples) // 2]


def iters_for(flops, budget):
    return int(min(max(budget / max(flops, 1.0), 3), 200))


def bench_gemm(p, flops):
    dev = "cuda"
    x = torch.rand(p["m"], p["k"], device=dev, dtype=torch.bfloat16) * 2 - 1
    w = (torch.rand(p["n"], p["k"], device=dev, dtype=torch.bfloat16) * 2 - 1) * 0.05
    b = torch.rand(p["n"], device=dev, dtype=torch.bfloat16) - 0.5 if p["bias"] else None
    return time_ms(lambda: F.linear(x, w, b), iters_for(flops, 2e12))


def bench_attention(p, flops):
    dt = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[p["dtype"]]
    shape_q = (1, p["nq"], p["heads"], p["d"])
    shape_k = (1, p["nk"], p["heads"], p["d"])
    q = (torch.rand(shape_q, device="cuda", dtype=dt) * 4 - 2).transpose(1, 2)
    k = (torch.rand(shape_k, device="cuda", dtype=dt) * 4 - 2).transpose(1, 2)
    v = (torch.rand(shape_k, device="cuda", dtype=dt) * 2 - 1).transpose(1, 2)
    return time_ms(lambda: F.scaled_dot_product_attention(q, k, v), iters_for(flops, 2e12))


def bench_sparse_conv(name, p, flops, d):
    n, ci, co = p["n"], p["ci"], p["co"]
    stem = name.split()[0]
    nbr = np.fromfile(os.path.join(d, f"{stem}.nbr.bin"), dtype=np.uint32).reshape(n, 27)
    nbr_t = torch.from_numpy(nbr.astype(np.int64)).cuda()
    # Pair lists per offset (built once, not timed): output rows and their input rows.
    pairs = []
    for v in range(27):
        col = nbr_t[:, v]
        out_idx = torch.nonzero(col != 0xFFFFFFFF).flatten()
        pairs.append((out_idx, col[out_idx]))
    feats = torch.rand(n, ci, device="cuda", dtype=torch.float16) * 2 - 1
    w = (torch.rand(co, 27, ci, device="cuda", dtype=torch.float16) * 2 - 1) / (27 * ci) ** 0.5
    b = torch.rand(co, device="cuda", dtype=torch.float16) - 0.5
    wv = [w[:, v, :].t().contiguous() for v in range(27)]

    def conv():
        acc = b.float().expand(n, co).clone()
        for v in range(27):
            out_idx, in_idx = pairs[v]
            acc.index_add_(0, out_idx, (feats[in_idx] @ wv[v]).float())
        return acc.half()

    return time_ms(conv, iters_for(flops, 1e12))


def bench_memory(p):
    x = torch.rand(p["m"], p["c"], device="cuda", dtype=torch.bfloat16) * 6 - 3
    w = torch.rand(p["c"], device="cuda", dtype=torch.bfloat16)
    if p["op"] == "layer_norm":
        fn = lambda: F.layer_norm(x, (p["c"],), w, w, 1e-6)
    else:
        fn = lambda: F.gelu(x, approximate="tanh")
    return time_ms(fn, 100)


def main():
    d = sys.argv[1]
    rows = json.load(open(os.path.join(d, "rust.json")))
    torch.backends.cuda.matmul.allow_tf32 = False
    print(f"# torch {torch.__version__}, {torch.cuda.get_device_name()}, "
          f"SDPA backends flash={torch.backends.cuda.flash_sdp_enabled()} "
          f"mem_efficient={torch.backends.cuda.mem_efficient_sdp_enabled()} "
          f"cudnn={torch.backends.cuda.cudnn_sdp_enabled()}")
    # The two ceilings of METHOD.md: device-to-device copy bandwidth and a large bf16 GEMM.
    a = torch.empty(1 << 30, device="cuda", dtype=torch.float32)
    bw = 2 * a.numel() * 4 / time_ms(lambda: a.clone(), 10) / 1e6
    print(f"# ceiling: d2d copy {bw:.0f} GB/s (read + write)")
    del a
    out = []
    hdr = f"{'kind':<12} {'case':<28} {'ours ms':>9} {'torch ms':>9} {'ours':>8} {'torch':>8} {'ratio':>6} {'target':>7}"
    lines = [hdr]
    for r in rows:
        kind, name, p, flops, nbytes = r["kind"], r["name"], r["params"], r["flops"], r["bytes"]
        if kind == "gemm":
            t = bench_gemm(p, flops)
        elif kind == "attention":
            t = bench_attention(p, flops)
        elif kind == "sparse_conv":
            t = bench_sparse_conv(name, p, flops, d)
        else:
            t = bench_memory(p)
        torch.cuda.empty_cache()
        unit = "GB/s" if kind == "memory" else "TF/s"
        work = nbytes / 1e6 if kind == "memory" else flops / 1e9
        ours, theirs = work / r["ms"], work / t
        ratio = ours / theirs
        target = TARGETS[kind]
        flag = "" if target is None else ("ok" if ratio >= target else "BELOW")
        lines.append(f"{kind:<12} {name:<28} {r['ms']:>9.3f} {t:>9.3f} {ours:>8.1f} {theirs:>8.1f} "
                     f"{ratio:>6.2f} {('>=' + str(target)) if target else unit:>7} {flag}")
        out.append(dict(r, torch_ms=t, ratio=ratio, unit=unit))
    print("\n".join(lines))
    json.dump(out, open(os.path.join(d, "combined.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
