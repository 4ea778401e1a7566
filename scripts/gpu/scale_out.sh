#!/usr/bin/env bash
# scale_out.sh — on nvidia-h200-x2: /generate throughput through the gateway with one flow
# replica (cuda:0) and then two (cuda:0, cuda:1), same services otherwise (rmbg on the CPU,
# dinov3 on cuda:1, mesh on the CPU, unused by /generate without preview), same requests:
# pipeline 512 (or $PIPELINE) at 100 steps per stage on the demo models, C concurrent clients,
# N requests.
# The demo models are small: the flow is launch-bound, so this measures how the gateway spreads
# generations over replicas, not full-size GPU work. With FULL=1 the dinov3 and flow services
# load the random full-size set instead (`trellis2 models random --full-size`, written here),
# the flows in benchmark-structure mode (TRELLIS2_BENCH_STRUCTURE=sphere: a trained model's
# token counts instead of what random decoders output) at the pipelines' default step counts
# (STEPS, default 12 with FULL=1, else 100); rmbg and mesh keep the demo set (the random set
# has no RMBG-2.0, and /generate does not use the mesh service). Prints one table last.
#
# Stage (carry `.gpu/scale`): a stripped release `trellis2`, ONNX Runtime's
# libonnxruntime.so.1.32.0 (CPU, from PyPI `onnxruntime`) and an RGBA PNG `ball.png`.
# Device call (kind nvidia-h200-x2): bash scripts/gpu/scale_out.sh [N] [C]
set -u
cd "$(dirname "$0")/../.."
S=$PWD/.gpu/scale
N=${1:-24}
C=${2:-4}
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export ORT_DYLIB_PATH=$S/libonnxruntime.so.1.32.0
export TRELLIS2_KERNEL_CACHE=/tmp/t2-kernel-cache
D=/tmp/scale-out
rm -rf "$D" && mkdir -p "$D"
nvidia-smi --query-gpu=index,name --format=csv,noheader
"$S/trellis2" models demo --out "$D/m" | tail -1
BIG=$D/m
if [ "${FULL:-0}" = 1 ]; then
  BIG=/tmp/t2-full-models
  [ -f "$BIG/pipeline.json" ] || "$S/trellis2" models random --full-size --out "$BIG" | tail -1
  export TRELLIS2_BENCH_STRUCTURE=sphere
fi
STEPS=${STEPS:-$([ "${FULL:-0}" = 1 ] && echo 12 || echo 100)}
pids=()
svc() { # name port device models
  "$S/trellis2" service "$1" --listen "127.0.0.1:$2" --models "$4" --data "$D" --device "$3" \
    --rmbg-provider cpu > "$D/$1-$2.log" 2>&1 &
  pids+=($!)
}
svc rmbg 50051 cpu "$D/m"
svc dinov3 50052 cuda:1 "$BIG"
svc flow 50053 cuda:0 "$BIG"
svc flow 50055 cuda:1 "$BIG"
svc mesh 50054 cpu "$D/m"
run() { # label flow-urls port
  local label=$1 flows=$2 port=$3
  "$S/trellis2" tokens add bench --data "$D/g-$label" | tail -1 > "$D/token-$label"
  "$S/trellis2" serve --listen "127.0.0.1:$port" --data "$D/g-$label" \
    --rmbg-url http://127.0.0.1:50051 --dinov3-url http://127.0.0.1:50052 \
    --flow-url "$flows" --mesh-url http://127.0.0.1:50054 --max-inflight 16 \
    > "$D/gateway-$label.log" 2>&1 &
  local gw=$!
  python3 - "$label" "http://127.0.0.1:$port" "$(cat "$D/token-$label")" "$S/ball.png" "$N" "$C" "$STEPS" <<'PY'
import base64, json, sys, threading, time, urllib.request
label, url, token, png, n, c, steps = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
for _ in range(600):
    try:
        if urllib.request.urlopen(url + "/ready", timeout=2).status == 200:
            break
    except Exception:
        pass
    time.sleep(0.5)
else:
    sys.exit(f"{label}: gateway never ready")
import os
body = json.dumps({"image": base64.b64encode(open(png, "rb").read()).decode(),
                   "pipeline_type": os.environ.get("PIPELINE", "512"),
                   "ss_sampling_steps": steps, "shape_slat_sampling_steps": steps,
                   "tex_slat_sampling_steps": steps, "preview_video": False}).encode()
def call():
    req = urllib.request.Request(url + "/generate", data=body, headers={
        "content-type": "application/json", "authorization": "Bearer " + token})
    return urllib.request.urlopen(req, timeout=600).status
call()  # warm-up (kernels, first connections), not timed
left, lock, codes = [n], threading.Lock(), []
def worker():
    while True:
        with lock:
            if left[0] == 0:
                return
            left[0] -= 1
        try:
            codes.append(call())
        except Exception as e:
            codes.append(str(e)[:80])
t = time.time()
ts = [threading.Thread(target=worker) for _ in range(c)]
[x.start() for x in ts]; [x.join() for x in ts]
wall = time.time() - t
ok = sum(1 for x in codes if x == 200)
print(f"RESULT {label} requests {n} ok {ok} wall {wall:.2f} s per_min {60 * ok / wall:.1f}")
if ok != n:
    print("errors:", [x for x in codes if x != 200][:3])
PY
  kill $gw 2>/dev/null
}
run one http://127.0.0.1:50053 8001 | tee "$D/results.txt"
run two http://127.0.0.1:50053,http://127.0.0.1:50055 8002 | tee -a "$D/results.txt"
kill "${pids[@]}" 2>/dev/null
echo "== /generate throughput ($([ "${FULL:-0}" = 1 ] && echo "full-size random models, sphere structure" || echo "demo models"), ${PIPELINE:-512}, $STEPS steps per stage, $C clients)"
grep RESULT "$D/results.txt"
# The token counts the flows sampled (benchmark structure or not).
grep -ho 'tokens[=":]*[0-9]*' "$D"/flow-*.log | sort | uniq -c | head -5
