#!/usr/bin/env bash
# image_to_glb.sh — one device call: image → GLB at full size (`t2-bench run --glb`, all models
# resident), the shape-first order (shape decode and surface steps during the texture flow, as
# a job runs through the services now) against the texture-flow-first order, alternating
# processes so machine drift hits both. A short table last.
#
# Stage on the CPU box (carry `.gpu/next`): bash scripts/gpu/mesh_and_memory.sh --stage
# Device call:                               bash scripts/gpu/image_to_glb.sh [ROUNDS]
set -u
cd "$(dirname "$0")/../.."
G=.gpu/next
ROUNDS=${1:-2}
OUT=${OUT:-/tmp/image-to-glb-out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export TRELLIS2_KERNEL_CACHE=/tmp/t2-kernel-cache
M=/tmp/t2-full-models
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
timeout 90 "$G/t2-bench" random --out "$M" --seed 1 2>&1 | tail -1
run() { # name, pipelines, extra args
  local name=$1 pipes=$2
  shift 2
  timeout 200 "$G/t2-bench" run --models "$M" --dump "/tmp/t2-dump-$name" --out "$OUT/$name.json" \
    --skip dit,decoders --pipelines "$pipes" --glb "$@" > "$OUT/$name.log" 2>&1
  echo "$name rc=$?"
}
for r in $(seq 1 "$ROUNDS"); do
  run "shape-first-$r" 512,1024_cascade
  run "texture-first-$r" 512,1024_cascade --texture-flow-first
done
echo "== image → GLB seconds (image → mesh + voxels)"
python3 - "$OUT" <<'PY'
import json, sys, glob, os
rows = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*-first-*.json"))):
    name = os.path.basename(f)[:-5]
    for p in json.load(open(f)).get("pipelines", []):
        st = dict(p["stages"])
        rows.append((p["pipeline"], name, p["glb_total_s"], p["total_s"],
                     st.get("texture SLat") or st.get("texture SLat (during the shape decode)"),
                     st.get("shape decode"), st.get("GLB: uv_unwrap"), st.get("GLB: decimate"),
                     st.get("GLB: remesh"), st.get("GLB: bvh"), st.get("at: GLB surface steps done"),
                     st.get("at: texture decode done")))
print("| pipeline | run | image → GLB | image → voxels | texture SLat | shape decode | UV | decimate | remesh | BVH | surface steps done at | texture decode done at |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in sorted(rows):
    print("| " + " | ".join(x if isinstance(x, str) else ("%.2f" % x if x is not None else "-") for x in r) + " |")
PY
