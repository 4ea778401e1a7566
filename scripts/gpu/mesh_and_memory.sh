#!/usr/bin/env bash
# mesh_and_memory.sh — one device call: the allocator cap, the mesh stage's CUDA path (parity,
# seconds per step next to the CPU, decimation quality), image → GLB at full size (`t2-bench
# run --glb`, all models resident) and the low-VRAM mode under a 15 GiB cap. Logs under $OUT;
# a short summary last.
#
# Stage on the CPU box (stripped, ~12 MiB in all; carry `.gpu/next`):
#   bash scripts/gpu/mesh_and_memory.sh --stage
# Device call:
#   bash scripts/gpu/mesh_and_memory.sh
set -u
cd "$(dirname "$0")/../.."
G=.gpu/next
if [ "${1:-}" = "--stage" ]; then
  set -e
  rm -rf "$G" && mkdir -p "$G"
  cargo build --release -p t2-bench -p t2-mesh --bin t2-bench --bin t2-mesh-bench
  cargo build --release -p t2-tensor --bin t2-gpu-parity
  exe=$(cargo test --release -p t2-mesh --test gpu_parity --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "gpu_parity":
        print(m["executable"])')
  cp target/release/t2-bench target/release/t2-mesh-bench target/release/t2-gpu-parity "$exe" "$G/"
  mv "$G/$(basename "$exe")" "$G/gpu_parity"
  strip "$G"/*
  du -sh "$G"
  exit 0
fi
OUT=${OUT:-/tmp/mesh-and-memory-out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export TRELLIS2_KERNEL_CACHE=/tmp/t2-kernel-cache
M=/tmp/t2-full-models
t0=$(date +%s)
el() { echo "[$(($(date +%s) - t0)) s] $*"; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"

el "allocator cap"
timeout 120 "$G/t2-gpu-parity" memory-limit oom 2>&1 | tee "$OUT/parity.log"

el "mesh CUDA parity"
TRELLIS2_REQUIRE_CUDA=1 timeout 240 "$G/gpu_parity" --test-threads=1 2>&1 | tee "$OUT/mesh-parity.log"
el "mesh bench, CPU then CUDA"
timeout 300 "$G/t2-mesh-bench" --device both 2>&1 | tee "$OUT/mesh-bench.log"
el "mesh bench, sphere at res 1024 (the --glb surface), CUDA"
timeout 200 "$G/t2-mesh-bench" --device cuda --shape sphere --no-quality 2>&1 | tee "$OUT/mesh-sphere.log"

el "full-size weights"
timeout 90 "$G/t2-bench" random --out "$M" --seed 1 2>&1 | tail -1
el "512 and 1024_cascade, resident, image → GLB"
timeout 300 "$G/t2-bench" run --models "$M" --dump /tmp/t2-dump-resident --out "$OUT/resident.json" \
  --skip dit,decoders --pipelines 512,1024_cascade --glb 2>&1 | grep -v PipelineResult | tail -4
"$G/t2-bench" table --ours "$OUT/resident.json" > "$OUT/resident.md"
el "1024_cascade, low-VRAM, 15 GiB cap"
timeout 300 "$G/t2-bench" run --models "$M" --dump /tmp/t2-dump-low --out "$OUT/low-vram.json" \
  --skip dit,decoders --pipelines 1024_cascade --low-vram --memory-limit-gib 15 2>&1 |
  grep -v PipelineResult | tail -4
"$G/t2-bench" table --ours "$OUT/low-vram.json" > "$OUT/low-vram.md"
el done
echo "== summary"
grep -E "memory-limit|oom" "$OUT/parity.log" | tail -3
grep -E "^test result|FAILED" "$OUT/mesh-parity.log" | tail -3
grep -E "to_glb total|parity|decimate \||uv_unwrap \|" "$OUT/mesh-bench.log" | tail -9
grep -E "faces \| (parallel|none)" "$OUT/mesh-bench.log"
grep -E "^\| (fill_holes|bvh|bvh_upload|remesh|decimate|uv_unwrap|bake|glb) |to_glb total|pieces of" "$OUT/mesh-sphere.log"
for mode in resident low-vram; do
  echo "-- $mode"
  grep -E "GLB:|total \(image|peak GPU|allocator cap" "$OUT/$mode.md"
done
