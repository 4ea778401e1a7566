#!/usr/bin/env bash
# gateway_glb.sh — one device call: image → GLB as a client sees it, through the all-in-one
# `trellis2 serve` (gateway + the four services in one process) on the random full-size set:
#   1. process start → /ready with the kernel cache cold, then again with it warm;
#   2. N jobs, one after another: POST /v1/jobs, poll GET /v1/jobs/{id} every 20 ms until it
#      has succeeded, then GET the GLB artifact (checked: glTF magic, size);
#   3. peak GPU memory during the jobs, the gateway's per-stage histograms (/metrics,
#      trellis2_stage_duration_seconds) and the services' per-job timelines from its log.
# The flows run in benchmark-structure mode (TRELLIS2_BENCH_STRUCTURE=sphere: a trained
# model's token counts instead of what random decoders output); the random set has no RMBG-2.0,
# so the demo set's small RMBG model is copied in (the input is an RGBA PNG, whose alpha the
# pipeline uses as the mask). One table last.
#
# Stage (carry `.gpu/scale`, as for scale_out.sh): a stripped release `trellis2`, ONNX
# Runtime's libonnxruntime.so.1.32.0 (CPU, PyPI `onnxruntime`) and an RGBA PNG `ball.png`.
# Device call (kind nvidia-h200): bash scripts/gpu/gateway_glb.sh [N] [PIPELINE]
set -u
cd "$(dirname "$0")/../.."
S=$PWD/.gpu/scale
N=${1:-4}
PIPELINE=${2:-1024_cascade}
OUT=${OUT:-/tmp/gateway-glb-out}
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export ORT_DYLIB_PATH=$S/libonnxruntime.so.1.32.0
export TRELLIS2_KERNEL_CACHE=/tmp/t2-gateway-kernel-cache
export TRELLIS2_BENCH_STRUCTURE=sphere
D=/tmp/gateway-glb
M=/tmp/t2-full-models
rm -rf "$D" "$TRELLIS2_KERNEL_CACHE" && mkdir -p "$D" "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
[ -f "$M/pipeline.json" ] || "$S/trellis2" models random --full-size --out "$M" | tail -1
"$S/trellis2" models demo --out "$D/demo" | tail -1
mkdir -p "$M/briaai/RMBG-2.0/onnx"
cp "$D/demo/briaai/RMBG-2.0/onnx/model.onnx" "$M/briaai/RMBG-2.0/onnx/model.onnx"
"$S/trellis2" tokens add bench --data "$D/data" | tail -1 > "$D/token"

serve() { # label; prints seconds from process start to /ready, leaves the server running
  local label=$1
  local t0
  t0=$(date +%s.%N)
  "$S/trellis2" serve --models "$M" --device cuda --rmbg-provider cpu --data "$D/data" \
    --listen 127.0.0.1:8000 > "$OUT/serve-$label.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 3000); do
    if curl -sf -o /dev/null http://127.0.0.1:8000/ready; then
      python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" \
        "$t0" "$(date +%s.%N)" > "$OUT/ready-$label.txt"
      echo "$label: ready after $(cat "$OUT/ready-$label.txt") s"
      return 0
    fi
    kill -0 "$SERVER" 2>/dev/null || { echo "$label: server exited"; tail -5 "$OUT/serve-$label.log"; return 1; }
    sleep 0.05
  done
  echo "$label: not ready after 150 s"
  return 1
}
stop() { kill -INT "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; }

# 1. cold kernel cache, then warm (the jobs run on the warm start).
serve cold && stop
serve warm || exit 1

# 2. jobs through the public API, with the GPU's used memory sampled every 100 ms (the
#    driver's view: every allocation of the process, its CUDA context included).
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$OUT/gpu-mem.txt" &
SMI=$!
python3 - "$(cat "$D/token")" "$S/ball.png" "$N" "$PIPELINE" "$OUT" <<'PY'
import base64, json, sys, time, urllib.request
token, png, n, pipeline, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
url = "http://127.0.0.1:8000"
hdr = {"content-type": "application/json", "authorization": "Bearer " + token}
body = json.dumps({"image": base64.b64encode(open(png, "rb").read()).decode(),
                   "pipeline_type": pipeline, "seed": 42, "preview_video": False}).encode()
def req(method, path, data=None):
    r = urllib.request.Request(url + path, data=data, headers=hdr, method=method)
    with urllib.request.urlopen(r, timeout=600) as resp:
        return resp.status, resp.read()
rows = []
for i in range(n):
    t0 = time.perf_counter()
    status, created = req("POST", "/v1/jobs", body)
    job = json.loads(created)["job_id"]
    while True:
        _, rec = req("GET", f"/v1/jobs/{job}")
        rec = json.loads(rec)
        if rec["status"] not in ("queued", "running"):
            break
        time.sleep(0.02)
    done = time.perf_counter() - t0
    if rec["status"] != "succeeded":
        sys.exit(f"job {i}: {rec['status']} {rec.get('error')}")
    glb_link = next(a["url"] for a in rec["artifacts"] if a["url"].endswith(".glb"))
    _, glb = req("GET", glb_link)
    total = time.perf_counter() - t0
    assert glb[:4] == b"glTF", "not a GLB"
    rows.append((i, status, done, total, len(glb)))
    print(f"job {i}: POST {status}, succeeded after {done:.2f} s, GLB ({len(glb)/1e6:.1f} MB) in hand after {total:.2f} s", flush=True)
_, metrics = req("GET", "/metrics")
open(f"{out}/metrics.txt", "wb").write(metrics)
json.dump(rows, open(f"{out}/jobs.json", "w"))
PY
rc=$?
kill "$SMI" 2>/dev/null
stop
[ $rc = 0 ] || exit $rc

# Where each job's time went, from the services' own log lines: the flow's stage ends and the
# mesh service's milestones (seconds since each call began).
echo "== per-job timelines (serve log)"
sed 's/\x1b\[[0-9;]*m//g' "$OUT/serve-warm.log" | grep -E "latents sampled|GLB exported" | cut -c1-700
echo "== start: each network's load, each service's models (serve log)"
for label in cold warm; do
  sed 's/\x1b\[[0-9;]*m//g' "$OUT/serve-$label.log" | grep -E "network loaded|models loaded|warmed up" |
    python3 -c "
import json, sys
for line in sys.stdin:
    f = json.loads(line)['fields']
    what = f.get('weights', f.get('models', f.get('service', ''))).split('/')[-1]
    print('$label', f['message'], what, round(f.get('seconds', f.get('load_time_seconds', 0)), 2))"
done

echo "== image → GLB through the gateway ($PIPELINE, $N jobs one after another)"
python3 - "$OUT" <<'PY'
import json, re, sys
out = sys.argv[1]
ready = {l: open(f"{out}/ready-{l}.txt").read().strip() for l in ("cold", "warm")}
print(f"process start → /ready: kernel cache cold {ready['cold']} s, warm {ready['warm']} s")
mem = [int(l) for l in open(f"{out}/gpu-mem.txt") if l.strip().isdigit()]
if mem:
    print(f"GPU memory used during the jobs (nvidia-smi, every 100 ms): peak {max(mem) / 1024:.2f} GiB"
          f" ({max(mem) * 2**20 / 1e9:.1f} GB), idle before the first job {mem[0] / 1024:.2f} GiB")
print("| job | job succeeded (s) | GLB downloaded (s) | GLB MB |")
print("|---:|---:|---:|---:|")
for i, status, done, total, size in json.load(open(f"{out}/jobs.json")):
    print(f"| {i} | {done:.2f} | {total:.2f} | {size/1e6:.1f} |")
sums, counts = {}, {}
for line in open(f"{out}/metrics.txt"):
    m = re.match(r'trellis2_stage_duration_seconds_(sum|count)\{(.*)\} (\S+)', line)
    if m:
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        key = labels.get("stage", m.group(2))
        (sums if m.group(1) == "sum" else counts)[key] = float(m.group(3))
print("| stage (gateway histogram) | calls | mean s |")
print("|---|---:|---:|")
for k in sorted(sums):
    if counts.get(k):
        print(f"| {k} | {int(counts[k])} | {sums[k] / counts[k]:.2f} |")
PY
