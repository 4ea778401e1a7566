#!/usr/bin/env bash
# gpu_attention.sh — the attention-only device call: a smoke case (a hang guard: the fa3
# kernel waits on mbarriers), the attention parity cases, then ours vs torch SDPA in one call.
# Build and stage on the CPU box, then run on the GPU host with `.gpu` carried:
#   cargo build --release -p t2-tensor --bins
#   mkdir -p .gpu && cp target/release/t2-gpu-{bench,parity} crates/tensor/bench/{torch_baseline.py,gpu_attention.sh} .gpu/
#   strip .gpu/t2-gpu-*          # debug info would push the carried tree past its size limit
#   (GPU host) bash .gpu/gpu_attention.sh      # logs under $OUT
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/attn-out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRELLIS2_KERNEL_CACHE=/tmp/t2k
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv | tee "$OUT/smi.txt"
t0=$(date +%s)
TRELLIS2_CUDA_SYNC=1 timeout 60 ./t2-gpu-parity attention/short-300x50/bf16 2>&1 | tee "$OUT/smoke.txt"
rc=${PIPESTATUS[0]}
echo "smoke rc $rc ($(( $(date +%s) - t0 )) s)"
if [ "$rc" = 124 ]; then echo "SMOKE HUNG: skipping the rest"; exit 1; fi
TRELLIS2_CUDA_SYNC=1 timeout 200 ./t2-gpu-parity ${PARITY_FILTER:-attention} 2>&1 | grep -v '^case ' | tee "$OUT/parity.txt"
echo "parity done ($(( $(date +%s) - t0 )) s)"
mkdir -p /tmp/b && timeout 200 ./t2-gpu-bench /tmp/b ${BENCH_FILTER:-self cross dinov3} 2>&1 | tee "$OUT/bench.txt"
PYTHONUNBUFFERED=1 timeout 200 python3 torch_baseline.py /tmp/b 2>&1 | tee "$OUT/torch.txt"
cp /tmp/b/combined.json "$OUT/" 2>/dev/null
echo "all done ($(( $(date +%s) - t0 )) s)"
