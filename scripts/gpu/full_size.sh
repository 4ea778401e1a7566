#!/usr/bin/env bash
# full_size.sh — TRELLIS.2 at full size on the lent GPU (issue 8), in one device call: random
# full-size weights, cold start (kernel cache cold, then warm), our bench (DiT forwards, decoders,
# per-stage pipeline seconds, peak memory), the reference's own PyTorch modules on the same
# weights and inputs, and the combined table, printed last. Logs and JSON under $OUT.
#
# Stage on the CPU box (the reference code is fetched, never committed):
#   cargo build --release -p t2-bench && mkdir -p .gpu && cp target/release/t2-bench .gpu/ && strip .gpu/t2-bench
#   git --git-dir=<mirror of microsoft/TRELLIS.2> archive HEAD trellis2 | tar -x -C .ref   (.ref/ in .git/info/exclude)
# Device call (carry .gpu/t2-bench and .ref):
#   bash scripts/gpu/full_size.sh
# Knobs: RUN_ARGS (extra `t2-bench run` flags, e.g. --heavy), OURS_S / REF_S (time limits, s).
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/full-out}
mkdir -p "$OUT"
BIN=${BIN:-.gpu/t2-bench}
M=/tmp/t2-full-models
D=/tmp/t2-full-dump
K=/tmp/t2-kernel-cache
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-} PYTHONUNBUFFERED=1
t0=$(date +%s)
el() { echo "[$(($(date +%s) - t0)) s] $*"; }
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv
  nproc
  python3 -c 'import torch; print("torch", torch.__version__)'
  el random
  timeout "${RANDOM_S:-90}" "$BIN" random --out "$M" --seed 1 2>&1 | tail -12
} 2>&1 | tee "$OUT/random.log"
el cold-start
timeout "${COLD_S:-150}" "$BIN" cold-start --models "$M" --out "$OUT/cold.json" --cache "$K" 2>&1 | tee "$OUT/cold.log"
el ours
TRELLIS2_KERNEL_CACHE=$K timeout "${OURS_S:-240}" "$BIN" run --models "$M" --dump "$D" \
  --out "$OUT/ours.json" --reps 3 --f32-check ${RUN_ARGS:-} 2>&1 | tee "$OUT/ours.log"
el reference
ATTN_BACKEND=sdpa timeout "${REF_S:-200}" python3 scripts/gpu/ref_bench.py --ref .ref \
  --models "$M" --dump "$D" --out "$OUT/ref.json" --reps 3 2>&1 | tee "$OUT/ref.log"
el table
"$BIN" table --ours "$OUT/ours.json" --ref "$OUT/ref.json" --cold "$OUT/cold.json" | tee "$OUT/table.md"
el done
